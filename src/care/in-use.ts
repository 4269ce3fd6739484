// Is someone using this right now? Cleanup must never pull a file from under a running download,
// whether hubcache's or a Python client's. Three signals, each cheap:
//   - a held flock on the blob's `.locks/<repo>/<etag>.lock` (huggingface_hub and hubcache),
//     or on ModelScope's repo / per-file locks;
//   - the transfer engine's heartbeat inside a large partial (its resume trailer), or the pid of
//     its writer when on this host;
//   - the partial's mtime (every writer appends to it while alive).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isLocked } from '../locks/flock.js';
import { writerAlive } from '../transfer/ownership.js';
import { readTrailer } from '../transfer/partial-state.js';
import { defaultTransferOptions } from '../transfer/types.js';
import { readdirSafe } from './fs-walk.js';
import type { CachedRepo, CachedRevision, CacheWarning } from './model.js';
import { etagOfBlobName } from '../layouts/hf-cache.js';
import { hfBlobLockPath } from './scan-hf.js';
import { msRepoLocked } from './scan-modelscope.js';

const HOST = os.hostname();
/** A partial written to within this window belongs to a live writer, whatever else we know. */
const LIVE_WRITE_MS =
  Math.max(defaultTransferOptions.foreignStaleAfterSeconds, defaultTransferOptions.staleAfterSeconds) * 1000;

export async function lockHeld(lockPath: string | undefined): Promise<boolean> {
  if (!lockPath) return false;
  return isLocked(lockPath).catch(() => false);
}

/**
 * Whether a partial download is being written: its lock is held, it changed recently, or the
 * engine's resume trailer shows a fresh heartbeat from a live writer.
 */
export async function partialInUse(w: Pick<CacheWarning, 'path' | 'lockPath'>, nowMs = Date.now()): Promise<boolean> {
  if (await lockHeld(w.lockPath)) return true;
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(w.path, 'r');
    const st = await fh.stat();
    if (nowMs - st.mtimeMs < LIVE_WRITE_MS) return true;
    const trailer = await readTrailer(fh, st.size);
    const s = trailer?.state;
    if (!s || s.heartbeat === 0) return false;
    if (s.host === HOST) return writerAlive(s.pid, s.writerId);
    return nowMs - s.heartbeat < defaultTransferOptions.staleAfterSeconds * 1000;
  } catch {
    return false; // gone already
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Any held lock under `.locks/<repo folder>/`: a download of this HF repo is running. */
export async function hfRepoLocked(root: string, folder: string): Promise<boolean> {
  const dir = path.join(root, '.locks', folder);
  for (const e of await readdirSafe(dir)) {
    if (e.name.endsWith('.lock') && (await lockHeld(path.join(dir, e.name)))) return true;
  }
  return false;
}

/** The blob locks of a revision's files (HF), deduplicated. */
export function revisionBlobLocks(repo: CachedRepo, rev: CachedRevision): string[] {
  if (repo.layout !== 'hf') return [];
  const folder = path.basename(repo.path);
  const locks = new Set<string>();
  for (const f of rev.files) {
    const etag = etagOfBlobName(path.basename(f.blobPath));
    if (etag) locks.add(hfBlobLockPath(repo.root, folder, etag));
  }
  return [...locks];
}

/** A revision is in use when a lock on one of its blobs (HF) or on the repo (ModelScope) is held. */
export async function revisionInUse(repo: CachedRepo, rev: CachedRevision, msV2Root: string): Promise<boolean> {
  if (repo.hub === 'modelscope') return msRepoLocked(repo.root, msV2Root, repo.id);
  for (const lock of revisionBlobLocks(repo, rev)) if (await lockHeld(lock)) return true;
  return false;
}

/**
 * A repo is busy when a download of it is running: a held lock of the repo, or one of its
 * partial downloads still being written. gc leaves busy repos alone entirely.
 */
export async function repoBusy(
  repo: CachedRepo,
  warnings: readonly CacheWarning[],
  msV2Root: string,
): Promise<boolean> {
  const locked =
    repo.hub === 'modelscope'
      ? await msRepoLocked(repo.root, msV2Root, repo.id)
      : await hfRepoLocked(repo.root, path.basename(repo.path));
  if (locked) return true;
  for (const w of warnings) {
    if (w.kind === 'incomplete' && w.repo === repo.key && (await partialInUse(w))) return true;
  }
  return false;
}
