// One upstream fetch per blob per cluster. A replica that misses a blob locally fills its local cache
// (through the transfer engine: ranges, resume, hash check before commit) from, in this order:
//   1. S3, when the blob is there (no upstream request);
//   2. upstream, when it wins the blob's lease (or takes over an expired one), then uploads the
//      verified blob to S3 and releases the lease;
//   3. the lease holder, streamed while the holder fills (GET /_hubcache/peer/blobs/<key>, signed).
// A holder that goes away mid-stream leaves our partial file behind: the next source (S3, the new
// holder, or upstream after a takeover) resumes from it, so a takeover refetches only the rest.
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from '../errors.js';
import { blobKey } from '../stores/s3-layout.js';
import type { Lease, LeaseRecord } from '../stores/s3-lease.js';
import { StoreUnavailableError } from '../stores/store-errors.js';
import type { DownloadSource } from '../transfer/types.js';
import { PEER_HEADER, signPeerRequest } from './peer-auth.js';
import type { ClusterServices } from './services.js';

/** Fills the local cache from `source` (undefined = the hub); resolves with the committed blob's path. */
export type EnsureFrom = (source?: () => Promise<DownloadSource>, signal?: AbortSignal) => Promise<string>;

export interface ClusterFillRequest {
  /** The blob key: sha256 (LFS) or git blob sha1. */
  key: string;
  size: number;
  /** `model/org/name`: lets the holder find its running fill. */
  repoKey: string;
  ensure: EnsureFrom;
  signal: AbortSignal;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export type FillSource = 's3' | 'upstream' | 'takeover' | 'peer';

/** How often a replica waiting for a silent holder's lease to expire looks at it again. */
const LEASE_POLL_MS = 250;
/** Rounds of "look in S3, try the lease, stream from the holder" before giving up on a blob. */
const MAX_ROUNDS = 20;

export function peerBlobPath(key: string, repoKey: string): string {
  return `/_hubcache/peer/blobs/${key}?repo=${encodeURIComponent(repoKey)}`;
}

export async function clusterFill(c: ClusterServices, r: ClusterFillRequest): Promise<string> {
  let lastErr: Error | undefined;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (r.signal.aborted) throw new AbortedError();
    const st = await c.s3.stat({ etag: r.key });
    if (st && st.size === r.size) return fromS3(c, r);
    const acq = await c.leases.acquire(r.key);
    if (acq.acquired) return asHolder(c, r, acq.lease, acq.takeover);
    const holder = acq.current;
    if (holder.holder !== c.replicaId && holder.address) {
      const stop = new AbortController();
      const onAbort = (): void => stop.abort();
      r.signal.addEventListener('abort', onAbort, { once: true });
      const watching = watchHolder(c, r.key, holder.holder, stop.signal).then(() => stop.abort());
      try {
        const p = await r.ensure(peerSource(c, holder.address, r), stop.signal);
        c.noteLocal(r.key, p);
        c.counters.peerFills++;
        r.log.info({ cluster: { key: r.key, source: 'peer', holder: holder.holder } }, 'cluster fill');
        return p;
      } catch (err) {
        if (r.signal.aborted) throw err;
        lastErr = err as Error;
        r.log.warn({ cluster: { key: r.key, holder: holder.holder }, err }, 'cluster: streaming from holder failed');
      } finally {
        r.signal.removeEventListener('abort', onAbort);
        stop.abort();
        await watching;
      }
    }
    // The holder is gone or failed: its lease expires (or it changes hands, or is released) soon.
    await untilExpiredOrChanged(c, r, holder, acq.etag);
  }
  throw new StoreUnavailableError(
    `cluster: could not fill ${r.key} (${MAX_ROUNDS} rounds)${lastErr ? `: ${lastErr.message}` : ''}`,
  );
}

async function fromS3(c: ClusterServices, r: ClusterFillRequest): Promise<string> {
  const p = await r.ensure(() => s3Source(c, r.key));
  c.noteLocal(r.key, p);
  c.counters.s3Fills++;
  r.log.info({ cluster: { key: r.key, source: 's3' } }, 'cluster fill');
  return p;
}

