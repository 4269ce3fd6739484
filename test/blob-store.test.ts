// The seams the mirror reads and fills through: LocalBlobStore (the HF layout as a blob store)
// and Cache.ensureBlob (one verified blob into the cache, with the partial file's prefix reported).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { Cache } from '../src/cache.js';
import { ensureBlob } from '../src/download/hf.js';
import { ensureMsFile } from '../src/download/modelscope.js';
import type { RepoRef } from '../src/hubs/types.js';
import { LocalBlobStore } from '../src/stores/blob-store.js';
import { generatedContent, startTestHub } from './fixtures/test-hub.js';
import { tempDir } from './helpers.js';

const repo: RepoRef = { hub: 'hf', type: 'model', id: 'org/m' };
const ETAG = 'a'.repeat(64);

describe('LocalBlobStore', () => {
  test('put (atomic, copy or move), has/stat, read with a range, list, delete', async () => {
    const root = await tempDir();
    const store = new LocalBlobStore(root);
    const key = { repo, etag: ETAG };
    assert.equal(await store.has(key), false);
    await assert.rejects(store.read(key));
    const src = path.join(root, 'src.bin');
    await fs.writeFile(src, '0123456789');
    await store.put(key, src);
    assert.equal(await fs.readFile(src, 'utf8'), '0123456789', 'copied, source kept');
    const st = await store.stat(key);
    assert.equal(st?.size, 10);
    assert.equal(st?.localPath, path.join(root, 'models--org--m', 'blobs', ETAG));
    assert.equal(await text(await store.read(key, { start: 2, end: 5 })), '234');
    assert.equal(await text(await store.read(key)), '0123456789');
    assert.equal(await text(await store.read(key, { start: 4, end: 4 })), '');
    const other = { repo: { ...repo, type: 'dataset' as const, id: 'org/d' }, etag: 'b'.repeat(40) };
    await fs.writeFile(src, 'xy');
    await store.put(other, src, { move: true });
    await assert.rejects(fs.stat(src), 'moved');
    // A partial file beside the blobs is not a blob.
    await fs.writeFile(path.join(root, 'models--org--m', 'blobs', `${ETAG}.hc0123.incomplete`), 'x');
    const listed: string[] = [];
    for await (const b of store.list())
      listed.push(`${b.key.repo?.type}:${b.key.repo?.id}:${b.key.etag.slice(0, 4)}:${b.size}`);
    assert.deepEqual(listed.sort(), ['dataset:org/d:bbbb:2', 'model:org/m:aaaa:10']);
    const onlyModel: string[] = [];
    for await (const b of store.list({ repo })) onlyModel.push(b.key.etag);
    assert.deepEqual(onlyModel, [ETAG]);
    assert.equal(await store.delete(key), true);
    assert.equal(await store.delete(key), false);
    assert.equal(await store.has(key), false);
  });
});

describe('Cache.ensureBlob', () => {
  test('one file into the cache: verified, linked into its snapshot, prefix reported while it fills; then reused', async () => {
    const hub = await startTestHub();
    const size = 20 * 1024 * 1024; // above the parallel threshold: the ranged path reports its prefix too
    const commit = hub.hf.createRepo('org/m').commit({ 'w.safetensors': { size, seed: 2 }, 'other.txt': 'x' });
    const content = generatedContent(size, 2);
    try {
      const cache = Cache.at(await tempDir(), { hfEndpoint: hub.hfEndpoint });
      const prefixes: number[] = [];
      const file = { path: 'w.safetensors', size, lfs: true, sha256: content.sha256() };
      const r = await cache.ensureBlob('org/m', commit, file, { onPartial: (p) => prefixes.push(p.bytes) });
      assert.equal(r.status, 'downloaded');
      assert.equal(r.etag, content.sha256());
      assert.equal(r.commit, commit);
      assert.ok((await fs.readFile(r.path)).equals(content.toBuffer()));
      const snap = path.join(cache.config.hf.cacheDir, 'models--org--m', 'snapshots', commit, 'w.safetensors');
      assert.equal(await fs.realpath(snap), r.path);
      assert.ok(
        prefixes.length > 1 && prefixes.at(-1) === size,
        `prefix grew to the size (${prefixes.length} reports)`,
      );
      assert.ok(
        prefixes.every((b, i) => i === 0 || b >= (prefixes[i - 1] ?? 0)),
        'never shrank',
      );
      await fs.access(path.join(cache.config.hf.cacheDir, 'models--org--m', 'snapshots', commit, 'other.txt')).then(
        () => assert.fail('only the one file'),
        () => undefined,
      );
      hub.resetRequests();
      const again = await cache.ensureBlob('org/m', commit, file);
      assert.equal(again.status, 'linked');
      assert.equal(hub.countRequests(), 0);
      await cache.engine.close();
    } finally {
      await hub.close();
    }
  });

  test('ensureBlob and ensureMsFile fetch through the client they are given, not one of their own', async () => {
    const hub = await startTestHub();
    const commit = hub.hf.createRepo('org/m').commit({ 'w.safetensors': { size: 4096, seed: 3 } });
    hub.ms.createRepo('org/q').commit({ 'w.bin': { size: 2048, seed: 4 } });
    const root = await tempDir();
    // The context names an endpoint nothing listens on: only the given client reaches the hub.
    const cache = Cache.at(root, { hfEndpoint: hub.hfEndpoint, modelscopeEndpoint: hub.msEndpoint });
    const dead = 'http://127.0.0.1:9';
    try {
      const hfClient = cache.client('hf');
      const [file] = await hfClient.listFiles(repo, commit);
      assert.ok(file);
      const base = { cacheDir: root, endpoint: dead, offline: false, symlinks: true, engine: cache.engine };
      const got = await ensureBlob({ ...base, client: hfClient }, repo, commit, file);
      assert.equal(got.status, 'downloaded');
      assert.equal((await fs.stat(got.path)).size, 4096);

      const msRepo: RepoRef = { hub: 'modelscope', type: 'model', id: 'org/q' };
      const msClient = cache.client('modelscope');
      const [msFile] = await msClient.listFiles(msRepo, 'master');
      assert.ok(msFile);
      const msBase = { cacheDir: root, endpoint: dead, offline: false, engine: cache.engine };
      const ms = await ensureMsFile({ ...msBase, client: msClient }, msRepo, 'master', msFile);
      assert.equal(ms.status, 'downloaded');
      assert.equal((await fs.stat(ms.path)).size, 2048);
      // Without a client, the context's endpoint is used: the dead one fails.
      await fs.rm(ms.path);
      await assert.rejects(ensureMsFile(msBase, msRepo, 'master', msFile));
    } finally {
      await cache.close();
      await hub.close();
    }
  });
});
