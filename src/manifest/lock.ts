// `lock` and `update`: bring hubcache.lock in line with hubcache.json. Like a package lock, an
// entry that is already locked with the same spec keeps its pin (no request at all); `update`
// re-resolves the entries it is given and reports which files changed.
import type { ProjectCache } from './project-cache.js';
import { UsageError } from '../errors.js';
import { isCommitHash } from '../hubs/repo-ref.js';
import { runPool } from '../util/pool.js';
import { byCodePoint, diffFiles, readLockfile, specOf, writeLockfile, type FileChanges } from './lockfile.js';
import { loadManifest, type Manifest, type ManifestLocation } from './manifest.js';
import { headCommit, resolveEntry } from './remote.js';
import {
  entrySpec,
  InvalidManifestError,
  LOCKFILE_VERSION,
  sameSpec,
  type LockedModel,
  type LockfileShape,
  type ManifestModel,
} from './schema.js';

/** What every project-level call takes: where the manifest is, which cache, and a cancel signal. */
export interface ProjectOptions extends ManifestLocation {
  cache: ProjectCache;
  signal?: AbortSignal;
  /** An already loaded manifest (skips finding and reading it). */
  loaded?: Manifest;
}

export type LockEntryStatus = 'unchanged' | 'added' | 'relocked' | 'updated' | 'removed';

export interface LockEntryResult {
  alias: string;
  /**
   * unchanged: pin kept (or re-resolved to the same thing); added: new in the manifest;
   * relocked: its spec changed in the manifest; updated: upstream moved; removed: gone from the manifest.
   */
  status: LockEntryStatus;
  /** Locked commit before and after (absent for added / removed). */
  from?: string;
  to?: string;
  /** File differences between the old and the new pin (only when there was an old pin). */
  changes?: FileChanges;
}

export interface LockResult {
  lockFile: string;
  lockfile: LockfileShape;
  /** False when the file already had exactly this content. */
  written: boolean;
  entries: LockEntryResult[];
}

export interface LockOptions extends ProjectOptions {
  /** Re-resolve these aliases even if their pin is current (`true`: all). Default: none. */
  update?: readonly string[] | true;
  /** Compute the result without writing hubcache.lock. */
  dryRun?: boolean;
  /** Entries resolved at once (default 8). */
  concurrency?: number;
}

/** Resolves every manifest entry that has no current pin to an exact commit and writes hubcache.lock. */
export async function lock(opts: LockOptions): Promise<LockResult> {
  const manifest = opts.loaded ?? (await loadManifest(opts));
  const old = await readLockfile(manifest.lockFile);
  const aliases = Object.keys(manifest.models).sort(byCodePoint);
  const wanted = opts.update === true ? new Set(aliases) : new Set(opts.update ?? []);
  for (const a of wanted) {
    if (!manifest.models[a])
      throw new UsageError(`No model "${a}" in ${manifest.file}`, {
        hint: `Known aliases: ${aliases.join(', ') || 'none'}.`,
      });
  }
  const next: LockfileShape = {
    lockfileVersion: LOCKFILE_VERSION,
    models: Object.create(null) as Record<string, LockedModel>,
  };
  const results = await runPool(aliases, opts.concurrency ?? 8, (alias) =>
    lockEntry(opts.cache, manifest, alias, old?.models[alias], wanted.has(alias), opts.signal),
  );
  const emptySelections: string[] = [];
  for (const { alias, entry } of results) {
    next.models[alias] = entry;
    if (Object.keys(entry.files).length === 0) emptySelections.push(alias);
  }
  if (emptySelections.length > 0) throw emptySelectionError(manifest, emptySelections, next);
  const entries = results.map((r) => r.result);
  for (const alias of Object.keys(old?.models ?? {}).sort(byCodePoint)) {
    if (!manifest.models[alias])
      entries.push({ alias, status: 'removed', from: (old?.models[alias] as LockedModel).commit });
  }
  const written = opts.dryRun ? false : await writeLockfile(manifest.lockFile, next);
  return { lockFile: manifest.lockFile, lockfile: next, written, entries };
}

export interface UpdateOptions extends ProjectOptions {
  /** Entries to move to what their branch/tag points to now (default: all). */
  aliases?: readonly string[];
  dryRun?: boolean;
}

/** Re-locks entries to their upstream branch/tag heads and reports what changed. */
export async function update(opts: UpdateOptions): Promise<LockResult> {
  return lock({ ...opts, update: opts.aliases && opts.aliases.length > 0 ? opts.aliases : true });
}

async function lockEntry(
  cache: ProjectCache,
  manifest: Manifest,
  alias: string,
  prev: LockedModel | undefined,
  refresh: boolean,
  signal: AbortSignal | undefined,
): Promise<{ alias: string; entry: LockedModel; result: LockEntryResult }> {
  const spec = entrySpec(manifest.models[alias] as ManifestModel);
  const current = prev !== undefined && sameSpec(spec, specOf(prev));
  if (current && (!refresh || isCommitHash(spec.revision))) {
    return { alias, entry: prev, result: { alias, status: 'unchanged', from: prev.commit, to: prev.commit } };
  }
  // HF: when the branch has not moved, the pin stands (one small request instead of a tree listing).
  if (current && (await headCommit(cache, spec, signal)) === prev.commit) {
    return { alias, entry: prev, result: { alias, status: 'unchanged', from: prev.commit, to: prev.commit } };
  }
  const resolved = await resolveEntry(cache, spec, signal);
  const entry: LockedModel = { ...spec, commit: resolved.commit, files: resolved.files };
  if (!prev) return { alias, entry, result: { alias, status: 'added', to: entry.commit } };
  const changes = diffFiles(prev.files, entry.files);
  const same =
    prev.commit === entry.commit && changes.added.length + changes.removed.length + changes.changed.length === 0;
  const status: LockEntryStatus = !current ? 'relocked' : same ? 'unchanged' : 'updated';
  return { alias, entry, result: { alias, status, from: prev.commit, to: entry.commit, changes } };
}

/** An entry whose include/exclude selects nothing is almost always a typo in a pattern. */
function emptySelectionError(manifest: Manifest, aliases: string[], next: LockfileShape): InvalidManifestError {
  return new InvalidManifestError(
    aliases.map((alias) => {
      const pos = manifest.positions[alias];
      const at = pos?.include ?? pos?.exclude ?? pos?.entry;
      const m = next.models[alias] as LockedModel;
      return {
        file: manifest.file,
        line: at?.line ?? 1,
        column: at?.column ?? 1,
        keyPath: `models.${alias}`,
        message: `"${alias}" selects no file of ${m.repo} at ${m.commit.slice(0, 12)}; check its include/exclude patterns`,
      };
    }),
    'Patterns are fnmatch globs on the full repo path: "*.safetensors", "onnx/*", "tokenizer*".',
  );
}
