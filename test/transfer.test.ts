// Transfer engine: single stream, parallel ranges, faults, typed errors, disk, abort.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { TransferEngine } from '../src/transfer/engine.js';
import { runningHashWorkers } from '../src/transfer/prefix-hasher.js';
import type { ErrorAnswer, TransferProgress } from '../src/transfer/types.js';
import { hubBodyErrorFor } from '../src/hubs/http-errors.js';
import {
  AbortedError,
  DiskFullError,
  EntryNotFoundError,
  HubHttpError,
  IntegrityError,
  RateLimitedError,
  ServerError,
  UnauthorizedError,
  UsageError,
} from '../src/errors.js';
import { patternBytes, sha256, TransferServer } from './fixtures/transfer-server.js';
import {
  fastOptions,
  KiB,
  layout,
  MiB,
  partials,
  readFinal,
  removeTempDirs,
  request,
  tempDir,
} from './fixtures/transfer-helpers.js';

let server: TransferServer;
let engine: TransferEngine;
const small = patternBytes(300 * KiB, 1);
const large = patternBytes(3 * MiB + 12345, 2);

before(async () => {
  server = await TransferServer.start();
  // The mapping a Cache injects: hub statuses become the hubs' typed errors.
  engine = new TransferEngine({ ...fastOptions, errorFor: hubBodyErrorFor });
});
after(async () => {
  await engine.close();
  await server.close();
  await removeTempDirs();
});

function fresh(p: string, data: Buffer, faults = {}): void {
  server.addFile(p, data, faults);
  server.resetStats();
}

test('single stream: small file is committed with the right bytes, hash and mode', async () => {
  fresh('/small', small);
  const l = await layout();
  const seen: TransferProgress[] = [];
  const r = await engine.download(request(server, '/small', small, l, { onProgress: (p) => seen.push(p) }));
  assert.equal(r.sha256, sha256(small));
  assert.equal(r.downloadedBytes, small.length);
  assert.ok((await readFinal(l)).equals(small));
  assert.deepEqual(await partials(l), []);
  assert.equal(server.stats.requests, 1);
  assert.equal(server.stats.ranges[0], undefined, 'no Range header for a plain small download');
  const umask = process.umask(0o022);
  process.umask(umask);
  assert.equal((await fsp.stat(l.finalPath)).mode & 0o777, 0o666 & ~umask);
  assert.equal(seen.at(-1)?.done, true);
  assert.equal(seen.at(-1)?.bytes, small.length);
});

test('parallel ranges: large file arrives in chunks over several connections', async () => {
  // Slow enough that the probe (~200 ms on one stream) leaves most of the file to the others.
  fresh('/large', large, { throttleBytesPerSec: 4 * MiB });
  const l = await layout();
  const seen: TransferProgress[] = [];
  const r = await engine.download(request(server, '/large', large, l, { onProgress: (p) => seen.push(p) }));
  assert.equal(r.sha256, sha256(large));
  assert.ok((await readFinal(l)).equals(large));
  assert.deepEqual(await partials(l), []);
  // Requests of at most chunkSize (256 KiB), shrinking toward the end (down to a 64 KiB chunk).
  assert.ok(server.stats.requests >= Math.ceil(large.length / (256 * KiB)), `requests ${server.stats.requests}`);
  assert.ok(server.stats.requests <= Math.ceil(large.length / (64 * KiB)), `requests ${server.stats.requests}`);
  const lengths = server.stats.ranges.map((r) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(r ?? '');
    assert.ok(m, `range ${r}`);
    return Number(m[2]) - Number(m[1]) + 1;
  });
  assert.ok(
    lengths.every((n) => n <= 256 * KiB),
    `ranges ${lengths}`,
  );
  // The first wave is staggered (k/n of a full request) so the in-order hash can start early;
  // then requests are full length.
  assert.ok((lengths[0] ?? 0) < 256 * KiB, `first request ${lengths[0]} is a short one`);
  assert.ok(
    lengths.some((n) => n === 256 * KiB),
    'then requests are long',
  );
  assert.ok(
    lengths.some((n) => n === 64 * KiB),
    'the last ones shrink to one chunk',
  );
  assert.ok(server.stats.statuses.every((s) => s === 206));
  assert.ok(server.stats.maxInflight > 1, 'ranges were fetched in parallel');
  // Reuse, not one connection per request.
  assert.ok(
    server.stats.connections < server.stats.requests,
    `keep-alive connections were reused (${server.stats.connections} for ${server.stats.requests} requests)`,
  );
  assert.equal(seen.at(-1)?.done, true);
  assert.ok(seen.length < 200, 'progress is rate limited');
});

