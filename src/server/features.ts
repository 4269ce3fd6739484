// The mirror's route modules beyond the HF face, in registration order: the ModelScope face, and
// the operator's routes (/metrics, /api/hubcache/status, /api/hubcache/prefetch, the dashboard).
import { clusterRoutes } from './cluster-view.js';
import { dashboardRoutes } from './dashboard.js';
import { metricsRoutes } from './metrics.js';
import { registerMsFace } from './ms-face.js';
import { prefetchRoutes } from './prefetch.js';
import type { RouteModule } from './services.js';
import { statusRoutes } from './status-routes.js';

export const FEATURE_ROUTES: readonly RouteModule[] = [
  registerMsFace,
  metricsRoutes,
  statusRoutes,
  prefetchRoutes,
  dashboardRoutes,
  clusterRoutes,
];
