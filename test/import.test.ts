// `hubcache import`: adopting files already on disk into the HF and ModelScope layouts after a
// hash check, without downloading; mismatches reported and left alone; and moving a model
// between the two hubs' layouts (HF snapshot ↔ ModelScope dir) with hard links.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { listTree, runCli, tempDir } from './helpers.js';
import { ExitCode } from '../src/errors.js';

const FILES: Record<string, Buffer> = {
  'config.json': Buffer.from('{"model_type":"demo"}\n'),
  'model.safetensors': Buffer.alloc(200_000, 5),
  'tok/tokenizer.json': Buffer.from('{"tokens":[]}'),
};
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

async function writeFolder(files: Record<string, Buffer>): Promise<string> {
  const dir = await tempDir('hubcache-import-src-');
  for (const [p, b] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, p)), { recursive: true });
    await fs.writeFile(path.join(dir, p), b);
  }
  return dir;
}

interface ImportJson {
  path: string;
  commit: string;
  files: { path: string; status: string; method?: string; algorithm?: string; expected?: string; actual?: string }[];
}

describe('import', () => {
  let hub: TestHub;
  let hfCommit: string;
  before(async () => {
    hub = await startTestHub();
    hfCommit = hub.hf.createRepo('org/model').commit(FILES);
    hub.ms.createRepo('org/model', { gitattributes: true }).commit(FILES);
  });
  after(async () => hub.close());

  const env = (cache: string): Record<string, string> => ({
    HF_HUB_CACHE: cache,
    HF_ENDPOINT: hub.hfEndpoint,
    MODELSCOPE_CACHE: cache,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
  });
  const downloads = (): number =>
    hub.countRequests({ host: 'cdn' }) +
    hub.countRequests({ host: 'ms', path: '/repo?' }) +
    hub.countRequests({ method: 'GET', host: 'hf', path: '/resolve/' });
  const status = (out: ImportJson): Record<string, string> =>
    Object.fromEntries(out.files.map((f) => [f.path, f.status]));

  test('ModelScope: matching files are moved in with their .msc entries; a later download fetches nothing', async () => {
    const cache = await tempDir();
    const src = await writeFolder(FILES);
    hub.resetRequests();
    const r = await runCli(['import', src, '--repo', 'modelscope:org/model', '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as ImportJson;
    assert.deepEqual(status(out), {
      'config.json': 'adopted',
      'model.safetensors': 'adopted',
      'tok/tokenizer.json': 'adopted',
    });
    assert.ok(out.files.every((f) => f.method === 'moved'));
    assert.equal(downloads(), 0);
    const dir = path.join(cache, 'models', 'org', 'model');
    assert.equal(out.path, dir);
    assert.deepEqual(await listTree(src), [], 'moved out of the source folder');
    assert.deepEqual(await listTree(dir), [
      '.mdl',
      '.msc',
      '.mv',
      'config.json',
      'model.safetensors',
      'tok/tokenizer.json',
    ]);
    const msc = JSON.parse(
      execFileSync('python3', [
        '-c',
        'import pickle,sys,json; print(json.dumps(pickle.load(open(sys.argv[1], "rb"))))',
        path.join(dir, '.msc'),
      ]).toString(),
    ) as { Path: string }[];
    assert.deepEqual(msc.map((e) => e.Path).sort(), Object.keys(FILES).sort());
    hub.resetRequests();
    const d = await runCli(['download', 'modelscope:org/model'], env(cache));
    assert.equal(d.code, 0, d.stderr);
    assert.equal(downloads(), 0);
  });

  test('a corrupted file is reported with both hashes, left in place, and the exit code is 1', async () => {
    const cache = await tempDir();
    const bad = Buffer.from(FILES['model.safetensors']!);
    bad.writeUInt8(bad.readUInt8(1000) ^ 0xff, 1000);
    const src = await writeFolder({ ...FILES, 'model.safetensors': bad });
    const r = await runCli(['import', src, '--repo', 'modelscope:org/model', '--json'], env(cache));
    assert.equal(r.code, ExitCode.findings, r.stderr);
    const out = JSON.parse(r.stdout) as ImportJson;
    const m = out.files.find((f) => f.path === 'model.safetensors')!;
    assert.deepEqual(m, {
      path: 'model.safetensors',
      size: 200_000,
      status: 'mismatch',
      algorithm: 'sha256',
      expected: sha256(FILES['model.safetensors']!),
      actual: sha256(bad),
    } as unknown as typeof m);
    assert.deepEqual(await fs.readFile(path.join(src, 'model.safetensors')), bad, 'left untouched');
    assert.equal(status(out)['config.json'], 'adopted');
    await assert.rejects(fs.access(path.join(cache, 'models', 'org', 'model', 'model.safetensors')));
    await assert.rejects(fs.access(path.join(cache, 'models', 'org', 'model', '.mv')), 'incomplete: no .mv');
    const text = await runCli(['import', src, '--repo', 'modelscope:org/model'], env(cache));
    assert.equal(text.code, ExitCode.findings);
    assert.match(text.stdout, /MISMATCH model\.safetensors: sha256 expected [0-9a-f]{64}, got [0-9a-f]{64}/);
  });

  test('a partial set is adopted; the following download fetches only what is missing', async () => {
    const cache = await tempDir();
    const src = await writeFolder({ 'model.safetensors': FILES['model.safetensors']! });
    const r = await runCli(['import', src, '--repo', 'modelscope:org/model', '--copy'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 adopted, 0 already cached, 0 mismatched, 2 missing/);
    assert.match(r.stderr, /hubcache download modelscope:org\/model/);
    assert.deepEqual(await listTree(src), ['model.safetensors'], '--copy keeps the source');
    hub.resetRequests();
    const d = await runCli(['download', 'modelscope:org/model', '--json'], env(cache));
    assert.equal(d.code, 0, d.stderr);
    assert.equal(hub.countRequests({ host: 'cdn' }), 2);
    assert.ok(hub.findRequests({ host: 'cdn' }).every((q) => !q.path.includes('model.safetensors')));
  });

  test('HF: blobs named by etag, snapshot links, ref and tree cache; then a download needs no file request', async () => {
    const cache = await tempDir();
    const src = await writeFolder(FILES);
    hub.resetRequests();
    const r = await runCli(['import', src, '--repo', 'org/model', '--copy', '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(downloads(), 0);
    const repoDir = path.join(cache, 'models--org--model');
    const snap = path.join(repoDir, 'snapshots', hfCommit);
    assert.equal((JSON.parse(r.stdout) as ImportJson).path, snap);
    assert.equal(await fs.readFile(path.join(repoDir, 'refs', 'main'), 'utf8'), hfCommit);
    assert.equal(
      await fs.readlink(path.join(snap, 'model.safetensors')),
      `../../blobs/${sha256(FILES['model.safetensors']!)}`,
    );
    assert.equal(
      await fs.readlink(path.join(snap, 'tok', 'tokenizer.json')),
      `../../../blobs/${gitSha1(FILES['tok/tokenizer.json']!)}`,
    );
    await fs.access(path.join(repoDir, 'trees', `${hfCommit}.json`));
    hub.resetRequests();
    const d = await runCli(['download', 'org/model'], env(cache));
    assert.equal(d.code, 0, d.stderr);
    assert.equal(downloads(), 0);
  });

  test('HF offline: the cached tree listing is the reference, no request at all', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', 'org/model', 'config.json'], env(cache))).code, 0);
    const src = await writeFolder(FILES);
    hub.resetRequests();
    const r = await runCli(['import', src, '--repo', 'org/model', '--offline', '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(status(JSON.parse(r.stdout) as ImportJson), {
      'config.json': 'cached',
      'model.safetensors': 'adopted',
      'tok/tokenizer.json': 'adopted',
    });
    assert.equal(hub.requests.length, 0);
    assert.deepEqual(
      await fs.readFile(path.join(src, 'config.json')),
      FILES['config.json'],
      'an already-cached file stays where it is',
    );
  });

  test('HF snapshot → ModelScope with --link: no download, no bytes duplicated, HF cache intact', async () => {
    const cache = await tempDir();
    const dl = await runCli(['download', 'org/model'], env(cache));
    assert.equal(dl.code, 0, dl.stderr);
    const snap = dl.stdout.trim();
    hub.resetRequests();
    const r = await runCli(['import', snap, '--repo', 'modelscope:org/model', '--link', '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as ImportJson;
    assert.ok(
      out.files.every((f) => f.status === 'adopted' && f.method === 'linked'),
      r.stdout,
    );
    assert.equal(downloads(), 0);
    for (const p of Object.keys(FILES)) {
      const a = await fs.stat(path.join(snap, p));
      const b = await fs.stat(path.join(out.path, p));
      assert.equal(a.ino, b.ino, `${p} is a hard link of the HF blob`);
      assert.ok((await fs.lstat(path.join(snap, p))).isSymbolicLink(), 'HF snapshot still links to its blob');
    }
    assert.equal((await runCli(['download', 'modelscope:org/model'], env(cache))).code, 0);
    assert.equal(downloads(), 0);
  });

  test('default mode copies out of another cache (never moves its files); dry run changes nothing', async () => {
    const cache = await tempDir();
    const other = await tempDir();
    const dl = await runCli(['download', 'org/model'], env(other));
    const snap = dl.stdout.trim();
    const before = await listTree(other);
    const dry = await runCli(['import', snap, '--repo', 'modelscope:org/model', '--dry-run'], env(cache));
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would adopt {2}model\.safetensors \(copied/);
    assert.deepEqual(await listTree(cache), []);
    const r = await runCli(['import', snap, '--repo', 'modelscope:org/model', '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as ImportJson).files.every((f) => f.method === 'copied'));
    assert.deepEqual(await listTree(other), before, 'the HF cache is untouched');
  });

  test('ModelScope dir → HF with --link: blobs are hard links of the ModelScope files, whose index stays valid', async () => {
    const cache = await tempDir();
    const dl = await runCli(['download', 'modelscope:org/model'], env(cache));
    const msDir = dl.stdout.trim();
    hub.resetRequests();
    const r = await runCli(['import', msDir, '--repo', 'hf:org/model', '--link', '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(downloads(), 0);
    const blob = path.join(cache, 'models--org--model', 'blobs', sha256(FILES['model.safetensors']!));
    assert.equal((await fs.stat(blob)).ino, (await fs.stat(path.join(msDir, 'model.safetensors'))).ino);
    assert.equal((await runCli(['download', 'modelscope:org/model'], env(cache))).code, 0);
    assert.equal((await runCli(['download', 'org/model'], env(cache))).code, 0);
    assert.equal(downloads(), 0);
  });

  test('default mode leaves a ModelScope model dir whole (copies out of it)', async () => {
    const msCache = await tempDir();
    const msDir = (await runCli(['download', 'modelscope:org/model'], env(msCache))).stdout.trim();
    const before = await listTree(msCache);
    const cache = await tempDir();
    const r = await runCli(['import', msDir, '--repo', 'org/model', '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as ImportJson).files.every((f) => f.status === 'adopted' && f.method === 'copied'));
    assert.deepEqual(await listTree(msCache), before);
  });

  test('a model dir imported into itself: unindexed files only get their .msc entries', async () => {
    const cache = await tempDir();
    const dir = path.join(cache, 'models', 'org', 'model');
    for (const [p, b] of Object.entries(FILES)) {
      await fs.mkdir(path.dirname(path.join(dir, p)), { recursive: true });
      await fs.writeFile(path.join(dir, p), b);
    }
    const r = await runCli(['import', dir, '--repo', 'modelscope:org/model', '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as ImportJson).files.every((f) => f.status === 'adopted'));
    assert.deepEqual(await listTree(dir), [
      '.mdl',
      '.msc',
      '.mv',
      'config.json',
      'model.safetensors',
      'tok/tokenizer.json',
    ]);
    const again = await runCli(['import', dir, '--repo', 'modelscope:org/model', '--json'], env(cache));
    assert.ok((JSON.parse(again.stdout) as ImportJson).files.every((f) => f.status === 'cached'));
  });

  test('usage errors: two modes, a missing folder', async () => {
    const cache = await tempDir();
    const src = await writeFolder(FILES);
    assert.equal(
      (await runCli(['import', src, '--repo', 'org/model', '--copy', '--move'], env(cache))).code,
      ExitCode.usage,
    );
    assert.equal(
      (await runCli(['import', path.join(src, 'nope'), '--repo', 'org/model'], env(cache))).code,
      ExitCode.usage,
    );
  });
});
