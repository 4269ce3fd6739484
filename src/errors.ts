// Typed errors. Every failure a user can meet is one of these classes, so the CLI can map it to
// one clear line, a hint, and a distinct exit code, and library users can `instanceof` them.
import path from 'node:path';
import { atomicTempTarget } from './util/fs.js';

/** Process exit codes, stable for scripts. 1 is reserved for "something is outdated / a problem was found". */
export const ExitCode = {
  ok: 0,
  findings: 1,
  usage: 2,
  generic: 3,
  repoNotFound: 10,
  revisionNotFound: 11,
  entryNotFound: 12,
  gatedRepo: 13,
  unauthorized: 14,
  rateLimited: 15,
  offlineMiss: 16,
  network: 17,
  integrity: 18,
  unsafePath: 19,
  diskFull: 20,
  server: 21,
  manifest: 22,
  notWritable: 23,
  localPath: 24,
  inUse: 25,
  /** `serve --store`: the object store cannot be reached (at startup). */
  storeUnavailable: 26,
  /** `serve --store`: the object store lacks the conditional writes a cluster needs. */
  storeUnsupported: 27,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class HubcacheError extends Error {
  /** Exit code the CLI uses for this error. */
  readonly exitCode: ExitCodeValue = ExitCode.generic;
  /** One short sentence telling the user what to do next, if there is something to do. */
  hint?: string;
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.hint) this.hint = options.hint;
  }
}

/** Bad command-line or API arguments. */
export class UsageError extends HubcacheError {
  override readonly exitCode = ExitCode.usage;
}

/** Errors that came from a hub's HTTP answer. */
export class HubHttpError extends HubcacheError {
  override readonly exitCode: ExitCodeValue = ExitCode.server;
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly url: string | undefined,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(message, options);
  }
}

export class RepoNotFoundError extends HubHttpError {
  override readonly exitCode = ExitCode.repoNotFound;
}
export class RevisionNotFoundError extends HubHttpError {
  override readonly exitCode = ExitCode.revisionNotFound;
}
export class EntryNotFoundError extends HubHttpError {
  override readonly exitCode = ExitCode.entryNotFound;
}
export class GatedRepoError extends HubHttpError {
  override readonly exitCode = ExitCode.gatedRepo;
}
export class UnauthorizedError extends HubHttpError {
  override readonly exitCode = ExitCode.unauthorized;
}
export class RateLimitedError extends HubHttpError {
  override readonly exitCode = ExitCode.rateLimited;
  constructor(
    message: string,
    status: number | undefined,
    url: string | undefined,
    /** Seconds the server asked us to wait, when it said. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message, status, url);
  }
}
/** A 5xx or other unexpected status, or a malformed answer (bad JSON, missing headers). */
export class ServerError extends HubHttpError {}

/** The network could not be reached (DNS, connection refused/reset, timeout, stalled stream). */
export class NetworkError extends HubcacheError {
  override readonly exitCode = ExitCode.network;
}

/** Offline (by choice or because the network is down) and the cache does not hold what was asked. */
export class OfflineMissError extends HubcacheError {
  override readonly exitCode = ExitCode.offlineMiss;
  constructor(
    message: string,
    /** Repo paths that are missing from the cache, when known. */
    readonly missing: string[] = [],
    options?: { cause?: unknown; hint?: string },
  ) {
    super(message, options);
  }
}

/** Downloaded or cached bytes do not match the expected size or hash. */
export class IntegrityError extends HubcacheError {
  override readonly exitCode = ExitCode.integrity;
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly actual: string,
    readonly algorithm: 'sha256' | 'git-sha1' | 'size',
  ) {
    super(`${algorithm} mismatch for ${path}: expected ${expected}, got ${actual}`);
  }
}

/** A file name from a server (or an archive) that would escape its folder or is otherwise unsafe. */
export class UnsafePathError extends HubcacheError {
  override readonly exitCode = ExitCode.unsafePath;
}

/** Not enough free disk space (checked up front, or ENOSPC mid-way). */
export class DiskFullError extends HubcacheError {
  override readonly exitCode = ExitCode.diskFull;
  constructor(
    message: string,
    readonly neededBytes?: number,
    readonly freeBytes?: number,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(message, options);
  }
}

/** hubcache.json / hubcache.lock problems. */
export class ManifestError extends HubcacheError {
  override readonly exitCode = ExitCode.manifest;
}

/** A place where hubcache must write refuses it (read-only mount, another user's cache): write elsewhere. */
export class NotWritableError extends HubcacheError {
  override readonly exitCode = ExitCode.notWritable;
  constructor(
    message: string,
    /** The folder that refused the write. */
    readonly folder: string,
    /** The system's error code (EACCES, EPERM, EROFS). */
    readonly code: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(message, options);
  }
}

/** A local path that cannot be used (a name too long, a file where a folder must be, a place that takes no files). */
export class LocalPathError extends HubcacheError {
  override readonly exitCode = ExitCode.localPath;
  constructor(
    message: string,
    readonly path: string,
    /** The system's error code (ENOENT, ENOTDIR, ENAMETOOLONG, EEXIST, EISDIR, ELOOP). */
    readonly code: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(message, options);
  }
}

/** Where a download or import writes, and which setting (variable or flag) moves it elsewhere. */
export interface WritePlace {
  dir: string;
  /** What the user changes to move it, e.g. `HF_HUB_CACHE (or HF_HOME) or --cache-dir`. */
  setting: string;
}

const NOT_WRITABLE: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
};
const BAD_PATH: Record<string, string> = {
  ENOENT: 'a folder on the way is missing or takes no new entries',
  ENOTDIR: 'a part of the path is a file, not a folder',
  ENAMETOOLONG: 'a name in it is too long for the file system',
  EEXIST: 'something that is not a folder is already there',
  EISDIR: 'a folder is where a file must go',
  ELOOP: 'too many symbolic links on the way',
};

