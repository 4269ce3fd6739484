// The HTTP/1.1 client of hubcache: the hubs' API requests and the file bodies, keep-alive,
// plain TCP or TLS, direct or through a proxy. This module holds the pool of idle connections.
//
// Why not undici or node:http: both allocate a fresh buffer for every socket read and pass each
// byte through more copies (undici copies it into its WASM parser, then slices it out again).
// At 1 GiB/s that garbage and copying cost more CPU than the sha256. Here the socket reads
// straight into the caller's write buffer (net's `onread` with a buffer per read), the framing
// is cut out in place, and the same buffer goes to disk: one copy, kernel to buffer. (undici
// also took 60 ms of every CLI start to load; this loads in 5.)
import net from 'node:net';
import tls from 'node:tls';
import { AbortedError, NetworkError, UsageError } from '../errors.js';
import { caFromEnv } from './ca.js';
import {
  Connection,
  StaleConnectionError,
  type ConnectionPool,
  type ExchangeOptions,
  type Method,
} from './connection.js';
import { isHeaderName, isHeaderValue } from './head.js';
import { bareHost, proxyFor, type ProxyRoute } from './proxy.js';
import type { Http1Response } from './response.js';
import { openTunnel } from './tunnel.js';

// The parts live in connection.ts, response.ts and tunnel.ts; this module is the entry point.
export type { Method } from './connection.js';
export { BodyTooLargeError, Http1Response, type BodyConsumer } from './response.js';

export interface Http1ClientOptions {
  /** Idle keep-alive connections are closed after this long (or the server's own timeout). */
  keepAliveMs?: number;
  connectTimeoutMs?: number;
  /** Response heads larger than this are refused (a hostile server could send endless headers). */
  maxHeadBytes?: number;
  /** Extra TLS settings, e.g. `ca` for a private certificate authority. */
  tls?: tls.ConnectionOptions;
  /**
   * Where HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY and the CA bundle variables
   * (REQUESTS_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE) are read (default: process.env).
   */
  env?: Record<string, string | undefined>;
}

export interface RequestOptions extends ExchangeOptions {
  method?: Method;
  headers: Record<string, string>;
  body?: string | undefined;
}

/** Headers this client frames itself. */
const OWN_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'proxy-authorization',
]);

export class Http1Client implements ConnectionPool {
  private readonly idle = new Map<string, Connection[]>();
  private readonly keepAliveMs: number;
  private readonly connectTimeoutMs: number;
  private readonly maxHeadBytes: number;
  private readonly tls: tls.ConnectionOptions;
  private readonly env: Record<string, string | undefined>;
  private closed = false;

  constructor(o: Http1ClientOptions = {}) {
    this.keepAliveMs = o.keepAliveMs ?? 30_000;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 30_000;
    this.maxHeadBytes = o.maxHeadBytes ?? 64 * 1024;
    this.env = o.env ?? process.env;
    const ca = caFromEnv(this.env);
    this.tls = { ...(ca ? { ca } : {}), ...o.tls };
  }

  /** Sends a GET and resolves with the response head; the body waits for `consume()`. */
  get(url: string, o: RequestOptions): Promise<Http1Response> {
    return this.request(url, { ...o, method: 'GET' });
  }

