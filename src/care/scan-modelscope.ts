// Scan of ModelScope's cache layouts (spec modelscope-hub.md §1.2-§2, §5 scan-cache), with the
// path rules of src/layouts/modelscope-cache.ts:
//   legacy ≤1.37:  <root>/models/<owner>/<name with . → ___>/<files> + .msc/.mdl/.mv
//   new ≥1.38:     <v2root>/models/<owner>--<name>/snapshots/<revision>/<files>
//   partials:      the SDK's <root>/models/._____temp/<owner>/<name>/..., its `<file>.incomplete`,
//                  and hubcache's `.hubcache-partial/` inside a repo folder
import fs from 'node:fs/promises';
import path from 'node:path';
import { formatRepoRef } from '../hubs/repo-ref.js';
import type { RepoType } from '../hubs/types.js';
import {
  MDL_FILE,
  ModelScopeCache,
  MS_PARTIAL_DIR,
  MSC_FILE,
  msSnapshotsDir,
  MV_FILE,
  parseMv,
} from '../layouts/modelscope-cache.js';
import { decodeMdl, decodeMsc, type MscEntry } from '../util/pickle.js';
import { isLocked } from '../locks/flock.js';
import { isAtomicTemp } from '../util/fs.js';
import { isInside, JUNK_NAMES, readdirSafe, statMany, walkFiles, type WalkEntry } from './fs-walk.js';
import {
  repoOf,
  revisionOf,
  type CachedFile,
  type CachedRepo,
  type CachedRevision,
  type CacheWarning,
} from './model.js';

const TYPE_DIRS: Array<[dir: string, type: RepoType]> = [
  ['models', 'model'],
  ['datasets', 'dataset'],
];
/** The legacy SDK's staging folder under the models root (five underscores). */
export const MS_TEMP_DIR = '._____temp';
/** Bookkeeping files of a legacy repo folder (not repo content). */
const LEGACY_META = new Set([MSC_FILE, MDL_FILE, MV_FILE, '.msc.corrupted', '.mdl.corrupted']);
/** The SDK's own temp name (its `.msc` rewrite, `tmpXXXX.tmp`); hubcache's are util/fs isAtomicTemp. */
const SDK_TEMP_RE = /^tmp[^/]*\.tmp$/;

/** `a___b` on disk is `a.b` on the hub (docs/protocols.md §ModelScope repo folder). */
const unmaskName = (name: string): string => name.split('___').join('.');

/**
 * Whether a ModelScope client holds a lock on this repo: the per-repo lock
 * `<root>/.lock/<owner>___<name>` (legacy snapshots, `.msc` rewrites) or one of the per-file
 * locks `<v2root>/.lock/model_<owner>___<name>_<path>.lock` (modelscope_hub and hubcache downloads).
 */
export async function msRepoLocked(root: string, v2Root: string, id: string): Promise<boolean> {
  const cache = new ModelScopeCache(root, v2Root);
  if (await isLocked(cache.lockPath(id)).catch(() => false)) return true;
  // The per-file lock of path "" is the common prefix of every file lock of the repo.
  const prefix = path.basename(cache.v2LockPath(id, '')).slice(0, -'.lock'.length);
  const lockDir = path.dirname(cache.v2LockPath(id, ''));
  for (const e of await readdirSafe(lockDir)) {
    if (!e.name.startsWith(prefix) || !e.name.endsWith('.lock')) continue;
    if (await isLocked(path.join(lockDir, e.name)).catch(() => false)) return true;
  }
  return false;
}

/** A folder that vanishes or cannot be read mid-scan becomes a warning, never an exception. */
async function tolerant<T>(dir: string, warnings: CacheWarning[], read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    warnings.push({ kind: 'corrupted', path: dir, message: `Cannot read ${dir}: ${(err as Error).message}` });
    return undefined;
  }
}

/**
 * Every ModelScope repo under `root` (legacy layout, and the new one when `v2Root` is the same
 * folder) and under `v2Root` (new layout only).
 */
export async function scanModelScopeRoot(
  root: string,
  v2Root: string,
  warnings: CacheWarning[],
): Promise<CachedRepo[]> {
  const bases =
    path.resolve(root) === path.resolve(v2Root)
      ? [{ base: root, legacy: true }]
      : [
          { base: root, legacy: true },
          { base: v2Root, legacy: false },
        ];
  const repos: CachedRepo[] = [];
  for (const { base, legacy } of bases) {
    for (const [typeDir, type] of TYPE_DIRS) {
      const dir = path.join(base, typeDir);
      for (const e of await readdirSafe(dir)) {
        if (JUNK_NAMES.has(e.name)) continue;
        const abs = path.join(dir, e.name);
        if (e.name.includes('--') && e.isDirectory()) {
          const repo = await tolerant(abs, warnings, () => scanSnapshotsRepo(base, abs, type, e.name, warnings));
          if (repo) repos.push(repo);
        } else if (!legacy) {
          continue; // another tool's folder: the legacy side of this base is not ours to judge
        } else if (e.name === MS_TEMP_DIR) {
          await scanSdkTempDir(abs, type, warnings);
        } else if (e.isDirectory()) {
          repos.push(...(await scanOwnerDir(base, abs, type, e.name, warnings)));
        } else if (!e.isSymbolicLink()) {
          warnings.push({ kind: 'foreign', path: abs, message: `Unexpected entry in the ModelScope cache: ${abs}` });
        }
      }
    }
  }
  return repos;
}

