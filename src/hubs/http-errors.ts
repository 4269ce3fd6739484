// One mapping from a hub's error answer to a typed error (spec: hf-hub.md §3.6, first match
// wins), shared by the metadata client (hubs/hf.ts) and the transfer engine's GETs, so a status
// means the same thing whichever request met it. Never puts a token or a signed URL in a message.
import {
  EntryNotFoundError,
  GatedRepoError,
  HubHttpError,
  RateLimitedError,
  RepoNotFoundError,
  RevisionNotFoundError,
  ServerError,
  UnauthorizedError,
} from '../errors.js';
import type { ErrorAnswer } from '../transfer/types.js';

export interface HubErrorAnswer {
  status: number;
  /** `X-Error-Code`, when the hub sent one. */
  code?: string | undefined;
  /** `X-Error-Message`, or the JSON body's `error`. */
  message?: string | undefined;
  /** The URL without query string (see redactUrl). */
  url: string;
  /** What was asked for, for the message: `org/name@rev`, `org/name/file`... */
  what: string;
  retryAfterSeconds?: number | undefined;
  /** A plain 404 (no error code) on a file URL means the file; on an API URL, the repo. */
  plain404IsEntry?: boolean;
  /**
   * The Hub's own API and resolve/ URLs answer 401 for private, gated-without-token and missing
   * repos alike (so 401 means "repo not found" there); elsewhere (a CDN) 401 is just a bad token.
   */
  hubUrl?: boolean;
}

/** The Hub's message for a token it does not accept (any route, public repos included). */
export const INVALID_CREDENTIALS = 'Invalid credentials in Authorization header';

export function hubErrorFor(a: HubErrorAnswer): HubHttpError {
  const { status: s, code, message, url, what } = a;
  const detail = message ? `: ${message}` : '';
  if (code === 'RevisionNotFound') return new RevisionNotFoundError(`Revision not found for ${what}${detail}`, s, url);
  if (code === 'EntryNotFound' || (s === 404 && !code && a.plain404IsEntry))
    return new EntryNotFoundError(`File not found: ${what}${detail}`, s, url);
  if (code === 'GatedRepo')
    return new GatedRepoError(`Access to ${what} is restricted (gated repo)${detail}`, s, url, {
      hint: 'Accept the conditions on the repo page, then pass a token: --token, HF_TOKEN, or `hf auth login`.',
    });
  if (message === 'Access to this resource is disabled.') return new HubHttpError(`Repo ${what} is disabled`, s, url);
  if (code === 'RepoNotFound' || (s === 404 && !code) || (s === 401 && a.hubUrl && message !== INVALID_CREDENTIALS))
    return new RepoNotFoundError(`Repository not found: ${what}`, s, url, {
      hint: 'Check the name; if the repo is private or gated, pass a token (--token or HF_TOKEN).',
    });
  if (s === 401)
    return new UnauthorizedError(`Invalid token for ${what}${detail}`, s, url, { hint: 'Check HF_TOKEN / --token.' });
  if (s === 429) return new RateLimitedError(`Rate limited${detail} (${url})`, s, url, a.retryAfterSeconds);
  if (s === 403)
    return new UnauthorizedError(`Forbidden: ${what}${detail}`, s, url, {
      hint: 'Your token may lack access to this repo.',
    });
  return new ServerError(`HTTP ${s} for ${what}${detail} (${url})`, s, url);
}

/** The mapping the Cache injects into its transfer engine (TransferOptions.errorFor): a body GET names a file. */
export function hubBodyErrorFor(a: ErrorAnswer): HubHttpError {
  return hubErrorFor({ ...a, plain404IsEntry: true });
}
