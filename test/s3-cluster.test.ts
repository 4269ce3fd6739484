// Cluster mode end to end: three real `hubcache serve --store s3://...` replicas (child processes) on one
// bucket of a real Ceph RGW, in front of the test hub. Upstream cost is counted at the hub's CDN.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { peerBlobPath } from '../src/cluster/blob-fill.js';
import { PEER_HEADER, signPeerRequest } from '../src/cluster/peer-auth.js';
import type { ClusterCounters } from '../src/cluster/services.js';
import { createMirror } from '../src/server/app.js';
import { DEFAULT_SERVE_OPTIONS } from '../src/server/options.js';
import { ConditionalWritesUnsupportedError } from '../src/stores/store-errors.js';
import { generatedContent, startTestHub, type TestHub } from './fixtures/test-hub.js';
import { raw } from './fixtures/mirror.js';
import { rgwSkip, useRgw } from './fixtures/rgw.js';
import { ROOT, runCli, tempDir } from './helpers.js';

const MiB = 1024 * 1024;
const SECRET = 'test-cluster-secret-0123456789';
const SIZE = 3 * MiB;

interface Replica {
  url: string;
  child: ChildProcess;
  cacheDir: string;
  logs: () => Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

describe('cluster: serve flags', () => {
  const keys = { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' };
  test('bad cluster flags are usage errors (exit 2) with one clear message', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--store', 's3://bkt/p'], keys, /--store needs --cluster-secret/],
      [['--cluster-secret', SECRET], keys, /--cluster-secret are for cluster mode/],
      [['--store', 's3://bkt/p', '--cluster-secret', 'short'], keys, /at least 16 characters/],
      [['--store', 's3://B_/p', '--cluster-secret', SECRET], keys, /not a valid S3 bucket name/],
      [['--store', 'http://bkt/p', '--cluster-secret', SECRET], keys, /not an s3:\/\/ store URL/],
      [['--store', 's3://bkt/p', '--s3-endpoint', 'ftp://x', '--cluster-secret', SECRET], keys, /http:\/\/ or https/],
      [['--store', 's3://bkt/p', '--cluster-secret', SECRET, '--advertise-url', 'nope'], keys, /--advertise-url/],
      [['--store', 's3://bkt/p', '--cluster-secret', SECRET, '--lease-ttl', '0s'], keys, /--lease-ttl/],
      [['--store', 's3://bkt/p', '--cluster-secret', SECRET], { AWS_ACCESS_KEY_ID: 'k' }, /must be set together/],
    ];
    for (const [args, env, re] of cases) {
      const r = await runCli(['serve', '--port', '0', '--cache-dir', await tempDir(), ...args], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  test('a store that cannot be reached: the replica refuses to start, exit 26', async () => {
    const r = await runCli(
      [
        'serve',
        '--port',
        '0',
        '--cache-dir',
        await tempDir(),
        '--store',
        's3://bkt/p',
        '--s3-endpoint',
        'http://127.0.0.1:9',
      ],
      { ...keys, HUBCACHE_CLUSTER_SECRET: SECRET },
    );
    assert.equal(r.code, 26, r.stderr);
    assert.match(r.stderr, /cluster mode cannot start: .*ECONNREFUSED/);
    assert.doesNotMatch(r.stdout, /listening/);
  });
});

describe('cluster: replicas on one S3 bucket', { skip: rgwSkip }, () => {
  const rgw = useRgw();
  let hub: TestHub;
  let bucket: string;
  const replicas: Replica[] = [];
  const sha: Record<string, string> = {};

  async function startReplica(cacheDir?: string): Promise<Replica> {
    const dir = cacheDir ?? (await tempDir('hubcache-replica-'));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'test/fixtures/cli-child.ts'),
        'serve',
        '--port',
        '0',
        '--upstream',
        hub.hfEndpoint,
        '--modelscope-upstream',
        hub.msEndpoint,
        '--store',
        `s3://${bucket}/hc`,
        '--cache-dir',
        dir,
        '--lease-ttl',
        '3s',
        '--log-level',
        'info',
      ],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...rgw().env, HUBCACHE_CLUSTER_SECRET: SECRET },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /listening on (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`replica exited ${code}: ${stderr}`)));
    });
    const logs = (): Array<Record<string, unknown>> =>
      stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const r = { url, child, cacheDir: dir, logs, exited };
    replicas.push(r);
    return r;
  }

  /** What a replica did for the cluster (its signed status endpoint). */
  async function counters(r: Replica): Promise<ClusterCounters> {
    const p = '/_hubcache/peer/status';
    const a = await raw(r.url + p, { headers: { [PEER_HEADER]: signPeerRequest(SECRET, 'r-test', 'GET', p) } });
    assert.equal(a.status, 200);
    return (JSON.parse(a.body.toString()) as { counters: ClusterCounters }).counters;
  }
  /** The holder uploads after its callers got the blob: wait (bounded) until the store has it. */
  async function uploaded(r: Replica, n: number): Promise<void> {
    for (let i = 0; i < 200 && (await counters(r)).uploads < n; i++) await sleep(50);
    assert.ok((await counters(r)).uploads >= n, 'the holder uploaded the blob');
  }
  const sum = async (rs: Replica[], k: keyof ClusterCounters): Promise<number> =>
    (await Promise.all(rs.map(counters))).reduce((n, c) => n + c[k], 0);

  /** `cluster fill` log lines of a replica for one blob: where it filled it from. */
  const fillSources = (r: Replica, key: string): string[] =>
    r
      .logs()
      .filter((l) => l.msg === 'cluster fill' && (l.cluster as { key?: string })?.key === key)
      .map((l) => (l.cluster as { source: string }).source);

  /** Log lines reach us through a pipe, a little after the response: wait for them (bounded). */
  async function logged<T>(get: () => T, ok: (v: T) => boolean): Promise<T> {
    for (let i = 0; i < 100; i++) {
      const v = get();
      if (ok(v)) return v;
      await sleep(50);
    }
    return get();
  }

  const cdn = (file: string) =>
    hub.findRequests((q) => q.host === 'cdn' && q.method === 'GET' && q.path.includes(sha[file]!));
  const cdnBytes = (file: string): number => cdn(file).reduce((n, q) => n + q.bytesSent, 0);
  const fileUrl = (r: Replica, file: string): string => `${r.url}/org/m/resolve/main/${file}`;
  const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  before(async () => {
    if (rgwSkip) return;
    hub = await startTestHub();
    const files: Record<string, { size: number; seed: number }> = {};
    for (const [i, f] of ['a', 'b', 'c', 'd', 'e'].entries()) {
      files[`${f}.safetensors`] = { size: SIZE, seed: 100 + i };
      sha[`${f}.safetensors`] = generatedContent(SIZE, 100 + i).sha256();
    }
    hub.hf.createRepo('org/m').commit(files);
    hub.hf.createRepo('org/gated', { gated: 'manual' }).commit({ 'g.safetensors': { size: SIZE, seed: 400 } });
    sha['g.safetensors'] = generatedContent(SIZE, 400).sha256();
    hub.tokens.add('hf_alice', { canAccessGated: true, name: 'alice' });
    hub.tokens.add('hf_bob', { canAccessGated: false, name: 'bob' });
    hub.ms.createRepo('org/ms').commit({ 'w.bin': { size: SIZE, seed: 300 } });
    sha['ms/w.bin'] = generatedContent(SIZE, 300).sha256();
    bucket = await rgw().newBucket();
    for (let i = 0; i < 3; i++) await startReplica();
  });

  after(async () => {
    for (const r of replicas) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    await hub?.close();
  });

  test('a blob fetched via replica A is served by B and C with no upstream blob request', async () => {
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const first = await raw(fileUrl(a, 'a.safetensors'));
    assert.equal(first.status, 200);
    assert.equal(digest(first.body), sha['a.safetensors']);
    assert.equal(cdnBytes('a.safetensors'), SIZE);
    const gets = cdn('a.safetensors').length;
    await uploaded(a, 1);
    for (const r of [b, c]) {
      const got = await raw(fileUrl(r, 'a.safetensors'));
      assert.equal(got.status, 200);
      assert.equal(digest(got.body), sha['a.safetensors']);
      assert.equal((await counters(r)).s3Fills, 1, 'filled from S3');
    }
    assert.equal(cdn('a.safetensors').length, gets, 'no upstream blob request from B or C');
    // A range of a blob the cluster has but a replica does not comes from S3 directly.
    const fresh = await startReplica();
    const part = await raw(fileUrl(fresh, 'a.safetensors'), { headers: { range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.deepEqual(part.body, first.body.subarray(1000, 2000));
    assert.equal(cdn('a.safetensors').length, gets);
    assert.equal((await counters(fresh)).s3RangeReads, 1);
  });

  test('6 concurrent cold clients over 3 replicas: one upstream transfer, peers stream from the holder', async () => {
    hub.throttleBytesPerSec = 1 * MiB; // the fill lasts ~3 s: the others find it running
    try {
      const key = sha['b.safetensors']!;
      const three = replicas.slice(0, 3);
      const before = { peer: await sum(three, 'peerFills'), upstream: await sum(three, 'upstreamFills') };
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => raw(fileUrl(three[i % 3]!, 'b.safetensors'))),
      );
      for (const a of answers) {
        assert.equal(a.status, 200);
        assert.equal(digest(a.body), key);
      }
      assert.equal(cdnBytes('b.safetensors'), SIZE, 'one upstream transfer of the blob');
      const now = { peer: await sum(three, 'peerFills'), upstream: await sum(three, 'upstreamFills') };
      assert.deepEqual(
        { peer: now.peer - before.peer, upstream: now.upstream - before.upstream },
        { peer: 2, upstream: 1 },
        'one replica filled from upstream, the two others streamed from it',
      );
      assert.ok((await sum(three, 'peerServed')) >= 2, 'the holder answered its peers');
      const srcs = await logged(
        () => three.flatMap((r) => fillSources(r, key)).sort(),
        (v) => v.length >= 3,
      );
      assert.deepEqual(srcs, ['peer', 'peer', 'upstream']); // the logs say the same
    } finally {
      hub.throttleBytesPerSec = undefined;
    }
  });

  test('ModelScope face: a file fetched via A is served by B from S3, no second upstream transfer', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const url = (r: Replica): string => `${r.url}/api/v1/models/org/ms/repo?Revision=master&FilePath=w.bin`;
    const cdnMs = (): number =>
      hub
        .findRequests((q) => q.method === 'GET' && q.host !== 'hf' && /w\.bin/.test(q.path))
        .reduce((n, q) => n + q.bytesSent, 0);
    const first = await raw(url(a));
    assert.equal(first.status, 200);
    assert.equal(digest(first.body), sha['ms/w.bin']);
    const upstream = cdnMs();
    assert.ok(upstream >= SIZE, `fetched upstream once (${upstream} B)`);
    await uploaded(a, (await counters(a)).upstreamFills);
    const before = (await counters(b)).s3Fills;
    const second = await raw(url(b));
    assert.equal(digest(second.body), sha['ms/w.bin']);
    assert.equal((await counters(b)).s3Fills, before + 1);
    assert.equal(cdnMs(), upstream, 'no second upstream transfer');
  });

  test('gated-repo rules hold on every replica: a blob in S3 goes only to callers upstream accepts', async () => {
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const url = (r: Replica): string => `${r.url}/org/gated/resolve/main/g.safetensors`;
    const alice = await raw(url(a), { headers: { authorization: 'Bearer hf_alice' } });
    assert.equal(alice.status, 200);
    assert.equal(digest(alice.body), sha['g.safetensors']);
    await uploaded(a, (await counters(a)).upstreamFills);
    for (const r of [b, c]) {
      const anon = await raw(url(r));
      assert.equal(anon.status, 401, 'anonymous');
      assert.equal(anon.headers['x-error-code'], 'GatedRepo');
      const bob = await raw(url(r), { headers: { authorization: 'Bearer hf_bob', range: 'bytes=0-99' } });
      assert.equal(bob.status, 403, 'bob, also for a range (S3 read path)');
      assert.ok(!bob.body.includes(alice.body.subarray(0, 64)), 'no byte of the blob');
      const ok = await raw(url(r), { headers: { authorization: 'Bearer hf_alice' } });
      assert.equal(digest(ok.body), sha['g.safetensors']);
    }
  });

  test('the peer endpoint refuses requests without, or with a wrong, signature', async () => {
    const a = replicas[0]!;
    const p = peerBlobPath(sha['a.safetensors']!, 'model/org/m');
    assert.equal((await raw(a.url + p)).status, 401);
    const wrong = signPeerRequest('another-secret-0123456789', 'r-x', 'GET', p);
    assert.equal((await raw(a.url + p, { headers: { [PEER_HEADER]: wrong } })).status, 401);
    const otherPath = signPeerRequest(SECRET, 'r-x', 'GET', peerBlobPath(sha['b.safetensors']!, 'model/org/m'));
    assert.equal((await raw(a.url + p, { headers: { [PEER_HEADER]: otherPath } })).status, 401);
    const old = signPeerRequest(SECRET, 'r-x', 'GET', p, Date.now() - 120_000);
    assert.equal((await raw(a.url + p, { headers: { [PEER_HEADER]: old } })).status, 403);
    const good = await raw(a.url + p, { headers: { [PEER_HEADER]: signPeerRequest(SECRET, 'r-x', 'GET', p) } });
    assert.equal(good.status, 200);
    assert.equal(digest(good.body), sha['a.safetensors']);
  });

  test('the lease holder SIGKILLed mid-fill: another replica finishes, upstream bytes <= 1.5x the blob', async () => {
    const file = 'c.safetensors';
    const key = sha[file]!;
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    hub.throttleBytesPerSec = 512 * 1024; // ~6 s fill
    try {
      const cut = rawAllowCut(fileUrl(a, file));
      while (cdnBytes(file) < 256 * 1024) await sleep(20);
      const t0 = Date.now();
      const others = [raw(fileUrl(b, file)), raw(fileUrl(c, file))];
      while (cdnBytes(file) < SIZE / 3) await sleep(20);
      a.child.kill('SIGKILL');
      await a.exited;
      const killedAt = cdnBytes(file);
      const got = await Promise.all(others);
      const ms = Date.now() - t0;
      for (const g of got) {
        assert.equal(g.status, 200);
        assert.equal(digest(g.body), key);
      }
      const killed = await cut;
      assert.ok(killed.cut || killed.body.length < SIZE, 'the killed replica cut its client');
      const total = cdnBytes(file);
      console.log(
        `takeover: blob ${SIZE} B, upstream ${total} B (${(total / SIZE).toFixed(2)}x; ${killedAt} B before the kill), ${ms} ms`,
      );
      assert.ok(total <= 1.5 * SIZE, `upstream bytes ${total} > 1.5x ${SIZE}`);
      assert.equal(await sum([b, c], 'takeovers'), 1, 'one replica took the lease over');
      // The killed replica's client retries through another replica and gets the right bytes.
      const retry = await raw(fileUrl(b, file));
      assert.equal(digest(retry.body), key);
    } finally {
      hub.throttleBytesPerSec = undefined;
    }
    replicas[0] = await startReplica(a.cacheDir); // same cache dir: a restarted replica
    replicas.pop();
  });

  test('RGW stopped mid-run: 503 JSON on requests that need it; restarted: the same replicas serve again', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const s3FillsBefore = (await counters(b)).s3Fills;
    const warm = await raw(fileUrl(b, 'a.safetensors')); // local on B: needs no store
    assert.equal(warm.status, 200);
    await rgw().stopGateway();
    try {
      const down = await raw(fileUrl(a, 'd.safetensors'));
      assert.equal(down.status, 503);
      assert.match(String(down.headers['content-type']), /json/);
      assert.match((JSON.parse(down.body.toString()) as { error: string }).error, /shared store/);
      assert.equal(down.headers['x-error-code'], 'MirrorStoreUnavailable');
      assert.equal((await raw(fileUrl(b, 'a.safetensors'))).status, 200, 'a local blob is still served');
    } finally {
      await rgw().start();
    }
    const up = await raw(fileUrl(a, 'd.safetensors'));
    assert.equal(up.status, 200);
    assert.equal(digest(up.body), sha['d.safetensors']);
    await uploaded(a, (await counters(a)).upstreamFills);
    const fromS3 = await raw(fileUrl(b, 'd.safetensors'));
    assert.equal(digest(fromS3.body), sha['d.safetensors']);
    assert.equal((await counters(b)).s3Fills, s3FillsBefore + 1);
  });

  test('startup refused when the store lacks conditional writes (test double of the probe answer)', async () => {
    const m = createMirror(
      {
        ...DEFAULT_SERVE_OPTIONS,
        port: 0,
        cacheDir: await tempDir(),
        logLevel: 'silent',
        cluster: { store: `s3://${bucket}/hc`, secret: SECRET, env: rgw().env },
      },
      {
        logStream: false,
        clusterProbe: () => Promise.reject(new ConditionalWritesUnsupportedError('both create-only PUTs succeeded')),
      },
    );
    await assert.rejects(m.listen(), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 27);
      assert.match(err.message, /cannot run a cluster.*both create-only PUTs succeeded/);
      return true;
    });
    assert.equal(m.app.server.listening, false);
    await m.close(0);
  });
});

/** A GET whose connection may be cut mid-body (the client of a killed replica). */
async function rawAllowCut(url: string): Promise<{ status: number; body: Buffer; cut: boolean }> {
  const http = await import('node:http');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const req = http.get(url, { agent: false }, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), cut: false }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), cut: true }));
    });
    req.on('error', () => resolve({ status: 0, body: Buffer.concat(chunks), cut: true }));
  });
}
