// Raw HTTP tests of the test hub itself: every other test relies on it being a faithful fake.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Client, request } from 'undici';
import { generatedContent } from './fixtures/content.js';
import { lfsPointer, MS_BAD_REVISION_CODE, startTestHub, type TestHub, type TestRepo } from './fixtures/test-hub.js';

const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

interface Res {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function http(
  url: string,
  opts: {
    method?: 'GET' | 'HEAD' | 'POST';
    headers?: Record<string, string>;
    body?: string;
    bodyTimeout?: number;
  } = {},
): Promise<Res> {
  const r = await request(url, {
    method: opts.method ?? 'GET',
    headers: opts.headers,
    body: opts.body,
    bodyTimeout: opts.bodyTimeout ?? 10_000,
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers, body };
}

const json = <T = unknown>(r: Res): T => JSON.parse(r.body.toString('utf8')) as T;

interface TreeEntry {
  type: string;
  oid: string;
  size: number;
  path: string;
  lfs?: { oid: string; size: number; pointerSize: number };
  lastCommit?: { id: string; title: string; date: string };
}

const CONFIG = Buffer.from('{"a":1}\n');
const README = Buffer.from('# readme\n');
const WEIGHTS = Buffer.alloc(100_000, 3);
const BIG = { size: 3 * 1024 * 1024 + 17, seed: 42 };
const bigContent = generatedContent(BIG.size, BIG.seed);
const BIG_BYTES = bigContent.toBuffer();

describe('test hub', () => {
  let hub: TestHub;
  let repo: TestRepo;
  let c1: string;
  let c2: string;
  let pr: string;

  before(async () => {
    hub = await startTestHub({ pageSize: 2 });
    repo = hub.hf.createRepo('org/model');
    c1 = repo.commit({
      'config.json': CONFIG,
      'README.md': README,
      'model.safetensors': WEIGHTS,
      'big.bin': BIG,
      'sub/dir/x.txt': 'x',
      'sub/y.txt': 'y',
    });
    repo.tag('v1.0', c1);
    c2 = repo.commit({ 'config.json': '{"a":2}\n' }, { message: 'Bump config\n\nbody' });
    repo.branch('dev', c1);
    pr = repo.openPr(c1);
    repo.commit({ 'pr-only.txt': 'pr' }, { branch: pr });
    hub.hf.createRepo('org/private', { private: true }).commit({ 'a.txt': 'secret' });
    hub.hf.createRepo('org/gated', { gated: 'manual' }).commit({ 'a.txt': 'gated', 'w.safetensors': WEIGHTS });
    hub.hf.createRepo('org/data', { type: 'dataset' }).commit({ 'data/train.parquet': WEIGHTS });
    hub.hf.createRepo('org/off', { disabled: true }).commit({ 'a.txt': 'x' });
    hub.tokens.add('hf_good', { canAccessGated: true, name: 'alice' });
    hub.tokens.add('hf_nogate');
  });
  after(async () => hub.close());

  const resolveUrl = (rev: string, path: string, id = 'org/model'): string =>
    `${hub.hfEndpoint}/${id}/resolve/${rev}/${path}`;

  describe('HF resolve', () => {
    test('HEAD on a git file: 200, ETag = git blob sha1, size, commit', async () => {
      const r = await http(resolveUrl('main', 'README.md'), {
        method: 'HEAD',
        headers: { 'accept-encoding': 'identity' },
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers.etag, `"${gitSha1(README)}"`);
      assert.equal(r.headers['content-length'], String(README.length));
      assert.equal(r.headers['x-repo-commit'], c2);
      assert.equal(r.headers['accept-ranges'], 'bytes');
      assert.equal(r.headers['x-linked-etag'], undefined);
      assert.equal(r.headers['x-linked-size'], undefined);
      assert.equal(r.body.length, 0);
    });

    test('HEAD on an LFS file: 302 to the CDN with X-Linked-Etag/Size; its own ETag differs', async () => {
      const r = await http(resolveUrl('main', 'model.safetensors'), { method: 'HEAD' });
      assert.equal(r.status, 302);
      const loc = r.headers.location ?? '';
      assert.ok(loc.startsWith(`${hub.cdnOrigin}/`), loc);
      assert.match(loc, /[?&]Signature=[0-9a-f]{64}/);
      assert.equal(r.headers['x-linked-etag'], `"${sha256(WEIGHTS)}"`);
      assert.equal(r.headers['x-linked-size'], String(WEIGHTS.length));
      assert.equal(r.headers['x-repo-commit'], c2);
      assert.equal(r.headers.etag, `"${gitSha1(lfsPointer(sha256(WEIGHTS), WEIGHTS.length))}"`);
      assert.notEqual(r.headers['content-length'], String(WEIGHTS.length));
    });

    test('GET through the redirect gives the bytes; the CDN ETag is strong and not the sha256', async () => {
      const head = await http(resolveUrl('main', 'model.safetensors'), {
        headers: { authorization: 'Bearer hf_good' },
      });
      assert.equal(head.status, 302);
      const loc = head.headers.location ?? '';
      const r = await http(loc);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, WEIGHTS);
      assert.match(r.headers.etag ?? '', /^"[0-9a-f]{32}"$/);
      assert.equal(r.headers['accept-ranges'], 'bytes');
      const cdnReq = hub.findRequests({ host: 'cdn', path: new URL(loc).pathname }).at(-1);
      assert.ok(cdnReq);
      assert.equal(cdnReq.authorization, undefined);
      assert.equal(cdnReq.status, 200);
      assert.equal(cdnReq.bytesSent, WEIGHTS.length);
    });

    test('fetch() follows the redirect and does not leak Authorization to the CDN', async () => {
      hub.resetRequests();
      const r = await fetch(resolveUrl('main', 'model.safetensors'), { headers: { authorization: 'Bearer hf_good' } });
      assert.deepEqual(Buffer.from(await r.arrayBuffer()), WEIGHTS);
      assert.equal(hub.countRequests({ host: 'hf', authorization: true }), 1);
      assert.equal(hub.countRequests({ host: 'cdn', authorization: true }), 0);
      assert.equal(hub.countRequests({ host: 'cdn' }), 1);
    });

    test('the CDN records Authorization when sent, and can reject it like S3', async () => {
      const loc = (await http(resolveUrl('main', 'model.safetensors'), { method: 'HEAD' })).headers.location ?? '';
      hub.resetRequests();
      assert.equal((await http(loc, { headers: { authorization: 'Bearer hf_good' } })).status, 200);
      assert.equal(hub.requests[0]?.authorization, 'Bearer hf_good');
      hub.cdnRejectsAuthorization = true;
      try {
        const r = await http(loc, { headers: { authorization: 'Bearer hf_good' } });
        assert.equal(r.status, 400);
        assert.match(r.body.toString(), /Only one auth mechanism/);
      } finally {
        hub.cdnRejectsAuthorization = false;
      }
    });

    test('Range on resolve (git file) and on the CDN: 206, suffix ranges, 416', async () => {
      const g = await http(resolveUrl('main', 'README.md'), { headers: { range: 'bytes=2-4' } });
      assert.equal(g.status, 206);
      assert.equal(g.headers['content-range'], `bytes 2-4/${README.length}`);
      assert.deepEqual(g.body, README.subarray(2, 5));
      const loc = (await http(resolveUrl('main', 'big.bin'), { method: 'HEAD' })).headers.location ?? '';
      const mid = await http(loc, { headers: { range: `bytes=${BLOCK_EDGE - 5}-${BLOCK_EDGE + 5}` } });
      assert.equal(mid.status, 206);
      assert.equal(mid.headers['content-range'], `bytes ${BLOCK_EDGE - 5}-${BLOCK_EDGE + 5}/${BIG.size}`);
      assert.deepEqual(mid.body, BIG_BYTES.subarray(BLOCK_EDGE - 5, BLOCK_EDGE + 6));
      const open = await http(loc, { headers: { range: `bytes=${BIG.size - 10}-` } });
      assert.deepEqual(open.body, BIG_BYTES.subarray(BIG.size - 10));
      const suffix = await http(loc, { headers: { range: 'bytes=-7' } });
      assert.equal(suffix.headers['content-range'], `bytes ${BIG.size - 7}-${BIG.size - 1}/${BIG.size}`);
      const clamp = await http(loc, { headers: { range: `bytes=${BIG.size - 3}-${BIG.size + 100}` } });
      assert.equal(clamp.body.length, 3);
      const bad = await http(loc, { headers: { range: `bytes=${BIG.size}-` } });
      assert.equal(bad.status, 416);
      assert.equal(bad.headers['content-range'], `bytes */${BIG.size}`);
      const bad2 = await http(resolveUrl('main', 'README.md'), { headers: { range: 'bytes=999-' } });
      assert.equal(bad2.status, 416);
    });

    test('generated content: deterministic, sha256 matches X-Linked-Etag, blocks differ', async () => {
      const head = await http(resolveUrl('main', 'big.bin'), { method: 'HEAD' });
      assert.equal(head.headers['x-linked-etag'], `"${sha256(BIG_BYTES)}"`);
      const body = await http(head.headers.location ?? '');
      assert.equal(sha256(body.body), sha256(BIG_BYTES));
      assert.notDeepEqual(BIG_BYTES.subarray(0, 4096), BIG_BYTES.subarray(1 << 20, (1 << 20) + 4096));
      assert.equal(generatedContent(BIG.size, BIG.seed).sha256(), sha256(BIG_BYTES));
      assert.notEqual(generatedContent(BIG.size, BIG.seed + 1).sha256(), sha256(BIG_BYTES));
    });

    test('revisions: branch, tag, refs/pr/N encoded, full and short commit', async () => {
      const cfg = async (rev: string): Promise<Res> => http(resolveUrl(rev, 'config.json'));
      assert.equal((await cfg('main')).body.toString(), '{"a":2}\n');
      assert.equal((await cfg('HEAD')).headers['x-repo-commit'], c2);
      for (const rev of ['v1.0', 'dev', c1, c1.slice(0, 7), encodeURIComponent(pr)]) {
        const r = await cfg(rev);
        assert.equal(r.status, 200, rev);
        assert.deepEqual(r.body, CONFIG, rev);
      }
      const prHead = repo.resolve(pr)?.commit.sha;
      assert.equal((await cfg('refs%2Fpr%2F1')).headers['x-repo-commit'], prHead);
      assert.equal((await http(resolveUrl('refs%2Fpr%2F1', 'pr-only.txt'))).body.toString(), 'pr');
      assert.equal((await cfg('v1.0')).headers['x-repo-commit'], c1);
      assert.equal((await cfg(c1.slice(0, 7))).headers['x-repo-commit'], c1);
      const none = await cfg('nope');
      assert.equal(none.status, 404);
      assert.equal(none.headers['x-error-code'], 'RevisionNotFound');
      assert.equal(none.headers['x-repo-commit'], undefined);
    });

    test('gzip for plain git files when accepted (chunked, no Content-Length), never with identity or Range', async () => {
      const r = await http(resolveUrl('main', 'README.md'), { headers: { 'accept-encoding': 'gzip, deflate' } });
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(r.headers['content-length'], undefined);
      assert.deepEqual(gunzipSync(r.body), README);
      const id = await http(resolveUrl('main', 'README.md'), { headers: { 'accept-encoding': 'identity' } });
      assert.equal(id.headers['content-encoding'], undefined);
      assert.deepEqual(id.body, README);
    });

    test('error classes carry X-Error-Code / X-Error-Message and a JSON body', async () => {
      const missingAnon = await http(resolveUrl('main', 'a.txt', 'org/missing'));
      assert.equal(missingAnon.status, 401);
      assert.equal(missingAnon.headers['x-error-code'], 'RepoNotFound');
      assert.ok(missingAnon.headers['x-error-message']);
      assert.equal(typeof json<{ error: string }>(missingAnon).error, 'string');
      const missingAuthed = await http(resolveUrl('main', 'a.txt', 'org/missing'), {
        headers: { authorization: 'Bearer hf_good' },
      });
      assert.equal(missingAuthed.status, 404);
      assert.equal(missingAuthed.headers['x-error-code'], 'RepoNotFound');

      const entry = await http(resolveUrl('main', 'nope.bin'), { method: 'HEAD' });
      assert.equal(entry.status, 404);
      assert.equal(entry.headers['x-error-code'], 'EntryNotFound');
      assert.equal(entry.headers['x-repo-commit'], c2);

      const badTok = await http(resolveUrl('main', 'README.md'), { headers: { authorization: 'Bearer hf_unknown' } });
      assert.equal(badTok.status, 401);
      assert.equal(badTok.headers['x-error-message'], 'Invalid credentials in Authorization header');
      assert.equal(badTok.headers['x-error-code'], undefined);

      const off = await http(resolveUrl('main', 'a.txt', 'org/off'));
      assert.equal(off.status, 403);
      assert.equal(off.headers['x-error-message'], 'Access to this resource is disabled.');
    });

    test('private repos: 401 RepoNotFound without a token, served with any valid token', async () => {
      const anon = await http(resolveUrl('main', 'a.txt', 'org/private'), { method: 'HEAD' });
      assert.equal(anon.status, 401);
      assert.equal(anon.headers['x-error-code'], 'RepoNotFound');
      const apiAnon = await http(`${hub.hfEndpoint}/api/models/org/private`);
      assert.equal(apiAnon.status, 401);
      const ok = await http(resolveUrl('main', 'a.txt', 'org/private'), {
        headers: { authorization: 'Bearer hf_nogate' },
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toString(), 'secret');
    });

    test('gated repos: 401/403 GatedRepo on files, metadata public, allowed token passes', async () => {
      const anon = await http(resolveUrl('main', 'a.txt', 'org/gated'), { method: 'HEAD' });
      assert.equal(anon.status, 401);
      assert.equal(anon.headers['x-error-code'], 'GatedRepo');
      const denied = await http(resolveUrl('main', 'w.safetensors', 'org/gated'), {
        method: 'HEAD',
        headers: { authorization: 'Bearer hf_nogate' },
      });
      assert.equal(denied.status, 403);
      assert.equal(denied.headers['x-error-code'], 'GatedRepo');
      const okLfs = await http(resolveUrl('main', 'w.safetensors', 'org/gated'), {
        method: 'HEAD',
        headers: { authorization: 'Bearer hf_good' },
      });
      assert.equal(okLfs.status, 302);
      const info = await http(`${hub.hfEndpoint}/api/models/org/gated`);
      assert.equal(info.status, 200);
      assert.equal(json<{ gated: unknown }>(info).gated, 'manual');
    });

    test('renamed repo: old name answers a relative 307 to the new path (resolve and API)', async () => {
      const r = hub.hf.createRepo('org/old-name');
      const sha = r.commit({ 'f.txt': 'moved' });
      r.renameTo('org/new-name');
      const old = await http(`${resolveUrl('main', 'f.txt', 'org/old-name')}?x=1`, { method: 'HEAD' });
      assert.equal(old.status, 307);
      assert.equal(old.headers.location, '/org/new-name/resolve/main/f.txt?x=1');
      const follow = await http(`${hub.hfEndpoint}${old.headers.location}`, { method: 'HEAD' });
      assert.equal(follow.status, 200);
      assert.equal(follow.headers['x-repo-commit'], sha);
      const api = await http(`${hub.hfEndpoint}/api/models/org/old-name/revision/main`);
      assert.equal(api.status, 307);
      assert.equal(api.headers.location, '/api/models/org/new-name/revision/main');
      assert.equal(hub.hf.repo('org/new-name'), r);
    });

    test('paths with spaces, #, unicode: percent-decoded on resolve, verbatim in listings', async () => {
      const u = hub.hf.createRepo('org/unicode');
      u.commit({ 'a b/c#d.txt': 'hash', 'naïve ü.txt': 'uni' });
      const enc = (p: string): string => p.split('/').map(encodeURIComponent).join('/');
      assert.equal((await http(resolveUrl('main', enc('a b/c#d.txt'), 'org/unicode'))).body.toString(), 'hash');
      const r = await http(resolveUrl('main', enc('naïve ü.txt'), 'org/unicode'));
      assert.equal(r.body.toString(), 'uni');
      assert.match(r.headers['content-disposition'] ?? '', /filename\*=UTF-8''na%C3%AFve%20%C3%BC\.txt/);
      const missing = await http(resolveUrl('main', enc('nö.txt'), 'org/unicode'));
      assert.equal(missing.status, 404);
      assert.equal(missing.headers['x-error-code'], 'EntryNotFound');
      const tree = json<TreeEntry[]>(
        await http(`${hub.hfEndpoint}/api/models/org/unicode/tree/main?recursive=true&limit=10`),
      );
      assert.deepEqual(
        tree.map((e) => e.path),
        ['a b', 'a b/c#d.txt', 'naïve ü.txt'],
      );
    });

    test('datasets and spaces use their URL prefixes', async () => {
      const r = await http(resolveUrl('main', 'data/train.parquet', 'datasets/org/data'), { method: 'HEAD' });
      assert.equal(r.status, 302);
      assert.equal(
        (await http(resolveUrl('main', 'data/train.parquet', 'org/data'), { method: 'HEAD' })).headers['x-error-code'],
        'RepoNotFound',
      );
      assert.equal((await http(`${hub.hfEndpoint}/api/datasets/org/data`)).status, 200);
      const s = hub.hf.createRepo('org/app', { type: 'space' });
      s.commit({ 'app.py': 'print(1)\n' });
      assert.equal((await http(resolveUrl('main', 'app.py', 'spaces/org/app'))).body.toString(), 'print(1)\n');
    });
  });

  describe('HF JSON API', () => {
    test('repo info: sha, siblings, blobs=true details, revision endpoint', async () => {
      const info = json<Record<string, unknown>>(await http(`${hub.hfEndpoint}/api/models/org/model`));
      assert.equal(info.id, 'org/model');
      assert.equal(info.sha, c2);
      assert.equal(info.private, false);
      assert.equal(info.gated, false);
      assert.equal(info.disabled, false);
      assert.match(String(info.lastModified), /^\d{4}-\d\d-\d\dT/);
      assert.match(String(info.createdAt), /^\d{4}-\d\d-\d\dT/);
      const sibs = info.siblings as { rfilename: string }[];
      assert.deepEqual(
        sibs.map((s) => s.rfilename),
        ['README.md', 'big.bin', 'config.json', 'model.safetensors', 'sub/dir/x.txt', 'sub/y.txt'],
      );
      assert.deepEqual(Object.keys(sibs[0] ?? {}), ['rfilename']);
      const blobs = json<{ sha: string; siblings: Record<string, unknown>[] }>(
        await http(`${hub.hfEndpoint}/api/models/org/model/revision/v1.0?blobs=true`),
      );
      assert.equal(blobs.sha, c1);
      const w = blobs.siblings.find((s) => s.rfilename === 'model.safetensors');
      assert.deepEqual(w, {
        rfilename: 'model.safetensors',
        size: WEIGHTS.length,
        blobId: gitSha1(lfsPointer(sha256(WEIGHTS), WEIGHTS.length)),
        lfs: {
          sha256: sha256(WEIGHTS),
          size: WEIGHTS.length,
          pointerSize: lfsPointer(sha256(WEIGHTS), WEIGHTS.length).length,
        },
      });
      const cfg = blobs.siblings.find((s) => s.rfilename === 'config.json');
      assert.deepEqual(cfg, { rfilename: 'config.json', size: CONFIG.length, blobId: gitSha1(CONFIG) });
      const prInfo = await http(`${hub.hfEndpoint}/api/models/org/model/revision/${encodeURIComponent(pr)}`);
      assert.equal(json<{ sha: string }>(prInfo).sha, repo.resolve(pr)?.commit.sha);
      const bad = await http(`${hub.hfEndpoint}/api/models/org/model/revision/nope`);
      assert.equal(bad.status, 404);
      assert.equal(bad.headers['x-error-code'], 'RevisionNotFound');
      const expand = json<Record<string, unknown>>(
        await http(`${hub.hfEndpoint}/api/models/org/model?expand=sha&expand=private`),
      );
      assert.deepEqual(Object.keys(expand).sort(), ['_id', 'id', 'private', 'sha']);
    });

    test('tree: Link pagination (absolute next URL) over a recursive listing', async () => {
      let url: string | undefined = `${hub.hfEndpoint}/api/models/org/model/tree/${c2}?recursive=true&expand=false`;
      const all: TreeEntry[] = [];
      let pages = 0;
      while (url) {
        const r = await http(url);
        assert.equal(r.status, 200);
        const page = json<TreeEntry[]>(r);
        assert.ok(page.length <= 2);
        all.push(...page);
        pages++;
        const m = /<([^>]+)>;\s*rel="next"/.exec(r.headers.link ?? '');
        url = m?.[1];
        if (url) assert.ok(url.startsWith(hub.hfEndpoint), url);
      }
      assert.equal(pages, 4);
      assert.deepEqual(
        all.map((e) => `${e.type}:${e.path}`),
        [
          'file:README.md',
          'file:big.bin',
          'file:config.json',
          'file:model.safetensors',
          'directory:sub',
          'directory:sub/dir',
          'file:sub/dir/x.txt',
          'file:sub/y.txt',
        ],
      );
      const w = all.find((e) => e.path === 'model.safetensors');
      assert.deepEqual(w?.lfs, {
        oid: sha256(WEIGHTS),
        size: WEIGHTS.length,
        pointerSize: lfsPointer(sha256(WEIGHTS), WEIGHTS.length).length,
      });
      assert.equal(w?.size, WEIGHTS.length);
      assert.equal(all.find((e) => e.path === 'README.md')?.oid, gitSha1(README));
      assert.equal(all.find((e) => e.path === 'README.md')?.lfs, undefined);
      assert.match(all.find((e) => e.path === 'sub')?.oid ?? '', /^[0-9a-f]{40}$/);
    });

    test('tree: non-recursive, sub-path with %2F, expand=true lastCommit, missing path', async () => {
      hub.pageSize = 100;
      try {
        const root = json<TreeEntry[]>(await http(`${hub.hfEndpoint}/api/models/org/model/tree/main`));
        assert.deepEqual(
          root.map((e) => e.path),
          ['README.md', 'big.bin', 'config.json', 'model.safetensors', 'sub'],
        );
        const sub = json<TreeEntry[]>(
          await http(`${hub.hfEndpoint}/api/models/org/model/tree/main/sub%2Fdir?recursive=false&expand=true`),
        );
        assert.deepEqual(
          sub.map((e) => e.path),
          ['sub/dir/x.txt'],
        );
        assert.equal(sub[0]?.lastCommit?.id, c1);
        const cfg = json<TreeEntry[]>(await http(`${hub.hfEndpoint}/api/models/org/model/tree/main?expand=true`)).find(
          (e) => e.path === 'config.json',
        );
        assert.equal(cfg?.lastCommit?.id, c2);
        assert.equal(cfg?.lastCommit?.title, 'Bump config');
        const missing = await http(`${hub.hfEndpoint}/api/models/org/model/tree/main/nope`);
        assert.equal(missing.status, 404);
        assert.equal(missing.headers['x-error-code'], 'EntryNotFound');
      } finally {
        hub.pageSize = 2;
      }
    });

    test('paths-info accepts JSON and form bodies; missing paths are absent', async () => {
      const url = `${hub.hfEndpoint}/api/models/org/model/paths-info/${c1}`;
      const j = json<TreeEntry[]>(
        await http(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ paths: ['config.json', 'sub', 'nope'], expand: true }),
        }),
      );
      assert.deepEqual(
        j.map((e) => `${e.type}:${e.path}`),
        ['file:config.json', 'directory:sub'],
      );
      assert.equal(j[0]?.oid, gitSha1(CONFIG));
      assert.equal(j[0]?.lastCommit?.id, c1);
      const f = json<TreeEntry[]>(
        await http(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'paths=model.safetensors&paths=README.md&expand=false',
        }),
      );
      assert.deepEqual(
        f.map((e) => e.path),
        ['model.safetensors', 'README.md'],
      );
      assert.equal(f[0]?.lfs?.oid, sha256(WEIGHTS));
      assert.equal(f[0]?.lastCommit, undefined);
    });

    test('refs and whoami', async () => {
      const refs = json<{
        branches: { name: string; targetCommit: string }[];
        tags: { name: string }[];
        pullRequests?: unknown[];
      }>(await http(`${hub.hfEndpoint}/api/models/org/model/refs`));
      assert.deepEqual(refs.branches.map((b) => b.name).sort(), ['dev', 'main']);
      assert.equal(refs.branches.find((b) => b.name === 'main')?.targetCommit, c2);
      assert.deepEqual(
        refs.tags.map((t) => t.name),
        ['v1.0'],
      );
      assert.equal(refs.pullRequests, undefined);
      const withPrs = json<{ pullRequests: { ref: string }[] }>(
        await http(`${hub.hfEndpoint}/api/models/org/model/refs?include_prs=1`),
      );
      assert.deepEqual(
        withPrs.pullRequests.map((p) => p.ref),
        [pr],
      );
      const me = await http(`${hub.hfEndpoint}/api/whoami-v2`, { headers: { authorization: 'Bearer hf_good' } });
      assert.equal(json<{ name: string }>(me).name, 'alice');
      assert.equal((await http(`${hub.hfEndpoint}/api/whoami-v2`)).status, 401);
    });

    test('injected hostile entries show up verbatim in listings', async () => {
      const evil = hub.hf.createRepo('org/evil');
      evil.commit({ 'ok.txt': 'fine' });
      const names = ['../../evil', '/etc/passwd', 'a\\b', 'nul\0byte'];
      hub.hf.injectTreeEntries(
        'org/evil',
        names.map((path) => ({ path })),
      );
      const tree = json<TreeEntry[]>(
        await http(`${hub.hfEndpoint}/api/models/org/evil/tree/main?recursive=true&limit=100`),
      );
      assert.deepEqual(
        tree.map((e) => e.path),
        ['ok.txt', ...names],
      );
      const info = json<{ siblings: { rfilename: string }[] }>(await http(`${hub.hfEndpoint}/api/models/org/evil`));
      assert.deepEqual(
        info.siblings.map((s) => s.rfilename),
        ['ok.txt', ...names],
      );
      assert.equal((await http(resolveUrl('main', 'a%5Cb', 'org/evil'))).body.toString(), 'pwned\n');
    });
  });

