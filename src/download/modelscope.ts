// ModelScope download: resolve → plan → transfer → commit into the legacy layout (default), the
// ≥1.38 snapshot layout (`msLayout: 'v2'`) or a local dir, sharing the transfer engine and the
// file filter with the HF flow. What counts as "cached" follows the SDK (docs/protocols.md §ModelScope cached-file rule) plus a size
// check; a file found without an index entry (copied by hand, or written by modelscope ≥1.38) is
// adopted when its sha256 matches, instead of being downloaded again.
import { createHash } from 'node:crypto';
import type { CacheRoots } from '../care/scan.js';
import { EntryNotFoundError, NetworkError, OfflineMissError, ServerError } from '../errors.js';
import { ModelScopeClient } from '../hubs/modelscope.js';
import { formatRepoRef } from '../hubs/repo-ref.js';
import { expectedContentOf, type RemoteFile, type RepoRef, type Snapshot } from '../hubs/types.js';
import {
  fileMatches,
  ModelScopeCache,
  type MsLegacyDir,
  type MsSnapshotDir,
  type MsLayout,
} from '../layouts/modelscope-cache.js';
import type { PlaceMethod, PlaceMode } from '../layouts/place.js';
import { acquireLock, type AcquireLockOptions } from '../locks/flock.js';
import type { TransferEngine } from '../transfer/engine.js';
import type { TransferRequest } from '../transfer/types.js';
import { assertSafeRepoPath } from '../util/safe-path.js';
import { mkdirp, writeFileAtomic } from '../util/fs.js';
import { runPool } from '../util/pool.js';
import { assertPatternsSelect, emitterFor, materializeAll, planEvent, transferRequest, type Emit } from './common.js';
import { CrossHubIndex, planReuse } from './cross-hub.js';
import { stagedPath } from './staging.js';
import { selectFiles } from './hf.js';
import type { DownloadOptions, DownloadResult, FileStatus, PlannedFile } from './types.js';

