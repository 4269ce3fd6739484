// `import`: adopt files that are already on disk (a copied model folder, another tool's cache, an
// HF snapshot of the same model) into a cache layout, after checking every byte against the
// hub's hashes. Nothing is downloaded. A file that does not match is reported and left exactly
// where it was; a matching one is moved, copied or hard-linked into place.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { CacheConfig } from '../config.js';
import { msTargetFor, type MsTarget } from '../download/modelscope.js';
import { OfflineMissError, UsageError } from '../errors.js';
import type { ClientFor } from '../hubs/registry.js';
import { formatRepoRef } from '../hubs/repo-ref.js';
import { hfEtagOf, type RemoteFile, type RepoRef, type Snapshot } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { MDL_FILE, ModelScopeCache, MSC_FILE } from '../layouts/modelscope-cache.js';
import { acquireLock } from '../locks/flock.js';
import { exists, removeEmptyTree } from '../util/fs.js';
import { gitBlobSha1File, sha256File } from '../util/hash.js';
import { runPool } from '../util/pool.js';
import { safeJoin } from '../util/safe-path.js';
import type { PlaceMethod, PlaceMode } from '../layouts/place.js';

/** `auto`: move plain files (a copy across file systems); copy out of symlinks and other caches. */
export type ImportMode = PlaceMode | 'auto';

export interface ImportOptions {
  /** The folder holding the files, laid out by repo path. */
  dir: string;
  repo: RepoRef;
  mode?: ImportMode;
  /** Check and report only; change nothing. */
  dryRun?: boolean;
  /** Use cached metadata instead of asking the hub. */
  offline?: boolean;
  /** ModelScope target layout (default v1, the legacy layout). */
  msLayout?: 'v1' | 'v2';
  signal?: AbortSignal;
  onProgress?: (e: ImportEvent) => void;
}

export type ImportStatus = 'adopted' | 'cached' | 'mismatch' | 'missing' | 'unverifiable';

export interface ImportedFile {
  path: string;
  size: number;
  status: ImportStatus;
  /** How an adopted file got into the cache (or would, for a dry run). */
  method?: PlaceMethod;
  /** For mismatches: what the hub says and what the local file is. */
  algorithm?: 'size' | 'sha256' | 'git-sha1';
  expected?: string;
  actual?: string;
  /** Where the file is in the cache (adopted or cached). */
  localPath?: string;
}

export type ImportEvent =
  | { type: 'plan'; repo: string; commit: string; files: number; totalBytes: number }
  | { type: 'file-done'; path: string; status: ImportStatus }
  | { type: 'warning'; message: string };

export interface ImportResult {
  repo: RepoRef;
  revision: string;
  commit: string;
  /** The snapshot folder (HF) or model dir (ModelScope) the files went into. */
  path: string;
  files: ImportedFile[];
  /** True when something did not match (the CLI exits with 1). */
  hasMismatches: boolean;
}

/** Where one hub's files go, and how a verified file is committed there. */
interface ImportSink {
  revision: string;
  commit: string;
  dir: string;
  files: RemoteFile[];
  /** The cache path of a file, when it is already there and valid. */
  cachedPath(f: RemoteFile): Promise<string | undefined>;
  destination(f: RemoteFile): string;
  adopt(f: RemoteFile, src: string, mode: PlaceMode): Promise<PlaceMethod>;
  finish(complete: boolean): Promise<void>;
}

