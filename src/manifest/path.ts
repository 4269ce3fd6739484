// `path`: where a locked model (or one of its files) is on disk, for shell scripts. Reads the
// lock and the disk only; fails when the model is not installed rather than printing a path
// that does not exist.
import { EntryNotFoundError, ManifestError, OfflineMissError } from '../errors.js';
import type { ProjectOptions } from './lock.js';
import { readLockfile } from './lockfile.js';
import { loadManifest } from './manifest.js';
import { downloadEntry } from './install.js';
import type { LockedModel } from './schema.js';
import { isFile } from '../util/fs.js';
import { parseRepoRef } from '../hubs/repo-ref.js';

export interface ModelPathOptions extends ProjectOptions {
  /** An alias of hubcache.json, or the repo id of one of its entries (`org/name`, `modelscope:org/name`). */
  alias: string;
  /** A repo path inside the model; default: the model's folder. */
  file?: string;
}

/** The snapshot folder / model folder / localDir of a locked, installed entry, or the path of one of its files. */
export async function modelPath(opts: ModelPathOptions): Promise<string> {
  const manifest = opts.loaded ?? (await loadManifest(opts));
  const lockfile = await readLockfile(manifest.lockFile);
  const alias = aliasFor(lockfile?.models ?? {}, opts.alias);
  const m: LockedModel | undefined = lockfile?.models[alias];
  if (!m) {
    const known = Object.keys(lockfile?.models ?? {});
    throw new ManifestError(`"${opts.alias}" is not in ${manifest.lockFile}`, {
      hint: manifest.models[opts.alias]
        ? 'Run `hubcache install` to lock and install it.'
        : `Known aliases: ${known.join(', ') || 'none'}.`,
    });
  }
  if (opts.file !== undefined && !m.files[opts.file]) {
    throw new EntryNotFoundError(
      `${opts.file} is not one of the files hubcache.lock pins for "${opts.alias}"`,
      undefined,
      undefined,
      {
        hint: "Check the name, or widen the entry's include patterns and run `hubcache install`.",
      },
    );
  }
  const notInstalled = (cause?: unknown): OfflineMissError =>
    new OfflineMissError(
      `"${opts.alias}" is not installed${opts.file ? ` (${opts.file})` : ''}`,
      opts.file ? [opts.file] : [],
      {
        hint: 'Run `hubcache install`.',
        ...(cause ? { cause } : {}),
      },
    );
  let res;
  try {
    // An offline dry run: resolves the on-disk location through the hub's layout, writes nothing.
    res = await downloadEntry(opts.cache, manifest, m, { offline: true, dryRun: true, signal: opts.signal });
  } catch (err) {
    if (err instanceof OfflineMissError) throw notInstalled(err);
    throw err;
  }
  const files = opts.file !== undefined ? res.files.filter((f) => f.path === opts.file) : res.files;
  for (const f of files) if (!(await isFile(f.localPath))) throw notInstalled();
  return opts.file !== undefined ? (files[0]?.localPath ?? res.path) : res.path;
}

/** The alias itself, else the one entry locking that repo id (an id locked by two entries is ambiguous). */
function aliasFor(models: Record<string, LockedModel>, key: string): string {
  if (models[key] || !key.includes('/')) return key;
  let ref;
  try {
    ref = parseRepoRef(key);
  } catch {
    return key;
  }
  const hubGiven = /^[a-z]+:/.test(key.trim());
  const typeGiven = /^(?:[a-z]+:(?:\/\/)?)?(?:models|datasets|spaces|model|dataset|space)\/[^/]+\//.test(key.trim());
  const hits = Object.entries(models).filter(
    ([, m]) =>
      m.repo === ref.id &&
      (!hubGiven || m.hub === ref.hub) &&
      (!typeGiven || m.type === ref.type) &&
      (ref.revision === undefined || m.revision === ref.revision),
  );
  if (hits.length > 1) {
    throw new ManifestError(`${key} is locked by several entries: ${hits.map(([a]) => a).join(', ')}`, {
      hint: 'Give the alias instead.',
    });
  }
  return hits[0]?.[0] ?? key;
}
