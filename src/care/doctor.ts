// `doctor`: one report of what goes wrong in practice with model caches, each finding with a
// severity and a concrete fix. Observations (environment, mounts table, probes of each cache
// folder, the scan) are gathered here; the judging is done by the pure checks in doctor-checks.ts.
// Nothing goes to the network unless `online` is set.
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { envBool, hfSettingsFromEnv, modelscopeSettingsFromEnv, type Env } from '../config.js';
import type { RemoteFile, RepoRef } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { lockingAvailable, lockingUnavailableReason } from '../locks/flock.js';
import type { CareContext } from './context.js';
import { collectInodes, scanAll } from './dedup.js';
import {
  binOnlyFindings,
  completenessFindings,
  DEFAULT_SPACE_THRESHOLDS,
  duplicateFindings,
  envCacheDirs,
  envFindings,
  networkFindings,
  lockingFindings,
  mountFor,
  oldMsLayoutFindings,
  parseMounts,
  permissionFindings,
  repoPermissionFindings,
  reportedEnv,
  scanFindings,
  sortFindings,
  spaceFindings,
  storageFindings,
  symlinkFindings,
  treeCompletenessFindings,
  type DirProbe,
  type DoctorFinding,
  type MountEntry,
  type SpaceThresholds,
} from './doctor-checks.js';
import { readdirSafe } from './fs-walk.js';
import { partialInUse } from './in-use.js';
import type { CachedRepo, CachedRevision, CacheScan } from './model.js';
import { scan as scanCache } from './scan.js';

export interface DoctorOptions {
  /** The environment to judge (the CLI passes its own; default: none set). */
  env?: Env;
  /** Other cache folders to compare with (duplicates) and check. */
  also?: string[];
  /** Ask the hubs for file lists the cache does not hold (for the `.bin`-only check). */
  online?: boolean;
  /** Test seams: the mounts table (parsed, or /proc/mounts text), container, uid, locking, thresholds. */
  mounts?: MountEntry[] | string;
  inContainer?: boolean;
  /** Folders cleaned at boot or by age (default /tmp and /var/tmp). */
  tempDirs?: string[];
  uid?: number;
  locking?: { available: boolean; reason?: string | undefined };
  space?: SpaceThresholds;
  /** Same-size files at least this big count as likely duplicates (default 1 MiB). */
  likelyDuplicateMinSize?: number;
  signal?: AbortSignal;
}

export interface DoctorDir {
  /** What the folder is used as: `HF hub cache`, `ModelScope cache`, `--also`... */
  roles: string[];
  path: string;
  exists: boolean;
  /** The folder actually probed (the nearest existing parent when it does not exist yet). */
  checked: string;
  writable: boolean;
  ownerUid?: number;
  fsType?: string;
  mountPoint?: string;
  freeBytes?: number;
  totalBytes?: number;
  symlinks?: boolean;
}

export interface DoctorReport {
  findings: DoctorFinding[];
  /** Errors + warnings: the exit code is 1 when this is not 0. */
  problems: number;
  /** The relevant variables that are set (tokens hidden). */
  env: Record<string, string>;
  /** Where the official clients would cache, from the environment alone. */
  envCacheDirs: { hf: string; modelscope: string; modelscopeV2: string };
  dirs: DoctorDir[];
  locking: { available: boolean; reason?: string };
  seconds: number;
}

const MAX_METADATA_BYTES = 32 << 20;
const ALSO_ROLE = '--also cache';

