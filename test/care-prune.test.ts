// `hubcache prune`: detached revisions, old partial downloads nobody writes (lock, mtime and the
// engine's heartbeat), broken links, orphan blobs, temp leftovers and empty folders — and what it
// must leave alone.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { planPrune } from '../src/care/prune.js';
import { scan } from '../src/care/scan.js';
import { acquireLock } from '../src/locks/flock.js';
import { writeSlot, TRAILER_SIZE, type PartialState } from '../src/transfer/partial-state.js';
import { age, blobOf, buildHfRepo, buildMsLegacyRepo, commitOf } from './fixtures/care-cache.js';
import { listTree, runCli, tempDir } from './helpers.js';

const HOUR = 3_600_000;
const C1 = commitOf('one');
const C2 = commitOf('two');
const C3 = commitOf('three');
const exists = (p: string): Promise<boolean> =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

async function sample(root: string): Promise<string> {
  return buildHfRepo(root, 'org/model', [
    { commit: C1, files: { 'config.json': '{"v":1}', 'w.bin': Buffer.alloc(1000, 1) }, refs: ['main'] },
    {
      commit: C2,
      files: { 'config.json': '{"v":2}', 'w.bin': Buffer.alloc(1000, 1), 'extra.bin': Buffer.alloc(200, 2) },
    },
  ]);
}

/** A partial written by a hubcache engine: data then a resume trailer with a heartbeat. */
async function enginePartial(p: string, state: Partial<PartialState>): Promise<void> {
  const size = 64;
  const full: PartialState = {
    v: 1,
    writerId: 'hc0123456789ab',
    pid: process.pid,
    host: (await import('node:os')).hostname(),
    heartbeat: Date.now(),
    seq: 1,
    size,
    chunkSize: 16,
    done: '',
    partial: [],
    createdAt: Date.now(),
    ...state,
  };
  const fh = await fs.open(p, 'w+');
  try {
    await fh.truncate(size + TRAILER_SIZE);
    await writeSlot(fh, full, 0);
  } finally {
    await fh.close();
  }
}

