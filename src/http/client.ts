// The HTTP/1.1 client of hubcache: the hubs' API requests and the file bodies, keep-alive,
// plain TCP or TLS.
//
// Why not undici or node:http: both allocate a fresh buffer for every socket read and pass each
// byte through more copies (undici copies it into its WASM parser, then slices it out again).
// At 1 GiB/s that garbage and copying cost more CPU than the sha256. Here the socket reads
// straight into the caller's write buffer (net's `onread` with a buffer per read), the framing
// is cut out in place, and the same buffer goes to disk: one copy, kernel to buffer. (undici
// also took 60 ms of every CLI start to load; this loads in 5.)
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { AbortedError, asNetworkError, NetworkError, ServerError, UnauthorizedError, UsageError } from '../errors.js';
import { caFromEnv } from './ca.js';
import { ChunkedDecoder } from './chunked.js';
import { bareHost, proxyFor, type ProxyRoute } from './proxy.js';
import { bodyFraming, keepAliveTimeoutSeconds, keepsAlive, malformed, parseHead, type BodyFraming, type ResponseHead } from './head.js';

/** Where a response body goes. The client reads socket data directly into `space()`. */
export interface BodyConsumer {
  /** A non-empty buffer for the next body bytes. Called before every socket read. */
  space(): Buffer;
  /**
   * `n` body bytes are now at the start of the buffer the last `space()` returned. Return false
   * to pause the socket (call `resume()` later); a few more calls may still come.
   */
  data(n: number): boolean;
  /** The body is complete. */
  end(): void;
  /** The connection failed or closed before the body was complete. */
  error(err: Error): void;
}

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

export type Method = 'GET' | 'HEAD' | 'POST';

export interface RequestOptions {
  method?: Method;
  headers: Record<string, string>;
  body?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Time allowed from sending the request to the end of the response head. */
  headersTimeoutMs: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]/;
/** Headers this client frames itself. */
const OWN_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'proxy-authorization']);

export class Http1Client {
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
    if (o.signal?.aborted) throw new AbortedError();
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

  private async connect(u: URL, key: string, proxy: ProxyRoute | undefined, signal: AbortSignal | undefined): Promise<Connection> {
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

/** The response head, and the body on demand. Always `consume()`, `dump()`, `text()` or `destroy()` it. */
export class Http1Response {
  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    /** Body length announced by the head (undefined when chunked or read to close). */
    readonly contentLength: number | undefined,
    private readonly conn: Connection,
    /** Which exchange of the connection this is: once it is over, the connection may serve another. */
    private readonly exchange: number,
  ) {}

  private get current(): boolean {
    return this.conn.exchange === this.exchange;
  }

  consume(consumer: BodyConsumer): void {
    if (this.current) this.conn.consume(consumer);
    else consumer.error(new NetworkError('response body is no longer available'));
  }

  pause(): void {
    if (this.current) this.conn.pause();
  }

  resume(): void {
    if (this.current) this.conn.resume();
  }

  /** Drops the connection (if the body is not complete yet); an attached consumer gets `err`. */
  destroy(err?: Error): void {
    if (this.current) this.conn.abandon(err ?? new AbortedError('response discarded'));
  }

  /** Reads and drops a small body so the connection can be reused; a larger one closes it. */
  async dump(limit = 64 * 1024): Promise<void> {
    await this.collect(limit, 'discard').catch(() => undefined);
  }

  /** The body's first `limit` bytes as text (the rest is not read; the connection closes). */
  async text(limit: number): Promise<string> {
    return (await this.collect(limit, 'truncate')).toString('utf8');
  }

  /**
   * The whole body. More than `limit` bytes is a ServerError (a hostile server could otherwise
   * exhaust memory); so is a body that stalls for `idleTimeoutMs`.
   */
  readAll(limit: number, idleTimeoutMs = 30_000): Promise<Buffer> {
    return this.collect(limit, 'strict', idleTimeoutMs);
  }

  private collect(limit: number, mode: 'discard' | 'truncate' | 'strict', idleTimeoutMs = 0): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const buf = Buffer.allocUnsafe(Math.max(1, Math.min(limit + 1, 64 * 1024)));
      const parts: Buffer[] = [];
      let size = 0;
      let ended = false;
      let timer: NodeJS.Timeout | undefined;
      const watch = (): void => {
        if (idleTimeoutMs <= 0) return;
        clearTimeout(timer);
        timer = setTimeout(() => this.destroy(new NetworkError(`no data received for ${Math.round(idleTimeoutMs / 1000)} s`)), idleTimeoutMs);
      };
      watch();
      this.consume({
        space: () => buf,
        data: (n) => {
          watch();
          if (mode !== 'discard') parts.push(Buffer.from(buf.subarray(0, Math.min(n, limit - size))));
          size += n;
          if (size > limit || (size === limit && mode !== 'strict')) {
            queueMicrotask(() => ended || this.destroy(new AbortedError('body limit reached')));
          }
          return true;
        },
        end: () => {
          ended = true;
          clearTimeout(timer);
          resolve(Buffer.concat(parts));
        },
        error: (err) => {
          clearTimeout(timer);
          if (size > limit && mode === 'strict') reject(new BodyTooLargeError(`response body larger than ${limit} bytes`, undefined, undefined));
          // Past the limit, we closed it ourselves: what we have is the answer.
          else if (size >= limit && mode !== 'strict') resolve(Buffer.concat(parts));
          else reject(err);
        },
      });
    });
  }
}