test('hashing in order survives a tiny memory budget (chunks re-read from disk)', async () => {
  const e = new TransferEngine({ ...fastOptions, connections: 6 });
  try {
    fresh('/large', large);
    const l = await layout();
    const r = await e.download(request(server, '/large', large, l));
    assert.equal(r.sha256, sha256(large));
  } finally {
    await e.close();
  }
});

test('small file into a partial folder that does not exist yet: created on the way, nothing left over', async () => {
  fresh('/small', small);
  const l = await layout();
  const blobs = path.join(l.dir, 'not-yet', 'blobs');
  const r = await engine.download(request(server, '/small', small, { ...l, blobs, finalPath: path.join(blobs, 'f') }));
  assert.equal(r.sha256, sha256(small));
  assert.ok((await fsp.readFile(path.join(blobs, 'f'))).equals(small));
  assert.deepEqual(await fsp.readdir(blobs), ['f']);
});

test('many small files at once in one folder: all correct, no partial left', async () => {
  const files = Array.from({ length: 24 }, (_, i) => patternBytes(4 * KiB + i * 997, 100 + i));
  files.forEach((f, i) => server.addFile(`/many/${i}`, f));
  server.resetStats();
  const l = await layout();
  const results = await Promise.all(
    files.map((f, i) =>
      engine.download(request(server, `/many/${i}`, f, { ...l, key: `k${i}`, finalPath: path.join(l.blobs, `k${i}`) })),
    ),
  );
  results.forEach((r, i) => assert.equal(r.sha256, sha256(files[i] as Buffer)));
  for (const [i, f] of files.entries()) assert.ok((await fsp.readFile(path.join(l.blobs, `k${i}`))).equals(f));
  assert.deepEqual(await partials(l), []);
  assert.equal(server.stats.requests, files.length);
});

test('git blob sha1 is verified for small git files', async () => {
  const data = Buffer.from('hello world\n');
  fresh('/readme', data);
  const gitSha1 = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
  const l = await layout();
  await engine.download({ ...request(server, '/readme', data, l), expected: { size: data.length, gitSha1 } });
  assert.ok((await readFinal(l)).equals(data));
  const l2 = await layout();
  await assert.rejects(
    engine.download({
      ...request(server, '/readme', data, l2),
      expected: { size: data.length, gitSha1: '0'.repeat(40) },
    }),
    (e: unknown) => e instanceof IntegrityError && e.algorithm === 'git-sha1',
  );
});

test('connection dropped mid-body: resumes from the byte it reached (single and ranged)', async () => {
  fresh('/small', small, { dropAfterBytes: { bytes: 100 * KiB, times: 2 } });
  const l = await layout();
  const r = await engine.download(request(server, '/small', small, l));
  assert.equal(r.sha256, sha256(small));
  assert.equal(server.stats.requests, 3);
  assert.match(server.stats.ranges[1] ?? '', /^bytes=\d+-$/);
  assert.ok(server.stats.bytesSent <= small.length + 256 * KiB);

  fresh('/large', large, { dropAfterBytes: { bytes: 100 * KiB, times: 5 } });
  const l2 = await layout();
  const r2 = await engine.download(request(server, '/large', large, l2));
  assert.equal(r2.sha256, sha256(large));
  assert.ok(server.stats.bytesSent < large.length * 1.2, `refetched too much: ${server.stats.bytesSent}`);
});

test('5xx is retried with backoff; permanent 5xx ends as ServerError', async () => {
  fresh('/large', large, { status: { code: 503, times: 3 } });
  const l = await layout();
  const r = await engine.download(request(server, '/large', large, l));
  assert.equal(r.sha256, sha256(large));

  fresh('/small', small, { status: { code: 500, times: 1000 } });
  const l2 = await layout();
  await assert.rejects(engine.download(request(server, '/small', small, l2)), ServerError);
  assert.equal(server.stats.requests, fastOptions.maxRetries! + 1);
  assert.deepEqual(await partials(l2), [], 'nothing on disk: no partial kept');
});

