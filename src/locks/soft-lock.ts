// Soft locks: the fallback when flock(2) is not available (no addon, or a file system without
// flock), between hubcache processes only.
//
// Why `<lockPath>.soft` and not `<lockPath>`: huggingface_hub's own soft fallback creates the
// .lock path itself with O_EXCL, but that path is also the flock target of every Python process
// and is left on disk after release, so an O_EXCL lock there would look "held" forever. A separate
// name cannot clash with flock users. The file holds {pid, hostname, time}; it is refreshed every
// minute while held and counts as stale (and is broken) when its pid is dead on this host or it
// was not refreshed for 10 minutes (a crashed process on another host of a shared cache).
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import { link, open, readFile, rename, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { isCode } from '../util/errno.js';
import { mkdirp } from '../util/fs.js';
import { pidAlive } from '../util/process.js';

const SOFT_STALE_MS = 10 * 60_000;
const SOFT_REFRESH_MS = 60_000;

interface SoftOwner {
  pid: number;
  hostname: string;
  time: number;
}

export function softPathOf(lockPath: string): string {
  return `${lockPath}.soft`;
}

/** One attempt; resolves with the release function, or null when someone else holds it. */
export async function trySoftLock(lockPath: string): Promise<(() => Promise<void>) | null> {
  const softPath = softPathOf(lockPath);
  const { O_WRONLY, O_CREAT, O_EXCL } = fsConstants;
  for (let round = 0; round < 2; round++) {
    let handle: FileHandle;
    try {
      handle = await open(softPath, O_WRONLY | O_CREAT | O_EXCL, 0o664);
    } catch (err) {
      if (isCode(err, 'ENOENT') && round === 0) {
        await mkdirp(dirname(lockPath));
        continue;
      }
      if (!isCode(err, 'EEXIST')) throw err;
      if (round === 0 && (await breakSoftLockIfStale(softPath))) continue;
      return null;
    }
    let ours: Stats;
    try {
      const owner: SoftOwner = { pid: process.pid, hostname: hostname(), time: Date.now() };
      await handle.writeFile(`${JSON.stringify(owner)}\n`);
      ours = await handle.stat();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await unlink(softPath).catch(() => undefined);
      throw err;
    }
    await handle.close();
    const refresh = setInterval(() => {
      const now = new Date();
      utimes(softPath, now, now).catch(() => undefined);
    }, SOFT_REFRESH_MS);
    refresh.unref();
    return async () => {
      clearInterval(refresh);
      // Only delete the file if it is still ours (someone may have judged us stale and re-locked).
      const current = await stat(softPath).catch(() => undefined);
      if (current && sameFile(current, ours)) await unlink(softPath).catch(() => undefined);
    };
  }
  return null;
}

async function readSoftOwner(softPath: string): Promise<SoftOwner | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(softPath, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const o = parsed as Record<string, unknown>;
    if (typeof o.pid !== 'number' || typeof o.hostname !== 'string' || typeof o.time !== 'number') return undefined;
    return { pid: o.pid, hostname: o.hostname, time: o.time };
  } catch {
    // Missing, or being written right now (empty): judge by mtime only.
    return undefined;
  }
}

function isSoftLockStale(owner: SoftOwner | undefined, st: Stats): boolean {
  if (owner && owner.hostname === hostname() && !pidAlive(owner.pid)) return true;
  return Date.now() - st.mtimeMs > SOFT_STALE_MS;
}

export async function softLockHeld(softPath: string): Promise<boolean> {
  const st = await stat(softPath).catch(() => undefined);
  if (!st) return false;
  return !isSoftLockStale(await readSoftOwner(softPath), st);
}

/**
 * Removes a stale soft lock; true when the caller should retry creating it. Renaming the file
 * aside first (instead of unlinking by name) makes sure that, when two waiters break the same
 * stale lock, the slower one cannot delete the fresh lock the faster one just created.
 */
async function breakSoftLockIfStale(softPath: string): Promise<boolean> {
  const st = await stat(softPath).catch(() => undefined);
  if (!st) return true;
  if (!isSoftLockStale(await readSoftOwner(softPath), st)) return false;
  const aside = `${softPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(softPath, aside);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return true;
    throw err;
  }
  const moved = await stat(aside).catch(() => undefined);
  if (moved && !sameFile(moved, st)) {
    // We moved a lock someone created after our check: put it back unless yet another exists.
    await link(aside, softPath).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}
