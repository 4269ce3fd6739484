// PrefixHasher: hashing a file in byte order by reading back what the writers report as written,
// in a worker thread (or on the main thread when no worker can run), and its teardown.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { AbortedError } from '../src/errors.js';
import { HashReadError, PrefixHasher, runningHashWorkers } from '../src/transfer/prefix-hasher.js';
import { patternBytes } from './fixtures/transfer-server.js';
import { KiB, removeTempDirs, tempDir } from './fixtures/transfer-helpers.js';

after(removeTempDirs);

const data = patternBytes(3 * 1024 * KiB + 777, 11);
const sha256 = createHash('sha256').update(data).digest('hex');
const gitSha1 = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');

async function sparseFile(size: number): Promise<{ fh: FileHandle; p: string }> {
  const p = path.join(await tempDir('hc-hasher-'), 'partial');
  const fh = await fsp.open(p, 'w+');
  await fh.truncate(size);
  return { fh, p };
}

/** Writes `data` in pieces in a shuffled order, reporting the contiguous prefix after each write. */
async function writeShuffled(fh: FileHandle, h: PrefixHasher, piece: number): Promise<void> {
  const starts = Array.from({ length: Math.ceil(data.length / piece) }, (_, i) => i * piece);
  // Deterministic shuffle: the file's start arrives late, so most bytes land ahead of the hash.
  starts.sort((a, b) => ((a * 7919) % 13) - ((b * 7919) % 13) || b - a);
  const done = new Set<number>();
  let prefix = 0;
  for (const s of starts) {
    await fh.write(data, s, Math.min(piece, data.length - s), s);
    done.add(s);
    while (done.has(prefix)) prefix = Math.min(data.length, prefix + piece);
    h.advance(prefix);
  }
}

for (const useWorker of [true, false]) {
  test(`hashes in file order what arrives out of order (${useWorker ? 'worker thread' : 'main thread'})`, async () => {
    const { fh } = await sparseFile(data.length);
    const h = new PrefixHasher(fh, data.length, true, useWorker);
    try {
      assert.equal(h.threaded, useWorker);
      await writeShuffled(fh, h, 64 * KiB + 3);
      const d = await h.digest();
      assert.deepEqual(d, { bytes: data.length, sha256, gitSha1 });
    } finally {
      await h.close();
      await fh.close();
    }
  });
}

test('a hash worker that dies is replaced by hashing on the main thread from byte 0', async () => {
  const { fh } = await sparseFile(data.length);
  const h = new PrefixHasher(fh, data.length, false);
  try {
    await fh.write(data, 0, data.length, 0);
    h.advance(1024 * KiB);
    const worker = (h as unknown as { worker: Worker }).worker;
    await worker.terminate();
    h.advance(data.length);
    const d = await h.digest();
    assert.equal(d.sha256, sha256);
    assert.equal(h.threaded, false);
  } finally {
    await h.close();
    await fh.close();
  }
});

test('close() mid-way: the digest rejects as aborted and the worker is gone before close resolves', async () => {
  const before = runningHashWorkers();
  const { fh } = await sparseFile(data.length);
  const h = new PrefixHasher(fh, data.length, false);
  assert.equal(runningHashWorkers(), before + 1);
  await fh.write(data, 0, 1024 * KiB, 0);
  h.advance(1024 * KiB);
  const digest = h.digest();
  await h.close();
  assert.equal(runningHashWorkers(), before, 'no hash worker left running');
  await assert.rejects(digest, AbortedError);
  // The descriptor may be closed now: nothing reads through it any more.
  await fh.close();
});

test('a prefix past the end of the file is a read error, not a wrong hash', async () => {
  const { fh } = await sparseFile(10);
  const h = new PrefixHasher(fh, 100, false);
  try {
    h.advance(100);
    await assert.rejects(h.digest(), HashReadError);
  } finally {
    await h.close();
    await fh.close();
  }
});

test('an empty file has the empty digest without starting a worker', async () => {
  const { fh } = await sparseFile(0);
  const h = new PrefixHasher(fh, 0, true);
  try {
    const d = await h.digest();
    assert.equal(d.sha256, createHash('sha256').digest('hex'));
    assert.equal(d.gitSha1, createHash('sha1').update('blob 0\0').digest('hex'));
    assert.equal(h.threaded, false);
  } finally {
    await h.close();
    await fh.close();
  }
});