async function scanOwnerDir(
  root: string,
  ownerDir: string,
  type: RepoType,
  owner: string,
  warnings: CacheWarning[],
): Promise<CachedRepo[]> {
  const out: CachedRepo[] = [];
  for (const e of await readdirSafe(ownerDir)) {
    if (JUNK_NAMES.has(e.name)) continue;
    const abs = path.join(ownerDir, e.name);
    if (e.isSymbolicLink()) {
      // The SDK's convenience link `<owner>/<name.with.dots>` → the masked folder: not a repo of its own.
      const target = path.resolve(ownerDir, await fs.readlink(abs).catch(() => ''));
      if (path.dirname(target) !== ownerDir) {
        const kind = isInside(root, target) ? 'foreign' : 'outside-link';
        warnings.push({ kind, path: abs, message: `Unexpected link in the ModelScope cache: ${abs} → ${target}` });
      }
      continue;
    }
    if (!e.isDirectory()) {
      warnings.push({ kind: 'foreign', path: abs, message: `Unexpected file in the ModelScope cache: ${abs}` });
      continue;
    }
    const repo = await tolerant(abs, warnings, () => scanLegacyRepo(root, abs, type, owner, e.name, warnings));
    if (repo) out.push(repo);
  }
  return out;
}

async function scanLegacyRepo(
  root: string,
  dir: string,
  type: RepoType,
  owner: string,
  masked: string,
  warnings: CacheWarning[],
): Promise<CachedRepo> {
  const [msc, mdl, mv, dirStat] = await Promise.all([
    fs.readFile(path.join(dir, MSC_FILE)).catch(() => undefined),
    fs.readFile(path.join(dir, MDL_FILE)).catch(() => undefined),
    fs.readFile(path.join(dir, MV_FILE), 'utf8').catch(() => undefined),
    fs.stat(dir),
  ]);
  let id = `${owner}/${unmaskName(masked)}`;
  try {
    if (mdl) id = unmaskName(decodeMdl(mdl).id);
  } catch {
    /* an unreadable .mdl only costs us the SDK's spelling of the id */
  }
  const key = formatRepoRef({ hub: 'modelscope', type, id });
  const warn = repoWarner(warnings, key);
  let index: MscEntry[] | undefined;
  if (msc) {
    try {
      index = decodeMsc(msc);
    } catch {
      warn({
        kind: 'corrupted',
        path: path.join(dir, MSC_FILE),
        message: `Unreadable .msc index of ${key}: the SDK will download every file again`,
      });
    }
  }
  const revisionName = (mv !== undefined && parseMv(mv).revision) || 'master';
  const entries = (await walkFiles(dir)).filter((e) => e.rel.includes('/') || !LEGACY_META.has(e.rel));
  const files = await contentFiles(root, entries, warn);
  const byPath = new Map(index?.map((m) => [m.Path, m.Revision]));
  // One warning per file, with or without an index, so reports give the real count and names.
  const why = msc ? 'Not in .msc' : `No .msc index in ${dir}`;
  for (const f of files) {
    const rev = byPath.get(f.path);
    if (rev !== undefined) f.msRevision = rev;
    else if (!msc || index) {
      const message = `${why} (modelscope ≤1.37 downloads it again): ${f.path}`;
      warn({ kind: 'untracked', path: f.linkPath, repoDir: dir, size: f.size, message });
    }
  }
  const present = new Set(files.map((f) => f.path));
  const missing = (index ?? []).filter((m) => !present.has(m.Path)).map((m) => m.Path);
  for (const m of missing)
    warn({ kind: 'missing-file', path: path.join(dir, m), message: `Listed in .msc but missing: ${m}` });

  const revision = revisionOf(revisionName, dir, files, missing, dirStat);
  revision.refs = [revisionName];
  return repoOf(
    {
      hub: 'modelscope',
      type,
      id,
      key,
      layout: 'ms-legacy',
      path: dir,
      root,
      refs: { [revisionName]: revisionName },
      revisions: [revision],
    },
    dirStat,
  );
}

