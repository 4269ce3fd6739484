// Leases in the bucket: which replica fills a blob right now, so that a cluster fetches each blob from
// upstream once. The protocol uses only conditional PUTs, which S3, Ceph RGW and R2 do atomically:
//
//   acquire   PUT leases/.../<blob>.json with If-None-Match: *      412/409 = someone holds it
//   renew     PUT with If-Match: <our ETag> and a later expiresAt    412 = it was taken over: we lost it
//   take over PUT with If-Match: <ETag of an expired lease>          412 = another replica was faster
//   release   renew (proves we still hold it, and nobody can take it over for a TTL), then DELETE
//
// ETags go out unquoted: Ceph RGW 16 matches If-Match only without the quotes (quoted = always 412),
// and AWS S3 compares the value either way. DELETE is not conditional because RGW 16 ignores If-Match
// on DELETE. Each record carries a random token, so a write whose answer was lost (and that the SDK
// retried into a 412) is recognised as ours on reading it back (S3Objects.putBytes). Expiry is the
// holder's clock plus a skew allowance; replicas need roughly synchronised clocks (NTP).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Objects } from './s3-client.js';
import { leaseKey, probeKey } from './s3-layout.js';
import {
  ConditionalWritesUnsupportedError,
  LeaseLostError,
  StoreError,
  StoreUnavailableError,
} from './store-errors.js';

/** The JSON body of a lease object. */
export interface LeaseRecord {
  v: 1;
  /** Replica id of the holder. */
  holder: string;
  /** Where peers reach the holder to stream the blob while it fills (authenticated between replicas). */
  address: string;
  token: string;
  acquiredAt: string;
  renewedAt: string;
  expiresAt: string;
  ttlMs: number;
}

export interface LeaseOptions {
  holder: string;
  address: string;
  /** How long a lease lives without renewal. Default 30 s. */
  ttlMs?: number;
  /** A lease counts as expired only this long after its expiresAt (clock differences). Default 1 s. */
  clockSkewMs?: number;
  /** For tests: the time source. */
  now?: () => number;
}

export type AcquireResult =
  { acquired: true; lease: Lease; takeover: boolean } | { acquired: false; current: LeaseRecord; etag: string };

function parseRecord(body: Buffer, key: string): LeaseRecord {
  let r: Partial<LeaseRecord>;
  try {
    r = JSON.parse(body.toString('utf8')) as Partial<LeaseRecord>;
  } catch (err) {
    throw new StoreError(`lease ${key} is not JSON`, undefined, undefined, { cause: err });
  }
  if (typeof r.holder !== 'string' || typeof r.expiresAt !== 'string' || Number.isNaN(Date.parse(r.expiresAt))) {
    throw new StoreError(`lease ${key} has no holder or expiry`);
  }
  return r as LeaseRecord;
}

export class S3Leases {
  readonly ttlMs: number;
  private readonly skewMs: number;
  readonly now: () => number;

  constructor(
    readonly objects: S3Objects,
    readonly opts: LeaseOptions,
  ) {
    this.ttlMs = opts.ttlMs ?? 30_000;
    this.skewMs = opts.clockSkewMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** A record for a new acquisition, or the renewal of `prev`. */
  record(prev?: LeaseRecord): LeaseRecord {
    const now = this.now();
    return {
      v: 1,
      holder: this.opts.holder,
      address: this.opts.address,
      token: prev?.token ?? randomUUID(),
      acquiredAt: prev?.acquiredAt ?? new Date(now).toISOString(),
      renewedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.ttlMs).toISOString(),
      ttlMs: this.ttlMs,
    };
  }

  isExpired(r: LeaseRecord): boolean {
    return Date.parse(r.expiresAt) + this.skewMs <= this.now();
  }

  /** Resolves once `record` counts as expired here (a replica waiting to take over a dead holder's lease). */
  async waitUntilExpired(record: LeaseRecord): Promise<void> {
    while (!this.isExpired(record)) {
      await sleep(Math.max(5, Date.parse(record.expiresAt) + this.skewMs - this.now() + 5));
    }
  }

  async read(name: string): Promise<{ record: LeaseRecord; etag: string } | undefined> {
    const key = leaseKey(name);
    const r = await this.objects.getBytes(key);
    return r && { record: parseRecord(r.body, key), etag: r.etag };
  }

  /** @internal Conditional PUT of `record`: the lease as it is now when the condition fails. */
  async write(
    name: string,
    record: LeaseRecord,
    cond: { ifNoneMatch?: '*'; ifMatch?: string },
  ): Promise<{ etag: string } | { current?: { record: LeaseRecord; etag: string } }> {
    const key = leaseKey(name);
    const r = await this.objects.putBytes(key, JSON.stringify(record), { ...cond, contentType: 'application/json' });
    if (r.ok) return { etag: r.etag };
    return r.current ? { current: { record: parseRecord(r.current.body, key), etag: r.current.etag } } : {};
  }

