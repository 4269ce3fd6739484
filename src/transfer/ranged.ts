// Parallel ranged download of one large file into a preallocated (sparse) partial.
import { hostname } from 'node:os';
import { AbortedError, IntegrityError, NetworkError, ServerError } from '../errors.js';
import { drain, ForbiddenStatusError, openGet } from './http-range.js';
import { pumpBody } from './body-pump.js';
import { ensureFreeSpace, writeAllAt } from './disk.js';
import { assertIdentityEncoding, combinedSignal, RangeUnsupportedError, RemoteChangedError, type FileJob } from './job.js';
import {
  chunkLength,
  ContentHasher,
  makeChunks,
  OrderedHasher,
  type Chunk,
  type Digest,
} from './ordered-hasher.js';
import type { OwnedPartial } from './ownership.js';
import {
  decodeBitmap,
  encodeBitmap,
  MAX_CHUNKS,
  TRAILER_SIZE,
  writeSlot,
  type PartialState,
} from './partial-state.js';
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
  const content = new ContentHasher(job.size, Boolean(job.expected.gitSha1));
  const ordered = new OrderedHasher(chunks, owned.fh, content, job.budget);
  let failure: Error | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
    internal.abort();
    ordered.stop();
  };
  signal.addEventListener('abort', () => ordered.stop(), { once: true });
  owned.onRelease = () => checkpoint.write(true);
  owned.startHeartbeat(job.opts.heartbeatIntervalMs, () => checkpoint.write(false), fail);

  await new ChunkWorkers(job, owned, chunks, ordered, meta, signal, fail).run();
  if (failure) throw failure;
  if (signal.aborted) throw new AbortedError();
  try {
    await ordered.done();
  } catch (err) {
    throw failure ?? (signal.aborted ? new AbortedError() : err);
  }
  return content.digest();
}

/**
 * `chunkSize`, but smaller for mid-sized files so every connection gets a few chunks (a 48 MiB
 * file in 16 MiB chunks could only use 3 connections), and larger for huge files so the chunk
 * count fits in a state slot.
 */
export function pickChunkSize(size: number, chunkSize: number, connections: number): number {
  const min = Math.ceil(size / MAX_CHUNKS);
  if (min > chunkSize) return Math.ceil(min / MiB) * MiB;
  const spread = Math.ceil(size / (connections * 4) / MiB) * MiB;
  return Math.min(chunkSize, Math.max(MiB, spread));
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
  const chunkSize = pickChunkSize(job.size, job.opts.chunkSize, job.opts.connections);
  const chunks = makeChunks(job.size, chunkSize);
  const prefix = r.kind === 'prefix' ? r.length : 0;
  for (const c of chunks) c.written = Math.max(0, Math.min(chunkLength(c), prefix - c.start));
  if (r.kind === 'none') await owned.fh.truncate(0);
  // Sparse preallocation: the data area plus the two state slots after it.
  await owned.fh.truncate(job.size + TRAILER_SIZE);
  return { chunks, meta: { ...base, chunkSize, createdAt: Date.now(), seq: 0, slot: 1 } };
}

/** Writes the resume state into the trailer, strictly after the data it describes is synced. */
class Checkpointer {
  private running: Promise<void> | undefined;

  constructor(
    private readonly job: FileJob,
    private readonly owned: OwnedPartial,
    private readonly chunks: Chunk[],
    readonly meta: StateMeta,
  ) {}

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


/** Up to `connections` workers; each takes the next missing chunk in file order. */
class ChunkWorkers {
  private readonly active = new Set<number>();
  private readonly running: Array<Promise<void>> = [];
  private confirmed = false;

  constructor(
    private readonly job: FileJob,
    private readonly owned: OwnedPartial,
    private readonly chunks: Chunk[],
    private readonly ordered: OrderedHasher,
    private readonly meta: StateMeta,
    private readonly signal: AbortSignal,
    private readonly fail: (err: Error) => void,
  ) {}