/** `client`: the Cache's hub clients (its one HTTP pool). */
export async function importDir(config: CacheConfig, opts: ImportOptions, client: ClientFor): Promise<ImportResult> {
  const dir = path.resolve(opts.dir);
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`Not a folder: ${opts.dir}`);
  const emit = (e: ImportEvent): void => opts.onProgress?.(e);
  const sink = opts.repo.hub === 'hf' ? await hfSink(config, opts, client) : await msSink(config, opts, client);
  emit({
    type: 'plan',
    repo: formatRepoRef(opts.repo),
    commit: sink.commit,
    files: sink.files.length,
    totalBytes: sink.files.reduce((s, f) => s + f.size, 0),
  });

  const auto = opts.mode === undefined || opts.mode === 'auto';
  // Files inside another hub cache stay there: moving them would break that cache.
  const fromCache = auto && (await looksLikeHubCache(dir));
  let warnedLinks = false;
  const files = await runPool(sink.files, 4, async (f): Promise<ImportedFile> => {
    const out = await checkOne(dir, f, sink, opts.signal);
    if (out.status === 'adopted') {
      const src = safeJoin(dir, f.path);
      let mode: PlaceMode = auto ? (fromCache ? 'copy' : 'move') : (opts.mode as PlaceMode);
      if (mode === 'move' && (await fs.lstat(src)).isSymbolicLink()) {
        mode = 'copy';
        if (!warnedLinks)
          emit({
            type: 'warning',
            message: 'Symlinked files are copied, not moved (their target belongs to someone else).',
          });
        warnedLinks = true;
      }
      out.localPath = sink.destination(f);
      out.method = opts.dryRun ? PREDICTED[mode] : await sink.adopt(f, src, mode);
    }
    emit({ type: 'file-done', path: f.path, status: out.status });
    return out;
  });
  const complete = files.every((f) => f.status === 'adopted' || f.status === 'cached');
  if (!opts.dryRun) await sink.finish(complete);
  return {
    repo: opts.repo,
    revision: sink.revision,
    commit: sink.commit,
    path: sink.dir,
    files,
    hasMismatches: files.some((f) => f.status === 'mismatch'),
  };
}

const PREDICTED: Record<PlaceMode, PlaceMethod> = { move: 'moved', copy: 'copied', link: 'linked' };

/** Compares one local file with the hub's record: size first (cheap), then the hash. */
async function checkOne(dir: string, f: RemoteFile, sink: ImportSink, signal?: AbortSignal): Promise<ImportedFile> {
  const out: ImportedFile = { path: f.path, size: f.size, status: 'missing' };
  const src = safeJoin(dir, f.path);
  const st = await fs.stat(src).catch(() => undefined);
  if (!st?.isFile()) {
    const cached = await sink.cachedPath(f);
    if (cached) return { ...out, status: 'cached', localPath: cached };
    return out;
  }
  if (st.size !== f.size)
    return { ...out, status: 'mismatch', algorithm: 'size', expected: String(f.size), actual: String(st.size) };
  const useGit = !f.sha256 && f.gitOid !== undefined;
  const expected = f.sha256 ?? f.gitOid;
  if (!expected) return { ...out, status: 'unverifiable' };
  const actual = useGit ? await gitBlobSha1File(src, signal) : await sha256File(src, signal);
  if (actual !== expected)
    return { ...out, status: 'mismatch', algorithm: useGit ? 'git-sha1' : 'sha256', expected, actual };
  const cached = await sink.cachedPath(f);
  return cached ? { ...out, status: 'cached', localPath: cached } : { ...out, status: 'adopted' };
}

/** A folder that belongs to a hub cache: a ModelScope model dir or anything under an HF cache's snapshots/. */
async function looksLikeHubCache(dir: string): Promise<boolean> {
  if ((await exists(path.join(dir, MSC_FILE))) || (await exists(path.join(dir, MDL_FILE)))) return true;
  const parts = dir.split(path.sep);
  const i = parts.lastIndexOf('snapshots');
  return i > 0 && /^(models|datasets|spaces)--/.test(parts[i - 1] ?? '');
}

// ---------------------------------------------------------------------------------------------
// Hugging Face: blob named by etag, snapshot symlink, ref, tree cache.