export interface MsDownloadContext {
  /** Cache root with MODELSCOPE_CACHE semantics (models under `<cacheDir>/models/`). */
  cacheDir: string;
  /** Base of the ≥1.38 layout (default: cacheDir). */
  v2Dir?: string | undefined;
  endpoint: string;
  token?: string | undefined;
  offline: boolean;
  engine: TransferEngine;
  /** The Cache's client for this hub (its pool); default: one for endpoint and token. */
  client?: ModelScopeClient | undefined;
  /** Both layouts' roots: files whose sha256 is already an HF blob are linked from it, not fetched. */
  crossHubRoots?: CacheRoots | undefined;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** ModelScope's CLI splits `--include a,b c` on commas; library callers get the same. */
export function splitPatterns(list: readonly string[] | undefined): string[] {
  return (list ?? [])
    .flatMap((p) => p.split(','))
    .map((p) => p.trim())
    .filter(Boolean);
}

/** Where the files go: one of the SDK layouts, behind one small interface (also used by `import`). */
export interface MsTarget {
  readonly layout: MsLayout | 'local-dir';
  /** What the download returns: the model dir, the snapshot dir or the local dir. */
  readonly dir: string;
  readonly partialDir: string;
  filePath(repoPath: string): string;
  /** Puts the bytes of `from` at the repo path, atomically (the layout's write API). */
  addFile(repoPath: string, from: string, mode: PlaceMode): Promise<PlaceMethod>;
  /** Valid here already? `adopt` = present and verified, but not yet in the index. */
  check(f: RemoteFile, fresh: boolean, signal?: AbortSignal): Promise<'cached' | 'adopt' | 'absent'>;
  record(f: RemoteFile, lockOpts: AcquireLockOptions): Promise<void>;
  init(): Promise<void>;
  finish(snap: Snapshot, wholeSnapshot: boolean): Promise<void>;
  /** Files on disk, for offline use. */
  cachedFiles(): Promise<{ path: string; size: number }[]>;
}

/** The folder part of a target: where repo paths are and how bytes get there (the layout's own). */
abstract class FolderTarget<D extends MsLegacyDir | MsSnapshotDir> {
  constructor(protected readonly d: D) {}
  get dir(): string {
    return this.d.dir;
  }
  get partialDir(): string {
    return this.d.partialDir;
  }
  filePath(p: string): string {
    return this.d.filePath(p);
  }
  addFile(p: string, from: string, mode: PlaceMode): Promise<PlaceMethod> {
    return this.d.addFile(p, from, mode);
  }
}

class LegacyTarget extends FolderTarget<MsLegacyDir> implements MsTarget {
  private index: Awaited<ReturnType<MsLegacyDir['readIndex']>> | undefined;
  constructor(
    readonly layout: 'v1' | 'local-dir',
    d: MsLegacyDir,
    private readonly cache: ModelScopeCache,
    private readonly repoId: string,
  ) {
    super(d);
  }
  async check(f: RemoteFile, fresh: boolean, signal?: AbortSignal): Promise<'cached' | 'adopt' | 'absent'> {
    if (fresh || !this.index) this.index = await this.d.readIndex();
    if (await this.d.isCached(f, this.index, { signal })) return 'cached';
    // Not indexed (or indexed at another per-file revision): keep it if the bytes are right.
    return f.sha256 && (await fileMatches(this.filePath(f.path), f, true, signal)) ? 'adopt' : 'absent';
  }
  record(f: RemoteFile, lockOpts: AcquireLockOptions): Promise<void> {
    return this.d.record([f], lockOpts);
  }
  init(): Promise<void> {
    return this.d.writeMdl();
  }
  async finish(snap: Snapshot, wholeSnapshot: boolean): Promise<void> {
    // Like the SDK: `.mv` only after a snapshot-style download, the dotted-name link only in the cache.
    if (wholeSnapshot) await this.d.writeMv(snap.commit, snap.createdAt);
    if (this.layout === 'v1') await this.cache.ensureDottedSymlink(this.repoId);
    await this.d.cleanupPartials();
  }
  async cachedFiles(): Promise<{ path: string; size: number }[]> {
    return (await this.d.indexedFiles()).map(({ path: p, size }) => ({ path: p, size }));
  }
}

class SnapshotTarget extends FolderTarget<MsSnapshotDir> implements MsTarget {
  readonly layout = 'v2' as const;
  /** No index in this layout: like modelscope ≥1.38, a file counts when its bytes match. */
  async check(f: RemoteFile, _fresh: boolean, signal?: AbortSignal): Promise<'cached' | 'adopt' | 'absent'> {
    return (await fileMatches(this.filePath(f.path), f, true, signal)) ? 'cached' : 'absent';
  }
  async record(): Promise<void> {}
  async init(): Promise<void> {}
  async finish(): Promise<void> {
    await mkdirp(this.d.dir);
    await this.d.cleanupPartials();
  }
  cachedFiles(): Promise<{ path: string; size: number }[]> {
    return this.d.files();
  }
}

export function msTargetFor(
  cache: ModelScopeCache,
  repo: RepoRef,
  revision: string,
  opts: Pick<DownloadOptions, 'localDir' | 'msLayout'>,
): MsTarget {
  if (opts.localDir) return new LegacyTarget('local-dir', cache.localDir(opts.localDir, repo.id), cache, repo.id);
  if (opts.msLayout === 'v2') return new SnapshotTarget(cache.v2Snapshot(repo.id, revision));
  return new LegacyTarget('v1', cache.legacy(repo.id), cache, repo.id);
}

/** The hub could not be reached at all (as opposed to answering "no"). */
function isUnreachable(err: unknown): boolean {
  return err instanceof NetworkError || (err instanceof ServerError && (err.status ?? 0) >= 500);
}

export async function downloadModelScope(
  ctx: MsDownloadContext,
  repo: RepoRef,
  opts: DownloadOptions,
): Promise<DownloadResult> {
  const started = Date.now();
  const emit = emitterFor(opts);
  const revision = repo.revision ?? 'master';
  const cache = new ModelScopeCache(ctx.cacheDir, ctx.v2Dir ?? ctx.cacheDir);
  const target = msTargetFor(cache, repo, revision, opts);
  const filter = { files: opts.files, include: splitPatterns(opts.include), exclude: splitPatterns(opts.exclude) };
  const client = ctx.client ?? new ModelScopeClient({ endpoint: ctx.endpoint, token: ctx.token });

  // 1. resolve
  let snap: Snapshot | undefined;
  if (!(opts.offline ?? ctx.offline)) {
    try {
      snap = await client.snapshot(repo, revision, opts.signal);
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      emit({ type: 'warning', message: `ModelScope unreachable (${(err as Error).message}); using the cache only` });
    }
  }
  if (!snap)
    return serveFromCache(cache, target, repo, revision, filter, opts, emit, started, !(opts.offline ?? ctx.offline));

  // 2. plan
  const selected = selectFiles(snap.files, filter);
  assertPatternsSelect(selected.length, snap.files.length, filter, `${formatRepoRef(repo)} at ${snap.commit}`);
  const missingNames = (opts.files ?? []).filter((w) => !w.endsWith('/') && !snap.files.some((f) => f.path === w));
  if (missingNames.length > 0) {
    throw new EntryNotFoundError(
      `Not in ${formatRepoRef(repo)} at ${snap.commit}: ${missingNames.join(', ')}`,
      404,
      undefined,
    );
  }
  const sources = new Map<string, string>();
  const adopt = new Set<string>();
  const planned = await runPool(selected, 4, async (f): Promise<PlannedFile> => {
    const localPath = target.filePath(f.path);
    if (!opts.forceDownload) {
      const state = await target.check(f, false, opts.signal);
      if (state !== 'absent') {
        if (state === 'adopt') adopt.add(f.path);
        return { path: f.path, size: f.size, status: 'cached', localPath };
      }
      const copy = await cache.findLocalCopy(repo.id, revision, f, localPath, opts.signal);
      if (copy) {
        sources.set(f.path, copy);
        return { path: f.path, size: f.size, status: 'copied', localPath };
      }
    }
    return { path: f.path, size: f.size, status: 'planned', localPath };
  });
  const byPath = new Map(selected.map((f) => [f.path, f]));
  const inCache = target.layout !== 'local-dir' && !opts.forceDownload && ctx.crossHubRoots;
  const crossHub = inCache ? new CrossHubIndex(ctx.crossHubRoots!, 'hf') : undefined;
  const reuse = await planReuse(crossHub, planned, byPath);
  emit(planEvent(formatRepoRef(repo), revision, snap.commit, planned));
  if (opts.dryRun) return result(repo, revision, snap.commit, target.dir, planned, 0, false);

  // 3+4. transfer and commit, file by file
  await target.init();
  const lockOpts: AcquireLockOptions = {
    ...(opts.signal ? { signal: opts.signal } : {}),
    onWait: () =>
      emit({
        type: 'warning',
        message: `Waiting for ${cache.lockPath(repo.id)} (another download of ${repo.id} is running)`,
      }),
    onWaitIntervalMs: 10_000,
  };
  const downloadedBytes = await materializeAll(planned, opts, emit, async (p) => {
    const f = byPath.get(p.path)!;
    if (p.status === 'cached') {
      if (adopt.has(f.path)) await target.record(f, lockOpts);
      return 'cached';
    }
    // modelscope_hub's per-file lock, so neither it nor another hubcache fetches the same file now.
    const lock = await acquireLock(cache.v2LockPath(repo.id, f.path), lockOpts);
    try {
      if (!opts.forceDownload && (await target.check(f, true, opts.signal)) !== 'absent') {
        await target.record(f, lockOpts);
        return 'cached';
      }
      const fromHf = reuse.get(f.path);
      const reused = fromHf && (await crossHub!.place(fromHf, f, target.filePath(f.path), opts.signal));
      if (reused) {
        await target.record(f, lockOpts);
        return reused;
      }
      delete p.reusedFrom; // no candidate matched after all: fetched instead
      const status = await fetchFile(ctx.engine, client, target, repo, snap.commit, f, sources.get(f.path), opts);
      await target.record(f, lockOpts);
      return status;
    } finally {
      await lock.release();
    }
  });
  await target.finish(snap, !opts.files || !!opts.recordRevision);
  emit({ type: 'done', path: target.dir, downloadedBytes, seconds: (Date.now() - started) / 1000 });
  return result(repo, revision, snap.commit, target.dir, planned, downloadedBytes, false);
}

export interface EnsureMsFileOptions {
  signal?: AbortSignal;
  /** See TransferRequest.onPartial: the partial file and its written prefix, while the file fills. */
  onPartial?: TransferRequest['onPartial'];
  /** Where to GET the bytes instead of the hub (a mirror cluster's store or peer); same verification. */
  source?: TransferRequest['source'];
}

/**
 * One file of a ModelScope model (`file` as the file list describes it, at branch/tag
 * `revisionName`) into the legacy layout, verified before it appears and recorded in `.msc`;
 * nothing else of the repo is touched. The ModelScope twin of the HF `ensureBlob`, for servers.
 */
export async function ensureMsFile(
  ctx: MsDownloadContext,
  repo: RepoRef,
  revisionName: string,
  file: RemoteFile,
  opts: EnsureMsFileOptions = {},
): Promise<{ path: string; status: FileStatus }> {
  assertSafeRepoPath(file.path);
  const cache = new ModelScopeCache(ctx.cacheDir, ctx.v2Dir ?? ctx.cacheDir);
  const target = new LegacyTarget('v1', cache.legacy(repo.id), cache, repo.id);
  const client = ctx.client ?? new ModelScopeClient({ endpoint: ctx.endpoint, token: ctx.token });
  const lockOpts: AcquireLockOptions = opts.signal ? { signal: opts.signal } : {};
  const lock = await acquireLock(cache.v2LockPath(repo.id, file.path), lockOpts);
  try {
    let status: FileStatus = 'cached';
    if ((await target.check(file, true, opts.signal)) === 'absent') {
      await target.init();
      status = await fetchFile(ctx.engine, client, target, repo, revisionName, file, undefined, opts);
    }
    await target.record(file, lockOpts);
    await cache.ensureDottedSymlink(repo.id);
    return { path: target.filePath(file.path), status };
  } finally {
    await lock.release();
  }
}

/** Puts the file's verified bytes at its target path: from a local copy, as an empty file, or over the network. */
async function fetchFile(
  engine: TransferEngine,
  client: ModelScopeClient,
  target: MsTarget,
  repo: RepoRef,
  revisionName: string,
  f: RemoteFile,
  localCopy: string | undefined,
  opts: Pick<DownloadOptions, 'signal' | 'onProgress'> & EnsureMsFileOptions,
): Promise<FileStatus> {
  const dest = target.filePath(f.path);
  if (localCopy) {
    await target.addFile(f.path, localCopy, 'copy');
    return 'copied';
  }
  if (f.size === 0 && (!f.sha256 || f.sha256 === EMPTY_SHA256)) {
    await writeFileAtomic(dest, ''); // the SDK sends no request for empty files either
    return 'downloaded';
  }
  // The engine commits into a per-path staging name (its "already there" check is by size, which
  // a stale file at the repo path could pass), then we rename that into place.
  await mkdirp(target.partialDir);
  const key =
    f.sha256 ??
    `nosha-${createHash('sha1')
      .update(`${f.path}\0${f.msRevision ?? ''}`)
      .digest('hex')}`;
  const staged = stagedPath(target.partialDir, key, f.path);
  const source = opts.source ?? (async () => client.downloadSource(repo, revisionName, f));
  const req = transferRequest(
    {
      path: f.path,
      source,
      expected: expectedContentOf(f),
      partialDir: target.partialDir,
      partialKey: key,
      finalPath: staged,
    },
    opts,
  );
  if (opts.onPartial) req.onPartial = opts.onPartial;
  await engine.download(req);
  await target.addFile(f.path, staged, 'move');
  return 'downloaded';
}

/** Offline (or hub unreachable): serve what the cache holds; name what it does not. */
async function serveFromCache(
  cache: ModelScopeCache,
  target: MsTarget,
  repo: RepoRef,
  revision: string,
  filter: Pick<DownloadOptions, 'files' | 'include' | 'exclude'>,
  opts: DownloadOptions,
  emit: Emit,
  started: number,
  fellBack: boolean,
): Promise<DownloadResult> {
  let from = target;
  let onDisk = await target.cachedFiles();
  if (onDisk.length === 0 && !opts.localDir) {
    // The other layout may hold the model (written by modelscope ≥1.38, or by us with --ms-layout).
    const other =
      target.layout === 'v2'
        ? new LegacyTarget('v1', cache.legacy(repo.id), cache, repo.id)
        : new SnapshotTarget(cache.v2Snapshot(repo.id, revision));
    const otherFiles = await other.cachedFiles();
    if (otherFiles.length > 0) [from, onDisk] = [other, otherFiles];
  }
  const hint = fellBack
    ? 'ModelScope is unreachable; retry when the network is back.'
    : 'Run the same command without --offline to fetch them.';
  if (onDisk.length === 0) {
    throw new OfflineMissError(`${formatRepoRef(repo)}@${revision} is not in the cache`, opts.files ?? [], { hint });
  }
  const selected = selectFiles(onDisk, filter);
  const missing = (opts.files ?? []).filter((w) => !w.endsWith('/') && !selected.some((f) => f.path === w));
  if (missing.length > 0) {
    throw new OfflineMissError(
      `${missing.length} file(s) of ${formatRepoRef(repo)} are not in the cache: ${missing.join(', ')}`,
      missing,
      { hint },
    );
  }
  if (from instanceof LegacyTarget && from.layout === 'v1') {
    const mv = await cache.legacy(repo.id).readMv();
    if (mv && mv.revision !== revision)
      emit({
        type: 'warning',
        message: `The cached files of ${repo.id} were last downloaded at revision ${mv.revision}, not ${revision}`,
      });
  }
  const planned: PlannedFile[] = selected.map((f) => ({
    path: f.path,
    size: f.size,
    status: 'cached',
    localPath: from.filePath(f.path),
  }));
  emit(planEvent(formatRepoRef(repo), revision, revision, planned));
  if (!opts.dryRun) emit({ type: 'done', path: from.dir, downloadedBytes: 0, seconds: (Date.now() - started) / 1000 });
  return result(repo, revision, revision, from.dir, planned, 0, fellBack);
}

function result(
  repo: RepoRef,
  revision: string,
  commit: string,
  dir: string,
  files: PlannedFile[],
  downloadedBytes: number,
  usedCacheFallback: boolean,
): DownloadResult {
  return { repo, revision, commit, path: dir, files, downloadedBytes, usedCacheFallback };
}
