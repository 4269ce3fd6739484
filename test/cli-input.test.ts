// Bad input gets one clear usage error (exit 2) before any request or write, and the spellings
// users of `hf` and `modelscope` type are understood (issue 11, items 13 and 15).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { listTree, runCli, spawnCli, tempDir } from './helpers.js';
import { AbortedError, ExitCode } from '../src/errors.js';
import { Cache } from '../src/cache.js';
import { parseRepoTarget } from '../src/hubs/repo-ref.js';
import { acquireLock } from '../src/locks/flock.js';
import { parseEndpoint } from '../src/cli/validate.js';

const CONFIG = Buffer.from('{"model_type":"demo"}\n');
const WEIGHTS = Buffer.alloc(200_000, 7);

describe('CLI input', () => {
  let hub: TestHub;
  let c1: string;
  before(async () => {
    hub = await startTestHub();
    const repo = hub.hf.createRepo('org/model');
    c1 = repo.commit({ 'config.json': CONFIG, 'model.safetensors': WEIGHTS, 'README.md': '# demo' });
    repo.tag('v1.0', c1);
    hub.hf.createRepo('org/data', { type: 'dataset' }).commit({ 'train.csv': 'a,b\n1,2\n' });
    hub.ms.createRepo('org/msmodel').commit({ 'config.json': CONFIG, 'weights.bin': WEIGHTS });
  });
  after(async () => hub.close());

  const env = (cache: string, extra: Record<string, string> = {}): Record<string, string> => ({
    HF_HUB_CACHE: cache,
    HF_ENDPOINT: hub.hfEndpoint,
    MODELSCOPE_CACHE: cache,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
    ...extra,
  });

  test('--max-workers, --connections and --concurrency take whole numbers: exit 2 naming the flag, no request', async () => {
    const cache = await tempDir();
    hub.resetRequests();
    for (const [flag, value] of [
      ['--max-workers', '0'],
      ['--max-workers', 'abc'],
      ['--max-workers', '1.5'],
      ['--connections', 'abc'],
      ['--connections', '0'],
      ['--connections', '257'],
    ]) {
      const r = await runCli(['download', 'org/model', flag!, value!], env(cache));
      assert.equal(r.code, ExitCode.usage, `${flag} ${value}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`error: ${flag} takes a whole number`), `${flag} ${value}`);
    }
    const inst = await runCli(
      ['install', '--max-workers', '0', '--manifest', path.join(cache, 'none.json')],
      env(cache),
    );
    assert.equal(inst.code, ExitCode.usage);
    assert.match(inst.stderr, /--max-workers takes a whole number/);
    const ver = await runCli(['verify', '--concurrency', 'x'], env(cache));
    assert.equal(ver.code, ExitCode.usage);
    assert.equal(hub.requests.length, 0, 'nothing was asked of the hub');
    assert.equal(
      (await runCli(['download', 'org/model', '--max-workers', '2', '--connections', '4'], env(cache))).code,
      0,
    );
  });

  test('--endpoint must be an http(s) URL with a host: exit 2 even when the cache could serve', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', 'org/model'], env(cache))).code, 0);
    hub.resetRequests();
    for (const bad of [
      'notaurl',
      'http://',
      'https://',
      'ftp://127.0.0.1/',
      'file:///etc',
      'http://user:pw@127.0.0.1',
    ]) {
      const r = await runCli(['download', 'org/model', '--endpoint', bad], env(cache));
      assert.equal(r.code, ExitCode.usage, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /error: --endpoint .* is not a hub URL/, bad);
      assert.doesNotMatch(r.stderr, /unreachable|api/, bad);
      const ms = await runCli(['download', 'modelscope:org/msmodel', '--endpoint', bad], env(cache));
      if (bad !== 'notaurl') assert.equal(ms.code, ExitCode.usage, `modelscope ${bad}: ${ms.stderr}`);
    }
    assert.equal(hub.requests.length, 0);
    const ok = await runCli(
      ['download', 'org/model', '--endpoint', `${hub.hfEndpoint}/`],
      env(cache, { HF_ENDPOINT: 'http://127.0.0.1:9' }),
    );
    assert.equal(ok.code, 0, ok.stderr);
    // The validator another command can reuse: bare domains only where ModelScope allows them.
    assert.equal(parseEndpoint('modelscope.cn', { bareHost: true }), 'https://modelscope.cn');
    assert.throws(() => parseEndpoint('modelscope.cn'), /not a hub URL/);
  });

  test('--include that matches nothing is an error naming the patterns (both hubs), nothing downloaded', async () => {
    const cache = await tempDir();
    const r = await runCli(
      ['download', 'org/model', '--include', '*.safetensor', '--include', 'tokenizer*'],
      env(cache),
    );
    assert.equal(r.code, ExitCode.usage, r.stderr);
    assert.match(r.stderr, /--include "\*\.safetensor" "tokenizer\*" select no file of org\/model/);
    assert.match(r.stderr, /hint: Patterns are fnmatch globs/);
    assert.deepEqual(
      (await listTree(cache)).filter((f) => f.includes('blobs/')),
      [],
    );
    const ex = await runCli(['download', 'org/model', '--exclude', '*'], env(cache));
    assert.equal(ex.code, ExitCode.usage);
    assert.match(ex.stderr, /--exclude "\*" select no file/);
    const ms = await runCli(['download', 'modelscope:org/msmodel', '--include', '*.safetensors'], env(cache));
    assert.equal(ms.code, ExitCode.usage, ms.stderr);
    assert.match(ms.stderr, /--include "\*\.safetensors" select no file of modelscope:org\/msmodel/);
    const ok = await runCli(['download', 'org/model', '--include', '*.json'], env(cache));
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('--local-dir that is a file, or empty, is a usage error; so is an empty --cache-dir', async () => {
    const cache = await tempDir();
    const file = path.join(cache, 'a-file');
    await fs.writeFile(file, 'keep me');
    const isFile = await runCli(['download', 'org/model', '--local-dir', file], env(cache));
    assert.equal(isFile.code, ExitCode.usage, isFile.stderr);
    assert.match(isFile.stderr, /--local-dir .*a-file exists and is not a folder/);
    assert.equal(await fs.readFile(file, 'utf8'), 'keep me');
    const empty = await runCli(['download', 'org/model', '--local-dir', ''], env(cache));
    assert.equal(empty.code, ExitCode.usage, empty.stderr);
    assert.match(empty.stderr, /--local-dir is empty/);
    const emptyCache = await runCli(['--cache-dir', '', 'download', 'org/model'], env(cache));
    assert.equal(emptyCache.code, ExitCode.usage);
    assert.deepEqual(await fs.readdir(cache), ['a-file'], 'nothing downloaded anywhere');
  });

  test('an unsafe --revision (or @revision) is a usage error, not "from the server"', async () => {
    const cache = await tempDir();
    hub.resetRequests();
    for (const args of [
      ['org/model', '--revision', '../../escape'],
      ['org/model', '--revision', '/abs'],
      ['org/model@a%2F..%2Fb'],
      ['org/model', '--revision', 'a//b'],
    ]) {
      const r = await runCli(['download', ...args], env(cache));
      assert.equal(r.code, ExitCode.usage, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /is not a valid revision/);
      assert.doesNotMatch(r.stderr, /from server/);
    }
    assert.equal(hub.requests.length, 0);
  });

  test('rm of a repo a download holds says so and exits 25 (in use); the repo stays', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', 'org/model'], env(cache))).code, 0);
    const lockDir = path.join(cache, '.locks', 'models--org--model');
    await fs.mkdir(lockDir, { recursive: true });
    const lock = await acquireLock(path.join(lockDir, 'deadbeef.lock'));
    try {
      const r = await spawnCli(['rm', 'org/model', '-y'], env(cache)).done;
      assert.equal(r.code, ExitCode.inUse, r.stderr);
      assert.match(r.stderr, /error: Not removed, a download is using it: org\/model/);
      assert.ok((await fs.readdir(path.join(cache, 'models--org--model', 'snapshots'))).includes(c1));
    } finally {
      await lock.release();
    }
    const again = await runCli(['rm', 'org/model', '-y'], env(cache));
    assert.equal(again.code, 0, again.stderr);
  });

  test('ls -f is --filter; rm takes hf cache ids model/org/name and dataset/org/name', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', 'org/model', 'config.json'], env(cache))).code, 0);
    assert.equal((await runCli(['download', 'datasets/org/data'], env(cache))).code, 0);
    const short = await runCli(['ls', '-f', 'type=dataset'], env(cache));
    const long = await runCli(['ls', '--filter', 'type=dataset'], env(cache));
    assert.equal(short.code, 0, short.stderr);
    assert.equal(short.stdout, long.stdout);
    assert.match(short.stdout, /org\/data/);
    assert.doesNotMatch(short.stdout, /org\/model/);
    const dry = await runCli(['rm', 'dataset/org/data', '--dry-run'], env(cache));
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /datasets\/org\/data/);
    assert.doesNotMatch(dry.stdout, /org\/model/);
    assert.equal((await runCli(['rm', 'model/org/model', '-y'], env(cache))).code, 0);
    assert.equal((await runCli(['rm', 'dataset/org/data', '-y'], env(cache))).code, 0);
    const left = await runCli(['ls'], env(cache));
    assert.match(left.stdout, /No cached repositories/);
  });

  test('hf:// URIs are read as huggingface_hub reads them', async () => {
    const t = (s: string) => parseRepoTarget(s);
    assert.deepEqual(t('hf://models/org/name@v1/sub/file.json'), {
      repo: { hub: 'hf', type: 'model', id: 'org/name', revision: 'v1' },
      pathInRepo: 'sub/file.json',
    });
    assert.deepEqual(t('hf://datasets/org/ds@refs/pr/3/train.json'), {
      repo: { hub: 'hf', type: 'dataset', id: 'org/ds', revision: 'refs/pr/3' },
      pathInRepo: 'train.json',
    });
    assert.deepEqual(t('hf://spaces/org/sp'), { repo: { hub: 'hf', type: 'space', id: 'org/sp' }, pathInRepo: '' });
    assert.deepEqual(t('hf://org/name/a@b.txt'), {
      repo: { hub: 'hf', type: 'model', id: 'org/name' },
      pathInRepo: 'a@b.txt',
    });
    assert.deepEqual(t('hf://org/name@feature%2Ffoo'), {
      repo: { hub: 'hf', type: 'model', id: 'org/name', revision: 'feature/foo' },
      pathInRepo: '',
    });
    assert.deepEqual(t('hf://org/name@main/onnx/'), {
      repo: { hub: 'hf', type: 'model', id: 'org/name', revision: 'main' },
      pathInRepo: 'onnx/',
    });
    assert.deepEqual(t('hf://org/name/'), { repo: { hub: 'hf', type: 'model', id: 'org/name' }, pathInRepo: '' });
    assert.throws(() => t('hf://model/org/x'), /must be plural/);
    assert.throws(() => t('hf://org/name@'), /Empty revision/);
    // end to end: the path after the revision is the file to fetch
    const cache = await tempDir();
    const r = await runCli(['download', 'hf://models/org/model@v1.0/config.json'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), path.join(cache, 'models--org--model', 'snapshots', c1));
    assert.deepEqual(await fs.readdir(r.stdout.trim()), ['config.json']);
  });

  test('modelscope spellings: --model, --local_dir, --cache_dir; --resume-download is a no-op with a note', async () => {
    const cache = await tempDir();
    const local = path.join(cache, 'local');
    const r = await runCli(
      ['download', '--model', 'modelscope:org/msmodel', 'config.json', '--local_dir', local],
      env(cache),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), local);
    assert.deepEqual(
      (await listTree(local)).filter((f) => !f.startsWith('.')),
      ['config.json'],
    );
    const other = await tempDir();
    const c = await runCli(
      ['--cache_dir', other, 'download', 'org/model', 'README.md', '--resume-download'],
      env(cache),
    );
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout.trim(), path.join(other, 'models--org--model', 'snapshots', c1));
    assert.match(c.stderr, /--resume-download is not needed/);
    const none = await runCli(['download', '--revision', 'main'], env(cache));
    assert.equal(none.code, ExitCode.usage);
    assert.match(none.stderr, /missing required argument 'repo'/);
  });

  test('path takes the repo id as well as the alias', async () => {
    const cache = await tempDir();
    const project = await tempDir('hubcache-project-');
    const manifest = path.join(project, 'hubcache.json');
    const cli = (...args: string[]) => runCli([...args, '--manifest', manifest], env(cache));
    assert.equal((await cli('init')).code, 0);
    assert.equal((await cli('add', 'org/model', '--as', 'main', '--include', '*.json')).code, 0);
    assert.equal((await cli('add', 'modelscope:org/msmodel', '--as', 'ms')).code, 0);
    const inst = await cli('install');
    assert.equal(inst.code, 0, inst.stderr);
    const byAlias = await cli('path', 'main', 'config.json');
    assert.equal(byAlias.code, 0, byAlias.stderr);
    const byId = await cli('path', 'org/model', 'config.json');
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal(byId.stdout, byAlias.stdout);
    assert.equal((await cli('path', 'modelscope:org/msmodel')).stdout, (await cli('path', 'ms')).stdout);
    assert.equal((await cli('path', 'other/repo')).code, ExitCode.manifest);
    assert.equal((await cli('add', 'org/model', '--as', 'again', '--include', '*.md')).code, 0);
    assert.equal((await cli('lock')).code, 0);
    const twice = await cli('path', 'org/model');
    assert.equal(twice.code, ExitCode.manifest);
    assert.match(twice.stderr, /locked by several entries: main, again|locked by several entries: again, main/);
  });

  test('verify --revision, --fail-on-missing-files, --fail-on-extra-files (as hf cache verify)', async () => {
    const cache = await tempDir();
    assert.equal((await runCli(['download', 'org/model', '--include', '*.json'], env(cache))).code, 0);
    for (const rev of ['main', c1.slice(0, 12)]) {
      const plain = await runCli(['verify', 'org/model', '--revision', rev], env(cache));
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stdout, /Checked 1 blob/);
    }
    const missing = await runCli(['verify', 'org/model', '--fail-on-missing-files'], env(cache));
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stdout, new RegExp(`missing-file org/model@${c1.slice(0, 12)}  README\\.md`));
    assert.match(missing.stdout, /missing-file .* {2}model\.safetensors/);
    await fs.writeFile(path.join(cache, 'models--org--model', 'snapshots', c1, 'notes.txt'), 'mine');
    const extra = await runCli(['verify', 'org/model', '--fail-on-extra-files'], env(cache));
    assert.equal(extra.code, 1, extra.stderr);
    assert.match(extra.stdout, /extra-file {3}org\/model@.* {2}notes\.txt/);
    assert.doesNotMatch(extra.stdout, /missing-file/);
    assert.equal((await runCli(['verify', '--revision', 'v1.0'], env(cache))).code, ExitCode.usage);
    assert.equal((await runCli(['verify', 'org/model', '--revision', 'nope'], env(cache))).code, ExitCode.usage);
    assert.equal((await runCli(['verify', 'org/model@v1.0', '--revision', 'v1.0'], env(cache))).code, ExitCode.usage);
  });

  test('verify REPO --local-dir DIR hashes the folder against the revision', async () => {
    const cache = await tempDir();
    const dir = path.join(cache, 'local');
    assert.equal((await runCli(['download', 'org/model', '--local-dir', dir], env(cache))).code, 0);
    const ok = await runCli(['verify', 'org/model', '--local-dir', dir], env(cache));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Checked 3 file\(s\) of org\/model@.* 3 ok, 0 problem/);
    await fs.writeFile(path.join(dir, 'config.json'), '{"model_type":"DEMO"}\n');
    await fs.rm(path.join(dir, 'README.md'));
    await fs.writeFile(path.join(dir, 'extra.txt'), 'x');
    const bad = await runCli(['verify', 'org/model', '--local-dir', dir], env(cache));
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stdout, /corrupt .*config\.json/);
    assert.match(bad.stderr, /1 file\(s\) of the revision are not in .*--fail-on-missing-files/);
    assert.match(bad.stderr, /1 file\(s\) in .* are not in the revision/);
    const listed = await runCli(
      ['verify', 'org/model', '--local-dir', dir, '--fail-on-missing-files', '--fail-on-extra-files'],
      env(cache),
    );
    assert.match(listed.stdout, /missing-file .* {2}README\.md/);
    assert.match(listed.stdout, /extra-file .* {2}extra\.txt/);
    assert.equal((await runCli(['verify', '--local-dir', dir], env(cache))).code, ExitCode.usage);
    assert.equal((await runCli(['verify', 'org/model', '--local-dir', dir, '--fix'], env(cache))).code, ExitCode.usage);
  });

  test('AbortedError keeps the abort reason as its cause', async () => {
    const cache = Cache.at(await tempDir(), { hfEndpoint: hub.hfEndpoint });
    const reason = new Error('caller gave up');
    const ac = new AbortController();
    ac.abort(reason);
    const err = await cache.download({ repo: 'org/model', signal: ac.signal }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof AbortedError, String(err));
    assert.equal(err.cause, reason);
    assert.equal(AbortedError.from(AbortSignal.abort('why')).cause, 'why');
  });

  test('Cache.at(dir, { env }) fixes the folder but keeps the environment token, endpoint and offline switch', async () => {
    const dir = await tempDir();
    const e = {
      HF_TOKEN: 'hf_env',
      HF_ENDPOINT: hub.hfEndpoint,
      HF_HUB_OFFLINE: '1',
      MODELSCOPE_API_TOKEN: 'ms_env',
      HF_HUB_CACHE: '/elsewhere',
    };
    const c = Cache.at(dir, { env: e });
    assert.equal(c.config.hf.cacheDir, dir);
    assert.equal(c.config.modelscope.cacheDir, dir);
    assert.equal(c.config.hf.token, 'hf_env');
    assert.equal(c.config.hf.endpoint, hub.hfEndpoint);
    assert.equal(c.config.hf.offline, true);
    assert.equal(c.config.modelscope.token, 'ms_env');
    const own = Cache.at(dir, { env: e, offline: false, hfToken: 'hf_mine' });
    assert.equal(own.config.hf.offline, false);
    assert.equal(own.config.hf.token, 'hf_mine');
    assert.equal(Cache.at(dir).config.hf.token, undefined, 'without env nothing is read from the environment');
  });
});
