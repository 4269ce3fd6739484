// How many connections one file gets: as many as raise its speed, and no more.
//
// A CDN that caps each stream (40 MB/s, say) needs many connections; a fast link (a LAN mirror,
// loopback) is already saturated by one or two, and every further connection only costs CPU
// (more wakeups, smaller reads, more interleaving for the in-order hash) that the sha256 and the
// disk need. Measured on 2 cores, 1 GiB over loopback: 16 connections took 1.44 s, 2 took 1.08 s,
// 1 took 0.95 s. So a file starts on one connection; after a short probe, it gets enough
// connections to reach `targetRate` at the rate each one showed. A growth that did not pay is
// cut back to the streams the measured rate needs (the others retire after their current
// request), and growing stops there. A growth is judged only once every new connection has
// received its first bytes: judged earlier, a CDN that caps each stream at 10 MB/s looked like
// it did not pay (new streams still connecting), and a 512 MiB file was cut back to 1-2
// connections (8 s where aria2c -x16 took 4.3 s). A 429/503 from the server halves the count
// and stops growth (backOff).

export interface GovernorOptions {
  /** Upper bound on connections for the file. */
  max: number;
  /** Aggregate bytes/s beyond which more connections are not worth their cost. */
  targetRate: number;
  /** Bytes of the file received so far. */
  bytes: () => number;
  /** Connections working on the file now. */
  workers: () => number;
  /** Of those, the ones that have received bytes (default: all of them). */
  flowing?: () => number;
  /** Start `n` more connections (the callee may start fewer if little is left). */
  grow: (n: number) => void;
  /** Go back to `n` connections (the others finish their current request and stop). */
  shrinkTo: (n: number) => void;
  probeMs?: number;
  checkMs?: number;
  /**
   * A first stream at least this fast is left alone: no per-stream CDN cap is that high, and the
   * try of a second stream (judged, then cut back) is what costs on a CPU-bound machine.
   */
  enoughPerStream?: number;
}

/**
 * Growth continues only while it pays: after going from w to w' connections, the rate must have
 * risen by at least this share of the w'/w it would with streams that each keep their speed.
 */
const MIN_GROWTH_YIELD = 0.5;
/** Longest wait for new connections' first bytes before a growth is judged anyway. */
const MAX_SETTLE_MS = 1000;

/** Connections wanted, from the measured aggregate `rate` of `workers` connections. */
export function wantedConnections(rate: number, workers: number, o: { max: number; targetRate: number }): number {
  if (workers <= 0 || rate <= 0) return workers;
  if (rate >= o.targetRate) return workers;
  const perConnection = rate / workers;
  return Math.max(workers, Math.min(o.max, Math.ceil(o.targetRate / perConnection)));
}

export class ConnectionGovernor {
  private timer: NodeJS.Timeout | undefined;
  private lastAt = 0;
  private lastBytes = 0;
  /** Rate and connections before the last growth, to tell whether growing paid. */
  private beforeGrowth: { rate: number; workers: number } | undefined;
  private stopped = false;
  private probing = true;
  /** When the last growth started (its connections are given MAX_SETTLE_MS to start flowing). */
  private grewAt = 0;
  private settling = false;
  /** Rate of the first window that found the last growth not paying (judged twice). */
  private firstVerdict: number | undefined;

  constructor(private readonly o: GovernorOptions) {}

  /** Starts measuring now (call when the first connection's data starts flowing). */
  start(): void {
    if (this.o.max <= 1) return;
    this.mark();
    this.schedule(this.o.probeMs ?? 50);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * The server pushed back (429 or 503): more connections would only be refused. Go back to half
   * the connections and stop growing; the refused request waits what Retry-After asked.
   */
  backOff(): void {
    if (this.stopped) return;
    this.stop();
    this.o.shrinkTo(Math.max(1, Math.floor(this.o.workers() / 2)));
  }

  /** Whether the last growth raised the rate enough (see MIN_GROWTH_YIELD). */
  private paid(rate: number, workers: number): boolean {
    const b = this.beforeGrowth;
    if (!b || b.rate <= 0 || workers <= b.workers) return true;
    const expected = workers / b.workers - 1;
    return (rate / b.rate - 1) / expected >= MIN_GROWTH_YIELD;
  }

  private mark(): void {
    this.lastAt = performance.now();
    this.lastBytes = this.o.bytes();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.check(), ms);
    this.timer.unref();
  }

  private check(): void {
    const workers0 = this.o.workers();
    const flowing = this.o.flowing?.() ?? workers0;
    if (this.beforeGrowth && flowing < workers0 && performance.now() - this.grewAt < MAX_SETTLE_MS) {
      // New connections still connecting: their window would count them at zero speed.
      this.settling = true;
      this.mark();
      this.schedule((this.o.checkMs ?? 250) / 4);
      return;
    }
    if (this.settling) {
      // All flowing now: judge the growth on a whole window from here.
      this.settling = false;
      this.mark();
      this.schedule(this.o.checkMs ?? 250);
      return;
    }
    const now = performance.now();
    const seconds = (now - this.lastAt) / 1000;
    const measured = seconds > 0 ? (this.o.bytes() - this.lastBytes) / seconds : 0;
    const workers = this.o.workers();
    const before = this.beforeGrowth;
    if (before && !this.paid(measured, workers) && this.firstVerdict === undefined) {
      // One window can be a bad one (a busy machine): the cut is final, so judge once more.
      this.firstVerdict = measured;
      this.mark();
      this.schedule(this.o.checkMs ?? 250);
      return;
    }
    // Of the two windows, the better one counts.
    const rate = Math.max(measured, this.firstVerdict ?? 0);
    this.firstVerdict = undefined;
    if (before && !this.paid(rate, workers)) {
      // The link (or the machine) is the limit, not the streams: keep as many streams as, at
      // the speed one showed alone, carry what the link gave, and stop growing.
      const perStream = before.rate / before.workers;
      this.o.shrinkTo(Math.max(1, Math.min(workers, Math.round(rate / perStream))));
      return;
    }
    const enough = this.o.enoughPerStream;
    const want =
      enough !== undefined && !before && workers === 1 && rate >= enough
        ? workers
        : wantedConnections(rate, workers, this.o);
    if (this.probing) {
      // The first window included the stream's start (and, on a capped stream, the burst that
      // filled the socket buffers): measure one more before judging the speed of one stream.
      this.probing = false;
      this.mark();
      // Three times as long: bytes count when their write completes, and a slow stream writes
      // every 25 ms, so a 50 ms window read a 10 MB/s stream as 21 MB/s; from that, 64 streams
      // at 435 MB/s looked like a growth that did not pay and were cut back to 21.
      this.schedule(3 * (this.o.probeMs ?? 50));
      return;
    }
    this.probing = false;
    if (want > workers) {
      this.beforeGrowth = { rate, workers };
      this.grewAt = now;
      this.o.grow(want - workers);
    } else {
      this.beforeGrowth = undefined;
    }
    this.mark();
    if (workers < this.o.max) this.schedule(this.o.checkMs ?? 250);
  }
}