/** readAll() met more than its limit. */
export class BodyTooLargeError extends ServerError {}

/** The request failed on a reused connection before any answer: safe to send again. */
class StaleConnectionError extends Error {}

type ConnState = 'connecting' | 'idle' | 'head' | 'waiting' | 'body' | 'dead';

interface PendingHead {
  resolve: (r: Http1Response) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One socket and the one exchange on it at a time. */
class Connection {
  private readonly socket: net.Socket;
  private state: ConnState = 'connecting';
  /** Response heads are read here; also where bytes land while the body is paused. */
  private readonly scratch: Buffer;
  private headFill = 0;
  private searched = 0;
  private pending: PendingHead | undefined;
  /** Counts requests sent; a response is only valid while its exchange is the current one. */
  exchange = 0;
  /** The server closed its side while a body waited to be consumed. */
  private eof = false;
  private method: Method = 'GET';
  private framing: BodyFraming = { kind: 'none' };
  private remaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private reusable = false;
  private serverTimeout: number | undefined;
  /** Body bytes that came with the head, before anyone consumed the body. */
  private early: Buffer | undefined;
  private consumer: BodyConsumer | undefined;
  /** The buffer handed to the socket for its next read, when it is the consumer's. */
  private lastSpace: Buffer | undefined;
  private paused = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private signal: AbortSignal | undefined;
  private readonly onAbort = (): void => this.fail(new AbortedError());

  constructor(
    private readonly client: Http1Client,
    readonly key: string,
    maxHeadBytes: number,
    open: (onread: net.OnReadOpts) => net.Socket,
  ) {
    this.scratch = Buffer.allocUnsafeSlow(maxHeadBytes);
    this.socket = open({ buffer: () => this.nextBuffer(), callback: (n, buf) => this.onRead(n, buf) });
    // A socket that honours `onread` never emits 'data'. One that does not (TLS over a proxy
    // tunnel: Node ignores `onread` when it wraps a socket it was handed) still works, by copy.
    this.socket.on('data', (chunk: Buffer) => this.onRead(chunk.length, chunk));
    this.socket.on('error', (err) => this.fail(err, true));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => {
      if (!(this.state === 'waiting' && this.eof)) this.fail(new NetworkError('connection closed by the server'), true);
    });
  }

