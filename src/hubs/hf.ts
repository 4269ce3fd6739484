// Hugging Face Hub protocol (docs/protocols.md §HF file metadata, §HF snapshot download): revision → commit, recursive
// tree listing with Link pagination, per-file metadata by HEAD on resolve/ without following the
// CDN redirect, and the download source for the transfer engine.
import { type HubHttpError, ServerError } from '../errors.js';
import { hubErrorFor } from './http-errors.js';
import { assertSafeRepoPath } from '../util/safe-path.js';
import type { Http1Client } from '../http/client.js';
import { readErrorMessage } from '../http/error-body.js';
import { parseRetryAfter } from '../transfer/retry.js';
import { drain, httpRequest, readJson, redactUrl, redirectLocation, sameOrigin } from './http.js';
import type { HttpResponse } from './http.js';
import { isCommitHash, remoteSize, remoteSizeHeader } from './types.js';
import type { DownloadSource, RemoteFile, RepoRef, RepoType, Snapshot } from './types.js';

const TYPE_URL_PREFIX: Record<RepoType, string> = { model: '', dataset: 'datasets/', space: 'spaces/' };

/** Python `quote(s, safe="")`: everything but A-Za-z0-9_.-~ is %-encoded. */
export function quoteAll(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
/** Python `quote(path)`: like quoteAll but keeps `/`. */
export function quotePath(s: string): string {
  return s.split('/').map(quoteAll).join('/');
}

/** `W/"abc"` → `abc` (Python `lstrip("W/")` then strip quotes). */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^[W/]+/, '').replace(/^"+|"+$/g, '');
}

export interface HfFileMetadata {
  commit: string;
  etag: string;
  size: number;
  /** Where to GET the bytes: the CDN URL from an absolute redirect, or the resolve URL. */
  location: string;
}

export interface HfClientOptions {
  endpoint: string;
  token?: string | undefined;
  timeoutMs?: number;
  /** Connection pool (a Cache passes its own); default: the process-wide metadata pool. */
  http?: Http1Client | undefined;
}

interface TreeEntry {
  type?: unknown;
  path?: unknown;
  size?: unknown;
  oid?: unknown;
  lfs?: { oid?: unknown; size?: unknown } | null;
}

/**
 * Reads an error answer's message (header or JSON body) and maps it (hubs/http-errors.ts).
 * `fileUrl`: the request named a file (resolve/), so a plain 404 means that file, not the repo.
 */
export async function hfErrorFor(res: HttpResponse, what: string, fileUrl = false): Promise<HubHttpError> {
  const message = await readErrorMessage(res.body);
  return hubErrorFor({
    status: res.status,
    code: res.headers['x-error-code'],
    message,
    url: redactUrl(res.url),
    what,
    retryAfterSeconds: parseRetryAfter(res.headers),
    hubUrl: true,
    plain404IsEntry: fileUrl,
  });
}

export class HfClient {
  readonly endpoint: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly http: Http1Client | undefined;

