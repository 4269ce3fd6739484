// ModelScope as a hubcache hub.
import type { HubAdapter } from '../adapter.js';
import { ModelScopeClient } from '../modelscope.js';

export const modelscopeAdapter: HubAdapter = {
  name: 'modelscope',
  prefixes: ['modelscope', 'ms'],
  defaultRevision: 'master',
  // MODELSCOPE_DOMAIN is a host name (`modelscope.cn`); the SDK adds https://.
  bareHostEndpoints: true,
  cacheDirSetting: 'MODELSCOPE_CACHE or --cache-dir',
  // The legacy layout and modelscope ≥1.38's (v2Dir), which may be the same folder.
  cacheDirs: ({ modelscope: ms }) => [ms.cacheDir, ms.v2Dir ?? ms.cacheDir],
  client: (opts) => new ModelScopeClient(opts),
};
