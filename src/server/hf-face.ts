// The Hugging Face face (docs/protocols.md §Mirror routes): the JSON API routes proxied through the metadata
// cache with access rules, and resolve/ answered by the mirror itself (200/206 with the body, and
// the headers huggingface_hub and @huggingface/hub read) from the store or a single-flight fill.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { clusterFill, type EnsureFrom } from '../cluster/blob-fill.js';
import { ensureBlob } from '../download/hf.js';
import { normalizeEtag, quoteAll, quotePath } from '../hubs/hf.js';
import { INVALID_CREDENTIALS } from '../hubs/http-errors.js';
import { isCommitHash } from '../hubs/repo-ref.js';
import type { RemoteFile, RepoRef, RepoType } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { freshWithin, sharedMetadataOf, type SharedMetadata } from '../cluster/metadata.js';
import { StoreError, StoreUnavailableError } from '../stores/store-errors.js';
import { assertSafeRepoPath } from '../util/safe-path.js';
import { refuses, type Caller, type Decision, type Visibility } from './access.js';
import type { MirrorServices } from './services.js';
import type { Loaded, Lookup } from './metadata-cache.js';
import { MAX_HTTP_DOWNLOAD_SIZE } from './options.js';
import { parseRange, pickHeaders, sendAnswer, sendBlob, sendError, STALE_HEADER, storeDown } from './reply.js';
import { UpstreamDownError, type Answer } from './upstream.js';
import { pathsOfBody, storeMetadata } from './store-metadata.js';
import { stripXetJson, stripXetLinks } from './xet.js';

const TYPE_BY_PLURAL: Record<string, RepoType> = { models: 'model', datasets: 'dataset', spaces: 'space' };
const PREFIX: Record<RepoType, string> = { model: '', dataset: 'datasets/', space: 'spaces/' };
const API_OPS = new Set([
  'revision',
  'tree',
  'paths-info',
  'refs',
  'xet-read-token',
  'commits',
  'discussions',
  'settings',
]);
/** One segment of a repo id (`org` or `name`). */
const ID_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** What the mirror knows of one file at one commit. */
export interface FileMeta {
  commit: string;
  etag: string;
  size: number;
  lfs: boolean;
}

/**
 * What resolve/ learned: the file (`asCaller`: filled with the caller's token, the repo being
 * restricted; `upstream`: who answered), or the answer to replay (an error, a refusal).
 */
type Found =
  | {
      meta: FileMeta;
      stale: boolean;
      asCaller: boolean;
      upstream?: string;
      /** The CDN URL of a resolve HEAD made for this request (fresh: the fill skips its own HEAD). */
      location?: string;
    }
  | { answer: Answer; stale: boolean };

interface Located {
  repo: RepoRef;
  repoKey: string;
  /** Segments after the repo id (still %-encoded). */
  rest: string[];
}

export function registerHfFace(app: FastifyInstance, s: MirrorServices): void {
  const face = new HfFace(s);
  app.get('/api/whoami-v2', (req, reply) => face.whoami(req, reply));
  for (const plural of Object.keys(TYPE_BY_PLURAL)) {
    app.route({
      method: ['GET', 'HEAD', 'POST'],
      url: `/api/${plural}/*`,
      handler: (req, reply) => face.api(req, reply, plural),
    });
  }
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'],
    url: '/api/*',
    handler: (req, reply) => {
      req.hubcache.route = 'hf.unsupported';
      return sendError(
        reply,
        501,
        `The mirror does not serve ${req.method} ${req.url.split('?')[0]} (downloads only)`,
        'MirrorUnsupported',
      );
    },
  });
  app.route({ method: ['GET', 'HEAD'], url: '/*', handler: (req, reply) => face.resolve(req, reply) });
}

/** Path segments of the raw URL (still %-encoded, so `refs%2Fpr%2F1` stays one segment) and its query. */
function splitUrl(raw: string): { segs: string[]; query: string } {
  const q = raw.indexOf('?');
  const pathname = q >= 0 ? raw.slice(0, q) : raw;
  return { segs: pathname.split('/').slice(1), query: q >= 0 ? raw.slice(q) : '' };
}

function decode(seg: string | undefined): string | undefined {
  if (seg === undefined) return undefined;
  try {
    return decodeURIComponent(seg);
  } catch {
    return undefined;
  }
}

/** Repo id of 2 segments (`org/name`) or 1 (`gpt2`), whichever is followed by an operation. */
function locate(type: RepoType, segs: string[], isOp: (s: string | undefined) => boolean): Located | undefined {
  for (const n of [2, 1]) {
    if (segs.length < n) continue;
    if (segs.length > n && !isOp(segs[n])) continue;
    const parts = segs.slice(0, n).map(decode);
    if (parts.some((p) => p === undefined || !ID_SEGMENT.test(p) || p.length > 96)) return undefined;
    const id = parts.join('/');
    return { repo: { hub: 'hf', type, id }, repoKey: `${type}/${id}`, rest: segs.slice(n) };
  }
  return undefined;
}

