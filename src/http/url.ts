// URL rules every HTTP caller shares: no credentials in messages, only http(s) redirects.
import { ServerError } from '../errors.js';

/** Drops query strings (signed CDN URLs carry credentials) for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

/**
 * Where a redirect from `from` leads, resolved against it. Only http(s) targets are followed: a
 * `file:`, `ftp:` or unparsable Location is a broken or hostile server, not a usage error.
 */
export function redirectLocation(from: string, location: string, status?: number): string {
  let to: URL | undefined;
  try {
    to = new URL(location, from);
  } catch {
    /* reported below */
  }
  if (to?.protocol !== 'http:' && to?.protocol !== 'https:') {
    const what = to ? `a ${to.protocol} URL` : `an invalid URL ${JSON.stringify(location.slice(0, 100))}`;
    throw new ServerError(`Refusing a redirect to ${what} from ${redactUrl(from)}`, status, redactUrl(from));
  }
  return to.href;
}
