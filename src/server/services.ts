// The services every route module gets (built once in app.ts). Types only: route modules import
// this, never app.ts, so there is no import cycle.
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { Cache } from '../cache.js';
import type { ClusterServices } from '../cluster/services.js';
import type { HfDownloadContext } from '../download/hf.js';
import type { LocalBlobStore } from '../stores/blob-store.js';
import type { AccessControl, Caller } from './access.js';
import type { MirrorEventBus } from './events.js';
import type { FillManager } from './fills.js';
import type { HotBlobs } from './hot-blobs.js';
import type { MetadataCache } from './metadata-cache.js';
import type { ServeOptions } from './options.js';
import type { StatusBook } from './status.js';
import type { UpstreamPool } from './upstream.js';

/** What a route module gets: everything stateful of the mirror lives here, once. */
export interface MirrorServices {
  options: Readonly<ServeOptions>;
  /** The hubcache cache the store is (transfer engine, gc, scan). */
  cache: Cache;
  /** Verified blobs (read side of the store). */
  store: LocalBlobStore;
  /** Hot warm blobs in memory (see hot-blobs.ts). */
  hot: HotBlobs;
  fills: FillManager;
  meta: MetadataCache;
  access: AccessControl;
  upstreams: UpstreamPool;
  /** The ModelScope upstream (`--modelscope-upstream`), for the ModelScope face. */
  msUpstreams: UpstreamPool;
  events: MirrorEventBus;
  /** State for mirrorStatus() (status.ts) kept from events. */
  statusBook: StatusBook;
  log: FastifyBaseLogger;
  /** The caller's credentials as parsed by the access layer (set for every request). */
  callerOf: (req: FastifyRequest) => Caller;
  /** The origin clients reach the mirror at, for URLs handed out (Location, Link). */
  originOf: (req: FastifyRequest) => string;
  /** Download-layer context for a blob fill from `endpoint` with `token`. */
  hfContext: (endpoint: string, token: string | undefined) => HfDownloadContext;
  /** Cluster mode (`--store s3://...`): the shared store, leases, peers. */
  cluster?: ClusterServices;
}

/** A face or feature: registers its routes on the app. Static routes win over the faces' wildcards. */
export type RouteModule = (app: FastifyInstance, s: MirrorServices) => void;
