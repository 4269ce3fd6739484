// What the care commands need from a Cache, without importing it (the Cache imports them).
import type { DownloadOptions, DownloadResult } from '../download/types.js';
import type { ClientFor } from '../hubs/registry.js';
import type { CacheRoots } from './scan.js';

export interface HubAccess {
  endpoint: string;
  token?: string | undefined;
}

export interface CareContext {
  roots: CacheRoots;
  hf: HubAccess;
  modelscope: HubAccess;
  /** No network: remote checks report "unknown" / "unverifiable" instead. */
  offline: boolean;
  /** The Cache's hub clients (its one HTTP pool); `at` for another endpoint of the hub. */
  client: ClientFor;
  /** The cache's own download (used by `verify --fix`). */
  download(opts: DownloadOptions): Promise<DownloadResult>;
}
