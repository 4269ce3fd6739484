// GET /metrics: Prometheus exposition (prom-client), fed by the typed events (events.ts) and, at
// scrape time, by the live state (fills in progress, waiters, store size). One registry per
// mirror, so several mirrors in one process (tests) do not share counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sharedMetadataOf } from '../cluster/metadata.js';
import { clusterStatus } from './cluster-view.js';
import { BLOB_ROUTES, storeView, trafficOf } from './overview.js';
import type { RouteModule } from './services.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const metricsRoutes: RouteModule = (app, s) => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hubcache_process_' });
  const traffic = trafficOf(s);
  const m = {
    requests: new Counter({
      name: 'hubcache_requests_total',
      help: 'Responses by route label and HTTP status',
      labelNames: ['route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'hubcache_request_duration_seconds',
      help: 'Time to the end of the response, by route',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    served: new Counter({
      name: 'hubcache_served_bytes_total',
      help: 'Body bytes sent to clients, by source (store, fill, upstream metadata)',
      labelNames: ['source'],
      registers: [registry],
    }),
    fetched: new Counter({
      name: 'hubcache_upstream_fetched_bytes_total',
      help: 'Blob bytes fetched from upstream by completed fills',
      registers: [registry],
    }),
    blob: new Counter({
      name: 'hubcache_blob_requests_total',
      help: 'Blob GETs answered from the store (hit) or a fill (miss)',
      labelNames: ['result'],
      registers: [registry],
    }),
    joins: new Counter({
      name: 'hubcache_singleflight_joins_total',
      help: 'Callers that joined a fill already running (single-flight hits)',
      registers: [registry],
    }),
    fills: new Counter({
      name: 'hubcache_fills_total',
      help: 'Finished blob fills',
      labelNames: ['result'],
      registers: [registry],
    }),
    upstreamRequests: new Counter({
      name: 'hubcache_upstream_requests_total',
      help: 'Upstream metadata exchanges, by upstream, operation and status',
      labelNames: ['upstream', 'op', 'status'],
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: 'hubcache_upstream_errors_total',
      help: 'Upstream exchanges that failed (network, timeout, 5xx, 429)',
      labelNames: ['upstream'],
      registers: [registry],
    }),
    upstreamLatency: new Histogram({
      name: 'hubcache_upstream_latency_seconds',
      help: 'Upstream metadata exchange time',
      labelNames: ['upstream'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    largeFiles: new Counter({
      name: 'hubcache_large_files_total',
      help: 'Files over 50 GB seen (huggingface_hub will not fetch them over plain HTTP)',
      registers: [registry],
    }),
  };
  new Gauge({
    name: 'hubcache_hit_ratio',
    help: 'Share of blob GETs answered from the store since start (NaN before the first)',
    registers: [registry],
    collect() {
      this.set(traffic.hitRatio ?? Number.NaN);
    },
  });
  new Gauge({
    name: 'hubcache_fills_in_progress',
    help: 'Blob fills running now',
    registers: [registry],
    collect() {
      this.set(s.fills.active().length);
    },
  });
  new Gauge({
    name: 'hubcache_singleflight_waiters',
    help: 'Client streams reading from running fills now',
    registers: [registry],
    collect() {
      this.set(s.fills.active().reduce((n, f) => n + f.waiters, 0));
    },
  });
  new Gauge({
    name: 'hubcache_store_size_bytes',
    help: 'Bytes in the store (a cache scan, at most a few seconds old)',
    registers: [registry],
    async collect() {
      try {
        this.set((await storeView(s)).usedBytes);
      } catch {
        /* unreadable store: the gauge keeps its last value */
      }
    },
  });
  if (s.cluster) {
    const view = async () => {
      try {
        return await clusterStatus(s);
      } catch {
        return undefined; // the gauges keep their last values
      }
    };
    new Gauge({
      name: 'hubcache_cluster_replicas',
      help: 'Replicas whose heartbeat is recent (cluster mode)',
      registers: [registry],
      async collect() {
        const c = await view();
        if (c) this.set(c.replicas.filter((r) => r.alive).length);
      },
    });
    new Gauge({
      name: 'hubcache_cluster_fills_in_progress',
      help: 'Blob fills running now, per replica (from the heartbeats)',
      labelNames: ['replica'],
      registers: [registry],
      async collect() {
        const c = await view();
        if (!c) return;
        this.reset();
        for (const r of c.replicas) this.set({ replica: r.id }, r.fills.length);
      },
    });
    new Gauge({
      name: 'hubcache_cluster_upstream_bytes_saved',
      help: 'Blob bytes the replicas served minus the blob bytes they fetched from upstream',
      registers: [registry],
      async collect() {
        const c = await view();
        if (c) this.set(c.upstreamBytesSaved);
      },
    });
    const shared = sharedMetadataOf(s.cluster.s3, s.log).counters;
    new Gauge({
      name: 'hubcache_shared_metadata_total',
      help: 'Metadata lookups and writes through the bucket by this replica (hit = no upstream request)',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.set({ result: 'hit' }, shared.hits);
        this.set({ result: 'miss' }, shared.misses);
        this.set({ result: 'write' }, shared.writes);
        this.set({ result: 'write_error' }, shared.writeErrors);
        this.set({ result: 'read_error' }, shared.readErrors);
      },
    });
  }
  if (s.options.maxSizeBytes !== undefined) {
    new Gauge({ name: 'hubcache_store_max_bytes', help: 'The --max-size cap', registers: [registry] }).set(
      s.options.maxSizeBytes,
    );
  }

  s.events.on('request', (e) => {
    m.requests.inc({ route: e.route, status: String(e.status) });
    m.duration.observe({ route: e.route }, e.ms / 1000);
    if (e.bytes > 0) m.served.inc({ source: e.source }, e.bytes);
    if (BLOB_ROUTES.has(e.route) && e.method === 'GET' && e.status < 400) {
      if (e.source === 'store') m.blob.inc({ result: 'hit' });
      else if (e.source === 'fill') m.blob.inc({ result: 'miss' });
    }
  });
  s.events.on('fill-join', () => m.joins.inc());
  s.events.on('fill-end', (e) => {
    m.fills.inc({ result: e.ok ? 'ok' : 'failed' });
    if (e.ok) m.fetched.inc(e.bytes);
  });
  s.events.on('upstream', (e) => {
    m.upstreamRequests.inc({
      upstream: e.upstream,
      op: e.op,
      status: e.status === undefined ? 'error' : String(e.status),
    });
    m.upstreamLatency.observe({ upstream: e.upstream }, e.ms / 1000);
    if (e.error !== undefined || (e.status !== undefined && (e.status >= 500 || e.status === 429)))
      m.upstreamErrors.inc({ upstream: e.upstream });
  });
  s.events.on('large-file', () => m.largeFiles.inc());

  app.get('/metrics', async (req, reply) => {
    req.hubcache.route = 'metrics';
    const text = await registry.metrics();
    req.hubcache.bytes += Buffer.byteLength(text);
    return reply.header('content-type', registry.contentType).send(text);
  });
};
