// What the project around the current folder pins in its hubcache.lock, as care targets
// (`hf:org/name@<commit>`, `modelscope:org/name`), so `prune` and `gc` run inside it keep them.
import path from 'node:path';
import type { ProjectPins } from '../care/select.js';
import { formatRepoRef } from '../hubs/repo-ref.js';
import { readLockfile } from './lockfile.js';
import { findManifest, LOCKFILE_NAME } from './manifest.js';

/** The pins of the nearest project's hubcache.lock (found like every project command finds it), if any. */
export async function projectLockPins(cwd: string = process.cwd()): Promise<ProjectPins | undefined> {
  const manifest = await findManifest(cwd);
  if (!manifest) return undefined;
  const lockFile = path.join(path.dirname(manifest), LOCKFILE_NAME);
  const lock = await readLockfile(lockFile);
  if (!lock) return undefined;
  const rel = path.relative(path.resolve(cwd), lockFile);
  const outside = rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
  const label = outside ? lockFile : `.${path.sep}${rel}`;
  const targets = Object.values(lock.models).map((m) => {
    // HF: the locked commit. ModelScope: the whole repo (its folders have no commit ids to pin).
    const pin = m.hub === 'hf' ? { revision: m.commit } : {};
    const ref = formatRepoRef({ hub: m.hub, type: m.type, id: m.repo, ...pin });
    return m.hub === 'hf' ? `hf:${ref}` : ref;
  });
  return { label, targets };
}
