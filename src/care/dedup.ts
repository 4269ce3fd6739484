// `dedup`: the same bytes stored more than once (an HF cache and a ModelScope cache holding the
// same weights, two HF caches, two repos sharing a tokenizer) become hard links to one inode.
//
// Cheap first: files come from the care scans (no second walker), are grouped by inode (already
// shared copies count once) and then by size; only inodes whose size collides with another one
// on the same file system are looked at further. HF LFS blobs are named by their sha256, so only
// the others (ModelScope files, git blobs) are hashed, each once. The copy that is kept is one
// whose hash was computed here, or else it is hashed before anything is linked to it: a corrupt
// blob is never spread over good copies.
//
// Safety: a file a download may be writing is never touched (HF: its blob lock is taken while it
// is replaced, and skipped when held; ModelScope: skipped while the repo's locks are held), a file
// that changed since it was hashed is skipped, and each replacement is a hard link to a temp name
// followed by a rename over the old path, so a reader always finds a complete file.
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { tryAcquireLock } from '../locks/flock.js';
import { replaceAtomically } from '../util/fs.js';
import type { CareContext } from './context.js';
import { statMany } from './fs-walk.js';
import { hashFilesWithProgress, type HashJob } from './hash-pool.js';
import { lockHeld } from './in-use.js';
import type { CacheScan } from './model.js';
import { scan, type CacheRoots } from './scan.js';
import { etagOfBlobName, HfRepoCache } from '../layouts/hf-cache.js';
import { hfBlobLockPath } from './scan-hf.js';
import { msRepoLocked } from './scan-modelscope.js';

export interface DedupOptions {
  /** Other cache folders to include (each read as an HF cache and a ModelScope cache). */
  also?: string[];
  dryRun?: boolean;
  /** Files smaller than this are left alone (default 1: every non-empty file). */
  minSize?: number;
  concurrency?: number;
  hashMode?: 'threads' | 'inline';
  signal?: AbortSignal;
  onEvent?: (e: DedupEvent) => void;
}

export type DedupEvent =
  | { type: 'dedup-plan'; files: number; candidates: number; hashFiles: number; hashBytes: number }
  | { type: 'dedup-progress'; bytes: number; total: number }
  | { type: 'warning'; message: string };

export interface DedupGroup {
  sha256: string;
  size: number;
  /** The copy whose inode the others now share. */
  keep: string;
  /** Paths replaced by a hard link to `keep` (or that would be, in a dry run). */
  linked: string[];
  /** Bytes freed: the size of every replaced inode that has no other link left. */
  savedBytes: number;
}

export interface DedupReport {
  dryRun: boolean;
  groups: DedupGroup[];
  savedBytes: number;
  linkedFiles: number;
  hashedFiles: number;
  hashedBytes: number;
  /** Identical content on different file systems (hard links cannot cross them). */
  crossDevice: { files: number; bytes: number };
  /** Blobs whose bytes did not match their name, replaced by a verified copy. */
  repaired: string[];
  skipped: Array<{ path: string; reason: string }>;
  seconds: number;
}

/** What says that a writer may be using a copy right now. */
type Guard =
  | { kind: 'hf-blob'; lockPath: string }
  | { kind: 'ms-repo'; root: string; v2Root: string; id: string }
  | { kind: 'none' };

/** One place holding a cached file's bytes. */
export interface CachedCopy {
  path: string;
  repo: string;
  /** `hf <root>` or `modelscope <root>`: which cache it belongs to. */
  cache: string;
  guard: Guard;
  /** From an HF LFS blob's name: what the content should hash to (not checked yet). */
  nameSha256?: string;
}

/** One inode and every scanned path to it. */
export interface CachedInode {
  dev: number;
  ino: number;
  size: number;
  nlink: number;
  uid: number;
  mode: number;
  mtimeMs: number;
  copies: CachedCopy[];
  sha256?: string;
  /** sha256 was computed here (not taken from a name). */
  verified: boolean;
  /** Its bytes hash to this, not to its name: a corrupt blob (replaced when a good copy exists). */
  mismatch?: string;
}

