// One GET (optionally ranged) with manual redirects, typed status errors and no token leaks.
import { HubHttpError, ServerError } from '../errors.js';
import type { Http1Client, Http1Response } from '../http/client.js';
import { httpStatusError, readErrorMessage } from '../http/error-body.js';
import { redactUrl, redirectLocation } from '../http/url.js';
import type { DownloadSource, ErrorAnswer } from './types.js';
import { asTypedError, headerValue, parseRetryAfter } from './retry.js';

const MAX_REDIRECTS = 10;

/**
 * The current URL of one file. Remembers where redirects led (so each range skips the hop)
 * and refreshes the source once when a signed URL is refused with 403.
 */
export class SourceHolder {
  private current: DownloadSource | undefined;
  private pending: Promise<DownloadSource> | undefined;
  /** Bumped on every refresh, so a worker can tell whether its 403 predates a refresh. */
  generation = 0;
  refreshes = 0;

  constructor(private readonly factory: () => Promise<DownloadSource>) {}

  async get(): Promise<DownloadSource> {
    if (this.current) return this.current;
    this.pending ??= this.factory().then(
      (s) => {
        this.current = { url: s.url, headers: { ...s.headers } };
        this.pending = undefined;
        return this.current;
      },
      (err: unknown) => {
        this.pending = undefined;
        throw err;
      },
    );
    return this.pending;
  }

  /** Remember the redirect target (with the headers that are safe to send there). */
  pin(source: DownloadSource, generation: number): void {
    if (generation === this.generation) this.current = source;
  }

  /**
   * Called after a 403 seen on `generation`. Returns true when the caller should retry
   * (someone refreshed already, or we just did); false when the one refresh is spent.
   */
  async refreshAfter403(generation: number): Promise<boolean> {
    if (generation < this.generation) return true;
    if (this.refreshes >= 1) return false;
    this.refreshes++;
    this.generation++;
    this.current = undefined;
    await this.get();
    return true;
  }
}

export interface OpenedResponse {
  /** The 2xx response: status, headers, and the body to consume. */
  body: Http1Response;
  /** Parsed `Content-Range` of a 206. */
  range?: { start: number; end: number; total?: number };
  /** Source generation the response came from (for 403 refresh bookkeeping). */
  generation: number;
}

export interface OpenOptions {
  source: SourceHolder;
  http: Http1Client;
  /** Inclusive byte range; `end` undefined = to the end. */
  range?: { start: number; end?: number };
  signal: AbortSignal;
  headersTimeoutMs: number;
  userAgent: string;
  /** Maps an error answer to the error thrown (default: the HTTP-level httpStatusError). */
  errorFor?: ((answer: ErrorAnswer) => Error) | undefined;
  label: string;
}

/** A 403 that carries the source generation, so the caller can decide to refresh. */
export class ForbiddenStatusError extends HubHttpError {
  constructor(
    message: string,
    url: string | undefined,
    readonly generation: number,
    hint?: string,
  ) {
    super(message, 403, url, hint ? { hint } : undefined);
  }
}

/** A 503 (a CDN shedding load): retried like any 5xx, after the Retry-After it may carry. */
export class UnavailableStatusError extends ServerError {
  constructor(
    message: string,
    url: string | undefined,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message, 503, url);
  }
}

export async function openGet(opts: OpenOptions): Promise<OpenedResponse> {
  const generation = opts.source.generation;
  let src = await opts.source.get();
  for (let hop = 0; ; hop++) {
    const headers = buildHeaders(src.headers, opts);
    let res: Http1Response;
    try {
      res = await opts.http.get(src.url, { headers, signal: opts.signal, headersTimeoutMs: opts.headersTimeoutMs });
    } catch (err) {
      throw asTypedError(err, opts.signal);
    }
    const location = headerValue(res.headers, 'location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.dump();
      if (hop >= MAX_REDIRECTS)
        throw new ServerError(`too many redirects for ${opts.label}`, res.status, redactUrl(src.url));
      src = redirectTarget(src, location, res.status);
      opts.source.pin(src, generation);
      continue;
    }
    if (res.status >= 200 && res.status < 300) {
      const out: OpenedResponse = { body: res, generation };
      if (res.status === 206) out.range = parseContentRange(headerValue(res.headers, 'content-range'));
      return out;
    }
    throw await statusError(res, src.url, opts, generation);
  }
}

function buildHeaders(base: Record<string, string>, opts: OpenOptions): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) h[k.toLowerCase()] = v;
  h['user-agent'] ??= opts.userAgent;
  // Bytes on disk must be the stored representation; ranges of a gzip stream mean nothing.
  h['accept-encoding'] = 'identity';
  if (opts.range) h['range'] = `bytes=${opts.range.start}-${opts.range.end ?? ''}`;
  return h;
}

/** Follow a Location (http(s) only); drop credentials when the origin changes (signed CDN URLs). */
export function redirectTarget(src: DownloadSource, location: string, status?: number): DownloadSource {
  const from = new URL(src.url);
  const to = new URL(redirectLocation(src.url, location, status));
  if (to.origin === from.origin) return { url: to.href, headers: src.headers };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(src.headers)) {
    const lk = k.toLowerCase();
    if (lk !== 'authorization' && lk !== 'cookie' && lk !== 'proxy-authorization') headers[k] = v;
  }
  return { url: to.href, headers };
}

export function parseContentRange(v: string | undefined): OpenedResponse['range'] {
  const m = v ? /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(v) : null;
  if (!m?.[1] || !m[2] || !m[3]) return undefined;
  const out: NonNullable<OpenedResponse['range']> = { start: Number(m[1]), end: Number(m[2]) };
  if (m[3] !== '*') out.total = Number(m[3]);
  return out;
}

async function statusError(res: Http1Response, rawUrl: string, opts: OpenOptions, generation: number): Promise<Error> {
  const { status } = res;
  const { label } = opts;
  const url = redactUrl(rawUrl);
  const code = headerValue(res.headers, 'x-error-code');
  const message = await readErrorMessage(res);
  // A bare 403 from a CDN usually means an expired signed URL: the caller may refresh it.
  if (status === 403 && !code) {
    return new ForbiddenStatusError(
      `HTTP 403 downloading ${label}${message ? `: ${message}` : ''}`,
      url,
      generation,
      'Your token may lack access to this repo, or the download link expired.',
    );
  }
  const retryAfterSeconds = parseRetryAfter(res.headers);
  if (status === 503) {
    return new UnavailableStatusError(
      `HTTP 503 downloading ${label}${message ? `: ${message}` : ''}`,
      url,
      retryAfterSeconds,
    );
  }
  const answer: ErrorAnswer = { status, code, message, url, what: label, retryAfterSeconds };
  return (opts.errorFor ?? httpStatusError)(answer);
}
