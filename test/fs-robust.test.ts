// Downloads against hostile or unusual local file systems, through the CLI as a real process:
// places that take no files (/proc), a file system call that never returns, signals, a complete
// cache the user cannot write (another user's, umask 022), and repo paths deeper than a file name.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ExitCode } from '../src/errors.js';
import { ModelScopeCache } from '../src/layouts/modelscope-cache.js';
import { mkdirp } from '../src/util/fs.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { ROOT, runCli, spawnCli, tempDir, type CliResult } from './helpers.js';

/** A hang detector, not a timing assertion: the defects under test never end at all. */
const HANG_MS = 60_000;

async function endsOrKilled(child: ReturnType<typeof spawnCli>): Promise<CliResult | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_MS)));
  const r = await Promise.race([child.done, hung]);
  clearTimeout(timer);
  if (r === 'hung') child.kill('SIGKILL');
  return r;
}

/** Runs the CLI as the unprivileged user `nobody` (root ignores file permissions), or says why it cannot. */
function asNobody(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to switch to an unprivileged user';
  try {
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'true']);
  } catch {
    return 'setpriv is not available';
  }
  return undefined;
}

const QWEN = 'Qwen/Qwen2.5-0.5B';
const QWEN_FILES = {
  'config.json': '{"v":1}',
  'model.safetensors': { size: 300_000, seed: 9 },
  'sub/tokenizer.json': 'tok',
};
const DEEP = ['a'.repeat(200), 'b'.repeat(200), `${'c'.repeat(196)}.bin`].join('/');

