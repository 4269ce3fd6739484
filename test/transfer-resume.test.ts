// Transfer engine: resume after crashes (SIGKILL at several points), adoption of
// huggingface_hub partials, changed remotes, and racing writers without any lock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TransferEngine } from '../src/transfer/engine.js';
import { patternBytes, sha256, TransferServer } from './fixtures/transfer-server.js';
import {
  childConfig,
  fastOptions,
  KiB,
  layout,
  MiB,
  partials,
  readFinal,
  removeTempDirs,
  request,
  resultOf,
  startChild,
  type Layout,
} from './fixtures/transfer-helpers.js';

let server: TransferServer;
let engine: TransferEngine;
const data = patternBytes(4 * MiB + 999, 3);
const small = patternBytes(600 * KiB, 4);
const slow = { throttleBytesPerSec: 2 * MiB };

before(async () => {
  server = await TransferServer.start();
  engine = new TransferEngine(fastOptions);
});
after(async () => {
  await engine.close();
  await server.close();
  await removeTempDirs();
});

/** Finish in this process and check the resume really saved network bytes. */
async function finishAndCheck(l: Layout, urlPath: string, content: Buffer): Promise<{ resumed: number; sent: number }> {
  server.setFaults(urlPath, {});
  server.resetStats();
  const r = await engine.download(request(server, urlPath, content, l));
  assert.equal(r.sha256, sha256(content));
  assert.ok((await readFinal(l)).equals(content));
  assert.deepEqual(await partials(l), [], 'no partial left');
  return { resumed: r.resumedBytes, sent: server.stats.bytesSent };
}

test('SIGKILL after some chunks: the next run resumes and fetches only what is missing', async () => {
  // 1 MiB/s: a checkpoint (an fdatasync) has a second to finish before the next MiB, even on a loaded machine.
  server.addFile('/k1', data, { throttleBytesPerSec: 1 * MiB });
  const l = await layout();
  const run = await startChild(childConfig(server, '/k1', data, l, { killAt: { at: 'bytes', bytes: 2 * MiB } })).done;
  assert.equal(run.signal, 'SIGKILL');
  const onDisk = (await partials(l)).length;
  assert.equal(onDisk, 1);
  const { resumed, sent } = await finishAndCheck(l, '/k1', data);
  assert.ok(resumed > 1 * MiB, `resumed ${resumed}`);
  assert.ok(sent < data.length, `fetched ${sent} of ${data.length}`);
  assert.ok(sent <= data.length - resumed + 64 * KiB);
});

test('SIGKILL right after a state checkpoint: exactly the checkpointed bytes are resumed', async () => {
  server.addFile('/k2', data, slow);
  const l = await layout();
  const run = await startChild(childConfig(server, '/k2', data, l, { killAt: { at: 'checkpoint', seq: 5 } })).done;
  assert.equal(run.signal, 'SIGKILL');
  const last = run.events.filter((e) => e['event'] === 'checkpoint').at(-1);
  const doneBytes = Number(last?.['doneBytes']);
  assert.ok(doneBytes > 0);
  const { resumed, sent } = await finishAndCheck(l, '/k2', data);
  assert.equal(resumed, doneBytes);
  assert.equal(sent, data.length - doneBytes);
});

test('SIGKILL mid-download with a slow heartbeat: checkpoints follow the data, little is fetched again', async () => {
  // 12 MiB over 4 streams of 1 MiB/s (slow enough that an fdatasync keeps up on a loaded machine); the heartbeat (which also checkpoints) is 10 s away, so
  // only the data-driven checkpoints can save what arrived. Every 64 MiB saved nothing here.
  const big = patternBytes(12 * MiB, 31);
  server.addFile('/k5', big, { throttleBytesPerSec: 1 * MiB });
  const l = await layout();
  const options = { ...fastOptions, heartbeatIntervalMs: 10_000, staleAfterSeconds: 30 };
  const run = await startChild(childConfig(server, '/k5', big, l, { options, killAt: { at: 'bytes', bytes: 6 * MiB } }))
    .done;
  assert.equal(run.signal, 'SIGKILL');
  const arrived = Math.max(...run.events.filter((e) => e['event'] === 'progress').map((e) => Number(e['bytes'])));
  const saved = run.events.filter((e) => e['event'] === 'checkpoint').at(-1);
  const { resumed, sent } = await finishAndCheck(l, '/k5', big);
  assert.equal(resumed, Number(saved?.['doneBytes']), 'exactly the last checkpoint is trusted');
  // A checkpoint is due at 1 MiB (or 1%) past the previous one: the rest was in flight.
  assert.ok(arrived - resumed <= 2 * MiB, `${arrived} arrived, ${resumed} resumed`);
  assert.equal(sent, big.length - resumed);
});

