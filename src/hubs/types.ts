// Shared vocabulary of the remote side: which repo, which revision, which files.
import type { ExpectedContent } from '../transfer/types.js';

export type HubName = 'hf' | 'modelscope';
export type RepoType = 'model' | 'dataset' | 'space';

/**
 * Endpoints to compare, per hub; or a function of the hubs of the repos a check ends up covering
 * (known only once its targets are resolved), for a caller whose endpoints depend on them.
 */
export type EndpointsByHub = Partial<Record<HubName, string[]>>;
export type EndpointsOption = EndpointsByHub | ((hubs: ReadonlySet<HubName>) => EndpointsByHub);

/** A repository on a hub. `revision` is what the user asked for (branch, tag, commit); absent = hub default. */
export interface RepoRef {
  hub: HubName;
  type: RepoType;
  /** `org/name` as the user spelled it (the HF cache is case-sensitive). */
  id: string;
  revision?: string;
}

/** One file of a snapshot, as the remote lists it. */
export interface RemoteFile {
  /** Repo-relative POSIX path, already validated as safe (see util/safe-path.ts). */
  path: string;
  size: number;
  /** Lowercase hex sha256 of the content, when the hub knows it (HF LFS files, every ModelScope file). */
  sha256?: string;
  /** HF only: git blob oid (sha1 of "blob <len>\0" + content). For LFS files it is the pointer's oid. */
  gitOid?: string;
  /** HF only: true for LFS/Xet files (etag = sha256), false for plain git files (etag = git oid). */
  lfs?: boolean;
  /** ModelScope only: the per-file `Revision` from the file list, stored verbatim in `.msc`. */
  msRevision?: string;
}

/**
 * The largest file size believed from a hub: 1 TiB, far above any hub's per-file limit (the HF
 * Hub serves files up to 50 GB over plain HTTP) and below every common file system's maximum, so
 * a bigger number is a broken or hostile server, not a file (and never reaches ftruncate).
 */
export const MAX_REMOTE_FILE_SIZE = 2 ** 40;

/** A size from a hub's JSON, when it is one: a whole number of bytes in [0, MAX_REMOTE_FILE_SIZE]. */
export function remoteSize(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_REMOTE_FILE_SIZE ? v : undefined;
}

/** The same for a size header (`X-Linked-Size`, `Content-Length`): decimal digits only. */
export function remoteSizeHeader(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,16}$/.test(v.trim()) ? remoteSize(Number(v.trim())) : undefined;
}

/** What a revision resolved to, with its complete file list. */
export interface Snapshot {
  repo: RepoRef;
  /** The revision string that was requested (or the hub default: `main` / `master`). */
  revision: string;
  /**
   * HF: the 40-hex commit. ModelScope: the resolved branch/tag name (the legacy SDK has no
   * commit-addressed downloads), which is also what the download URLs use.
   */
  commit: string;
  files: RemoteFile[];
  /** Unix seconds when the revision was created, when the hub says (ModelScope `CreatedAt`). */
  createdAt?: number;
  /** ISO date of the last change, when the hub says (HF `lastModified`). */
  lastModified?: string;
}

// Defined by the transfer layer (which knows nothing about hubs); re-exported for the hub clients.
export type { DownloadSource, ExpectedContent } from '../transfer/types.js';

/** HF blob name: the normalized etag (sha256 for LFS, git oid otherwise). */
export function hfEtagOf(file: RemoteFile): string {
  if (file.lfs && file.sha256) return file.sha256;
  if (file.gitOid) return file.gitOid;
  if (file.sha256) return file.sha256;
  throw new Error(`no etag known for ${file.path}`);
}

export function expectedContentOf(file: RemoteFile): ExpectedContent {
  const out: ExpectedContent = { size: file.size };
  if (file.sha256) out.sha256 = file.sha256;
  else if (file.gitOid && !file.lfs) out.gitSha1 = file.gitOid;
  return out;
}

export const COMMIT_RE = /^[0-9a-f]{40}$/;
export const isCommitHash = (rev: string): boolean => COMMIT_RE.test(rev);
