// `hubcache rm` and the delete strategy: revisions with shared blobs, whole repos, both ModelScope
// layouts, dry runs, confirmation, blob locks, a link made between plan and delete, and — above
// all — never a byte outside the cache root.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { executePlan } from '../src/care/delete.js';
import { planRemove } from '../src/care/remove.js';
import { scan } from '../src/care/scan.js';
import { Cache } from '../src/cache.js';
import { acquireLock } from '../src/locks/flock.js';
import { ExitCode } from '../src/errors.js';
import {
  age,
  blobOf,
  buildHfRepo,
  buildMsLegacyRepo,
  buildMsSnapshotRepo,
  commitOf,
  sha256,
} from './fixtures/care-cache.js';
import { listTree, runCli, tempDir } from './helpers.js';

const DAY = 86_400_000;
const C1 = commitOf('one');
const C2 = commitOf('two');
const SHARED = Buffer.alloc(3000, 5);

async function twoRevisions(root: string): Promise<string> {
  return buildHfRepo(root, 'org/model', [
    {
      commit: C1,
      files: { 'config.json': '{"v":1}', 'model.safetensors': SHARED, 'only1.bin': Buffer.alloc(500, 1) },
      refs: ['v1.0'],
    },
    { commit: C2, files: { 'config.json': '{"v":2}', 'model.safetensors': SHARED }, refs: ['main'] },
  ]);
}

const exists = (p: string): Promise<boolean> =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

