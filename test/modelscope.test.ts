// ModelScope downloads through the CLI against the test hub's ModelScope face: the legacy layout
// byte for byte (dir masking, .msc/.mdl/.mv read by Python's pickle), request counts, revisions,
// filters, local-dir, the ≥1.38 layout, offline, and hostile or failing servers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub, type TestRepo } from './fixtures/test-hub.js';
import { listTree, runCli, tempDir } from './helpers.js';
import { ExitCode, RevisionNotFoundError } from '../src/errors.js';
import { ModelScopeClient, quotePlus } from '../src/hubs/modelscope.js';
import { Cache } from '../src/cache.js';

const ID = 'Qwen/Qwen2.5-0.5B';
const MASKED = 'Qwen2___5-0___5B';

/** Loads a pickle with CPython and returns it as JSON. */
function pyLoad(file: string): unknown {
  const out = execFileSync('python3', [
    '-c',
    'import pickle,sys,json; print(json.dumps(pickle.load(open(sys.argv[1], "rb"))))',
    file,
  ]);
  return JSON.parse(out.toString()) as unknown;
}

/** Writes a list of dicts as `.msc` with CPython's default protocol, as modelscope does. */
function pyWriteMsc(file: string, entries: { Path: string; Revision: string }[]): void {
  execFileSync('python3', [
    '-c',
    'import pickle,sys,json; pickle.dump(json.loads(sys.argv[2]), open(sys.argv[1], "wb"))',
    file,
    JSON.stringify(entries),
  ]);
}