  /** Sends a request (no redirects followed) and resolves with the response head. */
  async request(url: string, o: RequestOptions): Promise<Http1Response> {
    if (this.closed) throw new UsageError('HTTP client is closed');
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`unsupported URL scheme ${u.protocol}`);
    const method = o.method ?? 'GET';
    const proxy = proxyFor(u, this.env);
    // Through a proxy, https goes in a CONNECT tunnel (the proxy sees no request); plain http is
    // sent to the proxy with the full URL as the target.
    const viaProxy = proxy && u.protocol === 'http:' ? proxy : undefined;
    const text = requestHead(method, u, o.headers, o.body, viaProxy);
    const key = `${proxy ? `${proxy.url.origin}|` : ''}${u.protocol}//${u.host}`;
    if (o.signal?.aborted) throw AbortedError.from(o.signal);
    // A kept-alive connection may have been closed by the server a moment ago. A GET or HEAD
    // that fails on a reused connection before any byte of answer is sent again on a fresh one.
    for (let conn = this.takeIdle(key); conn; conn = this.takeIdle(key)) {
      try {
        return await conn.request(method, text, o);
      } catch (err) {
        if (!(err instanceof StaleConnectionError)) throw err;
        if (method === 'POST') throw new NetworkError(`connection closed before an answer: ${err.message}`);
      }
    }
    const conn = await this.connect(u, key, proxy, o.signal);
    return conn.request(method, text, o);
  }

  /** Closes idle connections; responses in progress finish on theirs, which then close. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const c of list) c.destroy();
    this.idle.clear();
  }

  /** @internal A connection whose response ended cleanly comes back here. */
  release(conn: Connection, serverTimeoutSeconds: number | undefined): void {
    if (this.closed) {
      conn.destroy();
      return;
    }
    const list = this.idle.get(conn.key) ?? [];
    list.push(conn);
    this.idle.set(conn.key, list);
    // Close a little before the server would, so we never write into a closing socket.
    const serverMs = serverTimeoutSeconds !== undefined ? serverTimeoutSeconds * 1000 - 500 : Infinity;
    conn.idleUntil(Math.max(0, Math.min(this.keepAliveMs, serverMs)));
  }

  /** @internal */
  forget(conn: Connection): void {
    const list = this.idle.get(conn.key);
    const i = list?.indexOf(conn) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
  }

  private takeIdle(key: string): Connection | undefined {
    const list = this.idle.get(key);
    const conn = list?.pop(); // the most recently used one is the least likely to be closing
    conn?.activate();
    return conn;
  }

  private async connect(
    u: URL,
    key: string,
    proxy: ProxyRoute | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Connection> {
    const host = bareHost(u.hostname);
    const secure = u.protocol === 'https:';
    const port = Number(u.port || (secure ? 443 : 80));
    const tlsOptions = { servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], ...this.tls };
    let conn: Connection;
    if (proxy && secure) {
      const tunnel = await openTunnel(proxy, `${u.hostname}:${port}`, this.connectTimeoutMs, signal);
      conn = new Connection(this, key, this.maxHeadBytes, () => tls.connect({ socket: tunnel, ...tlsOptions }));
    } else if (proxy) {
      const at = { host: bareHost(proxy.url.hostname), port: Number(proxy.url.port || 80) };
      conn = new Connection(this, key, this.maxHeadBytes, (onread) => net.connect({ ...at, onread }));
    } else {
      conn = new Connection(this, key, this.maxHeadBytes, (onread) =>
        secure ? tls.connect(withOnread({ host, port, ...tlsOptions }, onread)) : net.connect({ host, port, onread }),
      );
    }
    await conn.connected(secure, this.connectTimeoutMs, signal);
    return conn;
  }
}

/** tls.connect takes net's `onread` too (Node ≥ 12), though its typings do not say so. */
function withOnread(o: tls.ConnectionOptions, onread: net.OnReadOpts): tls.ConnectionOptions {
  return Object.assign(o, { onread });
}

function requestHead(
  method: Method,
  u: URL,
  headers: Record<string, string>,
  body: string | undefined,
  proxy?: ProxyRoute,
): string {
  const target = proxy ? `${u.origin}${u.pathname}${u.search}` : `${u.pathname}${u.search}`;
  let text = `${method} ${target} HTTP/1.1\r\nHost: ${u.host}\r\n`;
  if (proxy?.authorization) text += `Proxy-Authorization: ${proxy.authorization}\r\n`;
  if (body !== undefined) text += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (OWN_HEADERS.has(name.toLowerCase())) continue;
    // A newline in a value (a pasted token, say) would inject headers of its own.
    if (!isHeaderName(name) || !isHeaderValue(value))
      throw new UsageError(`invalid HTTP header ${JSON.stringify(name)}`);
    text += `${name}: ${value}\r\n`;
  }
  return `${text}\r\n${body ?? ''}`;
}
