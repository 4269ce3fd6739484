// One model on both hubs, one persistent folder (HF_HOME and MODELSCOPE_CACHE on the same path):
// a file whose sha256 the other hub's layout already holds is hard-linked from it, not fetched
// again, in both directions; the result verifies, and a copy whose bytes do not match is not used.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blobOf } from './fixtures/care-cache.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

describe('reuse across hubs in one cache folder', () => {
  let hub: TestHub;
  const WEIGHTS = { size: 300_000, seed: 11 };

  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/w').commit({ 'config.json': '{"hf":1}', 'model.safetensors': WEIGHTS });
    hub.ms.createRepo('org/w-ms').commit({ 'configuration.json': '{"modelscope":1}', 'model.safetensors': WEIGHTS });
  });
  after(async () => hub.close());

  const envFor = (home: string): Record<string, string> => ({
    HF_HOME: home,
    MODELSCOPE_CACHE: home,
    HF_ENDPOINT: hub.hfEndpoint,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
  });
  /** Responses that carried the weights' body (redirects carry none). */
  const weightBodies = (): number =>
    hub.countRequests(
      (r) => r.method === 'GET' && (r.status === 200 || r.status === 206) && r.path.includes('model.safetensors'),
    );
  const ino = async (p: string): Promise<number> => (await fs.stat(p)).ino;

  test('ModelScope after HF: the weights are linked from the HF blob, zero body requests', async () => {
    const env = envFor(await tempDir());
    const hf = await runCli(['download', 'org/w'], env);
    assert.equal(hf.code, 0, hf.stderr);
    const blob = await blobOf(path.join(hf.stdout.trim(), 'model.safetensors'));

    const dry = await runCli(['download', 'modelscope:org/w-ms', '--dry-run'], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /linked .*model\.safetensors\s+\(linked from HF cache\)/);
    assert.match(dry.stdout, /download .*configuration\.json/);

    const before = weightBodies();
    const ms = await runCli(['download', 'modelscope:org/w-ms'], env);
    assert.equal(ms.code, 0, ms.stderr);
    assert.equal(weightBodies() - before, 0, 'nothing fetched for the weights');
    assert.match(ms.stderr, /model\.safetensors: linked from HF cache/);
    const msFile = path.join(ms.stdout.trim(), 'model.safetensors');
    assert.equal(await ino(msFile), await ino(blob), 'one inode');
    const v = await runCli(['verify'], env);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // modelscope's own cache check sees it: a second download finds everything cached.
    const again = await runCli(['download', 'modelscope:org/w-ms', '--dry-run'], env);
    assert.match(again.stdout, /cached .*model\.safetensors$/m);
  });

  test('HF after ModelScope: the LFS blob is linked from the ModelScope file, zero body requests', async () => {
    const env = envFor(await tempDir());
    const ms = await runCli(['download', 'modelscope:org/w-ms'], env);
    assert.equal(ms.code, 0, ms.stderr);
    const msFile = path.join(ms.stdout.trim(), 'model.safetensors');

    const before = weightBodies();
    const hf = await runCli(['download', 'org/w'], env);
    assert.equal(hf.code, 0, hf.stderr);
    assert.equal(weightBodies() - before, 0, 'nothing fetched for the weights');
    assert.match(hf.stderr, /model\.safetensors: linked from ModelScope cache/);
    const blob = await blobOf(path.join(hf.stdout.trim(), 'model.safetensors'));
    assert.equal(await ino(blob), await ino(msFile), 'one inode');
    assert.equal((await runCli(['verify'], env)).code, 0);
  });

  test('a ModelScope file of the same size but other bytes is not linked: the blob is fetched', async () => {
    const env = envFor(await tempDir());
    const ms = await runCli(['download', 'modelscope:org/w-ms'], env);
    assert.equal(ms.code, 0, ms.stderr);
    const msFile = path.join(ms.stdout.trim(), 'model.safetensors');
    const fh = await fs.open(msFile, 'r+');
    await fh.write(Buffer.from('rot'), 0, 3, 500);
    await fh.close();

    const before = weightBodies();
    const hf = await runCli(['download', 'org/w'], env);
    assert.equal(hf.code, 0, hf.stderr);
    assert.equal(weightBodies() - before, 1, 'fetched once, as usual');
    const blob = await blobOf(path.join(hf.stdout.trim(), 'model.safetensors'));
    assert.notEqual(await ino(blob), await ino(msFile));
    assert.equal((await runCli(['verify', 'org/w'], env)).code, 0);
  });
});
