// `scan(roots)`: the whole cache as a typed model (see model.ts). Never throws on a damaged
// cache: whatever cannot be read as its layout says becomes a warning.
import fs from 'node:fs/promises';
import path from 'node:path';
import { JUNK_NAMES, readdirSafe } from './fs-walk.js';
import type { CacheScan, CacheWarning, CachedRepo } from './model.js';
import { scanHfRepo } from './scan-hf.js';
import { MS_TEMP_DIR, scanModelScopeRoot } from './scan-modelscope.js';

export { HUBCACHE_DIR } from './paths.js';

/** Root entries that belong to the HF layout but are not repos. */
const HF_ROOT_META = new Set(['.locks', 'CACHEDIR.TAG']);
/** Root entries of the ModelScope layout, when both layouts share one folder. */
const MS_ROOT_ENTRIES = new Set(['models', 'datasets', '.lock', MS_TEMP_DIR]);

export interface CacheRoots {
  hf: string;
  /** ModelScope cache root with MODELSCOPE_CACHE semantics (legacy repos under `models/`). */
  modelscope: string;
  /** Base of modelscope ≥1.38's layout, when it is not `modelscope`. */
  modelscopeV2?: string;
}

export async function scan(roots: CacheRoots): Promise<CacheScan> {
  const warnings: CacheWarning[] = [];
  const [hfRepos, msRepos] = await Promise.all([
    scanHfRoot(roots, warnings),
    scanModelScopeRoot(roots.modelscope, roots.modelscopeV2 ?? roots.modelscope, warnings),
  ]);
  const repos = [...hfRepos, ...msRepos].sort((a, b) => (a.key.toLowerCase() < b.key.toLowerCase() ? -1 : 1));
  warnings.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { roots: { ...roots }, repos, warnings, size: repos.reduce((s, r) => s + r.size, 0), scannedAtMs: Date.now() };
}

async function scanHfRoot(roots: CacheRoots, warnings: CacheWarning[]): Promise<CachedRepo[]> {
  const root = roots.hf;
  const shared = [roots.modelscope, roots.modelscopeV2 ?? roots.modelscope].some(
    (r) => path.resolve(r) === path.resolve(root),
  );
  const entries = (await readdirSafe(root)).filter(
    (e) => !JUNK_NAMES.has(e.name) && !HF_ROOT_META.has(e.name) && !(shared && MS_ROOT_ENTRIES.has(e.name)),
  );
  const repos = await Promise.all(
    entries.map(async (e) => {
      const abs = path.join(root, e.name);
      const isDir =
        e.isDirectory() ||
        (e.isSymbolicLink() &&
          (await fs.stat(abs).then(
            (s) => s.isDirectory(),
            () => false,
          )));
      if (!isDir) {
        warnings.push({ kind: 'foreign', path: abs, message: `Not a cache repo folder: ${abs}` });
        return undefined;
      }
      try {
        return await scanHfRepo(root, e.name, warnings);
      } catch (err) {
        warnings.push({ kind: 'corrupted', path: abs, message: `Cannot read ${abs}: ${(err as Error).message}` });
        return undefined;
      }
    }),
  );
  return repos.filter((r): r is CachedRepo => r !== undefined);
}