test('429 honours Retry-After (seconds) and RateLimit t=; exhausted → RateLimitedError', async () => {
  fresh('/small', small, { status: { code: 429, times: 1, headers: { 'retry-after': '1' } } });
  const t0 = Date.now();
  const r = await engine.download(request(server, '/small', small, await layout()));
  assert.equal(r.sha256, sha256(small));
  assert.ok(Date.now() - t0 >= 950, 'waited for Retry-After');

  const date = new Date(Date.now() + 1500).toUTCString();
  fresh('/small', small, { status: { code: 429, times: 1, headers: { 'retry-after': date } } });
  const t1 = Date.now();
  await engine.download(request(server, '/small', small, await layout()));
  assert.ok(Date.now() - t1 >= 400, 'waited for the Retry-After date');

  fresh('/small', small, { status: { code: 429, times: 1000, headers: { ratelimit: '"api";r=0;t=0' } } });
  await assert.rejects(engine.download(request(server, '/small', small, await layout())), (e: unknown) => {
    return e instanceof RateLimitedError && e.retryAfterSeconds === 0;
  });

  fresh('/small', small, { status: { code: 429, times: 1000, headers: { 'retry-after': '3600' } } });
  const t2 = Date.now();
  await assert.rejects(engine.download(request(server, '/small', small, await layout())), RateLimitedError);
  assert.ok(Date.now() - t2 < 1000, 'a wait longer than maxRetryAfterSeconds fails at once');
  assert.equal(server.stats.requests, 1);
});

test('stalled connection is abandoned after stallTimeoutSeconds and retried', async () => {
  fresh('/large', large, { stallAfterBytes: { bytes: 50 * KiB, times: 1 } });
  const l = await layout();
  const t0 = Date.now();
  const r = await engine.download(request(server, '/large', large, l));
  assert.equal(r.sha256, sha256(large));
  assert.ok(Date.now() - t0 >= 900, 'waited for the stall timeout');
});

test('corrupt bytes: deleted, fetched once more from scratch, then IntegrityError naming both hashes', async () => {
  fresh('/large', large, { corrupt: { offset: 1 * MiB + 7, times: 1 } });
  const l = await layout();
  const r = await engine.download(request(server, '/large', large, l));
  assert.equal(r.sha256, sha256(large));
  assert.ok(server.stats.bytesSent >= 2 * large.length - 256 * KiB, 'second attempt started from scratch');

  fresh('/large', large, { corrupt: { offset: 5, times: 1000 } });
  const l2 = await layout();
  const bad = Buffer.from(large);
  bad[5] = (bad[5] ?? 0) ^ 0xff;
  await assert.rejects(engine.download(request(server, '/large', large, l2)), (e: unknown) => {
    assert.ok(e instanceof IntegrityError);
    assert.equal(e.algorithm, 'sha256');
    assert.equal(e.expected, sha256(large));
    assert.equal(e.actual, sha256(bad));
    assert.match(e.message, new RegExp(sha256(large)));
    return true;
  });
  assert.equal(server.stats.bytesSent, 2 * large.length);
  assert.deepEqual(await partials(l2), []);
  await assert.rejects(fsp.stat(l2.finalPath));
});

test('size mismatch is an integrity error', async () => {
  fresh('/small', small);
  const l = await layout();
  await assert.rejects(
    engine.download({ ...request(server, '/small', small, l), expected: { size: small.length + 1 } }),
    (e: unknown) => e instanceof IntegrityError && e.algorithm === 'size',
  );
  // Content-Range total differs from the expected size (remote changed) in ranged mode.
  fresh('/large', large);
  const l2 = await layout();
  await assert.rejects(
    engine.download({ ...request(server, '/large', large, l2), expected: { size: large.length + 10 } }),
    (e: unknown) => e instanceof IntegrityError && e.algorithm === 'size',
  );
});