  describe('ModelScope face', () => {
    let ms: TestRepo;
    let m1: string;
    let m2: string;
    before(() => {
      ms = hub.ms.createRepo('owner/ms-model', { gitattributes: true });
      m1 = ms.commit({
        'configuration.json': '{"task":"x"}',
        'model.safetensors': WEIGHTS,
        'onnx/model.onnx': BIG,
        'empty.txt': '',
      });
      ms.tag('v1.0.0', m1, { createdAt: Date.UTC(2024, 5, 1) });
      m2 = ms.commit({ 'configuration.json': '{"task":"y"}' });
      ms.tag('v1.1.0', m2, { createdAt: Date.UTC(2024, 6, 1) });
      hub.ms.createRepo('owner/ms-private', { private: true }).commit({ 'a.txt': 'secret' });
    });
    const api = (p: string): string => `${hub.msEndpoint}/api/v1/models/${p}`;
    interface Envelope<T> {
      Code: number;
      Data: T;
      Message: string;
      RequestId: string;
      Success: boolean;
    }
    interface MsFile {
      Name: string;
      Path: string;
      Type: string;
      Size: number;
      Sha256: string;
      Revision: string;
      IsLFS: boolean;
    }

    test('model info envelope', async () => {
      const r = await http(api('owner/ms-model'));
      assert.equal(r.status, 200);
      const e = json<Envelope<{ Name: string; Path: string; Revision: string }>>(r);
      assert.equal(e.Code, 200);
      assert.equal(e.Success, true);
      assert.match(e.RequestId, /^[0-9a-f]{32}$/);
      assert.equal(e.Data.Name, 'ms-model');
      assert.equal(e.Data.Path, 'owner');
      assert.equal(e.Data.Revision, 'master');
      const missing = await http(api('owner/none'));
      assert.equal(missing.status, 404);
      assert.equal(json<Envelope<null>>(missing).Success, false);
      assert.notEqual(json<Envelope<null>>(missing).Code, 200);
    });

    test('revisions: branches and tags (newest first) with CreatedAt; EndTime filters tags', async () => {
      const e = json<
        Envelope<{
          RevisionMap: {
            Branches: { Revision: string; CreatedAt: number }[];
            Tags: { Revision: string; CreatedAt: number }[];
          };
        }>
      >(await http(api('owner/ms-model/revisions')));
      assert.deepEqual(
        e.Data.RevisionMap.Branches.map((b) => b.Revision),
        ['master'],
      );
      assert.deepEqual(
        e.Data.RevisionMap.Tags.map((t) => t.Revision),
        ['v1.1.0', 'v1.0.0'],
      );
      assert.equal(e.Data.RevisionMap.Tags[1]?.CreatedAt, Date.UTC(2024, 5, 1) / 1000);
      const cut = json<typeof e>(await http(api(`owner/ms-model/revisions?EndTime=${Date.UTC(2024, 5, 15) / 1000}`)));
      assert.deepEqual(
        cut.Data.RevisionMap.Tags.map((t) => t.Revision),
        ['v1.0.0'],
      );
    });

    test('file list: recursive, per-file Revision = last commit touching it, Sha256 for all, Root', async () => {
      const e = json<Envelope<{ Files: MsFile[] }>>(
        await http(api('owner/ms-model/repo/files?Revision=master&Recursive=True')),
      );
      const byPath = new Map(e.Data.Files.map((f) => [f.Path, f]));
      assert.deepEqual(
        [...byPath.keys()],
        ['.gitattributes', 'configuration.json', 'empty.txt', 'model.safetensors', 'onnx', 'onnx/model.onnx'],
      );
      assert.equal(byPath.get('onnx')?.Type, 'tree');
      const w = byPath.get('model.safetensors');
      assert.deepEqual(
        { Type: w?.Type, Size: w?.Size, Sha256: w?.Sha256, Revision: w?.Revision, IsLFS: w?.IsLFS, Name: w?.Name },
        {
          Type: 'blob',
          Size: WEIGHTS.length,
          Sha256: sha256(WEIGHTS),
          Revision: m1,
          IsLFS: true,
          Name: 'model.safetensors',
        },
      );
      assert.equal(byPath.get('configuration.json')?.Revision, m2);
      assert.equal(byPath.get('configuration.json')?.Sha256, sha256('{"task":"y"}'));
      assert.equal(byPath.get('onnx/model.onnx')?.Name, 'model.onnx');
      const tagged = json<Envelope<{ Files: MsFile[] }>>(
        await http(api('owner/ms-model/repo/files?Revision=v1.0.0&Recursive=True')),
      );
      assert.equal(tagged.Data.Files.find((f) => f.Path === 'configuration.json')?.Sha256, sha256('{"task":"x"}'));
      const rooted = json<Envelope<{ Files: MsFile[] }>>(
        await http(api('owner/ms-model/repo/files?Revision=master&Recursive=True&Root=onnx')),
      );
      assert.deepEqual(
        rooted.Data.Files.map((f) => f.Path),
        ['onnx/model.onnx'],
      );
      const noRoot = json<Envelope<{ Files: MsFile[] }>>(
        await http(api('owner/ms-model/repo/files?Revision=master&Recursive=True&Root=zzz')),
      );
      assert.deepEqual(noRoot.Data.Files, []);
      const flat = json<Envelope<{ Files: MsFile[] }>>(await http(api('owner/ms-model/repo/files?Revision=master')));
      assert.ok(!flat.Data.Files.some((f) => f.Path === 'onnx/model.onnx'));
    });

    test('download: 302 to the CDN (absolute), bytes and Range there', async () => {
      const r = await http(api('owner/ms-model/repo?Revision=master&FilePath=onnx%2Fmodel.onnx'));
      assert.equal(r.status, 302);
      const loc = r.headers.location ?? '';
      assert.ok(loc.startsWith(`${hub.cdnOrigin}/`), loc);
      assert.match(loc, /OSSAccessKeyId=/);
      const body = await http(loc);
      assert.equal(sha256(body.body), sha256(BIG_BYTES));
      const part = await http(loc, { headers: { range: `bytes=100-${BIG.size - 1}` } });
      assert.equal(part.status, 206);
      assert.deepEqual(part.body, BIG_BYTES.subarray(100));
      const plus = await http(api('owner/ms-model/repo?Revision=v1.0.0&FilePath=configuration.json'));
      assert.equal((await http(plus.headers.location ?? '')).body.toString(), '{"task":"x"}');
      const missing = await http(api('owner/ms-model/repo?Revision=master&FilePath=nope.bin'));
      assert.equal(missing.status, 404);
      assert.equal(json<Envelope<null>>(missing).Success, false);
      hub.ms.redirectDownloads = false;
      try {
        const direct = await http(api('owner/ms-model/repo?Revision=master&FilePath=model.safetensors'), {
          headers: { range: 'bytes=10-19' },
        });
        assert.equal(direct.status, 206);
        assert.deepEqual(direct.body, WEIGHTS.subarray(10, 20));
      } finally {
        hub.ms.redirectDownloads = true;
      }
    });

    test('private repos need the m_session_id cookie or a Bearer token (403 otherwise)', async () => {
      const url = api('owner/ms-private/repo/files?Revision=master&Recursive=True');
      const anon = await http(url);
      assert.equal(anon.status, 403);
      assert.equal(json<Envelope<null>>(anon).Success, false);
      assert.equal((await http(url, { headers: { cookie: 'm_session_id=hf_unknown' } })).status, 403);
      assert.equal((await http(url, { headers: { cookie: 'other=1; m_session_id=hf_nogate' } })).status, 200);
      assert.equal((await http(url, { headers: { authorization: 'Bearer hf_nogate' } })).status, 200);
      assert.equal((await http(api('owner/ms-model'), { headers: { authorization: 'Bearer whatever' } })).status, 200);
    });

    test('bad revision: HTTP 404 envelope by default, HTTP 200 with Code != 200 when switched', async () => {
      const url = api('owner/ms-model/repo/files?Revision=nope&Recursive=True');
      const a = await http(url);
      assert.equal(a.status, 404);
      assert.equal(json<Envelope<null>>(a).Code, 404);
      hub.ms.badRevisionStyle = 'code200';
      try {
        const b = await http(url);
        assert.equal(b.status, 200);
        const e = json<Envelope<null>>(b);
        assert.equal(e.Code, MS_BAD_REVISION_CODE);
        assert.equal(e.Success, false);
        assert.equal(e.Data, null);
      } finally {
        hub.ms.badRevisionStyle = 'http404';
      }
    });

    test('datasets: info by name, paged tree by numeric Id, download', async () => {
      const ds = hub.ms.createRepo('owner/ms-data', { type: 'dataset' });
      ds.commit({ 'a.csv': 'a', 'b.csv': 'b', 'c/d.csv': 'd' });
      const info = json<Envelope<{ Id: number }>>(await http(`${hub.msEndpoint}/api/v1/datasets/owner/ms-data`));
      assert.equal(info.Data.Id, ds.numericId);
      const page = (n: number): Promise<Res> =>
        http(
          `${hub.msEndpoint}/api/v1/datasets/${ds.numericId}/repo/tree?Revision=master&Root=/&Recursive=True&PageNumber=${n}&PageSize=2`,
        );
      const p1 = json<Envelope<{ Files: MsFile[] }>>(await page(1));
      const p2 = json<Envelope<{ Files: MsFile[] }>>(await page(2));
      assert.deepEqual(
        [...p1.Data.Files, ...p2.Data.Files].map((f) => f.Path),
        ['a.csv', 'b.csv', 'c', 'c/d.csv'],
      );
      const dl = await http(
        `${hub.msEndpoint}/api/v1/datasets/owner/ms-data/repo?Source=SDK&Revision=master&FilePath=c%2Fd.csv&View=False`,
      );
      assert.equal(dl.status, 302);
      assert.equal((await http(dl.headers.location ?? '')).body.toString(), 'd');
    });
  });

