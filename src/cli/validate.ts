// Checks of what users type, in one place, so each bad value gets one clear usage error (exit 2)
// before anything touches the network or the disk.
import fs from 'node:fs';
import { HubcacheError, UsageError } from '../errors.js';
import { assertSafeRefName } from '../util/safe-path.js';

/** `--max-workers 8` → 8; `0`, `abc`, `1.5` or above `max` → a usage error naming the flag. */
export function parseCount(flag: string, value: string, opts: { min?: number; max?: number } = {}): number {
  const min = opts.min ?? 1;
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || (opts.max !== undefined && n > opts.max)) {
    const range = opts.max !== undefined ? `from ${min} to ${opts.max}` : `of at least ${min}`;
    throw new UsageError(`${flag} takes a whole number ${range}, not ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * A hub URL from `--endpoint`: http(s) with a host, returned without trailing slashes.
 * `notaurl`, `http://` and `ftp://host` are usage errors (not a host named "api", not "unreachable").
 * `bareHost`: a value without a scheme means https://value (ModelScope's MODELSCOPE_DOMAIN style).
 */
export function parseEndpoint(value: string, opts: { flag?: string; bareHost?: boolean } = {}): string {
  const flag = opts.flag ?? '--endpoint';
  const bad = (why: string): never => {
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not a hub URL (${why})`, {
      hint: 'Give a full URL, e.g. https://huggingface.co or http://127.0.0.1:8080.',
    });
  };
  const text = value.trim();
  const withScheme = opts.bareHost && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? `https://${text}` : text;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return bad('cannot be parsed as a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad(`${url.protocol} is not http or https`);
  if (!url.hostname || !/^[a-z][a-z0-9+.-]*:\/\/[^/?#]/i.test(withScheme)) bad('no host');
  if (url.username || url.password) bad('credentials belong in --token, not in the URL');
  if (url.search || url.hash) bad('no query or fragment allowed');
  return withScheme.replace(/\/+$/, '');
}

/** `--local-dir`: not empty, and not an existing file (a folder, or a path to create). */
export function checkLocalDir(value: string, flag = '--local-dir'): string {
  if (value.trim() === '')
    throw new UsageError(`${flag} is empty`, { hint: `Give a folder, e.g. ${flag} ./models/name.` });
  let isDir: boolean | undefined;
  try {
    isDir = fs.statSync(value).isDirectory();
  } catch {
    return value; // missing: created by the download (other stat errors are reported there, with context)
  }
  if (!isDir)
    throw new UsageError(`${flag} ${value} exists and is not a folder`, {
      hint: 'Pick a folder (it is created if missing).',
    });
  return value;
}

/** A revision the user typed (`--revision`, `org/name@rev`): refused as a usage error, not "from the server". */
export function checkRevision(rev: string, flag = '--revision'): string {
  try {
    return assertSafeRefName(rev);
  } catch (err) {
    if (!(err instanceof HubcacheError)) throw err;
    throw new UsageError(`${flag} ${JSON.stringify(rev)} is not a valid revision`, {
      hint: 'A branch, tag, refs/pr/N or commit hash: no "..", "." or empty segments, no leading "/", backslash or control characters.',
    });
  }
}