/**
 * A raw file-system error (ErrnoException with a path) from a download or import becomes a
 * NotWritableError or LocalPathError naming the folder and the setting of the place it is in
 * (the longest matching `places` dir). Everything else passes unchanged.
 */
export function asFsError(err: unknown, places: readonly WritePlace[]): unknown {
  if (err instanceof HubcacheError || !(err instanceof Error)) return err;
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code !== 'string' || typeof e.path !== 'string' || typeof e.syscall !== 'string') return err;
  // symlink, link, rename and copyfile name what they create second (`dest`).
  const p = (e as { dest?: unknown }).dest;
  // Temp files sit beside their target (util/fs atomicTempPath): name the target.
  const target = atomicTempTarget(typeof p === 'string' ? p : e.path);
  const inside = (pl: WritePlace): boolean => target === pl.dir || target.startsWith(`${pl.dir.replace(/\/+$/, '')}/`);
  const place = [...places].sort((a, b) => b.dir.length - a.dir.length).find(inside);
  const move = place ? `Point ${place.setting} at another folder` : 'Choose another folder';
  if (NOT_WRITABLE[e.code]) {
    // The call names what it could not create (a file, a temp file, a folder): its folder refused.
    const folder = path.dirname(target);
    return new NotWritableError(`Cannot write in ${folder} (${e.code}: ${NOT_WRITABLE[e.code]})`, folder, e.code, {
      cause: err,
      hint: `${move} (one you can write), or make ${folder} writable for this user.`,
    });
  }
  if (BAD_PATH[e.code]) {
    const message = `Cannot use ${target} (${e.code}: ${BAD_PATH[e.code]})`;
    return new LocalPathError(message, target, e.code, { cause: err, hint: `${move}.` });
  }
  return err;
}

/** Something the user asked to change is held by a running download (its lock is taken). */
export class RepoInUseError extends HubcacheError {
  override readonly exitCode = ExitCode.inUse;
}

/** The operation was cancelled through an AbortSignal (Ctrl-C in the CLI); `cause` is the signal's reason. */
export class AbortedError extends HubcacheError {
  override readonly exitCode = ExitCode.interrupted;
  constructor(message = 'Interrupted', options?: { cause?: unknown }) {
    super(message, options);
  }
  /** The error for an aborted signal, keeping its reason (e.g. a timeout's or the caller's own). */
  static from(signal: AbortSignal | undefined, message?: string): AbortedError {
    return new AbortedError(message, signal?.reason === undefined ? undefined : { cause: signal.reason });
  }
}

/** Socket, DNS and TLS failures become a NetworkError (naming their code); typed errors pass. */
export function asNetworkError(err: unknown, hint?: string): Error {
  if (err instanceof HubcacheError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  return new NetworkError(`network error${typeof code === 'string' ? ` (${code})` : ''}: ${msg}`, {
    cause: err,
    ...(hint ? { hint } : {}),
  });
}

/** Throws AbortedError if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw AbortedError.from(signal);
}