  describe('faults', () => {
    const lfsLocation = async (): Promise<string> =>
      (await http(resolveUrl('main', 'big.bin'), { method: 'HEAD' })).headers.location ?? '';

    test('dropAfterBytes: socket destroyed after n bytes, once; log says dropped', async () => {
      const loc = await lfsLocation();
      hub.resetRequests();
      const f = hub.faults.dropAfterBytes(1000);
      await assert.rejects(http(loc));
      assert.equal(f.hits, 1);
      assert.equal(f.remaining, 0);
      const rec = hub.requests[0];
      assert.equal(rec?.outcome, 'dropped');
      assert.equal(rec?.bytesSent, 1000);
      assert.deepEqual(rec?.faults, ['drop']);
      const again = await http(loc);
      assert.equal(again.body.length, BIG.size, 'the next request is clean');
    });

    test('status: 503 and 429 with Retry-After for the next N matching requests', async () => {
      const loc = await lfsLocation();
      hub.faults.status(503, { times: 2 });
      assert.equal((await http(loc)).status, 503);
      assert.equal((await http(loc)).status, 503);
      assert.equal((await http(loc)).status, 200);
      hub.faults.status(429, { retryAfter: 2, match: '/resolve/' });
      const head = await http(resolveUrl('main', 'config.json'), { method: 'HEAD' });
      assert.equal(head.status, 429);
      assert.equal(head.headers['retry-after'], '2');
      assert.equal((await http(resolveUrl('main', 'config.json'), { method: 'HEAD' })).status, 200);
    });

    test('default scope is file bodies only: API calls and redirects are not consumed', async () => {
      const f = hub.faults.status(500);
      assert.equal((await http(`${hub.hfEndpoint}/api/models/org/model`)).status, 200);
      assert.equal((await http(resolveUrl('main', 'big.bin'), { method: 'HEAD' })).status, 302);
      assert.equal(f.remaining, 1);
      assert.equal((await http(resolveUrl('main', 'README.md'))).status, 500);
      assert.equal(f.remaining, 0);
    });

    test('delayMs delays the first byte', async () => {
      hub.faults.delayMs(150, { match: 'README.md' });
      const t0 = performance.now();
      await http(resolveUrl('main', 'README.md'));
      assert.ok(performance.now() - t0 >= 140);
    });

    test('stallAfterBytes: n bytes then silence until the client times out', async () => {
      const loc = await lfsLocation();
      hub.resetRequests();
      hub.faults.stallAfterBytes(5000, { host: 'cdn' });
      await assert.rejects(http(loc, { bodyTimeout: 300 }), /timeout/i);
      assert.equal(hub.requests[0]?.bytesSent, 5000);
      assert.equal(hub.requests[0]?.outcome, 'stalled');
    });

    test('corruptBytes: right size, wrong hash; wrongSize: a clean but short body', async () => {
      const loc = await lfsLocation();
      hub.faults.corruptBytes();
      const bad = await http(loc);
      assert.equal(bad.body.length, BIG.size);
      assert.notEqual(sha256(bad.body), sha256(BIG_BYTES));
      hub.faults.corruptBytes({ at: 10 });
      const at10 = await http(loc, { headers: { range: 'bytes=0-99' } });
      assert.equal(at10.body[10], (BIG_BYTES[10] ?? 0) ^ 0xff);
      hub.faults.wrongSize();
      const short = await http(loc);
      assert.equal(short.status, 200);
      assert.equal(short.body.length, BIG.size - 1);
      hub.faults.wrongSize({ delta: 5, match: 'README.md' });
      const long = await http(resolveUrl('main', 'README.md'));
      assert.equal(long.body.length, README.length + 5);
    });

    test('malformedJson, hugeHeader, expired CDN URLs', async () => {
      hub.faults.malformedJson({ match: '/api/models/org/model' });
      const mj = await http(`${hub.hfEndpoint}/api/models/org/model`);
      assert.equal(mj.status, 200);
      assert.throws(() => JSON.parse(mj.body.toString()));
      hub.faults.hugeHeader({ match: '/api/', bytes: 64 * 1024 });
      await assert.rejects(http(`${hub.hfEndpoint}/api/models/org/model`));
      const loc = await lfsLocation();
      hub.faults.expireCdnUrls();
      const expired = await http(loc);
      assert.equal(expired.status, 403);
      assert.match(expired.body.toString(), /expired/);
      assert.equal((await http(await lfsLocation())).status, 200);
    });

    test('match by predicate and host; cancel()', async () => {
      const f = hub.faults.status(502, {
        times: Infinity,
        match: (t) => t.host === 'hf' && t.path.endsWith('/config.json'),
      });
      assert.equal((await http(resolveUrl('main', 'config.json'))).status, 502);
      assert.equal((await http(resolveUrl('main', 'config.json'), { method: 'HEAD' })).status, 502);
      f.cancel();
      assert.equal((await http(resolveUrl('main', 'config.json'))).status, 200);
      assert.equal(f.hits, 2);
    });
  });