function downError(reply: FastifyReply, err: unknown): FastifyReply {
  // Cluster mode: upstream could not answer and the shared store, which might have, is down too.
  if (err instanceof StoreUnavailableError) return storeDown(reply, err);
  if (err instanceof UpstreamDownError) {
    return sendError(
      reply,
      err.timeout ? 504 : 502,
      `Upstream unavailable and nothing cached: ${err.message}`,
      'MirrorUpstreamUnavailable',
    );
  }
  throw err;
}

class HfFace {
  /** revision → commit already written to the store's refs/ (saves a write per request). */
  private readonly refsWritten = new Map<string, string>();
  private readonly flaggedLarge = new Set<string>();
  /** Branch/tag revalidations in flight: concurrent callers wait for the one (docs/protocols.md §Mirror caching). */
  private readonly revalidating = new Map<string, Promise<unknown>>();

  /** Cluster mode: metadata shared through the bucket (src/cluster/metadata.ts). */
  private readonly shared: SharedMetadata | undefined;

  constructor(private readonly s: MirrorServices) {
    this.shared = s.cluster ? sharedMetadataOf(s.cluster.s3, s.log) : undefined;
  }

  private mirrorAuth(): string | undefined {
    return this.s.options.upstreamToken ? `Bearer ${this.s.options.upstreamToken}` : undefined;
  }

  /**
   * True when upstream refuses the caller's token itself: the Hub then answers 401 on every route,
   * public repos included, and so does the mirror. Asked once per token hash (whoami-v2) for the
   * access TTL; offline, or with upstream down and nothing known, the token is not judged.
   */
  private async tokenRejected(req: FastifyRequest): Promise<boolean> {
    const s = this.s;
    const caller = s.callerOf(req);
    if (!caller.tokenHash || s.options.offline) return false;
    try {
      const look = await s.meta.get<boolean>(`token|${caller.tokenHash}`, async () => {
        const a = await s.upstreams.request({
          method: 'GET',
          path: '/api/whoami-v2',
          authorization: caller.authorization,
          op: 'whoami',
        });
        const judged = a.status === 401 || a.status < 300;
        return { value: a.status === 401, ttlMs: judged ? s.options.accessTtlMs : s.options.negativeTtlMs };
      });
      return look.value;
    } catch (err) {
      if (err instanceof UpstreamDownError) return false;
      throw err;
    }
  }

  async whoami(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    req.hubcache.route = 'hf.whoami';
    if (this.s.options.offline) return sendError(reply, 504, 'The mirror is offline', 'MirrorOffline');
    const caller = this.s.callerOf(req);
    try {
      // Never cached: the answer belongs to the caller's token alone.
      const a = await this.s.upstreams.request({
        method: 'GET',
        path: '/api/whoami-v2',
        authorization: caller.authorization,
        op: 'whoami',
      });
      return this.sendApiAnswer(req, reply, a, false);
    } catch (err) {
      return downError(reply, err);
    }
  }

  // ---- JSON API -------------------------------------------------------------------------

