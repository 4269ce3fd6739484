// `pack`: cached repos into one tar that `unpack` merges into a cache on a machine with no
// network (layout and metadata kept: HF blobs, snapshot links, refs, tree listings; ModelScope
// files with `.msc`, `.mdl`, `.mv`). Every file is read once: copied into the archive and hashed
// on the way (and HF blobs checked against their names, so a corrupt blob is never shipped);
// the manifest goes last. The archive is written to a temp name and renamed when complete.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import type { RepoRefDefaults } from '../hubs/repo-ref.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { MDL_FILE, MSC_FILE, MV_FILE } from '../layouts/modelscope-cache.js';
import { atomicTempPath } from '../util/fs.js';
import { VERSION } from '../version.js';
import { TarFileWriter } from './archive-tar.js';
import type { CareContext } from './context.js';
import type { CachedRepo, CachedRevision } from './model.js';
import {
  archivePrefix,
  blobLinkTarget,
  PACK_FORMAT,
  PACK_MANIFEST,
  PACK_VERSION,
  type ManifestEntry,
  type PackedRepo,
  type PackManifest,
} from './pack-format.js';
import { scan } from './scan.js';
import { etagOfBlobName } from '../layouts/hf-cache.js';
import { requireTargets } from './select.js';

export interface PackOptions {
  /** REPO[@REV] targets, as for `rm` / `verify` (a repo without @REV: every cached revision). */
  targets: string[];
  defaults?: Pick<RepoRefDefaults, 'hub' | 'type'>;
  /** The archive to write (replaced atomically). */
  output: string;
  signal?: AbortSignal;
  onEvent?: (e: PackEvent) => void;
}

export type PackEvent =
  | { type: 'pack-plan'; repos: number; files: number; bytes: number }
  | { type: 'pack-progress'; bytes: number; total: number }
  | { type: 'warning'; message: string };

export interface PackReport {
  output: string;
  repos: PackedRepo[];
  files: number;
  links: number;
  /** Bytes of file content packed. */
  bytes: number;
  archiveBytes: number;
  warnings: string[];
  seconds: number;
}

type PackItem =
  | { kind: 'file'; name: string; src: string; size: number; mtimeMs: number; etag?: string }
  | { kind: 'symlink'; name: string; target: string };

