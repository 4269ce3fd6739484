// Object keys of a hubcache bucket: one place that knows them, so an operator can read a bucket and
// every replica writes the same names. All keys sit under the PREFIX of `s3://BUCKET/PREFIX`.
//
//   blobs/sha256/<64 hex>                              content-addressed blob: HF LFS files, every ModelScope file
//   blobs/sha1/<40 hex>                                content-addressed blob: HF non-LFS files (git blob sha1)
//   meta/hf/<models--org--name>/commits/<commit>.json  what an immutable commit holds (tree: paths, sizes, etags)
//   meta/modelscope/<org>/<name>/revisions/<rev>.json  a ModelScope file list with per-file revisions
//   refs/hf/<models--org--name>/<branch or tag>.json   {"commit": "<40 hex>", "fetchedAt": "<ISO time>"}: the
//   refs/modelscope/<org>/<name>/<rev>.json              answer reused until fetchedAt + --metadata-ttl
//   leases/sha256/<hex>.json, leases/sha1/<hex>.json   who fills a blob now: {"holder", "address", "expiresAt", ...}
//   replicas/<replica id>.json                         a replica's heartbeat: address, startedAt, lastSeen, fills, counters
//   probe/<uuid>                                       the startup conditional-write probe (deleted after it)
//
// Blobs are written only whole and verified (a multipart upload is invisible until it completes), so a
// blob key that exists always holds the bytes its name promises. Metadata objects are small JSON.
import { UsageError } from '../errors.js';
import type { HubName, RepoType } from '../hubs/types.js';
import { repoFolderName } from '../layouts/hf-cache.js';
import { assertSafeRefName, assertSafeRepoPath } from '../util/safe-path.js';

export type BlobAlgorithm = 'sha256' | 'sha1';

/** What a `refs/...` object holds: the commit a branch or tag pointed to, and when upstream said so. */
export interface RefRecord {
  commit: string;
  /** ISO 8601 time of the upstream answer; the TTL counts from here. */
  fetchedAt: string;
  /** HF: upstream answered without a token (absent: gated, private or unknown; access is never shared). */
  public?: boolean;
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const SHA1_RE = /^[0-9a-f]{40}$/;

/** The hash a blob key names: 64 hex digits are a sha256, 40 a git blob sha1 (as in the HF cache's blobs/). */
export function blobAlgorithm(key: string): BlobAlgorithm {
  if (SHA256_RE.test(key)) return 'sha256';
  if (SHA1_RE.test(key)) return 'sha1';
  throw new UsageError(`not a blob key: ${JSON.stringify(key)} (expected 64 or 40 lowercase hex digits)`);
}

export function blobKey(key: string): string {
  return `blobs/${blobAlgorithm(key)}/${key}`;
}

export function leaseKey(key: string): string {
  return `leases/${blobAlgorithm(key)}/${key}.json`;
}

/** `replicas/<id>.json`: the heartbeat of one replica (cluster view on the dashboard). */
export function replicaKey(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id)) throw new UsageError(`not a replica id: ${JSON.stringify(id)}`);
  return `replicas/${id}.json`;
}

export const REPLICAS_PREFIX = 'replicas/';

export function probeKey(id: string): string {
  return `probe/${assertSafeRepoPath(id, 'probe id')}`;
}

function repoSegment(hub: HubName, type: RepoType, id: string): string {
  assertSafeRepoPath(id, 'repo id');
  if (hub === 'modelscope') {
    if (type !== 'model') throw new UsageError(`ModelScope repos in the store are models, not ${type}s`);
    return `modelscope/${id}`;
  }
  return `hf/${repoFolderName(type, id)}`;
}

/** `meta/hf/<models--org--name>/commits/<commit>.json`. */
export function commitMetaKey(type: RepoType, id: string, commit: string): string {
  if (!SHA1_RE.test(commit)) throw new UsageError(`not a commit hash: ${JSON.stringify(commit)}`);
  return `meta/${repoSegment('hf', type, id)}/commits/${commit}.json`;
}

/** `meta/modelscope/<org>/<name>/revisions/<rev>.json`. */
export function modelscopeRevisionMetaKey(id: string, revision: string): string {
  return `meta/${repoSegment('modelscope', 'model', id)}/revisions/${assertSafeRefName(revision)}.json`;
}

/** `refs/hf/<models--org--name>/<ref>.json` or `refs/modelscope/<org>/<name>/<ref>.json`. */
export function refKey(hub: HubName, type: RepoType, id: string, ref: string): string {
  return `refs/${repoSegment(hub, type, id)}/${assertSafeRefName(ref)}.json`;
}
