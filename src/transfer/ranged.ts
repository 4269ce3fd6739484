// Parallel ranged download of one large file into a preallocated (sparse) partial.
//
// The file is a map of chunks (the resume unit, ≤ 1 MiB). Workers, one per connection, claim
// stretches of consecutive missing chunks in file order and fetch each stretch with one GET;
// stretches shrink as the file nears completion (ChunkWorkers). Every completed write moves the
// file's contiguous written prefix, which a worker thread hashes by reading it back
// (PrefixHasher). The resume state is checkpointed on the heartbeat and, while data flows,
// whenever what a kill would lose grows past a small share of what has arrived (Checkpointer).
import { hostname } from 'node:os';
import { AbortedError, IntegrityError, NetworkError, RateLimitedError, ServerError } from '../errors.js';
import { ForbiddenStatusError, openGet } from './http-range.js';
import { pumpBody } from './body-pump.js';
import { ensureFreeSpace, SerialFileWriter } from './disk.js';
import {
  assertIdentityEncoding,
  combinedSignal,
  RangeUnsupportedError,
  RemoteChangedError,
  type FileJob,
} from './job.js';
import { chunkLength, makeChunks, type Chunk, type Digest } from './ordered-hasher.js';
import type { OwnedPartial } from './ownership.js';
import { ConnectionGovernor } from './governor.js';
import { PrefixHasher } from './prefix-hasher.js';
import { decodeBitmap, encodeBitmap, MAX_CHUNKS, TRAILER_SIZE, writeSlot, type PartialState } from './partial-state.js';
import { asTypedError, headerValue, RetryTracker } from './retry.js';

const MiB = 1024 * 1024;

/** Everything of the resume state except the chunk progress. */
interface StateMeta {
  writerId: string;
  size: number;
  sha256?: string;
  gitSha1?: string;
  etag?: string;
  chunkSize: number;
  createdAt: number;
  seq: number;
  slot: 0 | 1;
}

/**
 * Downloads the missing chunks of `owned` and returns the in-order digest of the whole file.
 * The heartbeat is left running: the engine stops it during commit.
 */
export async function downloadRanged(job: FileJob, owned: OwnedPartial): Promise<Digest> {
  const { chunks, meta } = await prepare(job, owned);
  const onDisk = chunks.reduce((a, c) => a + c.written, 0);
  job.progress.reset(onDisk, onDisk);
  const checkpoint = new Checkpointer(job, owned, chunks, meta);
  // Write both slots now: their blocks are then allocated, so a later checkpoint cannot hit ENOSPC.
  await checkpoint.write(false);
  await checkpoint.write(false);
  await ensureFreeSpace(job.dir, job.size - onDisk);

  const internal = new AbortController();
  const signal = combinedSignal(job.signal, internal.signal);
  // Hashes what is on disk, in file order, trailing the writes (resumed chunks included).
  const hasher = new PrefixHasher(owned.fh, job.size, Boolean(job.expected.gitSha1));
  const prefix = new WrittenPrefix(chunks);
  const advance = (): void => {
    const n = prefix.length();
    hasher.advance(n);
    job.partial(owned.path, n);
  };
  advance();
  let failure: Error | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
    internal.abort();
  };
  owned.onRelease = () => checkpoint.write(true);
  owned.startHeartbeat(job.opts.heartbeatIntervalMs, () => checkpoint.write(false), fail);
  const onWritten = (chunk: Chunk, len: number): void => {
    if (chunk.index === prefix.headIndex) advance();
    checkpoint.noteWritten(len);
  };
  try {
    const writer = new SerialFileWriter(owned, job.opts.fsHooks);
    await new ChunkWorkers(job, writer, chunks, meta, signal, fail, onWritten).run();
    if (failure) throw failure;
    if (signal.aborted) throw AbortedError.from(signal);
    // Some chunks may have been complete from the start (resume): the prefix can jump over them.
    advance();
    return await Promise.race([hasher.digest(), rejectOnAbort(signal)]);
  } catch (err) {
    throw failure ?? (signal.aborted ? AbortedError.from(signal) : err);
  } finally {
    // The worker reads through our descriptor: it must be gone before anyone closes it.
    await hasher.close();
  }
}

/** The file's contiguous written prefix: complete chunks from the start, plus the head chunk's bytes. */
class WrittenPrefix {
  private head = 0;
  constructor(private readonly chunks: Chunk[]) {}

  /** Index of the first incomplete chunk (only its writes can move the prefix). */
  get headIndex(): number {
    return this.head;
  }

