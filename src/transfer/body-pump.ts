// Reading a response body into disk-sized batches, with a stall watchdog and a short
// write-behind queue.
//
// The body is read with 'data' events, not an async iterator: the iterator's read() joins
// buffered socket chunks into a fresh buffer (one more copy and one more allocation of every
// byte, which on a fast link doubles the garbage and the peak memory). Chunks go to disk as they
// came, gathered by writev, and backpressure pauses the socket while too many writes are pending.
import type { Readable } from 'node:stream';
import { NetworkError } from '../errors.js';

/** A slow link still gets its bytes onto disk (and into progress) this often. */
const MAX_BATCH_AGE_MS = 50;
/** Writes in flight per connection: the socket keeps being read while the disk works. */
export const WRITE_DEPTH = 2;

export interface PumpOptions {
  /** Stop after this many bytes (a server sending more than asked is cut off). */
  maxBytes: number;
  stallMs: number;
  /** Bytes collected before one positional write (a connection holds up to WRITE_DEPTH + 1 batches). */
  batchBytes: number;
  /**
   * Start writing the next `length` bytes of the body (the callee tracks the position: calls
   * come in body order). Up to WRITE_DEPTH writes run at once.
   */
  write: (bufs: Buffer[], length: number) => Promise<void>;
  /** Called in body order once a write and every write before it completed. */
  onWritten: (bufs: Buffer[], length: number) => void;
}

export interface PumpResult {
  received: number;
  /** True when the body ended by itself (not cut at maxBytes). */
  ended: boolean;
}

interface InFlight {
  done: Promise<void>;
  bufs: Buffer[];
  len: number;
}

/**
 * Streams `body` to disk. Bytes that arrived before a network error are still written, so a
 * retry resumes after them. The watchdog only counts time spent waiting for the network,
 * never time spent writing to a slow disk.
 */
export function pumpBody(body: Readable, o: PumpOptions): Promise<PumpResult> {
  return new Pump(body, o).run();
}

class Pump {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private pendingSince = 0;
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
    private readonly body: Readable,
    private readonly o: PumpOptions,
  ) {}

  run(): Promise<PumpResult> {
    const done = new Promise<PumpResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    const stallMs = this.o.stallMs;
    this.watchdog = setInterval(() => {
      if (!this.blocked && Date.now() - this.lastData > stallMs) {
        this.body.destroy(new NetworkError(`no data received for ${Math.round(stallMs / 1000)} s (stalled connection)`));
      }
    }, Math.max(50, Math.min(1000, stallMs / 4)));
    this.watchdog.unref();
    this.body.on('data', this.onData);
    this.body.once('end', () => void this.finish(true, undefined));
    this.body.once('error', (err) => void this.finish(false, err));
    // A body destroyed without an error (aborted request) ends nothing: count it as closed early.
    this.body.once('close', () => void this.finish(false, undefined));
    return done;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.finished) return;
    this.lastData = Date.now();
    // Read on to the end at maxBytes so the keep-alive connection is reusable; more is a cut.
    if (this.received >= this.o.maxBytes) {
      void this.finish(false, undefined);
      return;
    }
    let buf = chunk;
    if (this.received + buf.length > this.o.maxBytes) buf = buf.subarray(0, this.o.maxBytes - this.received);
    this.received += buf.length;
    if (this.pendingLen === 0) this.pendingSince = this.lastData;
    this.pending.push(buf);
    this.pendingLen += buf.length;
    if (this.pendingLen >= this.o.batchBytes || this.lastData - this.pendingSince >= MAX_BATCH_AGE_MS) this.issue();
  };

  /** Start writing what is pending. */
  private start(): void {
    if (this.pendingLen === 0) return;
    const bufs = this.pending;
    const len = this.pendingLen;
    this.pending = [];
    this.pendingLen = 0;
    const done = this.o.write(bufs, len);
    done.catch(() => undefined); // observed in settleOldest
    this.inflight.push({ done, bufs, len });
  }

  /** start(); with WRITE_DEPTH writes running, pause the socket until the oldest is done. */
  private issue(): void {
    this.start();
    if (this.inflight.length >= WRITE_DEPTH && !this.blocked) {
      this.blocked = true;
      this.body.pause();
      this.settleOldest().then(
        () => {
          this.blocked = false;
          this.lastData = Date.now();
          if (!this.finished) this.body.resume();
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
      this.o.onWritten(x.bufs, x.len);
    });
    this.settling = next.catch(() => undefined);
    return next;
  }

  /** Write everything pending and wait for all writes, reporting them in order. */
  private async drain(): Promise<void> {
    if (!this.writeFailed) this.start();
    while (this.inflight.length > 0) await this.settleOldest();
  }

  private async finish(ended: boolean, err: unknown): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.watchdog);
    this.body.off('data', this.onData);
    try {
      // Keep what arrived before a failure; a write error then wins over the network error.
      await this.drain();
    } catch (writeErr) {
      err = writeErr;
    } finally {
      // After a failure: wait for stray writes without reporting them (they may not be contiguous).
      await this.settling;
      await Promise.allSettled(this.inflight.splice(0).map((x) => x.done));
      if (!this.body.readableEnded) this.body.destroy();
    }
    if (err !== undefined) this.reject(err);
    else this.resolve({ received: this.received, ended });
  }
}
