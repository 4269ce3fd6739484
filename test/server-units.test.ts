// The mirror's small pieces on their own: Range parsing, Link rewriting and Xet stripping, the
// metadata cache's single flight and stale-if-error, and how credentials are told apart.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AccessControl, hashToken, refuses } from '../src/server/access.js';
import { rewriteLink } from '../src/server/hf-face.js';
import { MetadataCache } from '../src/server/metadata-cache.js';
import { parseRange } from '../src/server/reply.js';
import { UpstreamDownError } from '../src/server/upstream.js';
import { stripXetJson, stripXetLinks } from '../src/server/xet.js';

describe('serve units', () => {
  test('parseRange: the three forms, clamping, and what is unsatisfiable or ignored', () => {
    assert.deepEqual(parseRange('bytes=0-0', 10), { start: 0, end: 1 });
    assert.deepEqual(parseRange('bytes=3-', 10), { start: 3, end: 10 });
    assert.deepEqual(parseRange('bytes=-4', 10), { start: 6, end: 10 });
    assert.deepEqual(parseRange('bytes=-40', 10), { start: 0, end: 10 });
    assert.deepEqual(parseRange('bytes=5-99', 10), { start: 5, end: 10 });
    assert.equal(parseRange('bytes=10-', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=5-2', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,4-5', 10), undefined, 'several ranges: the whole body');
    assert.equal(parseRange('items=0-1', 10), undefined);
    assert.equal(parseRange(undefined, 10), undefined);
  });

  test('Link: every URL moved to the mirror (path and query kept); Xet relations dropped', () => {
    const link =
      '<https://huggingface.co/api/models/o/n/tree/main?cursor=abc&recursive=true>; rel="next", <https://huggingface.co/api/models/o/n/xet-read-token/c>; rel="xet-auth"';
    assert.equal(
      rewriteLink(link, 'http://m:8080'),
      '<http://m:8080/api/models/o/n/tree/main?cursor=abc&recursive=true>; rel="next"',
    );
    assert.equal(stripXetLinks('<x>; rel="xet-auth", <y>; rel="xet-reconstruction-info"'), undefined);
    assert.equal(rewriteLink(undefined, 'http://m'), undefined);
  });

  test('stripXetJson removes xetHash at any depth and keeps the rest', () => {
    const v = stripXetJson([{ path: 'a', xetHash: 'x', lfs: { oid: 'o', xetHash: 'y' } }, 'plain', 3]);
    assert.deepEqual(v, [{ path: 'a', lfs: { oid: 'o' } }, 'plain', 3]);
  });

  test('MetadataCache: one load for concurrent callers; TTL; stale only when upstream is down', async () => {
    const c = new MetadataCache();
    let loads = 0;
    const load = async (): Promise<{ value: number; ttlMs: number }> => {
      loads++;
      await new Promise((r) => setTimeout(r, 20));
      return { value: loads, ttlMs: 0 };
    };
    const got = await Promise.all([c.get('k', load), c.get('k', load), c.get('k', load)]);
    assert.equal(loads, 1);
    assert.deepEqual(
      got.map((g) => g.value),
      [1, 1, 1],
    );
    // Expired (TTL 0): upstream down → the old value, flagged stale.
    const stale = await c.get('k', () => Promise.reject(new UpstreamDownError('down', false)));
    assert.deepEqual(stale, { value: 1, stale: true, hit: false });
    // Another failure is not hidden behind an old value.
    await assert.rejects(
      c.get('k', () => Promise.reject(new Error('bug'))),
      /bug/,
    );
    await assert.rejects(
      c.get('new', () => Promise.reject(new UpstreamDownError('down', true))),
      UpstreamDownError,
    );
    c.set('f', 'v', Infinity);
    assert.deepEqual(await c.get('f', () => Promise.reject(new Error('not called'))), {
      value: 'v',
      stale: false,
      hit: true,
    });
  });

  test('MetadataCache is bounded by bytes: old big answers go first', () => {
    const c = new MetadataCache(1000, 10_000);
    for (let i = 0; i < 5; i++) c.set(`k${i}`, { body: Buffer.alloc(3000) }, Infinity);
    assert.ok(c.size <= 3, `${c.size} entries`);
    assert.equal(c.peek('k0'), undefined);
    assert.ok(c.peek('k4'));
  });

  test('AccessControl.identify: hub token vs mirror API key, whichever way the key comes', () => {
    const open = new AccessControl({ ttlMs: 1000 });
    assert.deepEqual(open.identify({ authorization: 'Bearer hf_x' }), {
      ok: true,
      caller: { authorization: 'Bearer hf_x', tokenHash: hashToken('hf_x') },
    });
    assert.deepEqual(open.identify({}), { ok: true, caller: {} });
    const keyed = new AccessControl({ ttlMs: 1000, apiKeys: ['k1'] });
    assert.equal(keyed.identify({}).ok, false);
    assert.equal(keyed.identify({ 'x-hubcache-key': 'k2' }).ok, false);
    assert.deepEqual(
      keyed.identify({ 'x-hubcache-key': 'k1', authorization: 'Bearer hf_x' }).caller.tokenHash,
      hashToken('hf_x'),
    );
    assert.deepEqual(
      keyed.identify({ authorization: 'Bearer k1' }),
      { ok: true, caller: {} },
      'the key is not a hub token',
    );
    assert.equal(keyed.identify({ authorization: `Basic ${Buffer.from('u:k1').toString('base64')}` }).ok, true);
    assert.equal(keyed.identify({ authorization: 'Bearer hf_x' }).ok, false);
    assert.ok(
      !JSON.stringify(keyed.identify({ authorization: 'Bearer hf_secret' }).caller.tokenHash).includes('hf_secret'),
      'only a hash',
    );
  });

  test('refuses: what an upstream answer says about access', () => {
    const a = (status: number, code?: string): { status: number; headers: Record<string, string> } => ({
      status,
      headers: code ? { 'x-error-code': code } : {},
    });
    assert.equal(refuses(a(401)), true);
    assert.equal(refuses(a(403, 'GatedRepo')), true);
    assert.equal(refuses(a(404, 'RepoNotFound')), true);
    assert.equal(refuses(a(404, 'EntryNotFound')), false);
    assert.equal(refuses(a(404, 'RevisionNotFound')), false);
    assert.equal(refuses(a(200)), false);
  });
});
