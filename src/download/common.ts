// The parts of a download every hub shares: progress plumbing, the plan event, the per-file
// pool that turns planned files into materialized ones, and the transfer request shape.
import type { DownloadSource, ExpectedContent } from '../hubs/types.js';
import type { TransferRequest } from '../transfer/types.js';
import { runPool } from '../util/pool.js';
import type { DownloadOptions, FileStatus, PlannedFile, ProgressEvent } from './types.js';
import { UsageError } from '../errors.js';

export type Emit = (e: ProgressEvent) => void;

export function emitterFor(opts: Pick<DownloadOptions, 'onProgress'>): Emit {
  return (e) => opts.onProgress?.(e);
}

/**
 * `--include`/`--exclude` that select no file of a non-empty listing are almost always a typo:
 * an error naming the patterns (as `lock` gives for such an entry), not an empty success.
 */
export function assertPatternsSelect(
  selectedCount: number,
  listedCount: number,
  opts: Pick<DownloadOptions, 'files' | 'include' | 'exclude'>,
  where: string,
): void {
  if (selectedCount > 0 || listedCount === 0 || (opts.files?.length ?? 0) > 0) return;
  const parts = [
    ...(opts.include?.length ? [`--include ${opts.include.map((p) => JSON.stringify(p)).join(' ')}`] : []),
    ...(opts.exclude?.length ? [`--exclude ${opts.exclude.map((p) => JSON.stringify(p)).join(' ')}`] : []),
  ];
  if (parts.length === 0) return;
  throw new UsageError(`${parts.join(' and ')} select no file of ${where} (${listedCount} files)`, {
    hint: 'Patterns are fnmatch globs on the full repo path: "*.safetensors", "onnx/*", "tokenizer*". `--dry-run` without them lists the files.',
  });
}

/** The `plan` event: every selected file with its status, and the bytes still to fetch. */
export function planEvent(repo: string, revision: string, commit: string, files: PlannedFile[]): ProgressEvent {
  const totalBytes = files.reduce((s, p) => s + p.size, 0);
  const downloadBytes = files.filter((p) => p.status === 'planned').reduce((s, p) => s + p.size, 0);
  return { type: 'plan', repo, revision, commit, files, totalBytes, downloadBytes };
}

/**
 * Runs `job` for every planned file, `maxWorkers` at a time, records the resulting status on the
 * planned entry and emits `file-done`. Returns the bytes that came over the network.
 */
export async function materializeAll(
  planned: PlannedFile[],
  opts: Pick<DownloadOptions, 'maxWorkers'>,
  emit: Emit,
  job: (p: PlannedFile) => Promise<FileStatus>,
): Promise<number> {
  let downloadedBytes = 0;
  await runPool(planned, opts.maxWorkers ?? 8, async (p) => {
    const status = await job(p);
    if (status === 'downloaded') downloadedBytes += p.size;
    p.status = status;
    emit({ type: 'file-done', path: p.path, size: p.size, status });
  });
  return downloadedBytes;
}

export interface TransferTarget {
  /** Repo path, used as the label and in progress events. */
  path: string;
  source: () => Promise<DownloadSource>;
  expected: ExpectedContent;
  partialDir: string;
  partialKey: string;
  finalPath: string;
}

/** A TransferRequest whose progress is reported as `file-progress` events. */
export function transferRequest(
  t: TransferTarget,
  opts: Pick<DownloadOptions, 'signal' | 'onProgress'>,
): TransferRequest {
  const req: TransferRequest = {
    label: t.path,
    source: t.source,
    expected: t.expected,
    partialDir: t.partialDir,
    partialKey: t.partialKey,
    finalPath: t.finalPath,
    onProgress: (p) =>
      opts.onProgress?.({
        type: 'file-progress',
        path: t.path,
        bytes: p.bytes,
        total: p.total,
        resumedBytes: p.resumedBytes,
      }),
  };
  if (opts.signal) req.signal = opts.signal;
  return req;
}
