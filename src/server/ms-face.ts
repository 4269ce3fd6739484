// The ModelScope face (docs/protocols.md §Mirror ModelScope face): what the modelscope SDK (≤1.37 and modelscope_hub) and
// hubcache call under /api/v1/models/{owner}/{name}: model info, /revisions and /repo/files
// passed through the metadata cache with their envelope ({Code, Success, Message, Data}) and the
// per-file Sha256/Revision unchanged, and downloads (/repo?Revision=&FilePath=) answered by the
// mirror itself with the body (200/206), from the ModelScope layout of the store or from a
// single-flight fill. Tokens arrive as the `m_session_id` cookie or a Bearer header; a repo that
// anonymous callers cannot list is served only to callers whose own token upstream accepted.
import { randomBytes } from 'node:crypto';
import { promises as fsp, createReadStream } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { clusterFill, type EnsureFrom } from '../cluster/blob-fill.js';
import { ensureMsFile, type MsDownloadContext } from '../download/modelscope.js';
import { ModelScopeClient, quotePlus } from '../hubs/modelscope.js';
import type { RemoteFile, RepoRef } from '../hubs/types.js';
import { ModelScopeCache } from '../layouts/modelscope-cache.js';
import { freshWithin, sharedMetadataOf, type SharedMetadata } from '../cluster/metadata.js';
import { StoreError, StoreUnavailableError } from '../stores/store-errors.js';
import { assertSafeRepoPath } from '../util/safe-path.js';
import { hashToken, type Caller } from './access.js';
import type { Loaded, Lookup } from './metadata-cache.js';
import { parseRange, sendBlob, STALE_HEADER } from './reply.js';
import type { MirrorServices } from './services.js';
import { msStoreMetadata } from './store-metadata.js';
import { UpstreamDownError, type Answer } from './upstream.js';

const ID_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const JSON_TYPE = 'application/json; charset=utf-8';

type MsOp = 'info' | 'revisions' | 'files';
/** What a store-built answer needs of the request's query. */
type MsStoreQuery = Parameters<typeof msStoreMetadata>[3];

/** The caller as ModelScope sees them: the token of the cookie or of the Bearer header. */
interface MsCaller {
  token?: string;
  tokenHash?: string;
}

interface MsRepo {
  repo: RepoRef;
  /** `modelscope/owner/name`: key for access decisions, upstream records and metadata. */
  repoKey: string;
  /** `/api/v1/models/owner/name` (upstream path prefix). */
  base: string;
}

/** A file list entry as the mirror needs it for a download. */
interface MsFileEntry {
  path: string;
  size: number;
  sha256?: string;
  revision: string;
}

function requestId(): string {
  return randomBytes(16).toString('hex');
}

/** The envelope every /api/v1 answer has, for the mirror's own errors. */
export function sendEnvelopeError(
  reply: FastifyReply,
  status: number,
  message: string,
  code: number = status,
): FastifyReply {
  reply.code(status).header('content-type', 'application/json; charset=utf-8');
  return reply.send(
    JSON.stringify({ Code: code, Data: null, Message: message, RequestId: requestId(), Success: false }),
  );
}

function msCallerOf(s: MirrorServices, req: FastifyRequest): MsCaller {
  const c: Caller = s.callerOf(req); // Bearer, already split from the mirror's API key
  if (c.authorization) {
    const token = c.authorization.slice('Bearer '.length);
    return { token, tokenHash: hashToken(token) };
  }
  const m = /(?:^|;\s*)m_session_id=([^;]+)/.exec(String(req.headers.cookie ?? ''));
  if (!m?.[1]) return {};
  let token = m[1];
  try {
    token = decodeURIComponent(token);
  } catch {
    /* kept as sent */
  }
  return { token, tokenHash: hashToken(token) };
}

/** Upstream refused this caller the repo itself (not a missing file or revision). */
function msRefuses(a: Answer, op: string): boolean {
  return a.status === 401 || a.status === 403 || (a.status === 404 && (op === 'info' || op === 'revisions'));
}

/** `Code != 200` or `Success: false` in a 2xx answer (a bad revision can look like that). */
function envelopeFailed(a: Answer): boolean {
  try {
    const j = JSON.parse(a.body.toString('utf8')) as { Code?: unknown; Success?: unknown };
    return (j.Code !== undefined && j.Code !== 200) || j.Success === false;
  } catch {
    return true;
  }
}

