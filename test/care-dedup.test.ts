// `hubcache dedup` across an HF cache and a ModelScope cache holding the same weights (and a second
// HF cache given with --also): identical files become one inode, the bytes freed are reported,
// a dry run changes nothing, a locked blob is left alone, and the caches still verify.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DedupReport } from '../src/care/dedup.js';
import type { VerifyReport } from '../src/care/verify.js';
import { Cache } from '../src/cache.js';
import { acquireLock } from '../src/locks/flock.js';
import { blobOf } from './fixtures/care-cache.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

describe('care: dedup', () => {
  let hub: TestHub;
  const WEIGHTS = { size: 300_000, seed: 7 };

  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/w').commit({ 'config.json': '{"hf":1}', 'model.safetensors': WEIGHTS });
    hub.ms.createRepo('org/w-ms').commit({ 'configuration.json': '{"modelscope":1}', 'model.safetensors': WEIGHTS });
  });
  after(async () => hub.close());

  /** Separate HF and ModelScope caches (same file system), both holding the weights. */
  async function twoCaches(): Promise<{ env: Record<string, string>; hfFile: string; msFile: string }> {
    const hfRoot = await tempDir();
    const msRoot = await tempDir();
    const env = {
      HF_HUB_CACHE: hfRoot,
      MODELSCOPE_CACHE: msRoot,
      HF_ENDPOINT: hub.hfEndpoint,
      MODELSCOPE_ENDPOINT: hub.msEndpoint,
    };
    const hf = await runCli(['download', 'org/w'], env);
    assert.equal(hf.code, 0, hf.stderr);
    const ms = await runCli(['download', 'modelscope:org/w-ms'], env);
    assert.equal(ms.code, 0, ms.stderr);
    return {
      env,
      hfFile: await blobOf(path.join(hf.stdout.trim(), 'model.safetensors')),
      msFile: path.join(ms.stdout.trim(), 'model.safetensors'),
    };
  }
  const ino = async (p: string): Promise<number> => (await fs.stat(p)).ino;
  const json = (stdout: string): DedupReport => JSON.parse(stdout) as DedupReport;

  test('HF cache + ModelScope cache: the weights become one inode, 300 kB freed', async () => {
    const { env, hfFile, msFile } = await twoCaches();
    assert.notEqual(await ino(hfFile), await ino(msFile));
    const dry = await runCli(['dedup', '--dry-run', '--json'], env);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = json(dry.stdout);
    assert.equal(plan.dryRun, true);
    assert.equal(plan.savedBytes, WEIGHTS.size);
    assert.equal(plan.linkedFiles, 1);
    assert.equal(plan.hashedFiles, 1, 'only the ModelScope file is hashed; the HF blob is named by its sha256');
    assert.notEqual(await ino(hfFile), await ino(msFile), 'a dry run changes nothing');

    const r = await runCli(['dedup'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Linked 1 file\(s\) in 1 group\(s\), freed 300\.0 kB\.$/m);
    assert.equal(await ino(hfFile), await ino(msFile));
    assert.equal((await fs.stat(hfFile)).nlink, 2);
    // Both caches are still what their hubs serve.
    const v = await runCli(['verify', '--json'], env);
    assert.equal(v.code, 0, v.stderr);
    const again = json((await runCli(['dedup', '--json'], env)).stdout);
    assert.equal(again.savedBytes, 0);
    assert.equal(again.linkedFiles, 0);
  });

  test('--also: a second HF cache holding the same repo; files below --min-size are left alone', async () => {
    const { env, hfFile } = await twoCaches();
    const other = await tempDir();
    const o = await runCli(['download', 'org/w'], { ...env, HF_HUB_CACHE: other });
    assert.equal(o.code, 0, o.stderr);
    const otherBlob = await blobOf(path.join(o.stdout.trim(), 'model.safetensors'));
    const otherConfig = await blobOf(path.join(o.stdout.trim(), 'config.json'));
    const r = await runCli(['dedup', '--also', other, '--min-size', '1k', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const rep = json(r.stdout);
    assert.equal(rep.linkedFiles, 2, 'the HF blob of the other cache and the ModelScope file');
    assert.equal(rep.savedBytes, 2 * WEIGHTS.size);
    assert.equal(await ino(otherBlob), await ino(hfFile));
    assert.equal((await fs.stat(otherConfig)).nlink, 1, 'config.json (8 bytes) is under --min-size');
  });

  test('a blob whose lock is held (a download in progress) is skipped', async () => {
    const { env, hfFile, msFile } = await twoCaches();
    const cache = Cache.fromEnv(env);
    // The ModelScope copy is hashed, so it is the one kept; the HF blob would be replaced: lock it.
    const lock = await acquireLock(
      path.join(env.HF_HUB_CACHE as string, '.locks', 'models--org--w', `${path.basename(hfFile)}.lock`),
    );
    try {
      const rep = await cache.dedup();
      assert.equal(rep.linkedFiles, 0);
      assert.deepEqual(
        rep.skipped.map((s) => [s.path, s.reason]),
        [[hfFile, 'a download is using this blob (its lock is held)']],
      );
      assert.notEqual(await ino(hfFile), await ino(msFile));
    } finally {
      await lock.release();
    }
    const rep = await cache.dedup();
    assert.equal(rep.linkedFiles, 1);
  });

  test('a corrupt HF blob is never kept: a verified copy replaces it', async () => {
    const { env, hfFile } = await twoCaches();
    const other = await tempDir();
    const o = await runCli(['download', 'org/w'], { ...env, HF_HUB_CACHE: other });
    assert.equal(o.code, 0, o.stderr);
    const otherBlob = await blobOf(path.join(o.stdout.trim(), 'model.safetensors'));
    const good = await fs.readFile(hfFile);
    // Same size, wrong bytes, right name: only hashing can tell. The main cache's copy would be kept first.
    const bad = Buffer.from(good);
    bad[10] = (bad[10] as number) ^ 0xff;
    await fs.writeFile(hfFile, bad);
    // HF caches only (Cache.at does not see the ModelScope cache): the first candidate to keep is the corrupt one.
    const cache = Cache.at(env.HF_HUB_CACHE as string);
    const rep = await cache.dedup({ also: [other], hashMode: 'inline' });
    assert.deepEqual(rep.repaired, [hfFile]);
    assert.equal(await ino(hfFile), await ino(otherBlob));
    assert.deepEqual(await fs.readFile(hfFile), good);
  });
  test('after dedup: verify hashes the shared inode once; --fix fetches it once, links both names', async () => {
    const { env, hfFile, msFile } = await twoCaches();
    assert.equal((await runCli(['dedup'], env)).code, 0);
    // ls: the shared weights count once in the total (two configs + one copy of the weights).
    const ls = await runCli(['ls', '--json'], env);
    assert.equal(ls.code, 0, ls.stderr);
    const configs = '{"hf":1}'.length + '{"modelscope":1}'.length;
    assert.equal((JSON.parse(ls.stdout) as { size: number }).size, WEIGHTS.size + configs);
    assert.match((await runCli(['ls'], env)).stdout, /2 repo\(s\), 2 revision\(s\), 300\.0 kB on disk\./);

    // Bit rot in the one inode both names share.
    const fh = await fs.open(hfFile, 'r+');
    await fh.write(Buffer.from('rot'), 0, 3, 1000);
    await fh.close();
    const v = await runCli(['verify', '--json'], env);
    assert.equal(v.code, 1);
    const rep = JSON.parse(v.stdout) as VerifyReport;
    assert.equal(rep.problems.length, 2, 'both names are reported');
    assert.equal(rep.blobs, 3, 'two configs and the shared weights: hashed once');

    // Responses that carry a file body (a redirect to the CDN carries none).
    const bodies = (): number =>
      hub.countRequests(
        (r) =>
          r.method === 'GET' &&
          (r.status === 200 || r.status === 206) &&
          (r.host === 'cdn' || /\/resolve\/|\/repo\?/.test(r.path)),
      );
    const before = bodies();
    const fixed = await runCli(['verify', '--fix', '--json'], env);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.equal((JSON.parse(fixed.stdout) as VerifyReport).fixed.length, 2);
    assert.equal(bodies() - before, 1, 'the shared content is fetched once');
    assert.equal(await ino(hfFile), await ino(msFile), 'the dedup link is kept');
    assert.equal((await fs.stat(msFile)).nlink, 2);
    assert.equal((await runCli(['verify'], env)).code, 0, 'both are valid again');
  });
});
