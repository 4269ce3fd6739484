// Cluster mode's state, built once per replica (app.ts `services.cluster`): the shared S3 store, the
// leases that make one replica fetch a blob from upstream, this replica's id and the address peers
// reach it at. start() checks the store before the replica serves anything.
import { randomBytes } from 'node:crypto';
import { ExitCode, HubcacheError } from '../errors.js';
import { S3BlobStore } from '../stores/s3-blob-store.js';
import { probeConditionalWrites, S3Leases, type LeaseOptions } from '../stores/s3-lease.js';
import { ConditionalWritesUnsupportedError, StoreError } from '../stores/store-errors.js';
import type { ClusterOptions } from './options.js';

/** `serve --store` cannot start: the store is unreachable (exit 26) or cannot coordinate replicas (27). */
export class ClusterStartError extends HubcacheError {
  constructor(
    message: string,
    override readonly exitCode: (typeof ExitCode)['storeUnavailable' | 'storeUnsupported'],
    options?: { cause?: unknown; hint?: string },
  ) {
    super(message, options);
  }
}

/** What this replica did with the cluster (status page, metrics, tests). */
export interface ClusterCounters {
  /** Blobs this replica fetched from upstream while holding their lease. */
  upstreamFills: number;
  /** ... of them, taken over from a holder whose lease had expired. */
  takeovers: number;
  /** Blobs filled into the local cache from S3 (no upstream request). */
  s3Fills: number;
  /** Blobs filled into the local cache by streaming them from the lease holder. */
  peerFills: number;
  /** Peer requests this replica answered (as a holder, or from its local cache). */
  peerServed: number;
  /** Blobs this replica uploaded to S3. */
  uploads: number;
  uploadedBytes: number;
  /** Range requests answered from S3 directly (blob not local, not filling). */
  s3RangeReads: number;
}

export class ClusterServices {
  readonly replicaId: string;
  readonly s3: S3BlobStore;
  readonly leases: S3Leases;
  readonly secret: string;
  readonly counters: ClusterCounters = {
    upstreamFills: 0,
    takeovers: 0,
    s3Fills: 0,
    peerFills: 0,
    peerServed: 0,
    uploads: 0,
    uploadedBytes: 0,
    s3RangeReads: 0,
  };
  private readonly leaseOpts: LeaseOptions;
  /** Verified local files of blobs this replica filled, for peers (most recent last; bounded). */
  private readonly localFiles = new Map<string, string>();
  /** Uploads to S3 still running after their fill committed (awaited on close). */
  private readonly uploads = new Set<Promise<void>>();

  constructor(readonly options: ClusterOptions) {
    this.replicaId = `r-${randomBytes(6).toString('hex')}`;
    this.secret = options.secret;
    this.s3 = S3BlobStore.fromUrl(options.store, {
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    this.leaseOpts = {
      holder: this.replicaId,
      address: options.advertiseUrl ?? '',
      ...(options.leaseTtlMs ? { ttlMs: options.leaseTtlMs } : {}),
    };
    this.leases = new S3Leases(this.s3.objects, this.leaseOpts);
  }

  /** Where peers reach this replica (written into the leases it takes). */
  get address(): string {
    return this.leaseOpts.address;
  }

  /**
   * Before listening: the bucket answers and does conditional writes, else a ClusterStartError.
   * `probe` is replaceable for a test double of the store's answers.
   */
  async check(probe: (s: S3BlobStore) => Promise<void> = (s) => probeConditionalWrites(s.objects)): Promise<void> {
    try {
      await this.s3.check();
      await probe(this.s3);
    } catch (err) {
      if (err instanceof ConditionalWritesUnsupportedError) {
        throw new ClusterStartError(
          `cannot run a cluster on ${this.s3.where}: ${err.message}`,
          ExitCode.storeUnsupported,
          {
            cause: err,
            ...(err.hint ? { hint: err.hint } : {}),
          },
        );
      }
      if (err instanceof StoreError) {
        throw new ClusterStartError(`cluster mode cannot start: ${err.message}`, ExitCode.storeUnavailable, {
          cause: err,
          hint: err.hint ?? 'Check --store, --s3-endpoint and the AWS_* credentials, then start again.',
        });
      }
      throw err;
    }
  }

  /** After listening: the advertised address defaults to the listen address. */
  listening(url: string): void {
    if (!this.leaseOpts.address) this.leaseOpts.address = url;
  }

  noteLocal(key: string, file: string): void {
    this.localFiles.delete(key);
    this.localFiles.set(key, file);
    if (this.localFiles.size > 10_000) this.localFiles.delete(this.localFiles.keys().next().value!);
  }

  /** A local file said to hold blob `key` (the caller checks it still exists: gc may have removed it). */
  localFile(key: string): string | undefined {
    return this.localFiles.get(key);
  }

  /** Runs `upload` in the background (the fill's callers need not wait for S3); close() waits for it. */
  track(upload: Promise<void>): void {
    this.uploads.add(upload);
    void upload.finally(() => this.uploads.delete(upload));
  }

  /** Resolves once every background upload started so far has ended (ok or not). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.uploads]);
  }

  async close(): Promise<void> {
    await this.idle();
    this.s3.close();
  }
}
