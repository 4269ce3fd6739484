// Tar I/O for pack and unpack over tar-stream, streaming both ways: a multi-GB file goes through
// in pieces with back-pressure, never held in memory. tar-stream writes ustar, with a pax header
// for long or non-ASCII names and long link targets, and GNU base-256 for sizes of 8 GiB and more
// (GNU tar, bsdtar and Python's tarfile read all three). Reading hands out files, directories and
// symlinks only; what a member may be called and point at is pack-format.ts's concern.
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { extract, pack, type Extract, type Header, type Pack } from 'tar-stream';
import { HubcacheError } from '../errors.js';
import { refuseMember } from './pack-format.js';

const COPY_CHUNK = 1 << 20;

/** The bytes are not a tar we can read (bad checksum, truncated, malformed header). */
export class TarFormatError extends Error {}

// ---------------------------------------------------------------------------------------------
// Writing

/** Appends entries to a file handle opened for writing; `finish()` writes the end marker. */
export class TarFileWriter {
  /** Bytes written so far. */
  bytes = 0;
  private readonly tar: Pack = pack();
  private readonly drained: Promise<void>;
  /** Why writing to the file stopped (ENOSPC...): the error every later call reports. */
  private failure: Error | undefined;

  constructor(out: FileHandle) {
    this.drained = (async () => {
      for await (const chunk of this.tar as AsyncIterable<Buffer>) {
        let off = 0;
        while (off < chunk.length) off += (await out.write(chunk, off, chunk.length - off)).bytesWritten;
        this.bytes += chunk.length;
      }
    })();
    this.drained.catch((err: unknown) => {
      this.failure = err instanceof Error ? err : new Error(String(err)); // surfaced by the entry that fails, or by finish()
    });
  }

  async addSymlink(name: string, target: string, mtimeMs: number): Promise<void> {
    await this.entry({ name, type: 'symlink', linkname: target, mode: 0o777, mtime: new Date(mtimeMs) });
  }

  async addBuffer(name: string, data: Buffer, mtimeMs: number): Promise<void> {
    await this.entry({ name, type: 'file', mode: 0o644, mtime: new Date(mtimeMs) }, data);
  }

  /**
   * Copies `size` bytes of `src` into the archive, handing every chunk to `onChunk` (for
   * hashing). Fails if the file is shorter than `size` (it changed while being packed).
   */
  async addFile(
    name: string,
    src: FileHandle,
    size: number,
    mtimeMs: number,
    onChunk: (chunk: Buffer) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.failure) throw this.failure;
    let sink!: ReturnType<Pack['entry']>;
    const done = new Promise<void>((resolve, reject) => {
      sink = this.tar.entry({ name, type: 'file', size, mode: 0o644, mtime: new Date(mtimeMs) }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
    done.catch(() => undefined);
    try {
      for (let at = 0; at < size;) {
        signal?.throwIfAborted();
        // A fresh buffer per read: tar-stream queues the chunk itself, it does not copy it.
        const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, size - at));
        const { bytesRead } = await src.read(buf, 0, buf.length, at);
        if (bytesRead === 0) {
          throw new TarFormatError(`${name} shrank while it was being packed (${at} of ${size} bytes)`);
        }
        const chunk = buf.subarray(0, bytesRead);
        onChunk(chunk);
        if (!sink.write(chunk)) await drainOrClose(sink);
        if (sink.destroyed) await Promise.race([done, this.drained]); // rejects: the writer stopped
        at += bytesRead;
      }
      sink.end(undefined);
      await Promise.race([done, this.drained.then(() => done)]);
    } catch (err) {
      this.tar.destroy(err as Error);
      throw this.failure ?? err;
    }
  }

  /** Stops writing (the caller removes the partial file). */
  abort(err: Error): void {
    this.tar.destroy(err);
  }

  /** The end-of-archive marker; resolves once everything is written to the file. */
  async finish(): Promise<void> {
    this.tar.finalize();
    await this.drained;
  }

  private async entry(header: Partial<Header> & { name: string }, data?: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    const done = new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (data) this.tar.entry(header, data, cb);
      else this.tar.entry(header, cb);
    });
    await Promise.race([done, this.drained.then(() => done)]).catch((err: unknown) => {
      throw this.failure ?? err;
    });
  }
}

