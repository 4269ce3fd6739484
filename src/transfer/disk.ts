// File-system helpers: free-space checks, full-disk mapping, positional writes, file mode.
import { promises as fsp, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { DiskFullError } from '../errors.js';
import type { TransferFsHooks } from './types.js';
import { formatBytes } from '../util/format.js';

const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DISK_FULL_CODES.has(code);
}

const FULL_HINT =
  'Free some space (e.g. `hf cache prune`) or point the cache to a larger disk; the partial download is kept and resumes.';

export function diskFullError(dir: string, err: unknown): DiskFullError {
  return new DiskFullError(`No space left on device while writing into ${dir}`, undefined, undefined, {
    cause: err,
    hint: FULL_HINT,
  });
}

/** Bytes free for us in the file system of `dir`; undefined where statfs is unsupported. */
export async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const st = await fsp.statfs(dir);
    return st.bavail * st.bsize;
  } catch {
    return undefined; // the write path still maps ENOSPC
  }
}

/**
 * Throws DiskFullError when the file system of `dir` cannot take `needed` more bytes. `free`
 * may be given (a recent statfs shared by many small files).
 */
export async function ensureFreeSpace(dir: string, needed: number, free?: Promise<number | undefined>): Promise<void> {
  if (needed <= 0) return;
  const available = await (free ?? freeBytes(dir));
  if (available !== undefined && available < needed) {
    throw new DiskFullError(
      `Not enough disk space in ${dir}: need ${formatBytes(needed)}, ${formatBytes(available)} free`,
      needed,
      available,
      { hint: FULL_HINT },
    );
  }
}

/**
 * Positional writes into one file, one at a time, on the event loop while the page cache takes
 * them quickly, else on the thread pool.
 *
 * Why synchronous: a write into the page cache is a memory copy (~0.2 ms per MiB), and handing
 * each one to a thread-pool thread and back cost more than the copy: with 1 GiB on loopback the
 * socket sat paused, waiting for writes, 950 ms of a 1.25 s download; written in place the
 * download took 0.97 s. curl and aria2c write the same way. Why one at a time: concurrent
 * write() calls on one file contend for its inode lock (ext4 writers spin on it), which on 2
 * cores at times tripled a download's time. Why the escape: a slow disk or a network file system
 * can block a write for long; after one write slower than SLOW_WRITE_MS the writer moves to the
 * thread pool for good, so timers (heartbeats, stall watchdogs, progress) keep running.
 */
export class SerialFileWriter {
  private tail: Promise<void> = Promise.resolve();
  private inline = true;

  /** Whether writes still happen on the event loop (false after a slow one). */
  get onEventLoop(): boolean {
    return this.inline;
  }

  constructor(
    private readonly file: { fh: FileHandle; path: string },
    private readonly hooks: TransferFsHooks | undefined,
  ) {}

  write(buf: Buffer, position: number): Promise<void> {
    if (this.inline) {
      const started = performance.now();
      try {
        writeAllAtSync(this.file.fh.fd, this.file.path, buf, position, this.hooks);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      } finally {
        if (performance.now() - started > SLOW_WRITE_MS) this.inline = false;
      }
      return Promise.resolve();
    }
    const next = this.tail.then(() => writeAllAt(this.file.fh, this.file.path, buf, position, this.hooks));
    this.tail = next.catch(() => undefined);
    return next;
  }

  /**
   * A body pump's `write`: each batch lands right after the previous one, starting at `from`.
   * The offset advances when a write is issued, so batches in flight never overlap.
   */
  from(from: number): (buf: Buffer, len: number) => Promise<void> {
    let issued = from;
    return (buf, len) => {
      const at = issued;
      issued += len;
      return this.write(buf.subarray(0, len), at);
    };
  }
}

/** A write on the event loop slower than this moves a file's writes to the thread pool. */
const SLOW_WRITE_MS = 50;

/**
 * Largest single write(2). Linux (6.x) fills the page cache with folios as large as each write,
 * and in a VM whose host reclaims free memory, large folios come from reclaimed memory and are
 * slow to first touch: 1 GiB written 1 MiB at a time took 2.5 s there, 256 KiB at a time 0.17 s
 * (dd, after deleting a file and 3 s idle). So a 1 MiB batch goes down in four writes.
 */
const MAX_WRITE = 256 * 1024;

/** Write all of `buf` at `position` (handles short writes), mapping a full disk to DiskFullError. */
export async function writeAllAt(
  fh: FileHandle,
  filePath: string,
  buf: Buffer,
  position: number,
  hooks: TransferFsHooks | undefined,
): Promise<void> {
  try {
    for (let done = 0; done < buf.length;) {
      hooks?.beforeWrite?.({ path: filePath, position: position + done, length: buf.length - done });
      const { bytesWritten } = await fh.write(buf, done, Math.min(MAX_WRITE, buf.length - done), position + done);
      done += checkedWrite(bytesWritten);
    }
  } catch (err) {
    throw writeError(filePath, err);
  }
}

/** writeAllAt on the calling thread. */
function writeAllAtSync(
  fd: number,
  filePath: string,
  buf: Buffer,
  position: number,
  hooks: TransferFsHooks | undefined,
): void {
  try {
    for (let done = 0; done < buf.length;) {
      hooks?.beforeWrite?.({ path: filePath, position: position + done, length: buf.length - done });
      done += checkedWrite(writeSync(fd, buf, done, Math.min(MAX_WRITE, buf.length - done), position + done));
    }
  } catch (err) {
    throw writeError(filePath, err);
  }
}

function checkedWrite(bytesWritten: number): number {
  if (bytesWritten === 0) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
  return bytesWritten;
}

function writeError(filePath: string, err: unknown): unknown {
  return isDiskFull(err) ? diskFullError(path.dirname(filePath), err) : err;
}

let cachedUmask: number | undefined;

/** The process umask, read without changing it (umask() can only be read by setting it). */
export function currentUmask(): number {
  if (cachedUmask !== undefined) return cachedUmask;
  try {
    const old = process.umask(0o022);
    process.umask(old);
    cachedUmask = old;
  } catch {
    cachedUmask = 0o022; // worker threads cannot call umask
  }
  return cachedUmask;
}

/** Mode a freshly created file gets, as huggingface_hub sets on blobs (not mkstemp's 0600). */
export function defaultFileMode(): number {
  return 0o666 & ~currentUmask();
}

/** fsync a directory so a rename in it survives power loss; best effort (not all FS allow it). */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // Not supported on this file system; the rename is still atomic.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

export async function unlinkQuiet(p: string): Promise<void> {
  try {
    await fsp.unlink(p);
  } catch {
    // already gone or not ours to remove
  }
}

/** True when `p` is a regular file of exactly `size` bytes. */
export async function existsWithSize(p: string, size: number): Promise<boolean> {
  try {
    const st = await fsp.stat(p);
    return st.isFile() && st.size === size;
  } catch {
    return false;
  }
}
