// Deleting from a cache safely: a plan (what would go, and how many bytes that frees) built from
// a scan, then an executor that re-checks everything at the moment it deletes.
//
// Rules (spec hf-hub.md §6.2, plus the ones a shared, concurrently used cache needs):
//   - a revision: its snapshot folder, then the refs that still point to it, then the blobs no
//     remaining revision uses (so no dangling link is ever visible); all revisions → the folder;
//   - nothing outside the cache root: every path is resolved (parent realpath) and checked for
//     containment right before it is removed; symlinks are unlinked, never followed;
//   - a blob is deleted only while holding its `.locks/<repo>/<etag>.lock` (skipped when held),
//     and only if, under that lock, no snapshot links to it any more: a download links a blob
//     under the same lock, so a revision fetched concurrently keeps its blobs.
import fs from 'node:fs/promises';
import path from 'node:path';
import { UnsafePathError } from '../errors.js';
import { tryAcquireLock, type FileLock } from '../locks/flock.js';
import { isInside, readdirSafe, readlinkMany, walkFiles } from './fs-walk.js';
import { hfRepoLocked, lockHeld, revisionBlobLocks } from './in-use.js';
import type { CachedRepo, CachedRevision, CacheScan, WarningKind } from './model.js';
import { etagOfBlobName, HfRepoCache } from '../layouts/hf-cache.js';
import { hfBlobLockPath } from './scan-hf.js';
import { msRepoLocked, MS_TEMP_DIR } from './scan-modelscope.js';

/** Which repo, and the root it lives in (to find its locks again at execution time). */
interface RepoIdentity {
  repo: string;
  hub: CachedRepo['hub'];
  id: string;
  root: string;
}

export interface PlannedRepo extends RepoIdentity {
  path: string;
  size: number;
  /** Also removed with the repo: the SDK's staging folder, its dotted-name link (only if it still links to the repo). */
  extras: Array<{ path: string; onlyIfLinkTo?: string }>;
}

export interface PlannedRevision extends RepoIdentity {
  commit: string;
  refs: string[];
  /** The snapshot folder. */
  path: string;
  /** ref file → the commit it must still hold to be removed. */
  refFiles: Array<{ path: string; commit: string }>;
  /** Bytes this revision frees: the copies in its folder plus the blobs only it used. */
  size: number;
  /** Of which in the snapshot folder itself (real files rather than links). */
  folderBytes: number;
  /** Blob locks of its files: held = a download is working on this revision. */
  lockPaths: string[];
}

export interface PlannedBlob {
  repo: string;
  path: string;
  size: number;
  lockPath: string;
  /** The repo folder, whose snapshots are re-checked for links before the blob goes. */
  repoDir: string;
  reason: 'unreferenced' | 'orphan-blob';
}

export type FileReason = Extract<WarningKind, 'incomplete' | 'broken-link' | 'stale-temp'>;

export interface PlannedFile {
  repo?: string;
  path: string;
  size: number;
  reason: FileReason;
  lockPath?: string;
}

export interface Skipped {
  what: string;
  reason: string;
  /** Left because a download holds its lock (a retry after that download succeeds). */
  inUse?: boolean;
}

export interface DeletePlan {
  /** Every deletion must land inside one of these. */
  roots: string[];
  /** Base of modelscope ≥1.38's layout (where its locks live). */
  msV2Root: string;
  repos: PlannedRepo[];
  revisions: PlannedRevision[];
  blobs: PlannedBlob[];
  files: PlannedFile[];
  /** Folders removed if (and only if) they are empty by then, deepest first. */
  emptyDirs: string[];
  skipped: Skipped[];
  freedBytes: number;
}

export interface DeleteReport {
  plan: DeletePlan;
  /** Paths actually removed, in order. */
  deleted: string[];
  freedBytes: number;
  /** What was planned but left alone at execution time (in use, changed meanwhile...). */
  skipped: Skipped[];
  errors: Array<{ path: string; message: string }>;
  dryRun: boolean;
}

