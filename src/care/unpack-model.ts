// The shapes unpack's steps share: options, the report, the members as read, the error type.
import { ExitCode, HubcacheError } from '../errors.js';
import type { MemberRole, PackedRepo } from './pack-format.js';

export interface UnpackOptions {
  archive: string;
  /** Also move existing refs (and `.mv`, and ModelScope files that differ) to the archive's. */
  updateRefs?: boolean;
  /** Read and verify the whole archive and report what would change; write nothing. */
  dryRun?: boolean;
  /** HF snapshot entries as symlinks (default) or as copies (HF_HUB_DISABLE_SYMLINKS). */
  symlinks?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: UnpackEvent) => void;
}

export type UnpackEvent =
  { type: 'unpack-progress'; bytes: number; total: number } | { type: 'warning'; message: string };

export type ChangeAction = 'added' | 'kept' | 'replaced' | 'conflict';

export interface UnpackChange {
  /** The path in the cache. */
  path: string;
  action: ChangeAction;
  detail?: string;
}

export interface RefChange {
  repo: string;
  ref: string;
  commit: string;
  previous?: string;
  action: 'created' | 'updated' | 'unchanged' | 'kept';
}

export interface UnpackReport {
  archive: string;
  dryRun: boolean;
  repos: PackedRepo[];
  /** Members verified (files and links) and their bytes. */
  verified: number;
  bytes: number;
  added: number;
  kept: number;
  replaced: number;
  /** Cached content left as it was although the archive differs (see `updateRefs`). */
  conflicts: UnpackChange[];
  refs: RefChange[];
  changes: UnpackChange[];
  seconds: number;
}

/** The archive is not a well-formed hubcache pack (structure, manifest, missing members). */
export class ArchiveError extends HubcacheError {
  override readonly exitCode = ExitCode.integrity;
}

/** One member as read (and hashed) from the archive. */
export interface Observed {
  name: string;
  role: MemberRole;
  type: 'file' | 'symlink';
  size: number;
  sha256?: string;
  gitSha1?: string;
  target?: string;
  /** Where the bytes wait (not in a dry run). */
  staged?: string;
  /** Small metadata (refs, .msc, .mdl, .mv, tree listings) kept in memory. */
  small?: Buffer;
}

export const DAMAGED_HINT =
  'The archive is damaged or was tampered with (copy it again); nothing was written to the cache.';
