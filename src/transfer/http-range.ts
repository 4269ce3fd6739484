// One GET (optionally ranged) with manual redirects, typed status errors and no token leaks.
import type { IncomingHttpHeaders } from 'node:http';
import { request, type Dispatcher } from 'undici';
import type { DownloadSource } from '../hubs/types.js';
import { HubHttpError, ServerError } from '../errors.js';
import { redactUrl } from '../hubs/http.js';
import { hubErrorFor } from '../hubs/http-errors.js';
import { asTypedError, headerValue, parseRetryAfter } from './retry.js';

type Body = Dispatcher.ResponseData['body'];

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
    this.pending ??= this.factory().then((s) => {
      this.current = { url: s.url, headers: { ...s.headers } };
      this.pending = undefined;
      return this.current;
    }, (err: unknown) => {
      this.pending = undefined;
      throw err;
    });
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
  status: number;
  headers: IncomingHttpHeaders;
  body: Body;
  /** Parsed `Content-Range` of a 206. */
  range?: { start: number; end: number; total?: number };
  /** Source generation the response came from (for 403 refresh bookkeeping). */
  generation: number;
}

export interface OpenOptions {
  source: SourceHolder;
  dispatcher: Dispatcher;
  /** Inclusive byte range; `end` undefined = to the end. */
  range?: { start: number; end?: number };
  signal: AbortSignal;
  headersTimeoutMs: number;
  userAgent: string;
  label: string;
  /** Body bytes buffered before the socket is paused (part of the engine's buffer memory). */
  highWaterMark: number;
}

/** A 403 that carries the source generation, so the caller can decide to refresh. */
export class ForbiddenStatusError extends HubHttpError {
  constructor(message: string, url: string | undefined, readonly generation: number, hint?: string) {
    super(message, 403, url, hint ? { hint } : undefined);
  }
}

export async function openGet(opts: OpenOptions): Promise<OpenedResponse> {
  const generation = opts.source.generation;
  let src = await opts.source.get();
  for (let hop = 0; ; hop++) {
    const headers = buildHeaders(src.headers, opts);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(src.url, {
        method: 'GET',
        headers,
        dispatcher: opts.dispatcher,
        signal: opts.signal,
        headersTimeout: opts.headersTimeoutMs,
        bodyTimeout: 0, // stalls are detected by our own watchdog, which ignores disk backpressure
        highWaterMark: opts.highWaterMark,
      });
    } catch (err) {
      throw asTypedError(err, opts.signal);
    }
    const location = headerValue(res.headers, 'location');
    if (res.statusCode >= 300 && res.statusCode < 400 && location) {
      await drain(res.body);
      if (hop >= MAX_REDIRECTS) throw new ServerError(`too many redirects for ${opts.label}`, res.statusCode, redactUrl(src.url));
      src = redirectTarget(src, location);
      opts.source.pin(src, generation);
      continue;
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      const out: OpenedResponse = { status: res.statusCode, headers: res.headers, body: res.body, generation };
      if (res.statusCode === 206) out.range = parseContentRange(headerValue(res.headers, 'content-range'));
      return out;
    }
    throw await statusError(res, src.url, opts.label, generation);
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

/** Follow a Location; drop credentials when the origin changes (signed CDN URLs). */
export function redirectTarget(src: DownloadSource, location: string): DownloadSource {
  const from = new URL(src.url);
  const to = new URL(location, from);
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

/** Read and drop a small body so the keep-alive connection can be reused. */
export async function drain(body: Body): Promise<void> {
  try {
    await body.dump({ limit: 64 * 1024 });
  } catch {
    // The connection is gone anyway; nothing to keep.
  }
}

async function readErrorMessage(body: Body): Promise<string | undefined> {
  // Bounded read: an error page can be large and we only want its first words.
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const piece of body) {
      const buf = piece as Buffer;
      parts.push(buf);
      size += buf.length;
      if (size >= 4096) break;
    }
  } catch {
    return undefined;
  } finally {
    if (!body.destroyed && size >= 4096) body.destroy();
  }
  const text = Buffer.concat(parts).toString('utf8').slice(0, 4096);
  try {
    const json = JSON.parse(text) as { error?: unknown };
    if (typeof json.error === 'string') return json.error.slice(0, 300);
  } catch {
    // not JSON
  }
  const trimmed = text.trim();
  return trimmed && !trimmed.startsWith('<') ? trimmed.slice(0, 200) : undefined;
}

async function statusError(
  res: Dispatcher.ResponseData,
  rawUrl: string,
  label: string,
  generation: number,
): Promise<Error> {
  const status = res.statusCode;
  const url = redactUrl(rawUrl);
  const code = headerValue(res.headers, 'x-error-code');
  const message = headerValue(res.headers, 'x-error-message') ?? (await readErrorMessage(res.body));
  // A bare 403 from a CDN usually means an expired signed URL: the caller may refresh it.
  if (status === 403 && !code) {
    return new ForbiddenStatusError(`HTTP 403 downloading ${label}${message ? `: ${message}` : ''}`, url, generation, 'Your token may lack access to this repo, or the download link expired.');
  }
  return hubErrorFor({ status, code, message, url, what: label, retryAfterSeconds: parseRetryAfter(res.headers), plain404IsEntry: true });
}
