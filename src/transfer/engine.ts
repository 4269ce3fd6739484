// The transfer engine: gets one file's bytes from HTTP onto disk, resumable, verified, atomic.
//
// Flow of download(): already committed? → acquire a partial (wait for a live writer, take over
// a dead one, or start fresh) → single stream or parallel ranges, hashing in file order →
// verify size + hash → fsync, chmod, rename to finalPath. Bad content is deleted and fetched
// once more from scratch; any other failure keeps the partial (with its state) for resume.
//
// Small files (below parallelThreshold) take a short way, since per-file file-system calls, not
// bytes, are their cost: one shared directory listing instead of a scan per file, the partial
// folder created only if missing, one shared statfs, and no fsync/chmod/stat at commit (see
// commitSmall). Large files are hashed in a worker thread reading back from the page cache
// (prefix-hasher.ts), and all downloads share one bounded buffer memory (bufferMemory).
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AbortedError, IntegrityError, ServerError, UsageError } from '../errors.js';
import { defaultFileMode, diskFullError, existsWithSize, freeBytes, isDiskFull, syncDir, unlinkQuiet } from './disk.js';
import { SourceHolder } from './http-range.js';
import { BufferPool, WRITE_DEPTH } from './body-pump.js';
import { Http1Client } from '../http/client.js';
import { batchSize, RangeUnsupportedError, RemoteChangedError, type FileJob } from './job.js';
import { Semaphore } from './limiter.js';
import { verifyDigest, type Digest } from './ordered-hasher.js';
import {
  acquirePartial,
  acquireSmallPartial,
  activeWriters,
  type OwnedPartial,
  OwnershipLostError,
  PartialListing,
  resumeBytes,
  type AcquireOptions,
  type Acquired,
} from './ownership.js';
import { newWriterId } from './partial-state.js';
import { ProgressReporter } from './progress.js';
import { downloadRanged } from './ranged.js';
import { downloadSingle } from './single.js';
import { defaultTransferOptions, type TransferOptions, type TransferRequest, type TransferResult } from './types.js';
import { mkdirp } from '../util/fs.js';

export class TransferEngine {
  readonly options: Readonly<TransferOptions>;
  private readonly http: Http1Client;
  private readonly connections: Semaphore;
  private readonly pool: BufferPool;
  /** Same finalPath requested twice in this engine: the second call joins the first. */
  private readonly inflight = new Map<string, Promise<TransferResult>>();
  /** Small files share one directory listing and one statfs per directory for a while. */
  private readonly listing = new PartialListing(SMALL_FILE_SHARING_MS);
  private readonly recentFree = new Map<string, { at: number; free: Promise<number | undefined> }>();

  /** `http`: a pool to share (a Cache's, also used for metadata); default: the engine's own. */
  constructor(opts: Partial<TransferOptions> = {}, http?: Http1Client) {
    this.http = http ?? new Http1Client({ keepAliveMs: 30_000, connectTimeoutMs: 30_000 });
    const o: TransferOptions = { ...defaultTransferOptions, ...stripUndefined(opts) };
    validateOptions(o);
    this.options = Object.freeze(o);
    this.connections = new Semaphore(o.maxConnections);
    const batch = batchSize(o.bufferMemory, o.maxConnections, WRITE_DEPTH);
    this.pool = new BufferPool(batch, Math.ceil(o.bufferMemory / batch));
  }

  /** Closes the engine's idle keep-alive connections. */
  close(): Promise<void> {
    this.http.close();
    return Promise.resolve();
  }