  test('request log: fields, filters, reset', async () => {
    hub.resetRequests();
    await http(resolveUrl('main', 'README.md'), {
      headers: { range: 'bytes=0-1', authorization: 'Bearer hf_good', 'user-agent': 'ua/1' },
    });
    await http(`${hub.msEndpoint}/api/v1/models/owner/ms-model`, { headers: { cookie: 'm_session_id=hf_good' } });
    const [a, b] = hub.requests;
    assert.deepEqual(
      {
        method: a?.method,
        path: a?.path,
        host: a?.host,
        range: a?.range,
        status: a?.status,
        authorization: a?.authorization,
        bytesSent: a?.bytesSent,
        outcome: a?.outcome,
        userAgent: a?.userAgent,
      },
      {
        method: 'GET',
        path: '/org/model/resolve/main/README.md',
        host: 'hf',
        range: 'bytes=0-1',
        status: 206,
        authorization: 'Bearer hf_good',
        bytesSent: 2,
        outcome: 'complete',
        userAgent: 'ua/1',
      },
    );
    assert.ok(a && a.connectionId > 0);
    const client = new Client(hub.hfEndpoint);
    try {
      for (let i = 0; i < 2; i++) {
        const r = await client.request({ method: 'GET', path: '/org/model/resolve/main/README.md' });
        assert.equal(r.headers.connection, 'keep-alive');
        await r.body.arrayBuffer();
      }
    } finally {
      await client.close();
    }
    const [c, d] = hub.requests.slice(-2);
    assert.equal(c?.connectionId, d?.connectionId, 'keep-alive: one connection for sequential GETs');
    assert.equal(b?.host, 'ms');
    assert.equal(b?.cookie, 'm_session_id=hf_good');
    assert.equal(hub.countRequests(), 4);
    assert.equal(hub.countRequests({ host: 'ms' }), 1);
    assert.equal(hub.countRequests({ path: /README/, status: 206 }), 1);
    assert.equal(hub.countRequests({ path: /README/, status: 200 }), 2);
    assert.equal(
      hub.countRequests((r) => r.method === 'POST'),
      0,
    );
    hub.resetRequests();
    assert.equal(hub.requests.length, 0);
  });

