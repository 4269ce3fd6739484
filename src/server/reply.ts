// Response helpers every face shares: JSON errors with X-Error-Code, replaying an upstream
// answer, Range parsing, and sending a blob (from the store or from a running fill).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { BodySource } from './events.js';
import type { Answer } from './upstream.js';

/** Per-request notes the request event reports (set by routes). */
export interface RequestNotes {
  route: string;
  source: BodySource;
  stale: boolean;
  /** Body bytes sent by routes that send buffers. */
  bytes: number;
  /** For a streamed body: its bytes sent, asked once the response closed. */
  bodyBytes?: (finished: boolean) => number;
}

declare module 'fastify' {
  interface FastifyRequest {
    hubcache: RequestNotes;
  }
}

export const STALE_HEADER = 'X-Hubcache-Stale';

/** A JSON error in the hub's shape: `{"error": ...}` plus X-Error-Code / X-Error-Message. */
export function sendError(reply: FastifyReply, status: number, message: string, code?: string): FastifyReply {
  reply.code(status).header('content-type', 'application/json; charset=utf-8');
  reply.header('x-error-message', message.replace(/[^\x20-\x7e]/g, '?'));
  if (code) reply.header('x-error-code', code);
  return reply.send(JSON.stringify({ error: message }));
}

/** 503 for a request that needs the cluster's shared store while it does not answer (it retries by itself). */
export function storeDown(reply: FastifyReply, err: Error): FastifyReply {
  reply.header('retry-after', '5');
  return sendError(reply, 503, `The mirror's shared store is unavailable: ${err.message}`, 'MirrorStoreUnavailable');
}

/** Upstream headers worth passing on with a metadata answer (everything else is the mirror's business). */
export const PASSED_HEADERS = ['content-type', 'x-error-code', 'x-error-message', 'x-repo-commit', 'x-total-count'];

export function pickHeaders(
  h: Record<string, string>,
  names: readonly string[] = PASSED_HEADERS,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = h[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}

/** Replays a (cached) upstream answer; HEAD gets the headers only. */
export function sendAnswer(
  req: FastifyRequest,
  reply: FastifyReply,
  a: Answer,
  opts: { stale?: boolean; headers?: Record<string, string | undefined> } = {},
): FastifyReply {
  reply.code(a.status);
  for (const [k, v] of Object.entries(pickHeaders(a.headers))) reply.header(k, v);
  for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) reply.header(k, v);
  if (opts.stale) {
    reply.header(STALE_HEADER, '1');
    req.hubcache.stale = true;
  }
  req.hubcache.source = 'upstream';
  if (req.method === 'HEAD') return reply.send();
  req.hubcache.bytes += a.body.length;
  return reply.send(a.body);
}

/** Bytes a body stream has produced so far (fs ReadStream `bytesRead`, or the stream's own count). */
function readBytes(stream: Readable): number {
  const s = stream as Readable & { bytesRead?: number; sent?: number };
  return s.bytesRead ?? s.sent ?? 0;
}

export type ParsedRange = { start: number; end: number } | 'unsatisfiable' | undefined;

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` → `[start, end)`; several ranges or junk → undefined (whole body). */
export function parseRange(header: string | undefined, size: number): ParsedRange {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(a);
  if (start >= size) return 'unsatisfiable';
  const end = b === '' ? size : Math.min(size, Number(b) + 1);
  if (end <= start) return 'unsatisfiable';
  return { start, end };
}

export interface BlobBody {
  size: number;
  /** The whole blob in memory (hot-blobs.ts): sent with one write, ranges as slices. */
  buffer?: Buffer;
  /** The bytes of `[start, end)`: a store read or a fill stream. */
  open: (start: number, end: number) => Promise<Readable> | Readable;
  source: BodySource;
}

/** 200 or 206 (or 416) with Content-Length / Content-Range; the headers identifying the file are the caller's. */
export async function sendBlob(req: FastifyRequest, reply: FastifyReply, body: BlobBody): Promise<FastifyReply> {
  const size = body.size;
  reply.header('accept-ranges', 'bytes');
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${size}`);
    return sendError(reply, 416, `Range not satisfiable (size ${size})`);
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? size;
  if (range) reply.code(206).header('content-range', `bytes ${start}-${end - 1}/${size}`);
  else reply.code(200);
  reply.header('content-length', String(end - start));
  req.hubcache.source = body.source;
  if (req.method === 'HEAD' || end === start) return reply.send();
  if (body.buffer) {
    req.hubcache.bytes += end - start;
    return reply.send(body.buffer.subarray(start, end));
  }
  const stream = await body.open(start, end);
  // Bytes sent, counted when the response ends (no per-chunk listener on the hot path).
  const length = end - start;
  req.hubcache.bodyBytes = (finished) => (finished ? length : Math.min(length, readBytes(stream)));
  // A failing body stream (fill failed) must cut the connection: never a short 200.
  stream.on('error', () => reply.raw.destroy());
  return reply.send(stream);
}
