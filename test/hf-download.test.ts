// End-to-end HF downloads through the CLI against the test hub: layout, revisions, filters,
// local-dir, offline, errors, security, and request counts (a cached model costs no requests).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { listTree, runCli, spawnCli, tempDir } from './helpers.js';
import { ExitCode } from '../src/errors.js';
import { Cache } from '../src/cache.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

const CONFIG = Buffer.from('{"model_type":"demo"}\n');
const WEIGHTS = Buffer.alloc(300_000, 7);
const WEIGHTS_FP32 = Buffer.alloc(50_000, 9);
const SUB = Buffer.from('tokenizer data');

describe('hf download', () => {
  let hub: TestHub;
  let c1: string;
  let c2: string;
  before(async () => {
    hub = await startTestHub({ pageSize: 2 });
    const repo = hub.hf.createRepo('org/model');
    c1 = repo.commit({
      'config.json': CONFIG,
      'model.safetensors': WEIGHTS,
      'model-fp32.safetensors': WEIGHTS_FP32,
      'tok/tokenizer.json': SUB,
      'README.md': '# demo',
    });
    repo.tag('v1.0', c1);
    c2 = repo.commit({ 'config.json': Buffer.from('{"model_type":"demo","v":2}\n') }, { branch: 'main' });
    hub.hf.createRepo('org/private', { private: true }).commit({ 'a.txt': 'secret' });
    hub.hf.createRepo('org/gated', { gated: 'manual' }).commit({ 'a.txt': 'gated' });
    hub.tokens.add('hf_good', { canAccessGated: true });
    hub.tokens.add('hf_nogate', { canAccessGated: false });
  });
  after(async () => hub.close());

  const env = (cache: string, extra: Record<string, string> = {}): Record<string, string> => ({
    HF_HUB_CACHE: cache,
    HF_ENDPOINT: hub.hfEndpoint,
    ...extra,
  });

  test('whole repo: byte-compatible layout, stdout is the snapshot path', async () => {
    const cache = await tempDir();
    const r = await runCli(['download', 'org/model'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    const snap = path.join(cache, 'models--org--model', 'snapshots', c2);
    assert.equal(r.stdout.trim(), snap);
    const repoDir = path.join(cache, 'models--org--model');
    assert.equal(await fs.readFile(path.join(repoDir, 'refs', 'main'), 'utf8'), c2, 'ref is the bare 40-char hash');
    // relative symlinks into blobs/, one ../ more per sub-directory level
    assert.equal(await fs.readlink(path.join(snap, 'model.safetensors')), `../../blobs/${sha256(WEIGHTS)}`);
    assert.equal(await fs.readlink(path.join(snap, 'tok', 'tokenizer.json')), `../../../blobs/${gitSha1(SUB)}`);
    assert.deepEqual(await fs.readFile(path.join(snap, 'model.safetensors')), WEIGHTS);
    const blobs = (await fs.readdir(path.join(repoDir, 'blobs'))).sort();
    assert.ok(
      blobs.every((b) => /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(b)),
      `no temp files left: ${blobs}`,
    );
    assert.equal(
      await fs.readFile(path.join(cache, 'CACHEDIR.TAG'), 'utf8'),
      'Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n',
    );
    const tree = JSON.parse(await fs.readFile(path.join(repoDir, 'trees', `${c2}.json`), 'utf8')) as {
      format_version: number;
      files: Record<string, { size: number; lfs_sha256?: string }>;
    };
    assert.equal(tree.format_version, 1);
    assert.equal(tree.files['model.safetensors']?.lfs_sha256, sha256(WEIGHTS));
    assert.ok(await fs.stat(path.join(cache, '.locks', 'models--org--model')).then((s) => s.isDirectory()));
  });

  test('second run fetches no file bodies; a cached full commit makes no request at all', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', 'org/model'], env(cache))).code, 0);
    hub.resetRequests();
    const again = await runCli(['download', 'org/model'], env(cache));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      hub.requests.filter((r) => r.host === 'cdn' || r.path.includes('/resolve/')).length,
      0,
      'no body requests',
    );
    hub.resetRequests();
    const pinned = await runCli(['download', 'org/model', '--revision', c2], env(cache));
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.equal(hub.requests.length, 0, `no request at all: ${JSON.stringify(hub.requests)}`);
  });

  test('filters, explicit files, tag revision, and the old snapshot is kept when main moves', async () => {
    const cache = await tempDir();
    const r = await runCli(
      ['download', 'org/model', '--include', '*.safetensors', '--include', '*.json', '--exclude', '*fp32*'],
      env(cache),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await listTree(r.stdout.trim()), ['config.json', 'model.safetensors', 'tok/tokenizer.json']);
    const one = await runCli(['download', 'org/model', 'config.json', 'README.md', '--revision', 'v1.0'], env(cache));
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout.trim(), path.join(cache, 'models--org--model', 'snapshots', c1));
    assert.deepEqual(await listTree(one.stdout.trim()), ['README.md', 'config.json']);
    assert.deepEqual(await fs.readFile(path.join(one.stdout.trim(), 'config.json')), CONFIG);
    assert.equal(await fs.readFile(path.join(cache, 'models--org--model', 'refs', 'v1.0'), 'utf8'), c1);
    // main moves: new snapshot, refs/main updated, old one still there
    const repo = hub.hf.repo('org/model');
    const c3 = repo.commit({ 'config.json': '{"v":3}' });
    const moved = await runCli(['download', 'org/model', 'config.json'], env(cache));
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(await fs.readFile(path.join(cache, 'models--org--model', 'refs', 'main'), 'utf8'), c3);
    assert.ok(await fs.stat(path.join(cache, 'models--org--model', 'snapshots', c2, 'config.json')));
    c2 = c3;
  });

  test('refs/pr/N and a short commit hash resolve like huggingface_hub (nested ref file / ref named by the hash)', async () => {
    const cache = await tempDir();
    const repo = hub.hf.repo('org/model');
    const pr = repo.openPr(c1);
    const r = await runCli(['download', 'org/model', 'config.json', '--revision', pr], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fs.readFile(path.join(cache, 'models--org--model', 'refs', ...pr.split('/')), 'utf8'), c1);
    const short = c1.slice(0, 7);
    const s = await runCli(['download', 'org/model', 'config.json', '--revision', short], env(cache));
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout.trim(), path.join(cache, 'models--org--model', 'snapshots', c1));
    assert.equal(await fs.readFile(path.join(cache, 'models--org--model', 'refs', short), 'utf8'), c1);
  });

  test('dry run lists what would be fetched and writes nothing', async () => {
    const cache = await tempDir();
    const r = await runCli(['download', 'org/model', '--dry-run'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /download\s+300\.0 kB\s+model\.safetensors/);
    assert.match(r.stdout, /total: 5 of 5 files to fetch/);
    assert.deepEqual(await fs.readdir(cache), []);
  });

  test('local-dir: plain files + metadata; a second run skips them', async () => {
    const cache = await tempDir();
    const dir = path.join(await tempDir(), 'out');
    const r = await runCli(['download', 'org/model', '--local-dir', dir], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), dir);
    const st = await fs.lstat(path.join(dir, 'model.safetensors'));
    assert.ok(st.isFile() && !st.isSymbolicLink());
    const meta = (
      await fs.readFile(path.join(dir, '.cache/huggingface/download/model.safetensors.metadata'), 'utf8')
    ).split('\n');
    assert.equal(meta[0], c2);
    assert.equal(meta[1], sha256(WEIGHTS));
    assert.ok(Number.parseFloat(meta[2] ?? '') > 1e9);
    assert.equal(meta.length, 4, 'three lines, each ending in \\n');
    assert.equal(await fs.readFile(path.join(dir, '.cache/huggingface/.gitignore'), 'utf8'), '*');
    hub.resetRequests();
    const again = await runCli(['download', 'org/model', '--local-dir', dir], env(cache));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(hub.requests.filter((q) => q.host === 'cdn' || q.path.includes('/resolve/')).length, 0);
  });

  test('offline: a full hit works with the server unreachable; a miss names the files', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', 'org/model', 'config.json'], env(cache))).code, 0);
    const dead = { HF_HUB_CACHE: cache, HF_ENDPOINT: 'http://127.0.0.1:9' };
    const hit = await runCli(['download', 'org/model', 'config.json'], { ...dead, HF_HUB_OFFLINE: '1' });
    assert.equal(hit.code, 0, hit.stderr);
    const miss = await runCli(['download', 'org/model'], { ...dead, HF_HUB_OFFLINE: '1' });
    assert.equal(miss.code, ExitCode.offlineMiss);
    assert.match(miss.stderr, /model\.safetensors/);
    assert.match(miss.stderr, /hint: .*without --offline/);
    // network down but not offline mode: falls back to the cached ref and says so
    const fallback = await runCli(['download', 'org/model', 'config.json'], dead);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(fallback.stderr, /unreachable/i);
  });

  test('errors: each class has its own message and exit code; tokens never leak', async () => {
    const cache = await tempDir();
    const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
      [['download', 'org/nope'], {}, ExitCode.repoNotFound, /not found/i],
      [['download', 'org/model', '--revision', 'nope'], {}, ExitCode.revisionNotFound, /revision/i],
      [['download', 'org/model', 'missing.bin'], {}, ExitCode.entryNotFound, /missing\.bin/],
      [['download', 'org/gated'], {}, ExitCode.gatedRepo, /gated/i],
      [['download', 'org/gated'], { HF_TOKEN: 'hf_nogate' }, ExitCode.gatedRepo, /gated/i],
      [['download', 'org/private'], {}, ExitCode.repoNotFound, /not found/i],
      [['download', 'org/private'], { HF_TOKEN: 'hf_bad' }, ExitCode.unauthorized, /token/i],
      [['download', 'a/../b'], {}, ExitCode.usage, /valid repo id/],
    ];
    for (const [args, extra, code, re] of cases) {
      const r = await runCli(args, env(cache, extra));
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr + r.stdout, /hf_(good|nogate|bad)/);
    }
    const gatedHint = await runCli(['download', 'org/gated'], env(cache));
    assert.match(gatedHint.stderr, /hint: .*token/i);
    const ok = await runCli(['download', 'org/gated'], env(cache, { HF_TOKEN: 'hf_good' }));
    assert.equal(ok.code, 0, ok.stderr);
    const priv = await runCli(['download', 'org/private', '--token', 'hf_good'], env(cache));
    assert.equal(priv.code, 0, priv.stderr);
    assert.ok(
      hub.requests.every((q) => q.host !== 'cdn' || !q.authorization),
      'no token sent to the CDN',
    );
    // .no_exist marker for the missing file
    const noExist = path.join(cache, 'models--org--model', '.no_exist');
    assert.ok((await listTree(noExist)).some((p) => p.endsWith('/missing.bin')));
  });

  test('a malicious file name from the server is refused and nothing is written', async () => {
    const cache = await tempDir();
    const evil = hub.hf.createRepo('org/evil');
    evil.commit({ 'ok.txt': 'fine' });
    hub.hf.injectTreeEntries('org/evil', [{ type: 'file', path: '../../escape.txt', size: 4, oid: 'a'.repeat(40) }]);
    const r = await runCli(['download', 'org/evil'], env(cache));
    assert.equal(r.code, ExitCode.unsafePath, r.stderr);
    assert.match(r.stderr, /unsafe/i);
    await assert.rejects(fs.stat(path.join(cache, '..', 'escape.txt')));
    await assert.rejects(fs.stat(path.join(cache, 'models--org--evil', 'snapshots')));
  });

  test('two processes downloading the same repo at once: one copy, valid', async () => {
    const cache = await tempDir();
    hub.resetRequests();
    const a = spawnCli(['download', 'org/model'], env(cache));
    const b = spawnCli(['download', 'org/model'], env(cache));
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    const snap = ra.stdout.trim();
    assert.deepEqual(await fs.readFile(path.join(snap, 'model.safetensors')), WEIGHTS);
    const bodyGets = hub.requests.filter(
      (q) => q.method === 'GET' && q.host === 'cdn' && q.path.includes(sha256(WEIGHTS)),
    );
    assert.equal(bodyGets.length, 1, 'the blob body was transferred once');
    const blobs = await fs.readdir(path.join(cache, 'models--org--model', 'blobs'));
    assert.ok(blobs.every((x) => !x.includes('incomplete')));
  });

  test('library API: Cache.at(dir).download and file()', async () => {
    const cache = await tempDir();
    const c = Cache.at(cache, { hfEndpoint: hub.hfEndpoint });
    const events: string[] = [];
    const res = await c.download({ repo: 'org/model', include: ['*.json'], onProgress: (e) => events.push(e.type) });
    assert.equal(res.commit, c2);
    assert.ok(events.includes('plan') && events.includes('done'));
    const p = await c.file('org/model', 'config.json');
    assert.equal(p, path.join(cache, 'models--org--model', 'snapshots', c2, 'config.json'));
  });
});
