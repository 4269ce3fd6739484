// Interop with the JS reference client (npm @huggingface/hub): its scanCacheDir reads what we
// write, and blobs it downloaded are reused by hubcache without fetching their bodies again.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { downloadFileToCacheDir, scanCacheDir } from '@huggingface/hub';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

const WEIGHTS = Buffer.alloc(200_000, 3);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('interop with @huggingface/hub', () => {
  let hub: TestHub;
  let c1: string;
  let c2: string;
  before(async () => {
    hub = await startTestHub();
    const repo = hub.hf.createRepo('org/interop');
    c1 = repo.commit({ 'config.json': '{"a":1}', 'model.safetensors': WEIGHTS, 'sub/vocab.txt': 'a\nb\n' });
    repo.tag('v1', c1);
    c2 = repo.commit({ 'config.json': '{"a":2}' });
  });
  after(async () => hub.close());

  test('scanCacheDir reads a cache written by hubcache: repos, revisions, refs, sizes', async () => {
    const cache = await tempDir();
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint };
    assert.equal((await runCli(['download', 'org/interop', '--revision', 'v1'], env)).code, 0);
    assert.equal((await runCli(['download', 'org/interop'], env)).code, 0);
    const info = await scanCacheDir(cache);
    assert.deepEqual(info.warnings, []);
    assert.equal(info.repos.length, 1);
    const repo = info.repos[0]!;
    assert.deepEqual(repo.id, { name: 'org/interop', type: 'model' });
    const revs = new Map(repo.revisions.map((r) => [r.commitOid, r]));
    assert.deepEqual([...revs.keys()].sort(), [c1, c2].sort());
    assert.deepEqual(revs.get(c1)!.refs, ['v1']);
    assert.deepEqual(revs.get(c2)!.refs, ['main']);
    // Shared blobs counted once. hfjs's scanSnapshotDir does not descend into sub-folders (a known
    // gap of the JS client, unlike Python's scan), so sub/vocab.txt is not in its figures.
    assert.equal(repo.size, WEIGHTS.length + 7 + 7);
    assert.deepEqual(
      revs
        .get(c2)!
        .files.map((f) => path.basename(f.path))
        .sort(),
      ['config.json', 'model.safetensors'],
    );
  });

  test('blobs downloaded by downloadFileToCacheDir are reused without fetching bodies', async () => {
    const cache = await tempDir();
    // at a commit hash, hfjs uses that commit as the snapshot folder (like Python)
    const p = await downloadFileToCacheDir({
      repo: 'org/interop',
      path: 'model.safetensors',
      revision: c1,
      cacheDir: cache,
      hubUrl: hub.hfEndpoint,
    });
    assert.deepEqual(await fs.readFile(p), WEIGHTS);
    hub.resetRequests();
    const r = await runCli(['download', 'org/interop'], { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint });
    assert.equal(r.code, 0, r.stderr);
    const weightsBodies = hub.requests.filter((q) => q.method === 'GET' && q.path.includes(sha256(WEIGHTS)));
    assert.equal(weightsBodies.length, 0, 'the 200 kB blob was not fetched again');
    const link = path.join(cache, 'models--org--interop', 'snapshots', c2, 'model.safetensors');
    assert.equal(await fs.readlink(link), `../../blobs/${sha256(WEIGHTS)}`);
    assert.deepEqual(await fs.readFile(link), WEIGHTS);
  });
});