  async api(req: FastifyRequest, reply: FastifyReply, plural: string): Promise<FastifyReply> {
    const type = TYPE_BY_PLURAL[plural] as RepoType;
    const { segs } = splitUrl(req.raw.url ?? req.url);
    const loc = locate(type, segs.slice(2), (x) => x !== undefined && API_OPS.has(x));
    if (!loc) {
      req.hubcache.route = 'hf.api';
      return sendError(reply, 404, "Sorry, we can't find the page you are looking for.");
    }
    const op = loc.rest[0];
    req.hubcache.route = `hf.${op ?? 'info'}`;
    if (!this.s.access.repoAllowed(loc.repo.id))
      return sendError(reply, 403, `This mirror does not serve ${loc.repo.id}`, 'MirrorRepoDenied');
    if (await this.tokenRejected(req)) return sendError(reply, 401, INVALID_CREDENTIALS);
    if (op === 'xet-read-token')
      return sendError(reply, 404, 'Xet is not available through this mirror; use plain HTTP downloads', 'MirrorNoXet');
    const args = loc.rest.slice(1);
    if (args.some((a) => decode(a) === undefined)) return sendError(reply, 400, 'Bad URL encoding');
    const method = req.method as 'GET' | 'HEAD' | 'POST';
    let rev: string | undefined;
    switch (op) {
      case undefined:
      case 'refs':
        if (method === 'POST') return sendError(reply, 405, 'Method not allowed');
        break;
      case 'revision':
        rev = args.map(decode).join('/');
        if (method === 'POST') return sendError(reply, 405, 'Method not allowed');
        break;
      case 'tree':
        rev = decode(args[0]);
        if (method === 'POST') return sendError(reply, 405, 'Method not allowed');
        break;
      case 'paths-info':
        rev = decode(args[0]);
        if (method !== 'POST') return sendError(reply, 405, 'Method not allowed');
        break;
      default:
        return sendError(
          reply,
          501,
          `The mirror does not serve /api/${plural}/{repo}/${op} (downloads only)`,
          'MirrorUnsupported',
        );
    }
    if (rev === undefined && (op === 'tree' || op === 'paths-info' || op === 'revision'))
      return sendError(reply, 404, 'Missing revision');
    const ttlMs = rev !== undefined && isCommitHash(rev) ? Infinity : this.s.options.metadataTtlMs;
    let body: string | undefined;
    let contentType: string | undefined;
    if (method === 'POST') {
      const b = req.body;
      body = typeof b === 'string' ? b : Buffer.isBuffer(b) ? b.toString('utf8') : JSON.stringify(b ?? {});
      contentType = String(req.headers['content-type'] ?? 'application/json');
    }
    let look: Lookup<Answer & { upstream: string }>;
    try {
      look = await this.apiLookup(req, loc, {
        method,
        path: req.raw.url ?? req.url,
        op: op ?? 'info',
        ttlMs,
        body,
        contentType,
      });
    } catch (err) {
      if (!(err instanceof UpstreamDownError) || op === 'refs' || this.s.access.wasRestricted(loc.repoKey))
        return downError(reply, err);
      // Nothing in memory: what the store holds of this revision, if anything.
      const { query } = splitUrl(req.raw.url ?? req.url);
      const q = new URLSearchParams(query.slice(1));
      const local = await storeMetadata(this.s.options.cacheDir, loc.repo, op ?? 'info', rev ?? 'main', {
        treePath: args.slice(1).map(decode).join('/'),
        recursive: /^(1|true)$/i.test(q.get('recursive') ?? ''),
        blobs: /^(1|true)$/i.test(q.get('blobs') ?? ''),
        paths: pathsOfBody(body, contentType),
      }).catch(() => undefined);
      if (!local) return downError(reply, err);
      const b = local.body as { code?: string; error?: string };
      if (local.status >= 400)
        return sendError(reply.header(STALE_HEADER, '1'), local.status, b.error ?? 'Not found', b.code);
      req.hubcache.stale = true;
      req.hubcache.source = 'store';
      return reply
        .code(200)
        .header(STALE_HEADER, '1')
        .header('content-type', 'application/json; charset=utf-8')
        .send(JSON.stringify(local.body));
    }
    const a = look.value;
    if (op === 'revision' && rev !== undefined && a.status === 200 && !look.stale) this.noteRevisionJson(loc, rev, a);
    return this.sendApiAnswer(req, reply, a, look.stale);
  }

  /**
   * The answer to a metadata request: from the cache, else from upstream — anonymously (or with
   * the mirror's token once the repo is known public), and with the caller's own token when
   * anonymous access is refused. Answers with a caller's token are cached under its hash only.
   */
  private async apiLookup(
    req: FastifyRequest,
    loc: Located,
    r: {
      method: 'GET' | 'HEAD' | 'POST';
      path: string;
      op: string;
      ttlMs: number;
      body?: string | undefined;
      contentType?: string | undefined;
    },
  ): Promise<Lookup<Answer & { upstream: string }>> {
    const s = this.s;
    const caller = s.callerOf(req);
    const bodyKey = r.body === undefined ? '' : createHash('sha256').update(r.body).digest('hex');
    const reqKey = `${r.method} ${r.path} ${bodyKey}`;
    const load = (authorization: string | undefined) => async (): Promise<Loaded<Answer & { upstream: string }>> => {
      if (s.options.offline) throw new UpstreamDownError('the mirror is offline (--offline)', true);
      const a = await s.upstreams.request({
        method: r.method,
        path: r.path,
        authorization,
        ...(r.body !== undefined
          ? { body: r.body, headers: { 'content-type': r.contentType ?? 'application/json' } }
          : {}),
        repoKey: loc.repoKey,
        op: r.op,
      });
      return { value: cleanApiAnswer(a), ttlMs: a.status < 300 ? r.ttlMs : s.options.negativeTtlMs };
    };
    const vis = s.access.getVisibility('meta', loc.repoKey);
    let look: Lookup<Answer & { upstream: string }> | undefined;
    if (!(vis === 'restricted' && caller.tokenHash)) {
      look = await s.meta.get(`api|pub|${reqKey}`, load(vis === 'public' ? this.mirrorAuth() : undefined));
      if (!look.hit && !look.stale)
        s.access.setVisibility('meta', loc.repoKey, refuses(look.value) ? 'restricted' : 'public');
    }
    if ((!look || refuses(look.value)) && caller.tokenHash) {
      look = await s.meta.get(`api|${caller.tokenHash}|${reqKey}`, load(caller.authorization));
      if (!look.hit && !look.stale)
        s.access.setDecision(
          'meta',
          loc.repoKey,
          caller,
          refuses(look.value) ? { allowed: false, answer: look.value } : { allowed: true },
        );
    }
    return look as Lookup<Answer & { upstream: string }>;
  }