test('404 and 401 fail at once with typed errors; tokens never appear in messages', async () => {
  server.resetStats();
  const l = await layout();
  const secret = 'hf_SECRETtoken123';
  const withToken = {
    source: async () => ({
      url: server.url('/missing', `token=${secret}`),
      headers: { authorization: `Bearer ${secret}` },
    }),
  };
  await assert.rejects(engine.download(request(server, '/missing', small, l, withToken)), (e: unknown) => {
    assert.ok(e instanceof EntryNotFoundError);
    assert.ok(!JSON.stringify({ m: e.message, u: e.url, h: e.hint }).includes(secret));
    return true;
  });
  assert.equal(server.stats.requests, 1);

  fresh('/private', small, { requireAuth: 'Bearer right' });
  await assert.rejects(
    engine.download(
      request(server, '/private', small, await layout(), {
        source: async () => ({
          url: server.url('/private', `sig=${secret}`),
          headers: { authorization: `Bearer ${secret}` },
        }),
      }),
    ),
    (e: unknown) => {
      assert.ok(e instanceof UnauthorizedError);
      assert.ok(!`${e.message} ${e.url ?? ''}`.includes(secret));
      return true;
    },
  );
  assert.equal(server.stats.requests, 1);
});

test('without an injected mapping the engine throws HTTP-level errors and knows no hub', async () => {
  const plain = new TransferEngine(fastOptions);
  try {
    await assert.rejects(plain.download(request(server, '/missing', small, await layout())), (e: unknown) => {
      assert.ok(e instanceof HubHttpError && !(e instanceof EntryNotFoundError) && !(e instanceof ServerError));
      assert.equal(e.status, 404);
      return true;
    });
    let seen: ErrorAnswer | undefined;
    const mapped = new TransferEngine({
      ...fastOptions,
      errorFor: (a) => ((seen = a), new UsageError(`mapped ${a.status}`)),
    });
    await assert.rejects(mapped.download(request(server, '/missing', small, await layout())), /mapped 404/);
    await mapped.close();
    assert.equal(seen?.status, 404);
    assert.equal(seen?.url, server.url('/missing'));
  } finally {
    await plain.close();
  }
});

test('403 on a signed URL refreshes the source once; a second 403 is final', async () => {
  fresh('/signed', large, { validSig: 'new' });
  let calls = 0;
  const source = async (): Promise<{ url: string; headers: Record<string, string> }> => {
    calls++;
    return { url: server.url('/signed', `sig=${calls === 1 ? 'old' : 'new'}`), headers: {} };
  };
  const r = await engine.download(request(server, '/signed', large, await layout(), { source }));
  assert.equal(r.sha256, sha256(large));
  assert.equal(calls, 2);

  fresh('/signed', small, { validSig: 'never' });
  let calls2 = 0;
  await assert.rejects(
    engine.download(
      request(server, '/signed', small, await layout(), {
        source: async () => {
          calls2++;
          return { url: server.url('/signed', 'sig=x'), headers: {} };
        },
      }),
    ),
    (e: unknown) => e instanceof HubHttpError && e.status === 403,
  );
  assert.equal(calls2, 2);
});

test('redirect to another origin drops the authorization header', async () => {
  const other = await TransferServer.start();
  try {
    other.addFile('/cdn/blob', small);
    fresh('/resolve', small, { redirectTo: other.url('/cdn/blob', 'X-Amz-Signature=abc') });
    const r = await engine.download(
      request(server, '/resolve', small, await layout(), {
        source: async () => ({ url: server.url('/resolve'), headers: { authorization: 'Bearer hf_tok' } }),
      }),
    );
    assert.equal(r.sha256, sha256(small));
    assert.equal(server.stats.authHeaders[0], 'Bearer hf_tok');
    assert.deepEqual(other.stats.authHeaders, [undefined]);
  } finally {
    await other.close();
  }
});

test('server ignoring Range (200 instead of 206) falls back to one stream', async () => {
  fresh('/large', large, { ignoreRange: true });
  const l = await layout();
  const r = await engine.download(request(server, '/large', large, l));
  assert.equal(r.sha256, sha256(large));
  assert.ok(server.stats.requests <= 2, 'one probe plus one full stream');
  assert.deepEqual(await partials(l), []);
});