describe('downloads on unusual file systems', () => {
  let hub: TestHub;
  let hfCommit: string;
  const WEIGHTS = { size: 400_000, seed: 3 };
  before(async () => {
    hub = await startTestHub();
    hfCommit = hub.hf.createRepo('org/w').commit({ 'config.json': '{}', 'model.safetensors': WEIGHTS });
    hub.ms.createRepo('org/w').commit({ 'config.json': '{}', 'model.safetensors': WEIGHTS });
    hub.ms.createRepo('org/deep').commit({ 'config.json': '{}', [DEEP]: 'deep weights' });
    hub.ms.createRepo(QWEN).commit(QWEN_FILES);
    hub.hf.createRepo('org/long').commit({ 'config.json': '{}', [`${'n'.repeat(300)}.txt`]: 'x' });
  });
  after(async () => {
    await hub.close();
  });
  const env = (cache: string): Record<string, string> => ({
    HF_HUB_CACHE: cache,
    MODELSCOPE_CACHE: cache,
    HF_ENDPOINT: hub.hfEndpoint,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
  });

  test("mkdirp ends under /proc (Node's recursive mkdir spins there forever) and passes other errors on", async () => {
    await assert.rejects(mkdirp('/proc/hubcache-x/y'), { code: 'ENOENT' });
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'file'), '');
    await assert.rejects(mkdirp(path.join(dir, 'file', 'sub')), { code: 'ENOTDIR' });
    await assert.rejects(mkdirp(path.join(dir, 'file')), { code: 'EEXIST' });
    await mkdirp(path.join(dir, 'a', 'b', 'c'));
    await mkdirp(path.join(dir, 'a', 'b'));
    assert.ok((await fs.stat(path.join(dir, 'a', 'b', 'c'))).isDirectory());
  });

  for (const [what, args] of [
    ['HF --local-dir /proc/x', ['download', 'org/w', '--local-dir', '/proc/hubcache-x']],
    ['HF --cache-dir /proc/y', ['download', 'org/w', '--cache-dir', '/proc/hubcache-y']],
    ['ModelScope --local-dir /proc/x', ['download', 'modelscope:org/w', '--local-dir', '/proc/hubcache-x']],
    ['ModelScope --cache-dir /proc/y', ['download', 'modelscope:org/w', '--cache-dir', '/proc/hubcache-y']],
  ] as const) {
    test(`${what}: a typed error naming the folder and the flag, no spinning`, async () => {
      const cache = await tempDir();
      const r = await endsOrKilled(spawnCli([...args], env(cache)));
      assert.notEqual(r, 'hung', 'the process ended by itself');
      if (r === 'hung') return;
      assert.equal(r.code, ExitCode.localPath, r.stderr);
      assert.match(r.stderr, /error: Cannot use \/proc\/hubcache-[xy] \(ENOENT/);
      assert.match(
        r.stderr,
        (args as readonly string[]).includes('--local-dir')
          ? /hint: Point --local-dir at another folder/
          : /hint: Point .*--cache-dir at another folder/,
      );
    });
  }

  test('a cache folder below a file: LocalPathError (ENOTDIR) naming the variables, not a raw message', async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'file'), '');
    const r = await runCli(['download', 'org/w'], { ...env(path.join(dir, 'file', 'cache')) });
    assert.equal(r.code, ExitCode.localPath, r.stderr);
    assert.match(r.stderr, /Cannot use .*file.* \(ENOTDIR: a part of the path is a file/);
    assert.match(r.stderr, /hint: Point HF_HUB_CACHE \(or HF_HOME\) or --cache-dir at another folder/);
  });

  test('a repo file whose name no file system takes (300 chars): LocalPathError (ENAMETOOLONG), exit 24', async () => {
    const r = await runCli(['download', 'org/long'], env(await tempDir()));
    assert.equal(r.code, ExitCode.localPath, r.stderr);
    assert.match(
      r.stderr,
      /error: Cannot use \S*n{300}\.txt \(ENAMETOOLONG: a name in it is too long for the file system\)/,
    );
    assert.doesNotMatch(r.stderr, /ENAMETOOLONG: name too long/, 'no raw system message');
  });

  test('SIGTERM during a stalled download: "Interrupted", exit 130, the partial kept', async () => {
    const cache = await tempDir();
    const stall = hub.faults.stallAfterBytes(50_000, { times: Infinity, host: 'cdn' });
    try {
      const child = spawnCli(['download', 'org/w', 'model.safetensors'], env(cache));
      await child.stderrMatches(/to download/);
      while (!hub.requests.some((q) => q.host === 'cdn' && q.outcome === 'stalled'))
        await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGTERM');
      const r = await endsOrKilled(child);
      assert.notEqual(r, 'hung');
      if (r === 'hung') return;
      assert.equal(r.code, ExitCode.interrupted, r.stderr);
      assert.match(r.stderr, /Interrupted: stopping/);
      const blobs = await fs.readdir(path.join(cache, 'models--org--w', 'blobs'));
      assert.ok(
        blobs.every((b) => b.endsWith('.incomplete')),
        `nothing half-done looks done: ${blobs}`,
      );
    } finally {
      stall.cancel();
    }
  });

  test('SIGTERM while a file system call never returns (a FIFO where trees/<commit>.json goes): the process still ends', async () => {
    const cache = await tempDir();
    const trees = path.join(cache, 'models--org--w', 'trees');
    await fs.mkdir(trees, { recursive: true });
    execFileSync('mkfifo', [path.join(trees, `${hfCommit}.json`)]); // reading it blocks a pool thread forever
    hub.resetRequests();
    const child = spawnCli(['download', 'org/w'], env(cache));
    while (!hub.requests.some((q) => q.host === 'hf' && q.path.includes('/tree/') && q.outcome === 'complete'))
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // the answer is in; the read of the FIFO is stuck
    child.kill('SIGTERM');
    const r = await endsOrKilled(child);
    assert.notEqual(r, 'hung', 'ended after SIGTERM');
    if (r === 'hung') return;
    // Ended by the signal's default action once the grace second is over (exit() would wait for the stuck thread).
    assert.equal(r.signal, 'SIGTERM', r.stderr);
    assert.match(r.stderr, /Interrupted: stopping/);
  });

  test("a complete cache this user cannot write (another user's, umask 022) still serves; a needed write is NotWritableError", async (t) => {
    const why = asNobody();
    if (why) return t.skip(why);
    const cache = await tempDir();
    await fs.chmod(cache, 0o755);
    for (const repo of ['org/w', 'modelscope:org/w'])
      assert.equal((await runCli(['download', repo], env(cache))).code, 0);
    const before = execFileSync('find', [cache, '-printf', '%p %s %T@\\n']).toString();
    const nobody = async (args: string[]): Promise<string> => {
      const vars = Object.entries({ ...env(cache), HOME: '/tmp', PATH: process.env.PATH ?? '' }).map(
        ([k, v]) => `${k}=${v}`,
      );
      const cli = [process.execPath, '--import', 'tsx', path.join(ROOT, 'test/fixtures/cli-child.ts'), ...args];
      const child = spawn(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-i', ...vars, ...cli],
        { cwd: ROOT },
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      return `${code}\n${out}`;
    };
    // Hub reachable: trees/<commit>.json, refs/main, .mdl, .mv, .msc are all already right.
    const hf = await nobody(['download', 'org/w']);
    assert.match(hf, /^0\n.*models--org--w\/snapshots\//s, hf);
    const ms = await nobody(['download', 'modelscope:org/w']);
    assert.match(ms, /^0\n.*models\/org\/w/s, ms);
    assert.equal(execFileSync('find', [cache, '-printf', '%p %s %T@\\n']).toString(), before, 'nothing was written');
    // A write that is needed: its own exit code, the folder, and what to change.
    const forced = await nobody(['download', 'org/w', '--force-download']);
    assert.match(forced, new RegExp(`^${ExitCode.notWritable}\\n`), forced);
    assert.match(forced, new RegExp(`error: Cannot write in ${cache}/\\S+ \\(EACCES: permission denied\\)`));
    assert.match(
      forced,
      /hint: Point HF_HUB_CACHE \(or HF_HOME\) or --cache-dir at another folder \(one you can write\)/,
    );
    const msForced = await nobody(['download', 'modelscope:org/w', '--force-download']);
    assert.match(msForced, new RegExp(`^${ExitCode.notWritable}\\n`), msForced);
    assert.match(msForced, /hint: Point MODELSCOPE_CACHE or --cache-dir at another folder/);
  });

  test('a ModelScope repo path deeper than a file name (3 × 200 chars): the per-file lock name is hashed and the download completes', async () => {
    const cache = await tempDir();
    const r = await runCli(['download', 'modelscope:org/deep'], env(cache));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fs.readFile(path.join(r.stdout.trim(), DEEP), 'utf8'), 'deep weights');
    const lock = new ModelScopeCache(cache).v2LockPath('org/deep', DEEP);
    assert.ok(Buffer.byteLength(path.basename(lock)) <= 255, path.basename(lock));
    assert.ok(path.basename(lock).startsWith('model_org___deep_aaaa'), "keeps the SDK name's readable start");
    const digest = createHash('sha256').update(`org/deep\0${DEEP}`).digest('hex').slice(0, 32);
    assert.ok(lock.endsWith(`_${digest}.lock`));
    assert.ok((await fs.readdir(path.dirname(lock))).includes(path.basename(lock)), 'the download took that lock');
    // A short path keeps the SDK's own name, so hubcache and modelscope_hub still exclude each other.
    assert.equal(
      path.basename(new ModelScopeCache(cache).v2LockPath('org/deep', 'sub/a.bin')),
      'model_org___deep_sub___a_bin.lock',
    );
  });

  test('weights copied under the readable name (Qwen2.5-0.5B): doctor advises import of that folder; import leaves the SDK link; ls lists it once', async () => {
    const cache = await tempDir();
    const readable = path.join(cache, 'models', 'Qwen', 'Qwen2.5-0.5B');
    const q = await tempDir();
    assert.equal((await runCli(['download', `modelscope:${QWEN}`, '--local-dir', q], env(await tempDir()))).code, 0);
    for (const f of Object.keys(QWEN_FILES)) {
      await fs.mkdir(path.dirname(path.join(readable, f)), { recursive: true });
      await fs.copyFile(path.join(q, f), path.join(readable, f)); // copied by hand: no .msc, no .mdl
    }
    const doc = await runCli(['doctor', '--offline'], env(cache));
    assert.match(
      doc.stdout + doc.stderr,
      /modelscope:Qwen\/Qwen2\.5-0\.5B: 3 file\(s\) without a \.msc entry.*: config\.json, model\.safetensors, sub\/tokenizer\.json/,
    );
    assert.match(
      doc.stdout + doc.stderr,
      new RegExp(`fix: hubcache import ${readable.replace(/[.]/g, '\\.')} --repo modelscope:Qwen/Qwen2\\.5-0\\.5B`),
    );
    assert.doesNotMatch(doc.stdout + doc.stderr, /fix: hubcache download modelscope:Qwen/);

    const imp = await runCli(['import', readable, '--repo', `modelscope:${QWEN}`], env(cache));
    assert.equal(imp.code, 0, imp.stderr);
    const masked = path.join(cache, 'models', 'Qwen', 'Qwen2___5-0___5B');
    assert.ok((await fs.lstat(readable)).isSymbolicLink(), "the readable name is the SDK's convenience link now");
    assert.equal(path.resolve(path.dirname(readable), await fs.readlink(readable)), masked);
    for (const f of Object.keys(QWEN_FILES))
      assert.deepEqual(await fs.readFile(path.join(masked, f)), await fs.readFile(path.join(q, f)));
    assert.ok((await fs.stat(path.join(masked, '.msc'))).isFile());

    const ls = await runCli(['ls'], env(cache));
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.split('\n').filter((l) => l.includes('Qwen/Qwen2.5-0.5B')).length, 1, ls.stdout);
    const after = await runCli(['doctor', '--offline'], env(cache));
    assert.doesNotMatch(after.stdout + after.stderr, /without a \.msc entry/);
  });
});