  /** A revision answer names the commit a branch/tag is at: reuse it for resolve/ within the TTL. */
  private noteRevisionJson(loc: Located, rev: string, a: Answer & { upstream: string }): void {
    try {
      const sha = (JSON.parse(a.body.toString('utf8')) as { sha?: unknown }).sha;
      if (typeof sha !== 'string' || !isCommitHash(sha)) return;
      if (!isCommitHash(rev)) this.s.meta.set(`rev|${loc.repoKey}|${rev}`, sha, this.s.options.metadataTtlMs);
      this.s.upstreams.recordRevision(loc.repoKey, a.upstream, rev, sha);
    } catch {
      /* not JSON: passed on as is */
    }
  }

  private sendApiAnswer(req: FastifyRequest, reply: FastifyReply, a: Answer, stale: boolean): FastifyReply {
    // The one difference from a plain replay: pagination links point at the mirror.
    const link = rewriteLink(a.headers.link, this.s.originOf(req));
    return sendAnswer(req, reply, a, { stale, headers: { link } });
  }

  // ---- resolve ---------------------------------------------------------------------------

  async resolve(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    req.hubcache.route = 'hf.resolve';
    const { segs } = splitUrl(req.raw.url ?? req.url);
    let type: RepoType = 'model';
    let rest = segs;
    if (segs[0] === 'datasets' || segs[0] === 'spaces') {
      type = segs[0] === 'datasets' ? 'dataset' : 'space';
      rest = segs.slice(1);
    }
    const loc = locate(type, rest, (x) => x === 'resolve');
    if (!loc || loc.rest[0] !== 'resolve' || loc.rest.length < 3) {
      req.hubcache.route = 'notfound';
      return sendError(reply, 404, "Sorry, we can't find the page you are looking for.");
    }
    const rev = decode(loc.rest[1]);
    const parts = loc.rest.slice(2).map(decode);
    if (rev === undefined || rev === '' || parts.some((p) => p === undefined))
      return sendError(reply, 400, 'Bad URL encoding');
    const filePath = parts.join('/');
    try {
      assertSafeRepoPath(filePath);
    } catch (err) {
      return sendError(reply, 400, (err as Error).message, 'MirrorUnsafePath');
    }
    if (!this.s.access.repoAllowed(loc.repo.id))
      return sendError(reply, 403, `This mirror does not serve ${loc.repo.id}`, 'MirrorRepoDenied');
    if (await this.tokenRejected(req)) return sendError(reply, 401, INVALID_CREDENTIALS);

    let found: Found;
    try {
      found = await this.fileMeta(req, loc, rev, filePath);
    } catch (err) {
      return downError(reply, err);
    }
    if ('answer' in found) return this.sendResolveError(req, reply, found.answer, found.stale);
    const { meta } = found;
    // What huggingface_hub reads from the final response (docs/protocols.md §HF file metadata), set only on success.
    const identify = (): FastifyReply => {
      reply.header('x-repo-commit', meta.commit);
      reply.header('etag', `"${meta.etag}"`);
      reply.header('x-linked-etag', `"${meta.etag}"`);
      reply.header('x-linked-size', String(meta.size));
      reply.header('content-type', 'application/octet-stream');
      if (found.stale) {
        reply.header(STALE_HEADER, '1');
        req.hubcache.stale = true;
      }
      return reply;
    };
    if (meta.size > MAX_HTTP_DOWNLOAD_SIZE) this.flagLarge(loc, filePath, meta.size);

    const key = { repo: loc.repo, etag: meta.etag };
    const st = await this.s.store.stat(key);
    if (st && st.size === meta.size) {
      void this.s.store.markUsed(key);
      await this.writeRef(loc, rev, meta.commit);
      const buffer =
        req.method === 'GET' && st.localPath && st.mtimeMs !== undefined
          ? await this.s.hot.get(st.localPath, st.size, st.mtimeMs)
          : undefined;
      return sendBlob(req, identify(), {
        size: meta.size,
        source: 'store',
        ...(buffer ? { buffer } : {}),
        open: (a, b) => this.s.store.read(key, { start: a, end: b }),
      });
    }
    if (this.s.options.offline)
      return sendError(
        reply,
        504,
        `${loc.repo.id}/${filePath} is not in the mirror's store (offline)`,
        'MirrorOffline',
      );
    // A HEAD starts the fill too: huggingface_hub sends HEAD then GET, and the GET joins the running fill.
    const range = parseRange(req.headers.range, meta.size);
    const c = this.s.cluster;
    if (c && typeof range === 'object' && !this.s.fills.get(fillKey(loc, meta))) {
      // A range of a blob the cluster has but this replica does not: straight from S3, no local fill.
      try {
        const remote = await c.s3.stat({ etag: meta.etag });
        if (remote && remote.size === meta.size) {
          c.counters.s3RangeReads++;
          await this.writeRef(loc, rev, meta.commit);
          return sendBlob(req, identify(), {
            size: meta.size,
            source: 'store',
            open: (a, b) => c.s3.read({ etag: meta.etag }, { start: a, end: b }),
          });
        }
      } catch (err) {
        if (err instanceof StoreUnavailableError) return storeDown(reply, err);
        throw err;
      }
    }
    const fill = this.startFill(
      loc,
      rev,
      filePath,
      meta,
      found.asCaller ? this.s.callerOf(req) : undefined,
      found.upstream,
      found.location,
    );
    if (req.method === 'HEAD')
      return sendBlob(req, identify(), {
        size: meta.size,
        source: 'none',
        open: () => Promise.reject(new Error('HEAD')),
      });
    // Headers go out with the first byte: a fill that fails before it still gets a proper 502.
    try {
      await fill.whenAvailable(typeof range === 'object' ? range.start : 0);
    } catch (err) {
      if (err instanceof StoreUnavailableError) return storeDown(reply, err);
      return sendError(
        reply,
        502,
        `Fetching ${filePath} from upstream failed: ${(err as Error).message}`,
        'MirrorFillFailed',
      );
    }
    return sendBlob(req, identify(), { size: meta.size, source: 'fill', open: (a, b) => fill.stream(a, b) });
  }

