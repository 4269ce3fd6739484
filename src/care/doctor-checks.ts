// The checks of `doctor`, as pure functions of what was observed (environment, mounts table,
// probes, the scan), so each finding can be produced in a test from a crafted input.
import path from 'node:path';
import { envBool, hfSettingsFromEnv, modelscopeSettingsFromEnv, type Env } from '../config.js';
import { parseRepoRef } from '../hubs/repo-ref.js';
import type { RemoteFile } from '../hubs/types.js';
import { maskModelName } from '../layouts/modelscope-cache.js';
import { sameContent, sizeCollisions, type CachedInode } from './dedup.js';
import type { CachedRepo, CachedRevision, CacheWarning, WarningKind } from './model.js';
import { formatBytes } from '../util/format.js';
import { leavesBase } from '../util/safe-path.js';
import { caFromEnv } from '../http/ca.js';
import { proxyFor } from '../http/proxy.js';

export type Severity = 'error' | 'warning' | 'info';

export interface DoctorFinding {
  /** Stable id of the check, e.g. `fs.tmpfs`, `env.offline-conflict`, `repo.missing-shards`. */
  check: string;
  severity: Severity;
  message: string;
  /** What to do about it: a command or a setting, concrete. */
  fix?: string;
  path?: string;
  repo?: string;
}

const GiB = 1024 ** 3;

const shq = (s: string): string => (/^[\w@%+=:,./~-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

// ---------------------------------------------------------------------------------------------
// Environment

const REPORTED_VARS = [
  'HF_HOME',
  'HF_HUB_CACHE',
  'HUGGINGFACE_HUB_CACHE',
  'XDG_CACHE_HOME',
  'TRANSFORMERS_CACHE',
  'HF_ENDPOINT',
  'HF_HUB_OFFLINE',
  'TRANSFORMERS_OFFLINE',
  'HF_HUB_DISABLE_SYMLINKS',
  'HF_HUB_DISABLE_SYMLINKS_WARNING',
  'HF_TOKEN',
  'HUGGING_FACE_HUB_TOKEN',
  'HF_TOKEN_PATH',
  'HF_HUB_DISABLE_IMPLICIT_TOKEN',
  'MODELSCOPE_CACHE',
  'MODELSCOPE_ENDPOINT',
  'MODELSCOPE_DOMAIN',
  'MODELSCOPE_API_TOKEN',
  'MODELSCOPE_CREDENTIALS_PATH',
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'ALL_PROXY',
  'all_proxy',
  'NO_PROXY',
  'no_proxy',
  'REQUESTS_CA_BUNDLE',
  'SSL_CERT_FILE',
  'CURL_CA_BUNDLE',
  'NODE_EXTRA_CA_CERTS',
] as const;
const PROXY_VARS = new Set(['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']);
const SECRET_VARS = new Set(['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'MODELSCOPE_API_TOKEN']);
const BOOL_WORDS = new Set(['1', 'ON', 'YES', 'TRUE', '0', 'OFF', 'NO', 'FALSE', '']);

/** The variables that matter, as set (tokens masked). */
export function reportedEnv(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of REPORTED_VARS) {
    const v = env[k];
    if (v !== undefined)
      out[k] = SECRET_VARS.has(k) ? (v ? '(set, hidden)' : '') : PROXY_VARS.has(k) ? withoutPassword(v) : v;
  }
  return out;
}

/** A proxy URL for display: its password replaced. */
function withoutPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]+):[^@/]*@/i, '$1:***@');
}

/** Proxy and CA settings: what applies to the hubs, and settings hubcache would refuse. */
export function networkFindings(env: Env, endpoints: readonly string[]): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  for (const endpoint of endpoints) {
    let route: ReturnType<typeof proxyFor>;
    try {
      route = proxyFor(new URL(endpoint), env);
    } catch (err) {
      out.push({
        check: 'net.proxy-invalid',
        severity: 'error',
        message: (err as Error).message,
        fix: 'export HTTPS_PROXY=http://host:port (user:password@ if it needs them)',
      });
      break;
    }
    if (route)
      out.push({
        check: 'net.proxy',
        severity: 'info',
        message: `Requests to ${endpoint} go through the proxy ${route.url.host}${route.authorization ? ' (with credentials)' : ''}`,
      });
  }
  try {
    if (caFromEnv(env))
      out.push({
        check: 'net.ca-bundle',
        severity: 'info',
        message: "TLS trusts the extra certificates of the CA bundle set in the environment, besides Node's roots",
      });
  } catch (err) {
    out.push({
      check: 'net.ca-bundle-invalid',
      severity: 'error',
      message: (err as Error).message,
      fix: 'point it at a PEM file, or unset it',
    });
  }
  return out;
}

