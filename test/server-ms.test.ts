// The ModelScope face of `hubcache serve` against the ModelScope test hub: hubcache's own
// `download modelscope:...` through the mirror (cold, then warm with zero upstream requests), the
// envelope and per-file Sha256/Revision unchanged, Range, error envelopes, a private repo (cookie
// and Bearer tokens; anonymous, wrong token and another caller refused, also on the download URL),
// single-flight, and the store's legacy layout as the SDK reads it.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generatedContent, startTestHub, type TestHub } from './fixtures/test-hub.js';
import { raw, startMirror, type TestMirror } from './fixtures/mirror.js';
import { runCli, tempDir } from './helpers.js';

const ID = 'Qwen/Qwen2.5-0.5B';
const MASKED = 'Qwen2___5-0___5B';
const W = { size: 1024 * 1024 + 77, seed: 5 };
const weights = generatedContent(W.size, W.seed).toBuffer();

interface Envelope {
  Code: number;
  Success: boolean;
  Message: string;
  Data: { Files?: Array<Record<string, unknown>> } | null;
}

describe('serve: ModelScope face', () => {
  let hub: TestHub;
  let m: TestMirror;
  const dl = (p: string, rev = 'master', id = ID): string =>
    `${m.url}/api/v1/models/${id}/repo?Revision=${rev}&FilePath=${encodeURIComponent(p)}`;

  before(async () => {
    hub = await startTestHub();
    const repo = hub.ms.createRepo(ID, { gitattributes: true });
    repo.commit({ 'config.json': '{"v":1}\n', 'model.safetensors': W, 'sub/tokenizer.json': 'tok', 'empty.txt': '' });
    hub.ms
      .createRepo('org/private', { private: true })
      .commit({ 'a.txt': 'secret', 'w.bin': { size: 200_000, seed: 9 } });
    hub.tokens.add('ms_good');
    hub.tokens.add('ms_other');
    m = await startMirror(['http://127.0.0.1:9'], { modelscopeUpstream: hub.msEndpoint });
  });
  after(async () => {
    await m.close();
    await hub.close();
  });

  test('hubcache download modelscope:... through the mirror: cold, then warm from a fresh cache with zero upstream requests', async () => {
    const c1 = await tempDir();
    hub.resetRequests();
    const r1 = await runCli(['download', `modelscope:${ID}`], { MODELSCOPE_CACHE: c1, MODELSCOPE_ENDPOINT: m.url });
    assert.equal(r1.code, 0, r1.stderr);
    const dir = path.join(c1, 'models', 'Qwen', MASKED);
    assert.ok((await fs.readFile(path.join(dir, 'model.safetensors'))).equals(weights));
    assert.equal(await fs.readFile(path.join(dir, 'sub/tokenizer.json'), 'utf8'), 'tok');
    assert.equal((await fs.stat(path.join(dir, 'empty.txt'))).size, 0);
    assert.ok(hub.countRequests({ host: 'cdn' }) >= 1, 'the mirror fetched the weights');
    // The store is the ModelScope legacy layout, indexed for the SDK.
    const storeDir = path.join(m.cacheDir, 'models', 'Qwen', MASKED);
    assert.ok((await fs.readFile(path.join(storeDir, 'model.safetensors'))).equals(weights));
    await fs.access(path.join(storeDir, '.msc'));
    const ls = await runCli(['ls', '--json'], { HF_HUB_CACHE: m.cacheDir, MODELSCOPE_CACHE: m.cacheDir });
    assert.match(ls.stdout, /Qwen2\.5-0\.5B/);

    hub.resetRequests();
    const c2 = await tempDir();
    const r2 = await runCli(['download', `modelscope:${ID}`], { MODELSCOPE_CACHE: c2, MODELSCOPE_ENDPOINT: m.url });
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok((await fs.readFile(path.join(c2, 'models', 'Qwen', MASKED, 'model.safetensors'))).equals(weights));
    assert.equal(hub.countRequests(), 0, 'warm mirror within the TTL: no upstream call at all');
  });

  test('envelope and per-file Sha256/Revision come through unchanged; Range is 206; HEAD has the size', async () => {
    const up = await raw(`${hub.msEndpoint}/api/v1/models/${ID}/repo/files?Revision=master&Recursive=True`);
    const via = await raw(`${m.url}/api/v1/models/${ID}/repo/files?Revision=master&Recursive=True`);
    assert.equal(via.status, 200);
    const a = JSON.parse(up.body.toString()) as Envelope;
    const b = JSON.parse(via.body.toString()) as Envelope;
    assert.equal(b.Code, 200);
    assert.equal(b.Success, true);
    const pick = (e: Envelope) => (e.Data?.Files ?? []).map((f) => [f.Path, f.Sha256, f.Revision, f.Size]);
    assert.deepEqual(pick(b), pick(a));
    const revs = JSON.parse((await raw(`${m.url}/api/v1/models/${ID}/revisions`)).body.toString()) as {
      Data: { RevisionMap: { Branches: Array<{ Revision: string }> } };
    };
    assert.ok(revs.Data.RevisionMap.Branches.some((x) => x.Revision === 'master'));
    const info = JSON.parse((await raw(`${m.url}/api/v1/models/${ID}`)).body.toString()) as {
      Code: number;
      Data: { Name: string };
    };
    assert.equal(info.Code, 200);
    assert.equal(info.Data.Name, 'Qwen2.5-0.5B');

    const r = await raw(dl('model.safetensors'), { headers: { range: 'bytes=1000-1999' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 1000-1999/${W.size}`);
    assert.ok(r.body.equals(weights.subarray(1000, 2000)));
    const tail = await raw(dl('model.safetensors'), { headers: { range: 'bytes=-10' } });
    assert.ok(tail.body.equals(weights.subarray(W.size - 10)));
    const h = await raw(dl('model.safetensors'), { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], String(W.size));
    const bad = await raw(dl('model.safetensors'), { headers: { range: `bytes=${W.size}-` } });
    assert.equal(bad.status, 416);
  });

  test('error envelopes: missing repo, missing file, bad revision, unsafe path, unsupported route, upstream down', async () => {
    const missing = await raw(`${m.url}/api/v1/models/org/none`);
    assert.equal(missing.status, 404);
    const e1 = JSON.parse(missing.body.toString()) as Envelope;
    assert.equal(e1.Success, false);
    assert.equal(e1.Code, 404);
    const nofile = await raw(dl('nope.bin'));
    assert.equal(nofile.status, 404);
    assert.equal((JSON.parse(nofile.body.toString()) as Envelope).Success, false);
    const badRev = await raw(dl('config.json', 'nope'));
    assert.equal(badRev.status, 404);
    assert.match((JSON.parse(badRev.body.toString()) as Envelope).Message, /nope/);
    const unsafe = await raw(dl('../../etc/passwd'));
    assert.equal(unsafe.status, 400);
    assert.equal((JSON.parse(unsafe.body.toString()) as Envelope).Success, false);
    const other = await raw(`${m.url}/api/v1/datasets/org/x`);
    assert.equal(other.status, 501);
    assert.equal((JSON.parse(other.body.toString()) as Envelope).Success, false);

    const down = await startMirror([hub.hfEndpoint], { modelscopeUpstream: 'http://127.0.0.1:9' });
    try {
      const d = await raw(`${down.url}/api/v1/models/${ID}/revisions`);
      assert.equal(d.status, 502, 'unreachable upstream with nothing cached is 502, not 404');
      assert.equal((JSON.parse(d.body.toString()) as Envelope).Success, false);
    } finally {
      await down.close();
    }
  });

  test('private repo: served with an accepted cookie or Bearer token; anonymous, wrong token and another caller refused, also on the download URL', async () => {
    const priv = (p: string): string => dl(p, 'master', 'org/private');
    const anon = await raw(priv('a.txt'));
    assert.equal(anon.status, 403);
    assert.ok(!anon.body.includes('secret'));
    const viaCookie = await raw(priv('a.txt'), { headers: { cookie: 'm_session_id=ms_good' } });
    assert.equal(viaCookie.status, 200);
    assert.equal(viaCookie.body.toString(), 'secret');
    const viaBearer = await raw(priv('w.bin'), { headers: { authorization: 'Bearer ms_good' } });
    assert.equal(viaBearer.status, 200);
    assert.equal(viaBearer.body.length, 200_000);
    // Both are in the store now: still refused to the anonymous and the wrong token.
    const variants: Record<string, string>[] = [
      {},
      { cookie: 'm_session_id=wrong' },
      { authorization: 'Bearer wrong' },
    ];
    for (const headers of variants) {
      const r = await raw(priv('a.txt'), { headers });
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.ok(!r.body.includes('secret'));
      const list = await raw(`${m.url}/api/v1/models/org/private/repo/files?Revision=master&Recursive=True`, {
        headers,
      });
      assert.equal(list.status, 403);
    }
    // Another valid user is checked upstream on their own, not waved through by ms_good's decision.
    hub.resetRequests();
    const other = await raw(priv('a.txt'), { headers: { cookie: 'm_session_id=ms_other' } });
    assert.equal(other.status, 200);
    assert.ok(hub.countRequests((r) => r.path.includes('org/private')) >= 1, "ms_other's access was asked upstream");
    // A hubcache client with the token, through the mirror.
    const c = await tempDir();
    const r = await runCli(['download', 'modelscope:org/private', '--token', 'ms_good'], {
      MODELSCOPE_CACHE: c,
      MODELSCOPE_ENDPOINT: m.url,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fs.readFile(path.join(c, 'models', 'org', 'private', 'a.txt'), 'utf8'), 'secret');
    const refused = await runCli(['download', 'modelscope:org/private'], {
      MODELSCOPE_CACHE: await tempDir(),
      MODELSCOPE_ENDPOINT: m.url,
    });
    assert.notEqual(refused.code, 0);
  });

  test('8 concurrent cold downloads of one file: one upstream transfer, all byte-identical', async () => {
    const big = { size: 3 * 1024 * 1024 + 1, seed: 44 };
    hub.ms.createRepo('org/burst').commit({ 'w.bin': big });
    const want = generatedContent(big.size, big.seed).toBuffer();
    await raw(`${m.url}/api/v1/models/org/burst/repo/files?Revision=master&Recursive=True`);
    hub.resetRequests();
    const all = await Promise.all(Array.from({ length: 8 }, () => raw(dl('w.bin', 'master', 'org/burst'))));
    for (const r of all) {
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(want));
    }
    const transfers = hub.findRequests({ host: 'cdn' });
    const starts = transfers.filter((r) => !r.range || /^bytes=0-/.test(r.range));
    assert.equal(starts.length, 1, `one upstream transfer: ${transfers.map((r) => r.range ?? 'whole').join(' ')}`);
  });

  test('a HEAD on an uncached file starts the fill; the GET after it costs no second transfer', async () => {
    const w = { size: 1024 * 1024 + 3, seed: 45 };
    hub.ms.createRepo('org/headfill').commit({ 'w.bin': w });
    const want = generatedContent(w.size, w.seed).toBuffer();
    hub.resetRequests();
    const head = await raw(dl('w.bin', 'master', 'org/headfill'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(w.size));
    assert.equal(head.body.length, 0);
    // The HEAD alone brings the file into the store (the ModelScope layout beside the HF one).
    const stored = path.join(m.cacheDir, 'models', 'org', 'headfill', 'w.bin');
    for (
      let i = 0;
      i < 1000 &&
      !(await fs.access(stored).then(
        () => true,
        () => false,
      ));
      i++
    )
      await new Promise((r) => setTimeout(r, 10));
    assert.ok((await fs.readFile(stored)).equals(want), 'file in the store after a HEAD alone');
    assert.equal(hub.countRequests({ host: 'cdn' }), 1);
    const get = await raw(dl('w.bin', 'master', 'org/headfill'));
    assert.ok(get.body.equals(want));
    assert.equal(hub.countRequests({ host: 'cdn' }), 1, 'the GET after the HEAD cost no second transfer');
  });
});

describe('serve: ModelScope face from the store alone (air-gapped, or upstream down after a restart)', () => {
  test('a store seeded by hubcache download modelscope:... answers info, revisions and file list; downloads work', async () => {
    const hub = await startTestHub();
    hub.ms
      .createRepo(ID, { gitattributes: true })
      .commit({ 'config.json': '{"v":1}\n', 'model.safetensors': W, 'sub/tokenizer.json': 'tok' });
    const store = await tempDir();
    const seeded = await runCli(['download', `modelscope:${ID}`], {
      MODELSCOPE_CACHE: store,
      MODELSCOPE_ENDPOINT: hub.msEndpoint,
    });
    assert.equal(seeded.code, 0, seeded.stderr);
    const listing = `/api/v1/models/${ID}/repo/files?Revision=master&Recursive=True`;
    const upstreamFiles = (JSON.parse((await raw(`${hub.msEndpoint}${listing}`)).body.toString()) as Envelope).Data
      ?.Files;
    const sums = (files: Array<Record<string, unknown>> | undefined): string[] =>
      (files ?? [])
        .filter((f) => f.Type === 'blob' && f.Name !== '.gitattributes')
        .map((f) => `${String(f.Path)} ${String(f.Size)} ${String(f.Sha256)} ${String(f.Revision)}`)
        .sort();
    hub.resetRequests();
    // --offline, and a restart with the upstream unreachable (nothing in memory).
    for (const opts of [{ offline: true }, { modelscopeUpstream: 'http://127.0.0.1:9' }]) {
      const m = await startMirror(['http://127.0.0.1:9'], {
        modelscopeUpstream: hub.msEndpoint,
        ...opts,
        cacheDir: store,
      });
      try {
        const files = await raw(`${m.url}${listing}`);
        assert.equal(files.status, 200);
        assert.equal(files.headers['x-hubcache-stale'], '1');
        const env = JSON.parse(files.body.toString()) as Envelope;
        assert.equal(env.Success, true);
        assert.deepEqual(sums(env.Data?.Files), sums(upstreamFiles), 'Path, Size, Sha256, Revision as upstream');
        const top = JSON.parse(
          (await raw(`${m.url}/api/v1/models/${ID}/repo/files?Revision=master`)).body.toString(),
        ) as Envelope;
        assert.deepEqual(top.Data?.Files?.map((f) => `${String(f.Type)}:${String(f.Path)}`).sort(), [
          'blob:config.json',
          'blob:model.safetensors',
          'tree:sub',
        ]);
        const revs = JSON.parse((await raw(`${m.url}/api/v1/models/${ID}/revisions`)).body.toString()) as {
          Data: { RevisionMap: { Branches: Array<{ Revision: string }> } };
        };
        assert.deepEqual(
          revs.Data.RevisionMap.Branches.map((b) => b.Revision),
          ['master'],
        );
        assert.equal((await raw(`${m.url}/api/v1/models/${ID}`)).status, 200);
        const bad = await raw(`${m.url}/api/v1/models/${ID}/repo/files?Revision=v9&Recursive=True`);
        assert.equal(bad.status, 404);
        assert.equal((JSON.parse(bad.body.toString()) as Envelope).Success, false);
        const unknown = await raw(`${m.url}/api/v1/models/org/unknown/repo/files?Revision=master&Recursive=True`);
        assert.ok(unknown.status === 502 || unknown.status === 504, `nothing stored: ${unknown.status}`);
        // hubcache's own client through the air-gapped mirror.
        const client = await tempDir();
        const r = await runCli(['download', `modelscope:${ID}`], {
          MODELSCOPE_CACHE: client,
          MODELSCOPE_ENDPOINT: m.url,
        });
        assert.equal(r.code, 0, r.stderr);
        const dir = path.join(client, 'models', 'Qwen', MASKED);
        assert.ok((await fs.readFile(path.join(dir, 'model.safetensors'))).equals(weights));
        assert.equal(await fs.readFile(path.join(dir, 'sub/tokenizer.json'), 'utf8'), 'tok');
        const part = await raw(`${m.url}/api/v1/models/${ID}/repo?Revision=master&FilePath=model.safetensors`, {
          headers: { range: 'bytes=10-19' },
        });
        assert.equal(part.status, 206);
        assert.ok(part.body.equals(weights.subarray(10, 20)));
      } finally {
        await m.close();
      }
    }
    assert.equal(hub.countRequests(), 0, 'no request reached the upstream');
    await hub.close();
  });
});
