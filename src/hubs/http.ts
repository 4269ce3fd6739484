// The one place metadata requests go through: keep-alive connections (src/http/client.ts),
// timeouts, a bounded response size, and the rule that a token never leaves the endpoint's origin.
import { AbortedError, HubcacheError, NetworkError, ServerError } from '../errors.js';
import { BodyTooLargeError, Http1Client, type Http1Response, type Method } from '../http/client.js';
import { redactUrl } from '../http/url.js';
import { USER_AGENT } from '../version.js';

// Moved to src/http/url.ts (the transfer layer needs them without the hubs); re-exported for the hub clients.
export { redactUrl, redirectLocation } from '../http/url.js';
export { USER_AGENT };

/** JSON answers bigger than this are refused (a hostile server could otherwise exhaust memory). */
const MAX_JSON_BYTES = 256 * 1024 * 1024;

let sharedClient: Http1Client | undefined;
/** Process-wide keep-alive pool; created lazily so importing the library opens nothing. */
function metadataClient(): Http1Client {
  sharedClient ??= new Http1Client({ keepAliveMs: 30_000 });
  return sharedClient;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  url: string;
  body: Http1Response;
  /** Time allowed between two pieces of the body. */
  timeoutMs: number;
}

export interface HttpRequestOptions {
  method?: Method;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
  /** The pool to use: a Cache's own (shared with its transfer engine); default: a process-wide one. */
  http?: Http1Client | undefined;
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** Same scheme+host+port: the only place a token may be sent. */
export function sameOrigin(a: string, b: string): boolean {
  return new URL(a).origin === new URL(b).origin;
}

/**
 * Client options for `endpoint`: the token goes to the primary endpoint's origin only (the
 * configured one, or the first of several given), never to another one (a mirror).
 */
export function accessAt(
  configured: { endpoint: string; token?: string | undefined },
  endpoint: string,
  primary = configured.endpoint,
): { endpoint: string; token: string | undefined } {
  return { endpoint, token: configured.token && sameOrigin(endpoint, primary) ? configured.token : undefined };
}

/** Maps low-level failures to NetworkError / AbortedError, naming the URL but never headers. */
export function wrapNetworkError(err: unknown, url: string, signal?: AbortSignal): Error {
  if (signal?.aborted) return AbortedError.from(signal);
  if (err instanceof HubcacheError && !(err instanceof NetworkError)) return err;
  const e = err as { cause?: { code?: unknown }; code?: unknown; message?: string };
  const code = e.cause?.code ?? e.code;
  const detail = typeof code === 'string' ? code : (e.message ?? String(err)).replace(/^network error: /, '');
  return new NetworkError(`Cannot reach ${redactUrl(url)}: ${detail}`, { cause: err });
}

/** One HTTP exchange, no redirects followed (callers decide, because of token rules). */
export async function httpRequest(url: string, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  try {
    const res = await (opts.http ?? metadataClient()).request(url, {
      method: opts.method ?? 'GET',
      headers: { 'user-agent': USER_AGENT, ...opts.headers },
      body: opts.body,
      signal: opts.signal,
      headersTimeoutMs: timeoutMs,
    });
    return { status: res.status, headers: flattenHeaders(res.headers), url, body: res, timeoutMs };
  } catch (err) {
    throw wrapNetworkError(err, url, opts.signal);
  }
}

/** Reads a body fully as text, refusing more than `limit` bytes. */
export async function readText(res: HttpResponse, limit = MAX_JSON_BYTES): Promise<string> {
  try {
    return (await res.body.readAll(limit, res.timeoutMs)).toString('utf8');
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      throw new ServerError(`Response from ${redactUrl(res.url)} is larger than ${limit} bytes`, res.status, res.url);
    }
    throw wrapNetworkError(err, res.url);
  }
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
  await res.body.dump();
}