/** The cache folders the official clients would use in this environment. */
export function envCacheDirs(env: Env): { hf: string; modelscope: string; modelscopeV2: string } {
  const ms = modelscopeSettingsFromEnv(env).cacheDir;
  return {
    hf: hfSettingsFromEnv(env).cacheDir,
    modelscope: ms,
    modelscopeV2: env.MODELSCOPE_CACHE ? ms : path.dirname(ms),
  };
}

const same = (a: string, b: string): boolean => path.resolve(a) === path.resolve(b);
const set = (env: Env, k: string): string | undefined => (env[k] === undefined || env[k] === '' ? undefined : env[k]);

/** Conflicting, masked or misspelled settings; `used` = the folders hubcache actually uses. */
export function envFindings(env: Env, used: { hf: string; modelscope: string }): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  const dirs = envCacheDirs(env);
  const hfHome = set(env, 'HF_HOME');
  const hubCache = set(env, 'HF_HUB_CACHE');
  const legacyCache = set(env, 'HUGGINGFACE_HUB_CACHE');
  if (hubCache && hfHome && !same(dirs.hf, path.join(hfSettingsFromEnv(env).home, 'hub'))) {
    out.push({
      check: 'env.hub-cache-overrides-home',
      severity: 'warning',
      message: `HF_HUB_CACHE (${hubCache}) and HF_HOME (${hfHome}) are both set: models are cached in ${dirs.hf}, not in ${path.join(hfHome, 'hub')}; the token stays in HF_HOME`,
      fix: `Keep one: unset HF_HUB_CACHE, or set HF_HUB_CACHE=${shq(path.join(hfHome, 'hub'))}`,
    });
  }
  if (legacyCache && hubCache && !same(legacyCache, hubCache)) {
    out.push({
      check: 'env.legacy-hub-cache-ignored',
      severity: 'warning',
      message: `HUGGINGFACE_HUB_CACHE (${legacyCache}) is ignored because HF_HUB_CACHE (${hubCache}) is set`,
      fix: 'unset HUGGINGFACE_HUB_CACHE',
    });
  } else if (legacyCache && !hubCache) {
    out.push({
      check: 'env.legacy-hub-cache',
      severity: 'info',
      message: `HUGGINGFACE_HUB_CACHE is a deprecated name (still honoured): the cache is ${dirs.hf}`,
      fix: `export HF_HUB_CACHE=${shq(legacyCache)}; unset HUGGINGFACE_HUB_CACHE`,
    });
  }
  const tfCache = set(env, 'TRANSFORMERS_CACHE');
  if (tfCache && !same(tfCache, dirs.hf)) {
    out.push({
      check: 'env.transformers-cache',
      severity: 'warning',
      message: `TRANSFORMERS_CACHE (${tfCache}) differs from the hub cache (${dirs.hf}): transformers 4.x looks for models there, huggingface_hub and hubcache download into ${dirs.hf}`,
      fix: `export HF_HUB_CACHE=${shq(tfCache)}; unset TRANSFORMERS_CACHE`,
    });
  }
  out.push(...offlineFindings(env));
  if (envBool(env.HF_HUB_DISABLE_SYMLINKS)) {
    out.push({
      check: 'env.symlinks-disabled',
      severity: 'info',
      message:
        'HF_HUB_DISABLE_SYMLINKS is on: snapshots hold copies, so a file shared by several revisions takes its space once per revision',
    });
  }
  const msDomain = set(env, 'MODELSCOPE_DOMAIN');
  const msEndpoint = set(env, 'MODELSCOPE_ENDPOINT');
  if (
    msDomain &&
    msEndpoint &&
    !msEndpoint
      .replace(/^https?:\/\//, '')
      .replace(/\/+$/, '')
      .startsWith(msDomain.replace(/^https?:\/\//, '').replace(/\/+$/, ''))
  ) {
    out.push({
      check: 'env.modelscope-endpoint-conflict',
      severity: 'warning',
      message: `MODELSCOPE_ENDPOINT (${msEndpoint}) and MODELSCOPE_DOMAIN (${msDomain}) disagree: modelscope ≤1.37 reads only MODELSCOPE_DOMAIN, ≥1.38 and hubcache prefer MODELSCOPE_ENDPOINT`,
      fix: 'Set both to the same host, or unset MODELSCOPE_DOMAIN',
    });
  }
  if (!same(used.hf, dirs.hf)) {
    out.push({
      check: 'env.cache-dir-differs',
      severity: 'info',
      path: used.hf,
      message: `hubcache uses ${used.hf} (--cache-dir); huggingface_hub in this environment uses ${dirs.hf}`,
      fix: `export HF_HUB_CACHE=${shq(used.hf)} to share one cache`,
    });
  }
  if (!same(used.modelscope, dirs.modelscope)) {
    out.push({
      check: 'env.ms-cache-dir-differs',
      severity: 'info',
      path: used.modelscope,
      message: `hubcache keeps ModelScope repos in ${used.modelscope}; the modelscope SDK in this environment uses ${dirs.modelscope}`,
      fix: `export MODELSCOPE_CACHE=${shq(used.modelscope)} to share one cache`,
    });
  }
  return out;
}

/** HF_HUB_OFFLINE wins over TRANSFORMERS_OFFLINE whenever it is non-empty, even when it says 0. */
function offlineFindings(env: Env): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  const hub = set(env, 'HF_HUB_OFFLINE');
  const tf = set(env, 'TRANSFORMERS_OFFLINE');
  for (const [k, v] of [
    ['HF_HUB_OFFLINE', hub],
    ['TRANSFORMERS_OFFLINE', tf],
  ] as const) {
    if (v !== undefined && !BOOL_WORDS.has(v.trim().toUpperCase())) {
      out.push({
        check: 'env.offline-value',
        severity: 'warning',
        message: `${k}=${JSON.stringify(v)} is read as false: only 1, ON, YES and TRUE count`,
        fix: `export ${k}=1`,
      });
    }
  }
  if (hub !== undefined && tf !== undefined && envBool(hub) !== envBool(tf)) {
    const effective = envBool(hub);
    out.push({
      check: 'env.offline-conflict',
      severity: 'warning',
      message: effective
        ? `HF_HUB_OFFLINE=${hub} and TRANSFORMERS_OFFLINE=${tf} disagree; HF_HUB_OFFLINE wins: offline`
        : `HF_HUB_OFFLINE=${hub} masks TRANSFORMERS_OFFLINE=${tf}: a non-empty HF_HUB_OFFLINE wins, so the hubs ARE contacted`,
      fix: effective
        ? 'unset TRANSFORMERS_OFFLINE'
        : 'export HF_HUB_OFFLINE=1 (or unset HF_HUB_OFFLINE to let TRANSFORMERS_OFFLINE decide)',
    });
  }
  if (envBool(hub ?? tf)) {
    out.push({
      check: 'env.offline',
      severity: 'info',
      message: `Offline mode is on (${hub !== undefined ? 'HF_HUB_OFFLINE' : 'TRANSFORMERS_OFFLINE'}): nothing is downloaded. hubcache applies it to ModelScope too; the modelscope SDK ignores it (it only has local_files_only=True)`,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// File systems

export interface MountEntry {
  device: string;
  mountPoint: string;
  fsType: string;
  options: string[];
}

/** `/proc/mounts` lines: `device mountpoint fstype options 0 0`, with `\040`-style octal escapes. */
export function parseMounts(text: string): MountEntry[] {
  const unescape = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const [device, mountPoint, fsType, options] = line.trim().split(/\s+/);
    if (!device || !mountPoint || !fsType) continue;
    out.push({
      device: unescape(device),
      mountPoint: unescape(mountPoint),
      fsType,
      options: (options ?? '').split(','),
    });
  }
  return out;
}

/** The mount holding `p` (an absolute, link-resolved path): the longest mount point above it, the last mounted winning. */
export function mountFor(p: string, mounts: readonly MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === '/' || p === mp || p.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

const RAM_FS = new Set(['tmpfs', 'ramfs']);
const NETWORK_FS = new Set([
  'nfs',
  'nfs4',
  'cifs',
  'smb3',
  'smbfs',
  'fuse.sshfs',
  'afs',
  '9p',
  'fuse.s3fs',
  'fuse.gcsfuse',
  'fuse.ossfs',
  'fuse.rclone',
]);

/** Folders that systems clean up (at boot, or by age with systemd-tmpfiles). */
export const TEMP_DIRS: readonly string[] = ['/tmp', '/var/tmp'];

/** A cache on RAM, in a temp folder, in a container's writable layer, or on a network file system. */
export function storageFindings(
  role: string,
  dir: string,
  mount: MountEntry | undefined,
  inContainer: boolean,
  tempDirs: readonly string[] = TEMP_DIRS,
): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  const hint = `Point ${role.startsWith('ModelScope') ? 'MODELSCOPE_CACHE' : 'HF_HUB_CACHE'} at a persistent disk, e.g. export ${role.startsWith('ModelScope') ? 'MODELSCOPE_CACHE=$HOME/.cache/modelscope/hub' : 'HF_HUB_CACHE=$HOME/.cache/huggingface/hub'}`;
  if (mount && RAM_FS.has(mount.fsType)) {
    out.push({
      check: 'fs.tmpfs',
      severity: 'error',
      path: dir,
      message: `${role} ${dir} is on ${mount.fsType} (${mount.mountPoint}), i.e. in RAM: the cache vanishes after a restart and its size counts against memory`,
      fix: hint,
    });
  } else {
    const temp = tempDirs.find((t) => dir === t || dir.startsWith(`${t}/`));
    if (temp) {
      out.push({
        check: 'fs.temp-dir',
        severity: 'warning',
        path: dir,
        message: `${role} ${dir} is under ${temp}: it may vanish after a restart, and systemd-tmpfiles deletes files unused for ${temp === '/var/tmp' ? '30' : '10'} days`,
        fix: hint,
      });
    }
  }
  if (mount && inContainer && mount.fsType === 'overlay') {
    out.push({
      check: 'fs.container-layer',
      severity: 'warning',
      path: dir,
      message: `${role} ${dir} is in the container's writable layer (overlay on ${mount.mountPoint}, no volume mounted over it): the cache vanishes when the container is recreated`,
      fix: `Mount a volume there, e.g. docker run -v hubcache:${shq(dir)} ... (or -v $HOME/.cache/huggingface:/root/.cache/huggingface)`,
    });
  }
  if (mount && NETWORK_FS.has(mount.fsType)) {
    out.push({
      check: 'fs.network',
      severity: 'info',
      path: dir,
      message: `${role} ${dir} is on a network file system (${mount.fsType}): file locks may not exclude other machines, and scans are slow`,
    });
  }
  return out;
}

export interface DirProbe {
  /** The folder exists (else the checks apply to its nearest existing parent). */
  exists: boolean;
  /** The folder checked: the dir itself, or its nearest existing parent. */
  checked: string;
  writable: boolean;
  ownerUid?: number;
}

export function permissionFindings(
  role: string,
  dir: string,
  probe: DirProbe,
  uid: number | undefined,
): DoctorFinding[] {
  const where = probe.exists ? dir : `${probe.checked} (the nearest existing parent of ${dir})`;
  if (!probe.writable) {
    return [
      {
        check: 'fs.not-writable',
        severity: 'error',
        path: dir,
        message: `${role}: cannot write to ${where}${probe.ownerUid !== undefined ? ` (owned by uid ${probe.ownerUid})` : ''}: downloads will fail`,
        fix:
          probe.ownerUid !== undefined && uid !== undefined && probe.ownerUid !== uid
            ? `sudo chown -R $(id -u):$(id -g) ${shq(probe.checked)}`
            : `chmod u+w ${shq(probe.checked)}, or use a writable cache folder`,
      },
    ];
  }
  if (uid === undefined || probe.ownerUid === undefined || probe.ownerUid === uid) return [];
  if (uid === 0) {
    return [
      {
        check: 'fs.root-in-user-cache',
        severity: 'warning',
        path: dir,
        message: `Running as root in ${where}, which belongs to uid ${probe.ownerUid}: new files will be owned by root and that user cannot update or clean them`,
        fix: `Run as that user, or afterwards: chown -R ${probe.ownerUid} ${shq(probe.checked)}`,
      },
    ];
  }
  return [
    {
      check: 'fs.other-owner',
      severity: 'warning',
      path: dir,
      message: `${where} is owned by uid ${probe.ownerUid}, not you (uid ${uid}): files each of you creates may be unwritable for the other`,
      fix: `Use your own cache (export HF_HUB_CACHE=$HOME/.cache/huggingface/hub), or share it through a group: chgrp -R <group> ${shq(probe.checked)} && chmod -R g+rwXs ${shq(probe.checked)}`,
    },
  ];
}

/** Repo folders (or their blobs) that the current user cannot write (a `sudo` download, another user). */
export function repoPermissionFindings(
  unwritable: ReadonlyArray<{ repo: string; path: string; ownerUid: number }>,
): DoctorFinding[] {
  return unwritable.map((u) => ({
    check: 'fs.repo-not-writable',
    severity: 'error' as const,
    repo: u.repo,
    path: u.path,
    message: `${u.repo}: ${u.path} is owned by uid ${u.ownerUid} and not writable: updating or cleaning this repo will fail`,
    fix: `sudo chown -R $(id -u):$(id -g) ${shq(u.path)}`,
  }));
}

export interface SpaceThresholds {
  errorBelowBytes: number;
  warnBelowBytes: number;
}
export const DEFAULT_SPACE_THRESHOLDS: SpaceThresholds = { errorBelowBytes: GiB, warnBelowBytes: 10 * GiB };

export function spaceFindings(
  role: string,
  dir: string,
  freeBytes: number | undefined,
  totalBytes: number | undefined,
  t: SpaceThresholds = DEFAULT_SPACE_THRESHOLDS,
): DoctorFinding[] {
  if (freeBytes === undefined) return [];
  const of = totalBytes ? ` of ${formatBytes(totalBytes)}` : '';
  const fix =
    'Free space with `hubcache prune` and `hubcache gc --max-size <size>`, or move the cache to a bigger disk';
  if (freeBytes < t.errorBelowBytes)
    return [
      {
        check: 'fs.space',
        severity: 'error',
        path: dir,
        message: `${role}: only ${formatBytes(freeBytes)} free${of} on the file system of ${dir}`,
        fix,
      },
    ];
  if (freeBytes < t.warnBelowBytes)
    return [
      {
        check: 'fs.space',
        severity: 'warning',
        path: dir,
        message: `${role}: ${formatBytes(freeBytes)} free${of} on the file system of ${dir}: a large model will not fit`,
        fix,
      },
    ];
  return [{ check: 'fs.space', severity: 'info', path: dir, message: `${role}: ${formatBytes(freeBytes)} free${of}` }];
}

export function symlinkFindings(
  role: string,
  dir: string,
  supported: boolean | undefined,
  disabledByEnv: boolean,
): DoctorFinding[] {
  if (supported !== false || disabledByEnv) return [];
  return [
    {
      check: 'fs.no-symlinks',
      severity: 'warning',
      path: dir,
      message: `${role} ${dir} does not support symlinks (FAT/exFAT, some network shares): huggingface_hub stores every revision's files as full copies`,
      fix: 'Move the cache to a file system with symlinks, or accept copies with export HF_HUB_DISABLE_SYMLINKS_WARNING=1',
    },
  ];
}

export function lockingFindings(available: boolean, reason: string | undefined): DoctorFinding[] {
  if (available)
    return [
      {
        check: 'locks.flock',
        severity: 'info',
        message: 'File locks: flock(2) addon loaded (mutual exclusion with huggingface_hub and modelscope)',
      },
    ];
  return [
    {
      check: 'locks.flock',
      severity: 'warning',
      message: `File locks: ${reason ?? 'the flock addon is not loaded'}; hubcache falls back to lock files that Python clients do not see, so both may download the same file at once (never corrupting it)`,
      fix: 'npm rebuild hubcache (needs a C compiler and python3 for node-gyp)',
    },
  ];
}

/** Model folders of the modelscope ≤1.22 layout (`<root>/<owner>/<name>/.msc`), which newer tools do not see. */
export function oldMsLayoutFindings(root: string, oldDirs: readonly string[]): DoctorFinding[] {
  return oldDirs.map((d) => {
    const rel = path.relative(root, d);
    return {
      check: 'ms.old-layout',
      severity: 'warning' as const,
      path: d,
      message: `${d} uses the modelscope ≤1.22 layout: hubcache and modelscope ≥1.38 do not see it (1.23-1.37 move it on their next download of that model)`,
      fix: `mkdir -p ${shq(path.join(root, 'models', path.dirname(rel)))} && mv ${shq(d)} ${shq(path.join(root, 'models', rel))}`,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// The scan: damage and leftovers

interface WarningRule {
  severity: Severity;
  what: string;
  fix?: (repo: string | undefined, warnings: readonly CacheWarning[]) => string;
}

/** `hubcache <verb> [REPO] [rest]`, for fixes that name the repo when there is one. */
const cmd = (verb: string, repo: string | undefined, rest = ''): string =>
  ['hubcache', verb, repo, rest].filter(Boolean).join(' ');

const WARNING_RULES: Partial<Record<WarningKind, WarningRule>> = {
  'broken-link': { severity: 'error', what: 'broken link(s): the file is gone', fix: (r) => cmd('verify', r, '--fix') },
  corrupted: {
    severity: 'error',
    what: 'unreadable repo folder(s)',
    fix: (r) => (r ? `${cmd('rm', r)} (then download it again)` : 'inspect it, then `hubcache rm` it'),
  },
  'missing-commit': {
    severity: 'warning',
    what: 'ref(s) pointing to a missing commit (huggingface_hub reports the repo as corrupted)',
    fix: (r, ws) => {
      const refs = ws.map((w) => w.path.split(`${path.sep}refs${path.sep}`).pop() ?? '').filter(Boolean);
      return r && refs.length > 0
        ? `${refs.map((ref) => cmd('download', r, `--revision ${shq(ref)}`)).join('; ')} (fetches it again), or delete ${ws.length === 1 ? 'the ref file' : 'those ref files'}`
        : 'delete the ref file';
    },
  },
  incomplete: {
    severity: 'warning',
    what: 'partial download(s) left by interrupted downloads',
    fix: () => 'hubcache prune --incomplete-older-than 1h (partials still being written are kept)',
  },
  'missing-file': { severity: 'warning', what: 'file(s) listed in .msc but missing', fix: (r) => cmd('download', r) },
  untracked: {
    severity: 'warning',
    what: 'file(s) without a .msc entry: modelscope ≤1.37 downloads them again',
    fix: untrackedFix,
  },
  'orphan-blob': { severity: 'info', what: 'blob(s) no snapshot uses', fix: () => 'hubcache prune' },
  'stale-temp': { severity: 'info', what: 'leftover temp file(s)', fix: () => 'hubcache prune' },
  'outside-link': { severity: 'info', what: 'link(s) to files outside the cache' },
  foreign: { severity: 'info', what: 'entries that belong to no known layout (left alone)' },
};

/**
 * Files copied into a model folder by hand. In the SDK's own (masked) folder, a download adopts
 * those whose sha256 matches and fetches the rest. In any other folder, such as the readable name
 * `Qwen2.5-0.5B` that users copy into instead of `Qwen2___5-0___5B`, a download would fetch
 * everything again beside the copy: `import` moves the verified files into place instead.
 */
function untrackedFix(repo: string | undefined, ws: readonly CacheWarning[]): string {
  const dir = ws[0]?.repoDir;
  const { id } = repo ? parseRepoRef(repo) : { id: undefined };
  if (!dir || !id || path.basename(dir) === maskModelName(id.slice(id.indexOf('/') + 1))) {
    return `${cmd('download', repo)} (adopts files whose sha256 matches, without downloading)`;
  }
  const why = "checks each file's sha256, moves it into the SDK's folder and leaves the dotted name as its link";
  return `hubcache import ${shq(dir)} --repo ${repo} (${why})`;
}

/** Warnings whose own message says more than their path. */
const SELF_EXPLAINING = new Set(['corrupted', 'missing-commit']);

/**
 * The scan's warnings, one finding per (kind, repo). `inUse` says which partial downloads are
 * still being written: those are reported as info, not as leftovers.
 */
export function scanFindings(
  warnings: readonly CacheWarning[],
  inUse: ReadonlySet<string> = new Set(),
): DoctorFinding[] {
  const groups = new Map<string, CacheWarning[]>();
  for (const w of warnings) {
    const kind = w.kind === 'incomplete' && inUse.has(w.path) ? 'in-progress' : w.kind;
    const key = `${kind}\0${w.repo ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), w]);
  }
  const out: DoctorFinding[] = [];
  for (const [key, ws] of groups) {
    const [kind, repo] = key.split('\0') as [string, string];
    const first = ws[0] as CacheWarning;
    const bytes = ws.reduce((s, w) => s + (w.size ?? 0), 0);
    const size = bytes > 0 ? ` (${formatBytes(bytes)})` : '';
    const named = (w: CacheWarning): string => (w.repoDir ? path.relative(w.repoDir, w.path) : w.path);
    const sample = ws.slice(0, 3).map(named).join(', ') + (ws.length > 3 ? `, and ${ws.length - 3} more` : '');
    const f: DoctorFinding =
      kind === 'in-progress'
        ? {
            check: 'cache.in-progress',
            severity: 'info',
            message: `${repo || 'cache'}: ${ws.length} download(s) in progress${size}: ${sample}`,
          }
        : (() => {
            const rule = WARNING_RULES[kind as WarningKind] ?? { severity: 'info' as const, what: kind };
            const finding: DoctorFinding = {
              check: `cache.${kind}`,
              severity: rule.severity,
              message: `${repo || 'cache'}: ${ws.length} ${rule.what}${size}: ${ws.length === 1 && SELF_EXPLAINING.has(kind) ? first.message : sample}`,
            };
            if (rule.fix) finding.fix = rule.fix(repo || undefined, ws);
            return finding;
          })();
    if (repo) f.repo = repo;
    f.path = first.repoDir ?? first.path;
    out.push(f);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Completeness of one cached revision

/** What a revision check can read: a file of the revision (undefined if absent or unreadable). */
export type ReadRevisionFile = (repoPath: string) => Promise<string | undefined>;

const WEIGHTS_BIN_RE = /^(?:pytorch_model|diffusion_pytorch_model|adapter_model|model)(?:[-.][^/]*)?\.bin$/;
const dirOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const joinRepo = (dir: string, name: string): string => path.posix.normalize(dir ? `${dir}/${name}` : name);

function revLabel(repo: CachedRepo, rev: CachedRevision): string {
  return `${repo.key}@${repo.layout === 'hf' ? rev.commit.slice(0, 12) : rev.commit}`;
}

function downloadFix(repo: CachedRepo, rev: CachedRevision, includes: string[]): string {
  return `hubcache download ${repo.key} --revision ${rev.commit} ${includes.map((i) => `--include ${shq(i)}`).join(' ')}`.trim();
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * A diffusers pipeline whose `model_index.json` lists components whose folders are missing, and
 * sharded checkpoints whose `*.index.json` names shards that are not there. `upstream` (the
 * revision's full file list, when known) keeps a component the repo itself lacks from being
 * reported as ours to fix.
 */
export async function completenessFindings(
  repo: CachedRepo,
  rev: CachedRevision,
  read: ReadRevisionFile,
  upstream?: readonly RemoteFile[],
): Promise<DoctorFinding[]> {
  const out: DoctorFinding[] = [];
  const present = new Set(rev.files.map((f) => f.path));
  const label = revLabel(repo, rev);
  const upstreamPaths = upstream ? new Set(upstream.map((f) => f.path)) : undefined;

  if (present.has('model_index.json')) {
    const index = parseJson(await read('model_index.json'));
    if (index && typeof index === 'object' && !Array.isArray(index)) {
      const missing: string[] = [];
      for (const [name, value] of Object.entries(index as Record<string, unknown>)) {
        if (
          name.startsWith('_') ||
          !Array.isArray(value) ||
          value.length !== 2 ||
          value[0] === null ||
          value[1] === null
        )
          continue;
        if (name.includes('/') || name === '..' || name === '.') continue;
        const has = (paths: Iterable<string>): boolean => [...paths].some((p) => p.startsWith(`${name}/`));
        if (has(present)) continue;
        if (upstreamPaths && !has(upstreamPaths)) continue; // the repo itself lacks it: not a cache problem
        missing.push(name);
      }
      if (missing.length > 0) {
        out.push({
          check: 'repo.diffusers-components',
          severity: 'warning',
          repo: repo.key,
          path: rev.path,
          message: `${label}: diffusers pipeline without the folder(s) of component(s) listed in model_index.json: ${missing.join(', ')} (from_pretrained fails offline)`,
          fix: downloadFix(
            repo,
            rev,
            missing.map((m) => `${m}/*`),
          ),
        });
      }
    }
  }

  for (const indexPath of [...present].filter((p) => /(?:^|\/)[^/]+\.index\.json$/.test(p)).sort()) {
    const index = parseJson(await read(indexPath)) as { weight_map?: unknown } | undefined;
    const map = index?.weight_map;
    if (!map || typeof map !== 'object') continue;
    const shards = [
      ...new Set(
        Object.values(map as Record<string, unknown>).filter(
          (v): v is string => typeof v === 'string' && !v.startsWith('/') && !v.includes('\\'),
        ),
      ),
    ];
    const missing = shards.map((s) => joinRepo(dirOf(indexPath), s)).filter((s) => !leavesBase(s) && !present.has(s));
    if (missing.length === 0) continue;
    if (missing.length === shards.length) {
      out.push({
        check: 'repo.unused-index',
        severity: 'info',
        repo: repo.key,
        path: rev.path,
        message: `${label}: ${indexPath} is cached but none of its ${shards.length} shard(s) (left out on purpose?)`,
      });
      continue;
    }
    out.push({
      check: 'repo.missing-shards',
      severity: 'error',
      repo: repo.key,
      path: rev.path,
      message: `${label}: sharded checkpoint ${indexPath} names ${shards.length} shard(s), ${missing.length} missing: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''} (loading fails)`,
      fix: downloadFix(repo, rev, missing),
    });
  }
  return out;
}

/** Only pickled `.bin` weights cached in a folder where the repo also has `.safetensors`. */
export function binOnlyFindings(
  repo: CachedRepo,
  rev: CachedRevision,
  upstream: readonly RemoteFile[] | undefined,
): DoctorFinding[] {
  if (!upstream) return [];
  const present = rev.files.map((f) => f.path);
  const folders = new Set(present.filter((p) => WEIGHTS_BIN_RE.test(path.posix.basename(p))).map(dirOf));
  const out: DoctorFinding[] = [];
  for (const dir of [...folders].sort()) {
    const inDir = (p: string): boolean => dirOf(p) === dir;
    if (present.some((p) => inDir(p) && p.endsWith('.safetensors'))) continue;
    const upstreamSafe = upstream.filter((f) => inDir(f.path) && f.path.endsWith('.safetensors')).map((f) => f.path);
    if (upstreamSafe.length === 0) continue;
    const where = dir ? `${dir}/` : 'the repo root';
    out.push({
      check: 'repo.bin-only',
      severity: 'warning',
      repo: repo.key,
      path: rev.path,
      message: `${revLabel(repo, rev)}: only pickled .bin weights are cached in ${where}, but the repo has ${upstreamSafe.length} .safetensors file(s) there: transformers/diffusers prefer those (online they download them; offline they load the slower, code-executing .bin)`,
      fix: downloadFix(repo, rev, [dir ? `${dir}/*.safetensors` : '*.safetensors']),
    });
  }
  return out;
}

/** HF: files trees/<commit>.json lists that the snapshot lacks: an offline snapshot_download without patterns fails. */
export function treeCompletenessFindings(
  repo: CachedRepo,
  rev: CachedRevision,
  tree: readonly RemoteFile[] | undefined,
): DoctorFinding[] {
  if (!tree) return [];
  const present = new Set(rev.files.map((f) => f.path));
  const absent = tree.filter((f) => !present.has(f.path));
  if (absent.length === 0) return [];
  return [
    {
      check: 'repo.partial-snapshot',
      severity: 'info',
      repo: repo.key,
      path: rev.path,
      message: `${revLabel(repo, rev)}: ${absent.length} of ${tree.length} file(s) not cached (${formatBytes(absent.reduce((s, f) => s + f.size, 0))}); offline, snapshot_download without the same patterns raises IncompleteSnapshotError`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Duplicates across caches

/**
 * Identical files stored more than once: exactly known when both are HF LFS blobs (named by
 * sha256), "likely" when only sizes match (ModelScope files carry no hash on disk; only files of
 * at least `likelyMinSize` bytes count, small files collide by chance).
 */
export function duplicateFindings(
  inodes: readonly CachedInode[],
  also: readonly string[],
  likelyMinSize: number,
): DoctorFinding[] {
  const collisions = sizeCollisions(inodes);
  let exactBytes = 0;
  let exactFiles = 0;
  const caches = new Set<string>();
  for (const g of sameContent(collisions.flat())) {
    exactFiles += g.length - 1;
    exactBytes += (g.length - 1) * (g[0] as CachedInode).size;
    for (const i of g) for (const c of i.copies) caches.add(c.cache);
  }
  let likelyBytes = 0;
  let likelyFiles = 0;
  for (const g of collisions) {
    if (g.every((i) => i.sha256) || (g[0] as CachedInode).size < likelyMinSize) continue;
    likelyFiles += g.length - 1;
    likelyBytes += (g.length - 1) * (g[0] as CachedInode).size;
    for (const i of g) for (const c of i.copies) caches.add(c.cache);
  }
  const out: DoctorFinding[] = [];
  const cmd = `hubcache dedup${also.map((a) => ` --also ${shq(a)}`).join('')}`;
  if (exactFiles + likelyFiles > 0) {
    const parts = [];
    if (exactFiles > 0)
      parts.push(
        `${exactFiles} redundant cop${exactFiles === 1 ? 'y' : 'ies'} of identical files (${formatBytes(exactBytes)})`,
      );
    if (likelyFiles > 0)
      parts.push(`${likelyFiles} more (${formatBytes(likelyBytes)}) have a same-size twin and are probably identical`);
    out.push({
      check: 'cache.duplicates',
      severity: 'warning',
      message: `${parts.join('; ')}, across ${[...caches].sort().join(', ')}`,
      fix: `${cmd} --dry-run, then ${cmd}`,
    });
  }
  const far = sameContent(
    inodes.filter((i) => i.size > 0),
    true,
  ).filter((g) => new Set(g.map((i) => i.dev)).size > 1);
  if (far.length > 0) {
    const bytes = far.reduce((s, g) => s + (new Set(g.map((i) => i.dev)).size - 1) * (g[0] as CachedInode).size, 0);
    out.push({
      check: 'cache.duplicates-cross-fs',
      severity: 'info',
      message: `${far.length} file(s) (${formatBytes(bytes)}) are stored on two file systems; hard links cannot join them`,
    });
  }
  return out;
}

export function sortFindings(findings: DoctorFinding[]): DoctorFinding[] {
  const rank: Record<Severity, number> = { error: 0, warning: 1, info: 2 };
  return findings.sort(
    (a, b) => rank[a.severity] - rank[b.severity] || (a.check < b.check ? -1 : a.check > b.check ? 1 : 0),
  );
}
