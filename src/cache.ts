// The library's entry point. A Cache is one place on disk (the HF layout and the ModelScope
// layout side by side) plus how to reach the hubs. Everything a command touches on disk goes
// through it; it reads no environment unless built with Cache.fromEnv().
import path from 'node:path';
import fs from 'node:fs';
import {
  hfSettingsFromEnv,
  HF_DEFAULT_ENDPOINT,
  modelscopeSettingsFromEnv,
  MS_DEFAULT_ENDPOINT,
  type Env,
} from './config.js';
import { UsageError } from './errors.js';
import { downloadHf } from './download/hf.js';
import type { DownloadOptions, DownloadResult } from './download/types.js';
import { parseRepoRef } from './hubs/repo-ref.js';
import type { RepoRef } from './hubs/types.js';
import { TransferEngine } from './transfer/engine.js';
import type { TransferOptions } from './transfer/types.js';

export interface HubSettings {
  /** Cache root for this hub's layout. */
  cacheDir: string;
  endpoint: string;
  token?: string | undefined;
}

export interface CacheConfig {
  hf: HubSettings & { offline: boolean; symlinks: boolean };
  modelscope: HubSettings;
  transfer?: Partial<TransferOptions>;
}

export interface CacheAtOptions {
  /** ModelScope cache root; default: the same folder as the HF cache. */
  modelscopeDir?: string;
  hfEndpoint?: string;
  modelscopeEndpoint?: string;
  hfToken?: string;
  modelscopeToken?: string;
  offline?: boolean;
  transfer?: Partial<TransferOptions>;
}

export class Cache {
  readonly config: CacheConfig;
  private engineInstance: TransferEngine | undefined;

  constructor(config: CacheConfig) {
    this.config = config;
  }

  /**
   * A cache at `dir`: HF repos as `dir/models--org--name`, ModelScope repos as
   * `dir/models/org/name` (the modelscope SDK's layout with MODELSCOPE_CACHE=dir).
   */
  static at(dir: string, opts: CacheAtOptions = {}): Cache {
    const root = path.resolve(dir);
    return new Cache({
      hf: {
        cacheDir: root,
        endpoint: opts.hfEndpoint ?? HF_DEFAULT_ENDPOINT,
        token: opts.hfToken,
        offline: opts.offline ?? false,
        symlinks: true,
      },
      modelscope: {
        cacheDir: path.resolve(opts.modelscopeDir ?? root),
        endpoint: opts.modelscopeEndpoint ?? MS_DEFAULT_ENDPOINT,
        token: opts.modelscopeToken,
      },
      ...(opts.transfer ? { transfer: opts.transfer } : {}),
    });
  }

  /** Everything from the variables the official clients read (HF_HOME, HF_HUB_CACHE, MODELSCOPE_CACHE...). */
  static fromEnv(env: Env = process.env, overrides: { transfer?: Partial<TransferOptions> } = {}): Cache {
    const hf = hfSettingsFromEnv(env);
    const ms = modelscopeSettingsFromEnv(env);
    return new Cache({
      hf: {
        cacheDir: realpathOrSelf(hf.cacheDir),
        endpoint: hf.endpoint,
        token: hf.disableImplicitToken ? undefined : hf.token,
        offline: hf.offline,
        symlinks: !hf.disableSymlinks,
      },
      modelscope: { cacheDir: realpathOrSelf(ms.cacheDir), endpoint: ms.endpoint, token: ms.token },
      ...(overrides.transfer ? { transfer: overrides.transfer } : {}),
    });
  }

  /** The shared transfer engine (one global connection limit for everything this cache fetches). */
  get engine(): TransferEngine {
    this.engineInstance ??= new TransferEngine(this.config.transfer ?? {});
    return this.engineInstance;
  }

  parseRepo(repo: string | RepoRef, revision?: string): RepoRef {
    const ref = typeof repo === 'string' ? parseRepoRef(repo) : { ...repo };
    if (revision !== undefined) ref.revision = revision;
    return ref;
  }

  /** Downloads (or plans, with dryRun) a repo or part of it; returns the snapshot or local-dir path. */
  async download(opts: DownloadOptions): Promise<DownloadResult> {
    const repo = this.parseRepo(opts.repo, opts.revision);
    if (repo.hub === 'hf') {
      const hf = this.config.hf;
      return downloadHf({ cacheDir: hf.cacheDir, endpoint: hf.endpoint, token: hf.token, offline: hf.offline, symlinks: hf.symlinks, engine: this.engine }, repo, opts);
    }
    throw new UsageError(`Hub ${repo.hub} is not supported yet`);
  }

  /** One file: downloads it if needed and returns its path on disk. */
  async file(repo: string | RepoRef, filePath: string, opts: Omit<DownloadOptions, 'repo' | 'files'> = {}): Promise<string> {
    const res = await this.download({ ...opts, repo, files: [filePath] });
    const f = res.files[0];
    if (!f) throw new UsageError(`No file ${filePath}`);
    return f.localPath;
  }
}

function realpathOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}
