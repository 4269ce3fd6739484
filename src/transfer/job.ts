// What a single-file transfer needs from the engine, shared by the single and ranged paths.
import { setMaxListeners } from 'node:events';
import { ServerError } from '../errors.js';
import type { BufferPool } from './body-pump.js';
import type { Http1Client } from '../http/client.js';
import type { SourceHolder, OpenedResponse } from './http-range.js';
import type { Semaphore } from './limiter.js';
import type { ProgressReporter } from './progress.js';
import { headerValue } from './retry.js';
import type { ExpectedContent, TransferOptions } from './types.js';

export interface FileJob {
  label: string;
  expected: ExpectedContent;
  size: number;
  /** Directory of the partial (for free-space checks and messages). */
  dir: string;
  source: SourceHolder;
  opts: TransferOptions;
  http: Http1Client;
  connections: Semaphore;
  progress: ProgressReporter;
  /** The caller's signal. */
  signal: AbortSignal | undefined;
  /** Write batches, shared by all connections of the engine (see batchSize()). */
  pool: BufferPool;
  /** Free bytes where the partial lives (small files share one recent statfs per directory). */
  freeBytes: () => Promise<number | undefined>;
  stats: { downloaded: number };
  /** The request's onPartial (see TransferRequest), or a no-op. */
  partial: (path: string, bytes: number) => void;
}

/** The server changed what it serves under this URL since a partial was started. */
export class RemoteChangedError extends Error {}

/** The server answered a ranged GET with 200: it ignores Range, use one plain stream. */
export class RangeUnsupportedError extends Error {}

/** Bytes on disk must be the stored representation; a compressed body cannot be ranged or sized. */
export function assertIdentityEncoding(res: OpenedResponse, label: string): void {
  const enc = headerValue(res.body.headers, 'content-encoding')?.trim().toLowerCase();
  if (enc && enc !== 'identity') {
    res.body.destroy();
    throw new ServerError(
      `server sent ${enc}-encoded content for ${label} despite Accept-Encoding: identity`,
      res.body.status,
      undefined,
    );
  }
}

/** One signal for a file's requests; every connection and waiter listens to it. */
export function combinedSignal(outer: AbortSignal | undefined, inner: AbortSignal): AbortSignal {
  const s = outer ? AbortSignal.any([outer, inner]) : inner;
  // Up to two listeners per connection (request + slot wait): not a leak, however many.
  setMaxListeners(0, s);
  return s;
}

const KiB = 1024;

/**
 * Bytes per write batch: `bufferMemory` split evenly over `maxConnections`, each holding at most
 * `writeDepth` batches being written plus the one being filled, so the total stays bounded
 * whatever the file sizes and connection counts.
 */
export function batchSize(bufferMemory: number, maxConnections: number, writeDepth: number): number {
  return clamp(Math.floor(bufferMemory / maxConnections / (writeDepth + 1)), 64 * KiB, 1024 * KiB);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
