// Moving a response body to disk: the socket reads straight into write batches taken from a
// pool, each full batch is written at its file position, and at most WRITE_DEPTH writes of a
// connection are in flight before its socket pauses. A stall watchdog cuts silent connections.
import { NetworkError } from '../errors.js';
import type { BodyConsumer, Http1Response } from '../http/client.js';

/** A slow link still gets its bytes onto disk (and into progress) this often. */
const MAX_BATCH_AGE_MS = 25;
/** Writes in flight per connection: the socket keeps being read while the disk works. */
export const WRITE_DEPTH = 2;

/**
 * Write batches, reused: at 1 GiB/s, fresh buffers per read would keep the garbage collector
 * busier than the hash. Holds at most `keep` idle buffers.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }
}

export interface PumpOptions {
  /**
   * Bytes wanted; more is cut off (a server sending more than asked, or a range that another
   * connection took over meanwhile: the limit may shrink while the body streams).
   */
  limit: () => number;
  /** Called as bytes are accepted, before they are written. */
  onReceived?: (n: number) => void;
  stallMs: number;
  pool: BufferPool;
  /**
   * Start writing `buf[0, length)` right after the previous batch (the callee tracks the file
   * position: calls come in body order). Up to WRITE_DEPTH writes run at once.
   */
  write: (buf: Buffer, length: number) => Promise<void>;
  /** Called in body order once a write and every write before it completed; `buf` is reused after. */
  onWritten: (buf: Buffer, length: number) => void;
}

export interface PumpResult {
  received: number;
  /** True when the body ended by itself (not cut at maxBytes). */
  ended: boolean;
}

interface InFlight {
  done: Promise<void>;
  buf: Buffer;
  len: number;
}

/**
 * Streams the body of `res` to disk. Bytes that arrived before a network error are still
 * written, so a retry resumes after them. The watchdog only counts time spent waiting for the
 * network, never time spent writing to a slow disk.
 */
export function pumpBody(res: Http1Response, o: PumpOptions): Promise<PumpResult> {
  return new Pump(res, o).run();
}

class Pump implements BodyConsumer {
  private batch: Buffer;
  private fill = 0;
  private fillSince = 0;
  private readonly inflight: InFlight[] = [];
  private received = 0;
  /** Waiting for a write to finish (socket paused): the stall clock stops. */
  private blocked = false;
  private lastData = Date.now();
  private finished = false;
  private resolve!: (r: PumpResult) => void;
  private reject!: (e: unknown) => void;
  private watchdog: NodeJS.Timeout | undefined;
  private settling: Promise<void> = Promise.resolve();
  private writeFailed: Error | undefined;

  constructor(
    private readonly res: Http1Response,
    private readonly o: PumpOptions,
  ) {
    this.batch = o.pool.take();
  }

  run(): Promise<PumpResult> {
    const done = new Promise<PumpResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    const stallMs = this.o.stallMs;
    this.watchdog = setInterval(
      () => {
        if (!this.blocked && Date.now() - this.lastData > stallMs) {
          this.res.destroy(
            new NetworkError(`no data received for ${Math.round(stallMs / 1000)} s (stalled connection)`),
          );
        }
      },
      Math.max(50, Math.min(1000, stallMs / 4)),
    );
    this.watchdog.unref();
    this.res.consume(this);
    return done;
  }

  space(): Buffer {
    if (this.fill === this.batch.length) this.issue();
    return this.batch.subarray(this.fill);
  }

  data(n: number): boolean {
    if (this.finished) return false;
    this.lastData = Date.now();
    const max = this.o.limit();
    const take = Math.max(0, Math.min(n, max - this.received));
    if (take < n) {
      // More than we asked for: keep what we wanted, drop the connection.
      this.accept(take);
      this.res.destroy(new NetworkError('response longer than requested'));
      void this.finish(false, undefined);
      return false;
    }
    this.accept(take);
    if (this.received >= max) {
      // All we need. The body normally ends in this same read; if it goes on, cut it.
      queueMicrotask(() => {
        if (this.finished) return;
        this.res.destroy(new NetworkError('response longer than requested'));
        void this.finish(false, undefined);
      });
    }
    return !this.blocked;
  }

  end(): void {
    void this.finish(true, undefined);
  }

  error(err: Error): void {
    void this.finish(false, err);
  }

  private accept(n: number): void {
    if (n <= 0) return;
    this.o.onReceived?.(n);
    if (this.fill === 0) this.fillSince = this.lastData;
    this.fill += n;
    this.received += n;
    if (this.fill === this.batch.length || this.lastData - this.fillSince >= MAX_BATCH_AGE_MS) this.issue();
  }

  /** Start writing the current batch and take a fresh one. */
  private start(): void {
    if (this.fill === 0) return;
    const buf = this.batch;
    const len = this.fill;
    this.batch = this.o.pool.take();
    this.fill = 0;
    const done = this.o.write(buf, len);
    done.catch(() => undefined); // observed in settleOldest
    this.inflight.push({ done, buf, len });
  }

  /** start(); with WRITE_DEPTH writes running, pause the socket until the oldest is done. */
  private issue(): void {
    this.start();
    if (this.inflight.length >= WRITE_DEPTH && !this.blocked && !this.finished) {
      this.blocked = true;
      this.res.pause();
      this.settleOldest().then(
        () => {
          this.blocked = false;
          this.lastData = Date.now();
          if (!this.finished) this.res.resume();
        },
        (err: unknown) => void this.finish(false, err),
      );
    }
  }

  /**
   * Waits for the oldest write and reports it. Calls are chained, so reports stay in body order
   * whoever asks; after a failed write nothing more is reported (`written` must stay contiguous).
   */
  private settleOldest(): Promise<void> {
    const next = this.settling.then(async () => {
      const x = this.inflight.shift();
      if (!x) return;
      if (this.writeFailed) throw this.writeFailed;
      try {
        await x.done;
      } catch (err) {
        this.writeFailed = err instanceof Error ? err : new Error(String(err));
        throw err;
      }
      this.o.onWritten(x.buf, x.len);
      this.o.pool.give(x.buf);
    });
    this.settling = next.catch(() => undefined);
    return next;
  }

  /** Write what is pending and wait for all writes, reporting them in order. */
  private async drain(): Promise<void> {
    if (!this.writeFailed) this.start();
    while (this.inflight.length > 0) await this.settleOldest();
  }

  private async finish(ended: boolean, err: unknown): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.watchdog);
    // Before anything else: no more socket reads into a batch that is about to be written.
    if (!ended) this.res.destroy();
    try {
      // Keep what arrived before a failure; a write error then wins over the network error.
      await this.drain();
    } catch (writeErr) {
      err = writeErr;
    } finally {
      // After a failure: wait for stray writes without reporting them (they may not be contiguous).
      await this.settling;
      await Promise.allSettled(this.inflight.splice(0).map((x) => x.done));
      this.o.pool.give(this.batch);
    }
    if (err !== undefined) this.reject(err);
    else this.resolve({ received: this.received, ended });
  }
}
