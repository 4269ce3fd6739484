// Single-flight blob fills with streaming (docs/protocols.md §Mirror single-flight). The first caller for a missing
// blob starts one fill (the download layer's ensureBlob: the transfer engine's ranges, resume and
// hash check before commit); later callers join it. Every caller streams from the partial file's
// contiguous written prefix as it grows; a range beyond the prefix waits for its bytes. A caller
// that leaves stops only its own stream. A failed fill is retried once, then fails every stream,
// which cuts its connection: a body is the full Content-Length or nothing.
//
// Until the fill is verified, the last bytes of the file are held back: a client never receives
// a complete body whose hash later turns out wrong. When the engine restarts a file (bad content:
// the prefix shrinks), every stream that already sent bytes is cut.
import { EventEmitter } from 'node:events';
import { promises as fsp, type promises } from 'node:fs';
import { Readable } from 'node:stream';
import { AbortedError } from '../errors.js';
import type { MirrorEventBus } from './events.js';

/** Bytes at the end of a file kept back until the fill is verified. */
const HOLD_BACK = 64 * 1024;
const READ_CHUNK = 1024 * 1024;
const PROGRESS_EVERY_MS = 250;

export interface FillStart {
  /** Runs the fill; resolves with the committed blob's path. `onPartial` as TransferRequest.onPartial. */
  run: (onPartial: (p: { path: string; bytes: number }) => void, signal: AbortSignal) => Promise<string>;
  size: number;
  repo: string;
  path: string;
  upstream: string;
}

/** One blob being filled, shared by every caller that wants it. */
export class Fill extends EventEmitter {
  /** Written contiguous prefix of `partialPath`. */
  prefix = 0;
  partialPath: string | undefined;
  /** Bumped when the partial changes file or shrinks: readers of an older one must not go on. */
  generation = 0;
  finalPath: string | undefined;
  error: Error | undefined;
  waiters = 0;
  readonly started = Date.now();
  readonly done: Promise<string>;
  /**
   * One read handle per file of the fill, shared by its streams: a client fetching in ranges sends
   * hundreds of requests, and an open plus a close each waits behind the fill's own writes in
   * libuv's thread pool. Kept while the fill runs; closed once it settled and no stream uses it.
   */
  private readonly handles = new Map<string, { fh: Promise<promises.FileHandle>; refs: number }>();

  constructor(
    readonly key: string,
    readonly size: number,
  ) {
    super();
    this.setMaxListeners(0);
    this.done = new Promise<string>((resolve, reject) => {
      this.once('committed', resolve);
      this.once('failed', reject);
    });
    this.done.catch(() => undefined);
  }

  notePartial(p: { path: string; bytes: number }): void {
    if (p.path !== this.partialPath || p.bytes < this.prefix) {
      this.generation++;
      this.emit('restart', { shrunk: p.bytes < this.prefix });
    }
    this.partialPath = p.path;
    this.prefix = p.bytes;
    this.emit('progress');
    this.closeUnused();
  }

  commit(finalPath: string): void {
    this.finalPath = finalPath;
    this.prefix = this.size;
    this.emit('committed', finalPath);
    this.emit('progress');
    this.closeUnused();
  }

  fail(err: Error): void {
    this.error = err;
    this.emit('failed', err);
    this.emit('progress');
    this.closeUnused();
  }

  /**
   * A shared read handle on `file` (the partial, or the committed blob) for this generation (a
   * restarted fill may have recreated the file); give it back with release(key).
   */
  acquire(file: string): { key: string; fh: Promise<promises.FileHandle> } {
    const key = `${this.generation}|${file}`;
    let h = this.handles.get(key);
    if (!h) {
      const entry = { fh: fsp.open(file, 'r'), refs: 0 };
      entry.fh.catch(() => {
        if (this.handles.get(key) === entry) this.handles.delete(key); // the next stream tries again
      });
      this.handles.set(key, entry);
      h = entry;
    }
    h.refs++;
    return { key, fh: h.fh };
  }

  release(key: string): void {
    const h = this.handles.get(key);
    if (h) h.refs--;
    this.closeUnused();
  }

  /** Closes handles no stream uses that no later stream can want (the fill settled, restarted or moved). */
  private closeUnused(): void {
    const current = `${this.generation}|${this.partialPath}`;
    for (const [key, h] of this.handles) {
      if (h.refs > 0 || (!this.settled && key === current)) continue;
      this.handles.delete(key);
      void h.fh.then((fh) => fh.close()).catch(() => undefined);
    }
  }

  get settled(): boolean {
    return this.finalPath !== undefined || this.error !== undefined;
  }

  /**
   * Resolves once byte `start` is on disk (or the fill is done), rejects if the fill fails first:
   * a caller can still answer with an error status instead of a cut connection.
   */
  whenAvailable(start: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.error) reject(this.error);
        else if (this.finalPath !== undefined || this.prefix > start) resolve();
        else return;
        this.off('progress', check);
      };
      this.on('progress', check);
      check();
    });
  }

  /** A stream of `[start, end)` that follows the fill. */
  stream(start: number, end: number): Readable {
    return new FillStream(this, start, end);
  }
}

export class FillManager {
  private readonly fills = new Map<string, Fill>();
  private readonly ac = new AbortController();

  constructor(private readonly events: MirrorEventBus) {}

  /** The running fill for `key`, if any (a peer replica streams from it). */
  get(key: string): Fill | undefined {
    return this.fills.get(key);
  }

