// Hugging Face download: resolve → plan → transfer → commit, into the HF cache or a local dir.
// Follows huggingface_hub's snapshot_download (docs/protocols.md §HF snapshot download) so the two tools share one cache, with
// one deliberate saving: the etag of each file comes from the tree listing, so no per-file HEAD
// is needed except to find the CDN URL of LFS files that must actually be fetched.
import fs from 'node:fs/promises';
import path from 'node:path';
import { EntryNotFoundError, HubcacheError, OfflineMissError, RevisionNotFoundError } from '../errors.js';
import type { CacheRoots } from '../care/scan.js';
import { HfClient } from '../hubs/hf.js';
import { formatRepoRef, isCommitHash } from '../hubs/repo-ref.js';
import { expectedContentOf, hfEtagOf, type RemoteFile, type RepoRef } from '../hubs/types.js';
import { formatTreeCache, HfRepoCache, parseTreeCache } from '../layouts/hf-cache.js';
import { HfLocalDir } from '../layouts/hf-local-dir.js';
import { materializeFile } from '../layouts/link-mode.js';
import { acquireLock } from '../locks/flock.js';
import type { TransferEngine } from '../transfer/engine.js';
import type { TransferRequest } from '../transfer/types.js';
import { assertSafeRepoPath } from '../util/safe-path.js';
import { exists, isFile, mkdirp, writeFileIfChanged } from '../util/fs.js';
import { matchesFilter } from '../util/fnmatch.js';
import { sha256File } from '../util/hash.js';
import { assertPatternsSelect, emitterFor, materializeAll, planEvent, transferRequest } from './common.js';
import { CrossHubIndex, planReuse } from './cross-hub.js';
import { commitStaged, stagedPath } from './staging.js';
import type { DownloadOptions, DownloadResult, FileStatus, PlannedFile } from './types.js';

export interface HfDownloadContext {
  cacheDir: string;
  endpoint: string;
  token?: string | undefined;
  offline: boolean;
  symlinks: boolean;
  engine: TransferEngine;
  /** The Cache's client for this hub (its pool); default: one for endpoint and token. */
  client?: HfClient | undefined;
  /** Both layouts' roots: LFS files the ModelScope layout already holds are linked, not fetched. */
  crossHubRoots?: CacheRoots | undefined;
}

/** Errors after which huggingface_hub falls back to a cached revision (docs/protocols.md §HF cache fallback). */
function canFallBackToCache(err: unknown): boolean {
  return (
    err instanceof HubcacheError && !(err instanceof RevisionNotFoundError) && !(err instanceof EntryNotFoundError)
  );
}

export function selectFiles(
  all: readonly RemoteFile[],
  opts: Pick<DownloadOptions, 'files' | 'include' | 'exclude'>,
): RemoteFile[] {
  if (opts.files && opts.files.length > 0) {
    // A name ending in `/` means the whole folder (`hf download repo sub/`).
    const wanted = opts.files.map((f) => f.replace(/\\/g, '/'));
    return all.filter((f) => wanted.some((w) => (w.endsWith('/') ? f.path.startsWith(w) : f.path === w)));
  }
  return all.filter((f) => matchesFilter(f.path, { include: opts.include ?? [], exclude: opts.exclude ?? [] }));
}