export function registerMsFace(app: FastifyInstance, s: MirrorServices): void {
  const face = new MsFace(s);
  app.route({ method: ['GET', 'HEAD'], url: '/api/v1/models/*', handler: (req, reply) => face.models(req, reply) });
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'],
    url: '/api/v1/*',
    handler: (req, reply) => {
      req.hubcache.route = 'ms.unsupported';
      return sendEnvelopeError(
        reply,
        501,
        `The mirror does not serve ${req.method} ${req.url.split('?')[0]} (ModelScope models, downloads only)`,
      );
    },
  });
}

class MsFace {
  private readonly ctx: MsDownloadContext;
  private readonly cache: ModelScopeCache;
  /** Files found complete and indexed in the store: `repoKey|path|sha256|revision` → path. */
  private readonly present = new Map<string, string>();

  /** Cluster mode: revision file lists shared through the bucket (src/cluster/metadata.ts). */
  private readonly shared: SharedMetadata | undefined;

  /** A client per upstream token, on the Cache's pool (one pool for metadata and bodies). */
  private clientFor(token: string | undefined): ModelScopeClient {
    return new ModelScopeClient({ endpoint: this.ctx.endpoint, token, http: this.s.cache.http });
  }

  constructor(private readonly s: MirrorServices) {
    this.shared = s.cluster ? sharedMetadataOf(s.cluster.s3, s.log) : undefined;
    const cacheDir = path.resolve(s.options.cacheDir);
    this.ctx = { cacheDir, endpoint: s.options.modelscopeUpstream, offline: false, engine: s.cache.engine };
    this.cache = new ModelScopeCache(cacheDir, cacheDir);
  }

  async models(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const raw = req.raw.url ?? req.url;
    const q = raw.indexOf('?');
    const segs = (q >= 0 ? raw.slice(0, q) : raw).split('/').slice(4);
    const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
    const [owner, name, ...rest] = segs.map((x) => {
      try {
        return decodeURIComponent(x);
      } catch {
        return '\0';
      }
    });
    const op = rest.join('/');
    req.hubcache.route = `ms.${op === '' ? 'info' : op === 'repo' ? 'download' : op === 'repo/files' ? 'files' : op === 'revisions' ? 'revisions' : 'other'}`;
    if (!owner || !name || !ID_SEGMENT.test(owner) || !ID_SEGMENT.test(name) || owner.length > 96 || name.length > 96) {
      return sendEnvelopeError(reply, 404, 'Not found');
    }
    const id = `${owner}/${name}`;
    const loc: MsRepo = {
      repo: { hub: 'modelscope', type: 'model', id },
      repoKey: `modelscope/${id}`,
      base: `/api/v1/models/${owner}/${name}`,
    };
    if (!this.s.access.repoAllowed(id)) return sendEnvelopeError(reply, 403, `This mirror does not serve ${id}`);
    if (req.method === 'HEAD' && op !== 'repo') return sendEnvelopeError(reply, 405, 'Method not allowed');
    try {
      switch (op) {
        case '':
          return await this.passThrough(req, reply, loc, 'info', this.pathWith(loc.base, query, ['Revision']), {
            revision: query.get('Revision'),
          });
        case 'revisions':
          return await this.passThrough(
            req,
            reply,
            loc,
            'revisions',
            this.pathWith(`${loc.base}/revisions`, query, ['EndTime']),
            {},
          );
        case 'repo/files': {
          const revision = query.get('Revision');
          const p = this.filesPath(loc, revision, query.get('Recursive'), query.get('Root'));
          // The whole list of a named revision is what the bucket shares (the download's listing).
          const whole = p === this.filesPath(loc, revision, 'True', null);
          const storeQuery = {
            revision,
            recursive: /^(true|1)$/i.test(query.get('Recursive') ?? ''),
            root: query.get('Root'),
          };
          return await this.passThrough(req, reply, loc, 'files', p, storeQuery, whole ? revision : null);
        }
        case 'repo':
          return await this.download(req, reply, loc, query);
        default:
          return sendEnvelopeError(reply, 501, `The mirror does not serve /api/v1/models/{id}/${op} (downloads only)`);
      }
    } catch (err) {
      if (err instanceof StoreUnavailableError) return storeDownEnvelope(reply, err);
      if (err instanceof UpstreamDownError) {
        return sendEnvelopeError(
          reply,
          err.timeout ? 504 : 502,
          `ModelScope upstream unavailable and nothing cached: ${err.message}`,
        );
      }
      throw err;
    }
  }

