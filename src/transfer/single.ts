// One plain stream: small files, and servers that ignore Range. No resume state is kept; a
// crashed single-stream partial is later adopted as a tentative prefix (like huggingface_hub's).
import type { FileHandle } from 'node:fs/promises';
import { AbortedError, IntegrityError, NetworkError, ServerError } from '../errors.js';
import { pumpBody } from './body-pump.js';
import { ensureFreeSpace, SerialFileWriter } from './disk.js';
import { ForbiddenStatusError, openGet } from './http-range.js';
import { assertIdentityEncoding, combinedSignal, type FileJob } from './job.js';
import { ContentHasher, makeChunks, type Digest } from './ordered-hasher.js';
import type { OwnedPartial, Resume } from './ownership.js';
import { decodeBitmap } from './partial-state.js';
import { asTypedError, headerValue, RetryTracker } from './retry.js';

interface StreamState {
  written: number;
  hasher: ContentHasher;
  /** One per file, like the ranged path: a write found slow stays off the event loop on retries. */
  writer: SerialFileWriter;
}

export async function downloadSingle(job: FileJob, owned: OwnedPartial): Promise<Digest> {
  const internal = new AbortController();
  const signal = combinedSignal(job.signal, internal.signal);
  let failure: Error | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
    internal.abort();
  };
  // Our mtime is our heartbeat (no state to checkpoint).
  owned.startHeartbeat(
    job.opts.heartbeatIntervalMs,
    async () => {
      const now = new Date();
      await owned.fh.utimes(now, now);
    },
    fail,
  );

  const prefix = contiguousPrefix(owned.resume, job.size);
  // Without a resume source the file is empty already (created or truncated on acquire).
  if (owned.resume.kind !== 'none') await owned.fh.truncate(prefix);
  const st: StreamState = {
    written: prefix,
    hasher: new ContentHasher(job.size, Boolean(job.expected.gitSha1)),
    writer: new SerialFileWriter(owned, job.opts.fsHooks),
  };
  await hashFromDisk(owned.fh, st.hasher, prefix, signal);
  job.progress.reset(prefix, prefix);
  job.partial(owned.path, prefix);
  await ensureFreeSpace(job.dir, job.size - prefix, job.freeBytes());

  const tracker = new RetryTracker(job.opts, signal);
  while (st.written < job.size) {
    const before = st.written;
    try {
      await job.connections.acquire(signal);
      try {
        await streamOnce(job, owned, st, signal);
      } finally {
        job.connections.release();
      }
    } catch (raw) {
      if (failure) throw failure;
      const err = asTypedError(raw, signal);
      if (err instanceof AbortedError) throw err;
      if (err instanceof ForbiddenStatusError && (await job.source.refreshAfter403(err.generation))) continue;
      await tracker.onFailure(err, st.written > before);
    }
  }
  if (failure) throw failure;
  return st.hasher.digest();
}

/** Bytes from offset 0 that a resume source vouches for (a state's done chunks count only up to the first gap). */
function contiguousPrefix(r: Resume, size: number): number {
  if (r.kind === 'prefix') return Math.min(r.length, size);
  if (r.kind === 'none') return 0;
  const chunks = makeChunks(size, r.state.chunkSize);
  const done = decodeBitmap(r.state.done, chunks.length);
  let n = 0;
  for (const c of chunks) {
    if (done[c.index]) {
      n = c.end;
      continue;
    }
    const part = r.state.partial.find(([i]) => i === c.index)?.[1] ?? 0;
    n = c.start + part;
    break;
  }
  return n;
}

async function hashFromDisk(fh: FileHandle, hasher: ContentHasher, length: number, signal: AbortSignal): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(length, 4 * 1024 * 1024));
  for (let pos = 0; pos < length;) {
    if (signal.aborted) throw AbortedError.from(signal);
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - pos), pos);
    if (bytesRead === 0) throw new Error('partial file shrank while re-hashing');
    hasher.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

async function streamOnce(job: FileJob, owned: OwnedPartial, st: StreamState, signal: AbortSignal): Promise<void> {
  const res = await openGet({
    source: job.source,
    http: job.http,
    ...(st.written > 0 ? { range: { start: st.written } } : {}),
    signal,
    headersTimeoutMs: job.opts.stallTimeoutSeconds * 1000,
    userAgent: job.opts.userAgent,
    errorFor: job.opts.errorFor,
    label: job.label,
  });
  assertIdentityEncoding(res, job.label);
  if (res.body.status === 206) {
    const r = res.range;
    if (!r || r.start !== st.written) {
      res.body.destroy();
      throw new ServerError(`invalid Content-Range for ${job.label}`, undefined, undefined);
    }
    if (r.total !== undefined && r.total !== job.size) {
      res.body.destroy();
      throw new IntegrityError(job.label, String(job.size), String(r.total), 'size');
    }
  } else {
    if (st.written > 0) {
      // Full body although we asked for a range: start over from byte 0.
      await owned.fh.truncate(0);
      st.written = 0;
      st.hasher = new ContentHasher(job.size, Boolean(job.expected.gitSha1));
      job.progress.reset(0, 0);
      job.partial(owned.path, 0);
    }
    const cl = headerValue(res.body.headers, 'content-length');
    if (cl !== undefined && Number(cl) !== job.size) {
      res.body.destroy();
      throw new IntegrityError(job.label, String(job.size), cl, 'size');
    }
  }
  const remaining = job.size - st.written;
  const { received, ended } = await pumpBody(res.body, {
    limit: () => remaining,
    stallMs: job.opts.stallTimeoutSeconds * 1000,
    pool: job.pool,
    write: st.writer.from(st.written),
    onWritten: (buf, len) => {
      st.hasher.update(buf.subarray(0, len));
      st.written += len;
      job.progress.add(len);
      job.stats.downloaded += len;
      job.partial(owned.path, st.written);
    },
  });
  if (!ended && received >= remaining) {
    throw new IntegrityError(job.label, String(job.size), `more than ${job.size}`, 'size');
  }
  if (received < remaining) throw new NetworkError(`connection closed after ${received} of ${remaining} bytes`);
}
