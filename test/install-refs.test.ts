// `install` must leave models other tools recognize: refs/<revision> written like `download`
// writes it (so an offline download by name, `status` and Python's local_files_only find it),
// and `prune`/`gc` run inside the project keep what its hubcache.lock pins, even once detached.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { StatusReport } from '../src/care/status.js';
import { startTestHub, type TestHub, type TestRepo } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

describe('install writes refs; prune and gc keep what the lock pins', () => {
  let hub: TestHub;
  let repo: TestRepo;
  let c1: string;
  let project: string;
  let cache: string;
  let manifestFile: string;

  before(async () => {
    hub = await startTestHub();
    repo = hub.hf.createRepo('org/model');
    c1 = repo.commit({ 'config.json': '{"v":1}\n', 'model.safetensors': Buffer.alloc(50_000, 7) });
    project = await tempDir('hubcache-project-');
    cache = await tempDir('hubcache-cache-');
    manifestFile = path.join(project, 'hubcache.json');
    await fs.writeFile(manifestFile, JSON.stringify({ models: { m: { repo: 'org/model' } } }));
  });
  after(async () => hub.close());

  const env = (): Record<string, string> => ({ HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint });
  const modelDir = (): string => path.join(cache, 'models--org--model');
  /** The CLI with the project folder as the working directory (how a user runs prune in a project). */
  const inProject = async (args: string[]) => {
    const before = process.cwd();
    process.chdir(project);
    try {
      return await runCli(args, env());
    } finally {
      process.chdir(before);
    }
  };

  test('install writes refs/main; offline download by name and status see the install', async () => {
    const r = await runCli(['install', '--manifest', manifestFile], env());
    assert.equal(r.code, 0, r.stderr);
    // Exactly the 40 bytes Python reads for snapshot_download(repo, local_files_only=True).
    assert.equal(await fs.readFile(path.join(modelDir(), 'refs', 'main'), 'utf8'), c1);

    const off = await runCli(['download', 'org/model', '--offline'], env());
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.stdout.trim(), path.join(modelDir(), 'snapshots', c1));

    const st = await runCli(['status', '--json'], env());
    assert.equal(st.code, 0, st.stderr);
    const rep = JSON.parse(st.stdout) as StatusReport;
    assert.deepEqual(
      rep.refs.map((x) => [x.repo, x.ref, x.state]),
      [['org/model', 'main', 'up-to-date']],
    );

    const prune = await runCli(['prune', '--dry-run'], env());
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stdout, /Nothing to remove/);
  });

  test('inside the project, prune and gc keep the locked revision once main moved on', async () => {
    repo.commit({ 'config.json': '{"v":2}\n' });
    assert.equal((await runCli(['download', 'org/model'], env())).code, 0); // refs/main → c2: c1 is detached
    const snapshot1 = path.join(modelDir(), 'snapshots', c1);

    const outside = await runCli(['prune', '--dry-run', '--json'], env());
    assert.equal(outside.code, 0, outside.stderr);
    assert.ok(outside.stdout.includes(snapshot1), 'outside the project, the detached revision would go');

    const prune = await inProject(['prune', '--dry-run']);
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stderr, new RegExp(`${c1}: kept: pinned by \\./hubcache\\.lock`));
    assert.ok(!prune.stdout.includes(c1), prune.stdout);
    const pruned = await inProject(['prune', '--yes']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.ok((await fs.stat(snapshot1)).isDirectory(), 'still there after a real prune');

    const gc = await inProject(['gc', '--max-size', '0', '--dry-run']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stderr, new RegExp(`${c1}: kept: pinned by \\./hubcache\\.lock`));
    assert.ok(!gc.stdout.includes(c1), gc.stdout);
    assert.match(gc.stdout, /Would shrink/);
  });
});

describe('install of a ModelScope entry records its revision like a download of it', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub();
    const r = hub.ms.createRepo('org/msm');
    r.commit({ 'configuration.json': '{"v":1}', 'model.bin': Buffer.alloc(20_000, 5) });
    r.tag('v1.0');
  });
  after(async () => hub.close());

  test('.mv names the locked revision; status and an offline download by that name see it', async () => {
    const project = await tempDir('hubcache-project-');
    const cache = await tempDir('hubcache-cache-');
    const env = { MODELSCOPE_CACHE: cache, MODELSCOPE_ENDPOINT: hub.msEndpoint, HF_HUB_CACHE: path.join(cache, 'hf') };
    const manifestFile = path.join(project, 'hubcache.json');
    const entry = { repo: 'org/msm', hub: 'modelscope', revision: 'v1.0' };
    await fs.writeFile(manifestFile, JSON.stringify({ models: { m: entry } }));
    const r = await runCli(['install', '--manifest', manifestFile], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await fs.readFile(path.join(cache, 'models', 'org', 'msm', '.mv'), 'utf8'), /^(Revision:)?v1\.0\b/);

    const st = await runCli(['status', '--json'], env);
    const rep = JSON.parse(st.stdout) as StatusReport;
    assert.deepEqual(
      rep.refs.map((x) => [x.repo, x.ref]),
      [['modelscope:org/msm', 'v1.0']],
      st.stdout,
    );
    const off = await runCli(['download', 'modelscope:org/msm', '--revision', 'v1.0', '--offline'], env);
    assert.equal(off.code, 0, off.stderr);
    assert.doesNotMatch(off.stderr, /warning/);
  });
});