  connected(secure: boolean, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.socket.off(secure ? 'secureConnect' : 'connect', onConnect);
        this.socket.off('error', onError);
        if (err) {
          this.fail(err);
          reject(asNetworkError(err));
        } else {
          resolve();
        }
      };
      const onConnect = (): void => {
        this.state = 'idle';
        this.socket.setNoDelay(true);
        done();
      };
      const onError = (err: Error): void => done(err);
      const onAbort = (): void => done(new AbortedError());
      const timer = setTimeout(() => done(new NetworkError(`connection timed out after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      this.socket.once(secure ? 'secureConnect' : 'connect', onConnect);
      this.socket.once('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Taken from the idle pool for a new exchange. */
  activate(): void {
    clearTimeout(this.idleTimer);
    this.socket.ref();
  }

  idleUntil(ms: number): void {
    this.socket.unref();
    this.idleTimer = setTimeout(() => {
      this.client.forget(this);
      this.destroy();
    }, ms);
    this.idleTimer.unref();
  }

  request(method: Method, text: string, o: RequestOptions): Promise<Http1Response> {
    if (this.state !== 'idle') return Promise.reject(new StaleConnectionError('connection not idle'));
    this.method = method;
    this.exchange++;
    this.state = 'head';
    this.eof = false;
    this.headFill = 0;
    this.searched = 0;
    this.signal = o.signal;
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
    return new Promise<Http1Response>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new NetworkError(`no response within ${Math.round(o.headersTimeoutMs / 1000)} s`)),
        o.headersTimeoutMs,
      );
      this.pending = { resolve, reject, timer };
      this.socket.write(text);
    });
  }

  consume(consumer: BodyConsumer): void {
    if (this.state !== 'waiting') {
      consumer.error(new NetworkError('response body is no longer available'));
      return;
    }
    this.state = 'body';
    this.consumer = consumer;
    const early = this.early;
    this.early = undefined;
    if (early) this.deliverCopy(early, early.length);
    if (this.state !== 'body') return;
    if (this.framing.kind === 'none' || (this.framing.kind === 'length' && this.remaining === 0)) this.finishBody();
    else if (this.eof && this.framing.kind === 'close') this.finishBody();
    else if (this.eof) this.fail(new NetworkError('connection closed before the response ended'));
    else this.resume();
  }

  /** Gives up on the current body: the connection cannot be reused for anything after it. */
  abandon(err: Error): void {
    if (this.state === 'waiting' || this.state === 'body' || this.state === 'head') this.fail(err);
  }

  pause(): void {
    if (this.paused || this.state === 'dead') return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused || this.state === 'dead') return;
    this.paused = false;
    this.socket.resume();
  }

  destroy(): void {
    this.fail(new AbortedError('connection closed'));
  }

  /**
   * Ends the connection; whoever waits on it gets `err`. `fromSocket`: the socket itself failed
   * or closed (not a timeout or an abort), which on a reused connection means it went stale.
   */
  fail(raw: unknown, fromSocket = false): void {
    if (this.state === 'dead') return;
    const wasHead = this.state === 'head';
    this.state = 'dead';
    this.socket.destroy();
    clearTimeout(this.idleTimer);
    this.client.forget(this);
    this.signal?.removeEventListener('abort', this.onAbort);
    const err = asNetworkError(raw);
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      clearTimeout(pending.timer);
      // Nothing came back on a reused connection: the server had closed it while idle.
      const stale = fromSocket && wasHead && this.headFill === 0 && this.exchange > 1;
      pending.reject(stale ? new StaleConnectionError(err.message) : err);
    }
    const consumer = this.consumer;
    this.consumer = undefined;
    consumer?.error(err);
  }

  private nextBuffer(): Buffer {
    if (this.state === 'body' && !this.paused && this.consumer) {
      this.lastSpace = this.consumer.space();
      return this.lastSpace;
    }
    this.lastSpace = undefined;
    if (this.state === 'head' && this.headFill < this.scratch.length) return this.scratch.subarray(this.headFill);
    return this.scratch;
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    try {
      if (this.state === 'head') this.onHeadBytes(n, buf);
      else if (this.state === 'body' && this.consumer) {
        const space = this.lastSpace;
        if (space && buf.buffer === space.buffer && buf.byteOffset === space.byteOffset) this.frame(space, n);
        else this.deliverCopy(buf, n);
      } else if (this.state === 'waiting') {
        // Paused right after the head; a read already under way may still land.
        const old = this.early ?? Buffer.alloc(0);
        this.early = Buffer.concat([old, buf.subarray(0, n)]);
      } else if (this.state !== 'dead') {
        this.fail(malformed('data received with no request pending'));
      }
    } catch (err) {
      this.fail(err);
    }
    return true; // pausing goes through socket.pause(), which resume() undoes
  }

  private onHeadBytes(n: number, buf: Uint8Array): void {
    if (buf.buffer !== this.scratch.buffer || buf.byteOffset !== this.scratch.byteOffset + this.headFill) {
      if (n > this.scratch.length - this.headFill) throw headTooLarge(this.scratch.length);
      this.scratch.set(buf.subarray(0, n), this.headFill);
    }
    this.headFill += n;
    for (;;) {
      const head = parseHead(this.scratch, this.headFill, this.searched);
      if (!head) {
        this.searched = this.headFill;
        if (this.headFill >= this.scratch.length) throw headTooLarge(this.scratch.length);
        return;
      }
      if (head.status >= 100 && head.status < 200) {
        // 100 Continue, 103 Early Hints: informational, the real answer follows.
        if (head.status === 101) throw malformed('unexpected protocol switch');
        this.scratch.copyWithin(0, head.length, this.headFill);
        this.headFill -= head.length;
        this.searched = 0;
        continue;
      }
      this.onHead(head);
      return;
    }
  }

  private onHead(head: ResponseHead): void {
    this.framing = this.method === 'HEAD' ? { kind: 'none' } : bodyFraming(head);
    this.remaining = this.framing.kind === 'length' ? this.framing.length : 0;
    this.chunked = this.framing.kind === 'chunked' ? new ChunkedDecoder() : undefined;
    this.reusable = keepsAlive(head) && this.framing.kind !== 'close';
    this.serverTimeout = keepAliveTimeoutSeconds(head);
    this.early = this.headFill > head.length ? Buffer.from(this.scratch.subarray(head.length, this.headFill)) : undefined;
    this.state = 'waiting';
    this.pause(); // until someone consumes the body
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    clearTimeout(pending.timer);
    const length = this.framing.kind === 'length' ? this.framing.length : this.framing.kind === 'none' ? 0 : undefined;
    pending.resolve(new Http1Response(head.status, head.headers, length, this, this.exchange));
  }

  /** Bytes that arrived elsewhere (early bytes, reads while paused) go into the consumer's space. */
  private deliverCopy(src: Uint8Array, n: number): void {
    for (let off = 0; off < n && this.state === 'body' && this.consumer; ) {
      const space = this.consumer.space();
      const k = Math.min(space.length, n - off);
      space.set(src.subarray(off, off + k));
      off += k;
      this.frame(space, k);
    }
  }

  /** `n` raw bytes at the start of `region`: strip the framing, hand the body to the consumer. */
  private frame(region: Buffer, n: number): void {
    const consumer = this.consumer;
    if (!consumer) return;
    let body = n;
    let complete = false;
    if (this.framing.kind === 'length') {
      body = Math.min(n, this.remaining);
      if (body < n) this.reusable = false; // the server sent more than it announced
      this.remaining -= body;
      complete = this.remaining === 0;
    } else if (this.chunked) {
      const d = this.chunked.decode(region, 0, n);
      body = d.body;
      if (d.consumed < n) this.reusable = false;
      complete = this.chunked.done;
    }
    if (body > 0 && !consumer.data(body)) this.pause();
    if (complete && this.state === 'body') this.finishBody();
  }

  private finishBody(): void {
    const consumer = this.consumer;
    this.consumer = undefined;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
    if (this.reusable) {
      this.state = 'idle';
      this.resume(); // keep reading while idle, to notice the server closing
      this.client.release(this, this.serverTimeout);
    } else {
      this.state = 'dead';
      this.socket.destroy();
    }
    consumer?.end();
  }

  private onEnd(): void {
    if (this.state === 'body' && this.framing.kind === 'close') {
      this.reusable = false;
      this.finishBody();
    } else if (this.state === 'waiting') {
      // Decided when the body is consumed: what came with the head may be all of it.
      this.eof = true;
      this.reusable = false;
    } else {
      this.fail(new NetworkError(this.state === 'body' ? 'connection closed before the response ended' : 'connection closed by the server'), true);
    }
  }
}

/** Opens a CONNECT tunnel through `proxy` to `authority` (host:port); resolves with the socket. */
function openTunnel(proxy: ProxyRoute, authority: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<net.Socket> {
  const where = proxy.url.host;
  const socket = net.connect({ host: bareHost(proxy.url.hostname), port: Number(proxy.url.port || 80) });
  return new Promise<net.Socket>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    };
    const onAbort = (): void => done(new AbortedError());
    const onError = (err: Error): void => done(asNetworkError(err));
    const onClose = (): void => done(new NetworkError(`proxy ${where} closed the connection`));
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      try {
        const answer = parseHead(head, head.length);
        if (!answer) {
          if (head.length > 64 * 1024) done(malformed(`proxy ${where} sent an endless answer`));
          return;
        }
        socket.pause();
        if (answer.status >= 200 && answer.status < 300 && answer.length === head.length) done();
        else if (answer.status === 407) {
          done(new UnauthorizedError(`proxy ${where} asks for credentials (HTTP 407)`, 407, undefined, { hint: 'Put them in the proxy URL: HTTPS_PROXY=http://user:password@host:port' }));
        } else done(new NetworkError(`proxy ${where} refused the tunnel to ${authority}: HTTP ${answer.status}`));
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const timer = setTimeout(() => done(new NetworkError(`proxy ${where} did not answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('connect', () => {
      const auth = proxy.authorization ? `Proxy-Authorization: ${proxy.authorization}\r\n` : '';
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    });
  });
}

/** tls.connect takes net's `onread` too (Node ≥ 12), though its typings do not say so. */
function withOnread(o: tls.ConnectionOptions, onread: net.OnReadOpts): tls.ConnectionOptions {
  return Object.assign(o, { onread });
}

function headTooLarge(limit: number): ServerError {
  return malformed(`response headers larger than ${Math.round(limit / 1024)} KiB`);
}

function requestHead(method: Method, u: URL, headers: Record<string, string>, body: string | undefined, proxy?: ProxyRoute): string {
  const target = proxy ? `${u.origin}${u.pathname}${u.search}` : `${u.pathname}${u.search}`;
  let text = `${method} ${target} HTTP/1.1\r\nHost: ${u.host}\r\n`;
  if (proxy?.authorization) text += `Proxy-Authorization: ${proxy.authorization}\r\n`;
  if (body !== undefined) text += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (OWN_HEADERS.has(name.toLowerCase())) continue;
    // A newline in a value (a pasted token, say) would inject headers of its own.
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) throw new UsageError(`invalid HTTP header ${JSON.stringify(name)}`);
    text += `${name}: ${value}\r\n`;
  }
  return `${text}\r\n${body ?? ''}`;
}