export function emptyPlan(scan: CacheScan): DeletePlan {
  const roots = [...new Set([scan.roots.hf, scan.roots.modelscope, scan.roots.modelscopeV2 ?? scan.roots.modelscope])];
  return {
    roots,
    msV2Root: scan.roots.modelscopeV2 ?? scan.roots.modelscope,
    repos: [],
    revisions: [],
    blobs: [],
    files: [],
    emptyDirs: [],
    skipped: [],
    freedBytes: 0,
  };
}

/**
 * Adds the deletion of `selected` revisions to `plan` (docs/protocols.md §HF deleting revisions): a repo whose revisions are all
 * selected goes as a whole; otherwise snapshot folders, their refs, and blobs left unused.
 */
export function planRevisions(plan: DeletePlan, repo: CachedRepo, selected: readonly CachedRevision[]): void {
  if (selected.length === 0) return;
  const chosen = new Set(selected.map((r) => r.commit));
  const identity: RepoIdentity = { repo: repo.key, hub: repo.hub, id: repo.id, root: repo.root };
  if (repo.revisions.every((r) => chosen.has(r.commit)) || repo.layout === 'ms-legacy') {
    plan.repos.push({ ...identity, path: repo.path, size: repo.size, extras: repoExtras(repo) });
    plan.freedBytes += repo.size;
    // A legacy ModelScope owner folder left empty goes too (the SDK recreates it when needed).
    if (repo.layout === 'ms-legacy') plan.emptyDirs.push(path.dirname(repo.path));
    return;
  }
  const remaining = new Set(
    repo.revisions.filter((r) => !chosen.has(r.commit)).flatMap((r) => r.files.map((f) => f.blobPath)),
  );
  const planned = new Set(plan.blobs.map((b) => b.path));
  for (const rev of selected) {
    let size = 0;
    let folderBytes = 0;
    for (const f of rev.files) {
      const bytes = f.outside ? 0 : f.size; // removing a link out frees nothing here
      if (isInside(rev.path, f.blobPath)) {
        folderBytes += bytes; // a copy inside the snapshot (no-symlink mode, ModelScope): goes with the folder
      } else if (!remaining.has(f.blobPath) && !planned.has(f.blobPath)) {
        planned.add(f.blobPath);
        const etag = etagOfBlobName(path.basename(f.blobPath));
        if (!etag) continue; // not a blob of this repo (a link elsewhere): never ours to delete
        plan.blobs.push({
          repo: repo.key,
          path: f.blobPath,
          size: bytes,
          lockPath: hfBlobLockPath(repo.root, path.basename(repo.path), etag),
          repoDir: repo.path,
          reason: 'unreferenced',
        });
        size += bytes;
      }
    }
    const refFiles =
      repo.layout === 'hf'
        ? Object.entries(repo.refs)
            .filter(([, c]) => c === rev.commit)
            .map(([name, c]) => ({ path: path.join(new HfRepoCache(repo.root, repo).refsDir(), name), commit: c }))
        : [];
    size += folderBytes;
    plan.revisions.push({
      ...identity,
      commit: rev.commit,
      refs: rev.refs,
      path: rev.path,
      refFiles,
      size,
      folderBytes,
      lockPaths: revisionBlobLocks(repo, rev),
    });
    plan.freedBytes += size;
  }
}

/** What goes with a whole ModelScope repo: the SDK's staging folder and the dotted-name link. */
function repoExtras(repo: CachedRepo): PlannedRepo['extras'] {
  if (repo.layout !== 'ms-legacy') return [];
  const [owner, name] = [repo.id.slice(0, repo.id.indexOf('/')), repo.id.slice(repo.id.indexOf('/') + 1)];
  const typeDir = path.dirname(path.dirname(repo.path));
  const extras: PlannedRepo['extras'] = [{ path: path.join(typeDir, MS_TEMP_DIR, owner, name) }];
  if (name.includes('.')) extras.push({ path: path.join(path.dirname(repo.path), name), onlyIfLinkTo: repo.path });
  return extras;
}

// -------------------------------------------------------------------------------------------
// Execution

export interface ExecuteOptions {
  signal?: AbortSignal;
}

