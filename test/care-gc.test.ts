// `hubcache gc`: least recently used revisions go first until the cache fits; pinned and locked
// ones stay; the saved policy runs after each download; and a download running in another
// process keeps every blob it uses while gc runs.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { planGc } from '../src/care/gc.js';
import { scan } from '../src/care/scan.js';
import { Cache } from '../src/cache.js';
import { acquireLock } from '../src/locks/flock.js';
import { age, blobOf, buildHfRepo, buildMsLegacyRepo, commitOf } from './fixtures/care-cache.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { runCli, spawnCli, tempDir } from './helpers.js';

const DAY = 86_400_000;
const exists = (p: string): Promise<boolean> =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

/** Three repos of 1000 bytes each, last used 30, 20 and 10 days ago. */
async function threeAges(root: string): Promise<void> {
  const days: Array<[string, number]> = [
    ['org/old', 30],
    ['org/mid', 20],
    ['org/new', 10],
  ];
  for (const [id, d] of days) {
    const dir = await buildHfRepo(root, id, [
      { commit: commitOf(id), files: { 'w.bin': Buffer.alloc(1000, d) }, refs: ['main'] },
    ]);
    for (const b of await fs.readdir(path.join(dir, 'blobs'))) await age(path.join(dir, 'blobs', b), d * DAY);
  }
}

const ids = async (root: string): Promise<string[]> =>
  (await scan({ hf: root, modelscope: root })).repos.map((r) => r.id).sort();

