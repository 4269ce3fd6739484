// GET /api/hubcache/status: the overview (overview.ts) as JSON, for scripts and the dashboard.
import { withCluster } from './cluster-view.js';
import { overview, trafficOf } from './overview.js';
import type { RouteModule } from './services.js';

export const statusRoutes: RouteModule = (app, s) => {
  trafficOf(s);
  app.get('/api/hubcache/status', async (req, reply) => {
    req.hubcache.route = 'hubcache.status';
    reply.header('cache-control', 'no-store');
    return withCluster(s, await overview(s));
  });
};