  constructor(opts: HfClientOptions) {
    this.http = opts.http;
    this.endpoint = opts.endpoint.replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  private authHeaders(url: string): Record<string, string> {
    return this.token && sameOrigin(url, this.endpoint) ? { authorization: `Bearer ${this.token}` } : {};
  }

  private async get(url: string, what: string, signal?: AbortSignal): Promise<HttpResponse> {
    const res = await httpRequest(url, {
      headers: this.authHeaders(url),
      signal,
      timeoutMs: this.timeoutMs,
      http: this.http,
    });
    if (res.status >= 400) throw await hfErrorFor(res, what);
    return res;
  }

  resolveUrl(repo: RepoRef, revision: string, path: string): string {
    return `${this.endpoint}/${TYPE_URL_PREFIX[repo.type]}${repo.id}/resolve/${quoteAll(revision)}/${quotePath(path)}`;
  }

  private apiBase(repo: RepoRef): string {
    return `${this.endpoint}/api/${repo.type}s/${repo.id}`;
  }

  /** GET /api/{type}s/{id}/revision/{rev}: the commit a branch/tag/PR/short hash points to. */
  async repoInfo(
    repo: RepoRef,
    revision: string,
    signal?: AbortSignal,
  ): Promise<{ sha: string; lastModified?: string; private?: boolean; gated?: unknown }> {
    const url = `${this.apiBase(repo)}/revision/${quoteAll(revision)}`;
    const res = await this.get(url, `${repo.id}@${revision}`, signal);
    const j = (await readJson(res)) as { sha?: unknown; lastModified?: unknown; private?: unknown; gated?: unknown };
    if (typeof j?.sha !== 'string' || !isCommitHash(j.sha))
      throw new ServerError(`No commit hash in repo info from ${redactUrl(url)}`, res.status, url);
    const out: { sha: string; lastModified?: string; private?: boolean; gated?: unknown } = { sha: j.sha };
    if (typeof j.lastModified === 'string') out.lastModified = j.lastModified;
    if (typeof j.private === 'boolean') out.private = j.private;
    if (j.gated !== undefined) out.gated = j.gated;
    return out;
  }

  /**
   * Recursive listing of every file at `commit`, following `Link: rel="next"` pages. A server
   * whose next link repeats a page already read, or whose pages stop adding entries, is refused
   * (ServerError) instead of being followed until the page cap.
   */
  async listFiles(repo: RepoRef, commit: string, signal?: AbortSignal): Promise<RemoteFile[]> {
    let url: string | undefined = `${this.apiBase(repo)}/tree/${quoteAll(commit)}?recursive=true&expand=false`;
    const files: RemoteFile[] = [];
    const seen = new Set<string>(); // every listed path, folders too: a page of folders is progress
    const read = new Set<string>();
    for (let page = 0; url; page++) {
      if (page > 100_000) throw new ServerError('Tree pagination does not end', undefined, url);
      read.add(url);
      const res = await this.get(url, `${repo.id}@${commit}`, signal);
      const next = parseNextLink(res.headers.link, url);
      const body = await readJson(res);
      if (!Array.isArray(body))
        throw new ServerError(`Tree listing from ${redactUrl(url)} is not a JSON array`, res.status, url);
      let added = 0;
      for (const e of body as TreeEntry[]) {
        const f = e?.type === 'file' ? parseTreeEntry(e, url) : undefined;
        const p = f?.path ?? (typeof e?.path === 'string' ? e.path : undefined);
        if (p === undefined || seen.has(p)) continue;
        seen.add(p);
        added++;
        if (f) files.push(f);
      }
      if (next) {
        const endless = (why: string): ServerError =>
          new ServerError(
            `Tree pagination of ${repo.id}@${commit} does not end: ${why} (page ${page + 1}, ${redactUrl(String(url))})`,
            res.status,
            url,
          );
        if (!sameOrigin(next, this.endpoint)) {
          throw new ServerError(`Pagination link leaves the endpoint: ${redactUrl(next)}`, res.status, url);
        }
        if (read.has(next)) throw endless('the next link points to a page already read');
        if (added === 0) throw endless('a page added no new entry but links to another');
      }
      url = next;
    }
    return files;
  }

  /** Revision → commit + full file list (one repo-info call unless `revision` is already a commit). */
  async snapshot(repo: RepoRef, revision: string, signal?: AbortSignal): Promise<Snapshot> {
    let commit = revision;
    let lastModified: string | undefined;
    if (!isCommitHash(revision)) {
      const info = await this.repoInfo(repo, revision, signal);
      commit = info.sha;
      lastModified = info.lastModified;
    }
    const files = await this.listFiles(repo, commit, signal);
    const snap: Snapshot = { repo, revision, commit, files };
    if (lastModified) snap.lastModified = lastModified;
    return snap;
  }

  /**
   * HEAD on resolve/ (docs/protocols.md §HF file metadata): follows only relative redirects (renamed repos), stops at an
   * absolute one (the CDN) and reads commit, etag and size from the headers.
   */
  async fileMetadata(repo: RepoRef, revision: string, path: string, signal?: AbortSignal): Promise<HfFileMetadata> {
    let url = this.resolveUrl(repo, revision, path);
    for (let hop = 0; hop < 10; hop++) {
      const res = await httpRequest(url, {
        method: 'HEAD',
        headers: { ...this.authHeaders(url), 'accept-encoding': 'identity' },
        signal,
        timeoutMs: this.timeoutMs,
        http: this.http,
      });
      if (res.status >= 400) throw await hfErrorFor(res, `${repo.id}/${path}@${revision}`, true);
      await drain(res);
      const loc = res.status >= 300 && res.status < 400 ? res.headers.location : undefined;
      const target = loc ? redirectLocation(url, loc, res.status) : undefined;
      if (loc && target && !/^[a-z][a-z0-9+.-]*:/i.test(loc)) {
        url = target; // relative: same origin, new path
        continue;
      }
      const commit = res.headers['x-repo-commit'];
      const etagRaw = res.headers['x-linked-etag'] || res.headers.etag;
      const sizeRaw = res.headers['x-linked-size'] ?? (res.status < 300 ? res.headers['content-length'] : undefined);
      const size = remoteSizeHeader(sizeRaw);
      if (!commit || !etagRaw || size === undefined) {
        throw new ServerError(
          `Incomplete file metadata for ${path} from ${redactUrl(url)} (need X-Repo-Commit, ETag, size)`,
          res.status,
          url,
        );
      }
      return { commit, etag: normalizeEtag(etagRaw), size, location: target ?? url };
    }
    throw new ServerError(`Too many redirects for ${path}`, undefined, url);
  }

  /**
   * Where to GET a file. LFS files redirect to a CDN: one HEAD finds the signed URL so every
   * parallel range goes straight there, without the token. Plain git files come from resolve/.
   */
  /** `knownLocation`: the CDN URL a resolve HEAD just gave the caller (saves asking again). */
  async downloadSource(
    repo: RepoRef,
    commit: string,
    file: RemoteFile,
    signal?: AbortSignal,
    knownLocation?: string,
  ): Promise<DownloadSource> {
    const resolve = this.resolveUrl(repo, commit, file.path);
    if (!file.lfs) return { url: resolve, headers: { ...this.authHeaders(resolve), 'accept-encoding': 'identity' } };
    const location = knownLocation ?? (await this.fileMetadata(repo, commit, file.path, signal)).location;
    return { url: location, headers: { ...this.authHeaders(location), 'accept-encoding': 'identity' } };
  }
}

function parseTreeEntry(e: TreeEntry, url: string): RemoteFile {
  const p = e.path;
  if (typeof p !== 'string') throw new ServerError(`Tree entry without a path from ${redactUrl(url)}`, undefined, url);
  assertSafeRepoPath(p);
  const size = remoteSize(e.size);
  const where = `in the tree listing from ${redactUrl(url)}`;
  if (size === undefined) throw new ServerError(`Bad size ${JSON.stringify(e.size)} for ${p} ${where}`, undefined, url);
  const f: RemoteFile = { path: p, size };
  if (typeof e.oid === 'string' && /^[0-9a-f]{40}$/.test(e.oid)) f.gitOid = e.oid;
  if (e.lfs && typeof e.lfs === 'object') {
    const oid = e.lfs.oid;
    if (typeof oid !== 'string' || !/^[0-9a-f]{64}$/.test(oid))
      throw new ServerError(`Bad LFS oid for ${p} in tree listing`, undefined, url);
    f.sha256 = oid;
    f.lfs = true;
    if (e.lfs.size !== undefined && e.lfs.size !== null) {
      const lfsSize = remoteSize(e.lfs.size);
      if (lfsSize === undefined) {
        throw new ServerError(`Bad LFS size ${JSON.stringify(e.lfs.size)} for ${p} ${where}`, undefined, url);
      }
      f.size = lfsSize;
    }
  } else {
    f.lfs = false;
    if (!f.gitOid) throw new ServerError(`No oid for ${p} in tree listing`, undefined, url);
  }
  return f;
}

/** Extracts the `rel="next"` URL of an RFC 8288 Link header, resolved against the request URL. */
export function parseNextLink(link: string | undefined, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /\brel\s*=\s*"?next"?/i.test(m[2] ?? '')) return new URL(m[1] as string, base).toString();
  }
  return undefined;
}