  length(): number {
    let c = this.chunks[this.head];
    while (c && c.written === chunkLength(c)) c = this.chunks[++this.head];
    return c ? c.start + c.written : (this.chunks.at(-1)?.end ?? 0);
  }
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(AbortedError.from(signal));
    signal.addEventListener('abort', () => reject(AbortedError.from(signal)), { once: true });
  });
}

/**
 * The unit of resume bookkeeping (a "chunk"): a quarter of the largest request, at most 1 MiB,
 * so a run's progress is recorded finely and the last requests of a file can be small; larger
 * for huge files so the chunk map fits in a state slot. Requests span several chunks (see runs).
 */
export function pickChunkSize(size: number, maxRequest: number): number {
  const min = Math.ceil(size / MAX_CHUNKS);
  const unit = Math.max(1, Math.min(MiB, Math.ceil(maxRequest / 4)));
  return min > unit ? Math.ceil(min / MiB) * MiB : unit;
}

async function prepare(job: FileJob, owned: OwnedPartial): Promise<{ chunks: Chunk[]; meta: StateMeta }> {
  const r = owned.resume;
  const base = {
    writerId: owned.writerId,
    size: job.size,
    ...(job.expected.sha256 ? { sha256: job.expected.sha256.toLowerCase() } : {}),
    ...(job.expected.gitSha1 ? { gitSha1: job.expected.gitSha1.toLowerCase() } : {}),
  };
  if (r.kind === 'state') {
    const s = r.state;
    const chunks = makeChunks(job.size, s.chunkSize);
    const done = decodeBitmap(s.done, chunks.length);
    for (const c of chunks) if (done[c.index]) c.written = chunkLength(c);
    for (const [i, n] of s.partial) {
      const c = chunks[i];
      if (c && !done[i] && n > 0 && n < chunkLength(c)) c.written = n;
    }
    const meta: StateMeta = { ...base, chunkSize: s.chunkSize, createdAt: s.createdAt, seq: s.seq, slot: r.slot };
    if (s.etag) meta.etag = s.etag;
    return { chunks, meta };
  }
  const chunkSize = pickChunkSize(job.size, job.opts.chunkSize);
  const chunks = makeChunks(job.size, chunkSize);
  const prefix = r.kind === 'prefix' ? r.length : 0;
  for (const c of chunks) c.written = Math.max(0, Math.min(chunkLength(c), prefix - c.start));
  if (r.kind === 'none') await owned.fh.truncate(0);
  // Sparse preallocation: the data area plus the two state slots after it.
  await owned.fh.truncate(job.size + TRAILER_SIZE);
  return { chunks, meta: { ...base, chunkSize, createdAt: Date.now(), seq: 0, slot: 1 } };
}

/**
 * A kill loses what was written since the last checkpoint. So a checkpoint starts (right after
 * the previous one ends) once that exceeds this share of the bytes this run has written, or
 * CHECKPOINT_MAX_AGE_MS have passed; never for less than CHECKPOINT_MIN_BYTES (each costs an
 * fdatasync, which writes only the pages dirtied since the previous one, and a 16 KiB slot).
 * Every 64 MiB, as before, lost 10-45% of the arrived bytes at a kill; the data also reaches
 * the disk while the download runs, so the final fsync has little left to write.
 */
const CHECKPOINT_SHARE = 0.01;
const CHECKPOINT_MIN_BYTES = 1 * MiB;
const CHECKPOINT_MAX_AGE_MS = 1000;

/** Writes the resume state into the trailer, strictly after the data it describes is synced. */
class Checkpointer {
  private running: Promise<void> | undefined;
  private sinceLast = 0;
  private arrived = 0;
  private lastAt = performance.now();

  constructor(
    private readonly job: FileJob,
    private readonly owned: OwnedPartial,
    private readonly chunks: Chunk[],
    readonly meta: StateMeta,
  ) {}

  /** Counts written bytes; when a kill would lose too many, asks for a heartbeat (which checkpoints) now. */
  noteWritten(len: number): void {
    this.sinceLast += len;
    this.arrived += len;
    if (this.running || this.sinceLast < CHECKPOINT_MIN_BYTES) return;
    const old = performance.now() - this.lastAt >= CHECKPOINT_MAX_AGE_MS;
    if (!old && this.sinceLast < this.arrived * CHECKPOINT_SHARE) return;
    this.owned.beatNow();
  }

