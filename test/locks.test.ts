// Cross-process locks against real processes: Python's fcntl.flock (what filelock/huggingface_hub
// use) and other Node processes running hubcache's lock code.
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AbortedError } from '../src/errors.js';
import {
  acquireLock,
  isLocked,
  LockTimeoutError,
  lockingAvailable,
  lockingUnavailableReason,
  setLocksDisabled,
  setSoftLocksForced,
  tryAcquireLock,
} from '../src/locks/flock.js';

const execFileP = promisify(execFile);
const fixture = fileURLToPath(new URL('./fixtures/lock-child.ts', import.meta.url));
const posix = process.platform !== 'win32';
const hasFlock = lockingAvailable();
const needFlock = hasFlock ? false : `flock addon not loaded (${lockingUnavailableReason()})`;

const PY_HOLD = `
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o664)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_UN)
os.close(fd)
`;
const PY_TRY = `
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o664)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("acquired")
except BlockingIOError:
    print("BlockingIOError")
`;

let dir: string;
let n = 0;
const children: ChildProcessWithoutNullStreams[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hubcache-locks-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  setLocksDisabled(false);
  setSoftLocksForced(false);
});

/** A fresh lock path in a not-yet-existing folder (acquireLock must mkdir -p it). */
function lockPath(): string {
  return join(dir, `.locks/models--org--repo${++n}`, 'etag.lock');
}

function track(child: ChildProcessWithoutNullStreams): ChildProcessWithoutNullStreams {
  children.push(child);
  child.stderr.setEncoding('utf8');
  let stderr = '';
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  child.on('exit', (code, sig) => {
    if (code !== 0 && code !== null && sig === null) process.stderr.write(`child failed (${code}):\n${stderr}`);
  });
  return child;
}

/** Resolves once the child printed `line` (rejects if it exits first). */
async function waitForLine(child: ChildProcessWithoutNullStreams, line: string): Promise<void> {
  child.stdout.setEncoding('utf8');
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: string): void => {
      buffered += chunk;
      if (buffered.split('\n').includes(line)) {
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`child exited (${code}) before "${line}"`));
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

async function pythonHolding(path: string): Promise<ChildProcessWithoutNullStreams> {
  const child = track(spawn('python3', ['-c', PY_HOLD, path]));
  await waitForLine(child, 'locked');
  return child;
}

async function pythonTry(path: string): Promise<string> {
  const { stdout } = await execFileP('python3', ['-c', PY_TRY, path]);
  return stdout.trim();
}

