// scan() and `hubcache ls` on caches built by the tests: HF repos with several revisions and
// shared blobs, both ModelScope layouts, damaged entries of every kind, and a cache filled by
// real downloads from the test hub.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scan } from '../src/care/scan.js';
import type { CacheScan } from '../src/care/model.js';
import { Cache } from '../src/cache.js';
import {
  age,
  blobOf,
  buildHfRepo,
  buildMsLegacyRepo,
  buildMsSnapshotRepo,
  commitOf,
  gitSha1,
  sha256,
} from './fixtures/care-cache.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

const DAY = 86_400_000;
const WEIGHTS = Buffer.alloc(4000, 3);
const C1 = commitOf('one');
const C2 = commitOf('two');
const C3 = commitOf('three');

/** org/model: v1 and main share the weights blob; a third revision is detached. */
async function buildSample(root: string): Promise<void> {
  await buildHfRepo(root, 'org/model', [
    {
      commit: C1,
      files: { 'config.json': '{"v":1}', 'model.safetensors': WEIGHTS, 'sub/tok.json': 'tok' },
      refs: ['v1.0'],
    },
    {
      commit: C2,
      files: { 'config.json': '{"v":2}', 'model.safetensors': WEIGHTS, 'sub/tok.json': 'tok' },
      refs: ['main'],
    },
    { commit: C3, files: { 'config.json': '{"v":3}' } },
  ]);
  await buildHfRepo(
    root,
    'org/data',
    [{ commit: C1, files: { 'train.bin': Buffer.alloc(100, 1) }, refs: ['main'] }],
    'dataset',
  );
  await buildMsLegacyRepo(root, 'qwen/Qwen2.5-0.5B', { 'config.json': '{}', 'sub/model.bin': 'weights!' });
  await buildMsSnapshotRepo(root, 'qwen/Qwen3', 'master', { 'config.json': '{"q":3}' });
}

const repoOf = (s: CacheScan, key: string) => {
  const r = s.repos.find((x) => x.key === key);
  assert.ok(r, `${key} scanned; have ${s.repos.map((x) => x.key).join(', ')}`);
  return r;
};