  /**
   * Takes the lease for blob `name`: creates it, or takes over an expired one. When another replica
   * holds a live lease, answers who (its record names the address to stream from).
   */
  async acquire(name: string): Promise<AcquireResult> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const mine = this.record();
      const created = await this.write(name, mine, { ifNoneMatch: '*' });
      if ('etag' in created) {
        return { acquired: true, lease: new Lease(this, name, mine, created.etag), takeover: false };
      }
      const { current } = created;
      if (!current) continue; // released between our PUT and GET: try to create again
      if (!this.isExpired(current.record)) return { acquired: false, current: current.record, etag: current.etag };
      const lease = await this.takeOver(name, current.etag);
      if (lease) return { acquired: true, lease, takeover: true };
      // Another replica took it over first; look again.
    }
    throw new StoreUnavailableError(`lease ${leaseKey(name)} keeps changing under us (${this.objects.where})`);
  }

  /** Replaces the lease version `etag` (an expired one) with ours; undefined if it is no longer that version. */
  async takeOver(name: string, etag: string): Promise<Lease | undefined> {
    const mine = this.record();
    const r = await this.write(name, mine, { ifMatch: etag });
    return 'etag' in r ? new Lease(this, name, mine, r.etag) : undefined;
  }

  /** Every lease in the bucket (live or expired): the replicas seen and the fills in progress. */
  async *list(): AsyncGenerator<{ name: string; record: LeaseRecord; expired: boolean }> {
    for await (const o of this.objects.list('leases/')) {
      const m = /^leases\/(?:sha256|sha1)\/([0-9a-f]+)\.json$/.exec(o.key);
      if (!m) continue;
      const r = await this.read(m[1]!).catch((err: unknown) => {
        if (err instanceof StoreUnavailableError) throw err;
        return undefined; // a malformed lease is skipped in the listing
      });
      if (r) yield { name: m[1]!, record: r.record, expired: this.isExpired(r.record) };
    }
  }
}

export class Lease {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly leases: S3Leases,
    readonly name: string,
    public record: LeaseRecord,
    /** ETag of our current version of the lease (unquoted). */
    public etag: string,
  ) {}

  /** Pushes the expiry one TTL further. LeaseLostError when another replica took it over. */
  async renew(): Promise<void> {
    const next = this.leases.record(this.record);
    const r = await this.leases.write(this.name, next, { ifMatch: this.etag });
    if (!('etag' in r)) {
      // No more beats; a running heartbeat still reports the loss to its onLost.
      if (this.timer) clearTimeout(this.timer);
      throw new LeaseLostError(`lease ${leaseKey(this.name)} was taken over by another replica`);
    }
    this.record = next;
    this.etag = r.etag;
  }

  /**
   * Renews every `intervalMs` (default a third of the TTL) until stopped. `onLost` runs once when the
   * lease was taken over, or could not be renewed (store down) before it expired.
   */
  startHeartbeat(onLost: (err: Error) => void, intervalMs = Math.max(50, Math.floor(this.leases.ttlMs / 3))): void {
    this.stopHeartbeat();
    this.stopped = false;
    const beat = async (): Promise<void> => {
      try {
        await this.renew();
      } catch (err) {
        if (this.stopped) return;
        const expired = Date.parse(this.record.expiresAt) <= this.leases.now();
        if (err instanceof LeaseLostError || expired) {
          this.stopHeartbeat();
          onLost(
            err instanceof LeaseLostError
              ? err
              : new LeaseLostError(
                  `lease ${leaseKey(this.name)} expired: ${(err as Error).message}`,
                  undefined,
                  undefined,
                  { cause: err },
                ),
          );
          return;
        }
      }
      if (!this.stopped) this.timer = setTimeout(() => void beat(), intervalMs);
    };
    this.timer = setTimeout(() => void beat(), intervalMs);
  }

  stopHeartbeat(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Gives the lease up. False when it was no longer ours (taken over after it expired): nothing deleted. */
  async release(): Promise<boolean> {
    this.stopHeartbeat();
    try {
      await this.renew();
    } catch (err) {
      if (err instanceof LeaseLostError) return false;
      throw err;
    }
    await this.leases.objects.delete(leaseKey(this.name));
    return true;
  }
}

/**
 * Startup probe: two concurrent create-only PUTs of one key must give exactly one winner, and If-Match
 * must refuse a stale ETag and accept the current one (unquoted). Throws ConditionalWritesUnsupportedError
 * when the store cannot coordinate a cluster, StoreUnavailableError when it cannot be reached.
 */
export async function probeConditionalWrites(objects: S3Objects): Promise<void> {
  const key = probeKey(randomUUID());
  const refuse = (what: string): never => {
    throw new ConditionalWritesUnsupportedError(
      `object store ${objects.where} does not do conditional writes: ${what}`,
      undefined,
      undefined,
      {
        hint: 'Cluster mode needs atomic If-None-Match / If-Match on PutObject (AWS S3, Ceph RGW, R2 have them).',
      },
    );
  };
  try {
    const results = await Promise.all(['a', 'b'].map((body) => objects.putBytes(key, body, { ifNoneMatch: '*' })));
    const wins = results.filter((r) => r.ok).length;
    if (wins === 2) refuse('both of two concurrent create-only PUTs (If-None-Match: *) of one key succeeded');
    if (wins === 0) refuse('neither of two concurrent create-only PUTs (If-None-Match: *) of one key succeeded');
    const current = await objects.getBytes(key);
    if (!current) refuse('the object created by the probe cannot be read back');
    const stale = await objects.putBytes(key, 'c', { ifMatch: '0123456789abcdef0123456789abcdef' });
    if (stale.ok) refuse('a PUT with If-Match of a wrong ETag succeeded');
    const fresh = await objects.putBytes(key, 'd', { ifMatch: current!.etag });
    if (!fresh.ok) refuse('a PUT with If-Match of the current ETag was refused');
  } finally {
    await objects.delete(key).catch(() => undefined);
  }
}
