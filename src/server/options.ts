// What `hubcache serve` is configured with (flags, HUBCACHE_SERVE_* variables, or a library caller).
import { HF_DEFAULT_ENDPOINT, MS_DEFAULT_ENDPOINT } from '../config.js';
import type { ClusterOptions } from '../cluster/options.js';
import type { TransferOptions } from '../transfer/types.js';

export interface ServeOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** The store: a hubcache cache (HF layout; the ModelScope layout beside it). */
  cacheDir: string;
  /** HF upstreams: first = primary, others = fallbacks in order. */
  upstreams: string[];
  modelscopeUpstream: string;
  /** How long a branch/tag → commit answer (and other name-addressed metadata) is reused. */
  metadataTtlMs: number;
  /** How long a negative answer (404, 401) is reused. */
  negativeTtlMs: number;
  /** How long a learned visibility or a per-token access decision is trusted. */
  accessTtlMs: number;
  /** LRU cap on the store, enforced by the gc after fills. */
  maxSizeBytes?: number;
  /** Serve the store only; never call upstream. */
  offline: boolean;
  /** The mirror's own token, sent only for repos known to be public. */
  upstreamToken?: string;
  apiKeys?: string[];
  allow: string[];
  deny: string[];
  /** Origin clients reach the mirror at, for Location/Link URLs; default: from each request's Host. */
  publicUrl?: string;
  /** On SIGTERM: how long open streams may finish before they are cut. */
  drainMs: number;
  /** Timeout of one upstream metadata exchange. */
  upstreamTimeoutMs: number;
  logLevel: string;
  /** Memory for hot warm blobs answered from RAM (hot-blobs.ts); 0 = always stream from disk. */
  hotCacheBytes: number;
  transfer?: Partial<TransferOptions>;
  /** Cluster mode: replicas share one S3 bucket; `cacheDir` is then this replica's read-through cache. */
  cluster?: ClusterOptions;
}

export const DEFAULT_SERVE_OPTIONS: Readonly<Omit<ServeOptions, 'cacheDir'>> = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  upstreams: [HF_DEFAULT_ENDPOINT],
  modelscopeUpstream: MS_DEFAULT_ENDPOINT,
  metadataTtlMs: 60_000,
  negativeTtlMs: 10_000,
  accessTtlMs: 300_000,
  offline: false,
  allow: [],
  deny: [],
  drainMs: 10_000,
  upstreamTimeoutMs: 15_000,
  logLevel: 'info',
  hotCacheBytes: 256 * 1024 * 1024,
});

/** huggingface_hub refuses plain-HTTP downloads above this (constants.MAX_HTTP_DOWNLOAD_SIZE). */
export const MAX_HTTP_DOWNLOAD_SIZE = 50_000_000_000;
