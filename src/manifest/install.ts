// `install`: put exactly what hubcache.lock pins on disk, then prove it.
//   1. sync   the lock with the manifest (or, with `frozen`, fail if they disagree)
//   2. local  each HF entry is tried from the cache alone (it is commit-pinned, so a fully
//             cached entry costs zero requests); ModelScope entries always ask the hub (its
//             downloads are addressed by branch name, so only the listing tells if they moved)
//   3. fetch  the entries that are missing something, all in parallel, as one progress stream
//   4. verify every locked file's size and hash against the lock — the files fetched now and the
//             ones that were already there (a tampered or bit-rotted blob fails the install with
//             IntegrityError naming the path and both hashes). Each blob is hashed once even if
//             several entries share it. `hash: false` checks sizes and blob names only.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ProjectCache } from './project-cache.js';
import type { DownloadResult, PlannedFile, ProgressEvent } from '../download/types.js';
import { AbortedError, IntegrityError, ManifestError, OfflineMissError, throwIfAborted } from '../errors.js';
import { formatRepoRef } from '../hubs/repo-ref.js';
import type { RepoRef } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { gitBlobSha1File, sha256File } from '../util/hash.js';
import { runPool } from '../util/pool.js';
import { lock, type LockResult, type ProjectOptions } from './lock.js';
import { byCodePoint, diffFiles, manifestDrift, readLockfile, specOf, type Drift } from './lockfile.js';
import { loadManifest, resolveLocalDir, type Manifest } from './manifest.js';
import { resolveEntry } from './remote.js';
import type { LockedFile, LockedModel, LockfileShape } from './schema.js';

/** Progress of an install: the download events of every entry merged into one stream (paths are `alias/path`), plus verification. */
export type InstallProgressEvent =
  | ProgressEvent
  | { type: 'verify-start'; files: number; bytes: number }
  | { type: 'verify-done'; files: number; bytes: number; seconds: number };

export interface InstallOptions extends ProjectOptions {
  /** Fail (ManifestError) instead of re-locking when hubcache.json and hubcache.lock disagree. */
  frozen?: boolean;
  /** Use the cache only; fail with OfflineMissError naming what is missing. Default: the cache's offline setting (HF_HUB_OFFLINE). */
  offline?: boolean;
  /** Hash every locked file (default true). false: sizes and blob names only, for files already present. */
  hash?: boolean;
  /** Files downloaded at once per entry (default 8; the transfer engine also caps connections overall). */
  maxWorkers?: number;
  onProgress?: (e: InstallProgressEvent) => void;
}

export interface InstalledFile {
  path: string;
  size: number;
  /** Where it is on disk. */
  localPath: string;
  status: PlannedFile['status'];
}

export interface InstalledModel {
  alias: string;
  repo: RepoRef;
  commit: string;
  /** Snapshot folder, ModelScope model folder, or the entry's localDir. */
  path: string;
  files: InstalledFile[];
  downloadedBytes: number;
}

export interface InstallResult {
  /** Set when hubcache.lock had to be brought in line with the manifest first. */
  lock?: LockResult;
  models: InstalledModel[];
  downloadedBytes: number;
  /** Files (distinct blobs) hashed during verification, and their bytes. */
  hashedFiles: number;
  hashedBytes: number;
  seconds: number;
}

