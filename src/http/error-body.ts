// What an error answer says, read the same way for metadata and body requests.
import { HubHttpError, RateLimitedError, ServerError } from '../errors.js';
import type { Http1Response } from './client.js';

/**
 * The message of an error answer: `X-Error-Message`, else the JSON body's `error`, else the
 * body's first words when it is not an HTML page. Always consumes the body (an unread response
 * would hold its connection).
 */
export async function readErrorMessage(res: Http1Response): Promise<string | undefined> {
  const fromHeader = res.headers['x-error-message'];
  const header = Array.isArray(fromHeader) ? fromHeader[0] : fromHeader;
  if (header !== undefined) {
    await res.dump().catch(() => undefined);
    return header;
  }
  let text: string;
  try {
    text = (await res.text(4096)).slice(0, 4096);
  } catch {
    return undefined;
  }
  try {
    const json = JSON.parse(text) as { error?: unknown };
    if (typeof json.error === 'string') return json.error.slice(0, 300);
  } catch {
    // not JSON
  }
  const trimmed = text.trim();
  return trimmed && !trimmed.startsWith('<') ? trimmed.slice(0, 200) : undefined;
}

/** An error answer as a caller saw it (see transfer/types.ts ErrorAnswer, which has the same shape). */
export interface HttpErrorAnswer {
  status: number;
  message?: string | undefined;
  url: string;
  what: string;
  retryAfterSeconds?: number | undefined;
}

/**
 * The HTTP-level error for an answer, knowing nothing about any hub: 429 is a rate limit, 5xx and
 * 408 a server failure (retryable), anything else a plain HTTP error. The hubs map further.
 */
export function httpStatusError(a: HttpErrorAnswer): HubHttpError {
  const detail = a.message ? `: ${a.message}` : '';
  if (a.status === 429)
    return new RateLimitedError(`Rate limited${detail} (${a.url})`, a.status, a.url, a.retryAfterSeconds);
  const text = `HTTP ${a.status} for ${a.what}${detail} (${a.url})`;
  return a.status >= 500 || a.status === 408
    ? new ServerError(text, a.status, a.url)
    : new HubHttpError(text, a.status, a.url);
}
