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
  type CacheConfig,
  type Env,
} from './config.js';
import { asFsError, UsageError, type WritePlace } from './errors.js';
import { downloadHf, ensureBlob, type EnsureBlobOptions, type EnsuredBlob } from './download/hf.js';
import { sharedCacheRoots } from './download/cross-hub.js';
import { downloadModelScope } from './download/modelscope.js';
import type { DownloadOptions, DownloadResult } from './download/types.js';
import type { ImportOptions, ImportResult } from './import/import-dir.js';
import { accessAt } from './hubs/http.js';
import { hubAdapter, type EndpointAt, type HubClient, type HubClients } from './hubs/registry.js';
import { parseRepoRef } from './hubs/repo-ref.js';
import type { HubName, RemoteFile, RepoRef } from './hubs/types.js';
import { Http1Client } from './http/client.js';
import { hubBodyErrorFor } from './hubs/http-errors.js';
import { TransferEngine } from './transfer/engine.js';
import type { TransferOptions } from './transfer/types.js';
import type * as care from './care/index.js';
import type { DedupOptions, DedupReport } from './care/dedup.js';
import type { DoctorOptions, DoctorReport } from './care/doctor.js';
import type { PackOptions, PackReport } from './care/pack.js';
import type { UnpackOptions, UnpackReport } from './care/unpack.js';
import { policyPath } from './care/paths.js';
import type { InstallOptions, InstallResult } from './manifest/install.js';
import type { LockOptions, LockResult, UpdateOptions } from './manifest/lock.js';
import type { OutdatedEntry, OutdatedOptions } from './manifest/outdated.js';
import type { ModelPathOptions } from './manifest/path.js';

/** A project verb's options without the cache (the method's own). */
export type ProjectVerbOptions<O extends { cache: unknown }> = Omit<O, 'cache'>;

// Cache care and import are loaded on first use: a download (the hot path of short-lived CLI
// runs and of applications starting up) does not pay for parsing them.
const careModule = (): Promise<typeof care> => import('./care/index.js');

// Where the configuration types live: config.ts (import/ needs them without importing this module).
export type { CacheConfig, HubSettings } from './config.js';

export interface CacheAtOptions {
  /** ModelScope cache root; default: the same folder as the HF cache. */
  modelscopeDir?: string;
  hfEndpoint?: string;
  modelscopeEndpoint?: string;
  hfToken?: string;
  modelscopeToken?: string;
  offline?: boolean;
  transfer?: Partial<TransferOptions>;
  /**
   * Take endpoints, tokens, the offline switch and HF_HUB_DISABLE_SYMLINKS from these variables
   * (as `fromEnv` does; pass `process.env`), while the folder stays `dir`. The options above still win.
   */
  env?: Env;
}

/** What `Cache.fromEnv` takes over the environment (the CLI's global flags). */
export interface CacheOverrides {
  /** One folder for both hubs, as `--cache-dir` (and MODELSCOPE_CACHE=dir for ModelScope). */
  cacheDir?: string;
  endpoints?: Partial<Record<HubName, string>>;
  tokens?: Partial<Record<HubName, string>>;
  /** true forces offline; false/absent keeps the environment's HF_HUB_OFFLINE. */
  offline?: boolean;
  transfer?: Partial<TransferOptions>;
}

export class Cache {
  /** Fixed when the Cache is built (frozen): build another Cache for other settings. */
  readonly config: Readonly<CacheConfig>;
  private httpInstance: Http1Client | undefined;
  private engineInstance: TransferEngine | undefined;
  private readonly clients = new Map<string, HubClient>();
  private closed = false;

  constructor(config: CacheConfig) {
    // A copy, so the caller's object stays theirs; transfer hooks (functions) are kept as given.
    const { hf, modelscope, transfer } = config;
    this.config = Object.freeze({
      hf: Object.freeze({ ...hf }),
      modelscope: Object.freeze({ ...modelscope }),
      ...(transfer ? { transfer: Object.freeze({ ...transfer }) } : {}),
    });
  }

