// The mirror server: a fastify app with the services every route gets (see README.md here), the
// faces (route modules) registered on it, the per-request event, gc after fills, and drain.
import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from 'fastify';
import path from 'node:path';
import { Cache } from '../cache.js';
import { PEER_PREFIX, peerRoutes } from '../cluster/peer-route.js';
import { ClusterServices } from '../cluster/services.js';
import { HfClient } from '../hubs/hf.js';
import { LocalBlobStore } from '../stores/blob-store.js';
import { AccessControl, type Caller } from './access.js';
import { MirrorEventBus } from './events.js';
import { FillManager } from './fills.js';
import { FEATURE_ROUTES } from './features.js';
import { HotBlobs } from './hot-blobs.js';
import { registerHfFace } from './hf-face.js';
import { MetadataCache } from './metadata-cache.js';
import type { ServeOptions } from './options.js';
import { sendError } from './reply.js';
import { StatusBook } from './status.js';
import type { MirrorServices, RouteModule } from './services.js';
import { UpstreamPool } from './upstream.js';

export type { MirrorServices, RouteModule } from './services.js';

export interface MirrorOptions {
  /** Extra route modules (metrics, dashboard, ModelScope face...), registered after the built-in ones. */
  routes?: RouteModule[];
  /** Where JSON log lines go (default stdout); `false` silences logs. */
  logStream?: { write(line: string): unknown } | false;
  /** Cluster mode: replaces the startup conditional-write probe (a test double of the store's answers). */
  clusterProbe?: Parameters<ClusterServices['check']>[0];
}

export interface Mirror {
  app: FastifyInstance;
  services: MirrorServices;
  /** Starts listening; resolves with `http://host:port`. */
  listen(): Promise<string>;
  /** Stops accepting, lets open responses finish for up to `drainMs`, then cuts them. */
  close(drainMs?: number): Promise<void>;
}

const callers = new WeakMap<FastifyRequest, Caller>();

