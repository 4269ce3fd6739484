// What callers pass to a download and what they get back, for every hub and layout.
import type { RepoRef } from '../hubs/types.js';
import type { LinkMethod, LinkMode } from '../layouts/link-mode.js';

export type FileStatus = 'cached' | 'linked' | 'copied' | 'downloaded' | 'planned';

export interface PlannedFile {
  path: string;
  size: number;
  /** What happened (or, for a dry run, would happen) to this file. */
  status: FileStatus;
  /** Where the file is (or will be) on disk. */
  localPath: string;
  /** Local-dir files taken from the cache: how (`--link-mode`), and the bytes that were not copied. */
  linkMethod?: LinkMethod;
  savedBytes?: number;
  /** Taken from the other hub's layout in the same cache (same sha256), e.g. `HF cache`: not fetched. */
  reusedFrom?: string;
}

export type ProgressEvent =
  | {
      type: 'plan';
      repo: string;
      revision: string;
      commit: string;
      files: PlannedFile[];
      totalBytes: number;
      downloadBytes: number;
    }
  | { type: 'file-progress'; path: string; bytes: number; total: number; resumedBytes: number }
  | { type: 'file-done'; path: string; size: number; status: FileStatus }
  | { type: 'warning'; message: string }
  | { type: 'done'; path: string; downloadedBytes: number; seconds: number };

export interface DownloadOptions {
  /** `org/name`, `hf:org/name@rev`, `modelscope:org/name`, or a parsed RepoRef. */
  repo: string | RepoRef;
  revision?: string;
  /** Explicit repo paths; when given, include/exclude are ignored (like `hf download`). */
  files?: string[];
  include?: string[];
  exclude?: string[];
  /** Plain files in this folder instead of the cache (`hf download --local-dir`). */
  localDir?: string;
  /**
   * With `localDir`, how files already in the cache get there (HF): `copy` (default, like
   * huggingface_hub), `reflink`, `hardlink`, `symlink`, or `auto` (reflink, else hard link, else copy).
   */
  linkMode?: LinkMode;
  /** Never touch the network (also from HF_HUB_OFFLINE through Cache.fromEnv()). */
  offline?: boolean;
  /** Resolve and plan only: list what would be fetched, write nothing. */
  dryRun?: boolean;
  /** Re-download even if cached. */
  forceDownload?: boolean;
  /** Concurrent files (default 8). */
  maxWorkers?: number;
  /**
   * ModelScope only: `v1` (default) writes the legacy layout `models/<owner>/<name___>` with its
   * `.msc` index, read by every modelscope version; `v2` writes modelscope ≥1.38's
   * `models/<owner>--<name>/snapshots/<revision>/`.
   */
  msLayout?: 'v1' | 'v2';
  /**
   * ModelScope legacy layout: record the revision in `.mv` even for an explicit `files` list, as a
   * snapshot download does (`install`: the lock's files are the whole selection). Default false, like the SDK.
   */
  recordRevision?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export interface DownloadResult {
  repo: RepoRef;
  revision: string;
  commit: string;
  /** Snapshot folder (cache mode) or the local dir. */
  path: string;
  files: PlannedFile[];
  downloadedBytes: number;
  /** True when the network was unreachable and the cached revision was used instead. */
  usedCacheFallback: boolean;
  /** Local dir: bytes not written twice thanks to `linkMode` (reflinks, hard links, symlinks). */
  savedBytes?: number;
}