  async write(released: boolean): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.doWrite(released);
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async doWrite(released: boolean): Promise<void> {
    // Snapshot first: `written` only counts completed writes, which the sync below makes durable.
    const done = this.chunks.map((c) => c.written === chunkLength(c));
    const partial: Array<[number, number]> = this.chunks
      .filter((c) => c.written > 0 && c.written < chunkLength(c))
      .map((c) => [c.index, c.written]);
    const doneBytes = this.chunks.reduce((a, c) => a + c.written, 0);
    this.sinceLast = 0;
    this.lastAt = performance.now();
    await this.owned.fh.datasync();
    const m = this.meta;
    const slot: 0 | 1 = m.slot === 0 ? 1 : 0;
    const state: PartialState = {
      v: 1,
      writerId: m.writerId,
      pid: process.pid,
      host: hostname(),
      heartbeat: released ? 0 : Date.now(),
      seq: m.seq + 1,
      size: m.size,
      chunkSize: m.chunkSize,
      done: encodeBitmap(done),
      partial,
      createdAt: m.createdAt,
    };
    if (m.sha256) state.sha256 = m.sha256;
    if (m.gitSha1) state.gitSha1 = m.gitSha1;
    if (m.etag) state.etag = m.etag;
    // Re-check right before writing past the data: a writer wrongly judged dead must not append
    // a trailer to a file another writer has meanwhile taken over (or committed).
    await this.owned.checkOwned();
    await writeSlot(this.owned.fh, state, slot);
    m.seq = state.seq;
    m.slot = slot;
    this.job.opts.fsHooks?.afterCheckpoint?.({ path: this.owned.path, seq: state.seq, doneBytes });
  }
}

/**
 * One stream this fast stays alone. On loopback (2 cores, loaded) one stream was probed at
 * 300-1000 MB/s; trying 2-6 streams and cutting back took 1.3-2.1× the 1-connection time, while
 * per-stream CDN caps are 10-100 MB/s.
 */
const ENOUGH_PER_STREAM = 250e6;

/** Consecutive chunks one request covers: [first, last]. */
interface Run {
  first: number;
  /** Shrinks when another worker takes over the end of the run (stealRun). */
  last: number;
  /** File offset up to which the current request has received bytes. */
  reach: number;
}

/**
 * Up to `connections` workers, as many as the ConnectionGovernor finds worth it; each takes the
 * next missing stretch of the file in file order and fetches it with one request. Stretches shrink as the file nears completion (guided
 * scheduling: a share of what is left, between one chunk and `chunkSize`): early requests are
 * few and long, the last ones short, so all connections finish together and little data lands
 * ahead of the hash at the end.
 */
class ChunkWorkers {
  private readonly active = new Set<number>();
  private readonly runs = new Set<Run>();
  private readonly running: Array<Promise<void>> = [];
  private confirmed = false;
  private claims = 0;
  private workers = 0;
  /** Workers that have received bytes (the governor judges a growth once all new ones do). */
  private flowing = 0;
  /** Connections the governor wants; workers above it retire after their current request. */
  private target = 0;
  private readonly governor: ConnectionGovernor;
  /** Bytes still missing in chunks no worker has claimed. */
  private unclaimed: number;

  constructor(
    private readonly job: FileJob,
    private readonly writer: SerialFileWriter,
    private readonly chunks: Chunk[],
    private readonly meta: StateMeta,
    private readonly signal: AbortSignal,
    private readonly fail: (err: Error) => void,
    private readonly onWritten: (chunk: Chunk, len: number) => void,
  ) {
    this.unclaimed = chunks.reduce((a, c) => a + missing(c), 0);
    this.governor = new ConnectionGovernor({
      max: job.opts.connections,
      targetRate: job.opts.targetRate,
      bytes: () => job.stats.downloaded,
      workers: () => this.workers,
      flowing: () => this.flowing,
      enoughPerStream: ENOUGH_PER_STREAM,
      grow: (n) => this.grow(n),
      shrinkTo: (n) => {
        this.target = Math.max(1, n);
      },
    });
  }

  async run(): Promise<void> {
    // One probe worker first: if the server ignores Range, only one full body was started; and
    // its speed tells how many more connections are worth opening (ConnectionGovernor).
    this.grow(1);
    try {
      for (let i = 0; i < this.running.length; i++) await this.running[i];
    } finally {
      this.governor.stop();
    }
  }

  private confirmRanges(): void {
    if (this.confirmed) return;
    this.confirmed = true;
    this.governor.start();
  }