function nodeChild(...args: string[]): ChildProcessWithoutNullStreams {
  return track(spawn(process.execPath, ['--import', 'tsx', fixture, ...args]));
}

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('flock locks', () => {
  test('native addon is built and loaded', { skip: !posix && 'no flock on Windows' }, () => {
    assert.ok(hasFlock, `run \`npm run install\` to build the addon: ${lockingUnavailableReason()}`);
  });

  test('waits while a Python process holds flock, gets it right after release', { skip: needFlock }, async () => {
    const path = lockPath();
    await acquireLock(path).then((l) => l.release()); // creates the folder for python
    const py = await pythonHolding(path);
    const waits: number[] = [];
    let acquiredAt = 0;
    const pending = acquireLock(path, { onWait: (ms) => waits.push(ms), onWaitIntervalMs: 100 }).then((lock) => {
      acquiredAt = performance.now();
      return lock;
    });
    await sleep(350);
    assert.equal(acquiredAt, 0, 'acquired while Python held the lock');
    assert.ok(waits.length >= 2, `onWait called ${waits.length} times`);
    assert.ok(waits.every((ms, i) => i === 0 || ms > (waits[i - 1] ?? 0)));
    const releasedAt = performance.now();
    py.stdin.end('\n');
    const lock = await pending;
    assert.equal(lock.kind, 'flock');
    assert.ok(acquiredAt - releasedAt < 1000, `took ${acquiredAt - releasedAt} ms after release`);
    await lock.release();
  });

  test('Python cannot take the lock while hubcache holds it', { skip: needFlock }, async () => {
    const path = lockPath();
    const lock = await acquireLock(path);
    assert.equal(await pythonTry(path), 'BlockingIOError');
    await lock.release();
    assert.equal(lock.released, true);
    await lock.release(); // idempotent
    assert.ok(existsSync(path), 'lock file is left on disk like Python does');
    assert.equal((await stat(path)).mode & 0o777, 0o664);
    assert.equal(await pythonTry(path), 'acquired');
  });

  test('await using releases the lock', { skip: needFlock }, async () => {
    const path = lockPath();
    {
      await using lock = await acquireLock(path);
      assert.equal(lock.kind, 'flock');
      assert.equal(await tryAcquireLock(path), null, 'a second open file description must conflict');
    }
    const again = await tryAcquireLock(path);
    assert.ok(again);
    await again.release();
  });

  test('two Node processes are mutually exclusive', { skip: needFlock }, async () => {
    const path = lockPath();
    const shared = join(dir, 'shared.log');
    const iterations = 12;
    const kids = ['A', 'B'].map((id) => nodeChild('contend', path, shared, id, String(iterations)));
    await Promise.all(kids.map((k) => waitForLine(k, 'ready')));
    const done = kids.map((k) => waitForLine(k, 'done'));
    for (const k of kids) k.stdin.write('go\n');
    await Promise.all(done);
    const lines = (await readFile(shared, 'utf8')).trim().split('\n');
    assert.equal(lines.length, 2 * 2 * iterations);
    for (let i = 0; i < lines.length; i += 2) {
      const id = lines[i]?.split(' ')[0];
      assert.deepEqual([lines[i], lines[i + 1]], [`${id} start`, `${id} end`], `interleaved at line ${i}`);
    }
    // Make sure they really contended (rather than running one after the other).
    const owners = lines.filter((_, i) => i % 2 === 0).map((l) => l.split(' ')[0]);
    const switches = owners.filter((o, i) => i > 0 && o !== owners[i - 1]).length;
    assert.ok(switches >= 2, `lock changed hands only ${switches} times: ${owners.join('')}`);
  });

  test('abort while waiting throws AbortedError and leaks no fd', { skip: needFlock }, async () => {
    const path = lockPath();
    await acquireLock(path).then((l) => l.release());
    const py = await pythonHolding(path);
    const fdsBefore = existsSync('/proc/self/fd') ? openFdCount() : -1;
    const controller = new AbortController();
    const pending = acquireLock(path, { signal: controller.signal });
    await sleep(120);
    const abortedAt = performance.now();
    controller.abort();
    await assert.rejects(pending, AbortedError);
    assert.ok(performance.now() - abortedAt < 100, 'abort is prompt, not after the next poll');
    if (fdsBefore >= 0) assert.equal(openFdCount(), fdsBefore);
    await assert.rejects(acquireLock(path, { signal: AbortSignal.abort() }), AbortedError);
    const timedOut = await acquireLock(path, { timeoutMs: 150 }).catch((err: unknown) => err);
    assert.ok(timedOut instanceof LockTimeoutError);
    assert.ok(timedOut.waitedMs >= 150 && timedOut.waitedMs < 600, `waited ${timedOut.waitedMs}`);
    py.stdin.end('\n');
  });

  test('a lock held by a SIGKILLed process is free immediately', { skip: needFlock }, async () => {
    const path = lockPath();
    const holder = nodeChild('hold', path);
    await waitForLine(holder, 'locked');
    assert.equal(await tryAcquireLock(path), null);
    assert.equal(await isLocked(path), true);
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    const lock = await tryAcquireLock(path);
    assert.ok(lock, 'kernel dropped the flock of the killed process');
    await lock.release();
  });

  test('isLocked', { skip: needFlock }, async () => {
    const path = lockPath();
    assert.equal(await isLocked(path), false, 'missing file is not locked');
    await acquireLock(path).then((l) => l.release());
    assert.equal(await isLocked(path), false);
    const py = await pythonHolding(path);
    assert.equal(await isLocked(path), true);
    py.stdin.end('\n');
    await once(py, 'exit');
    assert.equal(await isLocked(path), false);
    const ours = await acquireLock(path);
    assert.equal(await isLocked(path), true, 'flock is per open file: our own lock counts too');
    await ours.release();
    // isLocked's probe must not get in the way of a real locker.
    assert.equal(await pythonTry(path), 'acquired');
  });

  test('setLocksDisabled returns a no-op lock even while Python holds it', { skip: needFlock }, async () => {
    const path = lockPath();
    await acquireLock(path).then((l) => l.release());
    const py = await pythonHolding(path);
    setLocksDisabled(true);
    const lock = await acquireLock(path, { timeoutMs: 50 });
    assert.equal(lock.kind, 'none');
    assert.equal(await isLocked(path), false);
    await lock.release();
    py.stdin.end('\n');
  });
});

