// The layout of a `hubcache pack` archive, shared by pack and unpack. A plain tar whose member
// names mirror the cache layouts under one prefix per layout, so `tar -x` alone already gives
// usable folders:
//   hf/models--org--name/{blobs/<etag>, snapshots/<commit>/<path> → ../../blobs/<etag>,
//                         refs/<ref>, trees/<commit>.json}
//   ms/models/<owner>/<name___>/{<path>, .msc, .mdl, .mv}           (modelscope ≤1.37 layout)
//   msv2/models/<owner>--<name>/snapshots/<revision>/<path>         (modelscope ≥1.38 layout)
//   hubcache-pack.json                                              (last: the manifest)
// The manifest lists every member with its size and sha256 (and HF etag), so unpack can verify
// everything before it commits anything.
import path from 'node:path';
import { UnsafePathError } from '../errors.js';
import { isCommitHash } from '../hubs/repo-ref.js';
import type { HubName, RepoType } from '../hubs/types.js';
import { parseRepoFolderName, repoFolderName } from '../layouts/hf-cache.js';
import { maskModelName, splitMsModelId } from '../layouts/modelscope-cache.js';
import { assertSafeRepoPath } from '../util/safe-path.js';
import type { RepoLayout } from './model.js';

export const PACK_MANIFEST = 'hubcache-pack.json';
export const PACK_FORMAT = 'hubcache-pack';
export const PACK_VERSION = 1;

export interface PackedRepo {
  key: string;
  hub: HubName;
  type: RepoType;
  id: string;
  layout: RepoLayout;
  /** Archive folder of the repo (see archivePrefix). */
  prefix: string;
  /** HF: commits and the refs pointing at them. ModelScope: the revision name(s). */
  revisions: Array<{ commit: string; refs: string[] }>;
}

export interface ManifestEntry {
  name: string;
  type: 'file' | 'symlink';
  size?: number;
  sha256?: string;
  /** HF blobs: the blob name (sha256 of an LFS file, git sha1 otherwise), checked too. */
  etag?: string;
  target?: string;
}

export interface PackManifest {
  format: typeof PACK_FORMAT;
  version: typeof PACK_VERSION;
  createdAt: string;
  creator: string;
  repos: PackedRepo[];
  entries: ManifestEntry[];
}

const HF_BLOB_RE = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

/** Where a repo lives inside the archive; the same function names it on both sides. */
export function archivePrefix(r: { hub: HubName; type: RepoType; id: string; layout: RepoLayout }): string {
  if (r.layout === 'hf') return `hf/${repoFolderName(r.type, r.id)}`;
  const typeDir = r.type === 'dataset' ? 'datasets' : 'models';
  const { owner, name } = splitMsModelId(r.id);
  return r.layout === 'ms-legacy'
    ? `ms/${typeDir}/${owner}/${maskModelName(name)}`
    : `msv2/${typeDir}/${owner}--${name}`;
}

/** What a member is, from its name alone (after it passed `assertSafeMemberName`). */
export type MemberRole =
  | { kind: 'hf-blob'; prefix: string; etag: string }
  | { kind: 'hf-snapshot'; prefix: string; commit: string; repoPath: string }
  | { kind: 'hf-ref'; prefix: string; ref: string }
  | { kind: 'hf-tree'; prefix: string; commit: string }
  | { kind: 'ms-file'; prefix: string; repoPath: string }
  | { kind: 'ms-meta'; prefix: string; file: '.msc' | '.mdl' | '.mv' }
  | { kind: 'msv2-file'; prefix: string; revision: string; repoPath: string }
  | { kind: 'manifest' };

/** Refuses a hostile member, by name (UnsafePathError: nothing is written). */
export function refuseMember(name: string, why: string): never {
  throw new UnsafePathError(`Refusing archive member ${JSON.stringify(name)}: ${why}`, {
    hint: 'This is not an archive written by `hubcache pack`, or it was tampered with; nothing was written.',
  });
}

/** Rejects absolute paths, `..`, backslashes, control characters, empty or `.` segments. */
export function assertSafeMemberName(name: string): string {
  try {
    return assertSafeRepoPath(name, 'archive member name');
  } catch (err) {
    if (err instanceof UnsafePathError) refuseMember(name, err.message.replace(/^.*\(([^)]*)\)$/, '$1'));
    throw err;
  }
}

