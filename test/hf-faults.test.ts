// Downloads when things go wrong, end to end through the CLI: a Python process holding the blob
// lock, Ctrl-C and kill -9 mid-download, corrupt bytes, dropped connections, a huge header, and
// no symlink support. Each ends in a clear message and a cache that is still valid.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode } from '../src/errors.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { listTree, runCli, spawnCli, tempDir } from './helpers.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const WEIGHTS = Buffer.alloc(3_000_000);
for (let i = 0; i < WEIGHTS.length; i++) WEIGHTS[i] = (i * 31 + (i >> 9)) & 0xff;

async function blobsOf(cache: string, repo: string): Promise<string[]> {
  return fs.readdir(path.join(cache, `models--${repo.replace('/', '--')}`, 'blobs')).catch(() => []);
}

describe('hf download under faults', () => {
  let hub: TestHub;
  let slow: TestHub;
  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/w').commit({ 'config.json': '{}', 'model.safetensors': WEIGHTS });
    // 2 MB/s per connection: a 3 MB file takes long enough to interrupt.
    slow = await startTestHub({ throttleBytesPerSec: 2_000_000 });
    slow.hf.createRepo('org/w').commit({ 'config.json': '{}', 'model.safetensors': WEIGHTS });
  });
  after(async () => {
    await hub.close();
    await slow.close();
  });
  const env = (h: TestHub, cache: string, extra: Record<string, string> = {}): Record<string, string> => ({
    HF_HUB_CACHE: cache,
    HF_ENDPOINT: h.hfEndpoint,
    ...extra,
  });

  test('a Python process holding the blob lock makes hubcache wait, then it finishes', async () => {
    const cache = await tempDir();
    const lock = path.join(cache, '.locks', 'models--org--w', `${sha256(WEIGHTS)}.lock`);
    await fs.mkdir(path.dirname(lock), { recursive: true });
    const py = spawn(
      'python3',
      [
        '-c',
        `import fcntl,sys,time\nf=open(${JSON.stringify(lock)},'w')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(1.5)`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => py.stdout.once('data', () => resolve()));
    const started = Date.now();
    const r = await runCli(['download', 'org/w'], env(hub, cache));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - started >= 1000, `waited for the Python lock (${Date.now() - started} ms)`);
    assert.deepEqual(await fs.readFile(path.join(r.stdout.trim(), 'model.safetensors')), WEIGHTS);
  });

  test('Ctrl-C stops cleanly (exit 130, partial kept, nothing half-visible); the next run resumes', async () => {
    const cache = await tempDir();
    slow.resetRequests();
    const child = spawnCli(['download', 'org/w', '--connections', '1'], env(slow, cache));
    await child.stderrMatches(/files, \d+ to download/); // the plan is out: SIGINT is handled now
    await sleep(600);
    child.kill('SIGINT');
    const r = await child.done;
    assert.equal(r.code, ExitCode.interrupted, r.stderr);
    assert.match(r.stderr, /Interrupted/);
    const blobs = await blobsOf(cache, 'org/w');
    assert.ok(!blobs.includes(sha256(WEIGHTS)), 'no finished-looking blob');
    assert.ok(
      blobs.some((b) => b.endsWith('.incomplete')),
      `partial kept: ${blobs}`,
    );
    const before = slow.requests.filter((q) => q.host === 'cdn').reduce((s, q) => s + q.bytesSent, 0);
    const again = await runCli(['download', 'org/w'], env(slow, cache));
    assert.equal(again.code, 0, again.stderr);
    const total = slow.requests.filter((q) => q.host === 'cdn').reduce((s, q) => s + q.bytesSent, 0);
    assert.ok(total - before < WEIGHTS.length, `resumed: fetched ${total - before} of ${WEIGHTS.length} bytes`);
    assert.deepEqual(await fs.readFile(path.join(again.stdout.trim(), 'model.safetensors')), WEIGHTS);
  });

  test('kill -9 mid-download: the cache stays valid and the next run completes', async () => {
    const cache = await tempDir();
    const child = spawnCli(['download', 'org/w'], env(slow, cache));
    await child.stderrMatches(/files, \d+ to download/);
    await sleep(500);
    child.kill('SIGKILL');
    await child.done;
    const snapDir = path.join(cache, 'models--org--w', 'snapshots');
    for (const f of await listTree(snapDir).catch(() => [] as string[])) {
      // whatever is visible in a snapshot is complete
      const content = await fs.readFile(path.join(snapDir, f));
      if (f.endsWith('model.safetensors')) assert.deepEqual(content, WEIGHTS);
    }
    const again = await runCli(['download', 'org/w'], env(slow, cache));
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await fs.readFile(path.join(again.stdout.trim(), 'model.safetensors')), WEIGHTS);
    assert.ok((await blobsOf(cache, 'org/w')).every((b) => !b.endsWith('.incomplete')));
  });

  test('corrupt bytes from the CDN every time: IntegrityError naming both hashes, nothing committed', async () => {
    const cache = await tempDir();
    const fault = hub.faults.corruptBytes({ times: Infinity, host: 'cdn' });
    try {
      const r = await runCli(['download', 'org/w', 'model.safetensors'], env(hub, cache));
      assert.equal(r.code, ExitCode.integrity, r.stderr);
      assert.match(r.stderr, new RegExp(`model\\.safetensors.*expected ${sha256(WEIGHTS)}, got [0-9a-f]{64}`));
      assert.ok(!(await blobsOf(cache, 'org/w')).includes(sha256(WEIGHTS)));
    } finally {
      fault.cancel();
    }
  });

  test('a dropped connection mid-body is retried and the file completes', async () => {
    const cache = await tempDir();
    const fault = hub.faults.dropAfterBytes(100_000, { times: 2, host: 'cdn' });
    try {
      const r = await runCli(['download', 'org/w'], env(hub, cache));
      assert.equal(r.code, 0, r.stderr);
      assert.ok(fault.hits >= 1, 'the fault fired');
      assert.deepEqual(await fs.readFile(path.join(r.stdout.trim(), 'model.safetensors')), WEIGHTS);
    } finally {
      fault.cancel();
    }
  });

  test('a huge response header is refused with a clear error', async () => {
    const cache = await tempDir();
    const fault = hub.faults.hugeHeader({ times: Infinity, match: '/api/' });
    try {
      const r = await runCli(['download', 'org/w'], env(hub, cache));
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /^error: .*header/im);
    } finally {
      fault.cancel();
    }
  });

  test('HF_HUB_DISABLE_SYMLINKS=1: real files in the snapshot, like huggingface_hub', async () => {
    const cache = await tempDir();
    const r = await runCli(['download', 'org/w'], env(hub, cache, { HF_HUB_DISABLE_SYMLINKS: '1' }));
    assert.equal(r.code, 0, r.stderr);
    const st = await fs.lstat(path.join(r.stdout.trim(), 'model.safetensors'));
    assert.ok(st.isFile() && !st.isSymbolicLink());
    assert.deepEqual(await fs.readFile(path.join(r.stdout.trim(), 'model.safetensors')), WEIGHTS);
    // a fresh download is moved into the snapshot, so blobs/ does not keep a second copy
    assert.ok(!(await blobsOf(cache, 'org/w')).includes(sha256(WEIGHTS)));
    const again = await runCli(['download', 'org/w'], env(hub, cache, { HF_HUB_DISABLE_SYMLINKS: '1' }));
    assert.equal(again.code, 0, again.stderr);
  });
});