describe('care: rm', () => {
  test('a revision: its snapshot, its refs and the blobs only it used go; shared blobs stay', async () => {
    const root = await tempDir();
    const repo = await twoRevisions(root);
    const only1 = await blobOf(path.join(repo, 'snapshots', C1, 'only1.bin'));
    const config1 = await blobOf(path.join(repo, 'snapshots', C1, 'config.json'));
    const r = await runCli(['rm', 'org/model@v1.0', '--cache-dir', root, '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed 4 item\(s\), freed 507 B\./);
    assert.equal(await exists(path.join(repo, 'snapshots', C1)), false);
    assert.equal(await exists(path.join(repo, 'refs', 'v1.0')), false);
    assert.equal(await exists(only1), false);
    assert.equal(await exists(config1), false);
    assert.deepEqual(
      await fs.readFile(path.join(repo, 'snapshots', C2, 'model.safetensors')),
      SHARED,
      'the shared blob still serves main',
    );
    assert.equal(await fs.readFile(path.join(repo, 'refs', 'main'), 'utf8'), C2);
    const after = await scan({ hf: root, modelscope: root });
    assert.deepEqual(after.warnings, []);
  });

  test('every revision (or the bare repo) removes the repo folder; a commit hash alone works too', async () => {
    const root = await tempDir();
    const repo = await twoRevisions(root);
    assert.equal((await runCli(['rm', C1, '--cache-dir', root, '-y'])).code, 0);
    assert.equal(await exists(path.join(repo, 'snapshots', C1)), false);
    const r = await runCli(['rm', 'org/model', '--cache-dir', root, '-y', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { repos: Array<{ repo: string }>; freedBytes: number };
    assert.deepEqual(
      j.repos.map((x) => x.repo),
      ['org/model'],
    );
    assert.equal(j.freedBytes, 3007);
    assert.equal(await exists(repo), false);
  });

  test('--dry-run prints what would be freed and changes nothing; no terminal and no --yes is refused', async () => {
    const root = await tempDir();
    await twoRevisions(root);
    const before = await listTree(root);
    const dry = await runCli(['rm', 'org/model@main', '--cache-dir', root, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /Would remove:\n {2}org\/model@[0-9a-f]{12} \[main\] {2}7 B\nWould free 7 B\./);
    const refused = await runCli(['rm', 'org/model', '--cache-dir', root]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /Refusing to remove without confirmation/);
    assert.match(refused.stderr, /--yes/);
    assert.deepEqual(await listTree(root), before);
    const unknown = await runCli(['rm', 'org/none', '--cache-dir', root, '-y']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Not in the cache: org\/none/);
  });

  test('--pattern and --older-than pick revisions by repo glob and last use', async () => {
    const root = await tempDir();
    await buildHfRepo(root, 'team/a', [{ commit: C1, files: { 'a.txt': 'a' }, refs: ['main'] }]);
    await buildHfRepo(root, 'team/b', [{ commit: C1, files: { 'b.txt': 'b' }, refs: ['main'] }]);
    await buildHfRepo(root, 'other/c', [{ commit: C1, files: { 'c.txt': 'c' }, refs: ['main'] }]);
    for (const id of ['team--a', 'other--c'])
      for (const b of await fs.readdir(path.join(root, `models--${id}`, 'blobs')))
        await age(path.join(root, `models--${id}`, 'blobs', b), 40 * DAY);
    const r = await runCli(['rm', '--pattern', 'team/*', '--older-than', '30d', '--cache-dir', root, '-y']);
    assert.equal(r.code, 0, r.stderr);
    const left = (await scan({ hf: root, modelscope: root })).repos.map((x) => x.id).sort();
    assert.deepEqual(left, ['other/c', 'team/b']);
    assert.equal((await runCli(['rm', '--cache-dir', root, '-y'])).code, 2, 'nothing named: usage error');
  });

  test('ModelScope: a legacy repo with its dotted-name link and staging folder; a ≥1.38 revision', async () => {
    const root = await tempDir();
    const legacy = await buildMsLegacyRepo(root, 'qwen/Qwen2.5-0.5B', { 'config.json': '{}', 'w.bin': 'weights' });
    await fs.symlink(legacy, path.join(root, 'models', 'qwen', 'Qwen2.5-0.5B'));
    const staging = path.join(root, 'models', '._____temp', 'qwen', 'Qwen2.5-0.5B');
    await fs.mkdir(staging, { recursive: true });
    await fs.writeFile(path.join(staging, 'w.bin'), 'wei');
    await buildMsSnapshotRepo(root, 'qwen/Qwen3', 'master', { 'a.json': '{}' });
    await buildMsSnapshotRepo(root, 'qwen/Qwen3', 'v1', { 'a.json': '{"old":1}' });
    const r1 = await runCli(['rm', 'modelscope:qwen/Qwen2.5-0.5B', '--cache-dir', root, '-y']);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(await exists(path.join(root, 'models', 'qwen', 'Qwen2___5-0___5B')), false);
    assert.equal(
      await exists(path.join(root, 'models', 'qwen', 'Qwen2.5-0.5B')),
      false,
      'the dotted-name link goes with it',
    );
    assert.equal(await exists(staging), false);
    // Without a hub prefix the id still finds the ModelScope repo (no HF repo of that name).
    const r2 = await runCli(['rm', 'qwen/Qwen3@v1', '--cache-dir', root, '-y']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(await fs.readdir(path.join(root, 'models', 'qwen--Qwen3', 'snapshots')), ['master']);
  });

  test('never outside the root: links pointing out are unlinked, their targets untouched', async () => {
    const root = await tempDir();
    const outside = await tempDir('hubcache-outside-');
    await fs.writeFile(path.join(outside, 'precious.bin'), 'precious');
    await fs.mkdir(path.join(outside, 'dir'));
    await fs.writeFile(path.join(outside, 'dir', 'keep.txt'), 'keep');
    const repo = await twoRevisions(root);
    // A snapshot entry linking out, a blob that is a link out, and a whole snapshot dir linking out.
    await fs.symlink(path.join(outside, 'precious.bin'), path.join(repo, 'snapshots', C1, 'escape.bin'));
    await fs.symlink(path.join(outside, 'dir'), path.join(repo, 'snapshots', C1, 'escape-dir'));
    const c3 = commitOf('three');
    await fs.symlink(path.join(outside, 'dir'), path.join(repo, 'snapshots', c3));
    // A whole repo folder that is a link to a folder outside.
    const fakeRepo = path.join(outside, 'fake-repo');
    await fs.mkdir(path.join(fakeRepo, 'snapshots', C1), { recursive: true });
    await fs.writeFile(path.join(fakeRepo, 'snapshots', C1, 'file.txt'), 'outside repo file');
    await fs.symlink(fakeRepo, path.join(root, 'models--org--linked'));
    const outsideBefore = await listTree(outside);

    const r = await runCli(['rm', 'org/model', 'org/linked', '--cache-dir', root, '-y']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exists(repo), false);
    assert.equal(await exists(path.join(root, 'models--org--linked')), false, 'the link to a repo outside is unlinked');
    assert.deepEqual(await listTree(outside), outsideBefore, 'nothing outside the cache was touched');
    assert.equal(await fs.readFile(path.join(outside, 'precious.bin'), 'utf8'), 'precious');
  });

  test('a refs folder that links out: the ref is not deleted through it', async () => {
    const root = await tempDir();
    const outside = await tempDir('hubcache-outside-');
    const repo = await twoRevisions(root);
    await fs.rename(path.join(repo, 'refs'), path.join(outside, 'refs'));
    await fs.symlink(path.join(outside, 'refs'), path.join(repo, 'refs'));
    const s = await scan({ hf: root, modelscope: root });
    const report = await executePlan(planRemove(s, { targets: ['org/model@v1.0'] }));
    assert.equal(await exists(path.join(repo, 'snapshots', C1)), false);
    assert.equal(await fs.readFile(path.join(outside, 'refs', 'v1.0'), 'utf8'), C1, 'outside file intact');
    assert.match(report.errors.map((e) => e.message).join('\n'), /outside the cache/);
  });

  test('a revision one of whose blobs a download holds the lock of is left alone', async () => {
    const root = await tempDir();
    const repo = await twoRevisions(root);
    const only1 = await blobOf(path.join(repo, 'snapshots', C1, 'only1.bin'));
    const lock = await acquireLock(path.join(root, '.locks', 'models--org--model', `${path.basename(only1)}.lock`));
    try {
      const r = await runCli(['rm', 'org/model@v1.0', '--cache-dir', root, '-y']);
      assert.equal(r.code, ExitCode.inUse, r.stderr);
      assert.match(r.stderr, /in use/);
      assert.match(r.stderr, /error: Not removed, a download is using it: org\/model@/);
      assert.equal(await exists(path.join(repo, 'snapshots', C1)), true);
      assert.equal(await exists(only1), true);
      assert.equal(await fs.readFile(path.join(repo, 'refs', 'v1.0'), 'utf8'), C1);
    } finally {
      await lock.release();
    }
  });

  test('a blob linked by another revision after planning is kept (checked again under its lock)', async () => {
    const root = await tempDir();
    const repo = await twoRevisions(root);
    const only1 = await blobOf(path.join(repo, 'snapshots', C1, 'only1.bin'));
    const config1 = await blobOf(path.join(repo, 'snapshots', C1, 'config.json'));
    const plan = planRemove(await scan({ hf: root, modelscope: root }), { targets: ['org/model@v1.0'] });
    // A concurrent download links config1 into a new revision between plan and execution.
    const c3 = path.join(repo, 'snapshots', commitOf('three'));
    await fs.mkdir(c3, { recursive: true });
    await fs.symlink(`../../blobs/${path.basename(config1)}`, path.join(c3, 'config.json'));
    const report = await executePlan(plan);
    assert.equal(await exists(path.join(repo, 'snapshots', C1)), false);
    assert.equal(await exists(only1), false, 'the unlinked blob went');
    assert.equal(await fs.readFile(path.join(c3, 'config.json'), 'utf8'), '{"v":1}', 'the relinked blob stayed');
    assert.match(
      report.skipped.map((x) => `${path.basename(x.what)}: ${x.reason}`).join('\n'),
      new RegExp(`${path.basename(config1)}: linked again`),
    );
    assert.equal(report.freedBytes, 500);
  });

  test('library: Cache.remove with dryRun, then executeDeletePlan', async () => {
    const root = await tempDir();
    const repo = await twoRevisions(root);
    const cache = Cache.at(root);
    const preview = await cache.remove({ targets: ['org/model@main'], dryRun: true });
    assert.equal(preview.dryRun, true);
    assert.equal(preview.freedBytes, 7);
    assert.equal(await exists(path.join(repo, 'snapshots', C2)), true);
    const done = await cache.executeDeletePlan(preview.plan);
    assert.equal(done.freedBytes, 7);
    assert.equal(await exists(path.join(repo, 'snapshots', C2)), false);
    assert.equal(await exists(path.join(repo, 'blobs', sha256(SHARED))), true, 'still used by v1.0');
  });
});
