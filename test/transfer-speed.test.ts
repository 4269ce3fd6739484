// What keeps the engine fast: how many connections a file gets, and how its writes are done.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionGovernor, wantedConnections } from '../src/transfer/governor.js';
import { TransferEngine } from '../src/transfer/engine.js';
import { patternBytes, sha256, TransferServer } from './fixtures/transfer-server.js';
import { fastOptions, KiB, layout, MiB, removeTempDirs, request, tempDir } from './fixtures/transfer-helpers.js';

after(removeTempDirs);

test('wantedConnections: enough streams to reach the target rate at the speed each showed', () => {
  const o = { max: 16, targetRate: 1.5e9 };
  assert.equal(wantedConnections(40e6, 1, o), 16, 'a 40 MB/s stream: all 16');
  assert.equal(wantedConnections(300e6, 1, o), 5);
  assert.equal(wantedConnections(1.1e9, 1, o), 2, 'one stream at 1.1 GB/s: a second one at most');
  assert.equal(wantedConnections(1.6e9, 1, o), 1, 'already at the target');
  assert.equal(wantedConnections(600e6, 4, o), 10, 'never fewer than running; per-stream rate counts');
  assert.equal(wantedConnections(0, 1, o), 1, 'nothing measured yet: stay');
});

/**
 * Runs a governor against a simulated link for `ms`; returns the worker counts it went through.
 * New workers deliver nothing for `connectMs` (connection set-up, first response).
 */
async function simulate(
  rateOf: (workers: number) => number,
  ms: number,
  o: { max?: number; connectMs?: number; enough?: number; onGovernor?: (g: ConnectionGovernor) => void } = {},
): Promise<number[]> {
  let workers = 1;
  /** When each worker started, to tell flowing ones from connecting ones. */
  const startedAt: number[] = [0];
  const flowing = (): number => startedAt.filter((t) => performance.now() - t >= (o.connectMs ?? 0)).length;
  const rateNow = (): number => (rateOf(workers) * flowing()) / workers;
  let bytes = 0;
  let last = performance.now();
  const history = [workers];
  const tick = setInterval(() => {
    const now = performance.now();
    bytes += rateNow() * ((now - last) / 1000);
    last = now;
  }, 2);
  const g = new ConnectionGovernor({
    max: o.max ?? 16,
    targetRate: 1.5e9,
    bytes: () => bytes + (rateNow() * (performance.now() - last)) / 1000,
    workers: () => workers,
    flowing,
    grow: (n) => {
      workers += n;
      for (let i = 0; i < n; i++) startedAt.push(performance.now());
      history.push(workers);
    },
    shrinkTo: (n) => {
      workers = n;
      startedAt.length = n;
      history.push(workers);
    },
    probeMs: 20,
    checkMs: 40,
    ...(o.enough !== undefined ? { enoughPerStream: o.enough } : {}),
  });
  g.start();
  o.onGovernor?.(g);
  await new Promise((r) => setTimeout(r, ms));
  g.stop();
  clearInterval(tick);
  return history;
}

test('governor: a capped CDN (40 MB/s per stream) gets all connections after the first probe', async () => {
  const history = await simulate((w) => w * 40e6, 150);
  assert.deepEqual(history, [1, 16]);
});

test('governor: new connections still connecting are not judged as not paying (a 10 MB/s CDN keeps all 64)', async () => {
  // Each new stream needs 100 ms (2.5 checks) before its first byte. Judged at once, the growth
  // to 64 looked like it gave nothing and was cut back to one or two streams.
  const history = await simulate((w) => w * 10e6, 600, { max: 64, connectMs: 100 });
  assert.deepEqual(history, [1, 64]);
});

test('governor: a 429/503 halves the connections and stops growth', async () => {
  let governor: ConnectionGovernor | undefined;
  const history = await simulate((w) => w * 40e6, 300, {
    max: 32,
    onGovernor: (g) => {
      governor = g;
      setTimeout(() => g.backOff(), 150);
    },
  });
  assert.ok(governor);
  assert.deepEqual(history, [1, 32, 16], 'grew to the cap, then halved once and stayed');
});

test('governor: a link saturated by one stream tries a second, then goes back to one', async () => {
  const history = await simulate(() => 1.2e9, 300);
  assert.deepEqual(history, [1, 2, 1]);
});

test('governor: a first stream already past enoughPerStream is left alone; a capped one still grows', async () => {
  assert.deepEqual(await simulate(() => 1.2e9, 200, { enough: 250e6 }), [1]);
  assert.deepEqual(await simulate((w) => w * 40e6, 150, { enough: 250e6 }), [1, 16]);
});

test('governor: a link that scales up to a limit keeps the streams that fill it, then stops', async () => {
  // 200 MB/s per stream, but the link tops out at 600 MB/s.
  const history = await simulate((w) => Math.min(600e6, w * 200e6), 400);
  // First step from the probe: 1.5 GB/s / 200 MB/s = 8. The link gives 3x for 8x the streams:
  // less than half the expected gain, so it keeps the 3 streams that carry 600 MB/s and stops.
  assert.deepEqual(history, [1, 8, 3]);
});

test('engine: a throttled server gets every allowed connection; a fast one keeps to two at most', async () => {
  const server = await TransferServer.start();
  const engine = new TransferEngine({ ...fastOptions, connections: 4 });
  try {
    const data = patternBytes(4 * MiB, 7);
    server.addFile('/slow', data, { throttleBytesPerSec: 4 * MiB });
    server.resetStats();
    const slow = await engine.download(request(server, '/slow', data, await layout()));
    assert.equal(slow.sha256, sha256(data));
    assert.equal(server.stats.maxInflight, 4, 'capped streams: all 4 connections');

    const big = patternBytes(48 * MiB, 8);
    server.addFile('/fast', big);
    server.resetStats();
    const fast = await engine.download(request(server, '/fast', big, await layout()));
    assert.equal(fast.sha256, sha256(big));
    assert.ok(server.stats.maxInflight <= 2, `fast link: ${server.stats.maxInflight} connections`);
  } finally {
    await engine.close();
    await server.close();
  }
});