async function scanSnapshotsRepo(
  root: string,
  dir: string,
  type: RepoType,
  folder: string,
  warnings: CacheWarning[],
): Promise<CachedRepo> {
  const i = folder.indexOf('--');
  const id = `${folder.slice(0, i)}/${folder.slice(i + 2)}`;
  const key = formatRepoRef({ hub: 'modelscope', type, id });
  const warn = repoWarner(warnings, key);
  const dirStat = await fs.stat(dir);
  await partialsIn(path.join(dir, MS_PARTIAL_DIR), warn);
  const snapsDir = msSnapshotsDir(dir);
  const revisions: CachedRevision[] = [];
  const refs: Record<string, string> = {};
  for (const e of await readdirSafe(snapsDir)) {
    if (JUNK_NAMES.has(e.name)) continue;
    const snap = path.join(snapsDir, e.name);
    if (!e.isDirectory()) {
      warn({ kind: 'foreign', path: snap, message: `Not a snapshot folder: ${snap}` });
      continue;
    }
    const files = await contentFiles(root, await walkFiles(snap), warn);
    const rev = revisionOf(e.name, snap, files, [], await fs.stat(snap));
    rev.refs = [e.name]; // the folder is named after the requested revision, so it is its own ref
    refs[e.name] = e.name;
    revisions.push(rev);
  }
  revisions.sort((a, b) => (a.commit < b.commit ? -1 : 1));
  return repoOf(
    { hub: 'modelscope', type, id, key, layout: 'ms-snapshots', path: dir, root, refs, revisions },
    dirStat,
  );
}

function repoWarner(warnings: CacheWarning[], key: string): (w: Omit<CacheWarning, 'repo'>) => void {
  return (w) => {
    warnings.push({ ...w, repo: key });
  };
}

/** The SDK's staging folder: its files are partial downloads of the repo named by their path. */
async function scanSdkTempDir(tempRoot: string, type: RepoType, warnings: CacheWarning[]): Promise<void> {
  const entries = await walkFiles(tempRoot);
  const stats = await statMany(entries.map((e) => e.abs));
  entries.forEach((e, i) => {
    const [owner, name, ...rest] = e.rel.split('/');
    const st = stats[i];
    const w: CacheWarning = {
      kind: 'incomplete',
      path: e.abs,
      size: st?.size ?? 0,
      lastModifiedMs: st?.mtimeMs ?? 0,
      message: `Partial download: ${e.abs}`,
    };
    if (owner && name && rest.length > 0) w.repo = formatRepoRef({ hub: 'modelscope', type, id: `${owner}/${name}` });
    warnings.push(w);
  });
}

/** hubcache's partial folder: everything in it is unfinished work. */
async function partialsIn(dir: string, warn: (w: Omit<CacheWarning, 'repo'>) => void): Promise<void> {
  const entries = await walkFiles(dir);
  const stats = await statMany(entries.map((e) => e.abs));
  entries.forEach((e, i) => {
    const st = stats[i];
    warn({
      kind: 'incomplete',
      path: e.abs,
      size: st?.size ?? 0,
      lastModifiedMs: st?.mtimeMs ?? 0,
      message: `Partial download: ${e.abs}`,
    });
  });
}

/**
 * The repo files of a ModelScope folder (each file is its own blob). Partial downloads and
 * temp files are reported and left out.
 */
async function contentFiles(
  root: string,
  entries: WalkEntry[],
  warn: (w: Omit<CacheWarning, 'repo'>) => void,
): Promise<CachedFile[]> {
  const stats = await statMany(entries.map((e) => e.abs));
  const files: CachedFile[] = [];
  await Promise.all(
    entries.map(async (e, i) => {
      const st = stats[i];
      const base = e.rel.slice(e.rel.lastIndexOf('/') + 1);
      const info = { size: st?.size ?? 0, lastModifiedMs: st?.mtimeMs ?? 0 };
      if (e.rel.startsWith(`${MS_PARTIAL_DIR}/`) || e.rel.endsWith('.incomplete')) {
        warn({ kind: 'incomplete', path: e.abs, ...info, message: `Partial download: ${e.abs}` });
      } else if (isAtomicTemp(base) || SDK_TEMP_RE.test(base)) {
        warn({ kind: 'stale-temp', path: e.abs, ...info, message: `Leftover temp file: ${e.abs}` });
      } else if (!st) {
        warn({ kind: 'broken-link', path: e.abs, message: `Broken symlink: ${e.abs}` });
      } else if (st.isFile()) {
        const real = e.kind === 'symlink' ? await fs.realpath(e.abs).catch(() => e.abs) : e.abs;
        const file: CachedFile = {
          path: e.rel,
          linkPath: e.abs,
          blobPath: real,
          size: st.size,
          lastAccessedMs: st.atimeMs,
          lastModifiedMs: st.mtimeMs,
        };
        if (!isInside(root, real)) {
          file.outside = true;
          warn({
            kind: 'outside-link',
            path: e.abs,
            size: st.size,
            message: `Points outside the cache (${real}): ${e.abs}`,
          });
        }
        files.push(file);
      }
    }),
  );
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}
