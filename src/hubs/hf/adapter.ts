// The Hugging Face Hub as a hubcache hub.
import type { HubAdapter } from '../adapter.js';
import { HfClient } from '../hf.js';

export const hfAdapter: HubAdapter = {
  name: 'hf',
  prefixes: ['hf', 'huggingface'],
  defaultRevision: 'main',
  bareHostEndpoints: false,
  cacheDirSetting: 'HF_HUB_CACHE (or HF_HOME) or --cache-dir',
  cacheDirs: (config) => [config.hf.cacheDir],
  client: (opts) => new HfClient(opts),
};