  /** The running fill for `key`, or a new one started with `start`. */
  join(key: string, start: FillStart): Fill {
    const running = this.fills.get(key);
    if (running) {
      this.events.emit('fill-join', { key, waiters: running.waiters + 1 });
      return running;
    }
    const fill = new Fill(key, start.size);
    this.fills.set(key, fill);
    this.events.emit('fill-start', {
      key,
      repo: start.repo,
      path: start.path,
      size: start.size,
      upstream: start.upstream,
    });
    let lastEmit = 0;
    fill.on('progress', () => {
      const now = Date.now();
      if (now - lastEmit < PROGRESS_EVERY_MS || fill.settled) return;
      lastEmit = now;
      this.events.emit('fill-progress', { key, bytes: fill.prefix, size: fill.size, waiters: fill.waiters });
    });
    void this.run(fill, start);
    return fill;
  }

  private async run(fill: Fill, start: FillStart): Promise<void> {
    let lastErr: Error | undefined;
    for (let attempt = 0; attempt < 2 && !this.ac.signal.aborted; attempt++) {
      try {
        const finalPath = await start.run((p) => fill.notePartial(p), this.ac.signal);
        fill.commit(finalPath);
        this.fills.delete(fill.key);
        this.events.emit('fill-end', { key: fill.key, ok: true, bytes: fill.size, ms: Date.now() - fill.started });
        return;
      } catch (err) {
        lastErr = err instanceof Error ? err : new Error(String(err));
        if (err instanceof AbortedError) break;
        // The retry may resume the same partial; anything sent from the old one is cut (restart).
        fill.notePartial({ path: '', bytes: 0 });
      }
    }
    const err = lastErr ?? new AbortedError();
    this.fills.delete(fill.key);
    fill.fail(err);
    this.events.emit('fill-end', {
      key: fill.key,
      ok: false,
      bytes: fill.prefix,
      ms: Date.now() - fill.started,
      error: err.message,
    });
  }

  /** Fills in progress (for the status page). */
  active(): Array<{ key: string; bytes: number; size: number; waiters: number; startedAt: number }> {
    return [...this.fills.values()].map((f) => ({
      key: f.key,
      bytes: f.prefix,
      size: f.size,
      waiters: f.waiters,
      startedAt: f.started,
    }));
  }

  /** Stops every fill (shutdown); their streams fail. */
  abortAll(): void {
    this.ac.abort();
  }
}

/** Reads `[pos, end)` of a filling blob, waiting for the prefix to grow; fails with the fill. */
class FillStream extends Readable {
  private pos: number;
  private fh: promises.FileHandle | undefined;
  private fhPath: string | undefined;
  /** What `fh` was acquired under from the fill. */
  private fhKey: string | undefined;
  private generation: number;
  /** Bytes pushed so far (read by the request event when a response is cut). */
  sent = 0;
  private reading = false;
  private readonly onProgress = (): void => void this.pump();
  private readonly onRestart = (e: { shrunk: boolean }): void => {
    if (this.sent > 0 && (e.shrunk || this.fill.prefix < this.pos))
      this.destroy(new Error('blob fill restarted; cutting the stream'));
  };

  constructor(
    private readonly fill: Fill,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.pos = start;
    this.generation = fill.generation;
    fill.waiters++;
    fill.on('progress', this.onProgress);
    fill.on('restart', this.onRestart);
  }

  override _read(): void {
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.reading || this.destroyed) return;
    this.reading = true;
    try {
      for (;;) {
        if (this.pos >= this.end) {
          // Everything of the range is out; for a range ending at the file's end, after the verify.
          if (this.end < this.fill.size || this.fill.finalPath !== undefined) {
            this.push(null);
            return;
          }
        }
        if (this.fill.error) {
          this.destroy(new Error(`blob fill failed: ${this.fill.error.message}`));
          return;
        }
        const avail = this.fill.finalPath !== undefined ? this.end : Math.min(this.end, this.readableLimit());
        if (avail <= this.pos) return; // wait for progress
        const fh = await this.handle();
        if (!fh) return;
        const len = Math.min(READ_CHUNK, avail - this.pos);
        const buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await fh.read(buf, 0, len, this.pos);
        if (this.destroyed) return;
        if (bytesRead === 0) return; // not there yet after all (a restart raced us)
        this.pos += bytesRead;
        this.sent += bytesRead;
        if (!this.push(bytesRead === len ? buf : buf.subarray(0, bytesRead))) return;
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.reading = false;
    }
  }

  /** Prefix bytes that may go out now: all of them, except the file's last HOLD_BACK until verified. */
  private readableLimit(): number {
    const f = this.fill;
    return Math.min(f.prefix, f.size - Math.min(HOLD_BACK, f.size));
  }

  /** The open partial (or, once committed, the blob); reopened when the fill moved to another file. */
  private async handle(): Promise<promises.FileHandle | undefined> {
    const f = this.fill;
    const want = f.finalPath !== undefined && this.fhPath === undefined ? f.finalPath : f.partialPath;
    if (this.fh && (this.generation === f.generation || f.finalPath !== undefined)) return this.fh;
    if (!want) return undefined;
    this.giveBack();
    const { key, fh } = f.acquire(want);
    this.fhKey = key;
    this.fhPath = want;
    this.generation = f.generation;
    try {
      this.fh = await fh;
    } catch (err) {
      // The partial was just moved into place and the commit is on its way (or the fill failed).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || want === f.finalPath) throw err;
      this.giveBack();
      const finalPath = await f.done;
      const again = f.acquire(finalPath);
      this.fhKey = again.key;
      this.fhPath = finalPath;
      this.fh = await again.fh;
    }
    return this.fh;
  }

  private giveBack(): void {
    if (this.fhKey !== undefined) this.fill.release(this.fhKey);
    this.fh = undefined;
    this.fhKey = undefined;
    this.fhPath = undefined;
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.fill.waiters--;
    this.fill.off('progress', this.onProgress);
    this.fill.off('restart', this.onRestart);
    this.giveBack();
    cb(err);
  }
}
