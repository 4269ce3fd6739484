// Contract between the layouts (which decide *where* a blob lives) and the transfer engine
// (which gets bytes onto disk safely). The engine never knows about hubs or layouts.
import type { Dispatcher } from 'undici';
import type { DownloadSource, ExpectedContent } from '../hubs/types.js';

export interface TransferProgress {
  /** Caller-chosen label, usually the repo path of the file. */
  label: string;
  /** Bytes of this file now on disk (including what was resumed). */
  bytes: number;
  total: number;
  /** Bytes that came from a previous partial download rather than the network in this run. */
  resumedBytes: number;
  done: boolean;
}

export interface TransferRequest {
  label: string;
  /**
   * Returns where to GET the bytes. Called once at start and again when a URL stops working
   * (e.g. an expired signed CDN URL answers 403), so it may do a metadata request.
   */
  source: () => Promise<DownloadSource>;
  expected: ExpectedContent;
  /** Directory that holds partial data (same file system as `finalPath`, so rename is atomic). */
  partialDir: string;
  /**
   * Stable base name of partial data for this content, e.g. the blob etag. Partial files are
   * `<partialDir>/<partialKey>.<writerId>.incomplete` (+ a state file beside it), so a later
   * process finds and resumes them, and huggingface_hub's cleanup (`*.incomplete`) sees them.
   */
  partialKey: string;
  /** Where the verified file is renamed to (atomic commit). Parent dir must exist. */
  finalPath: string;
  signal?: AbortSignal;
  onProgress?: (p: TransferProgress) => void;
}

export interface TransferResult {
  finalPath: string;
  /** Bytes received over the network in this call. */
  downloadedBytes: number;
  /** Bytes taken from an earlier partial file (resume). */
  resumedBytes: number;
  sha256?: string;
}

export interface TransferOptions {
  /** Max parallel connections for one large file. */
  connections: number;
  /** Files smaller than this use a single stream (no range machinery). */
  parallelThreshold: number;
  /** Seconds without a byte before a connection counts as stalled and is retried. */
  stallTimeoutSeconds: number;
  /** Attempts per range for transient failures. */
  maxRetries: number;
  dispatcher?: Dispatcher;
  /** Test switch: pretend locks do not exist (models NFS where flock lies). */
  disableLocks?: boolean;
}
