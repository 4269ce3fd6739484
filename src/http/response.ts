// A response of the HTTP/1.1 client: its head, and its body on demand, read straight into the
// consumer's buffers (see client.ts for why).
import type { IncomingHttpHeaders } from 'node:http';
import { AbortedError, NetworkError, ServerError } from '../errors.js';

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

/** What a response reads its body from: the connection it came on (connection.ts). */
export interface ResponseSource {
  /** Which exchange the connection serves now. */
  readonly exchange: number;
  consume(consumer: BodyConsumer): void;
  pause(): void;
  resume(): void;
  abandon(err: Error): void;
}

/** The response head, and the body on demand. Always `consume()`, `dump()`, `text()` or `destroy()` it. */
export class Http1Response {
  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    /** Body length announced by the head (undefined when chunked or read to close). */
    readonly contentLength: number | undefined,
    private readonly conn: ResponseSource,
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
        timer = setTimeout(
          () => this.destroy(new NetworkError(`no data received for ${Math.round(idleTimeoutMs / 1000)} s`)),
          idleTimeoutMs,
        );
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
          if (size > limit && mode === 'strict')
            reject(new BodyTooLargeError(`response body larger than ${limit} bytes`, undefined, undefined));
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
