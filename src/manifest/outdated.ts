// `outdated`: which locked entries' branches or tags point somewhere else upstream now. Entries
// pinned to a commit can never be outdated and cost no request; an HF entry costs one small
// request; a ModelScope entry (no commit ids) costs a file listing, compared file by file.
import { ManifestError } from '../errors.js';
import { isCommitHash } from '../hubs/repo-ref.js';
import type { EndpointsOption, HubName, RepoType } from '../hubs/types.js';
import { runPool } from '../util/pool.js';
import type { ProjectOptions } from './lock.js';
import { byCodePoint, diffFiles, noChanges, readLockfile, specOf, type FileChanges } from './lockfile.js';
import { loadManifest } from './manifest.js';
import { headCommit, resolveEntry, type EndpointAt } from './remote.js';
import type { LockedModel } from './schema.js';

export interface OutdatedEntry {
  alias: string;
  hub: HubName;
  type: RepoType;
  repo: string;
  /** The branch or tag the manifest asks for. */
  revision: string;
  /** What hubcache.lock pins. */
  locked: string;
  /** What the revision points to now (for ModelScope: the same name, with different files). */
  latest: string;
  /** File differences, when they were computed (ModelScope always; HF only with `details`). */
  changes?: FileChanges;
  /** Where `latest` was seen, when endpoints were given for this hub (each is compared with the lock). */
  endpoint?: string;
}

export interface OutdatedOptions extends ProjectOptions {
  /** Only these aliases (default: every locked entry). */
  aliases?: readonly string[];
  /** Also list which files changed (HF: one tree listing per outdated entry). */
  details?: boolean;
  /**
   * Endpoints to check each entry on, per hub (default: the cache's own); an entry is reported
   * once per endpoint that serves something else than the lock. A function gets the entries' hubs.
   */
  endpoints?: EndpointsOption;
}

/** Locked entries whose branch/tag moved upstream; empty when everything is current. */
export async function outdated(opts: OutdatedOptions): Promise<OutdatedEntry[]> {
  const manifest = opts.loaded ?? (await loadManifest(opts));
  const lockfile = await readLockfile(manifest.lockFile);
  if (!lockfile)
    throw new ManifestError(`No hubcache.lock beside ${manifest.file}`, { hint: 'Run `hubcache lock` first.' });
  const aliases =
    opts.aliases && opts.aliases.length > 0 ? [...opts.aliases] : Object.keys(lockfile.models).sort(byCodePoint);
  for (const a of aliases) {
    if (!lockfile.models[a])
      throw new ManifestError(`"${a}" is not in hubcache.lock`, { hint: 'Run `hubcache lock` to add it.' });
  }
  const given =
    typeof opts.endpoints === 'function'
      ? opts.endpoints(new Set(aliases.map((a) => (lockfile.models[a] as LockedModel).hub)))
      : opts.endpoints;
  // at undefined: the cache's own endpoint. The first endpoint given for a hub gets the token.
  const jobs = aliases.flatMap((alias) => {
    const list = given?.[(lockfile.models[alias] as LockedModel).hub] ?? [];
    const ats: Array<EndpointAt | undefined> = list.map((endpoint) => ({ endpoint, primary: list[0] as string }));
    if (ats.length === 0) ats.push(undefined);
    return ats.map((at) => ({ alias, at }));
  });
  const found = await runPool(jobs, 8, async ({ alias, at }) => {
    const m = lockfile.models[alias] as LockedModel;
    if (isCommitHash(m.revision)) return undefined;
    const spec = specOf(m);
    const head = await headCommit(opts.cache, spec, opts.signal, at);
    if (head !== undefined && head === m.commit) return undefined;
    const base: OutdatedEntry = {
      alias,
      hub: m.hub,
      type: m.type,
      repo: m.repo,
      revision: m.revision,
      locked: m.commit,
      latest: head ?? m.commit,
    };
    if (at) base.endpoint = at.endpoint;
    if (head !== undefined && !opts.details) return base;
    const now = await resolveEntry(opts.cache, spec, opts.signal, at);
    const changes = diffFiles(m.files, now.files);
    if (now.commit === m.commit && noChanges(changes)) return undefined;
    return { ...base, latest: now.commit, changes };
  });
  return found.filter((e): e is OutdatedEntry => e !== undefined);
}