export async function executePlan(plan: DeletePlan, opts: ExecuteOptions = {}): Promise<DeleteReport> {
  const ex = new Executor(plan, await realRoots(plan.roots));
  // Spec order: whole repos, snapshot folders, refs, then blobs — no dangling link is ever visible.
  for (const r of plan.repos) if (!opts.signal?.aborted) await ex.repo(r);
  const revisionsDone: PlannedRevision[] = [];
  for (const r of plan.revisions) if (!opts.signal?.aborted && (await ex.snapshot(r))) revisionsDone.push(r);
  for (const r of revisionsDone) for (const ref of r.refFiles) await ex.ref(ref);
  const byRepo = new Map<string, PlannedBlob[]>();
  for (const b of plan.blobs) byRepo.set(b.repoDir, [...(byRepo.get(b.repoDir) ?? []), b]);
  for (const [repoDir, blobs] of byRepo) if (!opts.signal?.aborted) await ex.blobs(repoDir, blobs);
  for (const f of plan.files) if (!opts.signal?.aborted) await ex.file(f);
  for (const d of plan.emptyDirs) await ex.emptyDir(d);
  return { plan, deleted: ex.deleted, freedBytes: ex.freed, skipped: ex.skipped, errors: ex.errors, dryRun: false };
}

/** The report of a dry run: everything planned, nothing touched. */
export function dryRunReport(plan: DeletePlan): DeleteReport {
  const deleted = [
    ...plan.repos.map((r) => r.path),
    ...plan.revisions.map((r) => r.path),
    ...plan.blobs.map((b) => b.path),
    ...plan.files.map((f) => f.path),
  ];
  return { plan, deleted, freedBytes: plan.freedBytes, skipped: [...plan.skipped], errors: [], dryRun: true };
}

async function realRoots(roots: readonly string[]): Promise<string[]> {
  return Promise.all(roots.map((r) => fs.realpath(r).catch(() => path.resolve(r))));
}

class Executor {
  readonly deleted: string[] = [];
  readonly skipped: Skipped[] = [];
  readonly errors: Array<{ path: string; message: string }> = [];
  freed = 0;

  constructor(
    private readonly plan: DeletePlan,
    private readonly roots: string[],
  ) {}

  async repo(r: PlannedRepo): Promise<void> {
    const inUse =
      r.hub === 'hf'
        ? await hfRepoLocked(r.root, path.basename(r.path))
        : await msRepoLocked(r.root, this.plan.msV2Root, r.id);
    if (inUse) {
      this.skipped.push({ what: r.repo, reason: 'a download of this repo is running (lock held)', inUse: true });
      return;
    }
    if (await this.remove(r.path)) this.freed += r.size;
    for (const extra of r.extras)
      await this.remove(extra.path, { quietIfMissing: true, onlyIfLinkTo: extra.onlyIfLinkTo });
  }

  /** The snapshot folder of a revision, unless a download is using one of its blobs right now. */
  async snapshot(r: PlannedRevision): Promise<boolean> {
    const held = await this.revisionLocked(r);
    if (held) {
      this.skipped.push({
        what: `${r.repo}@${r.commit}`,
        reason: 'in use (a lock on one of its files is held)',
        inUse: true,
      });
      return false;
    }
    const ok = await this.remove(r.path);
    if (ok) this.freed += r.folderBytes;
    return ok;
  }

  private async revisionLocked(r: PlannedRevision): Promise<boolean> {
    if (r.hub === 'modelscope') return msRepoLocked(r.root, this.plan.msV2Root, r.id);
    for (const lock of r.lockPaths) if (await lockHeld(lock)) return true;
    return false;
  }

  /** A ref is removed only if it still names the deleted commit (a download may have moved it). */
  async ref(ref: { path: string; commit: string }): Promise<void> {
    const now = await fs.readFile(ref.path, 'utf8').catch(() => undefined);
    if (now !== ref.commit) return;
    await this.remove(ref.path);
  }

