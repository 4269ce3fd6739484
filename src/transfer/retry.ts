// Which failures are worth another attempt, and how long to wait before it.
import { AbortedError, asNetworkError, NetworkError, RateLimitedError, ServerError } from '../errors.js';

export interface RetryPolicy {
  maxRetries: number;
  retryBaseDelayMs: number;
  maxRetryDelayMs: number;
  /** A server asking to wait longer than this is not waited for. */
  maxRetryAfterSeconds: number;
}

/** Transient = the same request may well succeed later (network trouble, 5xx, 408, 429). */
export function isTransient(err: unknown): boolean {
  if (err instanceof AbortedError) return false;
  if (err instanceof NetworkError || err instanceof RateLimitedError) return true;
  if (err instanceof ServerError) {
    const s = err.status;
    return s === undefined || s === 408 || s >= 500;
  }
  return false;
}

/** Seconds to wait from `Retry-After` (delta-seconds or HTTP date) or `RateLimit: ...;t=N`. */
export function parseRetryAfter(
  headers: Record<string, string | string[] | undefined>,
  now = Date.now(),
): number | undefined {
  const rateLimit = headerValue(headers, 'ratelimit');
  if (rateLimit) {
    // IETF draft format used by the Hub: `"api";r=0;t=55` (t = seconds until reset).
    const t = /(?:^|;)\s*t=(\d+)/.exec(rateLimit);
    const r = /(?:^|;)\s*r=(\d+)/.exec(rateLimit);
    if (t?.[1] && (!r?.[1] || Number(r[1]) === 0)) return Number(t[1]);
  }
  const ra = headerValue(headers, 'retry-after')?.trim();
  if (!ra) return undefined;
  if (/^\d+$/.test(ra)) return Number(ra);
  const when = Date.parse(ra);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, Math.ceil((when - now) / 1000));
}

export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries spread out. */
export function backoffMs(failures: number, policy: RetryPolicy): number {
  const exp = Math.min(policy.maxRetryDelayMs, policy.retryBaseDelayMs * 2 ** Math.max(0, failures - 1));
  return exp / 2 + Math.random() * (exp / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(AbortedError.from(signal));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(AbortedError.from(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Counts consecutive failures of one range (or stream). Progress between two failures resets
 * the count, like huggingface_hub: a flaky link that keeps delivering bytes is never abandoned.
 */
export class RetryTracker {
  private failures = 0;
  constructor(
    private readonly policy: RetryPolicy,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Rethrows `err` when it is permanent or retries are exhausted; otherwise waits. */
  async onFailure(err: unknown, madeProgress: boolean): Promise<void> {
    if (!isTransient(err)) throw err;
    this.failures = madeProgress ? 1 : this.failures + 1;
    if (this.failures > this.policy.maxRetries) throw err;
    // 429, or a 503 that said when to come back (UnavailableStatusError).
    const asked = err instanceof RateLimitedError || err instanceof ServerError ? retryAfterOf(err) : undefined;
    if (asked !== undefined && asked > this.policy.maxRetryAfterSeconds) throw err;
    // Like huggingface_hub: wait what the server asked plus a little (it resets on the second).
    const serverWait = asked !== undefined ? asked * 1000 + 200 + Math.random() * 300 : 0;
    await sleep(Math.max(serverWait, backoffMs(this.failures, this.policy)), this.signal);
  }
}

function retryAfterOf(err: object): number | undefined {
  const s = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  return typeof s === 'number' ? s : undefined;
}

/** Wraps low-level socket errors as NetworkError, keeping typed errors as they are. */
export function asTypedError(err: unknown, signal: AbortSignal | undefined): Error {
  if (signal?.aborted) return AbortedError.from(signal);
  return asNetworkError(err, 'Check your connection; the download resumes where it stopped when you retry.');
}