test('compressed body despite Accept-Encoding: identity is refused', async () => {
  fresh('/small', small, { contentEncoding: 'gzip' });
  await assert.rejects(engine.download(request(server, '/small', small, await layout())), ServerError);
});

test('maxConnections is shared by all downloads of one engine', async () => {
  const e = new TransferEngine({ ...fastOptions, connections: 4, maxConnections: 3 });
  try {
    fresh('/a', large, { throttleBytesPerSec: 8 * MiB });
    server.addFile('/b', large, { throttleBytesPerSec: 8 * MiB });
    const [ra, rb] = await Promise.all([
      e.download(request(server, '/a', large, await layout('a'))),
      e.download(request(server, '/b', large, await layout('b'))),
    ]);
    assert.equal(ra.sha256, sha256(large));
    assert.equal(rb.sha256, sha256(large));
    assert.ok(server.stats.maxInflight <= 3, `inflight ${server.stats.maxInflight}`);
  } finally {
    await e.close();
  }
});

test('same finalPath twice in one engine downloads once; an existing final file is reused', async () => {
  fresh('/large', large);
  const l = await layout();
  const [a, b] = await Promise.all([
    engine.download(request(server, '/large', large, l)),
    engine.download(request(server, '/large', large, l)),
  ]);
  assert.equal(a.downloadedBytes + b.downloadedBytes, large.length);
  assert.equal(server.stats.bytesSent, large.length);
  server.resetStats();
  const c = await engine.download(request(server, '/large', large, l));
  assert.equal(c.reused, true);
  assert.equal(server.stats.requests, 0);
});

test('abort stops promptly, keeps the partial, and the next run resumes it', async () => {
  fresh('/large', large, { throttleBytesPerSec: 1 * MiB });
  const l = await layout();
  const ac = new AbortController();
  const p = engine.download(
    request(server, '/large', large, l, {
      signal: ac.signal,
      onProgress: (pr) => {
        if (pr.bytes > 1 * MiB) ac.abort();
      },
    }),
  );
  const t0 = Date.now();
  await assert.rejects(p, AbortedError);
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(runningHashWorkers(), 0, 'the hash worker was torn down with the download');
  assert.equal((await partials(l)).length, 1);
  server.setFaults('/large', {});
  server.resetStats();
  const r = await engine.download(request(server, '/large', large, l));
  assert.equal(r.sha256, sha256(large));
  assert.ok(r.resumedBytes >= 1 * MiB, `resumed ${r.resumedBytes}`);
  assert.ok(server.stats.bytesSent <= large.length - r.resumedBytes + 4 * 256 * KiB);
  assert.deepEqual(await partials(l), []);
});

test('ENOSPC mid-way (injected) → DiskFullError, partial kept, next run resumes', async () => {
  fresh('/large', large);
  const l = await layout();
  let writes = 0;
  const e = new TransferEngine({
    ...fastOptions,
    fsHooks: {
      beforeWrite: () => {
        if (++writes > 6) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      },
    },
  });
  try {
    await assert.rejects(e.download(request(server, '/large', large, l)), (err: unknown) => {
      assert.ok(err instanceof DiskFullError);
      assert.ok(err.hint);
      return true;
    });
  } finally {
    await e.close();
  }
  assert.equal((await partials(l)).length, 1, 'partial kept for resume');
  server.resetStats();
  const r = await engine.download(request(server, '/large', large, l));
  assert.equal(r.sha256, sha256(large));
  assert.ok(r.resumedBytes > 0);
  assert.ok(server.stats.bytesSent < large.length);
});