/** Installs every locked model (see the file comment for the exact steps and guarantees). */
export async function install(opts: InstallOptions): Promise<InstallResult> {
  const started = Date.now();
  const emit = (e: InstallProgressEvent): void => opts.onProgress?.(e);
  const manifest = opts.loaded ?? (await loadManifest(opts));
  const offline = opts.offline ?? opts.cache.config.hf.offline;
  const { lockfile, lockResult } = await syncLock(manifest, { ...opts, offline });
  const entries = Object.keys(lockfile.models)
    .sort(byCodePoint)
    .map((alias) => ({ alias, m: lockfile.models[alias] as LockedModel }));

  // 2. what is already here
  const results = new Map<string, DownloadResult>();
  const missing = new Map<string, string[] | undefined>();
  await runPool(entries, 8, async ({ alias, m }) => {
    if (m.hub === 'modelscope' && !offline) {
      missing.set(alias, undefined);
      return;
    }
    try {
      results.set(alias, await downloadEntry(opts.cache, manifest, m, { offline: true, signal: opts.signal }));
    } catch (err) {
      if (!(err instanceof OfflineMissError)) throw err;
      missing.set(alias, err.missing.length > 0 ? err.missing : undefined);
    }
  });
  if (offline && missing.size > 0) throw offlineError(entries, missing);

  // 3. fetch
  const toFetch = entries.filter((e) => missing.has(e.alias));
  emit(mergedPlan(entries, missing));
  const downloadedBytes = await fetchAll(opts, manifest, toFetch, results, emit);

  // 4. verify
  const verifyStarted = Date.now();
  const all = entries.flatMap(({ alias, m }) =>
    (results.get(alias) as DownloadResult).files.map((f) => ({ alias, m, f })),
  );
  const totalBytes = all.reduce((s, x) => s + x.f.size, 0);
  emit({ type: 'verify-start', files: all.length, bytes: totalBytes });
  const hashed = await verifyAll(all, opts.hash ?? true, opts.signal);
  emit({ type: 'verify-done', files: hashed.files, bytes: hashed.bytes, seconds: (Date.now() - verifyStarted) / 1000 });
  await writeRefs(opts.cache, entries);
  emit({ type: 'done', path: manifest.dir, downloadedBytes, seconds: (Date.now() - started) / 1000 });

  const models: InstalledModel[] = entries.map(({ alias, m }) => {
    const r = results.get(alias) as DownloadResult;
    return {
      alias,
      repo: refAt(m),
      commit: m.commit,
      path: r.path,
      files: r.files.map((f) => ({ path: f.path, size: f.size, localPath: f.localPath, status: f.status })),
      downloadedBytes: r.downloadedBytes,
    };
  });
  const out: InstallResult = {
    models,
    downloadedBytes,
    hashedFiles: hashed.files,
    hashedBytes: hashed.bytes,
    seconds: (Date.now() - started) / 1000,
  };
  if (lockResult) out.lock = lockResult;
  return out;
}

/**
 * Like `download`: `refs/<revision>` → the locked commit, once the files are proven, so tools that
 * look a repo up by name (Python's local_files_only, `--offline`, `status`, `prune`) see it.
 * ModelScope: its folders are addressed by name; the download records the revision in `.mv` (see downloadEntry).
 */
async function writeRefs(cache: ProjectCache, entries: Array<{ m: LockedModel }>): Promise<void> {
  for (const { m } of entries) {
    if (m.hub !== 'hf' || m.localDir !== undefined) continue;
    await new HfRepoCache(cache.config.hf.cacheDir, refAt(m)).writeRef(m.revision, m.commit);
  }
}

