// ModelScope Hub protocol, as the legacy SDK (modelscope ≤1.37) speaks it: revision name
// resolution through the revisions API, the recursive file list with per-file sha256 and Revision,
// and the download URL that answers 302 to a signed CDN URL (the transfer engine follows it and
// drops the auth headers on the way). See docs/protocols.md §ModelScope revision resolution,
// §ModelScope file list and §ModelScope file download.
import {
  type HubHttpError,
  RateLimitedError,
  RepoNotFoundError,
  RevisionNotFoundError,
  ServerError,
  UnauthorizedError,
  UsageError,
} from '../errors.js';
import type { Http1Client } from '../http/client.js';
import { assertSafeRepoPath } from '../util/safe-path.js';
import { httpRequest, readJson, readText, redactUrl, sameOrigin, type HttpResponse } from './http.js';
import {
  isCommitHash,
  remoteSize,
  type DownloadSource,
  type RemoteFile,
  type RepoRef,
  type Snapshot,
} from './types.js';

/** The SDK never downloads or caches these two (docs/protocols.md §ModelScope file list). */
const SKIPPED_NAMES = new Set(['.gitignore', '.gitattributes']);

/** Owner used by the SDK for ids without a slash. */
export const MS_DEFAULT_OWNER = 'damo';

/** `name` → `damo/name`; `org/name` unchanged (docs/protocols.md §ModelScope repo folder). */
export function msModelId(id: string): string {
  return id.includes('/') ? id : `${MS_DEFAULT_OWNER}/${id}`;
}