export async function downloadHf(
  ctx: HfDownloadContext,
  repo: RepoRef,
  opts: DownloadOptions,
): Promise<DownloadResult> {
  const started = Date.now();
  const emit = emitterFor(opts);
  const revision = repo.revision ?? 'main';
  const rc = new HfRepoCache(ctx.cacheDir, repo);
  const client = ctx.client ?? new HfClient({ endpoint: ctx.endpoint, token: ctx.token });
  const offline = opts.offline ?? ctx.offline;
  const localDir = opts.localDir ? new HfLocalDir(path.resolve(opts.localDir)) : undefined;

  // 1. resolve: commit + file list, from the cache when possible (no request at all for a
  // cached full commit hash), else from the hub, falling back to the cache when it is unreachable.
  let commit: string | undefined;
  let files: RemoteFile[] | undefined;
  let usedCacheFallback = false;
  const local = await resolveFromCache(rc, revision, localDir);
  if (offline || (local && isCommitHash(revision) && local.files && !opts.forceDownload)) {
    if (!local) throw offlineMiss(repo, revision, offline);
    ({ commit, files } = local);
  } else {
    try {
      const snap = await client.snapshot(repo, revision, opts.signal);
      commit = snap.commit;
      files = snap.files;
      // The tree listing goes where Python puts it: the repo folder, or the local dir's bookkeeping
      // (not rewritten when identical, so a complete read-only cache still serves).
      const treePath = localDir ? localDir.treePath(commit) : rc.treePath(commit);
      if (!opts.dryRun) await writeFileIfChanged(treePath, formatTreeCache(files));
    } catch (err) {
      if (!local || !canFallBackToCache(err)) throw err;
      emit({
        type: 'warning',
        message: `Hub unreachable (${(err as Error).message}); using cached ${formatRepoRef(repo)} at ${local.commit.slice(0, 8)}`,
      });
      ({ commit, files } = local);
      usedCacheFallback = true;
    }
  }
  const fromCacheOnly = offline || usedCacheFallback || files === undefined;

  // 2. plan
  let selected: RemoteFile[];
  if (files) {
    selected = selectFiles(files, opts);
    assertPatternsSelect(selected.length, files.length, opts, `${formatRepoRef(repo)} at ${commit.slice(0, 8)}`);
    const missingNames = (opts.files ?? []).filter((w) => !w.endsWith('/') && !files.some((f) => f.path === w));
    if (missingNames.length > 0) {
      if (!fromCacheOnly && !opts.dryRun) for (const m of missingNames) await rc.markMissing(commit, m);
      throw new EntryNotFoundError(
        `Not in ${formatRepoRef(repo)} at ${commit.slice(0, 8)}: ${missingNames.join(', ')}`,
        404,
        undefined,
      );
    }
  } else {
    // Offline without a tree listing: all we know is what the snapshot folder holds.
    selected = await listSnapshotFiles(rc, commit, opts);
  }

  // A repo never fetched before has no snapshot or blob folder: then no file needs a stat of its own.
  const cacheEmpty = !localDir && !(await exists(rc.snapshotDir(commit))) && !(await exists(rc.blobsDir()));
  // Values and promises mixed (no stat when the cache is empty): Promise.all takes both.
  const planned = await Promise.all(
    // eslint-disable-next-line @typescript-eslint/await-thenable
    selected.map((f): PlannedFile | Promise<PlannedFile> =>
      cacheEmpty
        ? { path: f.path, size: f.size, status: 'planned', localPath: rc.snapshotPath(commit, f.path) }
        : planFile(rc, localDir, commit, f, opts),
    ),
  );
  const byPath = new Map(selected.map((f) => [f.path, f]));
  // Only into the cache: a hard link into a local dir would let an edit there change the other hub's copy.
  const reusable = !localDir && !opts.forceDownload && ctx.crossHubRoots;
  const crossHub = reusable ? new CrossHubIndex(ctx.crossHubRoots!, 'modelscope') : undefined;
  const reuse = await planReuse(crossHub, planned, byPath);
  const toFetch = planned.filter((p) => p.status === 'planned');
  if (fromCacheOnly && toFetch.length > 0) {
    throw new OfflineMissError(
      `${toFetch.length} file(s) of ${formatRepoRef(repo)}@${revision} are not in the cache: ${toFetch.map((p) => p.path).join(', ')}`,
      toFetch.map((p) => p.path),
      {
        hint: offline
          ? 'Run the same command without --offline / HF_HUB_OFFLINE=1 to fetch them.'
          : 'The hub is unreachable; retry when the network is back.',
      },
    );
  }
  emit(planEvent(formatRepoRef(repo), revision, commit, planned));
  const resultPath = localDir ? localDir.dir : rc.snapshotDir(commit);
  if (opts.dryRun) {
    return { repo, revision, commit, path: resultPath, files: planned, downloadedBytes: 0, usedCacheFallback };
  }

  // 3+4. transfer and commit, file by file (each under its blob lock).
  if (!fromCacheOnly) await rc.writeRef(revision, commit);
  if (localDir) await localDir.init();
  else if (toFetch.length > 0 || reuse.size > 0) {
    await rc.writeCachedirTag();
    await mkdirp(rc.blobsDir()); // once here, not once per file
  }
  const downloadedBytes = await materializeAll(planned, opts, emit, async (p) => {
    const f = byPath.get(p.path)!;
    if (localDir) return materializeLocal(ctx, client, rc, localDir, repo, commit, f, p, opts);
    const candidates = reuse.get(p.path);
    const fromOtherHub = crossHub && candidates ? { index: crossHub, candidates } : undefined;
    return materializeCached(ctx, client, rc, repo, commit, f, p, opts, fromOtherHub);
  });
  // An empty snapshot folder still exists afterwards, like Python's (callers get a real path).
  if (!localDir) await mkdirp(resultPath);
  emit({ type: 'done', path: resultPath, downloadedBytes, seconds: (Date.now() - started) / 1000 });
  const result: DownloadResult = {
    repo,
    revision,
    commit,
    path: resultPath,
    files: planned,
    downloadedBytes,
    usedCacheFallback,
  };
  if (localDir) result.savedBytes = planned.reduce((s, p) => s + (p.savedBytes ?? 0), 0);
  return result;
}

