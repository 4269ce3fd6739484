// hubcache.json + hubcache.lock end to end through the CLI against the test hub:
// init/add → lock → install (empty cache) → install again (zero requests) → upstream moves →
// outdated (exit 1) → update (prints the change) → install --frozen; plus frozen drift, a
// tampered blob, `path`, and ModelScope entries.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub, type TestRepo } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';
import { ExitCode } from '../src/errors.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

const CONFIG_V1 = '{"model_type":"demo","v":1}\n';
const CONFIG_V2 = '{"model_type":"demo","v":2}\n';
const WEIGHTS = Buffer.alloc(200_000, 3);

interface LockJson {
  lockfileVersion: number;
  models: Record<
    string,
    {
      hub: string;
      repo: string;
      revision: string;
      commit: string;
      include?: string[];
      localDir?: string;
      files: Record<string, { size: number; sha256?: string; gitOid?: string; fileRevision?: string }>;
    }
  >;
}

describe('manifest + lock (HF)', () => {
  let hub: TestHub;
  let repo: TestRepo;
  let c1: string;
  let project: string;
  let cache: string;
  let manifestFile: string;
  let lockFile: string;

  before(async () => {
    hub = await startTestHub();
    repo = hub.hf.createRepo('org/model');
    c1 = repo.commit({
      'config.json': CONFIG_V1,
      'model.safetensors': WEIGHTS,
      'README.md': '# demo',
      'extra/notes.txt': 'notes',
    });
    repo.tag('v1.0', c1);
    project = await tempDir('hubcache-project-');
    cache = await tempDir('hubcache-cache-');
    manifestFile = path.join(project, 'hubcache.json');
    lockFile = path.join(project, 'hubcache.lock');
  });
  after(async () => hub.close());

  const env = (): Record<string, string> => ({ HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint });
  const cli = (...args: string[]) => runCli([...args, '--manifest', manifestFile], env());
  const readLock = async (): Promise<LockJson> => JSON.parse(await fs.readFile(lockFile, 'utf8')) as LockJson;

  test('init + add write a canonical manifest', async () => {
    const init = await cli('init');
    assert.equal(init.code, 0, init.stderr);
    assert.equal(init.stdout.trim(), manifestFile);
    assert.equal((await cli('init')).code, ExitCode.usage, 'never overwrites');
    const a = await cli('add', 'org/model', '--as', 'main-model', '--include', '*.json', '--include', '*.safetensors');
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout.trim(), 'main-model');
    const b = await cli(
      'add',
      'org/model',
      '--as',
      'pinned',
      '--revision',
      'v1.0',
      '--exclude',
      'extra/',
      '--local-dir',
      path.join(project, 'models', 'pinned'),
    );
    assert.equal(b.code, 0, b.stderr);
    assert.equal(
      await fs.readFile(manifestFile, 'utf8'),
      '{\n  "models": {\n    "main-model": {\n      "repo": "org/model",\n      "include": [\n        "*.json",\n        "*.safetensors"\n      ]\n    },\n' +
        '    "pinned": {\n      "repo": "org/model",\n      "revision": "v1.0",\n      "exclude": [\n        "extra/"\n      ],\n      "localDir": "./models/pinned"\n    }\n  }\n}\n',
    );
    const clash = await cli('add', 'other/repo', '--as', 'pinned');
    assert.equal(clash.code, ExitCode.usage);
    assert.match(clash.stderr, /already used for org\/model/);
  });

  test('lock pins commits and only the selected files, sorted, one file per line', async () => {
    const r = await cli('lock');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /main-model\s+added\s+org\/model@main\s+[0-9a-f]{8}\s+\(2 files/);
    const lock = await readLock();
    assert.equal(lock.lockfileVersion, 1);
    assert.deepEqual(Object.keys(lock.models), ['main-model', 'pinned']);
    const m = lock.models['main-model']!;
    assert.equal(m.commit, c1);
    assert.deepEqual(Object.keys(m.files), ['config.json', 'model.safetensors']);
    assert.deepEqual(m.files['model.safetensors'], {
      size: WEIGHTS.length,
      sha256: sha256(WEIGHTS),
      gitOid: m.files['model.safetensors']!.gitOid,
    });
    assert.equal(m.files['config.json']!.sha256, undefined, 'plain git files are pinned by git oid');
    assert.match(m.files['config.json']!.gitOid ?? '', /^[0-9a-f]{40}$/);
    assert.deepEqual(Object.keys(lock.models.pinned!.files), ['README.md', 'config.json', 'model.safetensors']);
    const text = await fs.readFile(lockFile, 'utf8');
    assert.match(
      text,
      /^ {8}"model\.safetensors": \{ "size": 200000, "sha256": "[0-9a-f]{64}", "gitOid": "[0-9a-f]{40}" \},?$/m,
    );
    // Locking again changes nothing and asks the hub nothing.
    hub.resetRequests();
    const again = await cli('lock');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(hub.requests.length, 0);
    assert.equal(await fs.readFile(lockFile, 'utf8'), text);
  });

  test('install on an empty cache, then again with zero requests', async () => {
    const r = await cli('install');
    assert.equal(r.code, 0, r.stderr);
    const snap = path.join(cache, 'models--org--model', 'snapshots', c1);
    assert.match(r.stdout, new RegExp(`^main-model\\s+${snap}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^pinned\\s+${path.join(project, 'models', 'pinned')}$`, 'm'));
    assert.deepEqual((await fs.readdir(snap)).sort(), ['config.json', 'model.safetensors']);
    assert.deepEqual(await fs.readFile(path.join(snap, 'model.safetensors')), WEIGHTS);
    assert.equal(await fs.readFile(path.join(project, 'models', 'pinned', 'README.md'), 'utf8'), '# demo');
    await assert.rejects(fs.access(path.join(project, 'models', 'pinned', 'extra')), 'excluded folder not fetched');
    hub.resetRequests();
    const again = await cli('install');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(
      hub.requests.map((q) => q.path),
      [],
      'a cached install makes no request',
    );
    const offline = await runCli(['install', '--offline', '--manifest', manifestFile], env());
    assert.equal(offline.code, 0, offline.stderr);
  });

  test('path prints the snapshot, a file, or the local dir', async () => {
    const snap = path.join(cache, 'models--org--model', 'snapshots', c1);
    assert.equal((await cli('path', 'main-model')).stdout, `${snap}\n`);
    assert.equal((await cli('path', 'main-model', 'config.json')).stdout, `${path.join(snap, 'config.json')}\n`);
    assert.equal((await cli('path', 'pinned')).stdout, `${path.join(project, 'models', 'pinned')}\n`);
    const unknown = await cli('path', 'nope');
    assert.equal(unknown.code, ExitCode.manifest);
    const notLocked = await cli('path', 'main-model', 'README.md');
    assert.equal(notLocked.code, ExitCode.entryNotFound, 'README.md is excluded by the include patterns');
  });

  test('upstream moves: outdated exits 1, update prints the change, install --frozen follows', async () => {
    const c2 = repo.commit({ 'config.json': CONFIG_V2, 'model-2.safetensors': Buffer.alloc(1000, 1) });
    hub.resetRequests();
    const out = await cli('outdated');
    assert.equal(out.code, ExitCode.findings, out.stderr);
    assert.match(out.stdout, new RegExp(`main-model\\s+org/model@main\\s+${c1.slice(0, 8)} → ${c2.slice(0, 8)}`));
    assert.doesNotMatch(out.stdout, /pinned/, 'a tag that did not move is not outdated');
    assert.ok(
      hub.requests.every((q) => q.path.includes('/revision/')),
      `outdated only asks for heads: ${hub.requests.map((q) => q.path).join(' ')}`,
    );
    const json = await cli('outdated', '--json');
    assert.equal(json.code, 1);
    assert.deepEqual(
      (JSON.parse(json.stdout) as Array<{ alias: string; latest: string }>).map((e) => [e.alias, e.latest]),
      [['main-model', c2]],
    );

    const up = await cli('update');
    assert.equal(up.code, 0, up.stderr);
    assert.match(
      up.stdout,
      new RegExp(`main-model\\s+updated\\s+org/model@main\\s+${c1.slice(0, 8)} → ${c2.slice(0, 8)}`),
    );
    assert.match(up.stdout, /^ {2}\+ model-2\.safetensors \(1\.0 kB\)$/m);
    assert.match(up.stdout, /^ {2}~ config\.json \(28 B, [0-9a-f]{12} → [0-9a-f]{12}\)$/m);
    assert.equal((await readLock()).models['main-model']!.commit, c2);
    assert.equal((await cli('outdated')).code, 0);

    const frozen = await cli('install', '--frozen');
    assert.equal(frozen.code, 0, frozen.stderr);
    const snap2 = path.join(cache, 'models--org--model', 'snapshots', c2);
    assert.equal(await fs.readFile(path.join(snap2, 'config.json'), 'utf8'), CONFIG_V2);
    assert.equal((await cli('path', 'main-model')).stdout.trim(), snap2);
  });

  test('--frozen fails when the manifest changed after lock; plain install re-locks', async () => {
    const before = await fs.readFile(manifestFile, 'utf8');
    const m = JSON.parse(before) as { models: Record<string, { include?: string[] }> };
    m.models['main-model']!.include = ['*.json'];
    await fs.writeFile(manifestFile, JSON.stringify(m, null, 2));
    const frozen = await cli('install', '--frozen');
    assert.equal(frozen.code, ExitCode.manifest);
    assert.match(
      frozen.stderr,
      /--frozen: hubcache\.lock does not match hubcache\.json \(main-model: include \["\*\.json","\*\.safetensors"\] → \["\*\.json"\]\)/,
    );
    assert.match(frozen.stderr, /hint: Run `hubcache lock`/);
    const relock = await cli('install');
    assert.equal(relock.code, 0, relock.stderr);
    assert.deepEqual(Object.keys((await readLock()).models['main-model']!.files), ['config.json']);
    await fs.writeFile(manifestFile, before);
    assert.equal((await cli('install')).code, 0);
  });

  test('a tampered blob fails install with the path and both hashes', async () => {
    const lock = await readLock();
    const m = lock.models['main-model']!;
    const blob = path.join(cache, 'models--org--model', 'blobs', sha256(WEIGHTS));
    const tampered = Buffer.from(WEIGHTS);
    tampered[1234] = 0xff; // same size: only a hash can tell
    await fs.chmod(blob, 0o644);
    await fs.writeFile(blob, tampered);
    hub.resetRequests();
    const r = await cli('install');
    assert.equal(r.code, ExitCode.integrity, r.stderr);
    const snapFile = path.join(cache, 'models--org--model', 'snapshots', m.commit, 'model.safetensors');
    assert.ok(
      r.stderr.includes(`sha256 mismatch for ${snapFile}: expected ${sha256(WEIGHTS)}, got ${sha256(tampered)}`),
      r.stderr,
    );
    assert.match(r.stderr, /hint: main-model: model\.safetensors of org\/model@/);
    assert.equal(hub.requests.length, 0, 'detected from the cache alone');
    // --no-hash only checks sizes and blob names, so it cannot see this; a repaired blob passes again.
    assert.equal((await cli('install', '--no-hash')).code, 0);
    await fs.rm(blob);
    const repaired = await cli('install');
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.deepEqual(await fs.readFile(blob), WEIGHTS);
  });

  test('a changed file in a local dir is caught too', async () => {
    const f = path.join(project, 'models', 'pinned', 'README.md');
    await fs.writeFile(f, '# changed by hand');
    // Back-dated, so the local-dir metadata still vouches for it: only verification can tell.
    await fs.utimes(f, new Date(2000, 0, 1), new Date(2000, 0, 1));
    const r = await cli('install');
    assert.equal(r.code, ExitCode.integrity, r.stderr);
    assert.ok(r.stderr.includes(`size mismatch for ${f}: expected 6, got 17`), r.stderr);
    await fs.rm(f);
    const fixed = await cli('install');
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.equal(await fs.readFile(f, 'utf8'), '# demo');
  });

  test('update + install of a localDir entry whose file changed upstream at the same size', async () => {
    const dir = await tempDir('hubcache-project-');
    const file = path.join(dir, 'hubcache.json');
    const r = hub.hf.createRepo('org/same-size');
    r.commit({ 'config.json': '{"a":1}' });
    await fs.writeFile(file, JSON.stringify({ models: { s: { repo: 'org/same-size', localDir: './s' } } }));
    assert.equal((await runCli(['install', '--manifest', file], env())).code, 0);
    r.commit({ 'config.json': '{"a":2}' });
    assert.equal((await runCli(['update', '--manifest', file], env())).code, 0);
    const again = await runCli(['install', '--manifest', file], env());
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await fs.readFile(path.join(dir, 's', 'config.json'), 'utf8'), '{"a":2}');
  });

  test('lock errors: offline, unknown alias, include matching nothing', async () => {
    const dir = await tempDir('hubcache-project-');
    const file = path.join(dir, 'hubcache.json');
    await fs.writeFile(
      file,
      '{\n  "models": {\n    "m": {\n      "repo": "org/model",\n      "include": ["*.gguf"]\n    }\n  }\n}\n',
    );
    const r = await runCli(['lock', '--manifest', file], env());
    assert.equal(r.code, ExitCode.manifest);
    assert.match(
      r.stderr,
      new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:7: "m" selects no file of org/model`),
    );
    const off = await runCli(['lock', '--manifest', file], { ...env(), HF_HUB_OFFLINE: '1' });
    assert.equal(off.code, ExitCode.offlineMiss);
    const up = await cli('update', 'nope');
    assert.equal(up.code, ExitCode.usage);
  });
});

describe('manifest + lock (ModelScope)', () => {
  let hub: TestHub;
  let repo: TestRepo;
  let project: string;
  let cache: string;
  let manifestFile: string;

  before(async () => {
    hub = await startTestHub();
    repo = hub.ms.createRepo('org/ms-model', { gitattributes: true });
    repo.commit({ 'configuration.json': '{"v":1}\n', 'model.bin': Buffer.alloc(50_000, 5), 'README.md': '# ms' });
    project = await tempDir('hubcache-project-');
    cache = await tempDir('hubcache-cache-');
    manifestFile = path.join(project, 'hubcache.json');
  });
  after(async () => hub.close());

  const env = (): Record<string, string> => ({
    MODELSCOPE_CACHE: cache,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
    HF_HUB_CACHE: cache,
    HF_ENDPOINT: 'http://127.0.0.1:9',
  });
  const cli = (...args: string[]) => runCli([...args, '--manifest', manifestFile], env());

  test('lock, install, tamper, outdated, update, install --frozen', async () => {
    assert.equal((await cli('init')).code, 0);
    assert.equal((await cli('add', 'modelscope:org/ms-model', '--as', 'ms', '--exclude', '*.md')).code, 0);
    const locked = await cli('lock');
    assert.equal(locked.code, 0, locked.stderr);
    const lock = JSON.parse(await fs.readFile(path.join(project, 'hubcache.lock'), 'utf8')) as LockJson;
    const e = lock.models.ms!;
    assert.equal(e.hub, 'modelscope');
    assert.equal(e.revision, 'master');
    assert.equal(e.commit, 'master', 'ModelScope pins the resolved revision name...');
    assert.deepEqual(Object.keys(e.files), ['configuration.json', 'model.bin']);
    assert.equal(
      e.files['model.bin']!.fileRevision,
      repo.file('model.bin', 'master')!.lastCommit,
      '...plus per-file revisions',
    );
    assert.equal(e.files['model.bin']!.sha256, sha256(Buffer.alloc(50_000, 5)));

    const inst = await cli('install');
    assert.equal(inst.code, 0, inst.stderr);
    const dir = path.join(cache, 'models', 'org', 'ms-model');
    assert.match(inst.stdout, new RegExp(`^ms\\s+${dir}$`, 'm'));
    assert.deepEqual(await fs.readFile(path.join(dir, 'model.bin')), Buffer.alloc(50_000, 5));
    assert.equal((await cli('path', 'ms', 'model.bin')).stdout.trim(), path.join(dir, 'model.bin'));
    hub.resetRequests();
    assert.equal((await cli('install')).code, 0);
    assert.equal(hub.countRequests({ host: 'cdn' }), 0, 'no file body fetched again');

    await fs.writeFile(path.join(dir, 'model.bin'), Buffer.alloc(50_000, 6));
    const bad = await runCli(['install', '--offline', '--manifest', manifestFile], env());
    assert.equal(bad.code, ExitCode.integrity, bad.stderr);
    assert.ok(
      bad.stderr.includes(`expected ${sha256(Buffer.alloc(50_000, 5))}, got ${sha256(Buffer.alloc(50_000, 6))}`),
      bad.stderr,
    );
    await fs.rm(path.join(dir, 'model.bin'));
    assert.equal((await cli('install')).code, 0);

    repo.commit({ 'configuration.json': '{"v":2}\n' });
    // Installing an out-of-date ModelScope lock cannot fetch the old bytes: it says so first.
    await fs.rm(path.join(dir, 'configuration.json'));
    const moved = await cli('install');
    assert.equal(moved.code, ExitCode.manifest);
    assert.match(moved.stderr, /changed upstream since hubcache\.lock: configuration\.json/);
    const out = await cli('outdated');
    assert.equal(out.code, ExitCode.findings, out.stderr);
    assert.match(out.stdout, /ms\s+modelscope:org\/ms-model@master\s+master → master\n\s+~ configuration\.json/);
    const up = await cli('update');
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /~ configuration\.json \(8 B, /);
    const frozen = await cli('install', '--frozen');
    assert.equal(frozen.code, 0, frozen.stderr);
    assert.equal(await fs.readFile(path.join(dir, 'configuration.json'), 'utf8'), '{"v":2}\n');
  });
});