/** The scans dedup and doctor look at: this cache, plus each `also` folder as both layouts. */
export async function scanAll(roots: CacheRoots, also: readonly string[] = [], main?: CacheScan): Promise<CacheScan[]> {
  const scans = [main ?? (await scan(roots))];
  const seen = new Set(
    [roots.hf, roots.modelscope, roots.modelscopeV2 ?? roots.modelscope].map((r) => path.resolve(r)),
  );
  for (const dir of also.map((d) => path.resolve(d))) {
    if (seen.has(dir)) continue; // already scanned: the same files must not look like their own duplicates
    seen.add(dir);
    scans.push(await scan({ hf: dir, modelscope: dir }));
  }
  return scans;
}

/** Every distinct file of the scans, by inode (links out of a cache are left out). */
export async function collectInodes(scans: readonly CacheScan[]): Promise<CachedInode[]> {
  const copies = new Map<string, CachedCopy>();
  for (const s of scans) {
    for (const repo of s.repos) {
      const blobsDir = repo.layout === 'hf' ? new HfRepoCache(repo.root, repo).blobsDir() : undefined;
      for (const rev of repo.revisions) {
        for (const f of rev.files) {
          if (f.outside || copies.has(f.blobPath)) continue;
          const copy: CachedCopy = {
            path: f.blobPath,
            repo: repo.key,
            cache: `${repo.hub === 'hf' ? 'hf' : 'modelscope'} ${repo.root}`,
            guard: { kind: 'none' },
          };
          const etag =
            repo.layout === 'hf' && path.dirname(f.blobPath) === blobsDir
              ? etagOfBlobName(path.basename(f.blobPath))
              : undefined;
          if (etag) {
            copy.guard = { kind: 'hf-blob', lockPath: hfBlobLockPath(repo.root, path.basename(repo.path), etag) };
            if (etag.length === 64) copy.nameSha256 = etag;
          } else if (repo.hub === 'modelscope') {
            copy.guard = {
              kind: 'ms-repo',
              root: s.roots.modelscope,
              v2Root: s.roots.modelscopeV2 ?? s.roots.modelscope,
              id: repo.id,
            };
          }
          copies.set(f.blobPath, copy);
        }
      }
    }
  }
  const inodes = new Map<string, CachedInode>();
  const list = [...copies.values()];
  const stats = await statMany(list.map((c) => c.path));
  for (const [k, copy] of list.entries()) {
    const st = stats[k];
    if (!st?.isFile()) continue;
    const key = `${st.dev}:${st.ino}`;
    const known = inodes.get(key);
    if (known) {
      known.copies.push(copy);
      continue;
    }
    inodes.set(key, {
      ...identity(st),
      copies: [copy],
      verified: false,
      ...(copy.nameSha256 ? { sha256: copy.nameSha256 } : {}),
    });
  }
  for (const i of inodes.values()) i.sha256 ??= i.copies.find((c) => c.nameSha256)?.nameSha256;
  return [...inodes.values()];
}

function identity(st: Stats): Omit<CachedInode, 'copies' | 'verified' | 'sha256' | 'mismatch'> {
  return { dev: st.dev, ino: st.ino, size: st.size, nlink: st.nlink, uid: st.uid, mode: st.mode, mtimeMs: st.mtimeMs };
}

/** Inodes of equal size on the same file system, at least two per group: the only possible duplicates. */
export function sizeCollisions(inodes: readonly CachedInode[], minSize = 1): CachedInode[][] {
  const groups = new Map<string, CachedInode[]>();
  for (const i of inodes) {
    if (i.size < Math.max(1, minSize)) continue;
    const key = `${i.dev}:${i.size}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  }
  return [...groups.values()].filter((g) => g.length > 1);
}

/** Groups of inodes with the same sha256 (at least two), from what is known or hashed; per file system unless `acrossDevices`. */
export function sameContent(inodes: readonly CachedInode[], acrossDevices = false): CachedInode[][] {
  const groups = new Map<string, CachedInode[]>();
  for (const i of inodes) {
    if (!i.sha256) continue;
    const key = acrossDevices ? `${i.sha256}:${i.size}` : `${i.dev}:${i.sha256}:${i.size}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  }
  return [...groups.values()].filter((g) => g.length > 1);
}