  /**
   * A cache at `dir`: HF repos as `dir/models--org--name`, ModelScope repos as
   * `dir/models/org/name` (the modelscope SDK's layout with MODELSCOPE_CACHE=dir).
   */
  static at(dir: string, opts: CacheAtOptions = {}): Cache {
    const root = path.resolve(dir);
    const env = opts.env ? Cache.fromEnv(opts.env).config : undefined;
    return new Cache({
      hf: {
        cacheDir: root,
        endpoint: opts.hfEndpoint ?? env?.hf.endpoint ?? HF_DEFAULT_ENDPOINT,
        token: opts.hfToken ?? env?.hf.token,
        offline: opts.offline ?? env?.hf.offline ?? false,
        symlinks: env?.hf.symlinks ?? true,
      },
      modelscope: {
        cacheDir: path.resolve(opts.modelscopeDir ?? root),
        endpoint: opts.modelscopeEndpoint ?? env?.modelscope.endpoint ?? MS_DEFAULT_ENDPOINT,
        token: opts.modelscopeToken ?? env?.modelscope.token,
      },
      ...(opts.transfer ? { transfer: opts.transfer } : {}),
    });
  }

  /** Everything from the variables the official clients read (HF_HOME, HF_HUB_CACHE, MODELSCOPE_CACHE...). */
  static fromEnv(env: Env = process.env, overrides: CacheOverrides = {}): Cache {
    const hf = hfSettingsFromEnv(env);
    const ms = modelscopeSettingsFromEnv(env);
    const dir = overrides.cacheDir === undefined ? undefined : path.resolve(overrides.cacheDir);
    const msDir = dir ?? realpathOrSelf(ms.cacheDir);
    // modelscope ≥1.38 keeps its own layout in MODELSCOPE_CACHE, else in ~/.cache/modelscope (no `hub`).
    const v2Dir = dir ?? (env.MODELSCOPE_CACHE ? undefined : path.dirname(msDir));
    return new Cache({
      hf: {
        cacheDir: dir ?? realpathOrSelf(hf.cacheDir),
        endpoint: overrides.endpoints?.hf ?? hf.endpoint,
        token: overrides.tokens?.hf ?? (hf.disableImplicitToken ? undefined : hf.token),
        offline: overrides.offline || hf.offline,
        symlinks: !hf.disableSymlinks,
      },
      modelscope: {
        cacheDir: msDir,
        endpoint: overrides.endpoints?.modelscope ?? ms.endpoint,
        token: overrides.tokens?.modelscope ?? ms.token,
        ...(v2Dir ? { v2Dir } : {}),
      },
      ...(overrides.transfer ? { transfer: overrides.transfer } : {}),
    });
  }

  /** The one connection pool of this cache: metadata requests and file bodies alike. */
  get http(): Http1Client {
    if (this.closed) throw new UsageError('This Cache is closed');
    this.httpInstance ??= new Http1Client({ keepAliveMs: 30_000, connectTimeoutMs: 30_000 });
    return this.httpInstance;
  }

  /**
   * This cache's client for `hub` (its endpoint and token, its pool); with `at`, a client for another
   * endpoint of that hub (the token only goes to the configured endpoint's origin, see accessAt).
   */
  client<H extends HubName>(hub: H, at?: EndpointAt): HubClients[H] {
    const settings = this.config[hub];
    const access = at ? accessAt(settings, at.endpoint, at.primary) : settings;
    const key = `${hub} ${access.endpoint} ${access.token ?? ''}`;
    let c = this.clients.get(key);
    if (!c) {
      c = hubAdapter(hub).client({ endpoint: access.endpoint, token: access.token, http: this.http });
      this.clients.set(key, c);
    }
    return c as HubClients[H];
  }

  /** Closes idle connections and the transfer engine. Idempotent; a closed Cache makes no requests. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clients.clear();
    await this.engineInstance?.close();
    this.httpInstance?.close();
  }

  /** The shared transfer engine (one global connection limit for everything this cache fetches). */
  get engine(): TransferEngine {
    this.engineInstance ??= new TransferEngine({ errorFor: hubBodyErrorFor, ...this.config.transfer }, this.http);
    return this.engineInstance;
  }

