// Reading a response body into disk-sized batches, with a stall watchdog and a short
// write-behind queue.
import type { Readable } from 'node:stream';
import { NetworkError } from '../errors.js';

/** Bytes collected before one positional write (fewer syscalls; bounded memory per connection). */
export const WRITE_BATCH = 1024 * 1024;
/** A slow link still gets its bytes onto disk (and into progress) this often. */
const MAX_BATCH_AGE_MS = 50;
/** Writes in flight per connection: the socket keeps being read while the disk works. */
const WRITE_DEPTH = 2;

export interface PumpOptions {
  /** Stop after this many bytes (a server sending more than asked is cut off). */
  maxBytes: number;
  stallMs: number;
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
export async function pumpBody(body: Readable, o: PumpOptions): Promise<PumpResult> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const w = new WriteBehind(o);
  let received = 0;
  let waitingSince = 0;
  const watchdog = setInterval(() => {
    if (waitingSince > 0 && Date.now() - waitingSince > o.stallMs) {
      body.destroy(new NetworkError(`no data received for ${Math.round(o.stallMs / 1000)} s (stalled connection)`));
    }
  }, Math.max(50, Math.min(1000, o.stallMs / 4)));
  watchdog.unref();
  try {
    let ended = false;
    for (;;) {
      waitingSince = Date.now();
      const r = await it.next();
      waitingSince = 0;
      if (r.done) {
        ended = true;
        break;
      }
      // Read on to the end at maxBytes so the keep-alive connection is reusable; more is a cut.
      if (received >= o.maxBytes) break;
      let buf = r.value;
      if (received + buf.length > o.maxBytes) buf = buf.subarray(0, o.maxBytes - received);
      received += buf.length;
      await w.add(buf);
    }
    await w.drain();
    return { received, ended };
  } catch (err) {
    waitingSince = 0;
    // Keep what arrived before the failure; a write error then wins over the network error.
    await w.drain();
    throw err;
  } finally {
    clearInterval(watchdog);
    await w.settleQuietly();
    if (!body.readableEnded) body.destroy();
  }
}

class WriteBehind {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private pendingSince = 0;
  private readonly inflight: InFlight[] = [];

  constructor(private readonly o: PumpOptions) {}

  async add(buf: Buffer): Promise<void> {
    if (this.pendingLen === 0) this.pendingSince = Date.now();
    this.pending.push(buf);
    this.pendingLen += buf.length;
    if (this.pendingLen >= WRITE_BATCH || Date.now() - this.pendingSince >= MAX_BATCH_AGE_MS) await this.issue();
  }

  /** Write everything pending and wait for all writes, reporting them in order. */
  async drain(): Promise<void> {
    await this.issue();
    while (this.inflight.length > 0) await this.settleOldest();
  }

  /** After a failure: wait for stray writes without reporting them (they may not be contiguous). */
  async settleQuietly(): Promise<void> {
    await Promise.allSettled(this.inflight.splice(0).map((x) => x.done));
  }

  private async issue(): Promise<void> {
    if (this.pendingLen === 0) return;
    const bufs = this.pending;
    const len = this.pendingLen;
    this.pending = [];
    this.pendingLen = 0;
    const done = this.o.write(bufs, len);
    done.catch(() => undefined); // observed in settleOldest
    this.inflight.push({ done, bufs, len });
    if (this.inflight.length >= WRITE_DEPTH) await this.settleOldest();
  }

  private async settleOldest(): Promise<void> {
    const x = this.inflight.shift();
    if (!x) return;
    await x.done;
    this.o.onWritten(x.bufs, x.len);
  }
}