export async function pack(ctx: CareContext, opts: PackOptions): Promise<PackReport> {
  const started = Date.now();
  const emit = (e: PackEvent): void => opts.onEvent?.(e);
  const selections = requireTargets(await scan(ctx.roots), opts.targets, opts.defaults);
  const warnings: string[] = [];
  const items = new Map<string, PackItem>();
  const repos: PackedRepo[] = [];
  for (const { repo, revisions } of selections) {
    const packed: PackedRepo = {
      key: repo.key,
      hub: repo.hub,
      type: repo.type,
      id: repo.id,
      layout: repo.layout,
      prefix: archivePrefix(repo),
      revisions: [],
    };
    for (const rev of revisions) {
      if (rev.missing.length > 0)
        warnings.push(
          `${repo.key}@${rev.commit}: ${rev.missing.length} file(s) missing from the cache are not packed: ${rev.missing.slice(0, 5).join(', ')}`,
        );
      for (const item of await itemsOf(repo, rev, packed.prefix)) items.set(item.name, item);
      packed.revisions.push({ commit: rev.commit, refs: [...rev.refs] });
    }
    if (repo.layout === 'ms-legacy')
      for (const item of await msMetaItems(repo, packed.prefix)) items.set(item.name, item);
    repos.push(packed);
  }
  for (const w of warnings) emit({ type: 'warning', message: w });
  const files = [...items.values()].filter((i): i is Extract<PackItem, { kind: 'file' }> => i.kind === 'file');
  const total = files.reduce((s, f) => s + f.size, 0);
  emit({ type: 'pack-plan', repos: repos.length, files: files.length, bytes: total });

  const output = path.resolve(opts.output);
  await fs.mkdir(path.dirname(output), { recursive: true });
  const tmp = atomicTempPath(output);
  const out = await fs.open(tmp, 'wx');
  let archiveBytes = 0;
  const tar = new TarFileWriter(out);
  try {
    const entries: ManifestEntry[] = [];
    let done = 0;
    // Blobs first, then what points at them: an interrupted `tar -x` never leaves a dangling link.
    const ordered = [...items.values()].sort(
      (a, b) => Number(a.kind === 'symlink') - Number(b.kind === 'symlink') || (a.name < b.name ? -1 : 1),
    );
    for (const item of ordered) {
      opts.signal?.throwIfAborted();
      if (item.kind === 'symlink') {
        await tar.addSymlink(item.name, item.target, Date.now());
        entries.push({ name: item.name, type: 'symlink', target: item.target });
        continue;
      }
      const entry = await packFile(tar, item, opts.signal, (n) => {
        done += n;
        emit({ type: 'pack-progress', bytes: done, total });
      });
      entries.push(entry);
    }
    const manifest: PackManifest = {
      format: PACK_FORMAT,
      version: PACK_VERSION,
      createdAt: new Date().toISOString(),
      creator: `hubcache ${VERSION}`,
      repos,
      entries,
    };
    await tar.addBuffer(PACK_MANIFEST, Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`), Date.now());
    await tar.finish();
    await out.sync();
    archiveBytes = tar.bytes;
  } catch (err) {
    tar.abort(err as Error);
    await out.close();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await out.close();
  await fs.rename(tmp, output);
  return {
    output,
    repos,
    files: files.length,
    links: items.size - files.length,
    bytes: total,
    archiveBytes,
    warnings,
    seconds: (Date.now() - started) / 1000,
  };
}

/** Copies one file into the archive, hashing it; an HF blob must hash to its own name. */
async function packFile(
  tar: TarFileWriter,
  item: Extract<PackItem, { kind: 'file' }>,
  signal: AbortSignal | undefined,
  onBytes: (n: number) => void,
): Promise<ManifestEntry> {
  const src = await fs.open(item.src, 'r');
  try {
    const { size } = await src.stat();
    const sha256 = createHash('sha256');
    let git: Hash | undefined;
    if (item.etag?.length === 40) git = createHash('sha1').update(`blob ${size}\0`);
    await tar.addFile(
      item.name,
      src,
      size,
      item.mtimeMs,
      (chunk) => {
        sha256.update(chunk);
        git?.update(chunk);
        onBytes(chunk.length);
      },
      signal,
    );
    const hex = sha256.digest('hex');
    const actual = item.etag?.length === 40 ? (git as Hash).digest('hex') : hex;
    if (item.etag && actual !== item.etag) {
      const err = new IntegrityError(item.src, item.etag, actual, item.etag.length === 40 ? 'git-sha1' : 'sha256');
      err.hint = 'This cached blob is corrupt; run `hubcache verify --fix`, then pack again.';
      throw err;
    }
    const entry: ManifestEntry = { name: item.name, type: 'file', size, sha256: hex };
    if (item.etag) entry.etag = item.etag;
    return entry;
  } finally {
    await src.close();
  }
}

/** The members of one revision: HF blobs + snapshot links + refs + tree listing; ModelScope files. */
async function itemsOf(repo: CachedRepo, rev: CachedRevision, prefix: string): Promise<PackItem[]> {
  const out: PackItem[] = [];
  const member = (abs: string): string => `${prefix}/${path.relative(repo.path, abs).split(path.sep).join('/')}`;
  const blobsDir = repo.layout === 'hf' ? new HfRepoCache(repo.root, repo).blobsDir() : undefined;
  for (const f of rev.files) {
    const name = member(f.linkPath);
    const etag =
      repo.layout === 'hf' && path.dirname(f.blobPath) === blobsDir
        ? etagOfBlobName(path.basename(f.blobPath))
        : undefined;
    if (etag) {
      const blob = `${prefix}/blobs/${etag}`;
      out.push({ kind: 'file', name: blob, src: f.blobPath, size: f.size, mtimeMs: f.lastModifiedMs, etag });
      out.push({ kind: 'symlink', name, target: blobLinkTarget(name, blob) });
    } else {
      // A copy (no-symlink mode, or ModelScope): the file itself.
      out.push({ kind: 'file', name, src: f.linkPath, size: f.size, mtimeMs: f.lastModifiedMs });
    }
  }
  if (repo.layout === 'hf') {
    const rc = new HfRepoCache(repo.root, repo);
    for (const ref of rev.refs) out.push(await plainFile(rc.refPath(ref), `${prefix}/refs/${ref}`));
    const tree = rc.treePath(rev.commit);
    if (
      await fs.stat(tree).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      out.push(await plainFile(tree, `${prefix}/trees/${rev.commit}.json`));
  }
  return out;
}

async function msMetaItems(repo: CachedRepo, prefix: string): Promise<PackItem[]> {
  const out: PackItem[] = [];
  for (const meta of [MSC_FILE, MDL_FILE, MV_FILE]) {
    const p = path.join(repo.path, meta);
    if (
      await fs.stat(p).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      out.push(await plainFile(p, `${prefix}/${meta}`));
  }
  return out;
}

async function plainFile(src: string, name: string): Promise<PackItem> {
  const st = await fs.stat(src);
  return { kind: 'file', name, src, size: st.size, mtimeMs: st.mtimeMs };
}