describe('care: scan', () => {
  test('repos of both hubs and all layouts, sizes counting shared blobs once', async () => {
    const root = await tempDir();
    await buildSample(root);
    const s = await scan({ hf: root, modelscope: root });
    assert.deepEqual(s.warnings, []);
    assert.deepEqual(
      s.repos.map((r) => `${r.key} ${r.layout}`).sort(),
      [
        'datasets/org/data hf',
        'modelscope:qwen/Qwen2.5-0.5B ms-legacy',
        'modelscope:qwen/Qwen3 ms-snapshots',
        'org/model hf',
      ].sort(),
    );
    const model = repoOf(s, 'org/model');
    assert.deepEqual(model.refs, { main: C2, 'v1.0': C1 });
    // distinct blobs: weights (4000) + tok (3) + 3 configs (7 each)
    assert.equal(model.size, 4000 + 3 + 7 * 3);
    assert.equal(model.fileCount, 5);
    const byCommit = new Map(model.revisions.map((r) => [r.commit, r]));
    assert.equal(byCommit.get(C1)?.size, 4000 + 3 + 7);
    assert.deepEqual(byCommit.get(C1)?.refs, ['v1.0']);
    assert.deepEqual(byCommit.get(C3)?.refs, [], 'detached');
    const weights = byCommit.get(C1)!.files.find((f) => f.path === 'model.safetensors')!;
    assert.equal(path.basename(weights.blobPath), sha256(WEIGHTS));
    assert.equal(weights.blobPath, byCommit.get(C2)!.files.find((f) => f.path === 'model.safetensors')!.blobPath);
    assert.equal(
      byCommit.get(C1)!.files.find((f) => f.path === 'sub/tok.json')!.blobPath,
      path.join(model.path, 'blobs', gitSha1(Buffer.from('tok'))),
    );

    const legacy = repoOf(s, 'modelscope:qwen/Qwen2.5-0.5B');
    assert.equal(legacy.path, path.join(root, 'models', 'qwen', 'Qwen2___5-0___5B'));
    assert.deepEqual(
      legacy.revisions.map((r) => [r.commit, r.refs]),
      [['master', ['master']]],
    );
    assert.deepEqual(
      legacy.revisions[0]!.files.map((f) => [f.path, f.size, typeof f.msRevision]),
      [
        ['config.json', 2, 'string'],
        ['sub/model.bin', 8, 'string'],
      ],
    );
    assert.equal(legacy.size, 10);
    const v2 = repoOf(s, 'modelscope:qwen/Qwen3');
    assert.equal(v2.revisions[0]?.path, path.join(root, 'models', 'qwen--Qwen3', 'snapshots', 'master'));
    assert.equal(s.size, model.size + 100 + 10 + 7);
  });

  test('damage is reported, never thrown: broken link, missing commit, bad ref, orphan, partial, foreign, outside link', async () => {
    const root = await tempDir();
    const outside = await tempDir('hubcache-outside-');
    await buildSample(root);
    const repoDir = path.join(root, 'models--org--model');
    const snap2 = path.join(repoDir, 'snapshots', C2);
    // broken link: the blob of main's config is gone
    await fs.unlink(await blobOf(path.join(snap2, 'config.json')));
    await fs.writeFile(path.join(repoDir, 'refs', 'gone'), commitOf('nowhere'));
    await fs.writeFile(path.join(repoDir, 'refs', 'newline'), `${C1}\n`);
    await fs.writeFile(path.join(repoDir, 'blobs', 'c'.repeat(64)), 'orphan');
    await fs.writeFile(path.join(repoDir, 'blobs', `${'d'.repeat(64)}.1a2b3c4d.incomplete`), 'partial');
    await fs.writeFile(path.join(repoDir, 'refs', 'main.1a2b3c4d.tmp'), C2);
    await fs.writeFile(path.join(outside, 'secret.txt'), 'do not touch');
    await fs.symlink(path.join(outside, 'secret.txt'), path.join(snap2, 'outside.txt'));
    await fs.writeFile(path.join(root, 'version.txt'), '1');
    await fs.mkdir(path.join(root, 'not-a-repo'));
    await fs.mkdir(path.join(root, 'models--broken'), { recursive: true }); // no snapshots/
    await fs.mkdir(path.join(root, 'models', '._____temp', 'qwen', 'Qwen2.5-0.5B'), { recursive: true });
    await fs.writeFile(path.join(root, 'models', '._____temp', 'qwen', 'Qwen2.5-0.5B', 'big.bin'), 'half');
    // a legacy file not in .msc, and a .msc entry without its file
    const legacy = path.join(root, 'models', 'qwen', 'Qwen2___5-0___5B');
    await fs.writeFile(path.join(legacy, 'extra.txt'), 'hand copied');
    await fs.unlink(path.join(legacy, 'config.json'));

    const s = await scan({ hf: root, modelscope: root });
    const kinds = (k: string) =>
      s.warnings
        .filter((w) => w.kind === k)
        .map((w) => path.relative(root, w.path))
        .sort();
    assert.deepEqual(kinds('broken-link'), [path.join('models--org--model', 'snapshots', C2, 'config.json')]);
    assert.deepEqual(kinds('missing-commit'), [
      path.join('models--org--model', 'refs', 'gone'),
      path.join('models--org--model', 'refs', 'newline'),
    ]);
    assert.deepEqual(kinds('orphan-blob'), [path.join('models--org--model', 'blobs', 'c'.repeat(64))]);
    assert.deepEqual(
      kinds('incomplete'),
      [
        path.join('models', '._____temp', 'qwen', 'Qwen2.5-0.5B', 'big.bin'),
        path.join('models--org--model', 'blobs', `${'d'.repeat(64)}.1a2b3c4d.incomplete`),
      ].sort(),
    );
    assert.deepEqual(kinds('stale-temp'), [path.join('models--org--model', 'refs', 'main.1a2b3c4d.tmp')]);
    assert.deepEqual(kinds('outside-link'), [path.join('models--org--model', 'snapshots', C2, 'outside.txt')]);
    assert.deepEqual(kinds('foreign'), ['not-a-repo', 'version.txt']);
    assert.deepEqual(kinds('corrupted'), ['models--broken']);
    assert.deepEqual(kinds('untracked'), [path.join('models', 'qwen', 'Qwen2___5-0___5B', 'extra.txt')]);
    assert.deepEqual(kinds('missing-file'), [path.join('models', 'qwen', 'Qwen2___5-0___5B', 'config.json')]);
    const incomplete = s.warnings.find((w) => w.kind === 'incomplete' && w.path.endsWith('.incomplete'))!;
    assert.equal(incomplete.size, 7);
    assert.equal(incomplete.lockPath, path.join(root, '.locks', 'models--org--model', `${'d'.repeat(64)}.lock`));
    const model = repoOf(s, 'org/model');
    const rev2 = model.revisions.find((r) => r.commit === C2)!;
    assert.deepEqual(rev2.missing, ['config.json']);
    assert.ok(
      !('newline' in model.refs && model.revisions.some((r) => r.refs.includes('newline'))),
      'a ref with a newline names no revision',
    );
    assert.ok(
      rev2.files.some((f) => f.path === 'outside.txt'),
      'a link out still lists as a file',
    );
    // The orphan blob is not in the size; the broken config neither.
    assert.equal(model.size, 4000 + 3 + 7 * 2 + 'do not touch'.length);
  });

  test('every link form that lands in blobs/ finds its blob; hard-linked blobs count once on disk', async () => {
    const root = await tempDir();
    const deep = 'a/b/c/deep.bin';
    const dir = await buildHfRepo(root, 'org/forms', [
      { commit: C1, files: { [deep]: 'deep', 'abs.bin': 'abs', 'detour.bin': 'detour' }, refs: ['main'] },
    ]);
    const snap = path.join(dir, 'snapshots', C1);
    const relink = async (file: string, target: (blob: string) => string): Promise<void> => {
      const link = path.join(snap, file);
      const blob = await blobOf(link);
      await fs.unlink(link);
      await fs.symlink(target(blob), link);
    };
    await relink('abs.bin', (blob) => blob); // absolute, as some tools write it
    await relink('detour.bin', (blob) => `./../../blobs/../blobs/${path.basename(blob)}`);
    // A second repo whose only blob is a hard link to one of org/forms' blobs (what `dedup` makes).
    const twin = await buildHfRepo(root, 'org/twin', [{ commit: C2, files: { 'deep.bin': 'deep' }, refs: ['main'] }]);
    const twinBlob = await blobOf(path.join(twin, 'snapshots', C2, 'deep.bin'));
    await fs.rm(twinBlob);
    await fs.link(await blobOf(path.join(snap, deep)), twinBlob);

    const s = await scan({ hf: root, modelscope: root });
    assert.deepEqual(s.warnings, []);
    const forms = s.repos.find((r) => r.key === 'org/forms')!;
    const files = forms.revisions[0]!.files;
    assert.deepEqual(
      files.map((f) => [f.path, path.dirname(f.blobPath), f.size]),
      [
        [deep, path.join(dir, 'blobs'), 4],
        ['abs.bin', path.join(dir, 'blobs'), 3],
        ['detour.bin', path.join(dir, 'blobs'), 6],
      ].sort(),
    );
    assert.equal(forms.size, 4 + 3 + 6);
    const ls = await runCli(['ls', '--json'], { HF_HUB_CACHE: root, MODELSCOPE_CACHE: root });
    assert.equal(ls.code, 0, ls.stderr);
    const out = JSON.parse(ls.stdout) as { size: number };
    assert.equal(out.size, 4 + 3 + 6, "the twin's blob is the same inode as deep.bin");
  });

  test('a FIFO where a ref should be is reported, not read forever', async () => {
    const root = await tempDir();
    const dir = await buildHfRepo(root, 'org/fifo', [{ commit: C1, files: { 'a.txt': 'a' }, refs: ['main'] }]);
    execFileSync('mkfifo', [path.join(dir, 'refs', 'stuck')]);
    const s = await scan({ hf: root, modelscope: root });
    assert.deepEqual(
      s.warnings.map((w) => [w.kind, path.basename(w.path)]),
      [['missing-commit', 'stuck']],
    );
    assert.deepEqual(s.repos[0]!.revisions[0]!.refs, ['main']);
  });

  test('no cache at all is an empty scan', async () => {
    const root = path.join(await tempDir(), 'nothing-here');
    const s = await scan({ hf: root, modelscope: root });
    assert.deepEqual([s.repos, s.warnings, s.size], [[], [], 0]);
  });
});