  private startFill(
    loc: Located,
    rev: string,
    filePath: string,
    meta: FileMeta,
    caller: Caller | undefined,
    upstream: string | undefined,
    location: string | undefined,
  ) {
    const s = this.s;
    const file: RemoteFile = { path: filePath, size: meta.size, lfs: meta.lfs };
    if (meta.lfs) file.sha256 = meta.etag;
    else file.gitOid = meta.etag;
    // A restricted repo is filled with the (accepted) caller's token, a public one with the mirror's.
    const token = caller?.authorization ? caller.authorization.slice('Bearer '.length) : s.options.upstreamToken;
    const urls = upstream ? [upstream, ...s.upstreams.urls.filter((u) => u !== upstream)] : s.upstreams.urls;
    let attempt = 0;
    const fill = s.fills.join(fillKey(loc, meta), {
      size: meta.size,
      repo: loc.repoKey,
      path: filePath,
      upstream: urls[0] as string,
      run: async (onPartial, signal) => {
        const first = attempt === 0;
        const endpoint = urls[Math.min(attempt++, urls.length - 1)] as string;
        const knownLocation = first && endpoint === upstream ? location : undefined;
        const ensure: EnsureFrom = async (source, sig = signal) =>
          (
            await ensureBlob(s.hfContext(endpoint, token), loc.repo, meta.commit, file, {
              onPartial,
              signal: sig,
              ...(source ? { source } : {}),
              ...(knownLocation ? { knownLocation } : {}),
            })
          ).path;
        const p = s.cluster
          ? await clusterFill(s.cluster, {
              key: meta.etag,
              size: meta.size,
              repoKey: loc.repoKey,
              ensure,
              signal,
              log: s.log,
            })
          : await ensure();
        await this.writeRef(loc, rev, meta.commit);
        return p;
      },
    });
    // A caller that joined with another branch name records its ref too.
    fill.done.then(
      () => this.writeRef(loc, rev, meta.commit),
      () => undefined,
    );
    return fill;
  }

  /**
   * Commit, etag and size of a file, with the caller's access checked: from memory or the store
   * when possible (a warm request within the TTL makes no upstream call), else one HEAD upstream.
   */
  private async fileMeta(req: FastifyRequest, loc: Located, rev: string, filePath: string): Promise<Found> {
    const s = this.s;
    const caller = s.callerOf(req);
    const vis = s.access.getVisibility('content', loc.repoKey);
    const decision = s.access.getDecision('content', loc.repoKey, caller);
    if (decision && !decision.allowed) return { answer: decision.answer, stale: false };
    const accessOk = vis === 'public' || decision?.allowed === true;
    const rc = new HfRepoCache(s.options.cacheDir, loc.repo);
    const knownCommit = isCommitHash(rev) ? rev : s.meta.peek<string>(`rev|${loc.repoKey}|${rev}`);
    const commit = typeof knownCommit === 'string' ? knownCommit : knownCommit?.fresh ? knownCommit.value : undefined;
    if (accessOk && commit) {
      const fm = await this.knownFile(rc, loc, commit, filePath);
      if (fm) return { meta: fm, stale: false, asCaller: vis !== 'public' };
    }
    if (s.options.offline) return this.fromStoreOnly(rc, loc, rev, filePath, false);
    // Cluster mode: what another replica learned, within the TTL, with access as for memory.
    const shared = await this.fromBucket(loc, rev, filePath, vis, accessOk, false);
    if (shared) return shared;
    // One revalidation per branch name: wait for one in flight, then the commit may be all we needed.
    const revKey = `${loc.repoKey}|${rev}`;
    const inflight = accessOk && !commit ? this.revalidating.get(revKey) : undefined;
    if (inflight) {
      await inflight.catch(() => undefined);
      const c = s.meta.peek<string>(`rev|${loc.repoKey}|${rev}`);
      const fm = c?.fresh ? await this.knownFile(rc, loc, c.value, filePath) : undefined;
      if (fm) return { meta: fm, stale: false, asCaller: vis !== 'public' };
    }
    const own = this.headChecked(req, loc, rev, filePath, vis, decision, rc);
    if (!isCommitHash(rev) && !this.revalidating.has(revKey)) {
      this.revalidating.set(revKey, own);
      void own.finally(() => this.revalidating.delete(revKey)).catch(() => undefined);
    }
    return own;
  }