describe('care: prune', () => {
  test('detached revisions, stale partials, broken links, orphans, temp files and empty folders go; the rest stays', async () => {
    const root = await tempDir();
    const repo = await sample(root);
    const blobs = path.join(repo, 'blobs');
    const stale = path.join(blobs, `${'a'.repeat(64)}.1a2b3c4d.incomplete`);
    const fresh = path.join(blobs, `${'b'.repeat(64)}.5e6f7a8b.incomplete`);
    const orphan = path.join(blobs, 'c'.repeat(64));
    await fs.writeFile(stale, 'old partial');
    await fs.writeFile(fresh, 'new partial');
    await fs.writeFile(orphan, 'nobody links me');
    await age(stale, 3 * HOUR);
    await age(orphan, 3 * HOUR);
    // main's config loses its blob (a broken link), an empty sub-folder, a stale ref temp file
    await buildHfRepo(root, 'org/model', [{ commit: C3, files: { 'x/y.txt': 'y' }, refs: ['keep'] }]);
    await fs.unlink(await blobOf(path.join(repo, 'snapshots', C3, 'x', 'y.txt')));
    await fs.mkdir(path.join(repo, 'snapshots', C1, 'empty', 'deeper'), { recursive: true });
    const refTmp = path.join(repo, 'refs', 'main.0badc0de.tmp');
    await fs.writeFile(refTmp, C1);
    await age(refTmp, 3 * HOUR);
    // ModelScope: an old file in the SDK's staging folder
    await buildMsLegacyRepo(root, 'qwen/Q', { 'a.json': '{}' });
    const staged = path.join(root, 'models', '._____temp', 'qwen', 'Q', 'big.bin');
    await fs.mkdir(path.dirname(staged), { recursive: true });
    await fs.writeFile(staged, 'half');
    await age(staged, 3 * HOUR);

    const dry = await runCli(['prune', '--cache-dir', root, '--incomplete-older-than', '1h', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`org/model@${C2.slice(0, 12)} \\(detached\\)  207 B`));
    assert.match(dry.stdout, /2 partial downloads {2}15 B/);
    assert.match(dry.stdout, /1 orphan blob {2}15 B/);
    assert.match(dry.stdout, /1 broken link/);
    assert.match(dry.stdout, /1 leftover temp file/);

    const r = await runCli(['prune', '--cache-dir', root, '--incomplete-older-than', '1h', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exists(path.join(repo, 'snapshots', C2)), false, 'detached revision');
    assert.equal(
      await exists(
        path.join(blobs, (await fs.readdir(blobs)).find((b) => b.length === 64 && b !== 'c'.repeat(64)) ?? 'x'),
      ),
      true,
    );
    assert.equal(await exists(stale), false);
    assert.equal(await exists(fresh), true, 'a partial younger than the limit stays');
    assert.equal(await exists(orphan), false);
    assert.equal(await exists(path.join(repo, 'snapshots', C3, 'x', 'y.txt')), false, 'broken link');
    assert.equal(await exists(path.join(repo, 'snapshots', C3)), true, 'a revision with a ref stays, even emptied');
    assert.equal(await exists(path.join(repo, 'snapshots', C1, 'empty')), false, 'empty folders');
    assert.equal(await exists(refTmp), false);
    assert.equal(await exists(staged), false);
    assert.equal(await exists(path.join(root, 'models', '._____temp')), false);
    assert.equal(
      await fs.readFile(path.join(repo, 'snapshots', C1, 'w.bin'), 'utf8'),
      Buffer.alloc(1000, 1).toString(),
      'main intact',
    );
    assert.equal(await fs.readFile(path.join(repo, 'refs', 'main'), 'utf8'), C1);
    const after = await scan({ hf: root, modelscope: root });
    assert.deepEqual(
      after.warnings.map((w) => w.kind),
      ['incomplete'],
      'only the fresh partial is left',
    );
  });

  test('a partial is kept while its blob lock is held, or while its engine writer is alive', async () => {
    const root = await tempDir();
    const repo = await sample(root);
    const etagLocked = 'd'.repeat(64);
    const etagLive = 'e'.repeat(64);
    const etagDead = 'f'.repeat(64);
    const locked = path.join(repo, 'blobs', `${etagLocked}.1a2b3c4d.incomplete`);
    const live = path.join(repo, 'blobs', `${etagLive}.hc0123456789ab.incomplete`);
    const dead = path.join(repo, 'blobs', `${etagDead}.hc0123456789ab.incomplete`);
    await fs.writeFile(locked, 'locked partial');
    // A live writer: this very process, registered as an active writer with a heartbeat.
    const { activeWriters } = await import('../src/transfer/ownership.js');
    activeWriters.add('hc0123456789ab');
    await enginePartial(live, { writerId: 'hc0123456789ab' });
    await enginePartial(dead, { writerId: 'hc0123456789ab', pid: 2 ** 22 + 7, heartbeat: Date.now() - 5 * HOUR });
    for (const p of [locked, live, dead]) await age(p, 5 * HOUR);
    const lock = await acquireLock(path.join(root, '.locks', 'models--org--model', `${etagLocked}.lock`));
    try {
      const plan = await planPrune(await scan({ hf: root, modelscope: root }), { incompleteOlderThanMs: HOUR });
      const planned = plan.files.map((f) => path.basename(f.path));
      assert.deepEqual(planned, [path.basename(dead)]);
      assert.deepEqual(
        plan.skipped.map((s) => path.basename(s.what)).sort(),
        [path.basename(locked), path.basename(live)].sort(),
      );
      // Even when planned, the executor takes the lock first: a lock taken meanwhile still wins.
      const r = await runCli(['prune', '--cache-dir', root, '--incomplete-older-than', '1h', '-y']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([await exists(locked), await exists(live), await exists(dead)], [true, true, false]);
    } finally {
      activeWriters.delete('hc0123456789ab');
      await lock.release();
    }
  });

  test('an orphan blob whose lock is held is left alone', async () => {
    const root = await tempDir();
    const repo = await sample(root);
    const orphan = path.join(repo, 'blobs', '9'.repeat(64));
    await fs.writeFile(orphan, 'being linked right now');
    await age(orphan, HOUR);
    const lock = await acquireLock(path.join(root, '.locks', 'models--org--model', `${'9'.repeat(64)}.lock`));
    try {
      const r = await runCli(['prune', '--cache-dir', root, '-y']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await exists(orphan), true);
      assert.match(r.stderr, /in use/);
    } finally {
      await lock.release();
    }
  });

  test('nothing to prune; no terminal without --yes is refused; nothing outside the root', async () => {
    const root = await tempDir();
    const outside = await tempDir('hubcache-outside-');
    await fs.writeFile(path.join(outside, 'keep.incomplete'), 'not ours');
    await age(path.join(outside, 'keep.incomplete'), 48 * HOUR);
    await buildHfRepo(root, 'org/clean', [{ commit: C1, files: { 'a.txt': 'a' }, refs: ['main'] }]);
    const none = await runCli(['prune', '--cache-dir', root]);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /Nothing to remove/);
    // A partial that is a link to a file outside: the link goes, the file stays.
    await fs.symlink(
      path.join(outside, 'keep.incomplete'),
      path.join(root, 'models--org--clean', 'blobs', `${'a'.repeat(64)}.1a2b3c4d.incomplete`),
    );
    await fs.writeFile(path.join(root, 'models--org--clean', 'blobs', `${'b'.repeat(64)}.1a2b3c4d.incomplete`), 'x');
    for (const b of await fs.readdir(path.join(root, 'models--org--clean', 'blobs')))
      await age(path.join(root, 'models--org--clean', 'blobs', b), 48 * HOUR);
    const before = await listTree(root);
    const refused = await runCli(['prune', '--cache-dir', root]);
    assert.equal(refused.code, 2);
    assert.deepEqual(await listTree(root), before);
    const r = await runCli(['prune', '--cache-dir', root, '-y']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      (await fs.readdir(path.join(root, 'models--org--clean', 'blobs'))).filter((b) => b.endsWith('.incomplete')),
      [],
    );
    assert.equal(await fs.readFile(path.join(outside, 'keep.incomplete'), 'utf8'), 'not ours');
  });
});