export async function doctor(ctx: CareContext, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const started = Date.now();
  const env = opts.env ?? {};
  const also = (opts.also ?? []).map((d) => path.resolve(d));
  const findings: DoctorFinding[] = [];
  const uid = opts.uid ?? process.getuid?.();
  const mounts = typeof opts.mounts === 'string' ? parseMounts(opts.mounts) : (opts.mounts ?? (await readMounts()));
  const inContainer = opts.inContainer ?? (await detectContainer());

  // 1. environment
  findings.push(...envFindings(env, { hf: ctx.roots.hf, modelscope: ctx.roots.modelscope }));
  findings.push(...networkFindings(env, [hfSettingsFromEnv(env).endpoint, modelscopeSettingsFromEnv(env).endpoint]));

  // 2. each cache folder: storage, permissions, space, symlinks
  const dirs = await probeDirs(cacheFolders(ctx, also), mounts);
  const spaceReported = new Set<string>();
  for (const d of dirs) {
    const role = d.roles.join(' + ');
    if (!d.exists) {
      const given = d.roles.every((r) => r === ALSO_ROLE);
      findings.push({
        check: 'fs.missing',
        severity: given ? 'warning' : 'info',
        path: d.path,
        message: given
          ? `${d.path} (--also) does not exist`
          : `${role} ${d.path} does not exist yet (the first download creates it)`,
      });
    }
    const mount = mounts ? mountFor(d.checked, mounts) : undefined;
    findings.push(...storageFindings(role, d.path, mount, inContainer, opts.tempDirs));
    const probe: DirProbe = {
      exists: d.exists,
      checked: d.checked,
      writable: d.writable,
      ...(d.ownerUid !== undefined ? { ownerUid: d.ownerUid } : {}),
    };
    findings.push(...permissionFindings(role, d.path, probe, uid));
    // One file system, one report of its free space.
    const fsKey = d.mountPoint ?? d.checked;
    if (!spaceReported.has(fsKey))
      findings.push(...spaceFindings(role, d.path, d.freeBytes, d.totalBytes, opts.space ?? DEFAULT_SPACE_THRESHOLDS));
    spaceReported.add(fsKey);
    if (d.roles.some((r) => r.startsWith('HF')))
      findings.push(...symlinkFindings(role, d.path, d.symlinks, envBool(env.HF_HUB_DISABLE_SYMLINKS)));
  }

  // 3. file locks
  const locking = opts.locking ?? { available: lockingAvailable(), reason: lockingUnavailableReason() };
  findings.push(...lockingFindings(locking.available, locking.reason));

  // 4. the cache itself: damage, leftovers, completeness, ownership, duplicates
  const main = await scanCache(ctx.roots);
  findings.push(...scanFindings(main.warnings, await partialsInUse(main)));
  findings.push(...repoPermissionFindings(await unwritableRepos(main)));
  findings.push(...oldMsLayoutFindings(ctx.roots.modelscope, await oldMsLayoutDirs(ctx.roots.modelscope)));
  for (const repo of main.repos) {
    for (const rev of repo.revisions) {
      opts.signal?.throwIfAborted();
      findings.push(...(await revisionFindings(ctx, repo, rev, !!opts.online, findings)));
    }
  }
  const scans = await scanAll(ctx.roots, also, main);
  findings.push(...duplicateFindings(await collectInodes(scans), also, opts.likelyDuplicateMinSize ?? 1 << 20));

  const report: DoctorReport = {
    findings: sortFindings(findings),
    problems: findings.filter((f) => f.severity !== 'info').length,
    env: reportedEnv(env),
    envCacheDirs: envCacheDirs(env),
    dirs,
    locking: { available: locking.available, ...(locking.reason ? { reason: locking.reason } : {}) },
    seconds: 0,
  };
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/** The folders to check, each once, with every role it plays. */
function cacheFolders(ctx: CareContext, also: readonly string[]): Map<string, string[]> {
  const folders = new Map<string, string[]>();
  const add = (dir: string, role: string): void => {
    const key = path.resolve(dir);
    const roles = folders.get(key) ?? [];
    if (!roles.includes(role)) roles.push(role);
    folders.set(key, roles);
  };
  add(ctx.roots.hf, 'HF hub cache');
  add(ctx.roots.modelscope, 'ModelScope cache');
  if (ctx.roots.modelscopeV2) add(ctx.roots.modelscopeV2, 'ModelScope ≥1.38 cache');
  for (const a of also) add(a, ALSO_ROLE);
  return folders;
}

async function probeDirs(folders: Map<string, string[]>, mounts: MountEntry[] | undefined): Promise<DoctorDir[]> {
  const out: DoctorDir[] = [];
  for (const [dir, roles] of folders) {
    const exists = await fs.stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    const checked = await fs.realpath(exists ? dir : await nearestExisting(dir)).catch(() => dir);
    const st = await fs.stat(checked).catch(() => undefined);
    const writable = await fs.access(checked, fsConstants.W_OK).then(
      () => true,
      () => false,
    );
    const d: DoctorDir = { roles, path: dir, exists, checked, writable };
    if (st) d.ownerUid = st.uid;
    const mount = mounts ? mountFor(checked, mounts) : undefined;
    if (mount) {
      d.fsType = mount.fsType;
      d.mountPoint = mount.mountPoint;
    }
    const sfs = await fs.statfs(checked).catch(() => undefined);
    if (sfs) {
      d.freeBytes = sfs.bavail * sfs.bsize;
      d.totalBytes = sfs.blocks * sfs.bsize;
    }
    if (exists && writable) d.symlinks = await probeSymlinks(dir);
    out.push(d);
  }
  return out;
}

async function nearestExisting(dir: string): Promise<string> {
  let p = dir;
  while (
    !(await fs.stat(p).then(
      () => true,
      () => false,
    ))
  ) {
    const parent = path.dirname(p);
    if (parent === p) return p;
    p = parent;
  }
  return p;
}

/** Creates a file and a relative symlink to it in a temp folder inside `dir`, then removes both. */
export async function probeSymlinks(dir: string): Promise<boolean | undefined> {
  const probe = path.join(dir, `.hubcache-doctor-${randomBytes(4).toString('hex')}`);
  try {
    await fs.mkdir(probe);
    await fs.writeFile(path.join(probe, 'src'), '');
    await fs.symlink('src', path.join(probe, 'dst'));
    return (await fs.lstat(path.join(probe, 'dst'))).isSymbolicLink();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EINVAL'
      ? false
      : undefined;
  } finally {
    await fs.rm(probe, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function readMounts(): Promise<MountEntry[] | undefined> {
  const text = await fs.readFile('/proc/mounts', 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseMounts(text);
}

async function detectContainer(): Promise<boolean> {
  for (const marker of ['/.dockerenv', '/run/.containerenv']) {
    if (
      await fs.access(marker).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  const cgroup = await fs.readFile('/proc/1/cgroup', 'utf8').catch(() => '');
  return /docker|kubepods|containerd|libpod|lxc/.test(cgroup);
}

async function partialsInUse(s: CacheScan): Promise<Set<string>> {
  const busy = new Set<string>();
  for (const w of s.warnings) if (w.kind === 'incomplete' && (await partialInUse(w))) busy.add(w.path);
  return busy;
}

async function unwritableRepos(s: CacheScan): Promise<Array<{ repo: string; path: string; ownerUid: number }>> {
  const out: Array<{ repo: string; path: string; ownerUid: number }> = [];
  for (const repo of s.repos) {
    for (const dir of repo.layout === 'hf' ? [repo.path, new HfRepoCache(repo.root, repo).blobsDir()] : [repo.path]) {
      const st = await fs.stat(dir).catch(() => undefined);
      if (!st) continue;
      if (
        !(await fs.access(dir, fsConstants.W_OK).then(
          () => true,
          () => false,
        ))
      ) {
        out.push({ repo: repo.key, path: dir, ownerUid: st.uid });
        break;
      }
    }
  }
  return out;
}

/** `<root>/<owner>/<name>/` folders holding a `.msc` or `.mdl`: modelscope ≤1.22's layout. */
async function oldMsLayoutDirs(root: string): Promise<string[]> {
  const skip = new Set(['models', 'datasets', 'hub', '.lock', '.locks', '.hubcache', '._____temp']);
  const out: string[] = [];
  for (const owner of await readdirSafe(root)) {
    if (!owner.isDirectory() || skip.has(owner.name) || /^(?:models|datasets|spaces)--/.test(owner.name)) continue;
    for (const model of await readdirSafe(path.join(root, owner.name))) {
      if (!model.isDirectory()) continue;
      const dir = path.join(root, owner.name, model.name);
      const marked = await Promise.all(
        ['.msc', '.mdl'].map((m) =>
          fs.access(path.join(dir, m)).then(
            () => true,
            () => false,
          ),
        ),
      );
      if (marked.some(Boolean)) out.push(dir);
    }
  }
  return out;
}

/** Completeness of one revision, with the hub's file list from the cache (or the hub, when online). */
async function revisionFindings(
  ctx: CareContext,
  repo: CachedRepo,
  rev: CachedRevision,
  online: boolean,
  findings: DoctorFinding[],
): Promise<DoctorFinding[]> {
  const ref: RepoRef = { hub: repo.hub, type: repo.type, id: repo.id };
  let upstream: RemoteFile[] | undefined;
  let tree: RemoteFile[] | undefined;
  if (repo.layout === 'hf') {
    tree = await new HfRepoCache(repo.root, repo).readTree(rev.commit).catch(() => undefined);
    upstream = tree;
  }
  if (!upstream && online) {
    try {
      upstream = await ctx.client(repo.hub).listFiles(ref, rev.commit);
    } catch (err) {
      findings.push({
        check: 'online.listing',
        severity: 'info',
        repo: repo.key,
        message: `${repo.key}@${rev.commit}: cannot list the hub's files (${(err as Error).message})`,
      });
    }
  }
  const read = async (repoPath: string): Promise<string | undefined> => {
    const p = path.join(rev.path, ...repoPath.split('/'));
    const st = await fs.stat(p).catch(() => undefined);
    if (!st?.isFile() || st.size > MAX_METADATA_BYTES) return undefined;
    return fs.readFile(p, 'utf8').catch(() => undefined);
  };
  return [
    ...(await completenessFindings(repo, rev, read, upstream)),
    ...binOnlyFindings(repo, rev, upstream),
    ...treeCompletenessFindings(repo, rev, tree),
  ];
}
