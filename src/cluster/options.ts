// What cluster mode (`hubcache serve --store s3://...`) is configured with. Types only (ServeOptions uses it).

export interface ClusterOptions {
  /** `s3://BUCKET/PREFIX`: the shared store of every replica (the source of truth). */
  store: string;
  /** S3 endpoint (`--s3-endpoint`); else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS S3. */
  endpoint?: string;
  /** Shared by the replicas: signs the requests between them. */
  secret: string;
  /** Where the other replicas reach this one; default the listen address. */
  advertiseUrl?: string;
  /** Lease time to live without a heartbeat (default 30 s; tests use less). */
  leaseTtlMs?: number;
  /** AWS_* variables (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The shortest --cluster-secret accepted (it is an HMAC key). */
export const MIN_CLUSTER_SECRET_LENGTH = 16;
