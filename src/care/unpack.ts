// `unpack`: merges a `hubcache pack` archive into a cache, for a machine with no network.
//
// 1. Read: every member name is checked before its bytes are touched (no absolute paths, no
//    `..`, no member outside the known layouts, symlinks only from an HF snapshot to a blob of
//    the same repo, no hard links or devices); file bodies stream into a staging folder inside
//    the cache (same file system: the commit is a rename), hashed on the way.
// 2. Verify: the members must match the manifest exactly (names, sizes, sha256, link targets),
//    HF blobs must hash to their names, refs must name a commit of the archive. Any mismatch
//    stops here, the staging folder is removed, and the cache is untouched.
// 3. Commit, blobs before the links to them before refs: existing blobs and files are kept (a
//    blob's name is its content); refs, `.mv` and ModelScope files that differ from the cache's
//    are only replaced with `updateRefs`. Each step is an atomic rename or link, under the same
//    locks a download takes, so a crash leaves a consistent cache and readers never see half a file.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DiskFullError, ExitCode, HubcacheError, IntegrityError } from '../errors.js';
import { isCommitHash } from '../hubs/repo-ref.js';
import type { RemoteFile } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { fileMatches, ModelScopeCache, MsLegacyDir, parseMv, splitMsModelId, maskModelName } from '../layouts/modelscope-cache.js';
import { decodeMsc, type MscEntry } from '../layouts/pickle.js';
import { acquireLock } from '../locks/flock.js';
import { isFile, writeFileAtomic } from '../util/fs.js';
import { safeJoin } from '../util/safe-path.js';
import { readTar, TarFormatError, type TarEntry } from '../util/tar.js';
import type { CareContext } from './context.js';
import { archivePrefix, assertSafeMemberName, classifyMember, PACK_FORMAT, PACK_MANIFEST, PACK_VERSION, symlinkBlobTarget, type ManifestEntry, type MemberRole, type PackedRepo, type PackManifest } from './pack-format.js';
import { HUBCACHE_DIR } from './scan.js';

export interface UnpackOptions {
  archive: string;
  /** Also move existing refs (and `.mv`, and ModelScope files that differ) to the archive's. */
  updateRefs?: boolean;
  /** Read and verify the whole archive and report what would change; write nothing. */
  dryRun?: boolean;
  /** HF snapshot entries as symlinks (default) or as copies (HF_HUB_DISABLE_SYMLINKS). */
  symlinks?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: UnpackEvent) => void;
}

export type UnpackEvent = { type: 'unpack-progress'; bytes: number; total: number } | { type: 'warning'; message: string };

export type ChangeAction = 'added' | 'kept' | 'replaced' | 'conflict';

export interface UnpackChange {
  /** The path in the cache. */
  path: string;
  action: ChangeAction;
  detail?: string;
}

export interface RefChange {
  repo: string;
  ref: string;
  commit: string;
  previous?: string;
  action: 'created' | 'updated' | 'unchanged' | 'kept';
}

export interface UnpackReport {
  archive: string;
  dryRun: boolean;
  repos: PackedRepo[];
  /** Members verified (files and links) and their bytes. */
  verified: number;
  bytes: number;
  added: number;
  kept: number;
  replaced: number;
  /** Cached content left as it was although the archive differs (see `updateRefs`). */
  conflicts: UnpackChange[];
  refs: RefChange[];
  changes: UnpackChange[];
  seconds: number;
}

/** The archive is not a well-formed hubcache pack (structure, manifest, missing members). */
export class ArchiveError extends HubcacheError {
  override readonly exitCode = ExitCode.integrity;
}

interface Observed {
  name: string;
  role: MemberRole;
  type: 'file' | 'symlink';
  size: number;
  sha256?: string;
  gitSha1?: string;
  target?: string;
  /** Where the bytes wait (not in a dry run). */
  staged?: string;
  /** Small metadata (refs, .msc, .mdl, .mv) kept in memory. */
  small?: Buffer;
}

const MAX_MANIFEST_BYTES = 64 << 20;
const MAX_META_BYTES = 16 << 20;
const DAMAGED_HINT = 'The archive is damaged or was tampered with (copy it again); nothing was written to the cache.';