  async run(): Promise<void> {
    // One probe worker first: if the server ignores Range, only one full body was started.
    this.running.push(this.worker());
    for (let i = 0; i < this.running.length; i++) await this.running[i];
  }

  private confirmRanges(): void {
    if (this.confirmed) return;
    this.confirmed = true;
    const missing = this.chunks.filter((c) => c.written < chunkLength(c)).length;
    const extra = Math.min(this.job.opts.connections, missing) - 1;
    for (let i = 0; i < extra; i++) this.running.push(this.worker());
  }

  private nextChunk(): Chunk | undefined {
    return this.chunks.find((c) => c.written < chunkLength(c) && !this.active.has(c.index));
  }

  private async worker(): Promise<void> {
    try {
      for (;;) {
        if (this.signal.aborted) return;
        const chunk = this.nextChunk();
        if (!chunk) return;
        this.active.add(chunk.index);
        try {
          await this.fetchChunk(chunk);
        } finally {
          this.active.delete(chunk.index);
        }
      }
    } catch (err) {
      if (!this.signal.aborted) this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private async fetchChunk(chunk: Chunk): Promise<void> {
    const tracker = new RetryTracker(this.job.opts, this.signal);
    while (chunk.written < chunkLength(chunk)) {
      const before = chunk.written;
      try {
        // A connection slot per attempt: backoff waits do not hold one.
        await this.job.connections.acquire(this.signal);
        try {
          await this.fetchOnce(chunk);
        } finally {
          this.job.connections.release();
        }
      } catch (raw) {
        const err = raw instanceof RangeUnsupportedError || raw instanceof RemoteChangedError ? raw : asTypedError(raw, this.signal);
        if (err instanceof AbortedError) throw err;
        if (err instanceof ForbiddenStatusError && (await this.job.source.refreshAfter403(err.generation))) continue;
        await tracker.onFailure(err, chunk.written > before);
      }
    }
  }

  private async fetchOnce(chunk: Chunk): Promise<void> {
    const job = this.job;
    const from = chunk.start + chunk.written;
    const res = await openGet({
      source: job.source,
      dispatcher: job.dispatcher,
      range: { start: from, end: chunk.end - 1 },
      signal: this.signal,
      headersTimeoutMs: job.opts.stallTimeoutSeconds * 1000,
      userAgent: job.opts.userAgent,
      label: job.label,
    });
    if (res.status !== 206) {
      res.body.destroy();
      throw new RangeUnsupportedError(`server ignored Range for ${job.label}`);
    }
    assertIdentityEncoding(res, job.label);
    const r = res.range;
    if (!r || r.start !== from || r.end < from) {
      await drain(res.body);
      throw new ServerError(`invalid Content-Range for ${job.label}`, undefined, undefined);
    }
    if (r.total !== undefined && r.total !== job.size) {
      res.body.destroy();
      throw new IntegrityError(job.label, String(job.size), String(r.total), 'size');
    }
    this.checkEtag(headerValue(res.headers, 'etag'), res);
    this.confirmRanges();
    const limit = Math.min(r.end + 1, chunk.end) - from;
    let issued = chunk.written;
    const { received } = await pumpBody(res.body, {
      maxBytes: limit,
      stallMs: job.opts.stallTimeoutSeconds * 1000,
      write: (bufs, len) => {
        const at = chunk.start + issued;
        issued += len;
        return writeAllAt(this.owned.fh, this.owned.path, bufs, at, job.opts.fsHooks);
      },
      // In order: `written` must only ever cover bytes that are on disk (checkpoints record it).
      onWritten: (bufs, len) => {
        const off = chunk.written;
        chunk.written = off + len;
        this.ordered.onWritten(chunk.index, off, bufs);
        job.progress.add(len);
        job.stats.downloaded += len;
      },
    });
    if (received < limit) throw new NetworkError(`connection closed after ${received} of ${limit} bytes`);
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
