// Lease protocol and the conditional-write probe against a real Ceph RGW; the probe's refusal is
// shown against a test double that answers 200 to every PUT (a store without conditional writes).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3Objects, s3ConfigFromEnv } from '../src/stores/s3-client.js';
import { type Lease, S3Leases, probeConditionalWrites } from '../src/stores/s3-lease.js';
import { leaseKey } from '../src/stores/s3-layout.js';
import {
  ConditionalWritesUnsupportedError,
  LeaseLostError,
  StoreUnavailableError,
} from '../src/stores/store-errors.js';
import { cuttingRelay } from './fixtures/cutting-relay.js';
import { rgwSkip, useRgw, type Rgw } from './fixtures/rgw.js';

const blob = (): string => randomBytes(32).toString('hex');

describe('leases on a real Ceph RGW', { skip: rgwSkip }, () => {
  const rgw = useRgw();
  let bucket: string;
  const opened: S3Objects[] = [];
  /** One replica: its own S3 client, as separate processes would have. */
  before(async () => {
    if (!rgwSkip) bucket = await rgw().newBucket();
  });
  after(() => opened.forEach((o) => o.destroy()));
  const replica = async (holder: string, ttlMs = 30_000, r: Rgw = rgw()): Promise<S3Leases> => {
    const objects = new S3Objects(s3ConfigFromEnv(`s3://${bucket}/cluster`, { env: r.env }));
    opened.push(objects);
    return new S3Leases(objects, {
      holder,
      address: `http://127.0.0.1:${9000 + opened.length}`,
      ttlMs,
      clockSkewMs: 0,
    });
  };

  test('five replicas acquire one lease at once: exactly one wins, the others are told who holds it', async () => {
    const name = blob();
    const replicas = await Promise.all(['r1', 'r2', 'r3', 'r4', 'r5'].map((h) => replica(h)));
    const results = await Promise.all(replicas.map((r) => r.acquire(name)));
    const winners = results.filter((r) => r.acquired);
    assert.equal(winners.length, 1);
    const lease = (winners[0] as { lease: Lease }).lease;
    for (const r of results) {
      if (r.acquired) continue;
      assert.equal(r.current.holder, lease.record.holder);
      assert.equal(r.current.address, lease.record.address);
      assert.equal(r.etag, lease.etag);
    }
    const stored = await replicas[0]!.read(name);
    assert.deepEqual(stored?.record, lease.record);
    assert.equal(await lease.release(), true);
    assert.equal(await replicas[0]!.read(name), undefined);
    // Released: the next one creates it afresh.
    const again = await replicas[1]!.acquire(name);
    assert.equal(again.acquired && !again.takeover, true);
  });

  test('an expired lease is taken over by If-Match; the old holder cannot renew or release it', async () => {
    const name = blob();
    const a = await replica('a', 400);
    const b = await replica('b', 400);
    const ra = await a.acquire(name);
    assert.ok(ra.acquired);
    const stale = ra.lease.etag;
    await ra.lease.renew(); // a renewal by the holder works and changes the ETag
    assert.notEqual(ra.lease.etag, stale);
    const live = await b.acquire(name);
    assert.equal(live.acquired, false);

    await b.waitUntilExpired(ra.lease.record);
    const rb = await b.acquire(name);
    assert.ok(rb.acquired && rb.takeover);
    assert.equal((await a.read(name))?.record.holder, 'b');
    await assert.rejects(ra.lease.renew(), LeaseLostError);
    assert.equal(await ra.lease.release(), false, 'not ours any more: nothing deleted');
    assert.equal((await a.read(name))?.record.holder, 'b');

    // A takeover with a stale ETag (the version before b's) is refused.
    const c = await replica('c', 400);
    assert.equal(await c.takeOver(name, stale), undefined);
    assert.equal(await c.takeOver(name, ra.lease.etag), undefined);
    assert.equal((await c.read(name))?.record.holder, 'b');
    assert.equal(await rb.lease.release(), true);
  });

  test('three replicas take over one expired lease at once: exactly one wins', async () => {
    const name = blob();
    const dead = await replica('dead', 300);
    const r = await dead.acquire(name);
    assert.ok(r.acquired);
    const others = await Promise.all(['x', 'y', 'z'].map((h) => replica(h, 30_000)));
    await others[0]!.waitUntilExpired(r.lease.record);
    const results = await Promise.all(others.map((o) => o.acquire(name)));
    assert.equal(results.filter((x) => x.acquired).length, 1);
    const winner = results.find((x) => x.acquired) as { lease: Lease; takeover: boolean };
    assert.equal(winner.takeover, true);
    for (const x of results) if (!x.acquired) assert.equal(x.current.holder, winner.lease.record.holder);
  });

  test('a heartbeat keeps the lease past its TTL; stopped, it expires and is taken over', async () => {
    const name = blob();
    const a = await replica('a', 4000);
    const b = await replica('b', 4000);
    const r = await a.acquire(name);
    assert.ok(r.acquired);
    const lost: Error[] = [];
    r.lease.startHeartbeat((err) => lost.push(err), 500); // margins for a loaded machine: 8 beats per TTL
    const firstExpiry = r.lease.record.expiresAt;
    await a.waitUntilExpired({ ...r.lease.record, expiresAt: firstExpiry });
    await sleep(600);
    assert.notEqual(r.lease.record.expiresAt, firstExpiry, 'renewed');
    assert.equal((await b.acquire(name)).acquired, false);
    r.lease.stopHeartbeat();
    await b.waitUntilExpired(r.lease.record);
    const rb = await b.acquire(name);
    assert.ok(rb.acquired && rb.takeover);
    assert.deepEqual(lost, []);
  });

  test('a heartbeat that finds its lease taken over reports it lost', async () => {
    const name = blob();
    const a = await replica('a', 300);
    const b = await replica('b', 300);
    const r = await a.acquire(name);
    assert.ok(r.acquired);
    // b takes over the version a holds now, as if a had stalled past its expiry.
    const taken = await b.takeOver(name, r.lease.etag);
    assert.ok(taken);
    const lost = new Promise<Error>((resolve) => r.lease.startHeartbeat(resolve, 20));
    assert.ok((await lost) instanceof LeaseLostError);
  });

  test("the leases are listed with their holders (the dashboard's replicas and fills)", async () => {
    const a = await replica('lister', 30_000);
    const names = [blob(), blob()];
    for (const n of names) assert.ok((await a.acquire(n)).acquired);
    const seen = new Map<string, string>();
    for await (const l of a.list()) seen.set(l.name, l.record.holder);
    for (const n of names) assert.equal(seen.get(n), 'lister');
  });

  test('the probe passes on RGW and leaves nothing behind; gateway down: StoreUnavailableError', async () => {
    const a = await replica('probe');
    await probeConditionalWrites(a.objects);
    const left: string[] = [];
    for await (const o of a.objects.list('probe/')) left.push(o.key);
    assert.deepEqual(left, []);

    const name = blob();
    const r = await a.acquire(name);
    assert.ok(r.acquired);
    await rgw().stopGateway();
    try {
      await assert.rejects(probeConditionalWrites(a.objects), StoreUnavailableError);
      await assert.rejects(a.acquire(blob()), StoreUnavailableError);
      await assert.rejects(r.lease.renew(), StoreUnavailableError, 'unreachable is not lost');
    } finally {
      await rgw().start();
    }
    await r.lease.renew();
    assert.equal(await r.lease.release(), true);
  });

  test('a conditional PUT whose answer is lost (the SDK retries into a 412) is still recognised as ours', async () => {
    const relay = await cuttingRelay(rgw().endpoint);
    const objects = new S3Objects(
      s3ConfigFromEnv(`s3://${bucket}/cluster`, { env: { ...rgw().env, AWS_ENDPOINT_URL_S3: relay.endpoint } }),
    );
    opened.push(objects);
    const a = new S3Leases(objects, { holder: 'lossy', address: 'http://127.0.0.1:1', ttlMs: 30_000 });
    const other = await replica('other');
    try {
      const name = blob();
      relay.arm(1, 0); // the create lands, its answer is cut before the first byte
      const r = await a.acquire(name);
      assert.ok(r.acquired && !r.takeover, 'acquired, not "held by lossy"');
      assert.deepEqual((await other.read(name))?.record, r.lease.record);
      relay.arm(1, 0); // the same for a renewal by If-Match
      await r.lease.renew();
      assert.equal((await other.read(name))?.etag, r.lease.etag);
      assert.equal(await r.lease.release(), true);
      // And a competing create from another replica is still refused.
      relay.arm(1, 0);
      assert.ok((await other.acquire(name)).acquired);
      assert.equal((await a.acquire(name)).acquired, false);
    } finally {
      relay.close();
    }
  });

  test('lease keys follow the layout', () => {
    const k = 'a'.repeat(64);
    assert.equal(leaseKey(k), `leases/sha256/${k}.json`);
    assert.equal(leaseKey('b'.repeat(40)), `leases/sha1/${'b'.repeat(40)}.json`);
  });
});

describe('conditional-write probe against a store without conditional writes', () => {
  test('a double that answers 200 to both create-only PUTs is refused with a clear error', async () => {
    const puts: Array<string | undefined> = [];
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'PUT') puts.push(req.headers['if-none-match']);
        res.writeHead(req.method === 'DELETE' ? 204 : 200, { ETag: '"0123"', 'Content-Length': '0' });
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const env = { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` };
    const objects = new S3Objects(s3ConfigFromEnv('s3://nocond/x', { env }));
    try {
      await assert.rejects(probeConditionalWrites(objects), (err: unknown) => {
        assert.ok(err instanceof ConditionalWritesUnsupportedError, String(err));
        assert.match(err.message, /does not do conditional writes: both of two concurrent create-only PUTs/);
        assert.match(err.hint ?? '', /If-None-Match/);
        return true;
      });
      assert.deepEqual(puts, ['*', '*'], 'both PUTs were create-only');
    } finally {
      objects.destroy();
      server.close();
    }
  });
});