  /** The upstream HEAD of fileMeta, with access learned from it (anonymous first, then the caller's token). */
  private async headChecked(
    req: FastifyRequest,
    loc: Located,
    rev: string,
    filePath: string,
    vis: Visibility | undefined,
    decision: Decision | undefined,
    rc: HfRepoCache,
  ): Promise<Found> {
    const s = this.s;
    const caller = s.callerOf(req);

    const head = (authorization: string | undefined, ident: string) =>
      s.meta.get(
        `head|${ident}|${loc.repoKey}|${rev}|${filePath}`,
        async (): Promise<Loaded<Answer & { upstream: string }>> => {
          const a = await this.headUpstream(loc, rev, filePath, authorization);
          return { value: a, ttlMs: a.status < 400 ? s.options.metadataTtlMs : s.options.negativeTtlMs };
        },
      );
    let look: Lookup<Answer & { upstream: string }> | undefined;
    let asCaller = false;
    try {
      if (!(vis === 'restricted' && caller.tokenHash)) {
        look = await head(vis === 'public' ? this.mirrorAuth() : undefined, 'pub');
        if (!look.hit && !look.stale)
          s.access.setVisibility('content', loc.repoKey, refuses(look.value) ? 'restricted' : 'public');
      }
      if ((!look || refuses(look.value)) && caller.tokenHash) {
        look = await head(caller.authorization, caller.tokenHash);
        asCaller = true;
        if (!look.hit && !look.stale)
          s.access.setDecision(
            'content',
            loc.repoKey,
            caller,
            refuses(look.value) ? { allowed: false, answer: look.value } : { allowed: true },
          );
      }
    } catch (err) {
      // Upstream down and nothing in memory: the store still knows what it holds (stale-if-error),
      // unless the repo is restricted and this caller's access is unknown.
      if (err instanceof UpstreamDownError && !(s.access.wasRestricted(loc.repoKey) && decision?.allowed !== true)) {
        const local = await this.fromStoreOnly(rc, loc, rev, filePath, true).catch(() => undefined);
        if (local && 'meta' in local) return local;
        // Then the bucket, however old (a StoreUnavailableError here is the caller's 503).
        const shared = await this.fromBucket(loc, rev, filePath, vis, decision?.allowed === true, true);
        if (shared) return shared;
      }
      throw err;
    }
    const a = (look as Lookup<Answer & { upstream: string }>).value;
    const stale = (look as Lookup<Answer>).stale;
    if (a.status >= 400) return { answer: a, stale };
    const meta = parseFileMeta(a);
    if (!meta)
      return {
        answer: {
          status: 502,
          headers: {
            'content-type': 'application/json',
            'x-error-message': 'Upstream resolve answer lacks X-Repo-Commit, ETag or size',
          },
          body: Buffer.from('{"error":"Upstream resolve answer lacks X-Repo-Commit, ETag or size"}'),
        },
        stale,
      };
    if (!stale) {
      if (!isCommitHash(rev)) s.meta.set(`rev|${loc.repoKey}|${rev}`, meta.commit, s.options.metadataTtlMs);
      s.meta.set(`file|${loc.repoKey}|${meta.commit}|${filePath}`, meta, Infinity);
      s.upstreams.recordRevision(loc.repoKey, a.upstream, rev, meta.commit);
      // Fresh from upstream: tell the other replicas (public only if it came without the caller's token).
      if (!(look as Lookup<Answer>).hit) await this.shareFile(loc, rev, filePath, meta, !asCaller);
    }
    const fresh = !stale && !(look as Lookup<Answer>).hit;
    const location = a.headers.location;
    return {
      meta,
      stale,
      asCaller,
      upstream: a.upstream,
      ...(fresh && meta.lfs && location && /^https?:\/\//i.test(location) ? { location } : {}),
    };
  }

  /**
   * Cluster mode: file metadata another replica wrote to the bucket. A record past the TTL counts only
   * when `anyAge` (upstream is down: the answer is then stale). Access: the caller's own (`accessOk`),
   * or the record's mark that upstream served the repo without a token. Store errors: none when
   * fresh-only (upstream is asked instead), thrown when `anyAge` (nothing else can answer).
   */
  private async fromBucket(
    loc: Located,
    rev: string,
    filePath: string,
    vis: Visibility | undefined,
    accessOk: boolean,
    anyAge: boolean,
  ): Promise<Found | undefined> {
    const sm = this.shared;
    if (!sm) return undefined;
    const ttl = anyAge ? Infinity : this.s.options.metadataTtlMs;
    const { type, id } = loc.repo;
    try {
      let commit: string | undefined;
      let refPublic = false;
      let refFresh = true;
      if (isCommitHash(rev)) commit = rev;
      else {
        const ref = await sm.hfRef(type, id, rev);
        if (ref && isCommitHash(ref.commit) && freshWithin(ref.fetchedAt, ttl)) {
          commit = ref.commit;
          refPublic = ref.public === true;
          refFresh = freshWithin(ref.fetchedAt, this.s.options.metadataTtlMs);
          if (refFresh) {
            const left = Date.parse(ref.fetchedAt) + this.s.options.metadataTtlMs - Date.now();
            this.s.meta.set(`rev|${loc.repoKey}|${rev}`, commit, left);
          }
        }
      }
      const f = commit ? await sm.hfFile(type, id, commit, filePath, ttl) : undefined;
      const isPublic = f !== undefined && (isCommitHash(rev) ? f.isPublic : refPublic);
      if (!commit || !f || !(accessOk || isPublic)) {
        sm.note(false);
        return undefined;
      }
      sm.note(true);
      const meta: FileMeta = { commit, ...f.file };
      this.s.meta.set(`file|${loc.repoKey}|${commit}|${filePath}`, meta, Infinity);
      return { meta, stale: anyAge && !refFresh, asCaller: vis !== 'public' && !isPublic };
    } catch (err) {
      if (anyAge || !(err instanceof StoreError)) throw err;
      this.s.log.warn({ err, repo: loc.repoKey }, 'shared store unreadable: asking upstream');
      return undefined;
    }
  }

  /** Cluster mode: the ref and the file's metadata to the bucket (errors logged, not fatal). */
  private async shareFile(loc: Located, rev: string, filePath: string, meta: FileMeta, isPublic: boolean) {
    const sm = this.shared;
    if (!sm) return;
    const { type, id } = loc.repo;
    const file = { etag: meta.etag, size: meta.size, lfs: meta.lfs };
    await Promise.all([
      isCommitHash(rev) ? undefined : sm.writeHfRef(type, id, rev, meta.commit, isPublic),
      sm.addHfFile(type, id, meta.commit, filePath, file, isPublic, this.s.options.metadataTtlMs),
    ]);
  }

  /** HEAD resolve/ upstream, following relative redirects (renamed repos) but never an absolute one (the CDN). */
  private async headUpstream(
    loc: Located,
    rev: string,
    filePath: string,
    authorization: string | undefined,
  ): Promise<Answer & { upstream: string }> {
    let p = `/${PREFIX[loc.repo.type]}${loc.repo.id}/resolve/${quoteAll(rev)}/${quotePath(filePath)}`;
    for (let hop = 0; ; hop++) {
      const a = await this.s.upstreams.request({
        method: 'HEAD',
        path: p,
        authorization,
        headers: { 'accept-encoding': 'identity' },
        repoKey: loc.repoKey,
        op: 'resolve',
      });
      const location = a.headers.location;
      if (a.status >= 300 && a.status < 400 && location && !/^[a-z][a-z0-9+.-]*:/i.test(location) && hop < 5) {
        p = new URL(location, 'http://x').pathname;
        continue;
      }
      return a;
    }
  }

  /** File metadata at a commit from memory, else from the store's snapshot link. */
  private async knownFile(
    rc: HfRepoCache,
    loc: Located,
    commit: string,
    filePath: string,
  ): Promise<FileMeta | undefined> {
    const mem = this.s.meta.peek<FileMeta>(`file|${loc.repoKey}|${commit}|${filePath}`);
    if (mem) return mem.value;
    const fm = await fileFromStore(rc, commit, filePath);
    if (fm) this.s.meta.set(`file|${loc.repoKey}|${commit}|${filePath}`, fm, Infinity);
    return fm;
  }

  /** Offline or upstream down: what the store holds (refs/ for the revision, the snapshot link for the file). */
  private async fromStoreOnly(
    rc: HfRepoCache,
    loc: Located,
    rev: string,
    filePath: string,
    stale: boolean,
  ): Promise<Found> {
    if (this.s.options.offline && this.s.access.wasRestricted(loc.repoKey)) {
      return {
        answer: jsonAnswer(
          403,
          `${loc.repo.id} is gated or private: the offline mirror cannot check your access`,
          'MirrorOffline',
        ),
        stale: false,
      };
    }
    const commit = await rc.resolveLocal(rev);
    const fm = commit ? await fileFromStore(rc, commit, filePath) : undefined;
    if (!fm)
      return {
        answer: jsonAnswer(
          504,
          `${loc.repo.id}/${filePath}@${rev} is not in the mirror's store (offline)`,
          'MirrorOffline',
        ),
        stale: false,
      };
    return { meta: fm, stale, asCaller: false };
  }

  private sendResolveError(req: FastifyRequest, reply: FastifyReply, a: Answer, stale: boolean): FastifyReply {
    reply.code(a.status);
    for (const [k, v] of Object.entries(pickHeaders(a.headers))) reply.header(k, v);
    if (!a.headers['content-type']) reply.header('content-type', 'application/json; charset=utf-8');
    if (stale) reply.header(STALE_HEADER, '1');
    req.hubcache.source = 'upstream';
    if (req.method === 'HEAD' || a.body.length === 0) return reply.send();
    return reply.send(a.body);
  }

  private async writeRef(loc: Located, rev: string, commit: string): Promise<void> {
    if (isCommitHash(rev)) return;
    const k = `${loc.repoKey}|${rev}`;
    if (this.refsWritten.get(k) === commit) return;
    this.refsWritten.set(k, commit);
    try {
      await new HfRepoCache(this.s.options.cacheDir, loc.repo).writeRef(rev, commit);
    } catch (err) {
      this.refsWritten.delete(k);
      this.s.log.warn({ err, repo: loc.repoKey }, 'could not record the revision in the store');
    }
  }

  private flagLarge(loc: Located, filePath: string, size: number): void {
    const k = `${loc.repoKey}/${filePath}`;
    if (this.flaggedLarge.has(k)) return;
    this.flaggedLarge.add(k);
    this.s.events.emit('large-file', { repo: loc.repoKey, path: filePath, size });
    this.s.log.warn(
      { repo: loc.repoKey, path: filePath, size },
      'file over 50 GB: huggingface_hub refuses to download it over plain HTTP (it needs Xet, which this mirror hides)',
    );
  }
}

function jsonAnswer(status: number, message: string, code: string): Answer {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-error-code': code, 'x-error-message': message },
    body: Buffer.from(JSON.stringify({ error: message })),
  };
}

