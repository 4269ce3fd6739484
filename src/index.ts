// Public library API (re-exports only).
export { Cache, type CacheConfig, type CacheAtOptions, type HubSettings } from './cache.js';
export * from './errors.js';
export type { DownloadOptions, DownloadResult, PlannedFile, ProgressEvent, FileStatus } from './download/types.js';
export type { RepoRef, RemoteFile, Snapshot, HubName, RepoType } from './hubs/types.js';
export { parseRepoRef, formatRepoRef } from './hubs/repo-ref.js';
export { hfSettingsFromEnv, modelscopeSettingsFromEnv } from './config.js';
