// The remote side of a manifest entry: what its revision resolves to now, and which files of
// that snapshot it selects. Uses the hub clients directly (no download, nothing written).
import type { Cache } from '../cache.js';
import { selectFiles } from '../download/hf.js';
import { OfflineMissError } from '../errors.js';
import { HfClient } from '../hubs/hf.js';
import { accessAt } from '../hubs/http.js';
import { ModelScopeClient } from '../hubs/modelscope.js';
import { formatRepoRef, isCommitHash } from '../hubs/repo-ref.js';
import type { RemoteFile, RepoRef, Snapshot } from '../hubs/types.js';
import type { EntrySpec, LockedFile } from './schema.js';

export function refOf(spec: EntrySpec, revision = spec.revision): RepoRef {
  return { hub: spec.hub, type: spec.type, id: spec.repo, revision };
}

function assertOnline(cache: Cache, spec: EntrySpec): void {
  if (spec.hub === 'hf' && cache.config.hf.offline) {
    throw new OfflineMissError(`Cannot resolve ${formatRepoRef(refOf(spec))} while offline`, [], {
      hint: 'Locking and checking for updates need the hub; unset HF_HUB_OFFLINE / drop --offline.',
    });
  }
}

/** `endpoint`: another endpoint than the cache's (a mirror), which gets no token. */
function hfClient(cache: Cache, endpoint?: string): HfClient {
  const hf = cache.config.hf;
  return new HfClient(accessAt(hf, endpoint ?? hf.endpoint));
}

async function snapshotOf(cache: Cache, spec: EntrySpec, signal: AbortSignal | undefined, endpoint?: string): Promise<Snapshot> {
  assertOnline(cache, spec);
  const ref = refOf(spec);
  if (spec.hub === 'modelscope') {
    const ms = cache.config.modelscope;
    return new ModelScopeClient(accessAt(ms, endpoint ?? ms.endpoint)).snapshot(ref, spec.revision, signal);
  }
  return hfClient(cache, endpoint).snapshot(ref, spec.revision, signal);
}

export function lockedFileOf(f: RemoteFile): LockedFile {
  const out: LockedFile = { size: f.size };
  if (f.sha256) out.sha256 = f.sha256;
  if (f.gitOid) out.gitOid = f.gitOid;
  if (f.msRevision) out.fileRevision = f.msRevision;
  return out;
}

/** The commit an entry resolves to now (on `endpoint`, default the cache's), and its selected files as the lock records them. */
export async function resolveEntry(cache: Cache, spec: EntrySpec, signal?: AbortSignal, endpoint?: string): Promise<{ commit: string; files: Record<string, LockedFile> }> {
  const snap = await snapshotOf(cache, spec, signal, endpoint);
  const files = Object.create(null) as Record<string, LockedFile>;
  for (const f of selectFiles(snap.files, { include: spec.include ?? [], exclude: spec.exclude ?? [] })) files[f.path] = lockedFileOf(f);
  return { commit: snap.commit, files };
}

/**
 * HF only: the commit a branch/tag points to now, with one small request (no tree listing).
 * Undefined when the hub has no commit ids (ModelScope), so callers fall back to resolveEntry.
 */
export async function headCommit(cache: Cache, spec: EntrySpec, signal?: AbortSignal, endpoint?: string): Promise<string | undefined> {
  if (spec.hub !== 'hf') return undefined;
  if (isCommitHash(spec.revision)) return spec.revision;
  assertOnline(cache, spec);
  return (await hfClient(cache, endpoint).repoInfo(refOf(spec), spec.revision, signal)).sha;
}