function offlineMiss(repo: RepoRef, revision: string, offline: boolean): OfflineMissError {
  return new OfflineMissError(`${formatRepoRef(repo)}@${revision} is not in the cache`, [], {
    hint: offline ? 'Run once without --offline / HF_HUB_OFFLINE=1 to download it.' : undefined,
  });
}

/** The commit and (when trees/<commit>.json exists) the file list, from disk only. */
async function resolveFromCache(
  rc: HfRepoCache,
  revision: string,
  localDir: HfLocalDir | undefined,
): Promise<{ commit: string; files?: RemoteFile[] } | undefined> {
  const commit = await rc.resolveLocal(revision);
  if (!commit) return undefined;
  const files = localDir ? await readTreeFile(localDir.treePath(commit)) : await rc.readTree(commit);
  if (files) return { commit, files };
  if (localDir) return undefined; // without its tree listing a local dir's completeness is unknowable
  try {
    await fs.access(rc.snapshotDir(commit));
    return { commit };
  } catch {
    return undefined;
  }
}

async function readTreeFile(p: string): Promise<RemoteFile[] | undefined> {
  try {
    return parseTreeCache(await fs.readFile(p, 'utf8'));
  } catch {
    return undefined;
  }
}

async function listSnapshotFiles(rc: HfRepoCache, commit: string, opts: DownloadOptions): Promise<RemoteFile[]> {
  const root = rc.snapshotDir(commit);
  const out: RemoteFile[] = [];
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (e.isDirectory()) continue;
    const abs = path.join(e.parentPath, e.name);
    const st = await fs.stat(abs).catch(() => undefined);
    if (!st?.isFile()) continue;
    const rel = path.relative(root, abs).split(path.sep).join('/');
    const etag = path.basename(await fs.realpath(abs));
    const f: RemoteFile = { path: rel, size: st.size, lfs: etag.length === 64 };
    if (etag.length === 64) f.sha256 = etag;
    else f.gitOid = etag;
    out.push(f);
  }
  const sel = selectFiles(out, opts);
  const missing = (opts.files ?? []).filter((w) => !w.endsWith('/') && !sel.some((f) => f.path === w));
  if (missing.length > 0) {
    throw new OfflineMissError(`Not in the cache: ${missing.join(', ')}`, missing, {
      hint: 'Run without --offline to fetch them.',
    });
  }
  return sel;
}

