// The operator's side of `hubcache serve`: /metrics (exposition parsed, counters move after real
// requests), /api/hubcache/status, prefetch (HTTP API and the `hubcache prefetch` CLI, API keys,
// bad input), and the dashboard loaded in headless Chromium after real downloads through the mirror.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ExitCode } from '../src/errors.js';
import { generatedContent, startTestHub, type TestHub } from './fixtures/test-hub.js';
import { raw, startMirror, type TestMirror } from './fixtures/mirror.js';
import { ROOT, runCli, tempDir } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';

/** Prometheus text format → `name{labels}` → value (labels in the order written). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `exposition line: ${line}`);
    out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

function sumOf(metrics: Map<string, number>, name: string, labelMatch: RegExp = /.*/): number {
  let n = 0;
  for (const [k, v] of metrics) if ((k === name || k.startsWith(`${name}{`)) && labelMatch.test(k)) n += v;
  return n;
}

async function metrics(m: TestMirror): Promise<Map<string, number>> {
  const r = await raw(`${m.url}/metrics`);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /text\/plain/);
  return parseMetrics(r.body.toString());
}

describe('serve: metrics, status, prefetch, dashboard', () => {
  let hub: TestHub;
  let m: TestMirror;
  let commit: string;
  const W = { size: 512 * 1024 + 3, seed: 8 };

  before(async () => {
    hub = await startTestHub();
    commit = hub.hf.createRepo('org/model').commit({ 'config.json': '{"a":1}', 'model.safetensors': W });
    hub.hf
      .createRepo('org/warmme')
      .commit({ 'a.json': '{}', 'w.safetensors': { size: 300_000, seed: 2 }, 'skip.bin': 'x' });
    hub.ms.createRepo('Qwen/Tiny').commit({ 'config.json': '{"t":1}', 'w.bin': { size: 100_000, seed: 3 } });
    m = await startMirror([hub.hfEndpoint], { modelscopeUpstream: hub.msEndpoint, maxSizeBytes: 1024 ** 3 });
  });
  after(async () => {
    await m.close();
    await hub.close();
  });

  test('/metrics: exposition parses; requests, bytes by source, hit/miss, fills, upstream counters move after real downloads', async () => {
    const before = await metrics(m);
    assert.equal(sumOf(before, 'hubcache_blob_requests_total'), 0);
    const url = `${m.url}/org/model/resolve/main/model.safetensors`;
    const cold = await raw(url);
    assert.equal(cold.status, 200);
    const warm = await raw(url);
    assert.equal(warm.status, 200);
    const ms = await raw(`${m.url}/api/v1/models/Qwen/Tiny/repo?Revision=master&FilePath=w.bin`);
    assert.equal(ms.status, 200);
    const after = await metrics(m);
    assert.equal(sumOf(after, 'hubcache_requests_total', /route="hf\.resolve",status="200"/), 2);
    assert.equal(sumOf(after, 'hubcache_requests_total', /route="ms\.download",status="200"/), 1);
    assert.equal(sumOf(after, 'hubcache_blob_requests_total', /result="hit"/), 1);
    assert.equal(sumOf(after, 'hubcache_blob_requests_total', /result="miss"/), 2);
    assert.equal(after.get('hubcache_hit_ratio'), 1 / 3);
    assert.equal(sumOf(after, 'hubcache_served_bytes_total', /source="store"/), W.size);
    assert.equal(sumOf(after, 'hubcache_served_bytes_total', /source="fill"/), W.size + 100_000);
    assert.equal(after.get('hubcache_upstream_fetched_bytes_total'), W.size + 100_000);
    assert.equal(sumOf(after, 'hubcache_fills_total', /result="ok"/), 2);
    assert.ok(sumOf(after, 'hubcache_upstream_requests_total', new RegExp(`upstream="${hub.hfEndpoint}"`)) >= 1);
    assert.ok(sumOf(after, 'hubcache_upstream_requests_total', new RegExp(`upstream="${hub.msEndpoint}"`)) >= 1);
    assert.ok(sumOf(after, 'hubcache_upstream_latency_seconds_count') >= 2);
    assert.equal(after.get('hubcache_fills_in_progress'), 0);
    assert.equal(after.get('hubcache_singleflight_waiters'), 0);
    assert.ok((after.get('hubcache_store_size_bytes') ?? 0) >= W.size, 'store size from a scan');
    assert.equal(after.get('hubcache_store_max_bytes'), 1024 ** 3);
  });

  test('upstream errors are counted per upstream; status JSON shows the failing upstream', async () => {
    const down = await startMirror(['http://127.0.0.1:9'], { modelscopeUpstream: hub.msEndpoint });
    try {
      assert.equal((await raw(`${down.url}/api/models/org/model/revision/main`)).status, 502);
      const mm = await metrics(down);
      assert.equal(sumOf(mm, 'hubcache_upstream_errors_total', /upstream="http:\/\/127\.0\.0\.1:9"/), 1);
      const st = JSON.parse((await raw(`${down.url}/api/hubcache/status`)).body.toString()) as {
        upstreams: Array<{ url: string; errors: number; lastError?: string }>;
      };
      assert.equal(st.upstreams[0]?.errors, 1);
      assert.ok(st.upstreams[0]?.lastError);
    } finally {
      await down.close();
    }
  });

  test('prefetch: POST answers 202 with a job id; the job warms the store; bad bodies are 400; then warm requests cost no upstream call', async () => {
    for (const bad of ['', 'nope', '{}', '{"repo": 3}', '{"repo": "org/x", "include": [1]}', '{"repo": "../../x"}']) {
      const r = await raw(`${m.url}/api/hubcache/prefetch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: bad,
      });
      assert.equal(r.status, 400, `${bad} → ${r.body.toString()}`);
      assert.equal(r.headers['x-error-code'], 'MirrorBadRequest');
    }
    const r = await raw(`${m.url}/api/hubcache/prefetch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ repo: 'org/warmme', include: ['*.json', '*.safetensors'] }),
    });
    assert.equal(r.status, 202);
    const job = JSON.parse(r.body.toString()) as { id: string; state: string };
    assert.match(job.id, /^p[0-9a-f]+$/);
    let j: { state: string; files: number; filesDone: number; commit?: string; error?: string } = {
      state: 'running',
      files: 0,
      filesDone: 0,
    };
    for (let i = 0; i < 200 && j.state === 'running'; i++) {
      await new Promise((res) => setTimeout(res, 50));
      j = JSON.parse((await raw(`${m.url}/api/hubcache/prefetch/${job.id}`)).body.toString()) as typeof j;
    }
    assert.equal(j.state, 'done', j.error);
    assert.equal(j.files, 2);
    assert.equal(j.filesDone, 2);
    const st = JSON.parse((await raw(`${m.url}/api/hubcache/status`)).body.toString()) as {
      prefetch: Array<{ id: string; state: string }>;
    };
    assert.ok(st.prefetch.some((p) => p.id === job.id && p.state === 'done'));
    assert.equal((await raw(`${m.url}/api/hubcache/prefetch/pnope`)).status, 404);
    // The store has it: a client fetching the files now is served from the store.
    const warmCommit = hub.hf.repo('org/warmme').resolve('main')?.commit.sha as string;
    // (the first request about a repo learns upstream whether it is public: one HEAD)
    assert.equal((await raw(`${m.url}/org/warmme/resolve/${warmCommit}/a.json`)).status, 200);
    hub.resetRequests();
    const got = await raw(`${m.url}/org/warmme/resolve/${warmCommit}/w.safetensors`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(generatedContent(300_000, 2).toBuffer()));
    assert.equal(hub.countRequests(), 0, 'prefetched: no upstream call');
  });

  test('hubcache prefetch CLI: waits and prints the result; --no-wait prints the job id; API keys; bad input', async () => {
    const keys = path.join(await tempDir(), 'keys');
    await fs.writeFile(keys, 'k-123\n');
    const km = await startMirror([hub.hfEndpoint], { modelscopeUpstream: hub.msEndpoint, apiKeys: ['k-123'] });
    try {
      const ok = await runCli(['prefetch', '--mirror', km.url, 'org/model', '--api-key', 'k-123']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, new RegExp(`Prefetched org/model@${commit}: 2 file\\(s\\)`));
      const snap = path.join(km.cacheDir, 'models--org--model', 'snapshots', commit, 'model.safetensors');
      assert.equal((await fs.stat(snap)).size, W.size);
      const ms = await runCli(['prefetch', 'modelscope:Qwen/Tiny', '--no-wait'], {
        HUBCACHE_MIRROR: km.url,
        HUBCACHE_API_KEY: 'k-123',
      });
      assert.equal(ms.code, 0, ms.stderr);
      assert.match(ms.stdout.trim(), /^p[0-9a-f]+$/);
      const nokey = await runCli(['prefetch', '--mirror', km.url, 'org/model']);
      assert.equal(nokey.code, ExitCode.unauthorized, nokey.stderr);
      assert.match(nokey.stderr, /API key/);
      const missing = await runCli(['prefetch', '--mirror', km.url, 'org/does-not-exist', '--api-key', 'k-123']);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /could not prefetch org\/does-not-exist/);
    } finally {
      await km.close();
    }
    const noMirror = await runCli(['prefetch', 'org/model']);
    assert.equal(noMirror.code, ExitCode.usage);
    assert.match(noMirror.stderr, /--mirror/);
    const badUrl = await runCli(['prefetch', '--mirror', 'ftp://x', 'org/model']);
    assert.equal(badUrl.code, ExitCode.usage);
    const unreachable = await runCli(['prefetch', '--mirror', 'http://127.0.0.1:9', 'org/model']);
    assert.equal(unreachable.code, ExitCode.network, unreachable.stderr);
  });

  test('dashboard in headless Chromium: cached repo ids visible, hit ratio, upstreams, store vs cap; screenshot saved', async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is missing (apt-get install -y --no-install-recommends chromium); CI installs it`);
      return;
    }
    // Real downloads through the mirror first (HF by hubcache, ModelScope by hubcache).
    const c = await tempDir();
    assert.equal((await runCli(['download', 'org/model', '--endpoint', m.url], { HF_HUB_CACHE: c })).code, 0);
    assert.equal(
      (await runCli(['download', 'modelscope:Qwen/Tiny'], { MODELSCOPE_CACHE: c, MODELSCOPE_ENDPOINT: m.url })).code,
      0,
    );
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const res = await page.goto(`${m.url}/`);
      assert.equal(res?.status(), 200);
      const text = await page.locator('body').innerText();
      for (const id of ['org/model', 'org/warmme', 'modelscope:Qwen/Tiny'])
        assert.ok(text.includes(id), `${id} visible on the dashboard`);
      assert.match(text, /Hit ratio\s+\d+(\.\d)? %/);
      assert.match(text, /[\d.]+ [kMGT]?B of 1\.1 GB/, 'store use vs cap (1 GiB = 1.1 GB)');
      assert.ok(text.includes(hub.hfEndpoint) && text.includes(hub.msEndpoint), 'both upstreams listed');
      assert.match(text, /Prefetch jobs/);
      const repoCells = await page.locator('#repos td.repo').allInnerTexts();
      assert.ok(repoCells.includes('org/model'), repoCells.join(','));
      await fs.mkdir(path.join(ROOT, 'test-output'), { recursive: true });
      await page.screenshot({ path: path.join(ROOT, 'test-output', 'dashboard.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
