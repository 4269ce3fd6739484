// unpack, step 1: read the archive, checking each member before its bytes are touched (a name
// inside the known layouts, no links but HF snapshot → blob of the same repo, no hard links or
// devices, no duplicates, bounded metadata, tree listings that hold only safe paths and ids), and
// stream file bodies into the staging folder, hashed on the way.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { safeJoin } from '../util/safe-path.js';
import { readTarFile, TarFormatError, type TarEntry } from './archive-tar.js';
import {
  assertSafeMemberName,
  checkTreeListing,
  classifyMember,
  PACK_FORMAT,
  PACK_MANIFEST,
  PACK_VERSION,
  symlinkBlobTarget,
  type MemberRole,
  type PackManifest,
} from './pack-format.js';
import { ArchiveError, DAMAGED_HINT, type Observed, type UnpackOptions } from './unpack-model.js';

const MAX_MANIFEST_BYTES = 64 << 20;
const MAX_META_BYTES = 16 << 20;
/** Tree listings of big dataset repos run to megabytes; they are parsed in memory. */
const MAX_TREE_BYTES = 64 << 20;

export async function readArchive(
  archive: string,
  total: number,
  staging: string | undefined,
  opts: UnpackOptions,
): Promise<{ observed: Map<string, Observed>; manifest: PackManifest }> {
  const observed = new Map<string, Observed>();
  let manifest: PackManifest | undefined;
  const onBytes = (bytes: number): void => opts.onEvent?.({ type: 'unpack-progress', bytes, total });
  try {
    for await (const entry of readTarFile(archive, { ...(opts.signal ? { signal: opts.signal } : {}), onBytes })) {
      if (entry.type === 'dir') {
        classifyDir(entry.name);
        continue;
      }
      const role = classifyMember(entry.name);
      if (observed.has(entry.name) || (role.kind === 'manifest' && manifest)) {
        throw new ArchiveError(`Archive member ${JSON.stringify(entry.name)} appears twice`, { hint: DAMAGED_HINT });
      }
      if (role.kind === 'manifest') {
        if (entry.type !== 'file' || entry.size > MAX_MANIFEST_BYTES) {
          throw new ArchiveError(`${PACK_MANIFEST} is not a plain file of reasonable size`, { hint: DAMAGED_HINT });
        }
        manifest = parseManifest(await collect(entry));
        continue;
      }
      if (entry.type === 'symlink') {
        const target = entry.linkName ?? '';
        symlinkBlobTarget(entry.name, target); // refuses links out of the repo's blobs/
        observed.set(entry.name, { name: entry.name, role, type: 'symlink', size: 0, target });
        continue;
      }
      const o = await receiveFile(entry, role, staging);
      if (role.kind === 'hf-tree') checkTreeListing(entry.name, o.small as Buffer);
      observed.set(entry.name, o);
    }
  } catch (err) {
    if (err instanceof TarFormatError)
      throw new ArchiveError(`Cannot read ${archive}: ${err.message}`, { hint: DAMAGED_HINT });
    throw err;
  }
  if (!manifest) {
    throw new ArchiveError(`${archive} is not a hubcache pack: it has no ${PACK_MANIFEST}`, {
      hint: 'Create archives with `hubcache pack REPO... -o FILE`.',
    });
  }
  return { observed, manifest };
}

/** Folder members create nothing (files bring their parents); they only have to be safe names under a layout. */
function classifyDir(name: string): void {
  const trimmed = name.replace(/\/+$/, '');
  assertSafeMemberName(trimmed);
  const top = trimmed.split('/')[0];
  if (top !== 'hf' && top !== 'ms' && top !== 'msv2') classifyMember(trimmed); // refuses it
}

async function collect(entry: TarEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of entry.body) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Streams one file member into staging (exclusive create: nothing is followed or overwritten), hashing it. */
async function receiveFile(entry: TarEntry, role: MemberRole, staging: string | undefined): Promise<Observed> {
  const o: Observed = { name: entry.name, role, type: 'file', size: entry.size };
  const keepSmall = role.kind === 'hf-ref' || role.kind === 'ms-meta' || role.kind === 'hf-tree';
  const cap = role.kind === 'hf-tree' ? MAX_TREE_BYTES : MAX_META_BYTES;
  if (keepSmall && entry.size > cap)
    throw new ArchiveError(`${entry.name} is too large for what it is (${entry.size} bytes)`, { hint: DAMAGED_HINT });
  const sha256 = createHash('sha256');
  const git: Hash | undefined =
    role.kind === 'hf-blob' && role.etag.length === 40 ? createHash('sha1').update(`blob ${entry.size}\0`) : undefined;
  const small: Buffer[] = [];
  let fh: fs.FileHandle | undefined;
  if (staging) {
    o.staged = safeJoin(staging, entry.name);
    try {
      await fs.mkdir(path.dirname(o.staged), { recursive: true });
      fh = await fs.open(o.staged, 'wx');
    } catch (err) {
      // A member under another member's name (`a` then `a/b`, or the reverse): no cache holds both.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTDIR' && code !== 'EEXIST' && code !== 'EISDIR') throw err;
      throw new ArchiveError(`Archive member ${JSON.stringify(entry.name)} collides with another member's path`, {
        hint: DAMAGED_HINT,
      });
    }
  }
  try {
    for await (const chunk of entry.body) {
      sha256.update(chunk);
      git?.update(chunk);
      if (keepSmall) small.push(chunk);
      if (fh) {
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
    }
  } finally {
    await fh?.close();
  }
  o.sha256 = sha256.digest('hex');
  if (git) o.gitSha1 = git.digest('hex');
  if (keepSmall) o.small = Buffer.concat(small);
  return o;
}

function parseManifest(buf: Buffer): PackManifest {
  let m: PackManifest;
  try {
    m = JSON.parse(buf.toString('utf8')) as PackManifest;
  } catch {
    throw new ArchiveError(`${PACK_MANIFEST} is not valid JSON`, { hint: DAMAGED_HINT });
  }
  if (m?.format !== PACK_FORMAT || m.version !== PACK_VERSION || !Array.isArray(m.entries) || !Array.isArray(m.repos)) {
    throw new ArchiveError(`${PACK_MANIFEST} is not a hubcache pack manifest of version ${PACK_VERSION}`, {
      hint: 'Unpack it with the hubcache version that packed it.',
    });
  }
  return m;
}
