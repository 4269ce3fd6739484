// The one place metadata requests go through: keep-alive connections (undici), timeouts, a
// bounded response size, and the rule that a token never leaves the endpoint's origin.
import { Agent, type Dispatcher, request } from 'undici';
import { AbortedError, NetworkError, ServerError } from '../errors.js';
import { VERSION } from '../version.js';

export const USER_AGENT = `hubcache/${VERSION}; hf_hub/js; node/${process.versions.node}`;

/** JSON answers bigger than this are refused (a hostile server could otherwise exhaust memory). */
const MAX_JSON_BYTES = 256 * 1024 * 1024;

let sharedAgent: Agent | undefined;
/** Process-wide keep-alive pool; created lazily so importing the library opens nothing. */
export function defaultDispatcher(): Dispatcher {
  sharedAgent ??= new Agent({
    keepAliveTimeout: 30_000,
    connections: 64,
    // A huge header block from a hostile server is rejected by undici's parser with this cap.
    maxHeaderSize: 64 * 1024,
  });
  return sharedAgent;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  url: string;
  body: Dispatcher.ResponseData['body'];
}

export interface HttpRequestOptions {
  method?: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
  dispatcher?: Dispatcher | undefined;
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** Same scheme+host+port: the only place a token may be sent. */
export function sameOrigin(a: string, b: string): boolean {
  return new URL(a).origin === new URL(b).origin;
}

/** Maps low-level failures to NetworkError / AbortedError, keeping the URL but never headers. */
export function wrapNetworkError(err: unknown, url: string, signal?: AbortSignal): Error {
  if (signal?.aborted) return new AbortedError();
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'HubcacheError')) return err;
  const e = err as { code?: string; message?: string };
  if (e?.code === 'UND_ERR_HEADERS_OVERFLOW') return new ServerError(`Response headers too large from ${redactUrl(url)}`, undefined, url);
  return new NetworkError(`Cannot reach ${redactUrl(url)}: ${e?.code ?? e?.message ?? String(err)}`, { cause: err });
}

/** Drops query strings (signed CDN URLs carry credentials) for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

/** One HTTP exchange, no redirects followed (callers decide, because of token rules). */
export async function httpRequest(url: string, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  try {
    const res = await request(url, {
      method: opts.method ?? 'GET',
      headers: { 'user-agent': USER_AGENT, ...opts.headers },
      body: opts.body,
      signal: opts.signal,
      dispatcher: opts.dispatcher ?? defaultDispatcher(),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      maxRedirections: 0,
    } as Parameters<typeof request>[1]);
    return { status: res.statusCode, headers: flattenHeaders(res.headers), url, body: res.body };
  } catch (err) {
    throw wrapNetworkError(err, url, opts.signal);
  }
}

/** Reads a body fully as text, refusing more than `limit` bytes. */
export async function readText(res: HttpResponse, limit = MAX_JSON_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body) {
      const b = c as Buffer;
      n += b.length;
      if (n > limit) {
        res.body.destroy();
        throw new ServerError(`Response from ${redactUrl(res.url)} is larger than ${limit} bytes`, res.status, res.url);
      }
      chunks.push(b);
    }
  } catch (err) {
    if (err instanceof ServerError) throw err;
    throw wrapNetworkError(err, res.url);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readJson(res: HttpResponse): Promise<unknown> {
  const text = await readText(res);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ServerError(`Malformed JSON from ${redactUrl(res.url)} (status ${res.status})`, res.status, res.url);
  }
}

/** Discards a body we do not need, so the connection goes back to the pool. */
export async function drain(res: HttpResponse): Promise<void> {
  try {
    await res.body.dump();
  } catch {
    /* the connection is dropped instead; nothing to do */
  }
}
