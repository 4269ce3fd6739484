// Contract between the layouts (which decide *where* a blob lives) and the transfer engine
// (which gets bytes onto disk safely). The engine never knows about hubs or layouts.
import { USER_AGENT } from '../version.js';

/** Where to GET a file's bytes from. `headers` already include auth when (and only when) safe. */
export interface DownloadSource {
  url: string;
  headers: Record<string, string>;
}

/** Expected identity of a file's content; checked before anything is committed to the cache. */
export interface ExpectedContent {
  size: number;
  sha256?: string;
  gitSha1?: string;
}

/** A non-2xx answer to a body GET, as the engine saw it (body already read, URL without query). */
export interface ErrorAnswer {
  status: number;
  /** `X-Error-Code`, when the server sent one. */
  code?: string | undefined;
  /** `X-Error-Message`, or the first words of the error body. */
  message?: string | undefined;
  url: string;
  /** The request's label (usually the repo path of the file). */
  what: string;
  retryAfterSeconds?: number | undefined;
}

export interface TransferProgress {
  /** Caller-chosen label, usually the repo path of the file. */
  label: string;
  /** Bytes of this file now on disk (including what was resumed). */
  bytes: number;
  total: number;
  /** Bytes that came from a previous partial download rather than the network in this run. */
  resumedBytes: number;
  done: boolean;
}

export interface TransferRequest {
  label: string;
  /**
   * Returns where to GET the bytes. Called once at start and again when a URL stops working
   * (e.g. an expired signed CDN URL answers 403), so it may do a metadata request.
   */
  source: () => Promise<DownloadSource>;
  expected: ExpectedContent;
  /** Directory that holds partial data (same file system as `finalPath`, so rename is atomic). */
  partialDir: string;
  /**
   * Stable base name of partial data for this content, e.g. the blob etag. Partial files are
   * `<partialDir>/<partialKey>.<writerId>.incomplete` (writerId = `hc` + 20 hex: host tag, pid,
   * random). Large files keep
   * their resume state *inside* that file (a trailer after the data), so there is exactly one
   * file per partial: huggingface_hub's cleanup (`<repo>/blobs/<name>.incomplete`) removes all of it, and
   * taking over a dead writer's partial is a single atomic rename.
   * huggingface_hub's own `<partialKey>.<8hex>.incomplete` / `<partialKey>.incomplete` are
   * adopted as a tentative prefix once stale.
   */
  partialKey: string;
  /** Where the verified file is renamed to (atomic commit). Parent dir must exist. */
  finalPath: string;
  signal?: AbortSignal;
  onProgress?: (p: TransferProgress) => void;
  /**
   * The partial file this call writes and its contiguous prefix (bytes from 0 without a hole,
   * already written): readers may stream that much while the file fills (the mirror does). Called
   * with a smaller `bytes` or another `path` when the transfer restarted (bad content, lost
   * partial): bytes read before are then not to be trusted. Not called while waiting for another
   * writer, nor for a file that was already there.
   */
  onPartial?: (p: { path: string; bytes: number }) => void;
}

export interface TransferResult {
  finalPath: string;
  /** Bytes received over the network in this call (including bytes thrown away by restarts). */
  downloadedBytes: number;
  /** Bytes taken from an earlier partial file (resume). */
  resumedBytes: number;
  /** Hex sha256 of the committed content; absent when another writer committed it for us. */
  sha256?: string;
  /** True when the file was already there or another writer committed it while we waited. */
  reused?: boolean;
}

/**
 * Test-only seams. Production code never sets these. A hook may throw (e.g. an Error with
 * `code: 'ENOSPC'`) or kill the process to simulate a crash at an exact point.
 */
export interface TransferFsHooks {
  /** Before every positional write of downloaded bytes into a partial file. */
  beforeWrite?: (info: { path: string; position: number; length: number }) => void;
  /** After a resume-state checkpoint has been written (data synced first). */
  afterCheckpoint?: (info: { path: string; seq: number; doneBytes: number }) => void;
  /** During commit, after the hash check, truncate, fsync and chmod, right before the rename. */
  beforeCommitRename?: (info: { path: string; finalPath: string }) => void;
}

