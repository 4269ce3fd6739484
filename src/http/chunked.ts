// Decoding `Transfer-Encoding: chunked` in place: the framing is cut out of the buffer the
// socket read into, so body bytes are never copied to a second buffer.
import { malformed } from './head.js';

type State = 'size' | 'ext' | 'sizeLf' | 'data' | 'dataCr' | 'dataLf' | 'lineStart' | 'trailer' | 'endLf' | 'done';

/** Chunk sizes above this (15 hex digits, ~1 EiB) are refused rather than overflowing. */
const MAX_SIZE_DIGITS = 15;
/** Chunk extensions and trailers are skipped, but a server may not send endless amounts. */
const MAX_SKIPPED_BYTES = 64 * 1024;

export interface Decoded {
  /** Body bytes now at buf[at, at + body). */
  body: number;
  /** Input bytes consumed (less than given when the body ended before them). */
  consumed: number;
}

export class ChunkedDecoder {
  private state: State = 'size';
  private digits = 0;
  private size = 0;
  private left = 0;
  private skipped = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /** Decodes buf[at, at + n): body bytes are moved to the front of that range. */
  decode(buf: Buffer, at: number, n: number): Decoded {
    let read = at;
    let write = at;
    const end = at + n;
    while (read < end && this.state !== 'done') {
      if (this.state === 'data') {
        const k = Math.min(this.left, end - read);
        if (write !== read) buf.copyWithin(write, read, read + k);
        write += k;
        read += k;
        this.left -= k;
        if (this.left === 0) this.state = 'dataCr';
        continue;
      }
      this.step(buf[read] as number);
      read++;
    }
    return { body: write - at, consumed: read - at };
  }

  private step(c: number): void {
    switch (this.state) {
      case 'size': {
        const v = hexValue(c);
        if (v >= 0) {
          if (++this.digits > MAX_SIZE_DIGITS) throw malformed('chunk size too large');
          this.size = this.size * 16 + v;
        } else if (this.digits === 0) {
          throw malformed('chunk size missing');
        } else if (c === 0x3b || c === 0x20 || c === 0x09) {
          this.state = 'ext';
        } else if (c === 0x0d) {
          this.state = 'sizeLf';
        } else if (c === 0x0a) {
          this.endSize();
        } else {
          throw malformed('bad chunk size');
        }
        return;
      }
      case 'ext':
        this.skip();
        if (c === 0x0d) this.state = 'sizeLf';
        else if (c === 0x0a) this.endSize();
        return;
      case 'sizeLf':
        if (c !== 0x0a) throw malformed('bad chunk size line');
        this.endSize();
        return;
      case 'dataCr':
        if (c === 0x0d) this.state = 'dataLf';
        else if (c === 0x0a) this.state = 'size';
        else throw malformed('chunk longer than its size');
        return;
      case 'dataLf':
        if (c !== 0x0a) throw malformed('chunk longer than its size');
        this.state = 'size';
        return;
      case 'lineStart':
        if (c === 0x0d) this.state = 'endLf';
        else if (c === 0x0a) this.state = 'done';
        else this.state = 'trailer';
        return;
      case 'trailer':
        this.skip();
        if (c === 0x0a) this.state = 'lineStart';
        return;
      case 'endLf':
        if (c !== 0x0a) throw malformed('bad end of chunked body');
        this.state = 'done';
        return;
      default:
        return;
    }
  }

  private endSize(): void {
    this.left = this.size;
    this.state = this.size === 0 ? 'lineStart' : 'data';
    this.size = 0;
    this.digits = 0;
  }

  private skip(): void {
    if (++this.skipped > MAX_SKIPPED_BYTES) throw malformed('chunk extensions or trailers too long');
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