async function hfSink(config: CacheConfig, opts: ImportOptions, client: ClientFor): Promise<ImportSink> {
  const hf = config.hf;
  const repo = opts.repo;
  const revision = repo.revision ?? 'main';
  const rc = new HfRepoCache(hf.cacheDir, repo);
  let snap: Pick<Snapshot, 'commit' | 'files'>;
  if (opts.offline ?? hf.offline) {
    const commit = await rc.resolveLocal(revision);
    const files = commit ? await rc.readTree(commit) : undefined;
    if (!commit || !files) {
      throw new OfflineMissError(`No cached file list for ${formatRepoRef(repo)}@${revision}`, [], {
        hint: 'Run without --offline so the file list can be fetched from the hub.',
      });
    }
    snap = { commit, files };
  } else {
    snap = await client('hf').snapshot(repo, revision, opts.signal);
    if (!opts.dryRun) await rc.writeTree(snap.commit, snap.files);
  }
  const { commit } = snap;
  return {
    revision,
    commit,
    dir: rc.snapshotDir(commit),
    files: snap.files,
    async cachedPath(f) {
      return (await rc.hasBlob(hfEtagOf(f))) && (await rc.hasSnapshotFile(commit, f.path))
        ? rc.snapshotPath(commit, f.path)
        : undefined;
    },
    destination: (f) => rc.snapshotPath(commit, f.path),
    async adopt(f, src, mode) {
      const etag = hfEtagOf(f);
      const lock = await acquireLock(rc.lockPath(etag), opts.signal ? { signal: opts.signal } : {});
      try {
        let method: PlaceMethod = 'linked';
        if (!(await rc.hasBlob(etag))) method = await rc.addBlob(etag, src, mode);
        await rc.linkSnapshot(commit, f, { symlinks: hf.symlinks, newBlob: false });
        return method;
      } finally {
        await lock.release();
      }
    },
    async finish() {
      await rc.writeRef(revision, commit);
      await rc.writeCachedirTag();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ModelScope: the file in the model dir + its `.msc` entry + `.mdl` (or the ≥1.38 snapshot dir).

async function msSink(config: CacheConfig, opts: ImportOptions, client: ClientFor): Promise<ImportSink> {
  const ms = config.modelscope;
  const repo = opts.repo;
  const revision = repo.revision ?? 'master';
  const cache = new ModelScopeCache(ms.cacheDir, ms.v2Dir ?? ms.cacheDir);
  const target: MsTarget = msTargetFor(cache, repo, revision, { msLayout: opts.msLayout });
  let snap: Snapshot;
  if (opts.offline ?? ms.offline ?? config.hf.offline) {
    snap = await msSnapshotFromCache(target, repo, revision, opts.signal);
  } else {
    snap = await client('modelscope').snapshot(repo, revision, opts.signal);
  }
  let initialized = false;
  return {
    revision,
    commit: snap.commit,
    dir: target.dir,
    files: snap.files,
    async cachedPath(f) {
      return (await target.check(f, true, opts.signal)) === 'cached' ? target.filePath(f.path) : undefined;
    },
    destination: (f) => target.filePath(f.path),
    async adopt(f, src, mode) {
      if (!initialized) {
        await target.init();
        initialized = true;
      }
      const dest = target.filePath(f.path);
      // A file already at its place (a model dir imported into itself) only lacks its index entry.
      const method = path.resolve(src) === dest ? 'moved' : await target.addFile(f.path, src, mode);
      await target.record(f, opts.signal ? { signal: opts.signal } : {});
      return method;
    },
    async finish(complete) {
      if (!initialized) return;
      // Files copied under the readable name (`Qwen2.5-0.5B`, not `Qwen2___5-0___5B`) have all
      // been moved out: the emptied folder makes way for the SDK's link of that name (finish).
      const dotted = cache.dottedLinkPath(repo.id);
      if (target.layout === 'v1' && dotted && path.resolve(opts.dir) === dotted) await removeEmptyTree(dotted);
      await target.finish(snap, complete);
    },
  };
}

/**
 * Offline: the cache is the only record of the expected bytes. Files the index lists are hashed
 * where they are, so a local copy can be compared with them (nothing new can be adopted).
 */
async function msSnapshotFromCache(
  target: MsTarget,
  repo: RepoRef,
  revision: string,
  signal?: AbortSignal,
): Promise<Snapshot> {
  const onDisk = await target.cachedFiles();
  if (onDisk.length === 0) {
    throw new OfflineMissError(`Nothing of ${formatRepoRef(repo)} is in the cache to compare with`, [], {
      hint: 'Run without --offline so the file list and hashes come from ModelScope.',
    });
  }
  const files: RemoteFile[] = [];
  for (const f of onDisk) {
    const sha256 = await sha256File(target.filePath(f.path), signal);
    files.push({ path: f.path, size: f.size, sha256 });
  }
  return { repo, revision, commit: revision, files };
}