async function planFile(
  rc: HfRepoCache,
  localDir: HfLocalDir | undefined,
  commit: string,
  f: RemoteFile,
  opts: DownloadOptions,
): Promise<PlannedFile> {
  const etag = hfEtagOf(f);
  if (localDir) {
    const localPath = localDir.filePath(f.path);
    let status: FileStatus = 'planned';
    if (!opts.forceDownload && (await isFile(localPath))) {
      const meta = await localDir.readMetadata(f.path);
      if (meta?.etag === etag) status = 'cached';
    }
    if (status === 'planned' && !opts.forceDownload && (await rc.hasSnapshotFile(commit, f.path).catch(() => false)))
      status = 'copied';
    return { path: f.path, size: f.size, status, localPath };
  }
  const localPath = rc.snapshotPath(commit, f.path);
  let status: FileStatus = 'planned';
  if (!opts.forceDownload) {
    if (await isFile(localPath)) status = 'cached';
    else if (await rc.hasBlob(etag)) status = 'linked';
  }
  return { path: f.path, size: f.size, status, localPath };
}

function hfTransfer(
  client: HfClient,
  repo: RepoRef,
  commit: string,
  f: RemoteFile,
  partialDir: string,
  partialKey: string,
  finalPath: string,
  opts: Pick<DownloadOptions, 'signal' | 'onProgress'> & Pick<EnsureBlobOptions, 'source' | 'knownLocation'>,
) {
  // A known CDN URL serves the first ask only: a refresh (expired URL) resolves again.
  let known = opts.knownLocation;
  const source =
    opts.source ??
    (() => {
      const k = known;
      known = undefined;
      return client.downloadSource(repo, commit, f, opts.signal, k);
    });
  return transferRequest(
    { path: f.path, source, expected: expectedContentOf(f), partialDir, partialKey, finalPath },
    opts,
  );
}

/** Cache mode: link an existing blob, or download it under its lock, then link it. */
async function materializeCached(
  ctx: HfDownloadContext,
  client: HfClient,
  rc: HfRepoCache,
  repo: RepoRef,
  commit: string,
  f: RemoteFile,
  p: PlannedFile,
  opts: DownloadOptions,
  fromOtherHub?: { index: CrossHubIndex; candidates: string[] },
): Promise<FileStatus> {
  if (p.status === 'cached') return 'cached';
  delete p.reusedFrom; // set again only if the other layout's copy is what ends up here
  const got = await ensureBlobIn(ctx, client, rc, repo, commit, f, opts, fromOtherHub);
  if (got.reusedFrom) p.reusedFrom = got.reusedFrom;
  return got.status;
}

export interface EnsureBlobOptions {
  signal?: AbortSignal;
  onProgress?: DownloadOptions['onProgress'];
  /** See TransferRequest.onPartial: the partial file and its written prefix, while the blob fills. */
  onPartial?: TransferRequest['onPartial'];
  /** The CDN URL of an LFS file the caller just got from resolve/ (the mirror): no HEAD of its own. */
  knownLocation?: string;
  /** Re-download even if the blob is there. */
  forceDownload?: boolean;
  /**
   * Where to GET the bytes instead of the hub (a mirror cluster: the shared store, or the replica that
   * fills the blob). Same verification and commit as a hub download.
   */
  source?: TransferRequest['source'];
}

export interface EnsuredBlob {
  /** `blobs/<etag>` in the HF cache: verified, complete. */
  path: string;
  etag: string;
  size: number;
  commit: string;
  /** `downloaded` when this call fetched it; `linked`/`cached` when it was there already. */
  status: FileStatus;
}

/**
 * One blob of `repo` at `commit` into the HF cache (verified before it appears), linked into the
 * snapshot folder; nothing else of the repo is touched. The seam for servers and other callers
 * that need "this file's bytes on disk" without planning a whole snapshot.
 */
export async function ensureBlob(
  ctx: HfDownloadContext,
  repo: RepoRef,
  commit: string,
  file: RemoteFile,
  opts: EnsureBlobOptions = {},
): Promise<EnsuredBlob> {
  assertSafeRepoPath(file.path);
  const rc = new HfRepoCache(ctx.cacheDir, repo);
  const client = ctx.client ?? new HfClient({ endpoint: ctx.endpoint, token: ctx.token });
  if (!(await rc.hasBlob(hfEtagOf(file)))) {
    await rc.writeCachedirTag();
    await mkdirp(rc.blobsDir());
  }
  const { status } = await ensureBlobIn(ctx, client, rc, repo, commit, file, opts);
  const etag = hfEtagOf(file);
  return { path: rc.blobPath(etag), etag, size: file.size, commit, status };
}