/** Python `quote_plus`: like encodeURIComponent, but space → `+` and `!'()*~` as Python has them. */
export function quotePlus(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** One branch or tag from the revisions API. */
export interface MsRevision {
  /** The branch or tag name: what file-list and download URLs use. */
  name: string;
  kind: 'branch' | 'tag';
  /** Unix seconds. */
  createdAt?: number;
}

export interface ModelScopeClientOptions {
  endpoint: string;
  token?: string | undefined;
  timeoutMs?: number;
  /** Connection pool (a Cache passes its own); default: the process-wide metadata pool. */
  http?: Http1Client | undefined;
  /**
   * The SDK's "release timestamp" (unix seconds) used only when no revision is requested: the
   * newest tag created at or before it wins. Default: now.
   */
  releaseTimestamp?: number;
}

/** The `{Code, Message, Data, Success}` envelope of every /api/v1 answer. */
interface Envelope {
  Code?: unknown;
  Message?: unknown;
  Success?: unknown;
  Data?: unknown;
}

interface RawRevision {
  Revision?: unknown;
  CreatedAt?: unknown;
}

interface RawFile {
  Name?: unknown;
  Path?: unknown;
  Type?: unknown;
  Size?: unknown;
  Sha256?: unknown;
  Revision?: unknown;
}

const TOKEN_HINT =
  'If the repo is private, pass a token: --token or MODELSCOPE_API_TOKEN (or ~/.modelscope/credentials/git_token).';

export class ModelScopeClient {
  readonly endpoint: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly releaseTimestamp: number | undefined;
  private readonly http: Http1Client | undefined;

  constructor(opts: ModelScopeClientOptions) {
    this.http = opts.http;
    this.endpoint = opts.endpoint.replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.releaseTimestamp = opts.releaseTimestamp;
  }

  /** The SDK sends the token as the `m_session_id` cookie, newer routes as a Bearer token; we send both, to our origin only. */
  authHeaders(url: string): Record<string, string> {
    if (!this.token || !sameOrigin(url, this.endpoint)) return {};
    return { cookie: `m_session_id=${this.token}`, authorization: `Bearer ${this.token}` };
  }

  private modelBase(repo: RepoRef): string {
    assertModelRepo(repo);
    return `${this.endpoint}/api/v1/models/${msModelId(repo.id)}`;
  }

  /** GET an /api/v1 route and return its `Data`, mapping HTTP statuses and `Code != 200` to typed errors. */
  private async getData(
    url: string,
    what: string,
    extraHeaders: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<unknown> {
    const res = await httpRequest(url, {
      headers: { ...this.authHeaders(url), accept: 'application/json', ...extraHeaders },
      signal,
      timeoutMs: this.timeoutMs,
      http: this.http,
    });
    if (res.status >= 400) throw await this.errorFor(res, what);
    if (res.status >= 300)
      throw new ServerError(`Unexpected redirect (HTTP ${res.status}) from ${redactUrl(url)}`, res.status, url);
    const body = await readJson(res);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ServerError(`Answer from ${redactUrl(url)} is not a JSON object`, res.status, url);
    }
    const env = body as Envelope;
    if (env.Code !== 200 && env.Code !== undefined) throw envelopeError(env, res.status, url, what);
    if (env.Success === false) throw envelopeError(env, res.status, url, what);
    return env.Data;
  }

  private async errorFor(res: HttpResponse, what: string): Promise<HubHttpError> {
    const text = await readText(res, 64 * 1024).catch(() => '');
    let message: string | undefined;
    try {
      const j = JSON.parse(text) as Envelope;
      if (typeof j.Message === 'string' && j.Message) message = j.Message;
    } catch {
      /* not JSON */
    }
    const detail = message ? `: ${message.slice(0, 300)}` : '';
    const { status: s, url } = res;
    if (s === 404) {
      if (message && /revision|branch|tag/i.test(message))
        return new RevisionNotFoundError(`Revision not found for ${what}${detail}`, s, url);
      return new RepoNotFoundError(`Repository not found on ModelScope: ${what}${detail}`, s, url, {
        hint: `Check the name (org/name, case-sensitive). ${TOKEN_HINT}`,
      });
    }
    if (s === 401 || s === 403) {
      const hint = this.token
        ? 'The token was refused or has no access to this repo; check MODELSCOPE_API_TOKEN / --token.'
        : TOKEN_HINT;
      return new UnauthorizedError(`Access denied to ${what} (HTTP ${s})${detail}`, s, url, { hint });
    }
    if (s === 429) {
      const ra = Number.parseFloat(res.headers['retry-after'] ?? '');
      return new RateLimitedError(
        `Rate limited by ${redactUrl(url)}${detail}`,
        s,
        url,
        Number.isFinite(ra) ? ra : undefined,
      );
    }
    return new ServerError(`HTTP ${s} from ${redactUrl(url)}${detail}`, s, url);
  }

  /** GET /api/v1/models/{id}/revisions: branches and tags (tags newest first, docs/protocols.md §ModelScope revisions). */
  async revisions(repo: RepoRef, signal?: AbortSignal): Promise<{ branches: MsRevision[]; tags: MsRevision[] }> {
    const url = `${this.modelBase(repo)}/revisions`;
    const data = await this.getData(url, repo.id, {}, signal);
    const map = (data as { RevisionMap?: { Branches?: unknown; Tags?: unknown } } | null)?.RevisionMap;
    if (typeof map !== 'object' || map === null)
      throw new ServerError(`No RevisionMap in the revisions of ${repo.id}`, 200, url);
    return { branches: parseRevisions(map.Branches, 'branch', url), tags: parseRevisions(map.Tags, 'tag', url) };
  }

  /**
   * The legacy SDK's resolution for a normal release (docs/protocols.md §ModelScope revision resolution): a branch name wins, then
   * `master`, then a tag name. With no revision: the newest tag created before the release
   * timestamp, else `master`. Commit hashes are refused, as the SDK refuses them.
   */
  async resolveRevision(repo: RepoRef, requested: string | undefined, signal?: AbortSignal): Promise<MsRevision> {
    const { branches, tags } = await this.revisions(repo, signal);
    const branch = (name: string): MsRevision | undefined => branches.find((b) => b.name === name);
    const notFound = (why: string): RevisionNotFoundError => {
      const valid = [...branches.map((b) => b.name), ...tags.map((t) => t.name)];
      const hashHint =
        requested && isCommitHash(requested)
          ? 'ModelScope downloads are addressed by branch or tag name; the SDK does not accept commit hashes either. '
          : '';
      return new RevisionNotFoundError(
        `Revision ${requested ?? '(latest tag)'} not found for ${repo.id}: ${why}`,
        undefined,
        undefined,
        {
          hint: `${hashHint}Valid revisions: ${valid.slice(0, 20).join(', ') || 'none'}.`,
        },
      );
    };
    if (requested !== undefined) {
      const b = branch(requested);
      if (b) return b;
    }
    if (tags.length === 0) {
      if (requested !== undefined && requested !== 'master') throw notFound('not a branch, and the repo has no tags');
      return branch('master') ?? throwIt(notFound('the repo has no master branch'));
    }
    if (requested === undefined) {
      const limit = this.releaseTimestamp ?? Math.floor(Date.now() / 1000);
      return (
        tags.find((t) => t.createdAt === undefined || t.createdAt <= limit) ??
        branch('master') ??
        throwIt(notFound('no tag and no master branch'))
      );
    }
    if (requested === 'master' && !tags.some((t) => t.name === 'master'))
      return branch('master') ?? throwIt(notFound('no master branch'));
    const tag = tags.find((t) => t.name === requested);
    if (tag) return tag;
    throw notFound('not a branch or tag');
  }

  /** GET /api/v1/models/{id}/repo/files?Revision=&Recursive=True: every file, validated (docs/protocols.md §ModelScope file list). */
  async listFiles(repo: RepoRef, revisionName: string, signal?: AbortSignal): Promise<RemoteFile[]> {
    const url = `${this.modelBase(repo)}/repo/files?Revision=${quotePlus(revisionName)}&Recursive=True`;
    const data = await this.getData(url, `${repo.id}@${revisionName}`, { snapshot: 'True' }, signal);
    const raw = (data as { Files?: unknown } | null)?.Files;
    if (raw === null || raw === undefined) return [];
    if (!Array.isArray(raw)) throw new ServerError(`Data.Files of ${repo.id} is not a list`, 200, url);
    const files: RemoteFile[] = [];
    const seen = new Set<string>();
    for (const e of raw as RawFile[]) {
      const f = parseFileEntry(e, url);
      if (!f || seen.has(f.path)) continue;
      seen.add(f.path);
      files.push(f);
    }
    return files;
  }

  /** Revision → branch/tag + complete file list. `commit` is the resolved name (spec types.ts). */
  async snapshot(repo: RepoRef, revision: string | undefined, signal?: AbortSignal): Promise<Snapshot> {
    const rev = await this.resolveRevision(repo, revision, signal);
    const files = await this.listFiles(repo, rev.name, signal);
    const snap: Snapshot = { repo, revision: revision ?? rev.name, commit: rev.name, files };
    if (rev.createdAt !== undefined) snap.createdAt = rev.createdAt;
    return snap;
  }

  /** `/api/v1/models/{id}/repo?Revision=&FilePath=`, both quote_plus-encoded (docs/protocols.md §ModelScope file download). */
  downloadUrl(repo: RepoRef, revisionName: string, path: string): string {
    return `${this.modelBase(repo)}/repo?Revision=${quotePlus(revisionName)}&FilePath=${quotePlus(path)}`;
  }

  /**
   * Where to GET a file: the API URL with auth. It answers 302 to a signed CDN URL; the transfer
   * engine follows it, drops cookie/authorization when the origin changes and pins the target.
   */
  downloadSource(repo: RepoRef, revisionName: string, file: RemoteFile): DownloadSource {
    const url = this.downloadUrl(repo, revisionName, file.path);
    return { url, headers: { ...this.authHeaders(url), 'accept-encoding': 'identity' } };
  }
}

function throwIt(err: Error): never {
  throw err;
}

function assertModelRepo(repo: RepoRef): void {
  if (repo.type !== 'model') {
    throw new UsageError(`ModelScope ${repo.type}s are not supported yet (${repo.id})`, {
      hint: 'Only ModelScope models can be downloaded for now.',
    });
  }
}

function envelopeError(env: Envelope, status: number, url: string, what: string): HubHttpError {
  const message =
    typeof env.Message === 'string' && env.Message ? env.Message.slice(0, 300) : `Code ${String(env.Code)}`;
  if (env.Code === 404 || /not ?exist|not found/i.test(message)) {
    if (/revision|branch|tag/i.test(message))
      return new RevisionNotFoundError(`Revision not found for ${what}: ${message}`, status, url);
    return new RepoNotFoundError(`Not found on ModelScope: ${what}: ${message}`, status, url, { hint: TOKEN_HINT });
  }
  if (env.Code === 401 || env.Code === 403)
    return new UnauthorizedError(`Access denied to ${what}: ${message}`, status, url, { hint: TOKEN_HINT });
  return new ServerError(`ModelScope refused ${what}: ${message}`, status, url);
}

function parseRevisions(raw: unknown, kind: MsRevision['kind'], url: string): MsRevision[] {
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) throw new ServerError(`Revision list (${kind}es) is not a list`, 200, url);
  return (raw as RawRevision[]).map((r) => {
    if (typeof r?.Revision !== 'string' || r.Revision === '')
      throw new ServerError(`A ${kind} without a name in ${redactUrl(url)}`, 200, url);
    const out: MsRevision = { name: r.Revision, kind };
    // A date we cannot believe (negative, past year 275760) is left out rather than trusted.
    const created = typeof r.CreatedAt === 'number' ? Math.trunc(r.CreatedAt) : NaN;
    if (Number.isSafeInteger(created) && created >= 0 && created <= 8.64e12) out.createdAt = created;
    return out;
  });
}

