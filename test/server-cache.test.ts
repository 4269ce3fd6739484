// `hubcache serve`: what it caches and for how long — warm requests cost no upstream call within
// the TTL, a moved branch is seen after it, stale-if-error when upstream is down, fallback
// upstreams (and a lagging one noticed), --offline, and the store capped by --max-size.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startTestHub } from './fixtures/test-hub.js';
import { raw, startMirror } from './fixtures/mirror.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { snapshotDownload } from '@huggingface/hub';
import { mirrorStatus } from '../src/server/status.js';
import { runCli, tempDir } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('serve: metadata cache and store', () => {
  test('cold then warm: within the TTL a warm request makes zero upstream requests', async () => {
    const hub = await startTestHub();
    const commit = hub.hf
      .createRepo('org/m')
      .commit({ 'config.json': '{}', 'model.safetensors': { size: 200_000, seed: 3 } });
    const m = await startMirror([hub.hfEndpoint], { metadataTtlMs: 60_000 });
    try {
      const paths = [
        '/org/m/resolve/main/model.safetensors',
        '/org/m/resolve/main/config.json',
        '/api/models/org/m/revision/main',
        `/api/models/org/m/tree/${commit}?recursive=true&expand=false`,
      ];
      for (const p of paths) assert.equal((await raw(`${m.url}${p}`)).status, 200, p);
      assert.ok(hub.countRequests() > 0, 'cold requests went upstream');
      hub.resetRequests();
      for (const p of paths) assert.equal((await raw(`${m.url}${p}`)).status, 200, p);
      const head = await raw(`${m.url}/org/m/resolve/main/model.safetensors`, { method: 'HEAD' });
      assert.equal(head.headers['x-repo-commit'], commit);
      assert.equal(hub.countRequests(), 0, 'warm: nothing upstream');
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('negative answers are cached for a short time only', async () => {
    const hub = await startTestHub();
    const repo = hub.hf.createRepo('org/m');
    repo.commit({ 'a.txt': 'a' });
    const m = await startMirror([hub.hfEndpoint], { negativeTtlMs: 300 });
    try {
      const url = `${m.url}/org/m/resolve/main/late.txt`;
      assert.equal((await raw(url)).headers['x-error-code'], 'EntryNotFound');
      repo.commit({ 'late.txt': 'here now' });
      hub.resetRequests();
      assert.equal((await raw(url)).status, 404, 'within the negative TTL: the cached 404');
      assert.equal(hub.countRequests(), 0);
      await sleep(400);
      const r = await raw(url);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'here now');
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('a branch moved upstream is seen after the metadata TTL, not before', async () => {
    const hub = await startTestHub();
    const repo = hub.hf.createRepo('org/m');
    const c1 = repo.commit({ 'config.json': '{"v":1}' });
    const ttl = 400;
    const m = await startMirror([hub.hfEndpoint], { metadataTtlMs: ttl });
    try {
      assert.equal((await raw(`${m.url}/org/m/resolve/main/config.json`)).body.toString(), '{"v":1}');
      const c2 = repo.commit({ 'config.json': '{"v":2}' });
      const before = await raw(`${m.url}/org/m/resolve/main/config.json`);
      assert.equal(before.headers['x-repo-commit'], c1, 'within the TTL: the cached mapping');
      await sleep(ttl + 100);
      const after = await raw(`${m.url}/org/m/resolve/main/config.json`);
      assert.equal(after.headers['x-repo-commit'], c2);
      assert.equal(after.body.toString(), '{"v":2}');
      const info = await raw(`${m.url}/api/models/org/m/revision/main`);
      assert.equal((JSON.parse(info.body.toString()) as { sha: string }).sha, c2);
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('after the TTL, concurrent requests for several files at a branch cost one revalidation upstream', async () => {
    const hub = await startTestHub();
    const files: Record<string, string> = {};
    for (let i = 0; i < 6; i++) files[`f${i}.txt`] = `file ${i}`;
    hub.hf.createRepo('org/m').commit(files);
    const ttl = 200;
    const m = await startMirror([hub.hfEndpoint], { metadataTtlMs: ttl });
    try {
      for (const f of Object.keys(files)) await raw(`${m.url}/org/m/resolve/main/${f}`);
      await sleep(ttl + 100);
      hub.resetRequests();
      const answers = await Promise.all(
        Object.keys(files).flatMap((f) => [
          raw(`${m.url}/org/m/resolve/main/${f}`),
          raw(`${m.url}/org/m/resolve/main/${f}`),
        ]),
      );
      assert.ok(answers.every((a) => a.status === 200));
      assert.equal(hub.countRequests(), 1, hub.requests.map((r) => `${r.method} ${r.path}`).join('\n'));
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('upstream down: cached metadata and blobs served stale with X-Hubcache-Stale; nothing cached → 502, not 404', async () => {
    const hub = await startTestHub();
    const commit = hub.hf.createRepo('org/m').commit({ 'config.json': '{"v":1}', 'other.txt': 'o' });
    const ttl = 200;
    const m = await startMirror([hub.hfEndpoint], { metadataTtlMs: ttl });
    try {
      await raw(`${m.url}/org/m/resolve/main/config.json`);
      await raw(`${m.url}/api/models/org/m/revision/main`);
      await hub.close();
      await sleep(ttl + 100);
      const f = await raw(`${m.url}/org/m/resolve/main/config.json`);
      assert.equal(f.status, 200);
      assert.equal(f.headers['x-hubcache-stale'], '1');
      assert.equal(f.headers['x-repo-commit'], commit);
      assert.equal(f.body.toString(), '{"v":1}');
      const info = await raw(`${m.url}/api/models/org/m/revision/main`);
      assert.equal(info.status, 200);
      assert.equal(info.headers['x-hubcache-stale'], '1');
      const missing = await raw(`${m.url}/org/m/resolve/main/other.txt`);
      assert.equal(missing.status, 502);
      assert.equal(missing.headers['x-error-code'], 'MirrorUpstreamUnavailable');
      // A listing from memory is gone (never fetched): the store lists what it can serve.
      const tree = await raw(`${m.url}/api/models/org/m/tree/main`);
      assert.equal(tree.status, 200);
      assert.equal(tree.headers['x-hubcache-stale'], '1');
      assert.deepEqual(
        (JSON.parse(tree.body.toString()) as Array<{ path: string }>).map((e) => e.path),
        ['config.json'],
      );
      const unknown = await raw(`${m.url}/api/models/org/unknown/tree/main`);
      assert.equal(unknown.status, 502);
      assert.match((JSON.parse(unknown.body.toString()) as { error: string }).error, /Upstream unavailable/);
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('after a restart with upstream down, the store itself (refs, snapshots) answers, stale', async () => {
    const hub = await startTestHub();
    const commit = hub.hf.createRepo('org/m').commit({ 'model.safetensors': { size: 100_000, seed: 5 } });
    const first = await startMirror([hub.hfEndpoint]);
    await raw(`${first.url}/org/m/resolve/main/model.safetensors`);
    await first.close();
    await hub.close();
    const second = await startMirror([hub.hfEndpoint], { cacheDir: first.cacheDir });
    try {
      const r = await raw(`${second.url}/org/m/resolve/main/model.safetensors`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-hubcache-stale'], '1');
      assert.equal(r.headers['x-repo-commit'], commit);
      assert.equal(r.body.length, 100_000);
    } finally {
      await second.close();
    }
  });

  test('--offline serves the store only and never calls upstream', async () => {
    const hub = await startTestHub();
    hub.hf.createRepo('org/m').commit({ 'config.json': '{"v":1}', 'b.txt': 'b' });
    const seed = await startMirror([hub.hfEndpoint]);
    await raw(`${seed.url}/org/m/resolve/main/config.json`);
    await seed.close();
    hub.resetRequests();
    const off = await startMirror([hub.hfEndpoint], { cacheDir: seed.cacheDir, offline: true });
    try {
      const r = await raw(`${off.url}/org/m/resolve/main/config.json`);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '{"v":1}');
      const miss = await raw(`${off.url}/org/m/resolve/main/b.txt`);
      assert.equal(miss.status, 504);
      assert.equal(miss.headers['x-error-code'], 'MirrorOffline');
      assert.equal((await raw(`${off.url}/api/models/org/m/revision/main`)).status, 200, 'from the store');
      assert.equal((await raw(`${off.url}/api/models/org/other/revision/main`)).status, 504);
      assert.equal(hub.countRequests(), 0);
    } finally {
      await off.close();
      await hub.close();
    }
  });

  test('an air-gapped mirror seeded by `hubcache download` serves whole snapshots from the store (revision, tree, files)', async () => {
    const hub = await startTestHub();
    const commit = hub.hf
      .createRepo('org/m')
      .commit({ 'config.json': '{"v":1}', 'sub/w.safetensors': { size: 50_000, seed: 8 } });
    const store = await tempDir();
    const seeded = await runCli(['download', 'org/m'], { HF_HUB_CACHE: store, HF_ENDPOINT: hub.hfEndpoint });
    assert.equal(seeded.code, 0, seeded.stderr);
    hub.resetRequests();
    const off = await startMirror([hub.hfEndpoint], { cacheDir: store, offline: true });
    try {
      const client = await tempDir();
      const r = await runCli(['download', 'org/m', '--endpoint', off.url], { HF_HUB_CACHE: client });
      assert.equal(r.code, 0, r.stderr);
      const snap = path.join(client, 'models--org--m', 'snapshots', commit);
      assert.equal(await fs.readFile(path.join(snap, 'config.json'), 'utf8'), '{"v":1}');
      assert.equal((await fs.stat(path.join(snap, 'sub/w.safetensors'))).size, 50_000);
      const hfjs = await snapshotDownload({ repo: 'org/m', cacheDir: await tempDir(), hubUrl: off.url });
      assert.equal(await fs.readFile(path.join(hfjs, 'config.json'), 'utf8'), '{"v":1}');
      const tree = await raw(`${off.url}/api/models/org/m/tree/main`);
      assert.equal(tree.headers['x-hubcache-stale'], '1');
      assert.deepEqual(
        (JSON.parse(tree.body.toString()) as Array<{ path: string; type: string }>).map((e) => `${e.type}:${e.path}`),
        ['file:config.json', 'directory:sub'],
      );
      assert.equal(hub.countRequests(), 0);
    } finally {
      await off.close();
      await hub.close();
    }
  });

  test('fallback upstreams: a failing primary falls back in order; a fallback that lags is reported', async () => {
    const primary = await startTestHub();
    const fallback = await startTestHub();
    const old = fallback.hf.createRepo('org/m').commit({ 'config.json': '{"v":1}' });
    const p = primary.hf.createRepo('org/m');
    p.commit({ 'config.json': '{"v":1}' });
    const fresh = p.commit({ 'config.json': '{"v":2}' });
    const m = await startMirror([primary.hfEndpoint, fallback.hfEndpoint], { metadataTtlMs: 100 });
    try {
      const a = await raw(`${m.url}/api/models/org/m/revision/main`);
      assert.equal((JSON.parse(a.body.toString()) as { sha: string }).sha, fresh);
      primary.faults.status(503, { match: () => true, times: Infinity });
      await sleep(150);
      const b = await raw(`${m.url}/api/models/org/m/revision/main`);
      assert.equal(b.status, 200);
      assert.equal((JSON.parse(b.body.toString()) as { sha: string }).sha, old, 'answered by the fallback');
      const st = m.mirror.services.upstreams.status();
      const rec = st.repos['model/org/m'];
      assert.equal(rec?.lastUpstream, fallback.hfEndpoint);
      assert.equal(rec?.lagging.length, 1, JSON.stringify(rec));
      assert.match(rec?.lagging[0] ?? '', new RegExp(`${old.slice(0, 8)} vs primary ${fresh.slice(0, 8)}`));
      assert.ok((st.upstreams.find((u) => u.url === primary.hfEndpoint)?.errors ?? 0) >= 1);
      const json = JSON.parse(JSON.stringify(mirrorStatus(m.mirror.services))) as {
        repos: Record<string, { lagging: string[] }>;
      };
      assert.equal(json.repos['model/org/m']?.lagging.length, 1, 'the status object carries the lag');
    } finally {
      await m.close();
      await primary.close();
      await fallback.close();
    }
  });

  test('--max-size: the store is kept under the cap by the LRU gc after fills', async () => {
    const hub = await startTestHub();
    const MiB = 1024 * 1024;
    for (const n of [1, 2, 3]) hub.hf.createRepo(`org/m${n}`).commit({ 'model.safetensors': { size: MiB, seed: n } });
    const cap = Math.round(2.5 * MiB);
    const m = await startMirror([hub.hfEndpoint], { maxSizeBytes: cap });
    const cache = m.mirror.services.cache;
    try {
      for (const n of [1, 2, 3]) {
        const r = await raw(`${m.url}/org/m${n}/resolve/main/model.safetensors`);
        assert.equal(r.body.length, MiB);
        await sleep(20); // distinct last-use times
      }
      let total = Infinity;
      for (let i = 0; i < 200 && total > cap; i++) {
        await sleep(50);
        total = (await cache.scan()).repos.reduce((s, r) => s + r.size, 0);
      }
      assert.ok(total <= cap, `store ${total} > cap ${cap}`);
      const ids = (await cache.scan()).repos
        .filter((r) => r.size > 0)
        .map((r) => r.id)
        .sort();
      assert.deepEqual(ids, ['org/m2', 'org/m3'], 'the least recently used went');
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('the store is a hubcache cache: `hubcache ls` sees what the mirror fetched', async () => {
    const hub = await startTestHub();
    hub.hf.createRepo('org/m').commit({ 'config.json': '{}' });
    const dir = await tempDir();
    const m = await startMirror([hub.hfEndpoint], { cacheDir: dir });
    try {
      await raw(`${m.url}/org/m/resolve/main/config.json`);
      const scan = await m.mirror.services.cache.scan();
      const repo = scan.repos.find((r) => r.id === 'org/m');
      assert.ok(repo, 'scanned');
      assert.deepEqual(
        repo.revisions.flatMap((r) => r.refs),
        ['main'],
      );
    } finally {
      await m.close();
      await hub.close();
    }
  });
});