  parseRepo(repo: string | RepoRef, revision?: string): RepoRef {
    const ref = typeof repo === 'string' ? parseRepoRef(repo) : { ...repo };
    if (revision !== undefined) ref.revision = revision;
    return ref;
  }

  /** Downloads (or plans, with dryRun) a repo or part of it; returns the snapshot or local-dir path. */
  async download(opts: DownloadOptions): Promise<DownloadResult> {
    const res = await this.downloadOnly(opts);
    if (!opts.dryRun && !opts.localDir) await this.applyCachePolicy(res, opts);
    return res;
  }

  /** download() without the cache policy (`<cache>/.locks/hubcache/policy.json`) that follows it. */
  private async downloadOnly(opts: DownloadOptions): Promise<DownloadResult> {
    const repo = this.parseRepo(opts.repo, opts.revision);
    try {
      return await this.downloadRepo(repo, opts);
    } catch (err) {
      throw asFsError(err, this.writePlaces(repo.hub, opts.localDir));
    }
  }

  /** The folders a download or import of `hub` writes into, each with the setting that moves it. */
  private writePlaces(hub: string, localDir?: string): WritePlace[] {
    const { cacheDirSetting: setting } = hubAdapter(hub);
    const places: WritePlace[] = hubAdapter(hub)
      .cacheDirs(this.config)
      .map((dir) => ({ dir, setting }));
    if (localDir) places.push({ dir: path.resolve(localDir), setting: '--local-dir' });
    return places;
  }

  private async downloadRepo(repo: RepoRef, opts: DownloadOptions): Promise<DownloadResult> {
    // The download flows stay here, not in the adapters: they import the layouts, which import
    // repo-ref and so the registry (a cycle). A third hub's flow would be one more case here.
    const crossHubRoots = sharedCacheRoots(this.careContext().roots);
    const { engine } = this;
    if (repo.hub === 'hf') {
      const { cacheDir, endpoint, token, offline, symlinks } = this.config.hf;
      const client = this.client('hf');
      return downloadHf({ cacheDir, endpoint, token, offline, symlinks, engine, client, crossHubRoots }, repo, opts);
    }
    if (repo.hub !== 'modelscope') throw new UsageError(`Hub ${hubAdapter(repo.hub).name} has no download flow yet`);
    const { cacheDir, v2Dir, endpoint, token, offline } = this.config.modelscope;
    const client = this.client('modelscope');
    // One --offline switch for both hubs unless ModelScope's own is set.
    const msOffline = offline ?? this.config.hf.offline;
    const ctx = { cacheDir, v2Dir, endpoint, token, offline: msOffline, engine, client, crossHubRoots };
    return downloadModelScope(ctx, repo, opts);
  }

  /**
   * One HF blob (`file` as a tree listing describes it, at full `commit`) into the cache:
   * downloaded and verified unless present, linked into its snapshot; returns where it is.
   */
  async ensureBlob(
    repo: string | RepoRef,
    commit: string,
    file: RemoteFile,
    opts: EnsureBlobOptions = {},
  ): Promise<EnsuredBlob> {
    const ref = this.parseRepo(repo);
    if (ref.hub !== 'hf') throw new UsageError('ensureBlob: HF repos only');
    const hf = this.config.hf;
    const ctx = {
      cacheDir: hf.cacheDir,
      endpoint: hf.endpoint,
      token: hf.token,
      offline: hf.offline,
      symlinks: hf.symlinks,
      engine: this.engine,
      client: this.client('hf'),
    };
    return ensureBlob(ctx, ref, commit, file, opts);
  }