/** One listing entry → RemoteFile, or undefined for directories and skipped names. Throws on anything unsafe or malformed. */
function parseFileEntry(e: RawFile, url: string): RemoteFile | undefined {
  if (typeof e !== 'object' || e === null) throw new ServerError(`Malformed file entry in ${redactUrl(url)}`, 200, url);
  if (e.Type === 'tree') return undefined;
  const p = e.Path;
  if (typeof p !== 'string') throw new ServerError(`File entry without a Path in ${redactUrl(url)}`, 200, url);
  assertSafeRepoPath(p);
  const name = typeof e.Name === 'string' ? e.Name : p.slice(p.lastIndexOf('/') + 1);
  if (SKIPPED_NAMES.has(name)) return undefined;
  const size = remoteSize(e.Size);
  if (size === undefined) {
    throw new ServerError(`Bad Size ${JSON.stringify(e.Size)} for ${p} in ${redactUrl(url)}`, 200, url);
  }
  if (typeof e.Revision !== 'string' || e.Revision === '')
    throw new ServerError(`No Revision for ${p} in ${redactUrl(url)}`, 200, url);
  const f: RemoteFile = { path: p, size, msRevision: e.Revision };
  if (typeof e.Sha256 === 'string' && e.Sha256 !== '') {
    const sha = e.Sha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new ServerError(`Bad Sha256 for ${p} in ${redactUrl(url)}`, 200, url);
    f.sha256 = sha;
  } else if (e.Sha256 !== null && e.Sha256 !== undefined) {
    throw new ServerError(`Bad Sha256 for ${p} in ${redactUrl(url)}`, 200, url);
  }
  return f;
}
