// File-system helpers: free-space checks, full-disk mapping, positional writes, file mode.
import { promises as fsp } from 'node:fs';
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


const FULL_HINT = 'Free some space (e.g. `hf cache prune`) or point the cache to a larger disk; the partial download is kept and resumes.';

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
 * Positional writes into one file, one at a time. Concurrent write() calls on one file contend
 * for its inode lock in the kernel (on ext4 the waiting writers spin on it): on 2 cores that
 * cost more CPU than the copies themselves and at times tripled a download's time. Queued, one
 * thread-pool thread writes while the others stay free; one thread copies well over 2 GB/s into
 * the page cache, more than the hash can follow anyway.
 */
export class SerialFileWriter {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: { fh: FileHandle; path: string },
    private readonly hooks: TransferFsHooks | undefined,
  ) {}

  write(buf: Buffer, position: number): Promise<void> {
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

/** Write all of `buf` at `position` (handles short writes), mapping a full disk to DiskFullError. */
export async function writeAllAt(
  fh: FileHandle,
  filePath: string,
  buf: Buffer,
  position: number,
  hooks: TransferFsHooks | undefined,
): Promise<void> {
  try {
    for (let done = 0; done < buf.length; ) {
      hooks?.beforeWrite?.({ path: filePath, position: position + done, length: buf.length - done });
      const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
      if (bytesWritten === 0) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
      done += bytesWritten;
    }
  } catch (err) {
    if (isDiskFull(err)) throw diskFullError(path.dirname(filePath), err);
    throw err;
  }
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
