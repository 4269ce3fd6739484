// One keep-alive connection of the HTTP/1.1 client: the socket reads into the response head
// buffer or straight into the body consumer's buffer, and the framing (length, chunked, close)
// is cut out in place.
import type net from 'node:net';
import { AbortedError, asNetworkError, NetworkError, type ServerError } from '../errors.js';
import { ChunkedDecoder } from './chunked.js';
import {
  bodyFraming,
  keepAliveTimeoutSeconds,
  keepsAlive,
  malformed,
  parseHead,
  type BodyFraming,
  type ResponseHead,
} from './head.js';
import { Http1Response, type BodyConsumer, type ResponseSource } from './response.js';

export type Method = 'GET' | 'HEAD' | 'POST';

/** What one exchange needs beyond the request text. */
export interface ExchangeOptions {
  signal?: AbortSignal | undefined;
  /** Time allowed from sending the request to the end of the response head. */
  headersTimeoutMs: number;
}

/** Where a connection goes back when its response ended cleanly (the client's idle pool). */
export interface ConnectionPool {
  release(conn: Connection, serverTimeoutSeconds: number | undefined): void;
  forget(conn: Connection): void;
}

/** The request failed on a reused connection before any answer: safe to send again. */
export class StaleConnectionError extends Error {}

type ConnState = 'connecting' | 'idle' | 'head' | 'waiting' | 'body' | 'dead';

interface PendingHead {
  resolve: (r: Http1Response) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One socket and the one exchange on it at a time. */
export class Connection implements ResponseSource {
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
  private readonly onAbort = (): void => this.fail(AbortedError.from(this.signal));

  constructor(
    private readonly client: ConnectionPool,
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
      const onAbort = (): void => done(AbortedError.from(signal));
      const timer = setTimeout(
        () => done(new NetworkError(`connection timed out after ${Math.round(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
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

  request(method: Method, text: string, o: ExchangeOptions): Promise<Http1Response> {
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
    this.early =
      this.headFill > head.length ? Buffer.from(this.scratch.subarray(head.length, this.headFill)) : undefined;
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
    for (let off = 0; off < n && this.state === 'body' && this.consumer;) {
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
      this.fail(
        new NetworkError(
          this.state === 'body' ? 'connection closed before the response ended' : 'connection closed by the server',
        ),
        true,
      );
    }
  }
}

function headTooLarge(limit: number): ServerError {
  return malformed(`response headers larger than ${Math.round(limit / 1024)} KiB`);
}