  test('repos: empty initial commit by default, commits keep unchanged files, deletes', () => {
    const r = hub.hf.createRepo('org/builder');
    assert.deepEqual(r.paths(), []);
    const a = r.commit({ 'a.txt': 'a', 'b.txt': 'b' });
    const b = r.commit({ 'c.txt': 'c' }, { deletes: ['a.txt'] });
    assert.deepEqual(r.paths(), ['b.txt', 'c.txt']);
    assert.deepEqual(r.paths(a), ['a.txt', 'b.txt']);
    assert.equal(r.file('b.txt')?.lastCommit, a);
    assert.equal(r.file('c.txt')?.lastCommit, b);
    assert.equal(r.commit({ 'd.bin': { size: 10 } }, { lfsThreshold: 5 }).length, 40);
    assert.equal(r.file('d.bin')?.lfs, true);
    r.commit({ 'small.txt': { data: 'tiny', lfs: true } });
    assert.equal(r.file('small.txt')?.lfs, true);
    assert.equal(hub.hf.createRepo('org/ga', { gitattributes: true }).paths().join(), '.gitattributes');
    assert.throws(() => r.commit({ '../x': 'no' }));
  });
});

const BLOCK_EDGE = 1 << 20;

describe('test hub throttle', () => {
  test('per-connection token bucket on CDN bodies', async () => {
    const hub = await startTestHub({ throttleBytesPerSec: 4_000_000 });
    try {
      const r = hub.hf.createRepo('org/t');
      r.commit({ 'w.safetensors': { size: 2_000_000, seed: 7 } });
      const loc =
        (await http(`${hub.hfEndpoint}/org/t/resolve/main/w.safetensors`, { method: 'HEAD' })).headers.location ?? '';
      const t0 = performance.now();
      const [x, y] = await Promise.all([http(loc), http(loc)]);
      const secs = (performance.now() - t0) / 1000;
      assert.equal(x.body.length, 2_000_000);
      assert.equal(y.body.length, 2_000_000);
      // Two connections in parallel each get ~4 MB/s: both done in about 0.5 s, not 1 s.
      assert.ok(secs > 0.4 && secs < 0.95, `took ${secs}s`);
      // API/resolve answers are never throttled.
      hub.throttleBytesPerSec = 1000;
      const t1 = performance.now();
      await http(`${hub.hfEndpoint}/api/models/org/t`);
      assert.ok(performance.now() - t1 < 200);
    } finally {
      await hub.close();
    }
  });
});