  /** Starts up to `n` more workers, no more than there are unclaimed chunks or allowed connections. */
  private grow(n: number): void {
    const unclaimedChunks = this.chunks.filter((c) => missing(c) > 0 && !this.active.has(c.index)).length;
    const extra = Math.min(n, unclaimedChunks, this.job.opts.connections - this.workers);
    this.target = this.workers + Math.max(0, extra);
    for (let i = 0; i < extra; i++) this.running.push(this.worker());
  }

  /**
   * Claims the next stretch: the first unclaimed missing chunk plus untouched chunks after it.
   *
   * The first wave is staggered: the k-th of n first claims is k/n of a normal one. With equal
   * claims, all connections would finish their first stretches together and the hash (which
   * needs bytes in file order) would wait idle for the whole first wave, then fall behind. With
   * staggered ends, each connection's next stretches stay staggered too, the written prefix
   * grows steadily, and the hash keeps pace with the network.
   */
  private claimRun(): Run | undefined {
    const first = this.chunks.find((c) => missing(c) > 0 && !this.active.has(c.index));
    if (!first) return undefined;
    const n = this.job.opts.connections;
    const share = Math.ceil(this.unclaimed / (2 * n));
    let want = Math.min(this.job.opts.chunkSize, Math.max(chunkLength(first), share));
    if (this.claims < n) want = Math.ceil((want * (this.claims + 1)) / n);
    this.claims++;
    let last = first;
    let bytes = missing(first);
    for (;;) {
      const next = this.chunks[last.index + 1];
      if (!next || bytes + chunkLength(next) > want || next.written > 0 || this.active.has(next.index)) break;
      last = next;
      bytes += chunkLength(next);
    }
    for (let i = first.index; i <= last.index; i++) this.active.add(i);
    this.unclaimed -= bytes;
    const run = { first: first.index, last: last.index, reach: first.start + first.written };
    this.runs.add(run);
    return run;
  }

  /**
   * Nothing is left to claim, but a connection still has a long way to go (a slow CDN edge, a
   * stretch claimed early): take the upper half of what lies ahead of it, so the download does
   * not wait for its slowest connection. Its request stops at the new end (the pump's limit
   * shrinks with `run.last`).
   */
  private stealRun(): Run | undefined {
    const cs = this.meta.chunkSize;
    let victim: { run: Run; from: number; count: number } | undefined;
    for (const run of this.runs) {
      // The chunk it is receiving stays with it; everything after is up for grabs.
      const from = Math.max(run.first, Math.floor(run.reach / cs) + 1);
      const count = run.last - from + 1;
      if (count >= 1 && count > (victim?.count ?? 0)) victim = { run, from, count };
    }
    if (!victim) return undefined;
    const mid = victim.from + Math.floor(victim.count / 2);
    const stolen = { first: mid, last: victim.run.last, reach: (this.chunks[mid] as Chunk).start };
    victim.run.last = mid - 1;
    this.runs.add(stolen);
    return stolen;
  }

  private releaseRun(run: Run): void {
    this.runs.delete(run);
    for (let i = run.first; i <= run.last; i++) {
      this.active.delete(i);
      this.unclaimed += missing(this.chunks[i] as Chunk);
    }
  }