/**
 * We hold the lease: fetch from upstream; once verified, our callers get the last bytes at once while the
 * blob uploads to S3 in the background, the lease held (peers stream from our local file) until S3 has it.
 */
async function asHolder(c: ClusterServices, r: ClusterFillRequest, lease: Lease, takeover: boolean): Promise<string> {
  lease.startHeartbeat((err) =>
    r.log.warn({ cluster: { key: r.key }, err }, 'cluster: lost the lease while filling (the fill goes on)'),
  );
  const started = Date.now();
  const release = (): Promise<void> =>
    lease.release().then(
      () => undefined,
      (err: unknown) => {
        lease.stopHeartbeat(); // it expires by itself
        r.log.warn({ cluster: { key: r.key }, err }, 'cluster: releasing the lease failed');
      },
    );
  let p: string;
  try {
    p = await r.ensure();
  } catch (err) {
    await release();
    throw err;
  }
  c.noteLocal(r.key, p);
  c.counters.upstreamFills++;
  if (takeover) c.counters.takeovers++;
  const source: FillSource = takeover ? 'takeover' : 'upstream';
  const fetchedMs = Date.now() - started;
  c.track(
    (async () => {
      try {
        // Content-addressed and verified by the engine: a sha256 key is its own hash.
        const up = await c.s3.put({ etag: r.key }, p, r.key.length === 64 ? { sha256: r.key } : {});
        if (up.stored) {
          c.counters.uploads++;
          c.counters.uploadedBytes += r.size;
        }
        r.log.info(
          {
            cluster: {
              key: r.key,
              source,
              uploaded: up.stored,
              size: r.size,
              ms: fetchedMs,
              uploadMs: Date.now() - started - fetchedMs,
            },
          },
          'cluster fill',
        );
      } catch (err) {
        // Nothing partial is visible (an upload appears only complete); the next replica that wants it
        // fetches it again.
        r.log.warn({ cluster: { key: r.key }, err }, 'cluster: uploading the blob to the store failed');
      } finally {
        await release();
      }
    })(),
  );
  return p;
}

/**
 * Resolves when `holder` stopped renewing the blob's lease (it expired) or the lease changed hands, so a
 * stream from a dead holder is given up at once rather than after the engine's retries; also when
 * `stop` aborts. A released lease (the holder finished) is no reason to stop.
 */
async function watchHolder(c: ClusterServices, key: string, holder: string, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    await sleep(LEASE_POLL_MS, undefined, { signal: stop }).catch(() => undefined);
    if (stop.aborted) return;
    const now = await c.leases.read(key).catch(() => undefined); // a store hiccup: look again
    if (now && (now.record.holder !== holder || c.leases.isExpired(now.record))) return;
  }
}

async function untilExpiredOrChanged(
  c: ClusterServices,
  r: ClusterFillRequest,
  seen: LeaseRecord,
  etag: string,
): Promise<void> {
  for (;;) {
    if (r.signal.aborted) throw new AbortedError();
    const now = await c.leases.read(r.key);
    if (!now || now.etag !== etag || c.leases.isExpired(now.record)) return;
    const left = Date.parse(seen.expiresAt) - c.leases.now();
    await sleep(Math.max(LEASE_POLL_MS, Math.min(left, 5 * LEASE_POLL_MS)));
  }
}

/** A presigned GET of the blob (fresh on every call: the engine asks again after a 403). */
async function s3Source(c: ClusterServices, key: string): Promise<DownloadSource> {
  const { client, config } = c.s3.objects;
  const cmd = new GetObjectCommand({ Bucket: config.bucket, Key: config.prefix + blobKey(key) });
  return { url: await getSignedUrl(client, cmd, { expiresIn: 3600 }), headers: {} };
}

/** The holder's peer endpoint, signed (re-signed when the engine asks again after a 403: expired). */
function peerSource(c: ClusterServices, address: string, r: ClusterFillRequest): () => Promise<DownloadSource> {
  const path = peerBlobPath(r.key, r.repoKey);
  return async () => ({
    url: address + path,
    headers: { [PEER_HEADER]: signPeerRequest(c.secret, c.replicaId, 'GET', path) },
  });
}
