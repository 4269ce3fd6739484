// `status` (alias `outdated`): is what the cache holds still what the hub serves?
//   HF: for each ref (main, a tag...), the cached commit vs the commit the hub resolves it to now
//       (repo info), with dates; with several endpoints (the hub and a mirror), which one lags.
//   ModelScope: the per-file revisions in `.msc` (legacy) or the file sizes (≥1.38 layout, which
//       keeps no revisions) vs the hub's file listing of that revision.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, HubcacheError } from '../errors.js';
import type { RepoRefDefaults } from '../hubs/repo-ref.js';
import type { EndpointsOption, HubName, RemoteFile } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { mscEntryMatches } from '../layouts/modelscope-cache.js';
import { runPool } from '../util/pool.js';
import type { CareContext } from './context.js';
import type { CachedRepo, CachedRevision, CacheScan } from './model.js';
import { requireTargets } from './select.js';

export interface StatusOptions {
  targets?: string[];
  defaults?: Pick<RepoRefDefaults, 'hub' | 'type'>;
  /** Endpoints to compare, per hub (default: the cache's own); a function gets the hubs of the refs checked. */
  endpoints?: EndpointsOption;
  signal?: AbortSignal;
}

type Resolved = Omit<StatusOptions, 'endpoints'> & { endpoints?: Partial<Record<HubName, string[]>> };

export interface RemoteState {
  endpoint: string;
  /** HF: the commit the ref resolves to there. ModelScope: the revision name. */
  commit?: string;
  dateMs?: number;
  /** ModelScope: cached files whose content differs there (changed or gone). */
  changedFiles?: string[];
  error?: string;
  /** With `error`: the exit code of that failure (17 unreachable, 16 offline, 10 repo not found...). */
  exitCode?: number;
}

export type RefState = 'up-to-date' | 'outdated' | 'unknown';

export interface RefStatus {
  repo: string;
  hub: CachedRepo['hub'];
  ref: string;
  local: { commit: string; dateMs: number };
  remotes: RemoteState[];
  /** Against the newest endpoint (the only one, usually). */
  state: RefState;
  /** Endpoints that serve an older commit than another endpoint. */
  laggingEndpoints: string[];
}

export interface StatusReport {
  refs: RefStatus[];
  outdated: number;
  unknown: number;
  /** Refs where some endpoint lags another. */
  lagging: number;
}

export async function status(ctx: CareContext, scan: CacheScan, opts: StatusOptions = {}): Promise<StatusReport> {
  const selections = opts.targets?.length
    ? requireTargets(scan, opts.targets, opts.defaults)
    : scan.repos.map((repo) => ({ repo, revisions: repo.revisions }));
  const jobs: Array<{ repo: CachedRepo; ref: string; rev: CachedRevision }> = [];
  for (const { repo, revisions } of selections) {
    for (const rev of revisions) for (const ref of rev.refs) jobs.push({ repo, ref, rev });
  }
  const hubs = new Set(jobs.map((j) => j.repo.hub));
  const endpoints = typeof opts.endpoints === 'function' ? opts.endpoints(hubs) : opts.endpoints;
  const o: Resolved = { ...opts, endpoints };
  const check = (j: (typeof jobs)[number]): Promise<RefStatus> =>
    (j.repo.hub === 'hf' ? hfRefStatus : msRefStatus)(ctx, j.repo, j.ref, j.rev, o);
  const refs = await runPool(jobs, 8, check);
  return {
    refs,
    outdated: refs.filter((r) => r.state === 'outdated').length,
    unknown: refs.filter((r) => r.state === 'unknown').length,
    lagging: refs.filter((r) => r.laggingEndpoints.length > 0).length,
  };
}

function endpointsFor(ctx: CareContext, hub: CachedRepo['hub'], opts: Resolved): string[] {
  const list = hub === 'hf' ? opts.endpoints?.hf : opts.endpoints?.modelscope;
  return list && list.length > 0 ? list : [hub === 'hf' ? ctx.hf.endpoint : ctx.modelscope.endpoint];
}

type RefCheck = (
  ctx: CareContext,
  repo: CachedRepo,
  ref: string,
  rev: CachedRevision,
  opts: Resolved,
) => Promise<RefStatus>;

