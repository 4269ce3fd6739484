// Hashing a file in byte order while its chunks arrive out of order.
//
// The chunk at the hash head is hashed live as its bytes are written. Bytes of later chunks are
// kept in memory while the shared budget allows; beyond it they are only on disk and are read
// back when the head reaches them. Node cannot serialize a hash state, so this is also how a
// resumed partial is re-hashed: its chunks are "on disk, not in memory".
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { ExpectedContent } from '../hubs/types.js';
import { IntegrityError } from '../errors.js';
import type { MemoryBudget } from './limiter.js';

export interface Digest {
  bytes: number;
  sha256: string;
  gitSha1?: string;
}

/** sha256 of the content, plus git's blob sha1 ("blob <size>\0" + content) when asked. */
export class ContentHasher {
  private readonly sha256: Hash = createHash('sha256');
  private readonly sha1: Hash | undefined;
  private bytes = 0;

  constructor(size: number, wantGitSha1: boolean) {
    this.sha1 = wantGitSha1 ? createHash('sha1').update(`blob ${size}\0`) : undefined;
  }

  update(buf: Buffer): void {
    this.sha256.update(buf);
    this.sha1?.update(buf);
    this.bytes += buf.length;
  }

  get hashedBytes(): number {
    return this.bytes;
  }

  digest(): Digest {
    const out: Digest = { bytes: this.bytes, sha256: this.sha256.digest('hex') };
    if (this.sha1) out.gitSha1 = this.sha1.digest('hex');
    return out;
  }
}

/** The first mismatch between what we hashed and what was expected, if any. */
export function verifyDigest(label: string, expected: ExpectedContent, d: Digest): IntegrityError | undefined {
  if (d.bytes !== expected.size) return new IntegrityError(label, String(expected.size), String(d.bytes), 'size');
  if (expected.sha256 && d.sha256 !== expected.sha256.toLowerCase()) {
    return new IntegrityError(label, expected.sha256.toLowerCase(), d.sha256, 'sha256');
  }
  if (expected.gitSha1 && d.gitSha1 !== expected.gitSha1.toLowerCase()) {
    return new IntegrityError(label, expected.gitSha1.toLowerCase(), d.gitSha1 ?? '', 'git-sha1');
  }
  return undefined;
}

/** One range of the file. `written` = bytes from `start` that are on disk (write completed). */
export interface Chunk {
  index: number;
  start: number;
  end: number;
  written: number;
}

export function chunkLength(c: Chunk): number {
  return c.end - c.start;
}

export function makeChunks(size: number, chunkSize: number): Chunk[] {
  const out: Chunk[] = [];
  for (let start = 0, i = 0; start < size; start += chunkSize, i++) {
    out.push({ index: i, start, end: Math.min(size, start + chunkSize), written: 0 });
  }
  return out;
}

interface Held {
  off: number;
  len: number;
  bufs: Buffer[];
}

const READ_SIZE = 4 * 1024 * 1024;

export class OrderedHasher {
  private head = 0;
  /** Chunk index whose bytes may be hashed directly in onWritten (pump is idle on it). */
  private liveIndex = -1;
  private readonly hashed: number[];
  private readonly held = new Map<number, Held[]>();
  private wake: (() => void) | undefined;
  private stopped = false;
  private readBuf: Buffer | undefined;
  private readonly finished: Promise<void>;

  constructor(
    private readonly chunks: Chunk[],
    private readonly fh: FileHandle,
    private readonly content: ContentHasher,
    private readonly budget: MemoryBudget,
  ) {
    this.hashed = chunks.map(() => 0);
    this.finished = this.run().finally(() => this.releaseAll());
    this.finished.catch(() => undefined); // observed through done()
  }

  /** Resolves when every byte has been hashed in order. */
  done(): Promise<void> {
    return this.finished;
  }

  /** Bytes hashed so far (a contiguous prefix of the file). */
  get hashedPrefix(): number {
    const c = this.chunks[this.head];
    return c ? c.start + (this.hashed[this.head] ?? 0) : this.chunks.at(-1)?.end ?? 0;
  }

  stop(): void {
    this.stopped = true;
    this.kick();
  }

  /** Report bytes just written to disk at chunk-relative offset `off`. */
  onWritten(index: number, off: number, bufs: Buffer[]): void {
    const len = bufs.reduce((a, b) => a + b.length, 0);
    if (index === this.liveIndex && off === this.hashed[index]) {
      for (const b of bufs) this.content.update(b);
      this.hashed[index] = off + len;
      if (off + len === chunkLength(this.chunks[index] as Chunk)) this.kick();
      return;
    }
    if (index < this.head) return;
    if (this.budget.tryTake(len)) {
      const list = this.held.get(index) ?? [];
      list.push({ off, len, bufs: [...bufs] });
      this.held.set(index, list);
    }
    if (index === this.head) this.kick();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async run(): Promise<void> {
    while (this.head < this.chunks.length) {
      if (this.stopped) throw new Error('hashing stopped');
      const c = this.chunks[this.head] as Chunk;
      this.consumeHeld(c);
      const h = this.hashed[this.head] ?? 0;
      if (h === chunkLength(c)) {
        this.releaseChunk(this.head);
        this.head++;
        continue;
      }
      if (h < c.written) {
        await this.readFromDisk(c, h);
        continue;
      }
      // Caught up with the writer of the head chunk: hash its next bytes as they land.
      this.liveIndex = this.head;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.liveIndex = -1;
    }
  }

  /** Hash held buffers that continue exactly where the hash stands; drop those already covered. */
  private consumeHeld(c: Chunk): void {
    const list = this.held.get(c.index);
    if (!list) return;
    let h = this.hashed[c.index] ?? 0;
    while (list.length > 0) {
      const first = list[0] as Held;
      if (first.off > h) break;
      list.shift();
      this.budget.release(first.len);
      if (first.off + first.len <= h) continue;
      let skip = h - first.off;
      for (const b of first.bufs) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        this.content.update(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      h = first.off + first.len;
    }
    this.hashed[c.index] = h;
  }

  private async readFromDisk(c: Chunk, h: number): Promise<void> {
    const next = this.held.get(c.index)?.[0];
    const limit = Math.min(c.written, next && next.off > h ? next.off : c.written);
    const n = Math.min(limit - h, READ_SIZE);
    this.readBuf ??= Buffer.allocUnsafe(READ_SIZE);
    const { bytesRead } = await this.fh.read(this.readBuf, 0, n, c.start + h);
    if (bytesRead !== n) throw new Error(`short read while hashing at ${c.start + h}`);
    // Only the pump advances `hashed` while it is not live, so `h` is still current here.
    this.content.update(this.readBuf.subarray(0, n));
    this.hashed[c.index] = h + n;
  }

  private releaseChunk(index: number): void {
    for (const x of this.held.get(index) ?? []) this.budget.release(x.len);
    this.held.delete(index);
  }

  private releaseAll(): void {
    for (const index of [...this.held.keys()]) this.releaseChunk(index);
    this.readBuf = undefined;
  }
}
