// The care verbs as one-call operations (scan, then plan, then execute unless dry-run), so the
// Cache methods and the CLI commands stay one-liners.
import { formatRepoRef } from '../hubs/repo-ref.js';
import type { DownloadResult } from '../download/types.js';
import type { CareContext } from './context.js';
import { dryRunReport, executePlan, type DeletePlan, type DeleteReport } from './delete.js';
import { planGc, readPolicy, type GcOptions } from './gc.js';
import type { CacheScan } from './model.js';
import { planPrune, type PruneOptions } from './prune.js';
import { planRemove, type RemoveOptions } from './remove.js';
import { scan } from './scan.js';
import { parseSize } from './units.js';

export async function runDelete(
  ctx: CareContext,
  planner: (scan: CacheScan) => DeletePlan | Promise<DeletePlan>,
  opts: { dryRun?: boolean; signal?: AbortSignal },
): Promise<DeleteReport> {
  const plan = await planner(await scan(ctx.roots));
  return opts.dryRun ? dryRunReport(plan) : executePlan(plan, opts.signal ? { signal: opts.signal } : {});
}

export function removeRevisions(ctx: CareContext, opts: RemoveOptions): Promise<DeleteReport> {
  return runDelete(ctx, (s) => planRemove(s, opts), opts);
}

export function pruneCache(ctx: CareContext, opts: PruneOptions = {}): Promise<DeleteReport> {
  return runDelete(ctx, (s) => planPrune(s, opts), opts);
}

export function gcCache(ctx: CareContext, opts: GcOptions): Promise<DeleteReport> {
  return runDelete(ctx, (s) => planGc(s, opts), opts);
}

/**
 * After a download: if `<cache>/.locks/hubcache/policy.json` sets a maximum size, run gc with it,
 * pinning the revision just downloaded (it is what the caller is about to use).
 */
export async function applyCachePolicy(
  ctx: CareContext,
  downloaded: DownloadResult | undefined,
): Promise<DeleteReport | undefined> {
  const policy = await readPolicy(ctx.roots.hf);
  if (!policy) return undefined;
  const keep = [...(policy.keep ?? [])];
  if (downloaded) {
    const r = downloaded.repo;
    // HF revisions are commits; a ModelScope repo is pinned whole (its layout has no commit ids).
    keep.push(
      r.hub === 'hf'
        ? formatRepoRef({ hub: r.hub, type: r.type, id: r.id, revision: downloaded.commit })
        : formatRepoRef({ hub: r.hub, type: r.type, id: r.id }),
    );
  }
  return gcCache(ctx, { maxSizeBytes: parseSize(policy.maxSize), keep });
}