  /** Upstream path with only the named query parameters, in a fixed order (one cache key per meaning). */
  private pathWith(base: string, query: URLSearchParams, names: string[]): string {
    const parts = names.filter((n) => query.get(n) !== null).map((n) => `${n}=${quotePlus(query.get(n) as string)}`);
    return parts.length ? `${base}?${parts.join('&')}` : base;
  }

  /** The file list route as the SDK sends it (`Recursive=True`, Python's bool spelling). */
  private filesPath(loc: MsRepo, revision: string | null, recursive: string | null, root: string | null): string {
    const parts: string[] = [];
    if (revision !== null) parts.push(`Revision=${quotePlus(revision)}`);
    if (recursive !== null) parts.push(`Recursive=${/^(true|1)$/i.test(recursive) ? 'True' : 'False'}`);
    if (root !== null && root !== '') parts.push(`Root=${quotePlus(root)}`);
    return `${loc.base}/repo/files${parts.length ? `?${parts.join('&')}` : ''}`;
  }

  /**
   * An upstream answer through the metadata cache and the access rules: anonymous first; when
   * that is refused and the caller has a token, with the caller's token (cached under its hash).
   * Upstream down (or --offline) with nothing in memory: the store's own answer, flagged stale,
   * unless the repo was ever found restricted.
   */
  private async lookup(
    req: FastifyRequest,
    loc: MsRepo,
    op: MsOp,
    upstreamPath: string,
    query: MsStoreQuery,
    /** The whole file list of this named revision: shared through the bucket in cluster mode. */
    sharedRevision: string | null = null,
  ): Promise<Lookup<Answer>> {
    try {
      return await this.upstreamLookup(req, loc, op, upstreamPath, sharedRevision);
    } catch (err) {
      if (!(err instanceof UpstreamDownError) || this.s.access.wasRestricted(loc.repoKey)) throw err;
      const local = await msStoreMetadata(this.s.options.cacheDir, loc.repo.id, op, query).catch(() => undefined);
      if (!local) throw err;
      const body = Buffer.from(JSON.stringify(local.body));
      return { value: { status: local.status, headers: { 'content-type': JSON_TYPE }, body }, stale: true, hit: false };
    }
  }

  private async upstreamLookup(
    req: FastifyRequest,
    loc: MsRepo,
    op: MsOp,
    upstreamPath: string,
    sharedRevision: string | null,
  ): Promise<Lookup<Answer>> {
    const s = this.s;
    const caller = msCallerOf(s, req);
    const load = (token: string | undefined) => async (): Promise<Loaded<Answer>> => {
      if (s.options.offline) throw new UpstreamDownError('the mirror is offline (--offline)', true);
      const a = await s.msUpstreams.request({
        method: 'GET',
        path: upstreamPath,
        authorization: token ? `Bearer ${token}` : undefined,
        headers: { accept: 'application/json', ...(token ? { cookie: `m_session_id=${token}` } : {}) },
        repoKey: loc.repoKey,
        op: `ms.${op}`,
      });
      const value: Answer = {
        status: a.status,
        headers: { 'content-type': a.headers['content-type'] ?? 'application/json' },
        body: a.body,
      };
      const good = a.status < 300 && !envelopeFailed(a);
      return { value, ttlMs: good ? s.options.metadataTtlMs : s.options.negativeTtlMs };
    };
    const vis = s.access.getVisibility('meta', loc.repoKey);
    let look: Lookup<Answer> | undefined;
    if (!(vis === 'restricted' && caller.tokenHash)) {
      const anonymous = load(undefined);
      look = await s.meta.get(
        `ms|pub|${upstreamPath}`,
        sharedRevision !== null && this.shared ? this.viaBucket(loc, sharedRevision, anonymous) : anonymous,
      );
      if (!look.hit && !look.stale && (msRefuses(look.value, op) || look.value.status < 300))
        this.learn(loc, msRefuses(look.value, op));
    }
    if ((!look || msRefuses(look.value, op)) && caller.tokenHash) {
      look = await s.meta.get(`ms|${caller.tokenHash}|${upstreamPath}`, load(caller.token));
    }
    return look as Lookup<Answer>;
  }

