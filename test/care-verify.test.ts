// `hubcache verify [--fix]` on caches filled by real downloads from the test hub, then damaged:
// a truncated LFS blob, a corrupted git blob, a missing blob; ModelScope files in both layouts,
// checked against the hub's listing (and "unverifiable" offline). --fix downloads exactly the bad
// files again.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashFiles } from '../src/care/hash-pool.js';
import type { VerifyReport } from '../src/care/verify.js';
import { Cache } from '../src/cache.js';
import { blobOf, gitSha1, sha256 } from './fixtures/care-cache.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

describe('care: verify', () => {
  let hub: TestHub;
  let c1: string;
  let c2: string;
  before(async () => {
    hub = await startTestHub();
    const repo = hub.hf.createRepo('org/model');
    c1 = repo.commit({
      'config.json': '{"v":1}',
      'model.safetensors': { size: 200_000, seed: 3 },
      'tok/vocab.txt': 'a b c',
    });
    repo.tag('v1', c1);
    c2 = repo.commit({ 'config.json': '{"v":2}' });
    const ms = hub.ms.createRepo('qwen/Q2.5');
    ms.commit({ 'config.json': '{"q":1}', 'w.bin': { size: 50_000, seed: 4 } });
  });
  after(async () => hub.close());

  const hfEnv = (root: string): Record<string, string> => ({
    HF_HUB_CACHE: root,
    HF_ENDPOINT: hub.hfEndpoint,
    MODELSCOPE_CACHE: root,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
  });
  const json = (stdout: string): VerifyReport => JSON.parse(stdout) as VerifyReport;

  async function damagedHfCache(): Promise<{ root: string; snap1: string; snap2: string }> {
    const root = await tempDir();
    const env = hfEnv(root);
    assert.equal((await runCli(['download', 'org/model', '--revision', 'v1'], env)).code, 0);
    assert.equal((await runCli(['download', 'org/model'], env)).code, 0);
    const repo = path.join(root, 'models--org--model');
    const snap1 = path.join(repo, 'snapshots', c1);
    const snap2 = path.join(repo, 'snapshots', c2);
    // truncated LFS blob (shared by both revisions), corrupted git blob of the same size, missing blob
    await fs.truncate(await blobOf(path.join(snap1, 'model.safetensors')), 150_000);
    await fs.writeFile(await blobOf(path.join(snap1, 'tok', 'vocab.txt')), 'a b X');
    await fs.unlink(await blobOf(path.join(snap2, 'config.json')));
    return { root, snap1, snap2 };
  }

  test('clean cache: every blob hashed once, exit 0', async () => {
    const root = await tempDir();
    const env = hfEnv(root);
    assert.equal((await runCli(['download', 'org/model', '--revision', 'v1'], env)).code, 0);
    assert.equal((await runCli(['download', 'org/model'], env)).code, 0);
    const r = await runCli(['verify', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const rep = json(r.stdout);
    // 2 configs + weights + vocab: the weights and vocab blobs are shared, hashed once
    assert.equal(rep.blobs, 4);
    assert.equal(rep.ok, 6);
    assert.deepEqual(rep.problems, []);
    assert.match(r.stderr, /"type":"verify-plan"/);
  });

  test('truncated, corrupt and missing files are reported; exit 1', async () => {
    const { root } = await damagedHfCache();
    const r = await runCli(['verify', '--json'], hfEnv(root));
    assert.equal(r.code, 1, r.stderr);
    const rep = json(r.stdout);
    const got = rep.problems.map((p) => `${p.verdict} ${p.revision === c1 ? 'v1' : 'main'} ${p.path}`).sort();
    assert.deepEqual(
      got,
      [
        'corrupt v1 tok/vocab.txt',
        'corrupt main tok/vocab.txt',
        'missing main config.json',
        'truncated v1 model.safetensors',
        'truncated main model.safetensors',
      ].sort(),
    );
    const trunc = rep.problems.find((p) => p.verdict === 'truncated')!;
    assert.deepEqual([trunc.size, trunc.expectedSize, trunc.algorithm], [150_000, 200_000, 'sha256']);
    const corrupt = rep.problems.find((p) => p.verdict === 'corrupt')!;
    assert.equal(corrupt.algorithm, 'git-sha1');
    assert.equal(corrupt.expected, gitSha1(Buffer.from('a b c')));
    assert.equal(corrupt.actual, gitSha1(Buffer.from('a b X')));
    const human = await runCli(['verify', 'org/model@v1'], hfEnv(root));
    assert.equal(human.code, 1);
    assert.match(
      human.stdout,
      /^truncated +org\/model@[0-9a-f]{12} {2}model\.safetensors {2}\(150000 of 200000 bytes\)$/m,
    );
    assert.match(human.stdout, /^corrupt +org\/model@[0-9a-f]{12} {2}tok\/vocab\.txt/m);
    assert.doesNotMatch(human.stdout, /config\.json/, 'only the named revision');
    assert.match(human.stderr, /verify --fix/);
  });

  test('--fix downloads exactly the bad files again, then they verify', async () => {
    const { root, snap1, snap2 } = await damagedHfCache();
    hub.resetRequests();
    const r = await runCli(['verify', '--fix', '--json'], hfEnv(root));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = json(r.stdout);
    assert.deepEqual(rep.problems, []);
    assert.equal(rep.fixed.length, 5);
    // File bodies fetched: each bad file once (the weights blob, shared by both revisions, once too).
    const bodies = hub.requests.filter((q) => q.method === 'GET' && (q.host === 'cdn' || q.path.includes('/resolve/')));
    const fetched = bodies.map((q) => decodeURIComponent(q.path.split('?')[0]!).split('/').pop()).sort();
    assert.deepEqual(fetched, ['config.json', 'model.safetensors', 'vocab.txt']);
    assert.equal((await fs.stat(path.join(snap1, 'model.safetensors'))).size, 200_000);
    assert.equal(await fs.readFile(path.join(snap1, 'tok', 'vocab.txt'), 'utf8'), 'a b c');
    assert.equal(await fs.readFile(path.join(snap2, 'config.json'), 'utf8'), '{"v":2}');
    assert.equal(
      sha256(await fs.readFile(path.join(snap2, 'model.safetensors'))),
      path.basename(await blobOf(path.join(snap2, 'model.safetensors'))),
    );
    const again = await runCli(['verify'], hfEnv(root));
    assert.equal(again.code, 0, again.stdout);
  });

  test('ModelScope legacy: checked against the hub listing; corrupt file fixed; offline it is unverifiable', async () => {
    const root = await tempDir();
    const env = hfEnv(root);
    assert.equal((await runCli(['download', 'modelscope:qwen/Q2.5'], env)).code, 0);
    const dir = path.join(root, 'models', 'qwen', 'Q2___5');
    const w = await fs.readFile(path.join(dir, 'w.bin'));
    const bad = Buffer.from(w);
    bad[100] = (bad[100]! + 1) % 256;
    await fs.writeFile(path.join(dir, 'w.bin'), bad);
    const r = await runCli(['verify', 'modelscope:qwen/Q2.5', '--json'], env);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(
      json(r.stdout).problems.map((p) => [p.verdict, p.path, p.expected]),
      [['corrupt', 'w.bin', sha256(w)]],
    );
    const offline = await runCli(['verify', '--offline', '--json'], env);
    assert.equal(offline.code, 0);
    assert.deepEqual(
      json(offline.stdout)
        .unverifiable.map((p) => p.path)
        .sort(),
      ['config.json', 'w.bin'],
    );
    const fixed = await runCli(['verify', '--fix'], env);
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
    assert.match(fixed.stdout, /^fixed +modelscope:qwen\/Q2\.5@master {2}w\.bin$/m);
    assert.deepEqual(await fs.readFile(path.join(dir, 'w.bin')), w);
  });

  test('ModelScope ≥1.38 layout: a truncated file is found and fixed through the library', async () => {
    const root = await tempDir();
    const cache = Cache.at(root, { modelscopeEndpoint: hub.msEndpoint, hfEndpoint: hub.hfEndpoint });
    const res = await cache.download({ repo: 'modelscope:qwen/Q2.5', msLayout: 'v2' });
    const file = path.join(res.path, 'w.bin');
    await fs.truncate(file, 10);
    const rep = await cache.verify({ targets: ['modelscope:qwen/Q2.5'] });
    assert.deepEqual(
      rep.problems.map((p) => [p.verdict, p.path]),
      [['truncated', 'w.bin']],
    );
    const fixed = await cache.verify({ targets: ['modelscope:qwen/Q2.5'], fix: true });
    assert.deepEqual([fixed.problems.length, fixed.fixed.length], [0, 1]);
    assert.equal((await fs.stat(file)).size, 50_000);
  });

  test('worker threads and inline streams hash alike', async () => {
    const dir = await tempDir();
    const files = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const p = path.join(dir, `f${i}`);
        await fs.writeFile(p, Buffer.alloc(100_000 * (i + 1), i));
        return p;
      }),
    );
    const jobs = files.flatMap((p) => [
      { path: p, algorithm: 'sha256' as const },
      { path: p, algorithm: 'git-sha1' as const },
    ]);
    jobs.push({ path: path.join(dir, 'missing'), algorithm: 'sha256' });
    let bytes = 0;
    const threads = await hashFiles(jobs, { mode: 'threads', onBytes: (n) => (bytes += n) });
    const inline = await hashFiles(jobs, { mode: 'inline' });
    assert.deepEqual(threads, inline);
    assert.equal(bytes, 2 * (100_000 * 10));
    const first = await fs.readFile(files[0]!);
    assert.deepEqual(threads[0], { ok: true, hex: sha256(first), size: first.length });
    assert.deepEqual(threads[1], { ok: true, hex: gitSha1(first), size: first.length });
    assert.equal(threads[8]?.ok, false);
  });
});