  download(req: TransferRequest): Promise<TransferResult> {
    try {
      validateRequest(req);
    } catch (err) {
      return Promise.reject(err);
    }
    const key = path.resolve(req.finalPath);
    const running = this.inflight.get(key);
    if (running) return joinRunning(running, req);
    const p = this.run(req).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async run(req: TransferRequest): Promise<TransferResult> {
    const size = req.expected.size;
    const progress = new ProgressReporter(req.label, size, this.options.progressIntervalMs, req.onProgress);
    if (req.signal?.aborted) throw AbortedError.from(req.signal);
    if (await existsWithSize(req.finalPath, size)) return reused(req, progress);
    const small = size < this.options.parallelThreshold;
    // Small files create the directory only if opening their partial says it is missing.
    if (!small) await mkdirp(req.partialDir);
    const job: FileJob = {
      label: req.label,
      expected: req.expected,
      size,
      dir: req.partialDir,
      source: new SourceHolder(req.source),
      opts: this.options,
      http: this.http,
      connections: this.connections,
      progress,
      signal: req.signal,
      pool: this.pool,
      freeBytes: small ? () => this.sharedFreeBytes(req.partialDir) : () => freeBytes(req.partialDir),
      stats: { downloaded: 0 },
      partial: partialReporter(req),
    };
    const writerId = newWriterId();
    activeWriters.add(writerId);
    try {
      return await this.attempts(req, job, writerId);
    } finally {
      activeWriters.delete(writerId);
    }
  }

  /** One statfs per directory per SMALL_FILE_SHARING_MS, shared by the small files written there. */
  private sharedFreeBytes(dir: string): Promise<number | undefined> {
    const now = Date.now();
    const hit = this.recentFree.get(dir);
    if (hit && now - hit.at <= SMALL_FILE_SHARING_MS) return hit.free;
    const free = freeBytes(dir);
    this.recentFree.set(dir, { at: now, free });
    return free;
  }

  /** Acquire → transfer → commit, repeated after bad content (once from scratch) or a lost partial. */
  private async attempts(req: TransferRequest, job: FileJob, writerId: string): Promise<TransferResult> {
    const o = this.options;
    let freshIntegrityFailures = 0;
    const small = job.size < o.parallelThreshold;
    let single = small;
    // Only a small file's first attempt takes the short way; any retry runs the full protocol.
    let quick = small;
    for (;;) {
      const acquire = quick ? (a: AcquireOptions) => acquireSmallPartial(a, this.listing) : acquirePartial;
      quick = false;
      const acquired = await acquirePartialTyped(acquire, {
        dir: req.partialDir,
        key: req.partialKey,
        finalPath: req.finalPath,
        expected: req.expected,
        writerId,
        staleAfterMs: o.staleAfterSeconds * 1000,
        foreignStaleAfterMs: o.foreignStaleAfterSeconds * 1000,
        liveWriterWaitMs: o.liveWriterWaitSeconds * 1000,
        pollIntervalMs: o.pollIntervalMs,
        signal: req.signal,
        // Show the other writer's progress while we wait for it.
        onWaiting: (bytes) => job.progress.reset(bytes, 0),
      });
      if (acquired.kind === 'final') return reused(req, job.progress, job.stats.downloaded);
      const owned = acquired.partial;
      const resumedAtStart = resumeBytes(owned.resume);
      try {
        const digest = single ? await downloadSingle(job, owned) : await downloadRanged(job, owned);
        const bad = verifyDigest(req.label, req.expected, digest);
        if (bad) throw bad;
        const outcome = small && owned.created ? await commitSmall(owned, req, o) : await commit(owned, req, o);
        job.progress.finish();
        return result(req, job, digest, outcome === 'discarded');
      } catch (err) {
        if (err instanceof IntegrityError || err instanceof RemoteChangedError) {
          await owned.discard();
          // Resumed bytes may be what was wrong (torn or foreign partial): a free restart.
          if (resumedAtStart > 0) continue;
          if (++freshIntegrityFailures <= 1) continue;
          if (err instanceof RemoteChangedError)
            throw new ServerError(`${err.message}; giving up`, undefined, undefined);
          throw err;
        }
        if (err instanceof RangeUnsupportedError) {
          await owned.discard();
          single = true;
          continue;
        }
        if (err instanceof OwnershipLostError) {
          await owned.close();
          continue; // another writer owns it now: wait for it or take it back when it dies
        }
        // Keep anything worth resuming (even if this attempt had not re-hashed it yet).
        if (resumedAtStart > 0 || job.progress.bytes > 0) await owned.abandon();
        else await owned.discard();
        // fsync can report a full disk too (delayed allocation, NFS).
        throw isDiskFull(err) ? diskFullError(req.partialDir, err) : err;
      }
    }
  }
}

/**
 * fsync, drop the resume trailer, chmod, rename. The rename is the only moment finalPath
 * appears. If another writer committed first we keep theirs (same verified content).
 */
async function commit(
  owned: OwnedPartial,
  req: TransferRequest,
  o: TransferOptions,
): Promise<'committed' | 'discarded'> {
  const fh = owned.fh;
  await fh.sync(); // the long part; the heartbeat still runs so nobody thinks we died
  await owned.stopHeartbeat();
  if ((await fh.stat()).size !== req.expected.size) {
    await fh.truncate(req.expected.size);
    await fh.sync();
  }
  try {
    await fh.chmod(defaultFileMode());
  } catch {
    // Python only warns when chmod fails; so do we (silently).
  }
  o.fsHooks?.beforeCommitRename?.({ path: owned.path, finalPath: req.finalPath });
  await owned.checkOwned();
  await owned.close();
  if (await existsWithSize(req.finalPath, req.expected.size)) {
    await unlinkQuiet(owned.path);
    return 'discarded';
  }
  await renameOwned(owned, req.finalPath);
  await syncDir(path.dirname(req.finalPath));
  return 'committed';
}

/**
 * commit() for a small file we created: no fsync of the file or its directory, no chmod (it was
 * created 0666 & ~umask) and no extra stats. huggingface_hub syncs nothing either. What a kill -9
 * cannot break stays: the hash was verified before this rename, and the partial only ever
 * appears under its final name complete. After a power cut, a small blob may be torn or empty
 * (the rename reached the disk before the data); `hubcache verify` finds it by its hash and
 * `verify --fix` fetches it again. Large files keep the fsyncs (commit()).
 */
async function commitSmall(owned: OwnedPartial, req: TransferRequest, o: TransferOptions): Promise<'committed'> {
  await owned.stopHeartbeat();
  o.fsHooks?.beforeCommitRename?.({ path: owned.path, finalPath: req.finalPath });
  await owned.close();
  await renameOwned(owned, req.finalPath);
  return 'committed';
}

/** The commit rename; our partial gone means another writer took it over (OwnershipLostError). */
async function renameOwned(owned: OwnedPartial, finalPath: string): Promise<void> {
  try {
    await fsp.rename(owned.path, finalPath);
  } catch (err) {
    // ENOENT also means a missing target directory: only a vanished partial is a lost partial.
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
    const gone = await fsp.access(owned.path).then(
      () => false,
      () => true,
    );
    throw gone ? new OwnershipLostError(owned.path) : err;
  }
}

/** How long small files share a directory listing and a statfs. */
const SMALL_FILE_SHARING_MS = 1000;

async function acquirePartialTyped(
  acquire: (o: AcquireOptions) => Promise<Acquired>,
  o: AcquireOptions,
): Promise<Acquired> {
  try {
    return await acquire(o);
  } catch (err) {
    if (isDiskFull(err)) throw diskFullError(o.dir, err);
    throw err;
  }
}

function result(req: TransferRequest, job: FileJob, digest: Digest, discarded: boolean): TransferResult {
  const out: TransferResult = {
    finalPath: req.finalPath,
    downloadedBytes: job.stats.downloaded,
    resumedBytes: job.progress.resumedBytes,
    sha256: digest.sha256,
  };
  if (discarded) out.reused = true;
  return out;
}

function reused(req: TransferRequest, progress: ProgressReporter, downloadedBytes = 0): TransferResult {
  progress.finish();
  return { finalPath: req.finalPath, downloadedBytes, resumedBytes: 0, reused: true };
}

async function joinRunning(running: Promise<TransferResult>, req: TransferRequest): Promise<TransferResult> {
  const signal = req.signal;
  const abort = new Promise<never>((_, reject) => {
    if (signal?.aborted) reject(AbortedError.from(signal));
    signal?.addEventListener('abort', () => reject(AbortedError.from(signal)), { once: true });
  });
  abort.catch(() => undefined);
  const r = await Promise.race([running, abort]);
  req.onProgress?.({
    label: req.label,
    bytes: req.expected.size,
    total: req.expected.size,
    resumedBytes: 0,
    done: true,
  });
  return { finalPath: r.finalPath, downloadedBytes: 0, resumedBytes: 0, reused: true };
}

/** A failing onPartial callback must not break the download (like onProgress). */
function partialReporter(req: TransferRequest): (path: string, bytes: number) => void {
  const sink = req.onPartial;
  if (!sink) return () => undefined;
  return (p, bytes) => {
    try {
      sink({ path: p, bytes });
    } catch {
      /* ignored */
    }
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function validateOptions(o: TransferOptions): void {
  const positive: Array<keyof TransferOptions> = [
    'connections',
    'targetRate',
    'maxConnections',
    'chunkSize',
    'bufferMemory',
    'stallTimeoutSeconds',
    'heartbeatIntervalMs',
    'staleAfterSeconds',
    'pollIntervalMs',
  ];
  for (const k of positive) {
    const v = o[k];
    if (typeof v !== 'number' || !(v > 0)) throw new UsageError(`transfer option ${k} must be a positive number`);
  }
  if (o.maxRetries < 0) throw new UsageError('transfer option maxRetries must be >= 0');
  if (o.staleAfterSeconds * 1000 <= 2 * o.heartbeatIntervalMs) {
    throw new UsageError('staleAfterSeconds must be well above the heartbeat interval');
  }
}

function validateRequest(req: TransferRequest): void {
  const size = req.expected.size;
  if (!Number.isSafeInteger(size) || size < 0) throw new UsageError(`invalid expected size for ${req.label}`);
  if (!req.partialKey || /[/\\\0]/.test(req.partialKey) || req.partialKey === '.' || req.partialKey === '..') {
    throw new UsageError(`invalid partialKey for ${req.label}`);
  }
}