test('SIGKILL during commit (verified, before rename): the next run commits without fetching', async () => {
  server.addFile('/k3', data);
  const l = await layout();
  const run = await startChild(childConfig(server, '/k3', data, l, { killAt: { at: 'commit' } })).done;
  assert.equal(run.signal, 'SIGKILL');
  await assert.rejects(fsp.stat(l.finalPath), 'finalPath must not exist before the rename');
  const { resumed, sent } = await finishAndCheck(l, '/k3', data);
  assert.equal(resumed, data.length);
  assert.equal(sent, 0);
});

test('external kill -9 at an arbitrary moment, then a second process resumes', async () => {
  server.addFile('/k4', data, slow);
  const l = await layout();
  const child = startChild(childConfig(server, '/k4', data, l));
  await child.waitFor((e) => e['event'] === 'progress' && Number(e['bytes']) > 1.5 * MiB);
  child.kill('SIGKILL');
  await child.done;
  server.setFaults('/k4', {});
  server.resetStats();
  const second = await startChild(childConfig(server, '/k4', data, l)).done;
  const r = resultOf(second);
  assert.ok(r, second.stderr);
  assert.equal(r['sha256'], sha256(data));
  // At most about one heartbeat interval of work is lost (plus what was in flight at the kill).
  assert.ok(Number(r['resumedBytes']) > 0, JSON.stringify(r));
  assert.ok(server.stats.bytesSent < data.length);
  assert.deepEqual(await partials(l), []);
});

async function hfPartial(l: Layout, name: string, content: Buffer, ageMs = 5000): Promise<string> {
  const p = path.join(l.blobs, name);
  await fsp.writeFile(p, content);
  const t = new Date(Date.now() - ageMs);
  await fsp.utimes(p, t, t);
  return p;
}

test("huggingface_hub's <etag>.<8hex>.incomplete and <etag>.incomplete are adopted as a prefix", async () => {
  for (const [content, name] of [
    [data, 'deadbeef'],
    [small, 'cafef00d'],
    [data, ''],
  ] as const) {
    server.addFile('/hf', content);
    const l = await layout(sha256(content));
    const prefix = Math.floor(content.length * 0.4);
    await hfPartial(l, name ? `${l.key}.${name}.incomplete` : `${l.key}.incomplete`, content.subarray(0, prefix));
    const { resumed, sent } = await finishAndCheck(l, '/hf', content);
    assert.equal(resumed, prefix);
    assert.equal(sent, content.length - prefix);
  }
});

test('a bad huggingface_hub partial costs a restart from zero, not an error; a fresh one is waited for', async () => {
  server.addFile('/hf2', data);
  const l = await layout(sha256(data));
  const junk = Buffer.from(data.subarray(0, 2 * MiB));
  junk[1000] = (junk[1000] ?? 0) ^ 1;
  await hfPartial(l, `${l.key}.0badf00d.incomplete`, junk);
  const { resumed, sent } = await finishAndCheck(l, '/hf2', data);
  assert.equal(resumed, 0);
  assert.equal(sent, data.length + (data.length - 2 * MiB));

  // A partial that is still growing (Python writing it) is not touched; when it stops
  // growing for liveWriterWaitSeconds we download on our own.
  const e = new TransferEngine({ ...fastOptions, foreignStaleAfterSeconds: 30, liveWriterWaitSeconds: 0.5 });
  try {
    const l2 = await layout(sha256(data));
    const live = await hfPartial(l2, `${l2.key}.12345678.incomplete`, data.subarray(0, MiB), 0);
    server.resetStats();
    const t0 = Date.now();
    const r = await e.download(request(server, '/hf2', data, l2));
    assert.ok(Date.now() - t0 >= 450);
    assert.equal(r.resumedBytes, 0);
    assert.equal((await fsp.stat(live)).size, MiB, 'the live foreign partial was left alone');
  } finally {
    await e.close();
  }
});

