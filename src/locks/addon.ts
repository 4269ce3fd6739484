// The flock(2) N-API addon (native/flock.c, built by `npm install`): found from src/ (tsx) and
// dist/ alike, loaded once; why it did not load is kept for `doctor`.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface FlockAddon {
  flock(fd: number, exclusive: boolean, nonBlocking: boolean): boolean;
  unlock(fd: number): void;
}

let addonState: { addon: FlockAddon } | { error: string } | undefined;

/** The package root is the first ancestor holding binding.gyp: works from src/ (tsx) and dist/. */
function findPackageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The addon, loaded on first use; undefined when it is not built or does not load. */
export function loadAddon(): FlockAddon | undefined {
  if (addonState === undefined) {
    const root = findPackageRoot();
    const addonPath = root === undefined ? undefined : join(root, 'build', 'Release', 'flock.node');
    try {
      if (addonPath === undefined) throw new Error('package root (binding.gyp) not found');
      const loaded: unknown = createRequire(import.meta.url)(addonPath);
      if (!isFlockAddon(loaded)) throw new Error(`${addonPath} does not export flock/unlock`);
      addonState = { addon: loaded };
    } catch (err) {
      // First line only: require() appends a multi-line "Require stack".
      const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
      addonState = { error: `${message} (run \`npm rebuild hubcache\`, or \`npm run install\` in a checkout)` };
    }
  }
  return 'addon' in addonState ? addonState.addon : undefined;
}

function isFlockAddon(value: unknown): value is FlockAddon {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.flock === 'function' && typeof v.unlock === 'function';
}

/** Why the addon did not load, once loadAddon() was tried; undefined when it loaded. */
export function addonLoadError(): string | undefined {
  return addonState !== undefined && 'error' in addonState ? addonState.error : undefined;
}