describe('care: gc', () => {
  test('removes least recently used first, just enough to fit', async () => {
    const root = await tempDir();
    await threeAges(root);
    const r = await runCli(['gc', '--max-size', '2000', '--cache-dir', root, '-y']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await ids(root), ['org/mid', 'org/new']);
    const again = await runCli(['gc', '--max-size', '1.5k', '--cache-dir', root, '--dry-run']);
    assert.match(
      again.stdout,
      /Would shrink the cache to 1\.5k:\n {2}org\/mid {2}\(whole repo, 1\.0 kB\)\nWould free 1\.0 kB\./,
    );
    const fits = await runCli(['gc', '--max-size', '1T', '--cache-dir', root, '-y']);
    assert.match(fits.stdout, /Nothing to remove/);
  });

  test('revisions of one repo: the old one goes, blobs shared with the kept one stay', async () => {
    const root = await tempDir();
    const shared = Buffer.alloc(3000, 9);
    const dir = await buildHfRepo(root, 'org/model', [
      { commit: commitOf('1'), files: { 'w.bin': shared, 'old.txt': Buffer.alloc(800, 1) }, refs: ['v1'] },
      { commit: commitOf('2'), files: { 'w.bin': shared, 'new.txt': Buffer.alloc(800, 2) }, refs: ['main'] },
    ]);
    const oldBlob = await blobOf(path.join(dir, 'snapshots', commitOf('1'), 'old.txt'));
    const newBlob = await blobOf(path.join(dir, 'snapshots', commitOf('2'), 'new.txt'));
    await age(oldBlob, 9 * DAY);
    for (const b of [await blobOf(path.join(dir, 'snapshots', commitOf('1'), 'w.bin')), newBlob]) await age(b, 9 * DAY);
    await fs.utimes(newBlob, new Date(), new Date(Date.now() - 9 * DAY)); // read today
    const plan = await planGc(await scan({ hf: root, modelscope: root }), { maxSizeBytes: 4000 });
    assert.deepEqual(
      plan.revisions.map((r) => r.refs),
      [['v1']],
    );
    assert.equal(plan.freedBytes, 800);
  });

  test('--keep pins repos and revisions; a revision with a held lock is skipped', async () => {
    const root = await tempDir();
    await threeAges(root);
    const r = await runCli([
      'gc',
      '--max-size',
      '0',
      '--keep',
      'org/old',
      '--keep',
      'org/mid@main',
      '--cache-dir',
      root,
      '-y',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await ids(root), ['org/mid', 'org/old']);
    const newRoot = await tempDir();
    await threeAges(newRoot);
    const oldBlob = (await fs.readdir(path.join(newRoot, 'models--org--old', 'blobs')))[0]!;
    const lock = await acquireLock(path.join(newRoot, '.locks', 'models--org--old', `${oldBlob}.lock`));
    try {
      const g = await runCli(['gc', '--max-size', '2000', '--cache-dir', newRoot, '-y']);
      assert.equal(g.code, 0, g.stderr);
      assert.match(g.stderr, /org\/old: a download of this repo is running/);
      assert.deepEqual(await ids(newRoot), ['org/new', 'org/old']);
    } finally {
      await lock.release();
    }
  });

  test('never outside the root: links out are unlinked, what they point to stays', async () => {
    const root = await tempDir();
    const outside = await tempDir('hubcache-outside-');
    await fs.writeFile(path.join(outside, 'big.bin'), Buffer.alloc(5000, 1));
    await fs.writeFile(path.join(outside, 'blob'), 'blob kept elsewhere');
    const dir = await buildHfRepo(root, 'org/linked', [
      { commit: commitOf('1'), files: { 'a.txt': 'a' }, refs: ['v1'] },
      { commit: commitOf('2'), files: { 'b.txt': 'b' }, refs: ['main'] },
    ]);
    await fs.symlink(path.join(outside, 'big.bin'), path.join(dir, 'snapshots', commitOf('1'), 'big.bin'));
    // A blob moved to another disk and linked back (people do this to save space).
    const blobA = await blobOf(path.join(dir, 'snapshots', commitOf('1'), 'a.txt'));
    await fs.rm(blobA);
    await fs.symlink(path.join(outside, 'blob'), blobA);
    for (const b of await fs.readdir(path.join(dir, 'blobs'))) await age(path.join(dir, 'blobs', b), 30 * DAY);
    await age(path.join(outside, 'big.bin'), 30 * DAY);
    await age(path.join(outside, 'blob'), 30 * DAY);
    // Inside the cache: 1 byte (b.txt) + the a.txt blob link, whose bytes are outside: 1 byte in all.
    const fits = await runCli(['gc', '--max-size', '1', '--cache-dir', root, '-y']);
    assert.match(fits.stdout, /Nothing to remove/, 'links out do not count as cache bytes');
    const r = await runCli(['gc', '--max-size', '0', '--keep', 'org/linked@main', '--cache-dir', root, '-y', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exists(path.join(dir, 'snapshots', commitOf('1'))), false);
    assert.equal(await exists(blobA), false, 'the blob link went');
    assert.equal(await fs.readFile(path.join(outside, 'blob'), 'utf8'), 'blob kept elsewhere');
    assert.equal((await fs.stat(path.join(outside, 'big.bin'))).size, 5000);
    assert.equal(await fs.readFile(path.join(dir, 'snapshots', commitOf('2'), 'b.txt'), 'utf8'), 'b');
  });

  test('ModelScope repos take part too; sizes and units like 1.5k, 2KiB', async () => {
    const root = await tempDir();
    await threeAges(root);
    const ms = await buildMsLegacyRepo(root, 'qwen/Q1.5', { 'w.bin': Buffer.alloc(1000, 4) });
    await age(path.join(ms, 'w.bin'), 40 * DAY);
    await age(ms, 40 * DAY);
    const r = await runCli(['gc', '--max-size', '2KiB', '--cache-dir', root, '-y']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await ids(root), ['org/mid', 'org/new']);
    assert.equal(await exists(ms), false);
    const bad = await runCli(['gc', '--max-size', 'lots', '--cache-dir', root, '-y']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Not a size/);
    const none = await runCli(['gc', '--cache-dir', root, '-y']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--max-size/);
  });
});

describe('care: gc with downloads', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub();
    for (const [i, id] of ['org/a', 'org/b', 'org/c'].entries())
      hub.hf.createRepo(id).commit({ 'config.json': `{"i":${i}}`, 'w.safetensors': { size: 40_000, seed: i + 1 } });
    const big = hub.hf.createRepo('org/big');
    big.commit({ 'config.json': '{"v":1}', 'shared.safetensors': { size: 30_000, seed: 7 } });
    big.tag('v1');
    big.commit({ 'config.json': '{"v":2}', 'large.safetensors': { size: 600_000, seed: 8 } });
  });
  after(async () => hub.close());

  test('a saved policy runs after each download and keeps what was just downloaded', async () => {
    const root = await tempDir();
    const env = { HF_HUB_CACHE: root, HF_ENDPOINT: hub.hfEndpoint };
    assert.equal((await runCli(['download', 'org/a'], env)).code, 0);
    const old = path.join(root, 'models--org--a', 'blobs');
    for (const b of await fs.readdir(old)) await age(path.join(old, b), 5 * DAY);
    const saved = await runCli(['gc', '--max-size', '50k', '--keep', 'org/c', '--save-policy', '-y'], env);
    assert.equal(saved.code, 0, saved.stderr);
    assert.deepEqual(JSON.parse(await fs.readFile(path.join(root, '.locks', 'hubcache', 'policy.json'), 'utf8')), {
      maxSize: '50k',
      keep: ['org/c'],
    });
    assert.deepEqual(await ids(root), ['org/a'], 'under the limit: nothing removed yet');
    // org/b pushes the cache over 50k: the least recently used (org/a) goes, org/b stays.
    const b = await runCli(['download', 'org/b'], env);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /Cache policy: removed 1 old revision/);
    assert.deepEqual(await ids(root), ['org/b']);
    // Pinned org/c and fresh org/b: c is pinned, b is least recently used → b goes.
    const c = await runCli(['download', 'org/c'], env);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(await ids(root), ['org/c']);
    // The library applies it too.
    const cache = Cache.at(root, { hfEndpoint: hub.hfEndpoint });
    assert.deepEqual(await cache.readCachePolicy(), { maxSize: '50k', keep: ['org/c'] });
    await cache.download({ repo: 'org/a' });
    assert.deepEqual(
      await ids(root),
      ['org/a', 'org/c'],
      'over the limit, but one is pinned and the other was just downloaded',
    );
  });

  test('gc while another process downloads: the busy repo keeps every blob, the download completes', async () => {
    const root = await tempDir();
    const env = { HF_HUB_CACHE: root, HF_ENDPOINT: hub.hfEndpoint };
    assert.equal((await runCli(['download', 'org/big', '--revision', 'v1'], env)).code, 0);
    assert.equal((await runCli(['download', 'org/a'], env)).code, 0);
    for (const repo of ['models--org--big', 'models--org--a'])
      for (const b of await fs.readdir(path.join(root, repo, 'blobs')))
        await age(path.join(root, repo, 'blobs', b), 3 * DAY);
    hub.throttleBytesPerSec = 300_000;
    const child = spawnCli(['download', 'org/big'], env);
    try {
      // Wait until the child is fetching the large file (its partial exists, its lock is held).
      const blobs = path.join(root, 'models--org--big', 'blobs');
      for (let i = 0; i < 200 && !(await fs.readdir(blobs)).some((b) => b.endsWith('.incomplete')); i++)
        await sleep(25);
      assert.ok(
        (await fs.readdir(blobs)).some((b) => b.endsWith('.incomplete')),
        'download under way',
      );
      const g = await runCli(['gc', '--max-size', '0', '-y'], env);
      assert.equal(g.code, 0, g.stderr);
      assert.match(g.stderr, /org\/big: a download of this repo is running/);
      assert.equal(await exists(path.join(root, 'models--org--a')), false, 'an idle repo is collected');
      assert.ok(await exists(path.join(root, 'models--org--big', 'snapshots')), 'the busy repo is untouched');
    } finally {
      hub.throttleBytesPerSec = undefined;
    }
    const done = await child.done;
    assert.equal(done.code, 0, done.stderr);
    const snap = done.stdout.trim();
    assert.equal((await fs.stat(path.join(snap, 'large.safetensors'))).size, 600_000);
    assert.equal((await fs.stat(path.join(snap, 'shared.safetensors'))).size, 30_000);
    const v = await runCli(['verify', 'org/big'], env);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});
