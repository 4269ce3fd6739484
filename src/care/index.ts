// Cache care: see what is cached, check it, refresh it, clean it (re-exports only).
export { scan, HUBCACHE_DIR, type CacheRoots } from './scan.js';
export type {
  CacheScan,
  CachedRepo,
  CachedRevision,
  CachedFile,
  CacheWarning,
  WarningKind,
  RepoLayout,
} from './model.js';
export type { CareContext, HubAccess } from './context.js';
export { selectTargets, findRevision, matchesPattern, type Selection, type SelectResult } from './select.js';
export {
  verify,
  type VerifyOptions,
  type VerifyReport,
  type VerifyEvent,
  type FileCheck,
  type Verdict,
} from './verify.js';
export { listingDiffs, verifyLocalDir, type ListingDiff, type LocalDirVerifyReport } from './verify-listing.js';
export {
  status,
  type StatusOptions,
  type StatusReport,
  type RefStatus,
  type RemoteState,
  type RefState,
} from './status.js';
export { planRemove, lastUsedMs, type RemoveOptions } from './remove.js';
export { planPrune, DEFAULT_INCOMPLETE_AGE_MS, type PruneOptions } from './prune.js';
export { planGc, readPolicy, savePolicy, policyPath, type GcOptions, type CachePolicy } from './gc.js';
export { executePlan, dryRunReport, type DeletePlan, type DeleteReport, type Skipped } from './delete.js';
export { removeRevisions, pruneCache, gcCache, applyCachePolicy } from './care.js';
export { hashFiles, type HashJob, type HashResult, type HashAlgorithm } from './hash-pool.js';
export { parseSize, parseDuration, formatAge } from './units.js';
export { listRows, compileFilter, compileSort, type ListRow, type ListOptions, type SortKey } from './list.js';