  /**
   * Adopts files already on disk (`opts.dir`, laid out by repo path) into this cache after
   * checking them against the hub's hashes; reports mismatches and missing files, downloads nothing.
   */
  async importDir(
    opts: Omit<ImportOptions, 'repo'> & { repo: string | RepoRef; revision?: string },
  ): Promise<ImportResult> {
    const { importDir } = await import('./import/import-dir.js');
    const repo = this.parseRepo(opts.repo, opts.revision);
    try {
      return await importDir(this.config, { ...opts, repo }, (hub, at) => this.client(hub, at));
    } catch (err) {
      throw asFsError(err, this.writePlaces(repo.hub));
    }
  }

  // --- cache care: see, check, refresh and clean what is cached (src/care/) ---

  /** What the care functions need: both layouts' roots, how to reach each hub, and this cache's download. */
  careContext(): care.CareContext {
    const { hf, modelscope: ms } = this.config;
    return {
      roots: { hf: hf.cacheDir, modelscope: ms.cacheDir, ...(ms.v2Dir ? { modelscopeV2: ms.v2Dir } : {}) },
      hf: { endpoint: hf.endpoint, token: hf.token },
      modelscope: { endpoint: ms.endpoint, token: ms.token },
      offline: hf.offline,
      client: (hub, at) => this.client(hub, at),
      download: (opts) => this.download(opts),
    };
  }

  /** Everything cached, both hubs and layouts: repos, revisions, files, sizes, and warnings. Never throws on damage. */
  async scan(): Promise<care.CacheScan> {
    // scan.ts alone, not the whole of care/ (`ls` needs nothing else: ~10 modules fewer to load).
    return (await import('./care/scan.js')).scan(this.careContext().roots);
  }

  /** Re-hashes cached files against their expected hashes; `fix` downloads bad ones again. */
  async verify(opts: care.VerifyOptions = {}): Promise<care.VerifyReport> {
    return (await careModule()).verify(this.careContext(), await this.scan(), opts);
  }

  /**
   * Like `hf cache verify`: per cached revision, the files its listing names that are not on disk and
   * the files on disk it does not name (listing from trees/<commit>.json, else the hub).
   */
  async listingDiffs(
    opts: Pick<care.VerifyOptions, 'targets' | 'defaults' | 'signal'> = {},
  ): Promise<Array<care.ListingDiff & { reason?: string }>> {
    const [m, scan] = await Promise.all([careModule(), this.scan()]);
    const { requireTargets } = await import('./care/select.js');
    const selections = opts.targets?.length
      ? requireTargets(scan, opts.targets, opts.defaults)
      : scan.repos.map((repo) => ({ repo, revisions: repo.revisions }));
    return m.listingDiffs(this.careContext(), selections, opts.signal);
  }

  /** `hf cache verify REPO --local-dir DIR`: hashes DIR's files against the revision's listing (default: main / master). */
  async verifyLocalDir(
    repo: string | RepoRef,
    dir: string,
    opts: { revision?: string; signal?: AbortSignal; concurrency?: number } = {},
  ): Promise<care.LocalDirVerifyReport> {
    return (await careModule()).verifyLocalDir(
      this.careContext(),
      this.parseRepo(repo, opts.revision),
      path.resolve(dir),
      opts,
    );
  }

  /** Cached refs vs what the hub (or several endpoints) serves now. */
  async status(opts: care.StatusOptions = {}): Promise<care.StatusReport> {
    return (await careModule()).status(this.careContext(), await this.scan(), opts);
  }

  /** Removes repos / revisions (`dryRun`: only report what would go). */
  async remove(opts: care.RemoveOptions): Promise<care.DeleteReport> {
    return (await careModule()).removeRevisions(this.careContext(), opts);
  }

  /** Removes detached revisions, stale partial downloads, broken links, orphan blobs, empty folders. */
  async prune(opts: care.PruneOptions = {}): Promise<care.DeleteReport> {
    return (await careModule()).pruneCache(this.careContext(), opts);
  }

  /** Removes least recently used revisions until the cache fits in `maxSizeBytes`. */
  async gc(opts: care.GcOptions): Promise<care.DeleteReport> {
    return (await careModule()).gcCache(this.careContext(), opts);
  }

