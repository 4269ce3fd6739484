// `rm`: removes repos or revisions named by the user (REPO, REPO@REV, a commit hash), optionally
// narrowed to revisions unused for a while (`--older-than`) or to repo ids matching a glob.
import { UsageError } from '../errors.js';
import type { RepoRefDefaults } from '../hubs/repo-ref.js';
import { emptyPlan, planRevisions, type DeletePlan } from './delete.js';
import type { CachedRevision, CacheScan } from './model.js';
import { matchesPattern, selectTargets, type Selection } from './select.js';

export interface RemoveOptions {
  /** `org/name`, `org/name@rev`, `modelscope:org/name`, `datasets/org/name`, or a 40-hex commit. */
  targets?: string[];
  /** Only revisions neither read nor written for this long (ms). */
  olderThanMs?: number;
  /** Only repos whose id matches this glob (`org/*`). */
  pattern?: string;
  /** Hub / type for targets written without a prefix. */
  defaults?: Pick<RepoRefDefaults, 'hub' | 'type'>;
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** When a revision was last used: the newest of its blobs' access and modification times. */
export function lastUsedMs(rev: CachedRevision): number {
  return Math.max(rev.lastAccessedMs, rev.lastModifiedMs);
}

export function planRemove(scan: CacheScan, opts: RemoveOptions, nowMs = Date.now()): DeletePlan {
  const targets = opts.targets ?? [];
  if (targets.length === 0 && opts.pattern === undefined && opts.olderThanMs === undefined) {
    throw new UsageError('Nothing to remove: name a repo (org/name[@revision]), or use --pattern / --older-than', {
      hint: 'See `hubcache ls` for what is cached; `hubcache rm org/name --dry-run` shows what would go.',
    });
  }
  const plan = emptyPlan(scan);
  let selections: Selection[];
  if (targets.length > 0) {
    const res = selectTargets(scan, targets, opts.defaults);
    if (res.selections.length === 0) {
      throw new UsageError(`Not in the cache: ${res.missing.join(', ')}`, {
        hint: 'Run `hubcache ls` to see what is cached.',
      });
    }
    for (const m of res.missing) plan.skipped.push({ what: m, reason: 'not in the cache' });
    selections = res.selections;
  } else {
    selections = scan.repos.map((repo) => ({ repo, revisions: repo.revisions }));
  }
  for (const { repo, revisions } of selections) {
    if (opts.pattern !== undefined && !matchesPattern(repo, opts.pattern)) continue;
    const chosen =
      opts.olderThanMs === undefined ? revisions : revisions.filter((r) => nowMs - lastUsedMs(r) > opts.olderThanMs!);
    // A repo named without revisions but holding none (only partials, say) still goes as a whole.
    if (chosen.length === 0 && repo.revisions.length === 0 && opts.olderThanMs === undefined) {
      plan.repos.push({
        repo: repo.key,
        hub: repo.hub,
        id: repo.id,
        root: repo.root,
        path: repo.path,
        size: 0,
        extras: [],
      });
      continue;
    }
    planRevisions(plan, repo, chosen);
  }
  return plan;
}