const hfRefStatus: RefCheck = async (ctx, repo, ref, rev, opts) => {
  const refFile = await fs
    .stat(path.join(new HfRepoCache(repo.root, repo).refsDir(), ...ref.split('/')))
    .catch(() => undefined);
  const local = { commit: rev.commit, dateMs: refFile?.mtimeMs ?? rev.lastModifiedMs };
  const remotes = await Promise.all(
    endpointsFor(ctx, 'hf', opts).map(async (endpoint, _i, list): Promise<RemoteState> => {
      if (ctx.offline) return { endpoint, error: 'offline', exitCode: ExitCode.offlineMiss };
      try {
        const info = await ctx.client('hf', { endpoint, primary: list[0] }).repoInfo(repo, ref, opts.signal);
        const out: RemoteState = { endpoint, commit: info.sha };
        const date = info.lastModified ? Date.parse(info.lastModified) : NaN;
        if (Number.isFinite(date)) out.dateMs = date;
        return out;
      } catch (err) {
        return failed(endpoint, err);
      }
    }),
  );
  const answered = remotes.filter((r) => r.commit !== undefined);
  // The newest answer wins: by date when endpoints give one, else the first endpoint.
  const newest = [...answered].sort((a, b) => (b.dateMs ?? 0) - (a.dateMs ?? 0))[0];
  const state: RefState = !newest ? 'unknown' : newest.commit === local.commit ? 'up-to-date' : 'outdated';
  const laggingEndpoints = newest ? answered.filter((r) => r.commit !== newest.commit).map((r) => r.endpoint) : [];
  return { repo: repo.key, hub: 'hf', ref, local, remotes, state, laggingEndpoints };
};

const msRefStatus: RefCheck = async (ctx, repo, ref, rev, opts) => {
  const local = { commit: rev.commit, dateMs: rev.lastModifiedMs };
  const remotes = await Promise.all(
    endpointsFor(ctx, 'modelscope', opts).map(async (endpoint, _i, list): Promise<RemoteState> => {
      if (ctx.offline) return { endpoint, error: 'offline', exitCode: ExitCode.offlineMiss };
      try {
        const client = ctx.client('modelscope', { endpoint, primary: list[0] });
        const snap = await client.snapshot(repo, ref, opts.signal);
        const out: RemoteState = { endpoint, commit: snap.commit, changedFiles: changedFiles(rev, snap.files) };
        if (snap.createdAt !== undefined) out.dateMs = snap.createdAt * 1000;
        return out;
      } catch (err) {
        return failed(endpoint, err);
      }
    }),
  );
  const primary = remotes.find((r) => r.changedFiles !== undefined);
  const state: RefState = !primary ? 'unknown' : (primary.changedFiles?.length ?? 0) > 0 ? 'outdated' : 'up-to-date';
  // Without commit dates the endpoints cannot be ordered: one that differs from the primary lags.
  const laggingEndpoints = primary
    ? remotes
        .filter((r) => r.changedFiles !== undefined && r !== primary && !sameList(r.changedFiles, primary.changedFiles))
        .map((r) => r.endpoint)
    : [];
  return { repo: repo.key, hub: 'modelscope', ref, local, remotes, state, laggingEndpoints };
};

function failed(endpoint: string, err: unknown): RemoteState {
  const exitCode = err instanceof HubcacheError ? err.exitCode : ExitCode.generic;
  return { endpoint, error: (err as Error).message, exitCode };
}

/** Cached files whose remote version differs: by per-file revision (legacy) or size (≥1.38). */
function changedFiles(rev: CachedRevision, listing: readonly RemoteFile[]): string[] {
  const remote = new Map(listing.map((f) => [f.path, f]));
  const out: string[] = [];
  for (const f of rev.files) {
    const r = remote.get(f.path);
    if (!r) out.push(f.path);
    else if (
      f.msRevision !== undefined ? !mscEntryMatches({ Path: f.path, Revision: f.msRevision }, r) : r.size !== f.size
    )
      out.push(f.path);
  }
  return out;
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return (a ?? []).join('\0') === (b ?? []).join('\0');
}