test('changed remote (different sha256): the old partial is deleted, never spliced', async () => {
  const v1 = data;
  const v2 = patternBytes(data.length, 77);
  server.addFile('/changing', v1, slow);
  const l = await layout('model.bin');
  await startChild(childConfig(server, '/changing', v1, l, { killAt: { at: 'checkpoint', seq: 4 } })).done;
  assert.equal((await partials(l)).length, 1);
  server.addFile('/changing', v2);
  server.resetStats();
  const r = await engine.download(request(server, '/changing', v2, l));
  assert.equal(r.sha256, sha256(v2));
  assert.equal(r.resumedBytes, 0);
  assert.equal(server.stats.bytesSent, v2.length);
  assert.deepEqual(await partials(l), []);
});

test('racing writers, locks disabled, first writer live: one download, others wait for it', async () => {
  server.addFile('/race', data, { throttleBytesPerSec: 1 * MiB });
  server.resetStats();
  const l = await layout();
  // A longer stale window than the other tests: a loaded CI box must not make a live writer look dead.
  const opts = { ...fastOptions, staleAfterSeconds: 8 };
  const first = startChild(childConfig(server, '/race', data, l, { options: opts }));
  await first.waitFor((e) => e['event'] === 'checkpoint');
  const others = [1, 2, 3].map(() => startChild(childConfig(server, '/race', data, l, { options: opts })));
  const runs = await Promise.all([first.done, ...others.map((o) => o.done)]);
  for (const run of runs) assert.equal(resultOf(run)?.['finalPath'], l.finalPath, run.stderr);
  assert.ok((await readFinal(l)).equals(data));
  assert.deepEqual(await partials(l), []);
  const total = server.stats.bytesSent;
  assert.ok(total <= data.length * 1.1, `fetched ${(total / data.length).toFixed(2)}x`);
});

test('racing writers started at the same instant: correct file, no partial left, little waste', async () => {
  server.addFile('/race2', data, { throttleBytesPerSec: 2 * MiB });
  server.resetStats();
  const l = await layout();
  // A longer stale window than the other tests: a loaded CI box must not make a live writer look dead.
  const opts = { ...fastOptions, staleAfterSeconds: 8 };
  const runs = await Promise.all(
    [0, 1, 2, 3].map(() => startChild(childConfig(server, '/race2', data, l, { options: opts })).done),
  );
  for (const run of runs) assert.ok(resultOf(run), run.stderr);
  assert.ok((await readFinal(l)).equals(data));
  assert.deepEqual(await partials(l), []);
  const ratio = server.stats.bytesSent / data.length;
  // Writers that see each other's fresh partial yield to the smallest writer id.
  assert.ok(ratio <= 2, `fetched ${ratio.toFixed(2)}x`);
  if (process.env['TRANSFER_VERBOSE']) console.log(`simultaneous writers fetched ${ratio.toFixed(2)}x`);
});

test('a frozen writer (SIGSTOP) is taken over; when it wakes it gives up cleanly', async () => {
  server.addFile('/zombie', data, slow);
  const l = await layout();
  const a = startChild(childConfig(server, '/zombie', data, l));
  await a.waitFor((e) => e['event'] === 'checkpoint' && Number(e['doneBytes']) > 512 * KiB);
  a.kill('SIGSTOP');
  server.setFaults('/zombie', {});
  server.resetStats();
  try {
    const r = await engine.download(request(server, '/zombie', data, l));
    assert.equal(r.sha256, sha256(data));
    assert.ok(r.resumedBytes > 0, 'took over the frozen writer’s bytes');
  } finally {
    a.kill('SIGCONT');
  }
  const runA = await a.done;
  assert.ok(resultOf(runA), runA.stderr);
  assert.ok((await readFinal(l)).equals(data));
  assert.equal((await fsp.stat(l.finalPath)).size, data.length);
  assert.deepEqual(await partials(l), []);
});
