// What the project verbs use of a Cache. An interface of its own, so manifest/ never imports
// cache.ts: the Cache's own project methods (cache.install(), cache.lock()...) load these modules.
import type { CacheConfig } from '../config.js';
import type { DownloadOptions, DownloadResult } from '../download/types.js';
import type { ClientFor } from '../hubs/registry.js';

export interface ProjectCache {
  readonly config: CacheConfig;
  client: ClientFor;
  download(opts: DownloadOptions): Promise<DownloadResult>;
}