async function ensureBlobIn(
  ctx: HfDownloadContext,
  client: HfClient,
  rc: HfRepoCache,
  repo: RepoRef,
  commit: string,
  f: RemoteFile,
  opts: EnsureBlobOptions,
  fromOtherHub?: { index: CrossHubIndex; candidates: string[] },
): Promise<{ status: FileStatus; reusedFrom?: PlannedFile['reusedFrom'] }> {
  const etag = hfEtagOf(f);
  const lock = await acquireLock(rc.lockPath(etag), { signal: opts.signal });
  try {
    if (!opts.forceDownload && (await rc.hasBlob(etag))) {
      if (!(await rc.hasSnapshotFile(commit, f.path)))
        await rc.linkSnapshot(commit, f, { symlinks: ctx.symlinks, newBlob: false });
      return { status: 'linked' };
    }
    if (!opts.forceDownload && (await rc.hasSnapshotFile(commit, f.path))) return { status: 'cached' };
    const blob = rc.blobPath(etag);
    const reused = fromOtherHub && (await fromOtherHub.index.place(fromOtherHub.candidates, f, blob, opts.signal));
    if (reused) {
      await rc.linkSnapshot(commit, f, { symlinks: ctx.symlinks, newBlob: true });
      return { status: reused, reusedFrom: fromOtherHub.index.source };
    }
    const req = hfTransfer(client, repo, commit, f, rc.blobsDir(), etag, blob, opts);
    if (opts.onPartial) req.onPartial = opts.onPartial;
    await ctx.engine.download(req);
    await rc.linkSnapshot(commit, f, { symlinks: ctx.symlinks, newBlob: true });
    return { status: 'downloaded' };
  } finally {
    await lock.release();
  }
}

/** Local-dir mode (docs/protocols.md §HF local-dir download): reuse a matching file, copy from the cache, or download. */
async function materializeLocal(
  ctx: HfDownloadContext,
  client: HfClient,
  rc: HfRepoCache,
  ld: HfLocalDir,
  repo: RepoRef,
  commit: string,
  f: RemoteFile,
  p: PlannedFile,
  opts: DownloadOptions,
): Promise<FileStatus> {
  const etag = hfEtagOf(f);
  const target = ld.filePath(f.path);
  const lock = await acquireLock(ld.lockPath(f.path), { signal: opts.signal });
  try {
    if (p.status === 'cached') {
      const meta = await ld.readMetadata(f.path);
      if (meta && meta.commit !== commit) await ld.writeMetadata(f.path, commit, etag);
      return 'cached';
    }
    // A file with no metadata (copied by hand, or by an older tool) is kept if its hash matches.
    if (
      !opts.forceDownload &&
      f.lfs &&
      f.sha256 &&
      (await isFile(target)) &&
      (await sha256File(target, opts.signal)) === f.sha256
    ) {
      await ld.writeMetadata(f.path, commit, etag);
      return 'cached';
    }
    await mkdirp(path.dirname(target));
    if (p.status === 'copied') {
      const placed = await materializeFile(rc.snapshotPath(commit, f.path), target, opts.linkMode ?? 'copy');
      p.linkMethod = placed.method;
      p.savedBytes = placed.savedBytes;
      await ld.writeMetadata(f.path, commit, etag);
      return 'copied';
    }
    // Staged, then renamed: a stale file of the same size at `target` must not pass for this content.
    const partialDir = ld.partialDir(f.path);
    const key = ld.partialKey(f.path, etag);
    const staged = stagedPath(partialDir, key, f.path);
    await mkdirp(partialDir);
    await ctx.engine.download(hfTransfer(client, repo, commit, f, partialDir, key, staged, opts));
    await commitStaged(staged, target);
    await ld.writeMetadata(f.path, commit, etag);
    return 'downloaded';
  } finally {
    await lock.release();
  }
}