  /**
   * Cluster mode: an anonymous file list from the bucket while within the TTL, else from upstream
   * (a good answer is then written to the bucket). Upstream down: the bucket's record however old,
   * stale; the bucket unreadable too: its StoreUnavailableError (503). Only anonymous answers are
   * shared, so a private repo's list never reaches the bucket.
   */
  private viaBucket(loc: MsRepo, revision: string, load: () => Promise<Loaded<Answer>>) {
    const sm = this.shared as SharedMetadata;
    const ttl = this.s.options.metadataTtlMs;
    return async (): Promise<Loaded<Answer>> => {
      let rec: Awaited<ReturnType<SharedMetadata['msRevision']>>;
      let readError: StoreError | undefined;
      try {
        rec = await sm.msRevision(loc.repo.id, revision);
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        readError = err;
        this.s.log.warn({ err, repo: loc.repoKey }, 'shared store unreadable: asking upstream');
      }
      const asAnswer = (r: NonNullable<typeof rec>): Answer => ({
        status: r.status,
        headers: r.headers,
        body: Buffer.from(r.body, 'utf8'),
      });
      sm.note(rec !== undefined && freshWithin(rec.fetchedAt, ttl));
      if (rec && freshWithin(rec.fetchedAt, ttl))
        return { value: asAnswer(rec), ttlMs: Date.parse(rec.fetchedAt) + ttl - Date.now() };
      let l: Loaded<Answer>;
      try {
        l = await load();
      } catch (err) {
        if (!(err instanceof UpstreamDownError)) throw err;
        if (rec) return { value: asAnswer(rec), ttlMs: 0, stale: true };
        throw readError instanceof StoreUnavailableError ? readError : err;
      }
      const a = l.value;
      if (a.status < 300 && !envelopeFailed(a)) {
        await sm.writeMsRevision(loc.repo.id, revision, {
          status: a.status,
          headers: { 'content-type': a.headers['content-type'] ?? 'application/json' },
          body: a.body.toString('utf8'),
        });
      }
      return l;
    };
  }

  /** Visibility learned from an anonymous answer; a restricted repo is remembered across restarts. */
  private learn(loc: MsRepo, restricted: boolean): void {
    const v = restricted ? 'restricted' : 'public';
    this.s.access.setVisibility('meta', loc.repoKey, v);
    this.s.access.setVisibility('content', loc.repoKey, v);
  }

  private async passThrough(
    req: FastifyRequest,
    reply: FastifyReply,
    loc: MsRepo,
    op: MsOp,
    upstreamPath: string,
    query: MsStoreQuery,
    sharedRevision: string | null = null,
  ): Promise<FastifyReply> {
    const look = await this.lookup(req, loc, op, upstreamPath, query, sharedRevision);
    const a = look.value;
    reply.code(a.status).header('content-type', a.headers['content-type'] ?? 'application/json');
    if (look.stale) {
      reply.header(STALE_HEADER, '1');
      req.hubcache.stale = true;
    }
    req.hubcache.source = 'upstream';
    req.hubcache.bytes += a.body.length;
    return reply.send(a.body);
  }

