// GET /_hubcache/peer/blobs/<key>?repo=<fill key prefix>: a replica streams a blob to another replica of its
// cluster, from its running fill (following the verified-order prefix, with the fill's hold-back),
// from its local cache, or from S3. Only requests signed with the cluster secret are answered.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createReadStream, promises as fsp } from 'node:fs';
import { parseRange, sendBlob, sendError, storeDown } from '../server/reply.js';
import type { MirrorServices, RouteModule } from '../server/services.js';
import { StoreNotFoundError, StoreUnavailableError } from '../stores/store-errors.js';
import { PEER_HEADER, verifyPeerRequest, type PeerCheck } from './peer-auth.js';

export const PEER_PREFIX = '/_hubcache/peer/';
const KEY_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** The fill-key prefix a face uses: `model/org/name` (HF, also dataset/space) or `modelscope/org/name`. */
const REPO_KEY_RE = /^(?:model|dataset|space|modelscope)\/[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

export const peerRoutes: RouteModule = (app, s) => {
  const c = s.cluster;
  if (!c) return;
  /** A stale signature is a bare 403 (the engine re-signs and retries); anything else is 401. */
  const refused = (req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined => {
    const check: PeerCheck = verifyPeerRequest(c.secret, req.headers[PEER_HEADER], 'GET', req.url);
    if (check === 'expired') return sendError(reply, 403, 'peer signature expired');
    if (check === 'invalid') return sendError(reply, 401, 'not a signed request of this cluster', 'PeerAuthRequired');
    return undefined;
  };
  // What this replica did for the cluster (other replicas, the dashboard's cluster view, tests).
  app.get(`${PEER_PREFIX}status`, async (req, reply) => {
    req.hubcache.route = 'peer';
    return (
      refused(req, reply) ??
      reply.send({ replica: c.replicaId, address: c.address, counters: c.counters, fills: s.fills.active() })
    );
  });
  app.get(`${PEER_PREFIX}blobs/:key`, async (req, reply) => {
    req.hubcache.route = 'peer';
    const no = refused(req, reply);
    if (no) return no;
    const key = (req.params as { key: string }).key;
    const repo = (req.query as { repo?: unknown }).repo;
    if (!KEY_RE.test(key) || typeof repo !== 'string' || !REPO_KEY_RE.test(repo) || repo.includes('..'))
      return sendError(reply, 400, 'bad blob key or repo', 'PeerBadRequest');
    c.counters.peerServed++;
    return servePeerBlob(s, req, reply, key, repo);
  });
};

async function servePeerBlob(
  s: MirrorServices,
  req: FastifyRequest,
  reply: FastifyReply,
  key: string,
  repoKey: string,
): Promise<FastifyReply> {
  reply.header('content-type', 'application/octet-stream');
  const fill = s.fills.get(`${repoKey}/${key}`);
  if (fill) {
    const range = parseRange(req.headers.range, fill.size);
    try {
      await fill.whenAvailable(typeof range === 'object' ? range.start : 0);
    } catch (err) {
      return sendError(reply, 502, `fill failed on this replica: ${(err as Error).message}`, 'PeerFillFailed');
    }
    return sendBlob(req, reply, { size: fill.size, source: 'fill', open: (a, b) => fill.stream(a, b) });
  }
  // The file this replica filled (either hub's layout), else the HF cache's copy in any repo.
  const filled = s.cluster!.localFile(key);
  const st = (filled && (await fsp.stat(filled).catch(() => undefined))) || undefined;
  if (filled && st?.isFile()) {
    return sendBlob(req, reply, {
      size: st.size,
      source: 'store',
      open: (a, b) => createReadStream(filled, { start: a, end: b - 1 }),
    });
  }
  const local = await s.store.stat({ etag: key });
  if (local?.localPath) {
    const lp = local.localPath;
    return sendBlob(req, reply, {
      size: local.size,
      source: 'store',
      open: (a, b) => createReadStream(lp, { start: a, end: b - 1 }),
    });
  }
  const s3 = s.cluster!.s3;
  try {
    const remote = await s3.stat({ etag: key });
    if (!remote) return sendError(reply, 404, `blob ${key} is not on this replica`, 'PeerBlobNotFound');
    return await sendBlob(req, reply, {
      size: remote.size,
      source: 'store',
      open: (a, b) => s3.read({ etag: key }, { start: a, end: b }),
    });
  } catch (err) {
    if (err instanceof StoreNotFoundError) return sendError(reply, 404, `blob ${key} is gone`, 'PeerBlobNotFound');
    if (err instanceof StoreUnavailableError) return storeDown(reply, err);
    throw err;
  }
}
