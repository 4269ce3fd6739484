// What one hub brings to hubcache. Each hub is one folder in src/hubs/ with one adapter; the rest
// of the code looks adapters up by name (registry.ts) instead of switching on 'hf' | 'modelscope'.
import type { CacheConfig } from '../config.js';
import type { Http1Client } from '../http/client.js';
import type { RemoteFile, RepoRef, Snapshot } from './types.js';

/** The metadata operations every hub client has (HfClient, ModelScopeClient). */
export interface HubClient {
  readonly endpoint: string;
  /** A revision's commit (or resolved name) and complete file list. */
  snapshot(repo: RepoRef, revision: string, signal?: AbortSignal): Promise<Snapshot>;
  /** The file list of a resolved commit. */
  listFiles(repo: RepoRef, commit: string, signal?: AbortSignal): Promise<RemoteFile[]>;
}

export interface HubClientOptions {
  endpoint: string;
  token?: string | undefined;
  /** The Cache's connection pool. */
  http?: Http1Client | undefined;
}

export interface HubAdapter {
  /** The name in RepoRef.hub, manifests and `--hub`. */
  readonly name: string;
  /** What users may type before `:` (`hf:org/name`) or as `--endpoint NAME=URL`; includes `name`. */
  readonly prefixes: readonly string[];
  /** The revision when none is asked for (`main`, `master`). */
  readonly defaultRevision: string;
  /** An `--endpoint` without a scheme is a host (the SDK adds https://), instead of a usage error. */
  readonly bareHostEndpoints: boolean;
  /** Where `--cache-dir`'s equivalent comes from, for messages about unwritable folders. */
  readonly cacheDirSetting: string;
  /** The folders a download or import of this hub writes into. */
  cacheDirs(config: Readonly<CacheConfig>): string[];
  /** A metadata client for one endpoint. */
  client(opts: HubClientOptions): HubClient;
}
