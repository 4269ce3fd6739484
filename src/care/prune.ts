// `prune`: removes what no one can use any more — detached revisions (no ref points to them, as
// `hf cache prune`), partial downloads older than a limit that no live process is writing,
// broken links, orphan blobs, leftover temp files, and folders left empty.
import path from 'node:path';
import { parseRepoRef } from '../hubs/repo-ref.js';
import { emptyPlan, planRevisions, type DeletePlan, type FileReason } from './delete.js';
import { isInside, walkDirs } from './fs-walk.js';
import { partialInUse, revisionInUse } from './in-use.js';
import type { CachedRevision, CacheScan, CacheWarning } from './model.js';
import { pinnedRevisions, type ProjectPins } from './select.js';
import { etagOfBlobName } from '../layouts/hf-cache.js';
import { hfBlobLockPath } from './scan-hf.js';
import { msRepoLocked, MS_TEMP_DIR } from './scan-modelscope.js';
import { MS_PARTIAL_DIR } from '../layouts/modelscope-cache.js';

export const DEFAULT_INCOMPLETE_AGE_MS = 24 * 3600 * 1000;
const FRESH_BLOB_MS = 60_000;

export interface PruneOptions {
  /** Partial downloads (and temp files) younger than this are kept. Default: one day. */
  incompleteOlderThanMs?: number;
  /** What the project's hubcache.lock pins: kept even when detached, and named in the plan. */
  projectPins?: ProjectPins;
  dryRun?: boolean;
  signal?: AbortSignal;
}

export async function planPrune(scan: CacheScan, opts: PruneOptions = {}, nowMs = Date.now()): Promise<DeletePlan> {
  const plan = emptyPlan(scan);
  const maxAge = opts.incompleteOlderThanMs ?? DEFAULT_INCOMPLETE_AGE_MS;
  const pinned = opts.projectPins ? pinnedRevisions(scan, opts.projectPins.targets) : new Set<CachedRevision>();

  // 1. detached revisions (HF only: a ModelScope revision folder is its own ref)
  for (const repo of scan.repos) {
    if (repo.layout !== 'hf') continue;
    const detached = [];
    for (const rev of repo.revisions.filter((r) => r.refs.length === 0)) {
      const what = `${repo.key}@${rev.commit}`;
      if (pinned.has(rev)) plan.skipped.push({ what, reason: `kept: pinned by ${opts.projectPins!.label}` });
      else if (await revisionInUse(repo, rev, plan.msV2Root))
        plan.skipped.push({ what, reason: 'in use (a lock on one of its files is held)' });
      else detached.push(rev);
    }
    planRevisions(plan, repo, detached);
  }
  const gone = [...plan.repos.map((r) => r.path), ...plan.revisions.map((r) => r.path)];
  const alreadyGoing = (p: string): boolean => gone.some((g) => isInside(g, p));

  // 2. files named by the scan's warnings
  for (const w of scan.warnings) {
    if (alreadyGoing(w.path)) continue;
    if (w.kind === 'orphan-blob') {
      // A blob renamed into place a moment ago may be about to be linked by a writer without locks.
      if (nowMs - (w.lastModifiedMs ?? 0) < FRESH_BLOB_MS) continue;
      const etag = etagOfBlobName(path.basename(w.path));
      const repo = scan.repos.find((r) => r.key === w.repo);
      if (!etag || !repo || !w.lockPath) continue;
      plan.blobs.push({
        repo: repo.key,
        path: w.path,
        size: w.size ?? 0,
        lockPath: hfBlobLockPath(repo.root, path.basename(repo.path), etag),
        repoDir: repo.path,
        reason: 'orphan-blob',
      });
      plan.freedBytes += w.size ?? 0;
    } else if (w.kind === 'broken-link') {
      addFile(plan, w, 'broken-link');
    } else if (w.kind === 'incomplete' || w.kind === 'stale-temp') {
      if (nowMs - (w.lastModifiedMs ?? 0) <= maxAge) continue;
      if (await partialBusy(scan, w, nowMs)) {
        plan.skipped.push({ what: w.path, reason: 'a download is still writing it' });
        continue;
      }
      addFile(plan, w, w.kind);
    }
  }

  // 3. folders left empty: inside snapshots, the partial/staging folders, ModelScope owner folders
  plan.emptyDirs.push(...(await emptyDirCandidates(scan)));
  return plan;
}

function addFile(plan: DeletePlan, w: CacheWarning, reason: FileReason): void {
  plan.files.push({
    ...(w.repo ? { repo: w.repo } : {}),
    path: w.path,
    size: w.size ?? 0,
    reason,
    ...(w.lockPath ? { lockPath: w.lockPath } : {}),
  });
  plan.freedBytes += w.size ?? 0;
}

/** Partials of a ModelScope repo are also in use while the repo's lock is held. */
async function partialBusy(scan: CacheScan, w: CacheWarning, nowMs: number): Promise<boolean> {
  if (await partialInUse(w, nowMs)) return true;
  if (!w.repo?.startsWith('modelscope:')) return false;
  const id = parseRepoRef(w.repo).id;
  return msRepoLocked(scan.roots.modelscope, scan.roots.modelscopeV2 ?? scan.roots.modelscope, id);
}

async function emptyDirCandidates(scan: CacheScan): Promise<string[]> {
  const out: string[] = [];
  for (const repo of scan.repos) {
    // Sub-folders of snapshots, never a snapshot folder itself (an empty revision is still a revision).
    for (const rev of repo.revisions) if (rev.path !== repo.path) out.push(...(await walkDirs(rev.path)));
    if (repo.layout === 'ms-legacy')
      out.push(...(await walkDirs(path.join(repo.path, MS_PARTIAL_DIR))), path.join(repo.path, MS_PARTIAL_DIR));
    if (repo.layout === 'ms-snapshots') out.push(path.join(repo.path, MS_PARTIAL_DIR));
  }
  const msRoot = scan.roots.modelscope;
  for (const typeDir of ['models', 'datasets']) {
    const temp = path.join(msRoot, typeDir, MS_TEMP_DIR);
    out.push(...(await walkDirs(temp)), temp);
  }
  return out;
}
