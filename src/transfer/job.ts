// What a single-file transfer needs from the engine, shared by the single and ranged paths.
import { setMaxListeners } from 'node:events';
import type { Dispatcher } from 'undici';
import type { ExpectedContent } from '../hubs/types.js';
import { ServerError } from '../errors.js';
import type { SourceHolder, OpenedResponse } from './http-range.js';
import type { Semaphore } from './limiter.js';
import type { ProgressReporter } from './progress.js';
import { headerValue } from './retry.js';
import type { TransferOptions } from './types.js';

export interface FileJob {
  label: string;
  expected: ExpectedContent;
  size: number;
  /** Directory of the partial (for free-space checks and messages). */
  dir: string;
  source: SourceHolder;
  opts: TransferOptions;
  dispatcher: Dispatcher;
  connections: Semaphore;
  progress: ProgressReporter;
  /** The caller's signal. */
  signal: AbortSignal | undefined;
  /** Per-connection share of the engine's buffer memory (see bufferSizes()). */
  buffers: BufferSizes;
  /** Free bytes where the partial lives (small files share one recent statfs per directory). */
  freeBytes: () => Promise<number | undefined>;
  stats: { downloaded: number };
}

/** The server changed what it serves under this URL since a partial was started. */
export class RemoteChangedError extends Error {}

/** The server answered a ranged GET with 200: it ignores Range, use one plain stream. */
export class RangeUnsupportedError extends Error {}

/** Bytes on disk must be the stored representation; a compressed body cannot be ranged or sized. */
export function assertIdentityEncoding(res: OpenedResponse, label: string): void {
  const enc = headerValue(res.headers, 'content-encoding')?.trim().toLowerCase();
  if (enc && enc !== 'identity') {
    res.body.destroy();
    throw new ServerError(`server sent ${enc}-encoded content for ${label} despite Accept-Encoding: identity`, res.status, undefined);
  }
}

/** One signal for a file's requests; every connection and waiter listens to it. */
export function combinedSignal(outer: AbortSignal | undefined, inner: AbortSignal): AbortSignal {
  const s = outer ? AbortSignal.any([outer, inner]) : inner;
  // Up to two listeners per connection (request + slot wait): not a leak, however many.
  setMaxListeners(0, s);
  return s;
}

export interface BufferSizes {
  /** Body bytes buffered per response before its socket is paused. */
  highWaterMark: number;
  /** Bytes per positional write. */
  batch: number;
}

const KiB = 1024;

/**
 * Splits `bufferMemory` evenly over `maxConnections`: each connection holds at most its socket
 * buffer plus WRITE_DEPTH + 1 write batches, so the total stays bounded whatever the file sizes
 * and connection counts. (A 1 MiB socket buffer per connection measured no faster on loopback
 * than 256 KiB, and cost 100 MB of peak RSS at 16 connections.)
 */
export function bufferSizes(bufferMemory: number, maxConnections: number, writeDepth: number): BufferSizes {
  const perConnection = bufferMemory / maxConnections;
  const batch = clamp(Math.floor(perConnection / (writeDepth + 1.5)), 64 * KiB, 1024 * KiB);
  return { batch, highWaterMark: clamp(Math.floor(batch / 2), 16 * KiB, 256 * KiB) };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
