// The project API in-process: cache.lock(), install(), outdated(), update(), modelPath() on a Cache
// built with Cache.at — one merged progress stream, cancellation, and fail-fast across entries.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { tempDir } from './helpers.js';
import { AbortedError, Cache, RepoNotFoundError, type InstallProgressEvent } from '../src/index.js';

describe('project API', () => {
  let hub: TestHub;
  let project: string;
  let cacheDir: string;
  let cache: Cache;
  let manifest: string;

  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/a').commit({ 'config.json': '{"a":1}', 'w.safetensors': Buffer.alloc(150_000, 1) });
    hub.hf.createRepo('org/b').commit({ 'config.json': '{"b":1}', 'w.safetensors': Buffer.alloc(150_000, 2) });
    hub.ms
      .createRepo('org/c', { gitattributes: true })
      .commit({ 'configuration.json': '{"c":1}', 'w.bin': Buffer.alloc(40_000, 3) });
    project = await tempDir('hubcache-project-');
    cacheDir = await tempDir('hubcache-cache-');
    cache = Cache.at(cacheDir, { hfEndpoint: hub.hfEndpoint, modelscopeEndpoint: hub.msEndpoint });
    manifest = path.join(project, 'hubcache.json');
    await fs.writeFile(
      manifest,
      JSON.stringify({
        models: {
          a: { repo: 'org/a' },
          // Same weights as "a" through another entry: the blob is hashed once.
          'a-config': { repo: 'org/a', include: ['config.json'], localDir: './local/a' },
          b: { repo: 'org/b' },
          c: { repo: 'org/c', hub: 'modelscope' },
        },
      }),
    );
  });
  after(async () => hub.close());

  test('lock + install: one plan, alias-prefixed progress, every blob verified once', async () => {
    const locked = await cache.lock({ manifest });
    assert.deepEqual(
      locked.entries.map((e) => [e.alias, e.status]),
      [
        ['a', 'added'],
        ['a-config', 'added'],
        ['b', 'added'],
        ['c', 'added'],
      ],
    );
    assert.equal(locked.written, true);
    const events: InstallProgressEvent[] = [];
    const res = await cache.install({ manifest, frozen: true, onProgress: (e) => events.push(e) });
    const plans = events.filter((e) => e.type === 'plan');
    assert.equal(plans.length, 1, 'one overall plan for all entries');
    assert.equal(plans[0]?.type === 'plan' && plans[0].downloadBytes, 150_007 + 7 + 150_007 + 40_007);
    const progressPaths = new Set(
      events.flatMap((e) => (e.type === 'file-progress' || e.type === 'file-done' ? [e.path] : [])),
    );
    assert.ok(
      [...progressPaths].every((p) => /^(a|a-config|b|c)\//.test(p)),
      [...progressPaths].join(' '),
    );
    assert.ok(progressPaths.has('b/w.safetensors'));
    assert.deepEqual(events.filter((e) => e.type === 'done').length, 1);
    assert.deepEqual(
      events.map((e) => e.type).filter((t) => t.startsWith('verify')),
      ['verify-start', 'verify-done'],
    );
    assert.deepEqual(
      res.models.map((m) => m.alias),
      ['a', 'a-config', 'b', 'c'],
    );
    assert.equal(res.models[1]?.path, path.join(project, 'local', 'a'));
    assert.equal(await fs.readFile(path.join(project, 'local', 'a', 'config.json'), 'utf8'), '{"a":1}');
    // 7 files on disk: a's two blobs, a-config's copy of config.json (a separate file), b's two, c's two.
    assert.equal(res.hashedFiles, 7);
    assert.equal(
      await cache.modelPath({ manifest, alias: 'c', file: 'w.bin' }),
      path.join(cacheDir, 'models', 'org', 'c', 'w.bin'),
    );
  });

  test('a cancelled install stops with AbortedError and resumes later', async () => {
    hub.hf.repo('org/b').commit({ 'w.safetensors': Buffer.alloc(300_000, 9) });
    await cache.update({ manifest, aliases: ['b'] });
    hub.throttleBytesPerSec = 100_000;
    try {
      const ac = new AbortController();
      const run = cache.install({
        manifest,
        signal: ac.signal,
        onProgress: (e) => {
          if (e.type === 'file-progress') ac.abort();
        },
      });
      await assert.rejects(run, AbortedError);
      const pre = new AbortController();
      pre.abort();
      await assert.rejects(cache.install({ manifest, signal: pre.signal }), AbortedError);
    } finally {
      hub.throttleBytesPerSec = undefined;
    }
    const res = await cache.install({ manifest });
    assert.equal(
      res.models.find((m) => m.alias === 'b')?.files.find((f) => f.path === 'w.safetensors')?.status,
      'downloaded',
    );
  });

  test('the first failing entry cancels the others', async () => {
    hub.hf.repo('org/b').commit({ 'w.safetensors': Buffer.alloc(400_000, 4) });
    hub.hf.repo('org/a').commit({ 'w.safetensors': Buffer.alloc(100, 4) });
    const moved = await cache.outdated({ manifest });
    assert.deepEqual(
      moved.map((e) => e.alias),
      ['a', 'a-config', 'b'],
    );
    const up = await cache.update({ manifest });
    const a = up.entries.find((e) => e.alias === 'a');
    assert.deepEqual(
      a?.changes?.changed.map((c) => [c.path, c.oldSize, c.newSize]),
      [['w.safetensors', 150_000, 100]],
    );
    assert.equal(up.entries.find((e) => e.alias === 'a-config')?.status, 'updated', 'commit moved, files the same');
    assert.deepEqual(up.entries.find((e) => e.alias === 'a-config')?.changes?.changed, []);
    hub.hf.deleteRepo('org/a');
    hub.throttleBytesPerSec = 50_000; // b would take 8 s
    const started = Date.now();
    try {
      await assert.rejects(cache.install({ manifest }), RepoNotFoundError);
    } finally {
      hub.throttleBytesPerSec = undefined;
    }
    assert.ok(Date.now() - started < 4000, `failed fast (${Date.now() - started} ms)`);
  });
});
