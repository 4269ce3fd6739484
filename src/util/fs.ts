// Small file-system helpers shared by the layouts. Writes that others may read concurrently go
// through a temp file in the same directory and a rename, so nobody sees half a file.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** A regular file, following symlinks (a broken link is not a file). */
export async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * `mkdir -p` that always ends. Node 20's own `fs.mkdir(p, { recursive: true })` loops forever in a
 * thread-pool thread (100% CPU, and the process can no longer exit) when a folder's parent exists
 * but refuses children with ENOENT, as /proc does: it retries mkdir(child) after each EEXIST of the
 * parent. Here each level is tried at most twice, so any such answer ends as the error it is.
 */
export async function mkdirp(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  try {
    await fs.mkdir(abs);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await fs.stat(abs).catch(() => undefined))?.isDirectory()) return;
      throw err;
    }
    if (code !== 'ENOENT' || path.dirname(abs) === abs) throw err;
  }
  await mkdirp(path.dirname(abs));
  try {
    await fs.mkdir(abs);
  } catch (err) {
    // Made meanwhile by another process: fine. Anything else (ENOENT again: /proc) is final.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!(await fs.stat(abs).catch(() => undefined))?.isDirectory()) throw err;
  }
}

/**
 * The one temp-name pattern of every atomic write hubcache makes (layouts, manifests, packs):
 * `.<base>.<8 hex>.hctmp` beside the target, so the rename stays on one file system, the name is
 * hidden, and scans and prune recognise it anywhere (isAtomicTemp).
 */
export function atomicTempPath(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(4).toString('hex')}.hctmp`);
}

const ATOMIC_TEMP_RE = /^\..+\.[0-9a-f]{8}\.hctmp$/;
const LEGACY_TEMP_RE = /\.[0-9a-f]{8}\.tmp$/;

/** Whether a file name (not a path) is a temp of an atomic write: never a finished file. */
export function isAtomicTemp(name: string): boolean {
  return ATOMIC_TEMP_RE.test(name);
}

/**
 * Names hubcache wrote before the one pattern (`<name>.<hex>.tmp`, `.<name>.<hex>.tmp`). Only
 * where no repo file can be (refs/, blobs/, a snapshot's links): elsewhere it may be a real file.
 */
export function isLegacyAtomicTemp(name: string): boolean {
  return LEGACY_TEMP_RE.test(name);
}

/** The target a temp path stands for (the path itself when it is no temp). */
export function atomicTempTarget(p: string): string {
  const base = path.basename(p);
  if (!isAtomicTemp(base) && !isLegacyAtomicTemp(base)) return p;
  const bare = base.replace(/\.[0-9a-f]{8}\.(?:hc)?tmp$/, '');
  return path.join(path.dirname(p), bare.startsWith('.') ? bare.slice(1) : bare);
}

/**
 * Replaces `dest` atomically: `make` fills a temp name beside it, which is then renamed over
 * `dest`. When `make` or the rename fails, `dest` is unchanged and the temp is removed.
 */
export async function replaceAtomically<T>(dest: string, make: (tmp: string) => Promise<T>): Promise<T> {
  await mkdirp(path.dirname(dest));
  const tmp = atomicTempPath(dest);
  try {
    const out = await make(tmp);
    await fs.rename(tmp, dest);
    return out;
  } finally {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** Writes `data` to `p` atomically: temp file beside it, fsync, rename. */
export async function writeFileAtomic(p: string, data: string | Uint8Array): Promise<void> {
  await replaceAtomically(p, async (tmp) => {
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

/**
 * writeFileAtomic unless `p` already holds exactly `data`: a refresh of what is there costs no
 * write, so a complete cache on a read-only mount (or another user's) still serves.
 */
export async function writeFileIfChanged(p: string, data: string | Uint8Array): Promise<boolean> {
  const want = typeof data === 'string' ? Buffer.from(data) : data;
  const have = await fs.readFile(p).catch(() => undefined);
  if (have && Buffer.compare(have, want) === 0) return false;
  await writeFileAtomic(p, data);
  return true;
}

/** Removes `dir` if it holds nothing but (nested) empty folders; true when it is gone. Never removes a file or link. */
export async function removeEmptyTree(dir: string): Promise<boolean> {
  const st = await fs.lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return false;
  let empty = true;
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || !(await removeEmptyTree(path.join(dir, e.name)))) empty = false;
  }
  return (
    empty &&
    (await fs.rmdir(dir).then(
      () => true,
      () => false,
    ))
  );
}
