// The S3 blob store against a real Ceph RGW (scripts/ceph-rgw.sh): small and multipart blobs, ranges,
// listing, metadata objects with conditional writes, bad credentials, and the gateway going away and
// coming back under a running store.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { IntegrityError, UsageError } from '../src/errors.js';
import { LocalBlobStore, type BlobStore } from '../src/stores/blob-store.js';
import { S3BlobStore, MIN_PART_SIZE } from '../src/stores/s3-blob-store.js';
import { parseS3Url, s3ConfigFromEnv } from '../src/stores/s3-client.js';
import { commitMetaKey, refKey, type RefRecord } from '../src/stores/s3-layout.js';
import { StoreNotFoundError, StoreRangeError, StoreUnavailableError } from '../src/stores/store-errors.js';
import { gitBlobSha1 } from '../src/util/hash.js';
import { cuttingRelay } from './fixtures/cutting-relay.js';
import { rgwSkip, useRgw } from './fixtures/rgw.js';
import { tempDir as makeTempDir } from './helpers.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function fileOf(dir: string, content: Uint8Array): Promise<string> {
  const p = path.join(dir, randomBytes(4).toString('hex'));
  await writeFile(p, content);
  return p;
}

describe('s3 store config', () => {
  test('s3://BUCKET/PREFIX is parsed and checked', () => {
    assert.deepEqual(parseS3Url('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseS3Url('s3://my.bucket/a/b/'), { bucket: 'my.bucket', prefix: 'a/b/' });
    assert.deepEqual(parseS3Url('s3://bkt//a//b'), { bucket: 'bkt', prefix: 'a/b/' });
    for (const bad of [
      'http://b/x',
      's3://',
      's3://UPPER',
      's3://a',
      's3://b/../x',
      's3://b/x/./y',
      's3://bad..name',
    ]) {
      assert.throws(() => parseS3Url(bad), UsageError, bad);
    }
  });

  test('a non-AWS endpoint means path-style; AWS keeps virtual hosts; keys come in pairs', () => {
    const env = { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_REGION: 'eu-west-1' };
    const rgw = s3ConfigFromEnv('s3://b1x/p', { env: { ...env, AWS_ENDPOINT_URL: 'http://127.0.0.1:1' } });
    assert.equal(rgw.forcePathStyle, true);
    assert.equal(rgw.endpoint, 'http://127.0.0.1:1');
    assert.equal(rgw.region, 'eu-west-1');
    assert.deepEqual(rgw.credentials, { accessKeyId: 'k', secretAccessKey: 's' });
    // The S3-specific variable wins over the generic one, the flag over both.
    const both = { ...env, AWS_ENDPOINT_URL: 'http://a.example', AWS_ENDPOINT_URL_S3: 'http://s3.example' };
    assert.equal(s3ConfigFromEnv('s3://b1x', { env: both }).endpoint, 'http://s3.example');
    assert.equal(
      s3ConfigFromEnv('s3://b1x', { env: both, endpoint: 'https://flag.example' }).endpoint,
      'https://flag.example',
    );
    const aws = s3ConfigFromEnv('s3://b1x', {
      env: { ...env, AWS_ENDPOINT_URL_S3: 'https://s3.eu-west-1.amazonaws.com' },
    });
    assert.equal(aws.forcePathStyle, false);
    assert.equal(s3ConfigFromEnv('s3://b1x', { env }).endpoint, undefined);
    assert.throws(() => s3ConfigFromEnv('s3://b1x', { env: { AWS_ACCESS_KEY_ID: 'k' } }), UsageError);
    assert.throws(() => s3ConfigFromEnv('s3://b1x', { env, endpoint: 'ftp://x' }), UsageError);
    assert.throws(() => s3ConfigFromEnv('s3://b1x', { env, endpoint: 'not a url' }), UsageError);
  });

  test('a store that accepts connections but never answers fails typed after the idle timeout', async () => {
    const held: net.Socket[] = [];
    const server = net.createServer((sock) => void held.push(sock.on('error', () => undefined)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const config = s3ConfigFromEnv('s3://stalled/x', {
      env: { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_ENDPOINT_URL_S3: endpoint },
    });
    const store = new S3BlobStore({ ...config, idleTimeoutMs: 200, maxAttempts: 2 });
    try {
      await assert.rejects(store.has({ etag: 'a'.repeat(64) }), (err: unknown) => err instanceof StoreUnavailableError);
      await assert.rejects(store.putJson('refs/x.json', {}), (err: unknown) => err instanceof StoreUnavailableError);
      assert.ok(held.length >= 2, 'the calls reached the stalled server');
    } finally {
      store.close();
      for (const s of held) s.destroy();
      server.close();
    }
  });

  test('blob keys are hashes only', async () => {
    const store = S3BlobStore.fromUrl('s3://b1x', { env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:9' } });
    for (const bad of ['../x', 'ABC', 'a'.repeat(63), `${'a'.repeat(40)}/x`, '']) {
      await assert.rejects(store.has({ etag: bad }), UsageError, bad);
    }
    store.close();
  });
});

describe('S3 blob store on a real Ceph RGW', { skip: rgwSkip }, () => {
  const rgw = useRgw();
  const dirs: string[] = [];
  const tempDir = async (): Promise<string> => {
    const d = await makeTempDir();
    dirs.push(d);
    return d;
  };
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  test('one BlobStore interface: the local HF cache and the bucket answer the same calls alike', async () => {
    const data = randomBytes(5000);
    const etag = sha256(data);
    const repo = { hub: 'hf' as const, type: 'model' as const, id: 'org/m' };
    const stores: Array<[string, BlobStore]> = [
      ['local', new LocalBlobStore(await tempDir())],
      ['s3', await rgw().newStore('iface')],
    ];
    for (const [name, store] of stores) {
      const key = { etag, repo };
      assert.equal(await store.has(key), false, name);
      assert.equal(await store.stat({ etag }), undefined, name);
      assert.deepEqual(await store.put(key, await fileOf(await tempDir(), data), { sha256: etag }), { stored: true });
      // Found by content alone too (the local store looks in every repo).
      assert.equal((await store.stat({ etag }))?.size, 5000, name);
      assert.ok((await readAll(await store.read({ etag }))).equals(data), name);
      assert.ok((await readAll(await store.read(key, { start: 10, end: 20 }))).equals(data.subarray(10, 20)), name);
      assert.equal((await readAll(await store.read(key, { start: 7, end: 7 }))).length, 0, name);
      const listed: string[] = [];
      for await (const b of store.list({ prefix: etag.slice(0, 8) })) listed.push(`${b.key.etag}:${b.size}`);
      assert.deepEqual(listed, [`${etag}:5000`], name);
      await store.markUsed(key);
      assert.equal(await store.delete(key), true, name);
      assert.equal(await store.delete(key), false, name);
      await assert.rejects(store.read(key), name);
    }
  });

  test('small blobs: put, has, stat, read, range, list, delete (sha256 and git sha1 keys)', async () => {
    const store = await rgw().newStore('mirror/one');
    const dir = await tempDir();
    const a = randomBytes(3000);
    const b = Buffer.from('a small git file\n');
    const ka = sha256(a);
    const kb = gitBlobSha1(b);
    assert.equal(await store.has({ etag: ka }), false);
    assert.equal(await store.stat({ etag: ka }), undefined);
    assert.deepEqual(await store.put({ etag: ka }, await fileOf(dir, a)), { stored: true });
    assert.deepEqual(await store.put({ etag: kb }, await fileOf(dir, b)), { stored: true });
    assert.equal(await store.has({ etag: ka }), true);
    assert.equal((await store.stat({ etag: ka }))?.size, 3000);
    assert.deepEqual(await readAll(await store.read({ etag: ka })), a);
    assert.deepEqual(await readAll(await store.read({ etag: kb })), b);
    assert.deepEqual(await readAll(await store.read({ etag: ka }, { start: 100, end: 200 })), a.subarray(100, 200));
    assert.deepEqual(await readAll(await store.read({ etag: ka }, { start: 2990, end: 3000 })), a.subarray(2990));
    // Content addressing: the same blob again is not uploaded again.
    assert.deepEqual(await store.put({ etag: ka }, await fileOf(dir, a), { sha256: ka }), { stored: false });

    const all: string[] = [];
    for await (const e of store.list()) all.push(`${e.key.etag}:${e.size}`);
    assert.deepEqual(all.sort(), [`${ka}:3000`, `${kb}:${b.length}`].sort());
    const some: string[] = [];
    for await (const e of store.list({ prefix: kb.slice(0, 6) })) some.push(e.key.etag);
    assert.deepEqual(some, [kb]);

    // The bucket reads as the README's layout says.
    const keys: string[] = [];
    for await (const o of store.objects.list('')) keys.push(o.key);
    assert.deepEqual(keys.sort(), [`blobs/sha1/${kb}`, `blobs/sha256/${ka}`]);

    await store.delete({ etag: ka });
    assert.equal(await store.has({ etag: ka }), false);
    await assert.rejects(store.read({ etag: ka }), StoreNotFoundError);
    await assert.rejects(store.read({ etag: kb }, { start: 10_000, end: 10_001 }), StoreRangeError);
    await assert.rejects(store.read({ etag: kb }, { start: 5, end: 2 }), StoreRangeError);
  });

  test('a multipart blob (5 MiB parts) streams up and reads back whole and by ranges across parts', async (t) => {
    const store = await rgw().newStore('mp', { partSize: MIN_PART_SIZE, queueSize: 2 });
    const dir = await tempDir();
    const data = randomBytes(2 * MIN_PART_SIZE + 123_457); // three parts: 5 MiB, 5 MiB, the rest
    const key = sha256(data);
    const file = await fileOf(dir, data);
    let t0 = performance.now();
    assert.deepEqual(await store.put({ etag: key }, file, { sha256: key }), { stored: true });
    const putMs = performance.now() - t0;
    const st = await store.stat({ etag: key });
    assert.equal(st?.size, data.length);
    assert.match(st?.etag ?? '', /-3$/, 'a three-part multipart upload');
    t0 = performance.now();
    const back = await readAll(await store.read({ etag: key }));
    const getMs = performance.now() - t0;
    assert.ok(back.equals(data));
    const mib = data.length / 2 ** 20;
    t.diagnostic(
      `loopback RGW: put ${mib.toFixed(1)} MiB in ${putMs.toFixed(0)} ms ` +
        `(${(mib / (putMs / 1000)).toFixed(0)} MiB/s), ` +
        `get in ${getMs.toFixed(0)} ms (${(mib / (getMs / 1000)).toFixed(0)} MiB/s)`,
    );
    for (const [start, end] of [
      [MIN_PART_SIZE - 10, MIN_PART_SIZE + 9],
      [0, 0],
      [data.length - 1, data.length - 1],
      [7, 2 * MIN_PART_SIZE + 5],
    ] as const) {
      assert.ok(
        (await readAll(await store.read({ etag: key }, { start, end: end + 1 }))).equals(data.subarray(start, end + 1)),
        `${start}-${end}`,
      );
    }
  });

  test('a body cut mid-stream is resumed from the next byte (same version); too many cuts fail typed', async () => {
    const direct = await rgw().newStore('cut');
    const dir = await tempDir();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const key = sha256(data);
    await direct.put({ etag: key }, await fileOf(dir, data));
    const relay = await cuttingRelay(rgw().endpoint);
    const url = `s3://${direct.objects.config.bucket}/cut`;
    const viaRelay = S3BlobStore.fromUrl(url, { env: { ...rgw().env, AWS_ENDPOINT_URL_S3: relay.endpoint } });
    try {
      relay.arm(2, 1024 * 1024);
      const whole = await viaRelay.read({ etag: key });
      assert.ok((await readAll(whole)).equals(data));
      assert.equal(whole.resumes(), 2);
      relay.arm(1, 700_000);
      const part = await viaRelay.read({ etag: key }, { start: 1000, end: 2_000_001 });
      assert.ok((await readAll(part)).equals(data.subarray(1000, 2_000_001)));
      assert.equal(part.resumes(), 1);
      relay.arm(100, 300_000);
      await assert.rejects(readAll(await viaRelay.read({ etag: key })), StoreUnavailableError);
    } finally {
      viaRelay.close();
      relay.close();
    }
  });

  test('a file that does not match its key is refused and nothing is stored', async () => {
    const store = await rgw().newStore();
    const dir = await tempDir();
    const good = Buffer.from('the real bytes');
    const key = sha256(good);
    const file = await fileOf(dir, Buffer.from('other bytes'));
    await assert.rejects(store.put({ etag: key }, file), IntegrityError);
    await assert.rejects(
      store.put({ etag: key }, file, { sha256: sha256(Buffer.from('other bytes')) }),
      IntegrityError,
    );
    await assert.rejects(store.put({ etag: gitBlobSha1(good) }, file), IntegrityError);
    assert.equal(await store.has({ etag: key }), false);
    assert.equal(await store.has({ etag: gitBlobSha1(good) }), false);
  });

  test('metadata objects: create-only, replace by ETag, stale ETag refused', async () => {
    const store = await rgw().newStore();
    const key = refKey('hf', 'model', 'org/name', 'main');
    assert.equal(key, 'refs/hf/models--org--name/main.json');
    assert.equal(await store.getJson(key), undefined);
    const first: RefRecord = { commit: 'a'.repeat(40), fetchedAt: new Date().toISOString() };
    const w1 = await store.putJson(key, first, { ifNoneMatch: '*' });
    assert.equal(w1.ok, true);
    assert.equal((await store.putJson(key, { commit: 'b'.repeat(40) }, { ifNoneMatch: '*' })).ok, false);
    const got = await store.getJson<RefRecord>(key);
    assert.deepEqual(got?.value, first);
    const second: RefRecord = { commit: 'c'.repeat(40), fetchedAt: new Date().toISOString() };
    const w2 = await store.putJson(key, second, { ifMatch: got.etag });
    assert.equal(w2.ok, true);
    // The ETag we read before is stale now.
    assert.equal((await store.putJson(key, first, { ifMatch: got.etag })).ok, false);
    assert.equal(
      (await store.putJson(key, first, { ifMatch: `"${w2.ok ? w2.etag : ''}"` })).ok,
      true,
      'a quoted ETag is unquoted before sending',
    );
    assert.deepEqual((await store.getJson<RefRecord>(key))?.value, first);
    // Meta objects of an immutable commit go under meta/.
    const meta = commitMetaKey('dataset', 'org/data', 'd'.repeat(40));
    assert.equal(meta, `meta/hf/datasets--org--data/commits/${'d'.repeat(40)}.json`);
    assert.equal((await store.putJson(meta, { files: [] }, { ifNoneMatch: '*' })).ok, true);
  });

  test('wrong credentials and a missing bucket are StoreUnavailableErrors with a hint', async () => {
    const env = { ...rgw().env, AWS_SECRET_ACCESS_KEY: 'wrong' };
    const bucket = await rgw().newBucket();
    const bad = S3BlobStore.fromUrl(`s3://${bucket}/x`, { env });
    await assert.rejects(bad.putJson('refs/x.json', {}), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError, String(err));
      assert.equal(err.status, 403);
      assert.match(err.hint ?? '', /AWS_SECRET_ACCESS_KEY/);
      return true;
    });
    bad.close();
    const missing = S3BlobStore.fromUrl('s3://no-such-bucket-here/x', { env: rgw().env });
    await assert.rejects(
      missing.check(),
      (err: unknown) => err instanceof StoreUnavailableError && /does not exist/.test(err.message),
    );
    await assert.rejects(
      missing.putJson('refs/x.json', {}),
      (err: unknown) => err instanceof StoreUnavailableError && err.code === 'NoSuchBucket',
    );
    missing.close();
  });

  test('gateway stopped mid-run: calls fail with StoreUnavailableError; restarted: the store works again', async () => {
    const store = await rgw().newStore();
    const dir = await tempDir();
    const data = randomBytes(50_000);
    const key = sha256(data);
    await store.put({ etag: key }, await fileOf(dir, data));
    await store.check();

    await rgw().stopGateway();
    const other = randomBytes(1000);
    await assert.rejects(store.has({ etag: key }), StoreUnavailableError);
    await assert.rejects(store.read({ etag: key }), StoreUnavailableError);
    await assert.rejects(store.put({ etag: sha256(other) }, await fileOf(dir, other)), StoreUnavailableError);
    await assert.rejects(store.putJson('refs/x.json', { a: 1 }, { ifNoneMatch: '*' }), StoreUnavailableError);
    await assert.rejects(
      store.check(),
      (err: unknown) => err instanceof StoreUnavailableError && /ECONNREFUSED/.test(err.message),
    );

    await rgw().start();
    assert.equal(await store.has({ etag: key }), true);
    assert.ok((await readAll(await store.read({ etag: key }))).equals(data));
    assert.deepEqual(await store.put({ etag: sha256(other) }, await fileOf(dir, other)), { stored: true });
    assert.equal((await store.putJson('refs/x.json', { a: 1 }, { ifNoneMatch: '*' })).ok, true);
  });
});