/** The member's place in the layouts; anything that fits none of them is refused. */
export function classifyMember(name: string): MemberRole {
  assertSafeMemberName(name);
  if (name === PACK_MANIFEST) return { kind: 'manifest' };
  const parts = name.split('/');
  const [top] = parts;
  if (top === 'hf') {
    const [, folder, area, ...rest] = parts;
    if (!folder || !parseRepoFolderName(folder))
      refuseMember(name, 'not under an HF repo folder (hf/models--org--name/...)');
    const prefix = `hf/${folder}`;
    if (area === 'blobs' && rest.length === 1 && HF_BLOB_RE.test(rest[0] as string))
      return { kind: 'hf-blob', prefix, etag: rest[0] as string };
    if (area === 'snapshots' && rest.length >= 2 && isCommitHash(rest[0] as string))
      return { kind: 'hf-snapshot', prefix, commit: rest[0] as string, repoPath: rest.slice(1).join('/') };
    if (area === 'refs' && rest.length >= 1) return { kind: 'hf-ref', prefix, ref: rest.join('/') };
    if (area === 'trees' && rest.length === 1 && /^[0-9a-f]{40}\.json$/.test(rest[0] as string))
      return { kind: 'hf-tree', prefix, commit: (rest[0] as string).slice(0, 40) };
    return refuseMember(name, 'not a blob, snapshot entry, ref or tree listing of an HF repo');
  }
  if (top === 'ms') {
    const [, typeDir, owner, dir, ...rest] = parts;
    if ((typeDir !== 'models' && typeDir !== 'datasets') || !owner || !dir || rest.length === 0)
      refuseMember(name, 'not under a ModelScope repo folder (ms/models/<owner>/<name>/...)');
    const prefix = `ms/${typeDir}/${owner}/${dir}`;
    const repoPath = rest.join('/');
    if (repoPath === '.msc' || repoPath === '.mdl' || repoPath === '.mv')
      return { kind: 'ms-meta', prefix, file: repoPath };
    return { kind: 'ms-file', prefix, repoPath };
  }
  if (top === 'msv2') {
    const [, typeDir, folder, area, revision, ...rest] = parts;
    if (
      (typeDir !== 'models' && typeDir !== 'datasets') ||
      !folder?.includes('--') ||
      area !== 'snapshots' ||
      !revision ||
      rest.length === 0
    ) {
      refuseMember(
        name,
        'not a snapshot file of a ModelScope ≥1.38 repo (msv2/models/<owner>--<name>/snapshots/<rev>/...)',
      );
    }
    return { kind: 'msv2-file', prefix: `msv2/${typeDir}/${folder}`, revision: revision, repoPath: rest.join('/') };
  }
  return refuseMember(name, 'outside hf/, ms/ and msv2/');
}

/**
 * A symlink member is allowed only as an HF snapshot entry pointing (relatively) at a blob of the
 * same repo; returns that blob's member name.
 */
export function symlinkBlobTarget(name: string, target: string): string {
  const role = classifyMember(name);
  if (role.kind !== 'hf-snapshot') return refuseMember(name, 'symlinks are only allowed as HF snapshot entries');
  if (target.startsWith('/') || target.includes('\\') || target.includes('\0'))
    refuseMember(name, `its link target ${JSON.stringify(target)} is absolute`);
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), target));
  const blobsDir = `${role.prefix}/blobs/`;
  if (!resolved.startsWith(blobsDir) || !HF_BLOB_RE.test(resolved.slice(blobsDir.length)))
    refuseMember(name, `its link target ${JSON.stringify(target)} leaves the repo's blobs/ folder`);
  return resolved;
}

/** The relative link an HF snapshot entry holds: `../../blobs/<etag>` plus one `../` per sub-folder. */
export function blobLinkTarget(snapshotMember: string, blobMember: string): string {
  return path.posix.relative(path.posix.dirname(snapshotMember), blobMember);
}

const HEX40 = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSize = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * A `trees/<commit>.json` member must be the listing huggingface_hub and hubcache write
 * (format_version 1): safe repo paths, 40-hex blob ids, 64-hex LFS and Xet hashes, whole sizes.
 * The listing is inert in the cache, but a hostile one is refused like any hostile member.
 */
export function checkTreeListing(name: string, raw: Buffer): void {
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    refuseMember(name, 'the tree listing is not valid JSON');
  }
  if (!isRecord(doc) || doc.format_version !== 1 || !isRecord(doc.files)) {
    refuseMember(name, 'not a tree listing (format_version 1 with a "files" object)');
  }
  for (const [p, e] of Object.entries(doc.files)) {
    const bad = (why: string): never => refuseMember(name, `its entry ${JSON.stringify(p)} ${why}`);
    try {
      assertSafeRepoPath(p, 'tree listing path');
    } catch (err) {
      if (err instanceof UnsafePathError)
        bad(`is not a safe path inside the repo (${err.message.replace(/^.*\(([^)]*)\)$/, '$1')})`);
      throw err;
    }
    if (!isRecord(e)) return bad('is not an object');
    if (!isSize(e.size)) bad(`has a bad size ${JSON.stringify(e.size)}`);
    if (typeof e.blob_id !== 'string' || !HEX40.test(e.blob_id))
      bad(`has a blob id that is not 40 hex digits: ${JSON.stringify(e.blob_id)}`);
    if (e.lfs_sha256 !== undefined && (typeof e.lfs_sha256 !== 'string' || !HEX64.test(e.lfs_sha256)))
      bad('has a bad lfs_sha256');
    if (e.lfs_size !== undefined && !isSize(e.lfs_size)) bad(`has a bad lfs_size ${JSON.stringify(e.lfs_size)}`);
    if (e.xet_hash !== undefined && (typeof e.xet_hash !== 'string' || !HEX64.test(e.xet_hash)))
      bad('has a bad xet_hash');
  }
}
