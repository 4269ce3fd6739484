// Warm blobs that are asked for again and again, kept in memory: answering from a Buffer is one
// socket write per response instead of a read stream (1 MiB reads, a tick each), about twice the
// requests per second on a 5 MiB file. Blobs are immutable (named by their hash), so an entry is
// valid as long as the file's size and mtime match; LRU by bytes, within a fixed budget.
import { promises as fsp } from 'node:fs';

interface Entry {
  buf: Buffer;
  size: number;
  mtimeMs: number;
}

export class HotBlobs {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Buffer | undefined>>();
  /** Files asked for once: loaded on the second request, so one-off downloads do not churn the cache. */
  private readonly seen = new Map<string, number>();
  private bytes = 0;

  constructor(
    private readonly budget: number,
    private readonly maxFile = Math.min(budget / 4, 64 * 1024 * 1024),
  ) {}

  /** The blob's bytes if cached (or worth caching now), else undefined: the caller streams the file. */
  async get(file: string, size: number, mtimeMs: number): Promise<Buffer | undefined> {
    if (this.budget <= 0 || size > this.maxFile || size === 0) return undefined;
    const e = this.entries.get(file);
    if (e && e.size === size && e.mtimeMs === mtimeMs) {
      this.entries.delete(file); // most recently used last
      this.entries.set(file, e);
      return e.buf;
    }
    if ((this.seen.get(file) ?? 0) < 1) {
      this.seen.set(file, 1);
      if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value as string);
      return undefined;
    }
    let p = this.loading.get(file);
    if (!p) {
      p = this.load(file, size, mtimeMs).finally(() => this.loading.delete(file));
      this.loading.set(file, p);
    }
    return p;
  }

  private async load(file: string, size: number, mtimeMs: number): Promise<Buffer | undefined> {
    const buf = await fsp.readFile(file).catch(() => undefined);
    if (!buf || buf.length !== size) return undefined;
    const old = this.entries.get(file);
    if (old) this.bytes -= old.size;
    this.entries.set(file, { buf, size, mtimeMs });
    this.bytes += size;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.budget) break;
      this.entries.delete(k);
      this.bytes -= v.size;
    }
    return buf;
  }
}
