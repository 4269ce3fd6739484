// The remote side of a manifest entry: what its revision resolves to now, and which files of
// that snapshot it selects. Uses the Cache's hub clients (no download, nothing written).
import type { ProjectCache } from './project-cache.js';
import { selectFiles } from '../download/hf.js';
import { OfflineMissError } from '../errors.js';
import type { EndpointAt } from '../hubs/registry.js';
import { formatRepoRef, isCommitHash } from '../hubs/repo-ref.js';
import type { RemoteFile, RepoRef, Snapshot } from '../hubs/types.js';
import type { EntrySpec, LockedFile } from './schema.js';

export function refOf(spec: EntrySpec, revision = spec.revision): RepoRef {
  return { hub: spec.hub, type: spec.type, id: spec.repo, revision };
}

function assertOnline(cache: ProjectCache, spec: EntrySpec): void {
  if (spec.hub === 'hf' && cache.config.hf.offline) {
    throw new OfflineMissError(`Cannot resolve ${formatRepoRef(refOf(spec))} while offline`, [], {
      hint: 'Locking and checking for updates need the hub; unset HF_HUB_OFFLINE / drop --offline.',
    });
  }
}

export type { EndpointAt };

async function snapshotOf(
  cache: ProjectCache,
  spec: EntrySpec,
  signal?: AbortSignal,
  at?: EndpointAt,
): Promise<Snapshot> {
  assertOnline(cache, spec);
  const ref = refOf(spec);
  return cache.client(spec.hub, at).snapshot(ref, spec.revision, signal);
}

export function lockedFileOf(f: RemoteFile): LockedFile {
  const out: LockedFile = { size: f.size };
  if (f.sha256) out.sha256 = f.sha256;
  if (f.gitOid) out.gitOid = f.gitOid;
  if (f.msRevision) out.fileRevision = f.msRevision;
  return out;
}

/** The commit an entry resolves to now (on `at`, default the cache's endpoint), and its selected files as locked. */
export async function resolveEntry(
  cache: ProjectCache,
  spec: EntrySpec,
  signal?: AbortSignal,
  at?: EndpointAt,
): Promise<{ commit: string; files: Record<string, LockedFile> }> {
  const snap = await snapshotOf(cache, spec, signal, at);
  const files = Object.create(null) as Record<string, LockedFile>;
  for (const f of selectFiles(snap.files, { include: spec.include ?? [], exclude: spec.exclude ?? [] }))
    files[f.path] = lockedFileOf(f);
  return { commit: snap.commit, files };
}

/**
 * HF only: the commit a branch/tag points to now, with one small request (no tree listing).
 * Undefined when the hub has no commit ids (ModelScope), so callers fall back to resolveEntry.
 */
export async function headCommit(
  cache: ProjectCache,
  spec: EntrySpec,
  signal?: AbortSignal,
  at?: EndpointAt,
): Promise<string | undefined> {
  if (spec.hub !== 'hf') return undefined;
  if (isCommitHash(spec.revision)) return spec.revision;
  assertOnline(cache, spec);
  return (await cache.client('hf', at).repoInfo(refOf(spec), spec.revision, signal)).sha;
}