describe('modelscope download', () => {
  let hub: TestHub;
  let repo: TestRepo;
  let first: string;
  const bytes = (p: string, rev = 'master'): Buffer => {
    const f = repo.file(p, rev);
    assert.ok(f, `test repo has ${p}@${rev}`);
    return f.content.toBuffer();
  };
  const fileRev = (p: string, rev = 'master'): string => repo.file(p, rev)!.lastCommit;

  before(async () => {
    hub = await startTestHub();
    repo = hub.ms.createRepo(ID, { gitattributes: true });
    first = repo.commit({
      'config.json': '{"v":1}\n',
      'model.safetensors': { size: 300_000, seed: 1 },
      'sub/tokenizer.json': 'tok',
      'README.md': '# qwen',
      'empty.txt': '',
    });
    repo.tag('v1.0', first);
    repo.commit({ 'config.json': '{"v":2}\n' });
    hub.ms.createRepo('org/private', { private: true }).commit({ 'a.txt': 'secret' });
    hub.tokens.add('ms_good');
  });
  after(async () => hub.close());

  const env = (cache: string, extra: Record<string, string> = {}): Record<string, string> => ({
    MODELSCOPE_CACHE: cache,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
    ...extra,
  });
  const cdnGets = (): number => hub.countRequests({ host: 'cdn' });
  const fileGets = (): number => hub.countRequests({ host: 'ms', path: '/repo?' });

  test('legacy layout: masked dir, .msc/.mdl/.mv as Python reads them, no token or temp left behind', async () => {
    const cache = await tempDir();
    hub.resetRequests();
    const r = await runCli(['download', `modelscope:${ID}`], env(cache));
    assert.equal(r.code, 0, r.stderr);
    const dir = path.join(cache, 'models', 'Qwen', MASKED);
    assert.equal(r.stdout.trim(), dir);
    for (const p of ['config.json', 'model.safetensors', 'sub/tokenizer.json', 'README.md', 'empty.txt']) {
      assert.deepEqual(await fs.readFile(path.join(dir, p)), bytes(p), p);
    }
    assert.deepEqual(
      await listTree(dir),
      ['.mdl', '.msc', '.mv', 'README.md', 'config.json', 'empty.txt', 'model.safetensors', 'sub/tokenizer.json'],
      '.gitattributes dropped, no partials',
    );
    const msc = pyLoad(path.join(dir, '.msc')) as { Path: string; Revision: string }[];
    assert.deepEqual(
      msc.map((e) => `${e.Path}@${e.Revision}`).sort(),
      ['README.md', 'config.json', 'empty.txt', 'model.safetensors', 'sub/tokenizer.json'].map(
        (p) => `${p}@${fileRev(p)}`,
      ),
      'one entry per file, with the per-file Revision',
    );
    assert.ok(msc.every((e) => Object.keys(e).join() === 'Path,Revision'));
    assert.deepEqual(pyLoad(path.join(dir, '.mdl')), { id: `Qwen/${MASKED}` });
    assert.match(await fs.readFile(path.join(dir, '.mv'), 'utf8'), /^Revision:master,CreatedAt:\d+$/);
    // The dotted-name convenience link, like the SDK makes.
    assert.equal(await fs.readlink(path.join(cache, 'models', 'Qwen', 'Qwen2.5-0.5B')), dir);
    // Download URLs: quote_plus-encoded FilePath; bodies from the CDN; the empty file costs nothing.
    assert.ok(
      hub
        .findRequests({ host: 'ms' })
        .some((q) => q.path.endsWith(`FilePath=${quotePlus('sub/tokenizer.json')}`) && q.path.includes('%2F')),
    );
    assert.equal(fileGets(), 4);
    assert.equal(cdnGets(), 4);
    await assert.rejects(fs.access(path.join(cache, 'models', '._____temp')));
  });

  test('second run makes only the two metadata calls', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', `modelscope:${ID}`], env(cache))).code, 0);
    hub.resetRequests();
    const r = await runCli(['download', `modelscope:${ID}`, '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { downloadedBytes: number; files: { status: string }[] };
    assert.equal(out.downloadedBytes, 0);
    assert.ok(out.files.every((f) => f.status === 'cached'));
    assert.deepEqual(
      hub.requests.map((q) => q.path.replace(/\?.*/, '')),
      [`/api/v1/models/${ID}/revisions`, `/api/v1/models/${ID}/repo/files`],
    );
  });

  test('revision switch to a tag refetches only the files whose per-file revision changed', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', `modelscope:${ID}`], env(cache))).code, 0);
    hub.resetRequests();
    const r = await runCli(['download', `modelscope:${ID}`, '--revision', 'v1.0'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    const dir = r.stdout.trim();
    assert.deepEqual(await fs.readFile(path.join(dir, 'config.json')), bytes('config.json', 'v1.0'));
    assert.equal(cdnGets(), 1, 'only config.json changed between v1.0 and master');
    assert.ok(hub.findRequests({ host: 'ms', path: '/repo?' }).every((q) => q.path.includes('Revision=v1.0')));
    assert.match(await fs.readFile(path.join(dir, '.mv'), 'utf8'), /^Revision:v1\.0,CreatedAt:\d+$/);
    const msc = pyLoad(path.join(dir, '.msc')) as { Path: string; Revision: string }[];
    assert.equal(msc.filter((e) => e.Path === 'config.json').length, 1);
    assert.equal(msc.find((e) => e.Path === 'config.json')?.Revision, fileRev('config.json', 'v1.0'));
  });

  test('include/exclude are fnmatch globs, repeatable and comma-separated', async () => {
    const cache = await tempDir();
    hub.resetRequests();
    const r = await runCli(
      ['download', `modelscope:${ID}`, '--include', '*.json,*.md', '--exclude', 'sub/*'],
      env(cache),
    );
    assert.equal(r.code, 0, r.stderr);
    const dir = r.stdout.trim();
    assert.deepEqual(
      (await listTree(dir)).filter((p) => !p.startsWith('.')),
      ['README.md', 'config.json'],
    );
    assert.equal(cdnGets(), 2);
    const msc = pyLoad(path.join(dir, '.msc')) as { Path: string }[];
    assert.deepEqual(msc.map((e) => e.Path).sort(), ['README.md', 'config.json']);
  });

  test('--local-dir: files + .msc + .mv in the folder, no .mdl; a re-run downloads nothing', async () => {
    const cache = await tempDir();
    const local = path.join(await tempDir(), 'qwen');
    const r = await runCli(['download', `modelscope:${ID}`, '--local-dir', local], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), local);
    assert.deepEqual(await listTree(local), [
      '.msc',
      '.mv',
      'README.md',
      'config.json',
      'empty.txt',
      'model.safetensors',
      'sub/tokenizer.json',
    ]);
    assert.deepEqual(await fs.readFile(path.join(local, 'model.safetensors')), bytes('model.safetensors'));
    assert.equal((pyLoad(path.join(local, '.msc')) as unknown[]).length, 5);
    await assert.rejects(fs.access(path.join(cache, 'models')), 'nothing in the cache but the lock');
    hub.resetRequests();
    assert.equal((await runCli(['download', `modelscope:${ID}`, '--local-dir', local], env(cache))).code, 0);
    assert.equal(cdnGets(), 0);
  });

  test('a Python-written .msc is honoured; unindexed or stale-revision files are adopted by hash, wrong ones replaced', async () => {
    const cache = await tempDir();
    const dir = path.join(cache, 'models', 'Qwen', MASKED);
    await fs.mkdir(path.join(dir, 'sub'), { recursive: true });
    for (const p of ['config.json', 'model.safetensors', 'sub/tokenizer.json', 'README.md', 'empty.txt'])
      await fs.writeFile(path.join(dir, p), bytes(p));
    await fs.writeFile(path.join(dir, 'README.md'), '# corrupted');
    pyWriteMsc(path.join(dir, '.msc'), [
      { Path: 'config.json', Revision: fileRev('config.json') },
      { Path: 'model.safetensors', Revision: fileRev('model.safetensors').slice(0, 12) }, // short ids match, as in the SDK
      { Path: 'sub/tokenizer.json', Revision: '0'.repeat(40) }, // stale revision, right bytes
      { Path: 'README.md', Revision: '1'.repeat(40) }, // stale revision, same size? no: wrong bytes
    ]);
    assert.equal((await fs.readFile(path.join(dir, '.msc')))[1], 4, 'protocol 4, as CPython 3.8+ writes');
    hub.resetRequests();
    const r = await runCli(['download', `modelscope:${ID}`, '--json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { files: { path: string; status: string }[] };
    const status = Object.fromEntries(out.files.map((f) => [f.path, f.status]));
    assert.deepEqual(status, {
      'config.json': 'cached',
      'model.safetensors': 'cached',
      'sub/tokenizer.json': 'cached',
      'empty.txt': 'cached',
      'README.md': 'downloaded',
    });
    assert.equal(cdnGets(), 1);
    assert.deepEqual(await fs.readFile(path.join(dir, 'README.md')), bytes('README.md'));
    const msc = pyLoad(path.join(dir, '.msc')) as { Path: string; Revision: string }[];
    assert.equal(msc.length, 5);
    assert.equal(msc.find((e) => e.Path === 'sub/tokenizer.json')?.Revision, fileRev('sub/tokenizer.json'));
  });

  test('--ms-layout v2 writes snapshots/<revision>/; the legacy layout then copies from it without the network', async () => {
    const cache = await tempDir();
    const r = await runCli(['download', `modelscope:${ID}`, '--ms-layout', 'v2'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    const snap = path.join(cache, 'models', 'Qwen--Qwen2.5-0.5B', 'snapshots', 'master');
    assert.equal(r.stdout.trim(), snap);
    assert.deepEqual(await listTree(path.join(cache, 'models')), [
      'Qwen--Qwen2.5-0.5B/snapshots/master/README.md',
      'Qwen--Qwen2.5-0.5B/snapshots/master/config.json',
      'Qwen--Qwen2.5-0.5B/snapshots/master/empty.txt',
      'Qwen--Qwen2.5-0.5B/snapshots/master/model.safetensors',
      'Qwen--Qwen2.5-0.5B/snapshots/master/sub/tokenizer.json',
    ]);
    hub.resetRequests();
    assert.equal((await runCli(['download', `modelscope:${ID}`, '--ms-layout', 'v2'], env(cache))).code, 0);
    assert.equal(cdnGets(), 0, 'v2 files are recognised by hash');
    const v1 = await runCli(['download', `modelscope:${ID}`, '--json'], env(cache));
    assert.equal(v1.code, 0, v1.stderr);
    assert.equal(cdnGets(), 0, 'v1 copies from the v2 snapshot');
    const out = JSON.parse(v1.stdout) as { path: string; files: { status: string }[] };
    assert.ok(
      out.files.every((f) => f.status === 'copied' || f.status === 'downloaded'),
      JSON.stringify(out.files),
    );
    assert.deepEqual(await fs.readFile(path.join(out.path, 'model.safetensors')), bytes('model.safetensors'));
    assert.equal((pyLoad(path.join(out.path, '.msc')) as unknown[]).length, 5);
  });

  test('offline: served from .msc + files with no request; a missing file is named', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', `modelscope:${ID}`, '--include', '*.json'], env(cache))).code, 0);
    hub.resetRequests();
    const ok = await runCli(['download', `modelscope:${ID}`, 'config.json', '--offline'], env(cache));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), path.join(cache, 'models', 'Qwen', MASKED));
    const miss = await runCli(
      ['download', `modelscope:${ID}`, 'config.json', 'model.safetensors', '--offline', '--json'],
      env(cache),
    );
    assert.equal(miss.code, ExitCode.offlineMiss);
    assert.deepEqual((JSON.parse(miss.stderr.trim().split('\n').pop()!) as { missing: string[] }).missing, [
      'model.safetensors',
    ]);
    const none = await runCli(['download', 'modelscope:org/never', '--offline'], env(cache));
    assert.equal(none.code, ExitCode.offlineMiss);
    assert.equal(hub.requests.length, 0);
  });

  test('revisions: a bad name and a commit hash are refused with the valid names in the hint', async () => {
    const cache = await tempDir();
    const bad = await runCli(['download', `modelscope:${ID}`, '--revision', 'nope'], env(cache));
    assert.equal(bad.code, ExitCode.revisionNotFound, bad.stderr);
    assert.match(bad.stderr, /v1\.0/);
    const sha = await runCli(['download', `modelscope:${ID}`, '--revision', first], env(cache));
    assert.equal(sha.code, ExitCode.revisionNotFound);
    assert.match(sha.stderr, /commit hash/);
    await assert.rejects(fs.access(path.join(cache, 'models')));
  });

  test('unknown repo, unknown file, dry run', async () => {
    const cache = await tempDir();
    const repoMiss = await runCli(['download', 'modelscope:org/none'], env(cache));
    assert.equal(repoMiss.code, ExitCode.repoNotFound, repoMiss.stderr);
    const fileMiss = await runCli(['download', `modelscope:${ID}`, 'nope.bin'], env(cache));
    assert.equal(fileMiss.code, ExitCode.entryNotFound, fileMiss.stderr);
    assert.match(fileMiss.stderr, /nope\.bin/);
    hub.resetRequests();
    const dry = await runCli(['download', `modelscope:${ID}`, '--dry-run'], env(cache));
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /download +300\.0 kB +model\.safetensors/);
    assert.equal(cdnGets(), 0);
    assert.deepEqual(await listTree(cache), []);
  });

  test('a private repo needs a token, sent as cookie and Bearer to the API only', async () => {
    const cache = await tempDir();
    const denied = await runCli(['download', 'modelscope:org/private'], env(cache));
    assert.equal(denied.code, ExitCode.unauthorized, denied.stderr);
    assert.match(denied.stderr, /MODELSCOPE_API_TOKEN/);
    hub.resetRequests();
    const ok = await runCli(['download', 'modelscope:org/private'], env(cache, { MODELSCOPE_API_TOKEN: 'ms_good' }));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await fs.readFile(path.join(ok.stdout.trim(), 'a.txt'), 'utf8'), 'secret');
    assert.ok(
      hub
        .findRequests({ host: 'ms' })
        .every((q) => q.cookie === 'm_session_id=ms_good' && q.authorization === 'Bearer ms_good'),
    );
    const cdn = hub.findRequests({ host: 'cdn' });
    assert.equal(cdn.length, 1);
    assert.ok(
      cdn.every((q) => q.cookie === undefined && q.authorization === undefined),
      'no credentials to the CDN',
    );
    const flag = await runCli(
      ['download', 'modelscope:org/private', '--token', 'ms_good', '--local-dir', path.join(cache, 'ld')],
      env(cache),
    );
    assert.equal(flag.code, 0, flag.stderr);
  });

  test('hostile paths and malformed JSON are refused and nothing is written', async () => {
    const evil = hub.ms.createRepo('org/evil');
    evil.commit({ 'ok.txt': 'fine' });
    evil.injectRawEntries([{ path: '../../escape.txt', content: 'pwned' }]);
    const cache = await tempDir();
    const r = await runCli(['download', 'modelscope:org/evil'], env(cache));
    assert.equal(r.code, ExitCode.unsafePath, r.stderr);
    assert.match(r.stderr, /escape\.txt/);
    assert.deepEqual(await listTree(cache), []);
    await assert.rejects(fs.access(path.join(path.dirname(cache), 'escape.txt')));

    hub.faults.malformedJson({ match: '/repo/files' });
    const j = await runCli(['download', `modelscope:${ID}`], env(cache));
    assert.equal(j.code, ExitCode.server, j.stderr);
    assert.match(j.stderr, /Malformed JSON/);
    assert.deepEqual(await listTree(cache), []);
  });

  test('two concurrent downloads into one model dir: every .msc entry survives', async () => {
    const cache = await tempDir();
    const [a, b] = await Promise.all([
      runCli(['download', `modelscope:${ID}`, '--include', '*.json', '--max-workers', '1'], env(cache)),
      runCli(['download', `modelscope:${ID}`, '--exclude', '*.json', '--max-workers', '1'], env(cache)),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const msc = pyLoad(path.join(cache, 'models', 'Qwen', MASKED, '.msc')) as { Path: string }[];
    assert.deepEqual(msc.map((e) => e.Path).sort(), [
      'README.md',
      'config.json',
      'empty.txt',
      'model.safetensors',
      'sub/tokenizer.json',
    ]);
  });

  test('an interrupted download keeps its partial in .hubcache-partial (not at the target, not in ._____temp) and resumes', async () => {
    const cache = await tempDir();
    const dir = path.join(cache, 'models', 'Qwen', MASKED);
    const lib = Cache.at(cache, {
      modelscopeEndpoint: hub.msEndpoint,
      transfer: { staleAfterSeconds: 1, heartbeatIntervalMs: 100 },
    });
    hub.throttleBytesPerSec = 100_000;
    const ac = new AbortController();
    const run = lib.download({ repo: `modelscope:${ID}`, files: ['model.safetensors'], signal: ac.signal });
    let partial: string | undefined;
    for (let i = 0; i < 200 && !partial; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const names = await fs.readdir(path.join(dir, '.hubcache-partial')).catch(() => [] as string[]);
      for (const n of names)
        if (n.endsWith('.incomplete') && (await fs.stat(path.join(dir, '.hubcache-partial', n))).size > 50_000)
          partial = n;
    }
    ac.abort();
    await assert.rejects(run);
    hub.throttleBytesPerSec = undefined;
    assert.ok(partial, 'a partial appeared');
    await assert.rejects(fs.access(path.join(dir, 'model.safetensors')), 'nothing at the target path');
    await new Promise((r) => setTimeout(r, 1200)); // the interrupted writer is now stale
    hub.resetRequests();
    const res = await lib.download({ repo: `modelscope:${ID}`, files: ['model.safetensors'] });
    assert.deepEqual(await fs.readFile(path.join(dir, 'model.safetensors')), bytes('model.safetensors'));
    const ranges = hub.findRequests({ host: 'cdn' }).map((q) => q.range ?? '');
    assert.ok(
      ranges.some((r) => /^bytes=[1-9]\d*-/.test(r)),
      `resumed with a Range request: ${JSON.stringify(ranges)}`,
    );
    assert.ok(res.downloadedBytes > 0);
    await assert.rejects(fs.access(path.join(dir, '.hubcache-partial')), 'partial folder removed once empty');
    await lib.engine.close();
  });

  test('Code != 200 in an HTTP 200 answer is an error (the other way the hub reports a bad revision)', async () => {
    hub.ms.badRevisionStyle = 'code200';
    try {
      const client = new ModelScopeClient({ endpoint: hub.msEndpoint });
      const ref = { hub: 'modelscope' as const, type: 'model' as const, id: ID };
      await assert.rejects(
        client.listFiles(ref, 'gone'),
        (e: unknown) => e instanceof RevisionNotFoundError && /gone/.test(e.message),
      );
      assert.equal((await client.listFiles(ref, 'v1.0')).length, 5);
    } finally {
      hub.ms.badRevisionStyle = 'http404';
    }
  });
});
