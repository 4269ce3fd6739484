// Cluster mode, metadata side (src/cluster/metadata.ts, src/server/cluster-view.ts), on a real Ceph RGW:
// what one replica learned from upstream (refs, commit files, ModelScope file lists) another answers
// with no upstream request; the TTL holds across replicas; access is never shared through the bucket;
// store down → 503 JSON, then recovery without restart; the cluster on the status JSON, /metrics and
// the dashboard (headless Chromium).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import type { ServeOptions } from '../src/server/options.js';
import { raw, startMirror, type TestMirror } from './fixtures/mirror.js';
import { rgwSkip, useRgw } from './fixtures/rgw.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';

const CHROMIUM = '/usr/bin/chromium';
const SECRET = 'cluster-secret-for-tests';
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

describe('cluster: metadata shared through the bucket', { skip: rgwSkip }, () => {
  const rgw = useRgw();
  const open: TestMirror[] = [];
  const hubs: TestHub[] = [];

  /** `n` replicas on one fresh bucket, in front of `hub`. */
  async function replicas(hub: TestHub, n: number, opts: Partial<ServeOptions> = {}): Promise<TestMirror[]> {
    const bucket = await rgw().newBucket();
    const out: TestMirror[] = [];
    for (let i = 0; i < n; i++) {
      const m = await startMirror([hub.hfEndpoint], {
        modelscopeUpstream: hub.msEndpoint,
        ...opts,
        cluster: { store: `s3://${bucket}/hc`, secret: SECRET, env: rgw().env },
      });
      open.push(m);
      out.push(m);
    }
    return out;
  }
  async function hub(): Promise<TestHub> {
    const h = await startTestHub();
    hubs.push(h);
    return h;
  }
  const s3Of = (m: TestMirror) => m.mirror.services.cluster!.s3;
  after(async () => {
    for (const h of hubs) await h.close().catch(() => undefined);
  });

  test('a file resolved via replica A is answered by B (main and the commit) with no upstream request', async (t) => {
    t.after(async () => {
      for (const m of open.splice(0)) await m.close();
    });
    const h = await hub();
    const commit = h.hf
      .createRepo('org/m')
      .commit({ 'config.json': '{"v":1}', 'model.safetensors': { size: 70_000, seed: 4 } });
    const [a, b] = await replicas(h, 2);
    for (const f of ['config.json', 'model.safetensors']) {
      const r = await raw(`${a!.url}/org/m/resolve/main/${f}`);
      assert.equal(r.status, 200, f);
    }
    const ref = await s3Of(a!).getJson<{ commit: string; fetchedAt: string; public?: boolean }>(
      'refs/hf/models--org--m/main.json',
    );
    assert.equal(ref?.value.commit, commit);
    assert.equal(ref?.value.public, true);
    const rec = await s3Of(a!).getJson<{ files: Record<string, { etag: string; size: number; lfs: boolean }> }>(
      `meta/hf/models--org--m/commits/${commit}.json`,
    );
    assert.deepEqual(Object.keys(rec?.value.files ?? {}).sort(), ['config.json', 'model.safetensors']);
    assert.equal(rec?.value.files['model.safetensors']?.size, 70_000);
    assert.equal(rec?.value.files['model.safetensors']?.lfs, true);

    h.resetRequests();
    for (const rev of ['main', commit]) {
      for (const f of ['config.json', 'model.safetensors']) {
        const r = await raw(`${b!.url}/org/m/resolve/${rev}/${f}`, { method: 'HEAD' });
        assert.equal(r.status, 200, `${rev} ${f}`);
        assert.equal(r.headers['x-repo-commit'], commit);
        assert.equal(r.headers['x-hubcache-stale'], undefined);
      }
    }
    const size = await raw(`${b!.url}/org/m/resolve/main/model.safetensors`, { method: 'HEAD' });
    assert.equal(size.headers['content-length'], '70000');
    assert.equal(h.countRequests(), 0, h.requests.map((r) => `${r.method} ${r.path}`).join('\n'));
    const st = JSON.parse((await raw(`${b!.url}/api/hubcache/status`)).body.toString()) as {
      cluster: { replicas: Array<{ id: string; metadata: { hits: number } }> };
    };
    const me = st.cluster.replicas.find((r) => r.id === b!.mirror.services.cluster!.replicaId);
    assert.ok((me?.metadata.hits ?? 0) >= 5, JSON.stringify(me));
  });

  test('a ModelScope file list fetched via A is served by B from the bucket; a private list is never written', async (t) => {
    t.after(async () => {
      for (const m of open.splice(0)) await m.close();
    });
    const h = await hub();
    h.ms.createRepo('org/ms').commit({ 'config.json': '{"a":1}', 'w.bin': { size: 30_000, seed: 2 } });
    h.ms.createRepo('org/priv', { private: true }).commit({ 'a.txt': 'secret' });
    h.tokens.add('ms_good');
    const [a, b] = await replicas(h, 2);
    const list = (m: TestMirror, id: string, headers: Record<string, string> = {}) =>
      raw(`${m.url}/api/v1/models/${id}/repo/files?Revision=master&Recursive=True`, { headers });
    const first = await list(a!, 'org/ms');
    assert.equal(first.status, 200);
    const rec = await s3Of(a!).getJson<{ fetchedAt: string; body: string }>(
      'meta/modelscope/org/ms/revisions/master.json',
    );
    assert.ok(rec?.value.body.includes('w.bin'));
    h.resetRequests();
    const second = await list(b!, 'org/ms');
    assert.equal(second.status, 200);
    assert.ok(second.body.equals(first.body), 'the same list');
    // The download route reads the same list: its metadata costs nothing upstream either.
    const head = await raw(`${b!.url}/api/v1/models/org/ms/repo?Revision=master&FilePath=w.bin`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(h.countRequests(), 0, h.requests.map((r) => `${r.method} ${r.path}`).join('\n'));

    assert.equal((await list(a!, 'org/priv', bearer('ms_good'))).status, 200);
    assert.equal(await s3Of(a!).getJson('meta/modelscope/org/priv/revisions/master.json'), undefined);
    assert.equal((await list(b!, 'org/priv')).status, 403, 'anonymous on B: refused');
  });

  test('a branch moved upstream is seen by every replica after the TTL, not before', async (t) => {
    t.after(async () => {
      for (const m of open.splice(0)) await m.close();
    });
    const h = await hub();
    const repo = h.hf.createRepo('org/m');
    const c1 = repo.commit({ 'config.json': '{"v":1}' });
    const ttl = 800;
    const [a, b] = await replicas(h, 2, { metadataTtlMs: ttl });
    assert.equal((await raw(`${a!.url}/org/m/resolve/main/config.json`)).headers['x-repo-commit'], c1);
    const c2 = repo.commit({ 'config.json': '{"v":2}' });
    h.resetRequests();
    const within = await raw(`${b!.url}/org/m/resolve/main/config.json`, { method: 'HEAD' });
    assert.equal(within.headers['x-repo-commit'], c1, 'within the TTL: A’s answer, from the bucket');
    assert.equal(h.countRequests(), 0);
    await sleep(ttl + 200);
    const afterB = await raw(`${b!.url}/org/m/resolve/main/config.json`);
    assert.equal(afterB.headers['x-repo-commit'], c2);
    assert.equal(afterB.body.toString(), '{"v":2}');
    const ref = await s3Of(b!).getJson<{ commit: string }>('refs/hf/models--org--m/main.json');
    assert.equal(ref?.value.commit, c2, 'B wrote the new commit for the others');
    h.resetRequests();
    const afterA = await raw(`${a!.url}/org/m/resolve/main/config.json`, { method: 'HEAD' });
    assert.equal(afterA.headers['x-repo-commit'], c2, 'A: its memory expired, the bucket has B’s fresh answer');
    assert.equal(h.countRequests(), 0, h.requests.map((r) => `${r.method} ${r.path}`).join('\n'));
  });

  test('gated repo: alice filled it via A; on B anonymous and bob are refused, alice is asked for upstream', async (t) => {
    t.after(async () => {
      for (const m of open.splice(0)) await m.close();
    });
    const h = await hub();
    const commit = h.hf
      .createRepo('org/gated', { gated: 'manual' })
      .commit({ 'model.safetensors': { size: 40_000, seed: 7 } });
    h.tokens.add('hf_alice', { canAccessGated: true, name: 'alice' });
    h.tokens.add('hf_bob', { canAccessGated: false, name: 'bob' });
    const [a, b] = await replicas(h, 2);
    assert.equal(
      (await raw(`${a!.url}/org/gated/resolve/main/model.safetensors`, { headers: bearer('hf_alice') })).status,
      200,
    );
    const ref = await s3Of(a!).getJson<{ commit: string; public?: boolean }>('refs/hf/models--org--gated/main.json');
    assert.equal(ref?.value.commit, commit, 'the metadata is shared');
    assert.equal(ref?.value.public, undefined, 'but not marked public');
    for (const rev of ['main', commit]) {
      const url = `${b!.url}/org/gated/resolve/${rev}/model.safetensors`;
      for (const method of ['HEAD', 'GET']) {
        const anon = await raw(url, { method });
        assert.equal(anon.status, 401, `anonymous ${method} ${rev}`);
        assert.equal(anon.headers['x-error-code'], 'GatedRepo');
        const bob = await raw(url, { method, headers: bearer('hf_bob') });
        assert.equal(bob.status, 403, `bob ${method} ${rev}`);
      }
    }
    h.resetRequests();
    const alice = await raw(`${b!.url}/org/gated/resolve/main/model.safetensors`, {
      method: 'HEAD',
      headers: bearer('hf_alice'),
    });
    assert.equal(alice.status, 200);
    assert.ok(h.countRequests({ authorization: true }) >= 1, 'B checked alice’s own token upstream');
  });

  test('store down: upstream answers meanwhile; store and upstream down → 503 JSON; store back → stale answer', async (t) => {
    t.after(async () => {
      await rgw().start();
      for (const m of open.splice(0)) await m.close();
    });
    const h = await hub();
    const commit = h.hf.createRepo('org/m').commit({ 'config.json': '{"v":1}', 'other.txt': 'o' });
    const ttl = 500;
    const [a, b] = await replicas(h, 2, { metadataTtlMs: ttl });
    assert.equal((await raw(`${a!.url}/org/m/resolve/main/config.json`)).status, 200);
    await rgw().stopGateway();
    // The bucket is only a shortcut: with it down, upstream still answers (the write is logged).
    const other = await raw(`${b!.url}/org/m/resolve/main/other.txt`, { method: 'HEAD' });
    assert.equal(other.status, 200);
    await h.close();
    await sleep(ttl + 100);
    const down = await raw(`${b!.url}/org/m/resolve/main/config.json`, { method: 'HEAD' });
    assert.equal(down.status, 503);
    assert.equal(down.headers['x-error-code'], 'MirrorStoreUnavailable');
    const downGet = await raw(`${b!.url}/org/m/resolve/main/config.json`);
    assert.equal(downGet.status, 503);
    assert.match((JSON.parse(downGet.body.toString()) as { error: string }).error, /shared store/);
    const st = await raw(`${b!.url}/api/hubcache/status`);
    assert.equal(st.status, 200, 'the status page works with the store down');
    assert.ok((JSON.parse(st.body.toString()) as { cluster: { storeError?: string } }).cluster.storeError);
    await rgw().start();
    const back = await raw(`${b!.url}/org/m/resolve/main/config.json`, { method: 'HEAD' });
    assert.equal(back.status, 200, 'recovered without a restart');
    assert.equal(back.headers['x-hubcache-stale'], '1', 'past its TTL, upstream down: stale');
    assert.equal(back.headers['x-repo-commit'], commit);
  });

  test('cluster view: status JSON, /metrics and the dashboard (headless Chromium) list the replicas', async (t) => {
    t.after(async () => {
      for (const m of open.splice(0)) await m.close();
    });
    const h = await hub();
    h.hf.createRepo('org/m').commit({ 'config.json': '{"v":1}' });
    const ms = await replicas(h, 3);
    assert.equal((await raw(`${ms[0]!.url}/org/m/resolve/main/config.json`)).status, 200);
    await sleep(300); // the first heartbeats are written at listen, asynchronously
    const ids = ms.map((m) => m.mirror.services.cluster!.replicaId);
    const st = JSON.parse((await raw(`${ms[1]!.url}/api/hubcache/status`)).body.toString()) as {
      cluster: { replicaId: string; replicas: Array<{ id: string; address: string; alive: boolean }> };
    };
    assert.equal(st.cluster.replicaId, ids[1]);
    assert.deepEqual(st.cluster.replicas.map((r) => r.id).sort(), [...ids].sort());
    assert.ok(st.cluster.replicas.every((r) => r.alive && r.address.startsWith('http://127.0.0.1:')));
    const metrics = (await raw(`${ms[2]!.url}/metrics`)).body.toString();
    assert.match(metrics, /^hubcache_cluster_replicas 3$/m);
    assert.match(metrics, new RegExp(`^hubcache_cluster_fills_in_progress\\{replica="${ids[0]}"\\} 0$`, 'm'));
    assert.match(metrics, /^hubcache_cluster_upstream_bytes_saved \d+$/m);
    const first = (await raw(`${ms[0]!.url}/metrics`)).body.toString();
    assert.match(
      first,
      /^hubcache_shared_metadata_total\{result="write"\} [1-9]\d*$/m,
      'A wrote the ref and the commit',
    );
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is missing (apt-get install -y --no-install-recommends chromium); CI installs it`);
      return;
    }
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage();
      assert.equal((await page.goto(`${ms[0]!.url}/`))?.status(), 200);
      const text = await page.locator('body').innerText();
      assert.match(text, /Cluster \(3 replicas up\) on s3:\/\//);
      assert.match(text, /Upstream bytes saved: \d/);
      const rows = await page.locator('#cluster tr').allInnerTexts();
      assert.equal(rows.length, 4, rows.join('\n'));
      for (const [i, id] of ids.entries()) {
        const row = rows.find((r) => r.includes(id));
        assert.ok(row, `${id} listed`);
        assert.ok(row.includes(ms[i]!.url), `${id} with its address`);
        assert.match(row, /\bup\b/);
      }
      assert.ok(rows.some((r) => r.includes(`${ids[0]} (this one)`)));
    } finally {
      await browser.close();
    }
  });
});