  /** `/repo?Revision=&FilePath=`: the file's entry from the (cached) file list, then its bytes. */
  private async download(
    req: FastifyRequest,
    reply: FastifyReply,
    loc: MsRepo,
    query: URLSearchParams,
  ): Promise<FastifyReply> {
    const filePath = query.get('FilePath') ?? '';
    const revision = query.get('Revision');
    try {
      assertSafeRepoPath(filePath);
    } catch (err) {
      return sendEnvelopeError(reply, 400, (err as Error).message);
    }
    const look = await this.lookup(
      req,
      loc,
      'files',
      this.filesPath(loc, revision, 'True', null),
      { revision, recursive: true },
      revision,
    );
    const a = look.value;
    if (a.status >= 300 || envelopeFailed(a)) {
      // The listing's own error (403 private, 404 revision...) is the download's answer.
      reply.code(a.status >= 300 ? a.status : 404).header('content-type', 'application/json');
      req.hubcache.source = 'upstream';
      return reply.send(a.body);
    }
    const entry = findEntry(a, filePath);
    if (!entry) return sendEnvelopeError(reply, 404, `The file ${filePath} does not exist in ${loc.repo.id}`);
    if (look.stale) {
      reply.header(STALE_HEADER, '1');
      req.hubcache.stale = true;
    }
    reply.header('content-type', 'application/octet-stream');
    if (entry.sha256) reply.header('etag', `"${entry.sha256}"`);
    const file: RemoteFile = { path: entry.path, size: entry.size, msRevision: entry.revision };
    if (entry.sha256) file.sha256 = entry.sha256;

    const local = await this.inStore(loc, file);
    if (local) {
      return sendBlob(req, reply, {
        size: file.size,
        source: 'store',
        open: (s, e) => createReadStream(local, { start: s, end: e - 1 }),
      });
    }
    if (this.s.options.offline)
      return sendEnvelopeError(reply, 504, `${loc.repo.id}/${filePath} is not in the mirror's store (offline)`);
    // A restricted repo is filled with the (accepted) caller's token, a public one anonymously.
    const token =
      this.s.access.getVisibility('content', loc.repoKey) === 'restricted' ? msCallerOf(this.s, req).token : undefined;
    const fill = this.s.fills.join(`${loc.repoKey}/${file.sha256 ?? `${file.msRevision}/${file.path}`}`, {
      size: file.size,
      repo: loc.repoKey,
      path: file.path,
      upstream: this.s.msUpstreams.primary,
      run: async (onPartial, signal) => {
        const ensure: EnsureFrom = async (source, sig = signal) =>
          (
            await ensureMsFile(
              { ...this.ctx, token, client: this.clientFor(token) },
              loc.repo,
              revision ?? 'master',
              file,
              {
                onPartial,
                signal: sig,
                ...(source ? { source } : {}),
              },
            )
          ).path;
        // In a cluster, files with a sha256 (all but the odd legacy one) are blobs of the shared store.
        const c = this.s.cluster;
        return c && file.sha256
          ? clusterFill(c, { key: file.sha256, size: file.size, repoKey: loc.repoKey, ensure, signal, log: this.s.log })
          : ensure();
      },
    });
    // A HEAD starts the fill too (as on the HF face): the GET that follows joins it.
    if (req.method === 'HEAD')
      return sendBlob(req, reply, { size: file.size, source: 'none', open: () => Promise.reject(new Error('HEAD')) });
    const range = parseRange(req.headers.range, file.size);
    try {
      await fill.whenAvailable(typeof range === 'object' ? range.start : 0);
    } catch (err) {
      if (err instanceof StoreUnavailableError) return storeDownEnvelope(reply, err);
      return sendEnvelopeError(reply, 502, `Fetching ${filePath} from ModelScope failed: ${(err as Error).message}`);
    }
    return sendBlob(req, reply, { size: file.size, source: 'fill', open: (s, e) => fill.stream(s, e) });
  }

  /** The file's path in the store's legacy layout when it is there, indexed at this per-file revision, whole. */
  private async inStore(loc: MsRepo, file: RemoteFile): Promise<string | undefined> {
    const k = `${loc.repoKey}|${file.path}|${file.sha256 ?? ''}|${file.msRevision ?? ''}`;
    const d = this.cache.legacy(loc.repo.id);
    const p =
      this.present.get(k) ?? ((await d.isCached(file, await d.readIndex())) ? d.filePath(file.path) : undefined);
    if (!p) return undefined;
    const st = await fsp.stat(p).catch(() => undefined);
    if (!st || st.size !== file.size) {
      this.present.delete(k);
      return undefined;
    }
    if (this.present.size > 100_000) this.present.clear();
    this.present.set(k, p);
    return p;
  }
}

/** The entry of `filePath` in a file list answer (validated: a bad Size or Sha256 is no entry). */
function findEntry(a: Answer, filePath: string): MsFileEntry | undefined {
  try {
    const files = (JSON.parse(a.body.toString('utf8')) as { Data?: { Files?: unknown } }).Data?.Files;
    if (!Array.isArray(files)) return undefined;
    for (const f of files as Array<Record<string, unknown>>) {
      if (f?.Path !== filePath || f.Type === 'tree') continue;
      const size = f.Size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || typeof f.Revision !== 'string')
        return undefined;
      const out: MsFileEntry = { path: filePath, size, revision: f.Revision };
      if (typeof f.Sha256 === 'string' && f.Sha256 !== '') {
        if (!/^[0-9a-fA-F]{64}$/.test(f.Sha256)) return undefined;
        out.sha256 = f.Sha256.toLowerCase();
      }
      return out;
    }
  } catch {
    /* not JSON: no entry */
  }
  return undefined;
}

/** The ModelScope face's 503 for a request that needs the cluster's shared store while it does not answer. */
function storeDownEnvelope(reply: FastifyReply, err: Error): FastifyReply {
  return sendEnvelopeError(
    reply.header('retry-after', '5'),
    503,
    `The mirror's shared store is unavailable: ${err.message}`,
  );
}
