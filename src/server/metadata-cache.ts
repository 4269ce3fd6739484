// In-memory cache of upstream metadata answers (docs/protocols.md §Mirror caching): entries live for the TTL
// their loader gives (forever for anything addressed by a full commit, --metadata-ttl for branch
// and tag names, a short time for negative answers). One load per key is in flight; callers that
// arrive meanwhile wait for it. When a load fails because upstream is down, the last entry is
// served however old (stale-if-error), flagged `stale`.
import { UpstreamDownError } from './upstream.js';

export interface Loaded<T> {
  value: T;
  /** How long the value may be reused without asking upstream; Infinity = immutable. */
  ttlMs: number;
  /** An old answer the loader fell back to because upstream is down (e.g. from the shared store). */
  stale?: boolean;
}

export interface Lookup<T> {
  value: T;
  /** Served past its TTL because upstream failed. */
  stale: boolean;
  /** No upstream call was made for this lookup. */
  hit: boolean;
}

interface Entry<T> {
  value: T;
  expiresAt: number;
  bytes: number;
}

/** Rough memory of a value: a body's length, else a small constant. */
function sizeOf(v: unknown): number {
  const body = (v as { body?: unknown } | null)?.body;
  return 200 + (Buffer.isBuffer(body) ? body.length : 0);
}

export class MetadataCache {
  private readonly entries = new Map<string, Entry<unknown>>();
  private readonly inflight = new Map<string, Promise<Loaded<unknown>>>();
  private bytes = 0;

  /** Bounded by entries and by bytes (tree pages of big repos are large): least recently written go first. */
  constructor(
    private readonly maxEntries = 50_000,
    private readonly maxBytes = 256 * 1024 * 1024,
  ) {}

  /** The fresh entry, else one load (shared by concurrent callers), else the stale entry if upstream is down. */
  async get<T>(key: string, load: () => Promise<Loaded<T>>): Promise<Lookup<T>> {
    const e = this.entries.get(key) as Entry<T> | undefined;
    if (e && e.expiresAt > Date.now()) return { value: e.value, stale: false, hit: true };
    let p = this.inflight.get(key) as Promise<Loaded<T>> | undefined;
    if (!p) {
      p = load().then((l) => {
        this.set(key, l.value, l.ttlMs);
        return l;
      });
      const tracked = p.finally(() => this.inflight.delete(key));
      tracked.catch(() => undefined);
      this.inflight.set(key, p);
    }
    try {
      const l = await p;
      return { value: l.value, stale: l.stale === true, hit: false };
    } catch (err) {
      const last = this.entries.get(key) as Entry<T> | undefined;
      if (last && err instanceof UpstreamDownError) return { value: last.value, stale: true, hit: false };
      throw err;
    }
  }

  /** The entry if present, fresh or not (no load). */
  peek<T>(key: string): { value: T; fresh: boolean } | undefined {
    const e = this.entries.get(key) as Entry<T> | undefined;
    return e ? { value: e.value, fresh: e.expiresAt > Date.now() } : undefined;
  }

  set<T>(key: string, value: T, ttlMs: number): void {
    this.remove(key); // re-insert: Map order is then least recently written first
    const bytes = sizeOf(value);
    this.entries.set(key, { value, expiresAt: Date.now() + ttlMs, bytes });
    this.bytes += bytes;
    while (this.entries.size > this.maxEntries || (this.bytes > this.maxBytes && this.entries.size > 1)) {
      this.remove(this.entries.keys().next().value as string);
    }
  }

  /** Forgets every entry whose key starts with `prefix`. */
  invalidate(prefix: string): void {
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.remove(k);
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.bytes -= e.bytes;
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
