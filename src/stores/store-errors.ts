// Typed failures of a shared object store (S3 and compatibles). The mirror answers a
// StoreUnavailableError with 503 and a JSON body; the store is used again as soon as it answers.
import { ExitCode, HubcacheError, type ExitCodeValue } from '../errors.js';

/** A store answer that is neither success nor a condition the caller handles (a bug or a misconfiguration). */
export class StoreError extends HubcacheError {
  override readonly exitCode: ExitCodeValue = ExitCode.server;
  constructor(
    message: string,
    /** HTTP status of the store's answer, when there was one. */
    readonly status?: number,
    /** The store's error code (`NoSuchBucket`, `SlowDown`, ...) or the socket error code. */
    readonly code?: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(message, options);
  }
}

/**
 * The store cannot be used right now: unreachable, timing out, 5xx/throttling after retries, or refusing
 * our credentials / missing the bucket. Nothing was committed by the failed call.
 */
export class StoreUnavailableError extends StoreError {
  override readonly exitCode = ExitCode.network;
}

/** The blob (or metadata object) is not in the store. */
export class StoreNotFoundError extends StoreError {}

/** A Range that starts at or past the end of the blob. */
export class StoreRangeError extends StoreError {}

/** The store does not do atomic conditional writes, so it cannot coordinate a cluster. */
export class ConditionalWritesUnsupportedError extends StoreError {}

/** A lease this replica held was taken over (its ETag changed) or expired before it could be renewed. */
export class LeaseLostError extends StoreError {}
