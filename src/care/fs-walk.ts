// File-system reads for scanning, tolerant of damage (a missing or unreadable folder is empty,
// never an exception) and batched, so a cache of many thousand files scans in well under a second.
import type { Dirent, Stats } from 'node:fs';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

// Containment lives with the other path-safety rules; re-exported for the care modules.
export { isInside } from '../util/safe-path.js';

/** Sync stat/readlink calls between two yields to the event loop. */
const SYNC_BATCH = 512;

/** Names the OS sprinkles into folders; huggingface_hub's scan skips them too. */
export const JUNK_NAMES = new Set(['.DS_Store', 'Thumbs.db', 'desktop.ini']);

export async function readdirSafe(dir: string): Promise<Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

export interface WalkEntry {
  /** Path relative to the walked root, POSIX separators. */
  rel: string;
  abs: string;
  kind: 'file' | 'symlink' | 'other';
}

/**
 * Every non-directory under `root`, recursively. Symlinked directories are not entered (like
 * Python's glob), they come back as `symlink` entries. Folders are read with sync readdir calls,
 * yielding between batches (as inSyncBatches): a snapshot is a folder or a few, and a promise per
 * folder cost more than the read (10,000-file cache: scan 260 ms -> 150 ms).
 */
export async function walkFiles(root: string): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  const pending: Array<{ dir: string; prefix: string }> = [{ dir: root, prefix: '' }];
  for (let n = 1; pending.length > 0; n++) {
    if (n % SYNC_BATCH === 0) await new Promise<void>((r) => setImmediate(r));
    const { dir, prefix } = pending.pop()!;
    for (const e of readdirSyncSafe(dir)) {
      if (JUNK_NAMES.has(e.name)) continue;
      // Below the root, dir is already normalised: a concatenation is path.join's result.
      const abs = prefix ? `${dir}${path.sep}${e.name}` : path.join(dir, e.name);
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) pending.push({ dir: abs, prefix: rel });
      else out.push({ rel, abs, kind: e.isSymbolicLink() ? 'symlink' : e.isFile() ? 'file' : 'other' });
    }
  }
  return out;
}

function readdirSyncSafe(dir: string): Dirent[] {
  try {
    return fsSync.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Every directory under `root` (not `root` itself), deepest first: the order to remove empty ones. */
export async function walkDirs(root: string): Promise<string[]> {
  const out: Array<{ abs: string; depth: number }> = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    const subs = (await readdirSafe(dir)).filter((e) => e.isDirectory());
    await Promise.all(
      subs.map((e) => {
        const abs = path.join(dir, e.name);
        out.push({ abs, depth });
        return visit(abs, depth + 1);
      }),
    );
  };
  await visit(root, 0);
  return out.sort((a, b) => b.depth - a.depth).map((d) => d.abs);
}

/** `fs.stat` (following links) of many paths; undefined where it fails. */
export function statMany(paths: readonly string[]): Promise<Array<Stats | undefined>> {
  return inSyncBatches(paths, (p) => fsSync.statSync(p, { throwIfNoEntry: false }));
}

/** `fs.readlink` of many paths; undefined where it fails. */
export function readlinkMany(paths: readonly string[]): Promise<Array<string | undefined>> {
  return inSyncBatches(paths, (p) => {
    try {
      return fsSync.readlinkSync(p);
    } catch {
      return undefined;
    }
  });
}

/**
 * A small file's text (a ref: 40 bytes), undefined when unreadable. Sync: the promise API's open,
 * fstat, read and close are four trips through the thread pool (100 refs: ~60 ms on a loaded machine).
 */
export function readTextSafe(p: string): string | undefined {
  let fd: number | undefined;
  try {
    // O_NONBLOCK: a FIFO where a ref should be reads as empty instead of blocking the process.
    fd = fsSync.openSync(p, fsSync.constants.O_RDONLY | fsSync.constants.O_NONBLOCK);
    return fsSync.readFileSync(fd, 'utf8');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fsSync.closeSync(fd);
  }
}

/**
 * Runs a cheap sync call over many items, yielding to the event loop between batches. Measured on
 * 10,000 links: sync readlink/stat take ~2 µs each, the promise API 5-10 µs plus GC pressure, so
 * batches of sync calls are 2-3x faster while other work (progress, signals) still gets turns.
 */
async function inSyncBatches<T, R>(items: readonly T[], call: (item: T) => R): Promise<R[]> {
  const out = new Array<R>(items.length);
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && i % SYNC_BATCH === 0) await new Promise<void>((r) => setImmediate(r));
    try {
      out[i] = call(items[i] as T);
    } catch {
      out[i] = undefined as R;
    }
  }
  return out;
}