/** Waits for room in `stream`, or for its end; at once if it is already destroyed (no event will come). */
function drainOrClose(stream: NodeJS.EventEmitter & { destroyed: boolean }): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) {
      resolve();
      return;
    }
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  size: number;
  linkName?: string;
  /** The entry's bytes; read it before asking for the next entry (or it is skipped). */
  body: AsyncIterable<Buffer>;
}

/**
 * Entries of the tar file at `file`, streamed. Hard links, devices, FIFOs and every other type
 * are refused by name (UnsafePathError); a malformed or truncated archive is a TarFormatError.
 * Errors of the caller's own (thrown while it handles an entry) pass through unchanged.
 */
export async function* readTarFile(
  file: string,
  opts: { signal?: AbortSignal; onBytes?: (read: number) => void } = {},
): AsyncGenerator<TarEntry> {
  const source = createReadStream(file, { highWaterMark: 1 << 20, ...(opts.signal ? { signal: opts.signal } : {}) });
  const ex = extract();
  const feeding = feed(source, ex, opts.onBytes);
  const it = ex[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next;
      try {
        next = await it.next();
      } catch (err) {
        throw asFormatError(err);
      }
      if (next.done) break;
      const stream = next.value;
      const h = stream.header;
      const type = h.type === 'file' || h.type === 'contiguous-file' ? 'file' : h.type === 'directory' ? 'dir' : h.type;
      if (type !== 'file' && type !== 'dir' && type !== 'symlink') {
        const what = type ?? 'member of an unknown type';
        return refuseMember(h.name, `it is a ${what} (only files, folders and symlinks)`);
      }
      if (!Number.isSafeInteger(h.size) || h.size < 0) throw new TarFormatError(`bad size ${h.size} for ${h.name}`);
      let read = false;
      const body: AsyncIterable<Buffer> = {
        [Symbol.asyncIterator]: () => {
          if (read) throw new TarFormatError(`body of ${h.name} read twice`);
          read = true;
          return bodyOf(stream as AsyncIterable<Buffer>, h.name)[Symbol.asyncIterator]();
        },
      };
      const entry: TarEntry = { name: h.name, type, size: type === 'file' ? h.size : 0, body };
      if (type === 'symlink') entry.linkName = h.linkname ?? '';
      yield entry;
      // An unread body is skipped (tar-stream stalls until it is drained).
      if (!read) stream.resume();
    }
    await feeding;
  } finally {
    ex.destroy();
    source.destroy();
  }
}

/** The body's chunks; a stream error (truncation, a bad header after it) becomes a TarFormatError. */
async function* bodyOf(stream: AsyncIterable<Buffer>, name: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield chunk;
  } catch (err) {
    // The extractor destroys the body with a bare "Stream was destroyed" when the archive ends inside it.
    throw asFormatError(err, `archive truncated or malformed inside ${name}`);
  }
}

/** Pipes the file into the extractor with back-pressure; a read error (or abort) destroys it. */
async function feed(source: AsyncIterable<Buffer>, ex: Extract, onBytes?: (read: number) => void): Promise<void> {
  let read = 0;
  try {
    for await (const chunk of source) {
      read += chunk.length;
      onBytes?.(read);
      if (!ex.write(chunk)) await drainOrClose(ex);
      if (ex.destroyed) return;
    }
    ex.end(undefined);
  } catch (err) {
    ex.destroy(err as Error);
  }
}

/**
 * tar-stream's and streamx's errors (plain Errors, StreamError) become TarFormatError; file system
 * errors (they name a syscall), aborts and our own stay what they are.
 */
function asFormatError(err: unknown, message?: string): unknown {
  if (err instanceof HubcacheError || err instanceof TarFormatError) return err;
  const fsOrAbort = (err as NodeJS.ErrnoException).syscall !== undefined || (err as Error).name === 'AbortError';
  if (err instanceof Error && fsOrAbort) return err;
  return new TarFormatError(message ?? (err instanceof Error ? err.message : String(err)));
}
