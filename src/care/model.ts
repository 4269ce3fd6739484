// The typed picture of a cache that every care command works from: repos (both hubs, all
// layouts), their revisions and files, sizes with shared blobs counted once, and everything
// that looks wrong (warnings), so `ls`, `verify`, `rm`, `prune` and `gc` share one scan.
import type { HubName, RepoType } from '../hubs/types.js';

/**
 * Where a repo lives on disk:
 * - `hf`: huggingface_hub's `models--org--name/{blobs,snapshots,refs}`;
 * - `ms-legacy`: modelscope ≤1.37's `models/<owner>/<name___>` with `.msc`/`.mdl`/`.mv`;
 * - `ms-snapshots`: modelscope ≥1.38's `models/<owner>--<name>/snapshots/<revision>/`.
 */
export type RepoLayout = 'hf' | 'ms-legacy' | 'ms-snapshots';

export interface CachedFile {
  /** Repo-relative POSIX path. */
  path: string;
  /** The entry in the snapshot (a symlink, or a real file in no-symlink mode / ModelScope). */
  linkPath: string;
  /** The file holding the bytes (the blob, or linkPath itself). Distinct blobs are counted once. */
  blobPath: string;
  size: number;
  lastAccessedMs: number;
  lastModifiedMs: number;
  /** `dev:ino` of blobPath when the scan stat'ed it: what hard-linked copies share (counted once). */
  inode?: string;
  /** ModelScope legacy: the per-file revision recorded in `.msc`. */
  msRevision?: string;
  /** The bytes live outside the cache root (a link out): removing the entry frees nothing here. */
  outside?: true;
}

export interface CachedRevision {
  /** HF: the 40-hex commit. ModelScope: the revision name (`master`, a tag), the only id it keeps. */
  commit: string;
  /** The snapshot folder (the repo folder itself for the legacy ModelScope layout). */
  path: string;
  /** Refs (branches, tags) pointing here; empty = detached. */
  refs: string[];
  files: CachedFile[];
  /** Snapshot entries whose blob is gone (broken symlinks), repo-relative. */
  missing: string[];
  /** Σ distinct blob sizes of this revision. */
  size: number;
  fileCount: number;
  lastAccessedMs: number;
  lastModifiedMs: number;
}

export interface CachedRepo {
  hub: HubName;
  type: RepoType;
  id: string;
  /** What users type to name it again: `org/name`, `datasets/org/name`, `modelscope:org/name`. */
  key: string;
  layout: RepoLayout;
  path: string;
  /** The cache root this repo belongs to (deletions stay inside it). */
  root: string;
  /** ref name → commit (as read, even when it points nowhere). */
  refs: Record<string, string>;
  revisions: CachedRevision[];
  /** Σ sizes of the distinct blobs referenced by any revision (orphans and partials excluded). */
  size: number;
  /** Distinct blobs. */
  fileCount: number;
  lastAccessedMs: number;
  lastModifiedMs: number;
}

export type WarningKind =
  /** A snapshot symlink whose blob is missing. */
  | 'broken-link'
  /** A ref naming a commit that has no snapshot folder, or holding something that is not a hash. */
  | 'missing-commit'
  /** A blob that no snapshot references (not counted in sizes). */
  | 'orphan-blob'
  /** A partial download left behind. */
  | 'incomplete'
  /** A temp file left by an interrupted atomic write (util/fs isAtomicTemp: `.main.1a2b3c4d.hctmp`...). */
  | 'stale-temp'
  /** Something that is not part of any known layout (kept, never deleted by prune). */
  | 'foreign'
  /** A symlink pointing outside the cache root (never followed for deletion). */
  | 'outside-link'
  /** A repo folder that cannot be read as its layout says (missing snapshots/, unreadable index...). */
  | 'corrupted'
  /** ModelScope legacy: a file on disk with no `.msc` entry (the SDK downloads it again). */
  | 'untracked'
  /** ModelScope legacy: a `.msc` entry whose file is gone. */
  | 'missing-file';

export interface CacheWarning {
  kind: WarningKind;
  message: string;
  path: string;
  /** The repo's key, when the problem is inside a repo. */
  repo?: string;
  /** The repo's folder, when the problem is inside a repo (names in reports are relative to it). */
  repoDir?: string;
  size?: number;
  lastModifiedMs?: number;
  /** The lock that guards this entry (a blob's `.locks/.../<etag>.lock`), when there is one. */
  lockPath?: string;
}

export interface CacheScan {
  /** HF and ModelScope roots (often the same folder). */
  roots: { hf: string; modelscope: string; modelscopeV2?: string };
  repos: CachedRepo[];
  warnings: CacheWarning[];
  /** Σ repo sizes. */
  size: number;
  scannedAtMs: number;
}

export function newestOf(values: Iterable<number>, fallback: number): number {
  let best = -Infinity;
  for (const v of values) if (v > best) best = v;
  return best === -Infinity ? fallback : best;
}

/** Σ sizes of distinct blobs among `files`, and how many there are. */
export function distinctBlobs(files: Iterable<CachedFile>): { size: number; count: number } {
  const seen = new Set<string>();
  let size = 0;
  for (const f of files) {
    if (seen.has(f.blobPath)) continue;
    seen.add(f.blobPath);
    size += f.size;
  }
  return { size, count: seen.size };
}

type Times = { atimeMs: number; mtimeMs: number };

/** A revision with its totals; times fall back to the folder's own when it holds no file (like Python). */
export function revisionOf(
  commit: string,
  dir: string,
  files: CachedFile[],
  missing: string[],
  folder: Times,
): CachedRevision {
  return {
    commit,
    path: dir,
    refs: [],
    files,
    missing,
    size: distinctBlobs(files).size,
    fileCount: files.length,
    lastAccessedMs: newestOf(
      files.map((f) => f.lastAccessedMs),
      folder.atimeMs,
    ),
    lastModifiedMs: newestOf(
      files.map((f) => f.lastModifiedMs),
      folder.mtimeMs,
    ),
  };
}

/** A repo with its totals over every revision (each distinct blob once). */
export function repoOf(
  base: Omit<CachedRepo, 'size' | 'fileCount' | 'lastAccessedMs' | 'lastModifiedMs'>,
  folder: Times,
): CachedRepo {
  const all = base.revisions.flatMap((r) => r.files);
  const { size, count } = distinctBlobs(all);
  return {
    ...base,
    size,
    fileCount: count,
    lastAccessedMs: newestOf(
      all.map((f) => f.lastAccessedMs),
      folder.atimeMs,
    ),
    lastModifiedMs: newestOf(
      all.map((f) => f.lastModifiedMs),
      folder.mtimeMs,
    ),
  };
}
