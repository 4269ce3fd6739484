// `hubcache serve`: single-flight fills streamed from the partial file, callers that leave,
// an upstream that dies mid-fill, and ranges answered from the prefix while the fill is stalled.
import assert from 'node:assert/strict';
import http from 'node:http';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { generatedContent, startTestHub, type TestHub } from './fixtures/test-hub.js';
import { raw, rawAllowCut, startMirror, type TestMirror } from './fixtures/mirror.js';

const SIZE = 4 * 1024 * 1024 + 3;
const content = generatedContent(SIZE, 11);
const bytes = content.toBuffer();
const FILE = '/org/big/resolve/main/model.safetensors';

describe('serve: fills', () => {
  let hub: TestHub;
  let m: TestMirror;

  beforeEach(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/big').commit({ 'model.safetensors': { size: SIZE, seed: 11 } });
    m = await startMirror([hub.hfEndpoint], {
      transfer: { retryBaseDelayMs: 20, maxRetryDelayMs: 50, maxRetries: 1, stallTimeoutSeconds: 1 },
    });
  });
  afterEach(async () => {
    hub.faults.clear();
    await m.close();
    await hub.close();
  });

  const cdnGets = (): number => hub.countRequests((r) => r.host === 'cdn' && r.method === 'GET');

  test('8 concurrent cold clients cost one upstream transfer and get identical bytes', async () => {
    hub.throttleBytesPerSec = 8 * 1024 * 1024; // ~0.5 s: the clients overlap the fill
    const ev = m.mirror.services.events;
    const seen = {
      start: 0,
      join: 0,
      end: [] as boolean[],
      requests: [] as Array<{ source: string; bytes: number; status: number }>,
    };
    ev.on('fill-start', () => seen.start++);
    ev.on('fill-join', () => seen.join++);
    ev.on('fill-end', (e) => seen.end.push(e.ok));
    ev.on('request', (e) => seen.requests.push({ source: e.source, bytes: e.bytes, status: e.status }));
    const answers = await Promise.all(Array.from({ length: 8 }, () => raw(`${m.url}${FILE}`)));
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.body.length, SIZE);
      assert.ok(a.body.equals(bytes));
    }
    assert.equal(cdnGets(), 1, 'one body transfer upstream');
    // The fill uses the CDN URL of the mirror's own resolve HEAD: no second HEAD by the engine.
    assert.equal(
      hub.countRequests((r) => r.method === 'HEAD'),
      1,
      'one resolve HEAD upstream for the whole cold fill',
    );
    // Warm now: served from the store, still one transfer in total.
    assert.ok((await raw(`${m.url}${FILE}`)).body.equals(bytes));
    assert.equal(cdnGets(), 1);
    // The events a metrics module counts: one fill, 7 single-flight joins, bytes per source.
    assert.equal(seen.start, 1);
    assert.equal(seen.join, 7);
    assert.deepEqual(seen.end, [true]);
    for (let i = 0; i < 100 && seen.requests.length < 9; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(
      seen.requests.map((r) => `${r.status} ${r.source} ${r.bytes}`).sort(),
      [...Array<string>(8).fill(`200 fill ${SIZE}`), `200 store ${SIZE}`].sort(),
    );
  });

  test('a client that disconnects mid-stream does not stop the fill for the others', async () => {
    hub.throttleBytesPerSec = 4 * 1024 * 1024;
    const leaver = new Promise<number>((resolve, reject) => {
      const req = http.get(`${m.url}${FILE}`, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 0) req.destroy(); // leave after the first bytes
        });
        res.on('close', () => resolve(got));
      });
      req.on('error', () => undefined);
      req.on('close', () => undefined);
      setTimeout(() => reject(new Error('leaver never got a byte')), 20_000).unref();
    });
    const stayer = raw(`${m.url}${FILE}`);
    const got = await leaver;
    assert.ok(got > 0 && got < SIZE);
    const s = await stayer;
    assert.equal(s.status, 200);
    assert.ok(s.body.equals(bytes));
    assert.equal(cdnGets(), 1);
  });

  test('a range inside the written prefix is answered while the fill is stalled upstream', async () => {
    hub.faults.stallAfterBytes(2 * 1024 * 1024, { host: 'cdn' });
    const whole = raw(`${m.url}${FILE}`);
    // Wait until the fill exists and has its first MiB on disk.
    const fills = m.mirror.services.fills;
    for (let i = 0; i < 400 && !(fills.active()[0]?.bytes ?? 0 >= 1024 * 1024); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.ok((fills.active()[0]?.bytes ?? 0) >= 1024 * 1024, 'fill got its first MiB');
    const part = await raw(`${m.url}${FILE}`, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(bytes.subarray(1000, 2000)));
    assert.equal(fills.active().length, 1, 'answered before the fill ended');
    // The stalled connection is retried (stall timeout) and resumed; the whole body arrives intact.
    const w = await whole;
    assert.equal(w.status, 200);
    assert.ok(w.body.equals(bytes));
  });

  test('upstream killed mid-fill: every waiter is cut (no short 200), the next request fills again', async () => {
    hub.throttleBytesPerSec = 8 * 1024 * 1024;
    hub.faults.dropAfterBytes(1024 * 1024, { host: 'cdn' });
    hub.faults.status(500, { host: 'cdn', times: Infinity });
    const waiters = await Promise.all(Array.from({ length: 3 }, () => rawAllowCut(`${m.url}${FILE}`)));
    for (const w of waiters) {
      if (w.status === 502) continue; // failed before its first byte: a clean error answer
      assert.equal(w.status, 200);
      assert.equal(w.complete, false, 'connection cut, not a clean end');
      assert.ok(w.body.length < SIZE);
      assert.ok(w.body.equals(bytes.subarray(0, w.body.length)), 'what arrived is the right prefix');
    }
    const failedFill = m.mirror.services.fills.active();
    assert.equal(failedFill.length, 0, 'the failed fill is gone');
    hub.faults.clear();
    const again = await raw(`${m.url}${FILE}`);
    assert.equal(again.status, 200);
    assert.ok(again.body.equals(bytes));
  });

  test('shutdown with a stream open longer than the drain bound: the stream is cut, close() returns', async () => {
    hub.throttleBytesPerSec = 512 * 1024; // ~8 s for the file: longer than the bound
    const pending = rawAllowCut(`${m.url}${FILE}`);
    const fills = m.mirror.services.fills;
    for (let i = 0; i < 400 && (fills.active()[0]?.bytes ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await m.mirror.close(300);
    const r = await pending;
    assert.equal(r.complete, false, 'cut, not a short clean body');
    assert.ok(r.body.length < SIZE);
  });

  test('a HEAD on an uncached file starts the fill; the GET after it joins it (one upstream transfer)', async () => {
    const key = { repo: { hub: 'hf' as const, type: 'model' as const, id: 'org/big' }, etag: content.sha256() };
    const head = await raw(`${m.url}${FILE}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(SIZE));
    assert.equal(head.body.length, 0);
    // The HEAD alone brings the blob into the store.
    const store = m.mirror.services.store;
    for (let i = 0; i < 1000 && !(await store.has(key)); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await store.has(key), true, 'blob in the store after a HEAD alone');
    assert.equal(cdnGets(), 1);
    const get = await raw(`${m.url}${FILE}`);
    assert.ok(get.body.equals(bytes));
    assert.equal(cdnGets(), 1, 'the GET after the HEAD cost no second transfer');
  });

  test('a GET right after a HEAD joins the fill the HEAD started', async () => {
    hub.throttleBytesPerSec = 8 * 1024 * 1024; // ~0.5 s: the GET arrives while the fill runs
    let starts = 0;
    let joins = 0;
    m.mirror.services.events.on('fill-start', () => starts++);
    m.mirror.services.events.on('fill-join', () => joins++);
    assert.equal((await raw(`${m.url}${FILE}`, { method: 'HEAD' })).status, 200);
    const get = await raw(`${m.url}${FILE}`);
    assert.equal(get.status, 200);
    assert.ok(get.body.equals(bytes));
    assert.equal(starts, 1);
    assert.equal(joins, 1, 'the GET joined the running fill');
    assert.equal(cdnGets(), 1);
  });

  test('content that fails its hash is never served whole', async () => {
    hub.faults.corruptBytes({ host: 'cdn', times: Infinity });
    const w = await rawAllowCut(`${m.url}${FILE}`);
    assert.equal(w.complete, false);
    assert.ok(w.body.length < SIZE, `held-back tail not sent (${w.body.length})`);
    assert.equal(
      await m.mirror.services.store.has({ repo: { hub: 'hf', type: 'model', id: 'org/big' }, etag: content.sha256() }),
      false,
    );
  });
});