test('real tiny tmpfs: up-front free-space check, and ENOSPC mid-way', async (t) => {
  const mnt = path.join(await tempDir('hc-tmpfs-'), 'm');
  await fsp.mkdir(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    t.skip('cannot mount tmpfs here (needs root)');
    return;
  }
  try {
    const blobs = path.join(mnt, 'blobs');
    await fsp.mkdir(blobs);
    const l = { dir: mnt, blobs, finalPath: path.join(blobs, 'big'), key: 'big' };
    fresh('/large', large);
    await assert.rejects(engine.download(request(server, '/large', large, l)), (e: unknown) => {
      assert.ok(e instanceof DiskFullError);
      assert.equal(e.neededBytes, large.length);
      assert.ok((e.freeBytes ?? Infinity) < large.length);
      return true;
    });
    assert.equal(server.stats.requests, 0, 'checked before downloading');
    // Passes the up-front check, then another writer eats the space.
    const mid = patternBytes(700 * KiB, 9);
    fresh('/mid', mid, { throttleBytesPerSec: 2 * MiB });
    const l2 = { ...l, finalPath: path.join(blobs, 'mid'), key: 'mid' };
    let filled = false;
    await assert.rejects(
      engine.download(
        request(server, '/mid', mid, l2, {
          onProgress: (p) => {
            if (!filled && p.bytes > 0) {
              filled = true;
              try {
                execFileSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'filler')}`, 'bs=64k', 'count=100'], {
                  stdio: 'ignore',
                });
              } catch {
                // dd fails once the tmpfs is full; that is the point
              }
            }
          },
        }),
      ),
      DiskFullError,
    );
  } finally {
    execFileSync('umount', [mnt]);
  }
});

test('resume state: a torn newest slot falls back to the older valid one', async () => {
  const { writeSlot, readTrailer, TRAILER_SIZE, SLOT_SIZE, encodeBitmap } =
    await import('../src/transfer/partial-state.js');
  const l = await layout();
  const p = path.join(l.blobs, 'torn');
  const fh = await fsp.open(p, 'w+');
  try {
    const size = 1000;
    await fh.truncate(size + TRAILER_SIZE);
    const base = {
      v: 1 as const,
      writerId: 'hc' + '0'.repeat(20),
      pid: 1,
      host: 'h',
      heartbeat: 1,
      size,
      chunkSize: 100,
      done: encodeBitmap([true]),
      partial: [] as Array<[number, number]>,
      createdAt: 0,
    };
    await writeSlot(fh, { ...base, seq: 5 }, 0);
    await writeSlot(fh, { ...base, seq: 6 }, 1);
    assert.equal((await readTrailer(fh, size + TRAILER_SIZE))?.state.seq, 6);
    await fh.write(Buffer.from('X'), 0, 1, size + SLOT_SIZE + 60); // torn write inside slot 1
    const r = await readTrailer(fh, size + TRAILER_SIZE);
    assert.equal(r?.state.seq, 5);
    assert.equal(r?.slot, 0);
    assert.equal(await readTrailer(fh, size + TRAILER_SIZE + 1), undefined, 'length must match the recorded size');
  } finally {
    await fh.close();
  }
});

test('Retry-After / RateLimit parsing and partial name classification', async () => {
  const { parseRetryAfter } = await import('../src/transfer/retry.js');
  const { classifyPartialName, newWriterId, parseWriterId } = await import('../src/transfer/partial-state.js');
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter({ 'retry-after': '7' }, now), 7);
  assert.equal(parseRetryAfter({ 'retry-after': 'Wed, 01 Jan 2025 00:00:30 GMT' }, now), 30);
  assert.equal(parseRetryAfter({ ratelimit: '"api";r=0;t=55' }, now), 55);
  assert.equal(parseRetryAfter({ ratelimit: '"api";r=10;t=55' }, now), undefined);
  assert.equal(parseRetryAfter({}, now), undefined);
  const id = newWriterId();
  assert.equal(parseWriterId(id)?.pid, process.pid);
  const key = 'a'.repeat(64);
  assert.deepEqual(classifyPartialName(`${key}.${id}.incomplete`, key), { kind: 'ours', writerId: id });
  assert.deepEqual(classifyPartialName(`${key}.1a2b3c4d.incomplete`, key), { kind: 'hf', writerId: '1a2b3c4d' });
  assert.deepEqual(classifyPartialName(`${key}.incomplete`, key), { kind: 'hf', writerId: '' });
  assert.equal(classifyPartialName(`${key}`, key), undefined);
  assert.equal(classifyPartialName(`${key}.x.y.incomplete`, key), undefined);
  assert.equal(classifyPartialName(`b${key}.1a2b3c4d.incomplete`, key), undefined);
});