export async function dedup(ctx: CareContext, opts: DedupOptions = {}): Promise<DedupReport> {
  const started = Date.now();
  const emit = (e: DedupEvent): void => opts.onEvent?.(e);
  const scans = await scanAll(ctx.roots, opts.also);
  const cacheOrder = scans.map((s) => s.roots.hf);
  const inodes = await collectInodes(scans);
  const collisions = sizeCollisions(inodes, opts.minSize ?? 1);
  const report: DedupReport = {
    dryRun: !!opts.dryRun,
    groups: [],
    savedBytes: 0,
    linkedFiles: 0,
    hashedFiles: 0,
    hashedBytes: 0,
    crossDevice: { files: 0, bytes: 0 },
    repaired: [],
    skipped: [],
    seconds: 0,
  };

  // 1. hash what has no name-given sha256, and only where a size collides
  const unknown = collisions.flat().filter((i) => !i.sha256);
  emit({
    type: 'dedup-plan',
    files: inodes.length,
    candidates: collisions.flat().length,
    hashFiles: unknown.length,
    hashBytes: unknown.reduce((s, i) => s + i.size, 0),
  });
  await hashInto(unknown, report, opts, emit);

  // 2. per group of identical content (same file system by construction): keep one, link the rest
  for (const group of sameContent(collisions.flat())) {
    opts.signal?.throwIfAborted();
    const keep = await chooseKeeper(group, cacheOrder, report, opts, emit);
    if (!keep) continue;
    const g: DedupGroup = {
      sha256: keep.sha256 as string,
      size: keep.size,
      keep: (keep.copies[0] as CachedCopy).path,
      linked: [],
      savedBytes: 0,
    };
    for (const victim of group) {
      if (victim === keep) continue;
      if (victim.uid !== keep.uid || (victim.mode & 0o7777) !== (keep.mode & 0o7777)) {
        report.skipped.push({
          path: (victim.copies[0] as CachedCopy).path,
          reason: `different owner or permissions than ${g.keep}: linking would change who can read it`,
        });
        continue;
      }
      let replaced = 0;
      for (const copy of victim.copies) {
        const why = opts.dryRun ? await busy(copy) : await replaceWithLink(keep, victim, copy);
        if (why) report.skipped.push({ path: copy.path, reason: why });
        else {
          g.linked.push(copy.path);
          replaced++;
        }
      }
      // Only an inode that lost its last link frees space (a link elsewhere keeps it alive).
      if (replaced > 0 && replaced === victim.nlink) g.savedBytes += victim.size;
      if (replaced > 0 && victim.mismatch) report.repaired.push(...victim.copies.map((c) => c.path));
    }
    if (g.linked.length === 0) continue;
    report.groups.push(g);
    report.linkedFiles += g.linked.length;
    report.savedBytes += g.savedBytes;
  }
  report.crossDevice = crossDeviceDuplicates(inodes, opts.minSize ?? 1);
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

async function hashInto(
  targets: CachedInode[],
  report: DedupReport,
  opts: DedupOptions,
  emit: (e: DedupEvent) => void,
): Promise<void> {
  if (targets.length === 0) return;
  const total = targets.reduce((s, i) => s + i.size, 0);
  const jobs: HashJob[] = targets.map((i) => ({ path: (i.copies[0] as CachedCopy).path, algorithm: 'sha256' }));
  const results = await hashFilesWithProgress(jobs, opts, (bytes) => emit({ type: 'dedup-progress', bytes, total }));
  targets.forEach((inode, k) => {
    const r = results[k];
    report.hashedFiles++;
    if (!r?.ok) {
      report.skipped.push({ path: jobs[k]?.path ?? '', reason: `could not read it: ${r?.message ?? 'unknown error'}` });
      return;
    }
    report.hashedBytes += r.size;
    if (r.size !== inode.size) return; // changed while being hashed: leave it alone
    if (inode.sha256 && inode.sha256 !== r.hex) {
      inode.mismatch = r.hex; // still grouped by its name: a good copy may replace it
      return;
    }
    inode.sha256 = r.hex;
    inode.verified = true;
  });
}

/**
 * The copy to keep: one already hashed here, else the one with most links, else the first cache
 * scanned. An unverified keeper is hashed first: one whose bytes do not match its name stays in
 * the group as a copy to replace, an unreadable one leaves it.
 */
async function chooseKeeper(
  group: CachedInode[],
  cacheOrder: string[],
  report: DedupReport,
  opts: DedupOptions,
  emit: (e: DedupEvent) => void,
): Promise<CachedInode | undefined> {
  const rank = (i: CachedInode): number => {
    const c = i.copies[0] as CachedCopy;
    const at = cacheOrder.findIndex((root) => c.cache.endsWith(` ${root}`));
    return at < 0 ? cacheOrder.length : at;
  };
  const want = (group[0] as CachedInode).sha256;
  const ordered = [...group].sort(
    (a, b) => Number(b.verified) - Number(a.verified) || b.nlink - a.nlink || rank(a) - rank(b),
  );
  for (const candidate of ordered) {
    if (!candidate.verified && !candidate.mismatch) await hashInto([candidate], report, opts, emit);
    if (candidate.verified && candidate.sha256 === want) return candidate;
    if (!candidate.mismatch) group.splice(group.indexOf(candidate), 1); // unreadable: neither kept nor replaced
  }
  for (const i of group) {
    if (i.mismatch)
      report.skipped.push({
        path: (i.copies[0] as CachedCopy).path,
        reason: `its content does not match its name (sha256 ${i.mismatch}) and no good copy exists; run \`hubcache verify --fix\``,
      });
  }
  return undefined;
}

/** Why a copy must not be touched now, or undefined (read-only: takes no lock). */
async function busy(copy: CachedCopy): Promise<string | undefined> {
  if (
    copy.guard.kind === 'ms-repo' &&
    (await msRepoLocked(copy.guard.root, copy.guard.v2Root, copy.guard.id).catch(() => false))
  ) {
    return 'a ModelScope download of this repo is running (its lock is held)';
  }
  if (copy.guard.kind === 'hf-blob' && (await lockHeld(copy.guard.lockPath))) return BLOB_BUSY;
  return undefined;
}

const BLOB_BUSY = 'a download is using this blob (its lock is held)';

/** Link to a temp name beside the copy, then rename over it; under the copy's lock, after re-checking it. */
async function replaceWithLink(keep: CachedInode, victim: CachedInode, copy: CachedCopy): Promise<string | undefined> {
  if (copy.guard.kind === 'ms-repo') {
    const why = await busy(copy);
    if (why) return why;
  }
  const lock = copy.guard.kind === 'hf-blob' ? await tryAcquireLock(copy.guard.lockPath).catch(() => null) : undefined;
  if (lock === null) return BLOB_BUSY;
  const keepPath = (keep.copies[0] as CachedCopy).path;
  try {
    const [now, kept] = await Promise.all([
      fs.lstat(copy.path).catch(() => undefined),
      fs.lstat(keepPath).catch(() => undefined),
    ]);
    if (
      !now?.isFile() ||
      now.ino !== victim.ino ||
      now.dev !== victim.dev ||
      now.size !== victim.size ||
      now.mtimeMs !== victim.mtimeMs
    )
      return 'it changed since it was looked at';
    if (!kept?.isFile() || kept.ino !== keep.ino || kept.dev !== keep.dev)
      return `the copy to keep (${keepPath}) changed since it was hashed`;
    await replaceAtomically(copy.path, (tmp) => fs.link(keepPath, tmp));
    return undefined;
  } catch (err) {
    return `could not link it: ${(err as Error).message}`;
  } finally {
    await lock?.release();
  }
}

/** Content known to be identical (by name or hash) but on different file systems. */
function crossDeviceDuplicates(inodes: readonly CachedInode[], minSize: number): { files: number; bytes: number } {
  const out = { files: 0, bytes: 0 };
  for (const group of sameContent(
    inodes.filter((i) => i.size >= Math.max(1, minSize)),
    true,
  )) {
    const devices = new Set(group.map((i) => i.dev));
    if (devices.size < 2) continue;
    out.files += devices.size - 1;
    out.bytes += (devices.size - 1) * (group[0] as CachedInode).size;
  }
  return out;
}
