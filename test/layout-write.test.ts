// The layouts' one write API (util/fs atomicTempPath + replaceAtomically, HfRepoCache.addBlob /
// linkSnapshot / writeRef, ModelScope addFile): one temp-name pattern, which the scans never list
// as a file and prune removes once old; a write that fails or a process killed mid-write never
// leaves a visible partial.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { scan } from '../src/care/scan.js';
import { HfRepoCache } from '../src/layouts/hf-cache.js';
import { MsLegacyDir } from '../src/layouts/modelscope-cache.js';
import { atomicTempPath, atomicTempTarget, isAtomicTemp, replaceAtomically } from '../src/util/fs.js';
import { age, buildHfRepo, buildMsLegacyRepo, buildMsSnapshotRepo, commitOf, sha256 } from './fixtures/care-cache.js';
import { ROOT, runCli, tempDir } from './helpers.js';

const HOUR = 3_600_000;
const C1 = commitOf('one');
const exists = (p: string): Promise<boolean> =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

describe('layout write API', () => {
  test('one temp pattern: hidden, beside the target, recognised, and mapped back to its target', () => {
    const t = atomicTempPath('/c/models--o--m/snapshots/abc/config.json');
    assert.match(t, /^\/c\/models--o--m\/snapshots\/abc\/\.config\.json\.[0-9a-f]{8}\.hctmp$/);
    assert.equal(isAtomicTemp(path.basename(t)), true);
    assert.equal(atomicTempTarget(t), '/c/models--o--m/snapshots/abc/config.json');
    // Names older hubcache versions wrote still map to their target; ordinary repo files are no temps.
    assert.equal(atomicTempTarget('/c/refs/main.0badc0de.tmp'), '/c/refs/main');
    assert.equal(atomicTempTarget('/c/x/.a.msc.0badc0de.tmp'), '/c/x/a.msc');
    for (const name of ['config.json', 'model.hctmp', '.hctmp', 'x.tmp', 'w.0badc0de.bin', 'w.0badc0de.tmp']) {
      assert.equal(isAtomicTemp(name), false, name);
    }
  });

  test('temps left in snapshots/, blobs/, refs/ and ModelScope folders are never files; prune removes old ones', async () => {
    const root = await tempDir();
    const repo = await buildHfRepo(root, 'org/model', [
      { commit: C1, files: { 'config.json': '{"v":1}', 'sub/w.bin': Buffer.alloc(300, 1) }, refs: ['main'] },
    ]);
    const legacy = await buildMsLegacyRepo(root, 'qwen/Q', { 'a.json': '{}' });
    const v2 = await buildMsSnapshotRepo(root, 'qwen/R', 'master', { 'b.json': '{}' });
    // What a crash between "temp written" and "renamed" leaves: a copy-mode snapshot file, a
    // replacement link, a blob copy, a ref, a ModelScope file in both layouts and an .msc rewrite.
    const snapCopy = atomicTempPath(path.join(repo, 'snapshots', C1, 'sub', 'w.bin'));
    await fs.writeFile(snapCopy, Buffer.alloc(100, 1));
    const snapLink = atomicTempPath(path.join(repo, 'snapshots', C1, 'config.json'));
    await fs.symlink(`../../blobs/${'9'.repeat(40)}`, snapLink);
    const blobTmp = atomicTempPath(path.join(repo, 'blobs', sha256('x')));
    await fs.writeFile(blobTmp, 'x');
    const refTmp = atomicTempPath(path.join(repo, 'refs', 'main'));
    await fs.writeFile(refTmp, C1);
    const msTmp = atomicTempPath(path.join(legacy, 'a.json'));
    await fs.writeFile(msTmp, '{');
    const mscTmp = atomicTempPath(path.join(legacy, '.msc'));
    await fs.writeFile(mscTmp, 'half');
    const v2Tmp = atomicTempPath(path.join(v2, 'b.json'));
    await fs.writeFile(v2Tmp, '{');
    const temps = [snapCopy, snapLink, blobTmp, refTmp, msTmp, mscTmp, v2Tmp];

    const s = await scan({ hf: root, modelscope: root });
    const files = s.repos.flatMap((r) => r.revisions.flatMap((v) => v.files.map((f) => `${r.key}:${f.path}`)));
    assert.deepEqual(files.sort(), [
      'modelscope:qwen/Q:a.json',
      'modelscope:qwen/R:b.json',
      'org/model:config.json',
      'org/model:sub/w.bin',
    ]);
    assert.deepEqual(s.warnings.map((w) => `${w.kind} ${w.path}`).sort(), temps.map((t) => `stale-temp ${t}`).sort());
    const refs = s.repos.find((r) => r.key === 'org/model')?.refs;
    assert.deepEqual(refs, { main: C1 }, 'a ref temp is no ref');

    const ls = await runCli(['ls', 'org/model', '--cache-dir', root]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.doesNotMatch(ls.stdout, /hctmp/);
    const verify = await runCli(['verify', '--cache-dir', root, '--offline']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.doesNotMatch(verify.stdout, /hctmp/);

    // Fresh temps may belong to a write in progress: kept. Old ones go, and nothing else does.
    const young = await runCli(['prune', '--cache-dir', root, '--incomplete-older-than', '1h', '--yes']);
    assert.equal(young.code, 0, young.stderr);
    for (const t of temps) assert.equal(await exists(t), true, `young ${t}`);
    for (const t of temps) await age(t, 3 * HOUR);
    const r = await runCli(['prune', '--cache-dir', root, '--incomplete-older-than', '1h', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    for (const t of temps) assert.equal(await exists(t), false, `old ${t}`);
    const after = await scan({ hf: root, modelscope: root });
    assert.deepEqual(after.warnings, []);
    assert.equal(await fs.readFile(path.join(repo, 'snapshots', C1, 'sub', 'w.bin'), 'utf8'), '\x01'.repeat(300));
    assert.equal(await fs.readFile(path.join(legacy, 'a.json'), 'utf8'), '{}');
  });

  test('names of older hubcache temps count only where no repo file can be; a repo file so named stays a file', async () => {
    const root = await tempDir();
    const repo = await buildHfRepo(root, 'org/model', [{ commit: C1, files: { 'a.txt': 'a' }, refs: ['main'] }]);
    const snap = path.join(repo, 'snapshots', C1);
    // A copy-mode snapshot file whose repo name happens to look like an old temp: a file, never pruned.
    await fs.writeFile(path.join(snap, 'data.0badc0de.tmp'), 'real');
    await age(path.join(snap, 'data.0badc0de.tmp'), 3 * HOUR);
    // What older versions left: a replacement link in snapshots/, a ref temp.
    const oldLink = path.join(snap, 'a.txt.1a2b3c4d.tmp');
    await fs.symlink('../../blobs/none', oldLink);
    const oldRef = path.join(repo, 'refs', 'main.1a2b3c4d.tmp');
    await fs.writeFile(oldRef, C1);
    const s = await scan({ hf: root, modelscope: root });
    assert.deepEqual(
      s.repos[0]?.revisions[0]?.files.map((f) => f.path),
      ['a.txt', 'data.0badc0de.tmp'],
    );
    assert.deepEqual(
      s.warnings.map((w) => `${w.kind} ${w.path}`).sort(),
      [`stale-temp ${oldLink}`, `stale-temp ${oldRef}`].sort(),
    );
    for (const t of [oldLink, oldRef]) await age(t, 3 * HOUR);
    const r = await runCli(['prune', '--cache-dir', root, '--incomplete-older-than', '1h', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exists(oldLink), false);
    assert.equal(await exists(oldRef), false);
    assert.equal(await fs.readFile(path.join(snap, 'data.0badc0de.tmp'), 'utf8'), 'real');
  });

  test('a write that fails after the temp was made leaves the target unchanged and no temp', async () => {
    const dir = await tempDir();
    const dest = path.join(dir, 'snapshots', 'f.json');
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.writeFile(dest, 'old');
    await assert.rejects(
      replaceAtomically(dest, async (tmp) => {
        await fs.writeFile(tmp, 'half of the ne');
        throw new Error('disk full');
      }),
      /disk full/,
    );
    assert.equal(await fs.readFile(dest, 'utf8'), 'old');
    assert.deepEqual(await fs.readdir(path.dirname(dest)), ['f.json']);

    // Through the layouts: a source that vanished fails the copy, and nothing appears.
    const rc = new HfRepoCache(dir, { type: 'model', id: 'org/m' });
    const etag = sha256('gone');
    await assert.rejects(rc.addBlob(etag, path.join(dir, 'no-such-file'), 'copy'), { code: 'ENOENT' });
    assert.equal(await exists(rc.blobPath(etag)), false);
    assert.deepEqual(await fs.readdir(rc.blobsDir()).catch(() => []), []);
    const ms = new MsLegacyDir(path.join(dir, 'models', 'o', 'n'), path.join(dir, '.lock', 'o___n'));
    await assert.rejects(ms.addFile('a/b.json', path.join(dir, 'no-such-file'), 'link'), { code: 'ENOENT' });
    assert.deepEqual(await fs.readdir(path.join(ms.dir, 'a')).catch(() => []), []);
  });

  test('addBlob, linkSnapshot and writeRef put a repo in place that the scan lists', async () => {
    const root = await tempDir();
    const src = path.join(root, 'incoming.bin');
    await fs.writeFile(src, 'weights');
    const rc = new HfRepoCache(root, { type: 'model', id: 'org/m' });
    const etag = sha256('weights');
    assert.equal(await rc.addBlob(etag, src, 'move'), 'moved');
    assert.equal(await exists(src), false);
    await rc.linkSnapshot(C1, { path: 'w.bin', size: 7, lfs: true, sha256: etag }, { symlinks: true, newBlob: true });
    await rc.writeRef('main', C1);
    assert.equal(await fs.readFile(rc.refPath('main'), 'utf8'), C1);
    const s = await scan({ hf: root, modelscope: root });
    assert.deepEqual(s.warnings, []);
    assert.deepEqual(
      s.repos[0]?.revisions[0]?.files.map((f) => [f.path, f.size]),
      [['w.bin', 7]],
    );
    assert.deepEqual(
      (await fs.readdir(rc.dir, { recursive: true })).filter((n) => isAtomicTemp(path.basename(n))),
      [],
    );
  });

  test('a process killed mid-write leaves the old file and a temp that scan reports and prune removes', async () => {
    const root = await tempDir();
    const repo = await buildHfRepo(root, 'org/model', [{ commit: C1, files: { 'a.txt': 'a' }, refs: ['main'] }]);
    const ref = path.join(repo, 'refs', 'main');
    const script = [
      "import fs from 'node:fs/promises';",
      "import { replaceAtomically } from './src/util/fs.ts';",
      `await replaceAtomically(${JSON.stringify(ref)}, async (tmp) => {`,
      "  await fs.writeFile(tmp, 'f00');",
      "  process.kill(process.pid, 'SIGKILL');",
      '  await new Promise(() => {});',
      '});',
    ].join('\n');
    const signal = await new Promise<NodeJS.Signals | null>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: ROOT,
        stdio: 'ignore',
      });
      child.on('error', reject);
      child.on('exit', (_code, sig) => resolve(sig));
    });
    assert.equal(signal, 'SIGKILL');
    assert.equal(await fs.readFile(ref, 'utf8'), C1, 'the old ref is intact');
    const left = (await fs.readdir(path.dirname(ref))).filter((n) => n !== 'main');
    assert.equal(left.length, 1);
    assert.equal(isAtomicTemp(left[0] as string), true);
    const s = await scan({ hf: root, modelscope: root });
    assert.deepEqual(
      s.warnings.map((w) => w.kind),
      ['stale-temp'],
    );
    await age(path.join(path.dirname(ref), left[0] as string), 3 * HOUR);
    const r = await runCli(['prune', '--cache-dir', root, '--incomplete-older-than', '1h', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fs.readdir(path.dirname(ref)), ['main']);
  });
});
