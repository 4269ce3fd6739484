// Public library API (re-exports only).
export { Cache, type CacheConfig, type CacheAtOptions, type CacheOverrides, type HubSettings } from './cache.js';
export {
  DEFAULT_HUB,
  hubAdapter,
  hubNames,
  registerHub,
  type EndpointAt,
  type HubAdapter,
  type HubClient,
  type HubClientOptions,
  type HubClients,
} from './hubs/registry.js';
export * from './errors.js';
export type { DownloadOptions, DownloadResult, PlannedFile, ProgressEvent, FileStatus } from './download/types.js';
export type { EnsureBlobOptions, EnsuredBlob } from './download/hf.js';
export { LocalBlobStore, type BlobStore, type BlobStat, type BlobRange } from './stores/blob-store.js';
export type { RepoRef, RemoteFile, Snapshot, HubName, RepoType, EndpointsOption } from './hubs/types.js';
export { parseRepoRef, formatRepoRef } from './hubs/repo-ref.js';
export { hfSettingsFromEnv, modelscopeSettingsFromEnv } from './config.js';
export { ModelScopeClient, type MsRevision } from './hubs/modelscope.js';
export { HfClient } from './hubs/hf.js';
export type { Http1Client } from './http/client.js';
export type { TransferEngine } from './transfer/engine.js';
export type { TransferOptions } from './transfer/types.js';
export { ModelScopeCache, maskModelName, type MsLayout } from './layouts/modelscope-cache.js';
export type {
  ImportOptions,
  ImportResult,
  ImportedFile,
  ImportStatus,
  ImportMode,
  ImportEvent,
} from './import/import-dir.js';
// Project manifests: hubcache.json + hubcache.lock.
export {
  loadManifest,
  findManifest,
  parseManifest,
  initManifest,
  addModel,
  stringifyManifest,
  resolveLocalDir,
  MANIFEST_NAME,
  LOCKFILE_NAME,
} from './manifest/manifest.js';
export type { Manifest, ManifestLocation, AddModelOptions, AddModelResult } from './manifest/manifest.js';
export {
  InvalidManifestError,
  entrySpec,
  type ManifestModel,
  type EntrySpec,
  type LockedModel,
  type LockedFile,
  type LockfileShape,
  type ManifestIssue,
} from './manifest/schema.js';
export {
  readLockfile,
  stringifyLockfile,
  manifestDrift,
  diffFiles,
  type Drift,
  type FileChanges,
} from './manifest/lockfile.js';
// Project verbs are Cache methods (cache.lock/update/install/outdated/modelPath); their types:
export type { ProjectVerbOptions } from './cache.js';
export type { ProjectCache } from './manifest/project-cache.js';
export type {
  ProjectOptions,
  LockOptions,
  UpdateOptions,
  LockResult,
  LockEntryResult,
  LockEntryStatus,
} from './manifest/lock.js';
export type {
  InstallOptions,
  InstallResult,
  InstalledModel,
  InstalledFile,
  InstallProgressEvent,
} from './manifest/install.js';
export type { OutdatedOptions, OutdatedEntry } from './manifest/outdated.js';
export type { ModelPathOptions } from './manifest/path.js';
// Cache care: scan, verify, status, remove, prune, gc (the Cache methods of the same names).
export type {
  CacheScan,
  CachedRepo,
  CachedRevision,
  CachedFile,
  CacheWarning,
  WarningKind,
  RepoLayout,
  VerifyOptions,
  VerifyReport,
  VerifyEvent,
  FileCheck,
  Verdict,
  StatusOptions,
  StatusReport,
  RefStatus,
  RemoteState,
  RefState,
  RemoveOptions,
  PruneOptions,
  GcOptions,
  CachePolicy,
  DeletePlan,
  DeleteReport,
  Skipped,
  ListOptions,
  ListRow,
  ListingDiff,
  LocalDirVerifyReport,
} from './care/index.js';
export type { CareContext, HubAccess } from './care/index.js';
export { listRows, parseSize, parseDuration } from './care/index.js';
// Doctor, pack/unpack, dedup (the Cache methods of the same names) and --local-dir link modes.
export type { DoctorOptions, DoctorReport, DoctorDir } from './care/doctor.js';
export type { DoctorFinding, Severity, MountEntry } from './care/doctor-checks.js';
export { parseMounts } from './care/doctor-checks.js';
export type { PackOptions, PackReport, PackEvent } from './care/pack.js';
export type { PackManifest, PackedRepo, ManifestEntry } from './care/pack-format.js';
export {
  ArchiveError,
  type UnpackOptions,
  type UnpackReport,
  type UnpackEvent,
  type UnpackChange,
  type RefChange,
} from './care/unpack.js';
export type { DedupOptions, DedupReport, DedupGroup, DedupEvent } from './care/dedup.js';
export { materializeFile, LINK_MODES, type LinkMode, type LinkMethod } from './layouts/link-mode.js';
