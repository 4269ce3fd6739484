// Cross-process file locks compatible with Python's `filelock` as used by huggingface_hub
// (docs/protocols.md §HF locks): flock(2) on the very same `<cache>/.locks/<repo>/<etag>.lock` path, so a hubcache
// process and a Python process never download the same blob at the same time.
//
// Node has no flock, so a tiny N-API addon (native/flock.c, built by `npm install`) provides it.
// Only non-blocking flock is used: a blocking call would freeze the event loop, so we poll.
//
// Locks are best effort: the transfer engine must stay correct without them (unique temp names +
// atomic rename, docs/protocols.md §HF temporary files). Without the addon, or on a file system whose flock fails with
// ENOSYS/EOPNOTSUPP, we fall back to a "soft" lock file (soft-lock.ts). The addon: addon.ts.

import { constants as fsConstants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError, HubcacheError, throwIfAborted } from '../errors.js';
import { isCode } from '../util/errno.js';
import { mkdirp } from '../util/fs.js';
import { addonLoadError, loadAddon, type FlockAddon } from './addon.js';
import { softLockHeld, softPathOf, trySoftLock } from './soft-lock.js';

/** Which mechanism a lock was taken with. `none` = locking disabled (setLocksDisabled). */
export type LockKind = 'flock' | 'soft' | 'none';

/** A held lock. Release it (or `await using` it); releasing twice is harmless. */
export interface FileLock extends AsyncDisposable {
  readonly path: string;
  readonly kind: LockKind;
  readonly released: boolean;
  /** Unlocks and closes the fd. The `.lock` file is left on disk, like Python's filelock does. */
  release(): Promise<void>;
}

export interface AcquireLockOptions {
  signal?: AbortSignal;
  /** Upper bound of the poll interval in ms (backoff starts at 10 ms). Default 200. */
  pollMs?: number;
  /** Called about every `onWaitIntervalMs` (default 2000) while another process holds the lock. */
  onWait?: (waitedMs: number) => void;
  onWaitIntervalMs?: number;
  /** Give up with LockTimeoutError after this long. Default: wait forever, like huggingface_hub. */
  timeoutMs?: number;
}

