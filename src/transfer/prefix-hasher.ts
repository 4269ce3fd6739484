// Hashing a large file in byte order by reading it back, in a worker thread that trails the writes.
//
// Chunks arrive out of order. The writers only report how long the file's contiguous written
// prefix is; a worker thread reads that prefix back with positional reads (from the page cache:
// the bytes were just written) and feeds sha256 (and git's sha1). So the main thread, which is
// busy parsing HTTP, never touches the bytes again, sha256 runs on another core, and no chunk
// data is held in memory for hashing: one 1 MiB read buffer per file, whatever its size and
// connection count. Reading back also hashes exactly what the file holds, resumed bytes
// included (Node cannot serialize a hash state, so a resumed partial is re-hashed anyway).
//
// Measured on 2 cores, 1 GiB over loopback: sha256 on the main thread capped the download at
// ~650 MB/s; in the worker the download and the hash overlap (see README / bench/run.ts).
// If the worker cannot run (no threads, or it died), the same loop runs on the main thread
// with async reads, from byte 0 again: slower, never wrong.
import type { FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { AbortedError } from '../errors.js';
import { ContentHasher, type Digest } from './ordered-hasher.js';

const READ_SIZE = 1024 * 1024;

// Plain JavaScript passed as a string (no file to resolve: works from src/ under tsx and from
// dist/ alike), like src/care/hash-pool.ts. Messages in: the prefix length (a number, only
// ever growing). Messages out: { digest } once `size` bytes are hashed, or { error }.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { readSync } = require('node:fs');
const { fd, size, gitSha1, readSize } = workerData;
const sha256 = createHash('sha256');
const sha1 = gitSha1 ? createHash('sha1').update('blob ' + size + '\\0') : undefined;
const buf = Buffer.allocUnsafe(Math.max(1, Math.min(readSize, size)));
let hashed = 0, target = 0, finished = false;
function pump() {
  while (hashed < target) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, target - hashed), hashed);
    if (n <= 0) throw new Error('short read while hashing at byte ' + hashed);
    const view = n === buf.length ? buf : buf.subarray(0, n);
    sha256.update(view);
    if (sha1) sha1.update(view);
    hashed += n;
  }
  if (hashed === size && !finished) {
    finished = true;
    const digest = { bytes: hashed, sha256: sha256.digest('hex') };
    if (sha1) digest.gitSha1 = sha1.digest('hex');
    parentPort.postMessage({ digest });
  }
}
parentPort.on('message', (n) => {
  if (finished) return;
  if (n > target) target = Math.min(n, size);
  try { pump(); } catch (e) { finished = true; parentPort.postMessage({ error: String(e && e.message || e) }); }
});`;

interface WorkerReply {
  digest?: Digest;
  error?: string;
}

/** Error of a read that failed while hashing (in the worker or on the main thread). */
export class HashReadError extends Error {}

let liveWorkers = 0;

/** Hash worker threads of this process that have not exited yet (diagnostics and tests). */
export function runningHashWorkers(): number {
  return liveWorkers;
}

/**
 * Hashes bytes [0, size) of an open file as `advance()` says they are written. The file handle
 * must stay open until `close()` has resolved (the worker reads through its descriptor).
 */
export class PrefixHasher {
  private target = 0;
  private worker: Worker | undefined;
  /** Every worker this hasher started, so close() can wait for each to be gone. */
  private readonly exits: Array<Promise<number>> = [];
  private closed = false;
  private settled = false;
  private resolveDigest!: (d: Digest) => void;
  private rejectDigest!: (e: Error) => void;
  private readonly result: Promise<Digest>;
  /** Main-thread fallback state. */
  private inline: { content: ContentHasher; hashed: number; running: Promise<void> | undefined } | undefined;

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
    private readonly wantGitSha1: boolean,
    useWorker = true,
  ) {
    this.result = new Promise<Digest>((resolve, reject) => {
      this.resolveDigest = resolve;
      this.rejectDigest = reject;
    });
    this.result.catch(() => undefined); // observed through digest()
    if (size === 0) this.settle(new ContentHasher(0, wantGitSha1).digest());
    else if (useWorker) this.startWorker();
    else this.fallBack();
  }

  /** True when the hashing runs (or ran) in a worker thread; false on the main-thread fallback. */
  get threaded(): boolean {
    return this.exits.length > 0 && this.inline === undefined;
  }

  /** Bytes [0, prefix) are on disk. Calls may repeat a value; a smaller one is ignored. */
  advance(prefix: number): void {
    if (this.closed || prefix <= this.target) return;
    this.target = Math.min(prefix, this.size);
    if (this.worker) this.worker.postMessage(this.target);
    else this.pumpInline();
  }

  /** Resolves once all `size` bytes are hashed. */
  digest(): Promise<Digest> {
    return this.result;
  }

  /** Stops hashing (a pending digest rejects) and waits until no read can touch the fd any more. */
  async close(): Promise<void> {
    this.closed = true;
    this.settle(new AbortedError());
    this.stopWorker();
    await Promise.all(this.exits);
    await this.inline?.running?.catch(() => undefined);
  }

  private startWorker(): void {
    let w: Worker;
    try {
      // execArgv: [] so the worker does not load the parent's --import hooks (tsx) for nothing.
      w = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: { fd: this.fh.fd, size: this.size, gitSha1: this.wantGitSha1, readSize: READ_SIZE },
      });
    } catch {
      this.fallBack();
      return;
    }
    this.worker = w;
    liveWorkers++;
    this.exits.push(
      new Promise((resolve) =>
        w.once('exit', (code) => {
          liveWorkers--;
          resolve(code);
        }),
      ),
    );
    w.on('message', (m: WorkerReply) => {
      if (m.digest) this.settle(m.digest);
      else if (m.error !== undefined) this.settle(new HashReadError(m.error));
    });
    // The worker died (out of memory, killed): hash on this thread instead, from the start.
    w.on('error', () => this.workerLost(w));
    w.on('exit', () => this.workerLost(w));
  }

  private workerLost(w: Worker): void {
    if (this.worker !== w || this.closed || this.settled) return;
    this.worker = undefined;
    this.fallBack();
  }

  private stopWorker(): void {
    const w = this.worker;
    this.worker = undefined;
    if (w) void w.terminate();
  }

  private fallBack(): void {
    this.inline = { content: new ContentHasher(this.size, this.wantGitSha1), hashed: 0, running: undefined };
    this.pumpInline();
  }

  private pumpInline(): void {
    const st = this.inline;
    if (!st || st.running || this.closed) return;
    st.running = this.readInline(st).then(
      () => {
        st.running = undefined;
        if (st.hashed < this.target) this.pumpInline();
      },
      (err: unknown) => {
        st.running = undefined;
        this.settle(new HashReadError(err instanceof Error ? err.message : String(err)));
      },
    );
  }

  private async readInline(st: NonNullable<PrefixHasher['inline']>): Promise<void> {
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(READ_SIZE, this.size)));
    while (st.hashed < this.target && !this.closed) {
      const { bytesRead } = await this.fh.read(buf, 0, Math.min(buf.length, this.target - st.hashed), st.hashed);
      if (bytesRead <= 0) throw new Error(`short read while hashing at byte ${st.hashed}`);
      st.content.update(buf.subarray(0, bytesRead));
      st.hashed += bytesRead;
    }
    if (st.hashed === this.size && !this.closed) this.settle(st.content.digest());
  }

  private settle(outcome: Digest | Error): void {
    if (this.settled) return;
    this.settled = true;
    if (outcome instanceof Error) this.rejectDigest(outcome);
    else this.resolveDigest(outcome);
    this.stopWorker(); // done or failed: the worker has nothing more to do
  }
}