/** The single-flight key of a blob's fill. */
function fillKey(loc: Located, meta: FileMeta): string {
  return `${loc.repoKey}/${meta.etag}`;
}

/** Commit, etag and size from a resolve HEAD answer (docs/protocols.md §HF file metadata), or undefined if incomplete. */
function parseFileMeta(a: Answer): FileMeta | undefined {
  const commit = a.headers['x-repo-commit'];
  const linked = a.headers['x-linked-etag'];
  const etagRaw = linked || a.headers.etag;
  const sizeRaw = a.headers['x-linked-size'] ?? (a.status < 300 ? a.headers['content-length'] : undefined);
  const size = Number(sizeRaw);
  if (!commit || !isCommitHash(commit) || !etagRaw || sizeRaw === undefined || !Number.isSafeInteger(size) || size < 0)
    return undefined;
  const etag = normalizeEtag(etagRaw).toLowerCase();
  if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(etag)) return undefined;
  return { commit, etag, size, lfs: etag.length === 64 };
}

async function fileFromStore(rc: HfRepoCache, commit: string, filePath: string): Promise<FileMeta | undefined> {
  try {
    const ptr = rc.snapshotPath(commit, filePath);
    const target = await fsp.readlink(ptr);
    const etag = target.slice(target.lastIndexOf('/') + 1);
    if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(etag)) return undefined;
    const st = await fsp.stat(rc.blobPath(etag));
    return { commit, etag, size: st.size, lfs: etag.length === 64 };
  } catch {
    return undefined;
  }
}

/** Upstream JSON without xetHash; only the headers a client needs (Link is rewritten per request). */
function cleanApiAnswer(a: Answer & { upstream: string }): Answer & { upstream: string } {
  const headers = pickHeaders(a.headers, [
    'content-type',
    'x-error-code',
    'x-error-message',
    'x-repo-commit',
    'x-total-count',
    'link',
  ]);
  let body = a.body;
  if (a.status < 300 && /json/i.test(a.headers['content-type'] ?? '') && body.length > 0) {
    try {
      body = Buffer.from(JSON.stringify(stripXetJson(JSON.parse(body.toString('utf8')))));
    } catch {
      /* not JSON after all: passed on */
    }
  }
  return { status: a.status, headers, body, upstream: a.upstream };
}

/** Every URL of a Link header moved onto the mirror's origin (path and query kept); Xet relations dropped. */
export function rewriteLink(link: string | undefined, origin: string): string | undefined {
  const kept = stripXetLinks(link);
  if (!kept) return undefined;
  return kept.replace(/<([^>]*)>/g, (_m, url: string) => {
    try {
      const u = new URL(url, origin);
      return `<${origin}${u.pathname}${u.search}>`;
    } catch {
      return '<>';
    }
  });
}
