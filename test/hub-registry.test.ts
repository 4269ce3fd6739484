// The hub registry: a hub is one adapter looked up by name; a registered one routes prefixes and endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cache } from '../src/cache.js';
import { UsageError } from '../src/errors.js';
import { hubAdapter, hubNames, registerHub, type HubAdapter } from '../src/hubs/registry.js';
import { formatRepoRef, parseRepoRef } from '../src/hubs/repo-ref.js';
import type { HubName } from '../src/hubs/types.js';
import { EndpointFlags } from '../src/cli/endpoints.js';
import { defaultRevision } from '../src/manifest/schema.js';

const throwaway: HubAdapter = {
  name: 'mirror',
  prefixes: ['mirror', 'mx'],
  defaultRevision: 'trunk',
  bareHostEndpoints: true,
  cacheDirSetting: '--cache-dir',
  cacheDirs: (config) => [config.hf.cacheDir],
  client: () => {
    throw new Error('not used here');
  },
};

test('a registered adapter gets its prefixes, default revision and endpoint rules; unregistering removes it', () => {
  const unregister = registerHub(throwaway);
  try {
    const ref = parseRepoRef('mx:org/name@v1');
    assert.deepEqual(ref, { hub: 'mirror', type: 'model', id: 'org/name', revision: 'v1' });
    assert.equal(formatRepoRef(ref), 'mirror:org/name@v1');
    assert.ok(hubNames().includes('mirror' as HubName));
    assert.equal(defaultRevision('mirror' as HubName), 'trunk');
    // bareHostEndpoints: a host without scheme is accepted for this hub, as for ModelScope.
    const lists: Record<string, string[]> = new EndpointFlags(['mx=mirror.example']).forHubs();
    assert.deepEqual(lists.mirror, ['https://mirror.example']);
    assert.throws(() => registerHub({ ...throwaway, name: 'other', prefixes: ['ms'] }), UsageError);
  } finally {
    unregister();
  }
  assert.throws(() => parseRepoRef('mx:org/name'), UsageError);
  assert.throws(() => hubAdapter('mirror'), UsageError);
  assert.deepEqual(hubNames(), ['hf', 'modelscope']);
});

test('Cache config is fixed at construction; one client per hub and endpoint; close is idempotent', async () => {
  const cache = Cache.fromEnv(
    { HOME: '/nonexistent-home' },
    { cacheDir: '/tmp/hc-x', endpoints: { modelscope: 'http://127.0.0.1:9' }, tokens: { hf: 'hf_t' }, offline: true },
  );
  assert.equal(cache.config.hf.cacheDir, '/tmp/hc-x');
  assert.equal(cache.config.modelscope.v2Dir, '/tmp/hc-x');
  assert.equal(cache.config.modelscope.endpoint, 'http://127.0.0.1:9');
  assert.equal(cache.config.hf.token, 'hf_t');
  assert.equal(cache.config.hf.offline, true);
  assert.throws(() => {
    (cache.config.hf as { endpoint: string }).endpoint = 'http://elsewhere';
  }, TypeError);
  assert.equal(cache.client('hf'), cache.client('hf'));
  assert.notEqual(cache.client('hf', { endpoint: 'http://127.0.0.1:8' }), cache.client('hf'));
  await cache.close();
  await cache.close();
  assert.throws(() => cache.http, UsageError);
});