  /**
   * Blobs of one repo: take each blob's lock (skip if held), then — under the locks — look at
   * every snapshot link of the repo again and keep any blob still linked.
   */
  async blobs(repoDir: string, blobs: PlannedBlob[]): Promise<void> {
    const locks: Array<{ blob: PlannedBlob; lock: FileLock }> = [];
    try {
      for (const b of blobs) {
        const lock = await tryAcquireLock(b.lockPath).catch(() => null);
        if (lock) locks.push({ blob: b, lock });
        else this.skipped.push({ what: b.path, reason: 'in use (its lock is held by a download)', inUse: true });
      }
      if (locks.length === 0) return;
      const linked = await linkedBlobs(repoDir);
      for (const { blob } of locks) {
        if (linked.has(blob.path)) {
          this.skipped.push({ what: blob.path, reason: 'linked again by a snapshot meanwhile' });
          continue;
        }
        if (await this.remove(blob.path)) this.freed += blob.size;
      }
    } finally {
      await Promise.all(locks.map((l) => l.lock.release()));
    }
  }

  async file(f: PlannedFile): Promise<void> {
    if (f.lockPath) {
      const lock = await tryAcquireLock(f.lockPath).catch(() => null);
      if (!lock) {
        this.skipped.push({ what: f.path, reason: 'in use (its lock is held)', inUse: true });
        return;
      }
      try {
        if (await this.remove(f.path)) this.freed += f.size;
      } finally {
        await lock.release();
      }
      return;
    }
    if (await this.remove(f.path)) this.freed += f.size;
  }

  async emptyDir(dir: string): Promise<void> {
    if ((await readdirSafe(dir)).length > 0) return;
    try {
      const target = await this.checked(dir);
      if (!target || (await fs.lstat(target)).isSymbolicLink()) return;
      await fs.rmdir(target);
      this.deleted.push(dir);
    } catch {
      /* filled meanwhile, gone, or not ours (outside the root): all fine to leave */
    }
  }

  /**
   * Removes one path after checking it resolves inside a cache root. Symlinks are unlinked (never
   * followed); folders are removed recursively, and recursion never follows links either.
   */
  private async remove(
    p: string,
    opts: { quietIfMissing?: boolean; onlyIfLinkTo?: string | undefined } = {},
  ): Promise<boolean> {
    let target: string | undefined;
    try {
      target = await this.checked(p);
      if (!target) {
        if (!opts.quietIfMissing) this.skipped.push({ what: p, reason: 'already gone' });
        return false;
      }
      const st = await fs.lstat(target);
      if (opts.onlyIfLinkTo !== undefined) {
        if (
          !st.isSymbolicLink() ||
          path.resolve(path.dirname(target), await fs.readlink(target)) !== path.resolve(opts.onlyIfLinkTo)
        )
          return false;
      }
      if (st.isDirectory()) await fs.rm(target, { recursive: true, force: true });
      else await fs.unlink(target);
      this.deleted.push(p);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (!opts.quietIfMissing) this.skipped.push({ what: p, reason: 'already gone' });
        return false;
      }
      this.errors.push({ path: p, message: (err as Error).message });
      return false;
    }
  }

  /** `p` with its parent folder resolved, if it exists and lies strictly inside a root; throws if outside. */
  private async checked(p: string): Promise<string | undefined> {
    const abs = path.resolve(p);
    let parent: string;
    try {
      parent = await fs.realpath(path.dirname(abs));
    } catch {
      return undefined;
    }
    const target = path.join(parent, path.basename(abs));
    if (!this.roots.some((root) => target !== root && isInside(root, target))) {
      throw new UnsafePathError(`Refusing to delete ${p}: it resolves to ${target}, outside the cache`);
    }
    return target;
  }
}

/** Every blob path that some snapshot of the repo links to, read fresh from disk. */
async function linkedBlobs(repoDir: string): Promise<Set<string>> {
  const layout = HfRepoCache.atFolder(repoDir);
  if (!layout) throw new UnsafePathError(`Not a cache repo folder (expected models--org--name): ${repoDir}`);
  const entries = (await walkFiles(layout.snapshotsDir())).filter((e) => e.kind === 'symlink');
  const targets = await readlinkMany(entries.map((e) => e.abs));
  const out = new Set<string>();
  entries.forEach((e, i) => {
    const t = targets[i];
    if (t !== undefined) out.add(path.resolve(path.dirname(e.abs), t));
  });
  return out;
}
