// Seeded fuzzing, bounded (a few seconds in all): the HTTP head parser and the chunked decoder
// (split or whole, the same answer; a ServerError or a valid result), unpack of mutated pack
// archives (a typed error or a valid cache, nothing outside it) and the pickle codec (a
// PickleError or plain data). `npm run fuzz -- --seconds 60` runs the same targets for longer.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Cache } from '../src/cache.js';
import { ArchiveError } from '../src/care/unpack.js';
import { ServerError } from '../src/errors.js';
import { parseHead } from '../src/http/head.js';
import { tempDir } from './helpers.js';
import { archiveFuzzer, FUZZ_ARCHIVE, fuzzChunked, fuzzHttpHead, fuzzPickle, Rng } from './fixtures/fuzz.js';

/** Fixed, so a failure here reproduces; scripts/fuzz.ts draws fresh seeds. */
const SEED = 20261203;
/** A hang fails the test instead of stalling the suite (not a timing assertion: no run comes near it). */
const HANG_GUARD = { timeout: 120_000 };

describe('fuzz (seeded, bounded corpus)', () => {
  test('found by fuzzing: a status outside 100..599 (here 006) is a malformed head, not a response', () => {
    for (const status of ['006', '099', '600', '999']) {
      const head = Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Length: 0\r\n\r\n`);
      const malformed = (e: unknown): boolean => e instanceof ServerError && /bad status line/.test(e.message);
      assert.throws(() => parseHead(head, head.length), malformed);
    }
    const ok = Buffer.from('HTTP/1.1 599 X\r\n\r\n');
    assert.equal(parseHead(ok, ok.length)?.status, 599);
  });

  test('found by fuzzing: an archive ending inside a member body is an ArchiveError, not a raw StreamError', async () => {
    const base = await fs.readFile(FUZZ_ARCHIVE);
    const dir = await tempDir();
    const cut = path.join(dir, 'cut.tar');
    // w.bin (2000 bytes) has its header at 13824: cut the archive 198 bytes into its body.
    assert.equal(base.subarray(13824, 13824 + 28).toString(), 'ms/models/org/old___ms/w.bin');
    await fs.writeFile(cut, base.subarray(0, 13824 + 512 + 198));
    const unpacking = Cache.at(path.join(dir, 'cache')).unpack({ archive: cut });
    await assert.rejects(unpacking, (e: unknown) => e instanceof ArchiveError);
  });

  test('HTTP response heads: 3000 mutated heads', HANG_GUARD, () => {
    const rng = new Rng(SEED);
    for (let i = 0; i < 3000; i++) fuzzHttpHead(rng);
  });

  test('chunked bodies: 3000 valid and mutated bodies, split at random points', HANG_GUARD, () => {
    const rng = new Rng(SEED + 1);
    for (let i = 0; i < 3000; i++) fuzzChunked(rng);
  });

  test('pickles: 3000 mutated .msc / .mdl / plain-data / os.system pickles', HANG_GUARD, () => {
    const rng = new Rng(SEED + 2);
    for (let i = 0; i < 3000; i++) fuzzPickle(rng);
  });

  test('pack archives: 60 mutated archives unpacked into a fresh cache', HANG_GUARD, async () => {
    const fuzzer = await archiveFuzzer(await fs.readFile(FUZZ_ARCHIVE));
    try {
      const rng = new Rng(SEED + 3);
      for (let i = 0; i < 60; i++) await fuzzer.run(rng);
    } finally {
      await fuzzer.close();
    }
  });
});