describe('care: ls', () => {
  let root: string;
  before(async () => {
    root = await tempDir();
    await buildSample(root);
    // org/data was last used 40 days ago; the rest today
    for (const p of await fs.readdir(path.join(root, 'datasets--org--data', 'blobs')))
      await age(path.join(root, 'datasets--org--data', 'blobs', p), 40 * DAY);
  });
  const ls = (...args: string[]) => runCli(['ls', '--cache-dir', root, ...args]);

  test('table of repos with hub, type, refs, revisions, files, size and times; totals', async () => {
    const r = await ls();
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^HUB\s+TYPE\s+ID\s+REFS\s+REVISIONS\s+FILES\s+SIZE\s+LAST ACCESSED\s+LAST MODIFIED$/);
    const model = lines.find((l) => l.includes('org/model'))!;
    assert.match(model, /^hf\s+model\s+org\/model\s+main,v1\.0\s+3\s+5\s+4\.0 kB\s+a few seconds ago/);
    assert.match(
      lines.find((l) => l.includes('org/data'))!,
      /^hf\s+dataset\s+org\/data\s+main\s+1\s+1\s+100 B\s+6 weeks ago/,
    );
    assert.match(
      lines.find((l) => l.includes('Qwen2.5'))!,
      /^modelscope\s+model\s+qwen\/Qwen2\.5-0\.5B\s+master\s+1\s+2\s+10 B/,
    );
    assert.match(r.stdout, /4 repo\(s\), 6 revision\(s\), 4\.1 kB on disk\./);
    assert.equal(r.stderr, '');
  });

  test('--filter, --sort, --revisions, --json', async () => {
    const big = await ls('--filter', 'size>1kB');
    assert.deepEqual(
      big.stdout
        .split('\n')
        .filter((l) => /^(hf|modelscope) /.test(l))
        .map((l) => l.split(/\s+/)[2]),
      ['org/model'],
    );
    const old = await ls('--filter', 'accessed>30d');
    assert.deepEqual(
      old.stdout
        .split('\n')
        .filter((l) => /^(hf|modelscope) /.test(l))
        .map((l) => l.split(/\s+/)[2]),
      ['org/data'],
    );
    const ms = await ls('--filter', 'hub=modelscope', '--sort', 'size');
    assert.deepEqual(
      ms.stdout
        .split('\n')
        .filter((l) => /^(hf|modelscope) /.test(l))
        .map((l) => l.split(/\s+/)[2]),
      ['qwen/Qwen2.5-0.5B', 'qwen/Qwen3'],
    );
    const ds = await ls('--filter', 'type=dataset', '--json');
    const j = JSON.parse(ds.stdout) as { rows: Array<{ key: string; size: number; refs: Record<string, string> }> };
    assert.deepEqual(
      j.rows.map((x) => [x.key, x.size]),
      [['datasets/org/data', 100]],
    );
    const revs = await ls('--revisions', '--filter', 'refs=main', '--json');
    const rj = JSON.parse(revs.stdout) as { rows: Array<{ key: string; revision: { commit: string } }> };
    assert.deepEqual(
      rj.rows.map((x) => `${x.key}@${x.revision.commit}`).sort(),
      [`datasets/org/data@${C1}`, `org/model@${C2}`].sort(),
    );
    const bad = await ls('--filter', 'colour=red');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Unknown filter key/);
  });

  test('ls REPO shows its revisions and files; an unknown repo is a usage error', async () => {
    const r = await ls('org/model');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`revision ${C1}\\s+\\[v1\\.0\\]`));
    assert.match(r.stdout, new RegExp(`revision ${C3}\\s+\\(detached\\)`));
    assert.match(r.stdout, /sub\/tok\.json\s+3 B/);
    const one = await ls('org/model@v1.0', '--json');
    const j = JSON.parse(one.stdout) as {
      repos: Array<{ revisions: Array<{ commit: string; files: Array<{ path: string }> }> }>;
    };
    assert.deepEqual(
      j.repos[0]!.revisions.map((v) => v.commit),
      [C1],
    );
    assert.deepEqual(
      j.repos[0]!.revisions[0]!.files.map((f) => f.path),
      ['config.json', 'model.safetensors', 'sub/tok.json'],
    );
    const ms = await ls('modelscope:qwen/Qwen2.5-0.5B');
    assert.match(ms.stdout, /ms-legacy layout/);
    const missing = await ls('org/nope');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Not in the cache: org\/nope/);
  });

  test('warnings go to stderr, the table to stdout', async () => {
    const dir = await tempDir();
    await buildSample(dir);
    await fs.writeFile(path.join(dir, 'models--org--model', 'blobs', 'e'.repeat(64)), 'orphan');
    const r = await runCli(['ls', '--cache-dir', dir]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /warning: Blob not used by any snapshot of org\/model/);
    assert.doesNotMatch(r.stdout, /warning/);
  });
});

