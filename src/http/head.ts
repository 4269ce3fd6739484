// Parsing an HTTP/1.1 response head (RFC 9112 §4–6) and deciding how its body is framed.
// Strict where leniency could splice two messages (conflicting lengths, folded lines,
// control characters); tolerant where servers commonly differ (bare LF line ends).
import type { IncomingHttpHeaders } from 'node:http';
import { ServerError } from '../errors.js';

export interface ResponseHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  status: number;
  /** Lower-case names; repeated fields joined with ", " (set-cookie kept as a list). */
  headers: IncomingHttpHeaders;
  /** Bytes the head took, blank line included. */
  length: number;
}

export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** No length given: the body ends when the server closes the connection. */
  | { kind: 'close' };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]/;

/** A header name is an RFC 9110 token (what we send and what we accept). */
export function isHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

/** No NUL, CR or LF: a newline in a value (a pasted token, say) would inject headers of its own. */
export function isHeaderValue(value: string): boolean {
  return !BAD_VALUE.test(value);
}
/** RFC 9110 §15: a status outside 100..599 is invalid (0xx has no class to fall back to). */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5]\d{2})(?: .*)?$/;

/**
 * Finds the end of a head in `buf[0, end)` and parses it. Returns undefined while the blank
 * line has not arrived yet. `from` is where the previous search stopped (no quadratic rescans).
 */
export function parseHead(buf: Buffer, end: number, from = 0): ResponseHead | undefined {
  const stop = findHeadEnd(buf, Math.max(0, from - 3), end);
  if (stop < 0) return undefined;
  const text = buf.toString('latin1', 0, stop);
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  // The blank line(s) that ended the head.
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  const m = STATUS_LINE.exec(lines[0] ?? '');
  if (!m?.[1] || !m[2]) throw malformed(`bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: IncomingHttpHeaders = {};
  for (const line of lines.slice(1)) {
    if (line.startsWith(' ') || line.startsWith('\t')) throw malformed('folded header line');
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!isHeaderName(name)) throw malformed(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
    const value = line.slice(colon + 1).trim();
    if (!isHeaderValue(value)) throw malformed(`control character in header ${name}`);
    addHeader(headers, name.toLowerCase(), value);
  }
  return { minorVersion: Number(m[1]), status: Number(m[2]), headers, length: stop };
}

/** Index just past the blank line ("\n\n" or "\n\r\n") in buf[from, end), or -1. */
function findHeadEnd(buf: Buffer, from: number, end: number): number {
  for (let i = buf.indexOf(10, from); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) {
    if (i + 1 < end && buf[i + 1] === 10) return i + 2;
    if (i + 2 < end && buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3;
  }
  return -1;
}

function addHeader(headers: IncomingHttpHeaders, name: string, value: string): void {
  const old = headers[name];
  if (name === 'set-cookie') {
    headers['set-cookie'] = [...(old === undefined ? [] : Array.isArray(old) ? old : [old]), value];
  } else {
    headers[name] = old === undefined ? value : `${String(old)}, ${value}`;
  }
}

/** How the body of a response to a GET ends (RFC 9112 §6.3). */
export function bodyFraming(head: ResponseHead): BodyFraming {
  const s = head.status;
  if ((s >= 100 && s < 200) || s === 204 || s === 304) return { kind: 'none' };
  const te = head.headers['transfer-encoding'];
  if (typeof te === 'string') {
    // Transfer-Encoding wins over Content-Length; a final coding other than chunked reads to close.
    const codings = te
      .toLowerCase()
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
    return codings.at(-1) === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  const cl = head.headers['content-length'];
  if (typeof cl === 'string') {
    // "5, 5" (a repeated field) is fine; "5, 6" could smuggle a second response.
    const values = new Set(cl.split(',').map((v) => v.trim()));
    const [only] = values;
    if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only))
      throw malformed(`bad Content-Length ${JSON.stringify(cl.slice(0, 40))}`);
    return { kind: 'length', length: Number(only) };
  }
  return { kind: 'close' };
}

/** Whether the connection may carry another request after this response. */
export function keepsAlive(head: ResponseHead): boolean {
  const conn = String(head.headers['connection'] ?? '')
    .toLowerCase()
    .split(',')
    .map((t) => t.trim());
  if (conn.includes('close')) return false;
  return head.minorVersion === 1 || conn.includes('keep-alive');
}

/** Seconds from `Keep-Alive: timeout=N`, if the server said. */
export function keepAliveTimeoutSeconds(head: ResponseHead): number | undefined {
  const m = /(?:^|[\s,;])timeout=(\d+)/i.exec(String(head.headers['keep-alive'] ?? ''));
  return m?.[1] ? Number(m[1]) : undefined;
}

export function malformed(what: string): ServerError {
  return new ServerError(`malformed HTTP response: ${what}`, undefined, undefined);
}