/** The lock to install from: as is when it matches the manifest, re-locked otherwise (unless frozen/offline). */
async function syncLock(
  manifest: Manifest,
  opts: InstallOptions,
): Promise<{ lockfile: LockfileShape; lockResult?: LockResult }> {
  const current = await readLockfile(manifest.lockFile);
  const drift = manifestDrift(manifest.models, current);
  if (current && drift.length === 0) return { lockfile: current };
  if (opts.frozen) {
    if (!current)
      throw new ManifestError(`--frozen: there is no hubcache.lock beside ${manifest.file}`, {
        hint: 'Run `hubcache lock` and commit hubcache.lock.',
      });
    throw new ManifestError(`--frozen: hubcache.lock does not match hubcache.json (${describeDrift(drift)})`, {
      hint: 'Run `hubcache lock` (or `hubcache install` without --frozen) and commit hubcache.lock.',
    });
  }
  if (opts.offline && drift.some((d) => d.kind !== 'removed')) {
    throw new OfflineMissError(`hubcache.lock is out of date (${describeDrift(drift)}) and locking needs the hub`, [], {
      hint: 'Run `hubcache lock` while online.',
    });
  }
  const lockResult = await lock({
    cache: opts.cache,
    loaded: manifest,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { lockfile: lockResult.lockfile, lockResult };
}

export function describeDrift(drift: readonly Drift[]): string {
  const shown = drift.slice(0, 5).map((d) => `${d.alias}: ${d.detail}`);
  if (drift.length > shown.length) shown.push(`${drift.length - shown.length} more`);
  return shown.join('; ');
}

/** The RepoRef a lock entry downloads: pinned to the locked commit (ModelScope: the resolved name). */
export function refAt(m: LockedModel): RepoRef {
  return { hub: m.hub, type: m.type, id: m.repo, revision: m.commit };
}

/** Downloads (or, offline, finds) exactly the locked files of one entry. */
export function downloadEntry(
  cache: ProjectCache,
  manifest: Pick<Manifest, 'dir'>,
  m: LockedModel,
  o: {
    offline?: boolean;
    dryRun?: boolean;
    signal?: AbortSignal | undefined;
    maxWorkers?: number;
    onProgress?: (e: ProgressEvent) => void;
  },
): Promise<DownloadResult> {
  // An empty list would mean "every file" to a download: never let a hand-edited lock do that.
  if (Object.keys(m.files).length === 0) {
    return Promise.reject(
      new ManifestError(`${formatRepoRef(refAt(m))} has no files in hubcache.lock`, {
        hint: 'Run `hubcache lock` to re-create the entry.',
      }),
    );
  }
  return cache.download({
    repo: refAt(m),
    files: Object.keys(m.files).sort(byCodePoint),
    ...(m.localDir !== undefined ? { localDir: resolveLocalDir(manifest, m.localDir) } : {}),
    ...(o.offline ? { offline: true } : {}),
    ...(o.dryRun ? { dryRun: true } : {}),
    ...(m.hub === 'modelscope' ? { recordRevision: true } : {}), // `.mv`, as a download of the revision writes
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.maxWorkers ? { maxWorkers: o.maxWorkers } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
}

function offlineError(
  entries: Array<{ alias: string; m: LockedModel }>,
  missing: Map<string, string[] | undefined>,
): OfflineMissError {
  const names: string[] = [];
  for (const { alias, m } of entries) {
    if (!missing.has(alias)) continue;
    for (const p of missing.get(alias) ?? Object.keys(m.files).sort(byCodePoint)) names.push(`${alias}/${p}`);
  }
  const aliases = entries.filter((e) => missing.has(e.alias)).map((e) => e.alias);
  return new OfflineMissError(
    `Not in the cache: ${names.length} file(s) of ${aliases.join(', ')} (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''})`,
    names,
    {
      hint: 'Run `hubcache install` without --offline to fetch them.',
    },
  );
}

/** One plan for the whole install: every locked file, with the ones to fetch marked `planned`. */
function mergedPlan(
  entries: Array<{ alias: string; m: LockedModel }>,
  missing: Map<string, string[] | undefined>,
): ProgressEvent {
  const files: PlannedFile[] = [];
  for (const { alias, m } of entries) {
    const need = missing.has(alias) ? new Set(missing.get(alias) ?? Object.keys(m.files)) : new Set<string>();
    for (const p of Object.keys(m.files).sort(byCodePoint)) {
      files.push({
        path: `${alias}/${p}`,
        size: (m.files[p] as LockedFile).size,
        status: need.has(p) ? 'planned' : 'cached',
        localPath: '',
      });
    }
  }
  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  const downloadBytes = files.filter((f) => f.status === 'planned').reduce((s, f) => s + f.size, 0);
  return {
    type: 'plan',
    repo: `${entries.length} model(s) from hubcache.lock`,
    revision: 'locked',
    commit: 'locked',
    files,
    totalBytes,
    downloadBytes,
  };
}

/** Downloads every entry that needs it, at once; the first failure cancels the others. */
async function fetchAll(
  opts: InstallOptions,
  manifest: Manifest,
  toFetch: Array<{ alias: string; m: LockedModel }>,
  results: Map<string, DownloadResult>,
  emit: (e: InstallProgressEvent) => void,
): Promise<number> {
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  let failure: { err: unknown } | undefined;
  let downloaded = 0;
  await Promise.all(
    toFetch.map(async ({ alias, m }) => {
      try {
        if (m.hub === 'modelscope') await assertUnmoved(opts.cache, alias, m, signal);
        const r = await downloadEntry(opts.cache, manifest, m, {
          signal,
          ...(opts.maxWorkers ? { maxWorkers: opts.maxWorkers } : {}),
          onProgress: (e) => forwardEvent(alias, e, emit),
        });
        results.set(alias, r);
        downloaded += r.downloadedBytes;
      } catch (err) {
        // Entries cancelled because a sibling failed report nothing; the sibling's error wins.
        if (!failure && !(stop.signal.aborted && err instanceof AbortedError)) {
          failure = { err };
          stop.abort();
        }
      }
    }),
  );
  if (failure) throw failure.err;
  throwIfAborted(opts.signal);
  return downloaded;
}

/** Per-entry events → one stream: paths get the alias in front; per-entry plan/done are replaced by the merged ones. */
function forwardEvent(alias: string, e: ProgressEvent, emit: (e: InstallProgressEvent) => void): void {
  if (e.type === 'file-progress' || e.type === 'file-done') emit({ ...e, path: `${alias}/${e.path}` });
  else if (e.type === 'warning') emit({ ...e, message: `${alias}: ${e.message}` });
}

/**
 * ModelScope can only download "what branch X has now". If X moved since the lock, fetching would
 * bring other bytes than the lock pins: say so before downloading anything.
 */
async function assertUnmoved(cache: ProjectCache, alias: string, m: LockedModel, signal: AbortSignal): Promise<void> {
  const now = await resolveEntry(cache, { ...specOf(m), revision: m.commit }, signal);
  const changes = diffFiles(m.files, now.files);
  // Files the lock pins must be there unchanged; files added upstream do not matter.
  if (changes.removed.length === 0 && changes.changed.length === 0) return;
  const names = [...changes.changed.map((c) => c.path), ...changes.removed.map((r) => `${r.path} (removed)`)];
  throw new ManifestError(
    `${formatRepoRef(refAt(m))} changed upstream since hubcache.lock: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''}`,
    {
      hint: `ModelScope downloads are addressed by branch or tag name, so the old files cannot be fetched; run \`hubcache update ${alias}\` to lock what it has now.`,
    },
  );
}

interface ToVerify {
  alias: string;
  m: LockedModel;
  f: PlannedFile;
}

/** Checks every file against the lock; hashes each distinct blob once. */
async function verifyAll(
  all: ToVerify[],
  hash: boolean,
  signal: AbortSignal | undefined,
): Promise<{ files: number; bytes: number }> {
  const digests = new Map<string, Promise<string>>();
  let files = 0;
  let bytes = 0;
  const digestOf = (real: string, size: number, algo: 'sha256' | 'git-sha1'): Promise<string> => {
    const key = `${algo}:${real}`;
    let p = digests.get(key);
    if (!p) {
      files++;
      bytes += size;
      p = algo === 'sha256' ? sha256File(real, signal) : gitBlobSha1File(real, signal);
      digests.set(key, p);
    }
    return p;
  };
  await runPool(all, 4, async ({ alias, m, f }) => {
    const want = m.files[f.path] as LockedFile;
    const real = await fs.realpath(f.localPath).catch(() => undefined);
    const st = real ? await fs.stat(real) : undefined;
    if (!real || !st?.isFile())
      throw new OfflineMissError(`${alias}: ${f.path} is missing at ${f.localPath}`, [`${alias}/${f.path}`]);
    if (st.size !== want.size) throw integrity(alias, m, f, String(want.size), String(st.size), 'size', real);
    const expected = want.sha256
      ? { algo: 'sha256' as const, value: want.sha256 }
      : want.gitOid
        ? { algo: 'git-sha1' as const, value: want.gitOid }
        : undefined;
    if (!expected) return; // ModelScope file without a sha256: its size is all there is to check
    // HF blobs are named by their etag: a link to a blob of another name is the wrong content.
    const blobName = path.basename(real);
    const etag = m.hub === 'hf' ? (want.sha256 ?? want.gitOid) : undefined;
    if (
      etag &&
      /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(blobName) &&
      blobName !== etag &&
      real !== path.resolve(f.localPath)
    ) {
      throw integrity(alias, m, f, etag, blobName, expected.algo, real);
    }
    if (!hash) return;
    const actual = await digestOf(real, st.size, expected.algo);
    if (actual !== expected.value) throw integrity(alias, m, f, expected.value, actual, expected.algo, real);
  });
  return { files, bytes };
}

function integrity(
  alias: string,
  m: LockedModel,
  f: PlannedFile,
  expected: string,
  actual: string,
  algo: IntegrityError['algorithm'],
  real: string,
): IntegrityError {
  const err = new IntegrityError(f.localPath, expected, actual, algo);
  const blob = real !== path.resolve(f.localPath) ? ` (blob ${real})` : '';
  err.hint = `${alias}: ${f.path} of ${m.repo}@${m.commit.slice(0, 12)} on disk${blob} is not what hubcache.lock pins. Delete that file and run \`hubcache install\` again; if the lock itself is wrong, run \`hubcache update ${alias}\`.`;
  return err;
}