test('engine: a throttled server that pays for each added connection gets more than 16 of them', async () => {
  const server = await TransferServer.start();
  const engine = new TransferEngine({ ...fastOptions, connections: 24, maxConnections: 24, chunkSize: 512 * KiB });
  try {
    // 12 MiB at 512 KiB/s per stream: 24 streams still add speed, so all 24 open.
    const data = patternBytes(12 * MiB, 21);
    server.addFile('/wide', data, { throttleBytesPerSec: 512 * KiB });
    server.resetStats();
    const r = await engine.download(request(server, '/wide', data, await layout()));
    assert.equal(r.sha256, sha256(data));
    assert.equal(server.stats.maxInflight, 24, `${server.stats.maxInflight} connections at once`);
  } finally {
    await engine.close();
    await server.close();
  }
});

test('engine: 503s after the probe make the extra connections retire; the file still completes once', async () => {
  const server = await TransferServer.start();
  const engine = new TransferEngine({ ...fastOptions, connections: 8, chunkSize: 512 * KiB });
  try {
    const data = patternBytes(6 * MiB, 22);
    const busy = { code: 503, skip: 1, times: 3, headers: { 'retry-after': '0' } };
    server.addFile('/busy', data, { throttleBytesPerSec: 1 * MiB, status: busy });
    server.resetStats();
    const r = await engine.download(request(server, '/busy', data, await layout()));
    assert.equal(r.sha256, sha256(data));
    assert.equal(server.stats.statuses.filter((s) => s === 503).length, 3);
    assert.equal(r.downloadedBytes, data.length, 'the refused runs went back to the others, none fetched twice');
    // After the 503s at most half of the 8 connections start new requests: the requests that
    // began after the first 503 never overlap more than 4 + the ones still finishing.
    assert.ok(server.stats.requests < 8 * 6, `${server.stats.requests} requests`);
  } finally {
    await engine.close();
    await server.close();
  }
});

test('engine: a 503 asking to wait longer than maxRetryAfterSeconds fails at once, naming the status', async () => {
  const server = await TransferServer.start();
  const engine = new TransferEngine({ ...fastOptions, connections: 4, maxRetryAfterSeconds: 5 });
  try {
    const data = patternBytes(3 * MiB, 23);
    server.addFile('/down', data, { status: { code: 503, times: 1, headers: { 'retry-after': '3600' } } });
    await assert.rejects(engine.download(request(server, '/down', data, await layout())), /503/);
    assert.equal(server.stats.statuses.filter((s) => s === 503).length, 1, 'not retried');
  } finally {
    await engine.close();
    await server.close();
  }
});

test('SerialFileWriter: in place while writes are quick; after a slow one, on the thread pool, in order', async () => {
  const { SerialFileWriter } = await import('../src/transfer/disk.js');
  const { promises: fsp } = await import('node:fs');
  const dir = await tempDir();
  const file = `${dir}/out.bin`;
  const fh = await fsp.open(file, 'w+');
  let slowOnce = true;
  const hooks = {
    beforeWrite: ({ position }: { position: number }) => {
      // The third batch stalls like a write to a congested network file system.
      if (position === 2 * MiB && slowOnce) {
        slowOnce = false;
        const until = performance.now() + 80;
        while (performance.now() < until) {
          /* block */
        }
      }
    },
  };
  try {
    const w = new SerialFileWriter({ fh, path: file }, hooks);
    const write = w.from(0);
    const batches = Array.from({ length: 6 }, (_, i) => patternBytes(MiB, 10 + i));
    const done: Array<Promise<void>> = [];
    for (const [i, b] of batches.entries()) {
      done.push(write(b, b.length));
      if (i === 1) assert.equal(w.onEventLoop, true, 'quick writes stay on the event loop');
    }
    assert.equal(w.onEventLoop, false, 'a write slower than 50 ms moved the rest to the thread pool');
    await Promise.all(done);
    assert.ok((await fsp.readFile(file)).equals(Buffer.concat(batches)));
  } finally {
    await fh.close();
  }
});

test('a slow connection does not hold up the end: idle workers take over the rest of its stretch', async () => {
  const server = await TransferServer.start();
  const engine = new TransferEngine({ ...fastOptions, connections: 4, chunkSize: 1 * MiB });
  try {
    const data = patternBytes(8 * MiB, 9);
    // Every stream is capped (so all 4 connections open); the 3rd response crawls at 128 KiB/s.
    // Without taking over its stretch (up to 1 MiB), the download would wait up to 8 s for it;
    // with it, only for the 256 KiB chunk it is receiving.
    server.addFile('/edge', data, {
      throttleBytesPerSec: 8 * MiB,
      slowResponses: { skip: 2, times: 1, bytesPerSec: 128 * 1024 },
    });
    server.resetStats();
    const started = Date.now();
    const r = await engine.download(request(server, '/edge', data, await layout()));
    assert.equal(r.sha256, sha256(data));
    assert.ok(Date.now() - started < 3500, `took ${Date.now() - started} ms`);
    assert.equal(r.downloadedBytes, data.length, 'no byte fetched twice');
  } finally {
    await engine.close();
    await server.close();
  }
});
