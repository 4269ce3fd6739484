// `gc`: keeps the cache under a size by removing the least recently used revisions (by the last
// access of their blobs), never pinned ones (`keep`) and never ones a download is using. The
// policy can be saved in `<cache>/.locks/hubcache/policy.json`, which Cache.download applies after
// every download.
import fs from 'node:fs/promises';
import { ManifestError, UsageError } from '../errors.js';
import type { RepoRefDefaults } from '../hubs/repo-ref.js';
import { writeFileAtomic } from '../util/fs.js';
import { emptyPlan, planRevisions, type DeletePlan } from './delete.js';
import { repoBusy, revisionInUse } from './in-use.js';
import type { CachedRepo, CachedRevision, CacheScan } from './model.js';
import { lastUsedMs } from './remove.js';
import { policyPath } from './paths.js';
import { pinnedRevisions, type ProjectPins } from './select.js';
import { parseSize } from './units.js';

export interface GcOptions {
  /** Target size in bytes: revisions are removed until the cache is at most this big. */
  maxSizeBytes: number;
  /** Repos (`org/name`) or revisions (`org/name@rev`) never removed. */
  keep?: string[];
  defaults?: Pick<RepoRefDefaults, 'hub' | 'type'>;
  /** What the project's hubcache.lock pins: never removed either, and named in the plan. */
  projectPins?: ProjectPins;
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** `<cache>/.locks/hubcache/policy.json`. Sizes as users write them (`200G`). */
export interface CachePolicy {
  maxSize: string;
  keep?: string[];
}

export { policyPath };

export async function readPolicy(root: string): Promise<CachePolicy | undefined> {
  let raw: string;
  try {
    raw = await fs.readFile(policyPath(root), 'utf8');
  } catch {
    return undefined;
  }
  let j: unknown;
  try {
    j = JSON.parse(raw);
  } catch {
    throw new ManifestError(`${policyPath(root)} is not valid JSON`, {
      hint: 'Fix or delete it, or write it again with `hubcache gc --max-size 200G --save-policy`.',
    });
  }
  const p = j as Partial<CachePolicy>;
  if (
    typeof p?.maxSize !== 'string' ||
    (p.keep !== undefined && !(Array.isArray(p.keep) && p.keep.every((k) => typeof k === 'string')))
  ) {
    throw new ManifestError(`${policyPath(root)} must look like {"maxSize": "200G", "keep": ["org/name"]}`);
  }
  parseSize(p.maxSize); // reject a bad size now, not after the next download
  return { maxSize: p.maxSize, ...(p.keep ? { keep: p.keep } : {}) };
}

export async function savePolicy(root: string, policy: CachePolicy): Promise<string> {
  parseSize(policy.maxSize);
  const p = policyPath(root);
  await writeFileAtomic(p, `${JSON.stringify(policy, null, 2)}\n`);
  return p;
}

export async function planGc(scan: CacheScan, opts: GcOptions): Promise<DeletePlan> {
  if (!Number.isFinite(opts.maxSizeBytes) || opts.maxSizeBytes < 0)
    throw new UsageError(`Bad maximum size: ${opts.maxSizeBytes}`);
  const plan = emptyPlan(scan);
  const pinned = pinnedRevisions(scan, opts.keep ?? [], opts.defaults);
  const byProject = opts.projectPins ? pinnedRevisions(scan, opts.projectPins.targets) : new Set<CachedRevision>();
  // Blob reference counts: removing a revision frees only blobs no other revision uses.
  const refs = new Map<string, number>();
  let total = 0;
  for (const repo of scan.repos) {
    for (const rev of repo.revisions) {
      for (const b of distinctBlobPaths(rev)) {
        const n = refs.get(b.path) ?? 0;
        if (n === 0) total += b.size;
        refs.set(b.path, n + 1);
      }
    }
  }
  if (total <= opts.maxSizeBytes) return plan;
  for (const repo of scan.repos) {
    for (const rev of repo.revisions) {
      if (!byProject.has(rev)) continue;
      pinned.add(rev);
      plan.skipped.push({ what: `${repo.key}@${rev.commit}`, reason: `kept: pinned by ${opts.projectPins!.label}` });
    }
  }

  const candidates: Array<{ repo: CachedRepo; rev: CachedRevision }> = [];
  for (const repo of scan.repos) {
    const free = repo.revisions.filter((r) => !pinned.has(r));
    if (free.length === 0) continue;
    if (await repoBusy(repo, scan.warnings, plan.msV2Root)) {
      plan.skipped.push({ what: repo.key, reason: 'a download of this repo is running' });
      continue;
    }
    for (const rev of free) {
      if (await revisionInUse(repo, rev, plan.msV2Root))
        plan.skipped.push({ what: `${repo.key}@${rev.commit}`, reason: 'in use (a lock is held)' });
      else candidates.push({ repo, rev });
    }
  }
  candidates.sort((a, b) => lastUsedMs(a.rev) - lastUsedMs(b.rev) || a.rev.lastModifiedMs - b.rev.lastModifiedMs);

  const chosen = new Map<CachedRepo, CachedRevision[]>();
  for (const { repo, rev } of candidates) {
    if (total <= opts.maxSizeBytes) break;
    chosen.set(repo, [...(chosen.get(repo) ?? []), rev]);
    for (const b of distinctBlobPaths(rev)) {
      const n = (refs.get(b.path) ?? 1) - 1;
      refs.set(b.path, n);
      if (n === 0) total -= b.size;
    }
  }
  for (const [repo, revs] of chosen) planRevisions(plan, repo, revs);
  if (total > opts.maxSizeBytes) {
    plan.skipped.push({
      what: 'cache',
      reason: `still ${total} bytes after removing every revision it may remove (pinned or in use ones stay)`,
    });
  }
  return plan;
}

/** A revision's distinct blobs with the bytes they hold in the cache (a link out holds none). */
function distinctBlobPaths(rev: CachedRevision): Array<{ path: string; size: number }> {
  const seen = new Map<string, number>();
  for (const f of rev.files) seen.set(f.blobPath, f.outside ? 0 : f.size);
  return [...seen].map(([p, size]) => ({ path: p, size }));
}