  /** Carries out a plan from a dry run (after the user confirmed it); every deletion is re-checked. */
  async executeDeletePlan(plan: care.DeletePlan, opts: { signal?: AbortSignal } = {}): Promise<care.DeleteReport> {
    return (await careModule()).executePlan(plan, opts);
  }

  /** The gc policy applied after every download, if one was saved. */
  async readCachePolicy(): Promise<care.CachePolicy | undefined> {
    return (await careModule()).readPolicy(this.config.hf.cacheDir);
  }

  async saveCachePolicy(policy: care.CachePolicy): Promise<string> {
    return (await careModule()).savePolicy(this.config.hf.cacheDir, policy);
  }

  /** Runs the saved gc policy, keeping what was just downloaded; a failure is only a warning. */
  private async applyCachePolicy(res: DownloadResult, opts: DownloadOptions): Promise<void> {
    if (!fs.existsSync(policyPath(this.config.hf.cacheDir))) return;
    try {
      const report = await (await careModule()).applyCachePolicy(this.careContext(), res);
      if (report && report.freedBytes > 0)
        opts.onProgress?.({
          type: 'warning',
          message: `Cache policy: removed ${report.plan.revisions.length + report.plan.repos.length} old revision(s), freed ${report.freedBytes} bytes`,
        });
    } catch (err) {
      opts.onProgress?.({ type: 'warning', message: `Cache policy not applied: ${(err as Error).message}` });
    }
  }

  /** What goes wrong in practice (environment, file systems, locks, damage, incomplete repos, duplicates), each with a fix. */
  async doctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
    const { doctor } = await import('./care/doctor.js');
    return doctor(this.careContext(), opts);
  }

  /** Cached repos (layout and metadata) into one tar for a machine with no network. */
  async pack(opts: PackOptions): Promise<PackReport> {
    const { pack } = await import('./care/pack.js');
    return pack(this.careContext(), opts);
  }

  /** Verifies a `pack` archive completely, then merges it into this cache (existing blobs and refs kept). */
  async unpack(opts: UnpackOptions): Promise<UnpackReport> {
    const { unpack } = await import('./care/unpack.js');
    return unpack(this.careContext(), { symlinks: this.config.hf.symlinks, ...opts });
  }

  /** Hard-links identical files across this cache's layouts (and `also` caches); reports the bytes freed. */
  async dedup(opts: DedupOptions = {}): Promise<DedupReport> {
    const { dedup } = await import('./care/dedup.js');
    return dedup(this.careContext(), opts);
  }

  // --- project verbs: hubcache.json + hubcache.lock (src/manifest/, loaded only when used) ---

  /** Resolves the manifest's entries to commits and file lists and writes hubcache.lock. */
  async lock(opts: ProjectVerbOptions<LockOptions> = {}): Promise<LockResult> {
    return (await import('./manifest/lock.js')).lock({ ...opts, cache: this });
  }

  /** `lock` that re-resolves the given aliases (all when none are given). */
  async update(opts: ProjectVerbOptions<UpdateOptions> = {}): Promise<LockResult> {
    return (await import('./manifest/lock.js')).update({ ...opts, cache: this });
  }

  /** Puts every locked model in place (locking first unless frozen). */
  async install(opts: ProjectVerbOptions<InstallOptions> = {}): Promise<InstallResult> {
    return (await import('./manifest/install.js')).install({ ...opts, cache: this });
  }

  /** Entries whose hub revision moved since they were locked. */
  async outdated(opts: ProjectVerbOptions<OutdatedOptions> = {}): Promise<OutdatedEntry[]> {
    return (await import('./manifest/outdated.js')).outdated({ ...opts, cache: this });
  }

  /** Where an installed model (or one of its files) is on disk. */
  async modelPath(opts: ProjectVerbOptions<ModelPathOptions>): Promise<string> {
    return (await import('./manifest/path.js')).modelPath({ ...opts, cache: this });
  }

  /** One file: downloads it if needed and returns its path on disk. */
  async file(
    repo: string | RepoRef,
    filePath: string,
    opts: Omit<DownloadOptions, 'repo' | 'files'> = {},
  ): Promise<string> {
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