export interface TransferOptions {
  /**
   * Max parallel connections for one large file. A file starts on one; more are added while
   * their measured speed says they pay, up to `targetRate` (see governor.ts).
   */
  connections: number;
  /**
   * Aggregate bytes/s per file beyond which more connections are not worth their CPU (about
   * what one core can sha256 and write). A capped CDN stream at 40 MB/s gets all `connections`;
   * a link where one stream already moves 1 GB/s gets two.
   */
  targetRate: number;
  /** Max connections across all downloads of one engine (the shared connection budget). */
  maxConnections: number;
  /** Files smaller than this use a single stream (no range machinery, no resume state). */
  parallelThreshold: number;
  /**
   * Largest byte range one request of a parallel download asks for. Requests get shorter as a
   * file nears completion, so all connections finish together. Resume progress is recorded per
   * chunk of a quarter of this, at most 1 MiB (more for huge files: the map must fit the state).
   */
  chunkSize: number;
  /**
   * Bytes of downloaded data the engine may hold in memory at once over all its connections
   * (write batches), split evenly between `maxConnections`. Hashing holds none: it reads the
   * bytes back from the page cache. The default gives 1 MiB batches, measured best: 341 KiB
   * batches took 1.10 s for 1 GiB on loopback, 1 MiB 0.85 s (each batch costs a wakeup of a
   * write thread and of the hash thread), 2-4 MiB no better. Fast links use 1-2 connections,
   * so a few MiB; a capped CDN's 16 connections hold up to 48 MiB.
   */
  bufferMemory: number;
  /** Seconds without a byte before a connection counts as stalled and is retried. */
  stallTimeoutSeconds: number;
  /** Consecutive failed attempts without progress, per range, before giving up. */
  maxRetries: number;
  /** First retry delay; doubles per consecutive failure (with jitter) up to `maxRetryDelayMs`. */
  retryBaseDelayMs: number;
  maxRetryDelayMs: number;
  /** A 429 asking to wait longer than this fails at once with RateLimitedError. */
  maxRetryAfterSeconds: number;
  /** How often a writer checkpoints its resume state and proves it is alive. */
  heartbeatIntervalMs: number;
  /** A hubcache writer whose heartbeat is older than this is dead and its partial is taken over. */
  staleAfterSeconds: number;
  /** Same, for huggingface_hub's partials (judged by mtime; Python writes 10 MiB at a time). */
  foreignStaleAfterSeconds: number;
  /**
   * While another live writer downloads the same content, wait for it; if its progress stalls
   * for this long, download into our own partial instead.
   */
  liveWriterWaitSeconds: number;
  /** Poll period while waiting for another writer. */
  pollIntervalMs: number;
  /** Minimum time between two progress callbacks of one file. */
  progressIntervalMs: number;
  /** Sent as `user-agent` unless the source headers set one. */
  userAgent: string;
  /**
   * Turns an error answer into the error to throw (the hubs' mapping is injected by the Cache);
   * by default an HTTP-level error (src/http/status-error.ts). 5xx/408/429 stay retryable either way.
   */
  errorFor?: (answer: ErrorAnswer) => Error;
  fsHooks?: TransferFsHooks;
}

const MiB = 1024 * 1024;

/**
 * Defaults chosen from loopback measurements (bench/run.ts, test/fixtures/transfer-bench.ts):
 * with a 40 MB/s per-connection cap, 16 connections match aria2c -x16 on 1 GiB and even a
 * 16 MiB file gets ~5x from ranges; requests of up to 32 MiB keep them few (each costs a round
 * trip) while the shrinking last ones keep the tail short. maxConnections leaves room for other
 * files next to one large file.
 */
export const defaultTransferOptions: Readonly<TransferOptions> = Object.freeze({
  connections: 64,
  targetRate: 1.5e9,
  maxConnections: 64,
  parallelThreshold: 16 * MiB,
  chunkSize: 32 * MiB,
  bufferMemory: 96 * MiB,
  stallTimeoutSeconds: 30,
  maxRetries: 5,
  retryBaseDelayMs: 1000,
  maxRetryDelayMs: 30_000,
  maxRetryAfterSeconds: 300,
  heartbeatIntervalMs: 2000,
  staleAfterSeconds: 20,
  foreignStaleAfterSeconds: 60,
  liveWriterWaitSeconds: 60,
  pollIntervalMs: 500,
  progressIntervalMs: 100,
  userAgent: USER_AGENT,
});