describe('care: scan of a cache filled by real downloads', () => {
  let hub: TestHub;
  let c1: string;
  let c2: string;
  before(async () => {
    hub = await startTestHub();
    const repo = hub.hf.createRepo('org/real');
    c1 = repo.commit({ 'config.json': '{"a":1}', 'model.safetensors': { size: 50_000, seed: 1 } });
    repo.tag('v1', c1);
    c2 = repo.commit({ 'config.json': '{"a":2}' });
    hub.ms.createRepo('qwen/Real1.5').commit({ 'config.json': '{}', 'w.bin': { size: 20_000, seed: 2 } });
  });
  after(async () => hub.close());

  test('HF revisions sharing a blob and a legacy ModelScope repo', async () => {
    const root = await tempDir();
    const cache = Cache.at(root, { hfEndpoint: hub.hfEndpoint, modelscopeEndpoint: hub.msEndpoint });
    await cache.download({ repo: 'org/real', revision: 'v1' });
    await cache.download({ repo: 'org/real' });
    await cache.download({ repo: 'modelscope:qwen/Real1.5' });
    const s = await cache.scan();
    assert.deepEqual(s.warnings, []);
    const real = repoOf(s, 'org/real');
    assert.deepEqual(real.refs, { main: c2, v1: c1 });
    assert.equal(real.size, 50_000 + 7 + 7, 'the weights blob counts once');
    const ms = repoOf(s, 'modelscope:qwen/Real1.5');
    assert.equal(ms.size, 20_002);
    assert.ok(ms.revisions[0]!.files.every((f) => typeof f.msRevision === 'string'));
  });
});