export function createMirror(options: ServeOptions, mo: MirrorOptions = {}): Mirror {
  const cacheDir = path.resolve(options.cacheDir);
  // The store as a hubcache Cache whose own downloads (e.g. a prefetch) go to the primary upstream
  // with the mirror's token: public repos only, like every request the mirror makes on its own.
  const cache = Cache.at(cacheDir, {
    offline: options.offline,
    hfEndpoint: options.upstreams[0],
    modelscopeEndpoint: options.modelscopeUpstream,
    ...(options.upstreamToken ? { hfToken: options.upstreamToken } : {}),
    ...(options.transfer ? { transfer: options.transfer } : {}),
  });
  const logger =
    mo.logStream === false
      ? false
      : {
          level: options.logLevel,
          // Tokens never reach a log line (the default serializers omit headers; this is the belt).
          redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-hubcache-key"]'],
          ...(mo.logStream ? { stream: mo.logStream } : {}),
        };
  let nextId = 1;
  const app = Fastify({
    logger,
    // One line per request is ours (onRequest hook below), with route and bytes.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    // Revisions and paths carry %2F; routes parse the raw URL themselves.
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 4096 },
    bodyLimit: 4 * 1024 * 1024,
    genReqId: () => `r${(nextId++).toString(36)}`,
    return503OnClosing: true,
  });
  // Bodies reach routes as raw strings: faces forward them upstream byte for byte (paths-info is
  // form-encoded by huggingface_hub, JSON by @huggingface/hub); a route that wants JSON parses it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  const events = new MirrorEventBus();
  const access = new AccessControl({
    apiKeys: options.apiKeys,
    allow: options.allow,
    deny: options.deny,
    ttlMs: options.accessTtlMs,
    restrictedFile: path.join(cacheDir, '.locks', 'hubcache', 'mirror-restricted.json'),
  });
  const services: MirrorServices = {
    options,
    cache,
    store: new LocalBlobStore(cacheDir),
    hot: new HotBlobs(options.hotCacheBytes),
    fills: new FillManager(events),
    meta: new MetadataCache(),
    access,
    upstreams: new UpstreamPool(options.upstreams, events, options.upstreamTimeoutMs),
    msUpstreams: new UpstreamPool([options.modelscopeUpstream], events, options.upstreamTimeoutMs),
    events,
    statusBook: new StatusBook({ events }),
    log: app.log,
    callerOf: (req) => callers.get(req) ?? {},
    originOf: (req) =>
      options.publicUrl?.replace(/\/+$/, '') ??
      `${req.protocol}://${req.headers.host ?? `${options.host}:${options.port}`}`,
    hfContext: (endpoint, token) => ({
      cacheDir,
      endpoint,
      token,
      offline: false,
      symlinks: true,
      engine: cache.engine,
      // The server's own token per upstream; the pool is the Cache's (shared with the engine).
      client: new HfClient({ endpoint, token, http: cache.http }),
    }),
    ...(options.cluster ? { cluster: new ClusterServices(options.cluster) } : {}),
  };

  // Every request: id, caller identity (API key check), and one `request` event + log line when it ends.
  app.addHook('onRequest', async (req, reply) => {
    req.hubcache = { route: 'unknown', source: 'none', stale: false, bytes: 0 };
    const started = process.hrtime.bigint();
    reply.header('x-request-id', req.id);
    reply.raw.once('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const n = req.hubcache;
      const aborted = !reply.raw.writableFinished;
      const bytes = n.bytes + (n.bodyBytes?.(!aborted) ?? 0);
      const ev = {
        id: req.id,
        method: req.method,
        route: n.route,
        status: reply.raw.statusCode,
        bytes,
        source: n.source,
        stale: n.stale,
        aborted,
        ms,
      };
      try {
        events.emit('request', ev);
      } catch (err) {
        app.log.error({ err }, 'request listener failed');
      }
      req.log.info(
        {
          reqId: req.id,
          method: req.method,
          url: req.url.split('?')[0],
          status: ev.status,
          ms: Math.round(ms),
          bytes,
          route: n.route,
          source: n.source,
          ...(aborted ? { aborted } : {}),
        },
        'request',
      );
    });
    if (req.url === '/healthz') return;
    // Replicas authenticate each other with the cluster secret (peer-route.ts), not with API keys.
    if (services.cluster && req.url.startsWith(PEER_PREFIX)) return;
    const { ok, caller } = access.identify(req.headers);
    if (!ok) {
      req.hubcache.route = 'auth';
      reply.header('www-authenticate', 'Basic realm="hubcache"');
      return sendError(
        reply,
        401,
        'This mirror needs an API key (X-Hubcache-Key header, Basic auth password, or Bearer token)',
        'MirrorApiKeyRequired',
      );
    }
    callers.set(req, caller);
  });

  app.get('/healthz', async (req) => {
    req.hubcache.route = 'health';
    return { status: 'ok' };
  });

  registerHfFace(app, services);
  peerRoutes(app, services);
  for (const r of [...FEATURE_ROUTES, ...(mo.routes ?? [])]) r(app, services);

  // After a fill, keep the store under --max-size (debounced: one gc for a burst of fills).
  let gcTimer: NodeJS.Timeout | undefined;
  let gcRunning: Promise<void> | undefined;
  if (options.maxSizeBytes !== undefined) {
    const maxSizeBytes = options.maxSizeBytes;
    events.on('fill-end', (e) => {
      if (!e.ok || gcTimer) return;
      gcTimer = setTimeout(() => {
        gcTimer = undefined;
        // Repos pinned in the saved cache policy (`hubcache gc --keep ... --save-policy`) stay.
        gcRunning = cache
          .readCachePolicy()
          .then((policy) => cache.gc({ maxSizeBytes, keep: policy?.keep ?? [] }))
          .then((r) => {
            if (r.freedBytes > 0)
              app.log.info(
                { freedBytes: r.freedBytes },
                'store over --max-size: removed least recently used revisions',
              );
          })
          .catch((err: unknown) => app.log.warn({ err }, 'gc after fill failed'))
          .finally(() => (gcRunning = undefined));
      }, 200);
    });
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    services,
    async listen() {
      // A replica that cannot use the shared store refuses to start (before taking its port).
      await services.cluster?.check(mo.clusterProbe);
      await app.listen({ host: options.host, port: options.port });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : options.port;
      const host = options.host.includes(':') ? `[${options.host}]` : options.host;
      const url = `http://${host}:${port}`;
      services.cluster?.listening(url);
      return url;
    },
    close(drainMs = options.drainMs) {
      closing ??= (async () => {
        const cut = setTimeout(() => {
          services.fills.abortAll();
          app.server.closeAllConnections();
        }, drainMs);
        try {
          await app.close();
        } finally {
          clearTimeout(cut);
          if (gcTimer) clearTimeout(gcTimer);
          await gcRunning;
          services.fills.abortAll();
          await access.flush();
          await cache.close();
          await services.cluster?.close();
        }
      })();
      return closing;
    },
  };
}