export async function unpack(ctx: CareContext, opts: UnpackOptions): Promise<UnpackReport> {
  const started = Date.now();
  const archive = path.resolve(opts.archive);
  const { size: archiveSize } = await fs.stat(archive);
  const hfRoot = ctx.roots.hf;
  const cleanup: string[] = [];
  let staging: string | undefined;
  if (!opts.dryRun) {
    await checkSpace(hfRoot, archiveSize);
    // Folders created only for staging are removed again (deepest first, and only when empty).
    for (let dir = path.join(hfRoot, HUBCACHE_DIR); ; dir = path.dirname(dir)) {
      if (!(await fs.stat(dir).then(() => true, () => false))) cleanup.push(dir);
      if (dir === hfRoot || path.dirname(dir) === dir) break;
    }
    staging = path.join(hfRoot, HUBCACHE_DIR, `unpack-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(staging, { recursive: true });
  }
  try {
    const { observed, manifest } = await readArchive(archive, archiveSize, staging, opts);
    verify(observed, manifest);
    const report: UnpackReport = {
      archive,
      dryRun: !!opts.dryRun,
      repos: manifest.repos,
      verified: observed.size,
      bytes: [...observed.values()].reduce((s, o) => s + o.size, 0),
      added: 0,
      kept: 0,
      replaced: 0,
      conflicts: [],
      refs: [],
      changes: [],
      seconds: 0,
    };
    const committer = new Committer(ctx, opts, report);
    for (const repo of manifest.repos) {
      const members = [...observed.values()].filter((o) => 'prefix' in o.role && o.role.prefix === repo.prefix);
      if (repo.layout === 'hf') await committer.hf(repo, members);
      else if (repo.layout === 'ms-legacy') await committer.msLegacy(repo, members);
      else await committer.msSnapshots(repo, members);
    }
    report.seconds = (Date.now() - started) / 1000;
    return report;
  } finally {
    if (staging) await fs.rm(staging, { recursive: true, force: true });
    for (const dir of cleanup) await fs.rmdir(dir).catch(() => undefined); // only if still empty
  }
}

async function checkSpace(root: string, needed: number): Promise<void> {
  let dir = root;
  while (!(await fs.stat(dir).then(() => true, () => false)) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const st = await fs.statfs(dir).catch(() => undefined);
  if (!st) return;
  const free = st.bavail * st.bsize;
  if (free < needed) {
    throw new DiskFullError(`Not enough space to unpack: the archive holds ${needed} bytes, ${free} are free on the file system of ${root}`, needed, free, {
      hint: 'Free space (`hubcache prune`, `hubcache gc --max-size ...`) or unpack into another --cache-dir.',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 1. read

async function readArchive(archive: string, total: number, staging: string | undefined, opts: UnpackOptions): Promise<{ observed: Map<string, Observed>; manifest: PackManifest }> {
  const observed = new Map<string, Observed>();
  let manifest: PackManifest | undefined;
  let read = 0;
  const stream = createReadStream(archive, { highWaterMark: 1 << 20, ...(opts.signal ? { signal: opts.signal } : {}) });
  const counted = (async function* () {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      read += chunk.length;
      opts.onEvent?.({ type: 'unpack-progress', bytes: read, total });
      yield chunk;
    }
  })();
  try {
    for await (const entry of readTar(counted)) {
      if (entry.type === 'dir') {
        classifyDir(entry.name);
        continue;
      }
      const role = classifyMember(entry.name);
      if (observed.has(entry.name) || (role.kind === 'manifest' && manifest)) throw new ArchiveError(`Archive member ${JSON.stringify(entry.name)} appears twice`, { hint: DAMAGED_HINT });
      if (role.kind === 'manifest') {
        if (entry.type !== 'file' || entry.size > MAX_MANIFEST_BYTES) throw new ArchiveError(`${PACK_MANIFEST} is not a plain file of reasonable size`, { hint: DAMAGED_HINT });
        manifest = parseManifest(await collect(entry));
        continue;
      }
      if (entry.type === 'symlink') {
        const target = entry.linkName ?? '';
        symlinkBlobTarget(entry.name, target); // refuses links out of the repo's blobs/
        observed.set(entry.name, { name: entry.name, role, type: 'symlink', size: 0, target });
        continue;
      }
      observed.set(entry.name, await receiveFile(entry, role, staging));
    }
  } catch (err) {
    if (err instanceof TarFormatError) throw new ArchiveError(`Cannot read ${archive}: ${err.message}`, { hint: DAMAGED_HINT });
    throw err;
  } finally {
    stream.destroy();
  }
  if (!manifest) throw new ArchiveError(`${archive} is not a hubcache pack: it has no ${PACK_MANIFEST}`, { hint: 'Create archives with `hubcache pack REPO... -o FILE`.' });
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
  const keepSmall = role.kind === 'hf-ref' || role.kind === 'ms-meta';
  if (keepSmall && entry.size > MAX_META_BYTES) throw new ArchiveError(`${entry.name} is too large for what it is (${entry.size} bytes)`, { hint: DAMAGED_HINT });
  const sha256 = createHash('sha256');
  const git: Hash | undefined = role.kind === 'hf-blob' && role.etag.length === 40 ? createHash('sha1').update(`blob ${entry.size}\0`) : undefined;
  const small: Buffer[] = [];
  let fh: fs.FileHandle | undefined;
  if (staging) {
    o.staged = safeJoin(staging, entry.name);
    await fs.mkdir(path.dirname(o.staged), { recursive: true });
    fh = await fs.open(o.staged, 'wx');
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
    throw new ArchiveError(`${PACK_MANIFEST} is not a hubcache pack manifest of version ${PACK_VERSION}`, { hint: 'Unpack it with the hubcache version that packed it.' });
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// 2. verify

function verify(observed: Map<string, Observed>, manifest: PackManifest): void {
  const listed = new Map<string, ManifestEntry>();
  for (const e of manifest.entries) {
    classifyMember(e.name);
    listed.set(e.name, e);
  }
  const prefixes = new Set<string>();
  for (const r of manifest.repos) {
    const expected = archivePrefix(r);
    if (r.prefix !== expected) throw new ArchiveError(`Manifest entry for ${r.key} names folder ${JSON.stringify(r.prefix)}, expected ${JSON.stringify(expected)}`, { hint: DAMAGED_HINT });
    prefixes.add(r.prefix);
  }
  const snapshotCommits = new Set<string>();
  for (const o of observed.values()) if (o.role.kind === 'hf-snapshot') snapshotCommits.add(`${o.role.prefix}\0${o.role.commit}`);

  for (const o of observed.values()) {
    const m = listed.get(o.name);
    if (!m) throw new ArchiveError(`Archive member ${o.name} is not in the manifest`, { hint: DAMAGED_HINT });
    if (!('prefix' in o.role) || !prefixes.has(o.role.prefix)) throw new ArchiveError(`Archive member ${o.name} belongs to no repo of the manifest`, { hint: DAMAGED_HINT });
    if (m.type !== o.type) throw new ArchiveError(`Archive member ${o.name} is a ${o.type}, the manifest says ${m.type}`, { hint: DAMAGED_HINT });
    if (o.type === 'symlink') {
      if (m.target !== o.target) throw new ArchiveError(`Link ${o.name} points to ${o.target}, the manifest says ${m.target}`, { hint: DAMAGED_HINT });
      const blob = symlinkBlobTarget(o.name, o.target ?? '');
      if (observed.get(blob)?.type !== 'file') throw new ArchiveError(`Link ${o.name} points to ${blob}, which is not in the archive`, { hint: DAMAGED_HINT });
      continue;
    }
    if (m.size !== o.size) throw damaged(new IntegrityError(o.name, String(m.size), String(o.size), 'size'));
    if (m.sha256 !== o.sha256) throw damaged(new IntegrityError(o.name, String(m.sha256), String(o.sha256), 'sha256'));
    if (o.role.kind === 'hf-blob') {
      const actual = o.role.etag.length === 40 ? o.gitSha1 : o.sha256;
      if (actual !== o.role.etag) throw damaged(new IntegrityError(o.name, o.role.etag, String(actual), o.role.etag.length === 40 ? 'git-sha1' : 'sha256'));
    }
    if (o.role.kind === 'hf-ref') {
      const commit = o.small?.toString('utf8') ?? '';
      if (!isCommitHash(commit)) throw new ArchiveError(`Ref ${o.name} does not hold a commit hash`, { hint: DAMAGED_HINT });
      if (!snapshotCommits.has(`${o.role.prefix}\0${commit}`)) throw new ArchiveError(`Ref ${o.name} points to ${commit}, which the archive does not hold`, { hint: DAMAGED_HINT });
    }
  }
  for (const name of listed.keys()) {
    if (!observed.has(name)) throw new ArchiveError(`${name} is in the manifest but not in the archive (truncated copy?)`, { hint: DAMAGED_HINT });
  }
}

function damaged(err: IntegrityError): IntegrityError {
  err.hint = DAMAGED_HINT;
  return err;
}

// ---------------------------------------------------------------------------------------------
// 3. commit

class Committer {
  private readonly symlinks: boolean;
  constructor(
    private readonly ctx: CareContext,
    private readonly opts: UnpackOptions,
    private readonly report: UnpackReport,
  ) {
    this.symlinks = opts.symlinks ?? true;
  }

  private note(p: string, action: ChangeAction, detail?: string): void {
    const c: UnpackChange = { path: p, action, ...(detail ? { detail } : {}) };
    this.report.changes.push(c);
    if (action === 'added') this.report.added++;
    else if (action === 'kept') this.report.kept++;
    else if (action === 'replaced') this.report.replaced++;
    else this.report.conflicts.push(c);
  }

  async hf(repo: PackedRepo, members: Observed[]): Promise<void> {
    const rc = new HfRepoCache(this.ctx.roots.hf, repo);
    const of = <K extends MemberRole['kind']>(kind: K): Array<Observed & { role: Extract<MemberRole, { kind: K }> }> =>
      members.filter((o): o is Observed & { role: Extract<MemberRole, { kind: K }> } => o.role.kind === kind);
    const blobs = of('hf-blob');
    if (blobs.length > 0 && !this.opts.dryRun) await rc.writeCachedirTag();
    for (const b of blobs) {
      const dest = rc.blobPath(b.role.etag);
      if (await isFile(dest)) {
        this.note(dest, 'kept');
        continue;
      }
      if (!this.opts.dryRun) {
        const lock = await acquireLock(rc.lockPath(b.role.etag), this.lockOpts());
        try {
          if (!(await isFile(dest))) await moveInto(b.staged as string, dest);
        } finally {
          await lock.release();
        }
      }
      this.note(dest, 'added');
    }
    const sizes = new Map(blobs.map((b) => [b.role.etag, b.size]));
    for (const s of of('hf-snapshot')) {
      const dest = rc.snapshotPath(s.role.commit, s.role.repoPath);
      if (await isFile(dest)) {
        this.note(dest, 'kept');
        continue;
      }
      if (!this.opts.dryRun) {
        if (s.type === 'symlink') {
          const etag = path.posix.basename(symlinkBlobTarget(s.name, s.target ?? ''));
          await rc.linkSnapshot(s.role.commit, remoteFile(s.role.repoPath, etag, sizes.get(etag) ?? 0), { symlinks: this.symlinks, newBlob: false });
        } else {
          await moveInto(s.staged as string, dest);
        }
      }
      this.note(dest, 'added');
    }
    for (const t of of('hf-tree')) await this.placeIfAbsent(t, rc.treePath(t.role.commit));
    for (const r of of('hf-ref')) await this.ref(repo, rc, r.role.ref, (r.small as Buffer).toString('utf8'));
  }

  private async ref(repo: PackedRepo, rc: HfRepoCache, name: string, commit: string): Promise<void> {
    const previous = await rc.readRef(name);
    const change: RefChange = { repo: repo.key, ref: name, commit, action: 'created' };
    if (previous !== undefined) change.previous = previous;
    if (previous === commit) change.action = 'unchanged';
    else if (previous !== undefined && !this.opts.updateRefs) {
      change.action = 'kept';
      this.note(rc.refPath(name), 'conflict', `ref ${name} stays at ${previous}; the archive has ${commit} (--update-refs to take it)`);
    } else {
      if (previous !== undefined) change.action = 'updated';
      if (!this.opts.dryRun) await rc.writeRef(name, commit);
    }
    this.report.refs.push(change);
  }

  async msLegacy(repo: PackedRepo, members: Observed[]): Promise<void> {
    const msRoot = this.ctx.roots.modelscope;
    const cache = new ModelScopeCache(msRoot, this.ctx.roots.modelscopeV2 ?? msRoot);
    const { owner, name } = splitMsModelId(repo.id);
    const dir = new MsLegacyDir(safeJoin(msRoot, repo.prefix.slice('ms/'.length)), cache.lockPath(repo.id), `${owner}/${maskModelName(name)}`);
    const meta = (file: string): Buffer | undefined => members.find((o) => o.role.kind === 'ms-meta' && o.role.file === file)?.small;
    const archiveIndex = safeDecodeMsc(meta('.msc'));
    const cachedIndex = await dir.readIndex();
    const toRecord: MscEntry[] = [];
    if (!this.opts.dryRun) await dir.writeMdl();
    for (const f of members) {
      if (f.role.kind !== 'ms-file') continue;
      const repoPath = f.role.repoPath;
      const outcome = await this.msFile(f, dir.filePath(repoPath), cache.v2LockPath(repo.id, repoPath));
      const entry = archiveIndex.find((e) => e.Path === repoPath);
      if (!entry) continue; // untracked in the source cache too
      const indexed = cachedIndex.some((e) => e.Path === repoPath);
      if (outcome === 'added' || outcome === 'replaced' || (outcome === 'kept' && (!indexed || this.opts.updateRefs))) toRecord.push(entry);
    }
    if (toRecord.length > 0 && !this.opts.dryRun) await dir.record(toRecord.map((e) => ({ path: e.Path, msRevision: e.Revision })), this.lockOpts());
    const mv = meta('.mv')?.toString('utf8');
    if (mv !== undefined) {
      const current = await dir.readMv();
      if (current === undefined || (this.opts.updateRefs && current.revision !== parseMv(mv).revision)) {
        if (!this.opts.dryRun) await writeFileAtomic(dir.mvPath, mv);
        this.note(dir.mvPath, current === undefined ? 'added' : 'replaced');
      } else if (current.revision !== parseMv(mv).revision) {
        this.note(dir.mvPath, 'conflict', `.mv stays at revision ${current.revision}; the archive has ${parseMv(mv).revision} (--update-refs to take it)`);
      }
    }
    if (!this.opts.dryRun && repo.type === 'model') await cache.ensureDottedSymlink(repo.id);
  }

  async msSnapshots(repo: PackedRepo, members: Observed[]): Promise<void> {
    const v2Root = this.ctx.roots.modelscopeV2 ?? this.ctx.roots.modelscope;
    const cache = new ModelScopeCache(this.ctx.roots.modelscope, v2Root);
    const repoDir = safeJoin(v2Root, repo.prefix.slice('msv2/'.length));
    for (const f of members) {
      if (f.role.kind !== 'msv2-file') continue;
      await this.msFile(f, safeJoin(repoDir, `snapshots/${f.role.revision}/${f.role.repoPath}`), cache.v2LockPath(repo.id, f.role.repoPath));
    }
  }

  /** A ModelScope file: added when absent, kept when equal, replaced only with updateRefs. */
  private async msFile(f: Observed, dest: string, lockPath: string): Promise<ChangeAction> {
    const expected = { size: f.size, sha256: f.sha256 };
    if (await fileMatches(dest, expected, true, this.opts.signal)) {
      this.note(dest, 'kept');
      return 'kept';
    }
    const present = await isFile(dest);
    if (present && !this.opts.updateRefs) {
      this.note(dest, 'conflict', 'the cached file differs from the archive\'s (--update-refs to take the archive\'s)');
      return 'conflict';
    }
    if (!this.opts.dryRun) {
      const lock = await acquireLock(lockPath, this.lockOpts());
      try {
        await moveInto(f.staged as string, dest);
      } finally {
        await lock.release();
      }
    }
    const action = present ? 'replaced' : 'added';
    this.note(dest, action);
    return action;
  }

  private async placeIfAbsent(o: Observed, dest: string): Promise<void> {
    if (await isFile(dest)) {
      this.note(dest, 'kept');
      return;
    }
    if (!this.opts.dryRun) await moveInto(o.staged as string, dest);
    this.note(dest, 'added');
  }

  private lockOpts(): { signal?: AbortSignal } {
    return this.opts.signal ? { signal: this.opts.signal } : {};
  }
}

function remoteFile(repoPath: string, etag: string, size: number): RemoteFile {
  const f: RemoteFile = { path: repoPath, size, lfs: etag.length === 64 };
  if (etag.length === 64) f.sha256 = etag;
  else f.gitOid = etag;
  return f;
}

function safeDecodeMsc(buf: Buffer | undefined): MscEntry[] {
  if (!buf) return [];
  try {
    return decodeMsc(buf);
  } catch {
    return [];
  }
}

/** Rename into place (staging is inside the cache); across file systems, copy to a temp name and rename. */
async function moveInto(staged: string, dest: string): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  try {
    await fs.rename(staged, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(4).toString('hex')}.hctmp`);
    try {
      await fs.copyFile(staged, tmp);
      await fs.rename(tmp, dest);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }
}