  private async worker(): Promise<void> {
    this.workers++;
    const me: WorkerState = { flowing: false };
    try {
      for (;;) {
        if (this.signal.aborted) return;
        // Retired by the governor (the extra connections did not pay). The count drops in the
        // finally below, synchronously, so two workers never both retire for one slot.
        if (this.workers > this.target) return;
        const run = this.claimRun() ?? this.stealRun();
        if (!run) return;
        try {
          if ((await this.fetchRun(run, me)) === 'retire') return;
        } finally {
          this.releaseRun(run);
        }
      }
    } catch (err) {
      if (!this.signal.aborted) this.fail(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.workers--;
      if (me.flowing) this.flowing--;
    }
  }

  /** The first chunk of the run that still misses bytes, or undefined when the run is done. */
  private headOf(run: Run): Chunk | undefined {
    for (let i = run.first; i <= run.last; i++) {
      const c = this.chunks[i] as Chunk;
      if (missing(c) > 0) return c;
    }
    return undefined;
  }

  /** Fetches the run; 'retire' when the server pushed back and this worker is one too many. */
  private async fetchRun(run: Run, me: WorkerState): Promise<'done' | 'retire'> {
    const tracker = new RetryTracker(this.job.opts, this.signal);
    for (let head = this.headOf(run); head; head = this.headOf(run)) {
      const before = head.start + head.written;
      try {
        // A connection slot per attempt: backoff waits do not hold one.
        await this.job.connections.acquire(this.signal);
        try {
          await this.fetchOnce(head, run, me);
        } finally {
          this.job.connections.release();
        }
      } catch (raw) {
        const err =
          raw instanceof RangeUnsupportedError || raw instanceof RemoteChangedError
            ? raw
            : asTypedError(raw, this.signal);
        if (err instanceof AbortedError) throw err;
        if (err instanceof ForbiddenStatusError && (await this.job.source.refreshAfter403(err.generation))) continue;
        if (isPushBack(err)) {
          this.governor.backOff();
          // Its run goes back to the pool; the connections that stay take it after their own.
          if (this.workers > this.target) return 'retire';
        }
        const now = this.headOf(run);
        await tracker.onFailure(err, !now || now.start + now.written > before);
      }
    }
    return 'done';
  }

  /** One GET for the bytes from `head`'s first missing byte to the end of `run`. */
  private async fetchOnce(head: Chunk, run: Run, me: WorkerState): Promise<void> {
    const job = this.job;
    const from = head.start + head.written;
    const runEnd = (): number => (this.chunks[run.last] as Chunk).end;
    run.reach = from;
    const res = await openGet({
      source: job.source,
      http: job.http,
      range: { start: from, end: runEnd() - 1 },
      signal: this.signal,
      headersTimeoutMs: job.opts.stallTimeoutSeconds * 1000,
      userAgent: job.opts.userAgent,
      errorFor: job.opts.errorFor,
      label: job.label,
    });
    if (res.body.status !== 206) {
      res.body.destroy();
      throw new RangeUnsupportedError(`server ignored Range for ${job.label}`);
    }
    assertIdentityEncoding(res, job.label);
    const r = res.range;
    if (!r || r.start !== from || r.end < from) {
      await res.body.dump();
      throw new ServerError(`invalid Content-Range for ${job.label}`, undefined, undefined);
    }
    if (r.total !== undefined && r.total !== job.size) {
      res.body.destroy();
      throw new IntegrityError(job.label, String(job.size), String(r.total), 'size');
    }
    this.checkEtag(headerValue(res.body.headers, 'etag'), res);
    this.confirmRanges();
    // Read live: the end moves closer if another worker takes over the rest of the run.
    const limit = (): number => Math.min(r.end + 1, runEnd()) - from;
    let credit = head;
    const { received } = await pumpBody(res.body, {
      limit,
      onReceived: (n) => {
        run.reach += n;
        if (!me.flowing) {
          me.flowing = true;
          this.flowing++;
        }
      },
      stallMs: job.opts.stallTimeoutSeconds * 1000,
      pool: job.pool,
      write: this.writer.from(from),
      // In order: `written` must only ever cover bytes that are on disk (checkpoints record it).
      onWritten: (_buf, len) => {
        job.progress.add(len);
        job.stats.downloaded += len;
        for (let left = len; left > 0;) {
          if (missing(credit) === 0) credit = this.chunks[credit.index + 1] as Chunk;
          const n = Math.min(left, missing(credit));
          credit.written += n;
          left -= n;
          this.onWritten(credit, n);
        }
      },
    });
    if (received < limit()) throw new NetworkError(`connection closed after ${received} of ${limit()} bytes`);
  }

  /**
   * Record the server's ETag. Without a content hash it is the only guard against splicing two
   * versions of a file, so then a change restarts from zero; with a hash, the hash decides.
   */
  private checkEtag(etag: string | undefined, res: { body: { destroy(): void } }): void {
    if (!etag || etag.startsWith('W/')) return;
    if (!this.meta.etag) {
      this.meta.etag = etag;
      return;
    }
    if (this.meta.etag !== etag && !this.job.expected.sha256 && !this.job.expected.gitSha1) {
      res.body.destroy();
      throw new RemoteChangedError(`ETag of ${this.job.label} changed from ${this.meta.etag} to ${etag}`);
    }
  }
}

interface WorkerState {
  /** Has received bytes (counted in ChunkWorkers.flowing). */
  flowing: boolean;
}

/** 429 or 503: the server (or CDN) wants fewer requests, not just a retry. */
function isPushBack(err: unknown): boolean {
  return err instanceof RateLimitedError || (err instanceof ServerError && err.status === 503);
}

function missing(c: Chunk): number {
  return chunkLength(c) - c.written;
}