describe('soft lock fallback', () => {
  test('excludes, releases, and leaves flock path alone', async () => {
    setSoftLocksForced(true);
    assert.equal(lockingAvailable(), false);
    const path = lockPath();
    const lock = await acquireLock(path);
    assert.equal(lock.kind, 'soft');
    const owner: unknown = JSON.parse(await readFile(`${path}.soft`, 'utf8'));
    assert.ok(typeof owner === 'object' && owner !== null && 'pid' in owner && owner.pid === process.pid);
    assert.equal(await tryAcquireLock(path), null);
    assert.equal(await isLocked(path), true);
    await lock.release();
    assert.equal(existsSync(`${path}.soft`), false);
    assert.equal(await isLocked(path), false);
  });

  test('breaks stale soft locks (dead pid on this host, or not refreshed for 10 min)', async () => {
    setSoftLocksForced(true);
    const { hostname } = await import('node:os');
    // A pid that certainly belonged to a now-dead process.
    const dead = spawn(process.execPath, ['-e', '']);
    await once(dead, 'exit');
    const path = lockPath();
    await acquireLock(path).then((l) => l.release()); // creates the folder
    const soft = `${path}.soft`;

    await writeFile(soft, JSON.stringify({ pid: dead.pid, hostname: hostname(), time: Date.now() }));
    const a = await tryAcquireLock(path);
    assert.ok(a, 'dead pid on this host is stale');
    await a.release();

    await writeFile(soft, JSON.stringify({ pid: 1, hostname: 'elsewhere', time: Date.now() }));
    assert.equal(await tryAcquireLock(path), null, 'fresh lock of another host is respected');
    assert.equal(await isLocked(path), true);
    const old = new Date(Date.now() - 11 * 60_000);
    await utimes(soft, old, old);
    assert.equal(await isLocked(path), false);
    const b = await acquireLock(path, { timeoutMs: 500 });
    assert.equal(b.kind, 'soft');
    await b.release();
    assert.deepEqual(
      readdirSync(join(path, '..')).filter((f) => f.includes('.soft')),
      [],
      'no leftovers from breaking',
    );
  });

  test('a soft lock of a live process is respected until it is SIGKILLed', async () => {
    setSoftLocksForced(true);
    const { hostname } = await import('node:os');
    const path = lockPath();
    await acquireLock(path).then((l) => l.release()); // creates the folder
    const holder = track(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']));
    await writeFile(`${path}.soft`, JSON.stringify({ pid: holder.pid, hostname: hostname(), time: Date.now() }));
    assert.equal(await tryAcquireLock(path), null, 'live holder respected');
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    const lock = await tryAcquireLock(path);
    assert.ok(lock, 'dead holder broken');
    await lock.release();
  });
});