/** acquireLock gave up after `timeoutMs`. */
export class LockTimeoutError extends HubcacheError {
  constructor(
    readonly lockPath: string,
    readonly waitedMs: number,
  ) {
    super(`Timed out after ${Math.round(waitedMs)} ms waiting for lock ${lockPath}`, {
      hint: 'Another process (hubcache or huggingface_hub) is downloading the same file; retry later.',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Switches

let locksDisabled = false;
let softForced = false;

/**
 * Tests: when disabled, acquireLock/tryAcquireLock return a no-op lock at once and isLocked is
 * always false. Models NFS, where flock may "succeed" without excluding anyone.
 */
export function setLocksDisabled(disabled: boolean): void {
  locksDisabled = disabled;
}

/** Tests: use the soft-lock fallback even though the addon is available. */
export function setSoftLocksForced(forced: boolean): void {
  softForced = forced;
}

/** Whether real flock(2) locks (interoperable with Python) are used. */
export function lockingAvailable(): boolean {
  return !softForced && loadAddon() !== undefined;
}

/** Why flock is not available (for `doctor`-style output), or undefined when it is. */
export function lockingUnavailableReason(): string | undefined {
  if (softForced) return 'soft locks forced';
  loadAddon();
  const error = addonLoadError();
  return error !== undefined ? `native flock addon not loaded: ${error}` : undefined;
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Waits until the exclusive lock on `lockPath` is held. Polls a non-blocking flock with a backoff
 * of 10 ms up to `pollMs` (200). Throws AbortedError when the signal fires (no fd is left open)
 * and LockTimeoutError after `timeoutMs`.
 */
export async function acquireLock(lockPath: string, opts: AcquireLockOptions = {}): Promise<FileLock> {
  const { signal } = opts;
  throwIfAborted(signal);
  if (locksDisabled) return noopLock(lockPath);
  // No mkdir up front: opening the lock file creates its folder on ENOENT (one syscall less
  // per file, which matters for repos of many small files).

  const cap = Math.max(1, opts.pollMs ?? 200);
  const reportEvery = Math.max(1, opts.onWaitIntervalMs ?? 2000);
  const started = performance.now();
  let nextReport = reportEvery;
  let delay = Math.min(10, cap);
  const attempt = attempter(lockPath);
  for (;;) {
    const lock = await attempt();
    if (lock) {
      // An abort that raced with a successful attempt still wins: callers never get a lock back
      // after their signal fired.
      if (signal?.aborted) {
        await lock.release();
        throw AbortedError.from(signal);
      }
      return lock;
    }
    const waited = performance.now() - started;
    if (opts.timeoutMs !== undefined && waited >= opts.timeoutMs) throw new LockTimeoutError(lockPath, waited);
    if (opts.onWait && waited >= nextReport) {
      opts.onWait(waited);
      while (nextReport <= waited) nextReport += reportEvery;
    }
    let pause = delay;
    if (opts.timeoutMs !== undefined) pause = Math.max(1, Math.min(pause, opts.timeoutMs - waited));
    try {
      await sleep(pause, undefined, signal ? { signal } : undefined);
    } catch (err) {
      if (signal?.aborted) throw AbortedError.from(signal);
      throw err;
    }
    delay = Math.min(delay * 1.5, cap);
  }
}

/** One non-blocking attempt: the lock, or null when someone else holds it. */
export async function tryAcquireLock(lockPath: string): Promise<FileLock | null> {
  if (locksDisabled) return noopLock(lockPath);
  return attempter(lockPath)();
}

/**
 * Whether some process holds the lock (used by cleanup commands to skip in-use files).
 * Note: a lock held by *this* process through another fd also counts, flock being per open file.
 */
export async function isLocked(lockPath: string): Promise<boolean> {
  if (locksDisabled) return false;
  const addon = softForced ? undefined : loadAddon();
  if (addon) {
    let handle: FileHandle | undefined;
    try {
      handle = await open(lockPath, fsConstants.O_RDONLY);
    } catch (err) {
      if (!isCode(err, 'ENOENT', 'ENOTDIR')) throw err;
    }
    if (handle) {
      try {
        // A shared lock conflicts only with an exclusive holder, and never blocks other readers.
        if (!addon.flock(handle.fd, false, true)) return true;
        addon.unlock(handle.fd);
      } catch (err) {
        if (!isUnsupported(err)) throw err;
      } finally {
        await handle.close();
      }
    }
  }
  // Also honour soft locks: a hubcache without the addon (or on a no-flock FS) may hold one.
  return softLockHeld(softPathOf(lockPath));
}

// ---------------------------------------------------------------------------------------------
// Implementation

class HeldLock implements FileLock {
  #releaser: (() => Promise<void>) | undefined;
  #releasing: Promise<void> | undefined;
  constructor(
    readonly path: string,
    readonly kind: LockKind,
    releaser: () => Promise<void>,
  ) {
    this.#releaser = releaser;
  }
  get released(): boolean {
    return this.#releaser === undefined;
  }
  release(): Promise<void> {
    if (this.#releasing) return this.#releasing;
    const releaser = this.#releaser;
    this.#releaser = undefined;
    this.#releasing = releaser ? releaser() : Promise.resolve();
    return this.#releasing;
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

function noopLock(lockPath: string): FileLock {
  return new HeldLock(lockPath, 'none', () => Promise.resolve());
}

const UNSUPPORTED = Symbol('flock unsupported');

/**
 * Returns a function making one attempt. It starts with flock when the addon is there and
 * switches to the soft lock for good once the file system says flock is not supported.
 */
function attempter(lockPath: string): () => Promise<FileLock | null> {
  const addon = softForced ? undefined : loadAddon();
  let useFlock = addon !== undefined;
  return async () => {
    if (useFlock && addon) {
      const result = await tryFlock(lockPath, addon);
      if (result !== UNSUPPORTED) return result;
      useFlock = false;
    }
    const release = await trySoftLock(lockPath);
    return release ? new HeldLock(lockPath, 'soft', release) : null;
  };
}

/**
 * Like filelock's UnixFileLock: open(O_RDWR|O_CREAT|O_TRUNC, 0o664) afresh on every attempt
 * (so a lock file deleted by a cleanup is re-created rather than locking an orphaned inode),
 * flock(LOCK_EX|LOCK_NB), close on failure.
 */
async function tryFlock(lockPath: string, addon: FlockAddon): Promise<FileLock | null | typeof UNSUPPORTED> {
  const handle = await openLockFile(lockPath);
  let locked: boolean;
  try {
    locked = addon.flock(handle.fd, true, true);
  } catch (err) {
    await handle.close();
    if (isUnsupported(err)) return UNSUPPORTED;
    throw err;
  }
  if (!locked) {
    await handle.close();
    return null;
  }
  return new HeldLock(lockPath, 'flock', async () => {
    try {
      addon.unlock(handle.fd);
    } catch {
      // Closing the fd below drops the lock anyway.
    }
    await handle.close();
  });
}

async function openLockFile(lockPath: string): Promise<FileHandle> {
  const { O_RDWR, O_CREAT, O_TRUNC, O_RDONLY } = fsConstants;
  let handle: FileHandle;
  try {
    handle = await open(lockPath, O_RDWR | O_CREAT | O_TRUNC, 0o664);
  } catch (err) {
    if (isCode(err, 'ENOENT')) {
      // The .locks folder was removed under us (cache cleanup): re-create it once.
      await mkdirp(dirname(lockPath));
      handle = await open(lockPath, O_RDWR | O_CREAT | O_TRUNC, 0o664);
    } else if (isCode(err, 'EACCES', 'EPERM', 'EROFS')) {
      // Shared cache where another user created the lock file 0o644, or a read-only mount:
      // flock does not need write access on local file systems, so lock a read-only fd.
      try {
        return await open(lockPath, O_RDONLY);
      } catch {
        throw err;
      }
    } else {
      throw err;
    }
  }
  // filelock fchmods too, so the umask cannot stop other users of a shared cache from locking.
  await handle.chmod(0o664).catch(() => undefined);
  return handle;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** flock errors meaning "this file system cannot flock"; ENOLCK is NFS without a lock daemon. */
function isUnsupported(err: unknown): boolean {
  return isCode(err, 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'ENOLCK');
}
