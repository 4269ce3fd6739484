// `hubcache serve` access control (spec mirror.md §6): gated and private repos go only to callers
// whose own token upstream accepted — also through commit-addressed content URLs, also after
// another caller filled the store, never thanks to the mirror's token — plus API keys,
// allow/deny, and tokens kept out of the logs.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { generatedContent, startTestHub } from './fixtures/test-hub.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { raw, startMirror } from './fixtures/mirror.js';
import { listTree } from './helpers.js';

const SIZE = 300_000;
const bytes = generatedContent(SIZE, 9).toBuffer();

async function gatedSetup(opts: { upstreamToken?: string } = {}) {
  const hub = await startTestHub();
  const commit = hub.hf
    .createRepo('org/gated', { gated: 'manual' })
    .commit({ 'model.safetensors': { size: SIZE, seed: 9 }, 'config.json': '{}' });
  hub.tokens.add('hf_alice', { canAccessGated: true, name: 'alice' });
  hub.tokens.add('hf_bob', { canAccessGated: false, name: 'bob' });
  const lines: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const m = await startMirror([hub.hfEndpoint], { logLevel: 'debug', ...opts }, { logStream });
  return { hub, m, commit, lines };
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

describe('serve: access control', () => {
  test('gated repo: the right token is served; anonymous, wrong token and another user are refused, also after a fill', async () => {
    const { hub, m, commit, lines } = await gatedSetup();
    try {
      const url = `${m.url}/org/gated/resolve/main/model.safetensors`;
      const anonFirst = await raw(url);
      assert.equal(anonFirst.status, 401);
      assert.equal(anonFirst.headers['x-error-code'], 'GatedRepo');
      const alice = await raw(url, { headers: bearer('hf_alice') });
      assert.equal(alice.status, 200);
      assert.ok(alice.body.equals(bytes));
      // The blob is in the store now; nobody else gets it without their own acceptance.
      const content = `${m.url}/org/gated/resolve/${commit}/model.safetensors`;
      for (const [who, headers, status, code] of [
        ['anonymous', {}, 401, 'GatedRepo'],
        ['bob', bearer('hf_bob'), 403, 'GatedRepo'],
        ['a bad token', bearer('hf_nope'), 401, undefined],
      ] as const) {
        for (const u of [url, content]) {
          for (const method of ['GET', 'HEAD']) {
            const r = await raw(u, { method, headers: { ...headers } });
            assert.equal(r.status, status, `${who} ${method} ${u}`);
            assert.equal(r.headers['x-error-code'], code, `${who} ${method} ${u}`);
            assert.ok(r.body.length < 1000 && !r.body.includes(bytes.subarray(0, 64)), 'no byte of the body');
          }
        }
      }
      // Alice again: from the store, her decision cached, no upstream call.
      hub.resetRequests();
      const again = await raw(content, { headers: bearer('hf_alice') });
      assert.equal(again.status, 200);
      assert.ok(again.body.equals(bytes));
      assert.equal(hub.countRequests(), 0);
      // Bob's refusal is his: cached for him, and it never becomes Alice's.
      const bobAgain = await raw(url, { headers: bearer('hf_bob') });
      assert.equal(bobAgain.status, 403);
      assert.ok(lines.length > 0, 'logs were written');
      const tokens = ['hf_alice', 'hf_bob', 'hf_nope'];
      for (const t of tokens) assert.ok(!lines.some((l) => l.includes(t)), `${t} in the logs`);
      // Nor in the store (the restricted-repo list holds repo ids only).
      await m.mirror.services.access.flush();
      const stored = await listTree(m.cacheDir);
      assert.ok(stored.includes('.locks/hubcache/mirror-restricted.json'));
      for (const f of stored) {
        const text = await fs.readFile(path.join(m.cacheDir, f), 'latin1').catch(() => '');
        for (const t of tokens) assert.ok(!text.includes(t), `${t} in ${f}`);
      }
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test("the mirror's own token never serves a gated repo to a caller who could not fetch it", async () => {
    const { hub, m } = await gatedSetup({ upstreamToken: 'hf_alice' });
    try {
      const r = await raw(`${m.url}/org/gated/resolve/main/model.safetensors`);
      assert.equal(r.status, 401);
      assert.equal(r.headers['x-error-code'], 'GatedRepo');
      assert.equal(
        hub.countRequests((q) => q.authorization === 'Bearer hf_alice'),
        0,
        'the probe is anonymous',
      );
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('private repo: metadata and files only with an accepted token; cached JSON not shared with the anonymous', async () => {
    const hub = await startTestHub();
    hub.hf.createRepo('org/private', { private: true }).commit({ 'config.json': '{"p":1}' });
    hub.tokens.add('hf_alice', { name: 'alice' });
    const m = await startMirror([hub.hfEndpoint]);
    try {
      const info = `${m.url}/api/models/org/private/revision/main`;
      const ok = await raw(info, { headers: bearer('hf_alice') });
      assert.equal(ok.status, 200);
      const anon = await raw(info);
      assert.equal(anon.status, 401);
      assert.equal(anon.headers['x-error-code'], 'RepoNotFound');
      assert.equal(
        (await raw(`${m.url}/org/private/resolve/main/config.json`, { headers: bearer('hf_alice') })).body.toString(),
        '{"p":1}',
      );
      const file = await raw(`${m.url}/org/private/resolve/main/config.json`);
      assert.equal(file.status, 401);
      assert.equal(file.headers['x-error-code'], 'RepoNotFound');
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('an invalid token gets 401 even for a public repo, also when the file is in the store (as from the Hub)', async () => {
    const hub = await startTestHub();
    hub.hf.createRepo('org/public').commit({ 'model.safetensors': { size: SIZE, seed: 9 }, 'config.json': '{}' });
    hub.tokens.add('hf_alice', { name: 'alice' });
    const m = await startMirror([hub.hfEndpoint]);
    try {
      const file = `${m.url}/org/public/resolve/main/model.safetensors`;
      const info = `${m.url}/api/models/org/public/revision/main`;
      assert.ok((await raw(file)).body.equals(bytes), 'anonymous caller fills the store');
      assert.equal((await raw(info)).status, 200);
      for (const [url, method] of [
        [file, 'GET'],
        [file, 'HEAD'],
        [info, 'GET'],
        [`${m.url}/api/models/org/public/tree/main`, 'GET'],
      ] as const) {
        const r = await raw(url, { method, headers: bearer('hf_nope') });
        assert.equal(r.status, 401, `${method} ${url}`);
        assert.equal(r.headers['x-error-message'], 'Invalid credentials in Authorization header');
        assert.equal(r.headers['x-error-code'], undefined, 'not RepoNotFound: huggingface_hub re-raises it as is');
        assert.equal(r.headers['content-length'] === String(SIZE), false, 'no byte of the body');
      }
      const good = await raw(file, { headers: bearer('hf_alice') });
      assert.equal(good.status, 200);
      assert.ok(good.body.equals(bytes));
      assert.equal((await raw(file)).status, 200, 'anonymous callers still served');
      // The token was judged once upstream, not per request.
      assert.equal(
        hub.countRequests((q) => q.authorization === 'Bearer hf_nope'),
        1,
      );
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('API keys: required from every caller (header, Basic password or Bearer), never forwarded upstream; /healthz open', async () => {
    const hub = await startTestHub();
    hub.hf.createRepo('org/m').commit({ 'config.json': '{}' });
    const m = await startMirror([hub.hfEndpoint], { apiKeys: ['mirror-key-1'] });
    try {
      const url = `${m.url}/org/m/resolve/main/config.json`;
      const none = await raw(url);
      assert.equal(none.status, 401);
      assert.equal(none.headers['x-error-code'], 'MirrorApiKeyRequired');
      assert.equal((await raw(url, { headers: { 'x-hubcache-key': 'wrong' } })).status, 401);
      assert.equal((await raw(url, { headers: { 'x-hubcache-key': 'mirror-key-1' } })).status, 200);
      assert.equal(
        (await raw(url, { headers: { authorization: `Basic ${Buffer.from('me:mirror-key-1').toString('base64')}` } }))
          .status,
        200,
      );
      assert.equal((await raw(url, { headers: bearer('mirror-key-1') })).status, 200);
      assert.equal(
        hub.countRequests((q) => q.authorization !== undefined),
        0,
        'the key never went upstream',
      );
      assert.equal((await raw(`${m.url}/healthz`)).status, 200);
    } finally {
      await m.close();
      await hub.close();
    }
  });

  test('--allow / --deny: repo ids outside the rules are refused with 403 before upstream', async () => {
    const hub = await startTestHub();
    for (const id of ['org/m', 'org/secret', 'other/x']) hub.hf.createRepo(id).commit({ 'config.json': '{}' });
    const m = await startMirror([hub.hfEndpoint], { allow: ['org/*'], deny: ['org/secret'] });
    try {
      assert.equal((await raw(`${m.url}/org/m/resolve/main/config.json`)).status, 200);
      hub.resetRequests();
      for (const p of [
        '/org/secret/resolve/main/config.json',
        '/other/x/resolve/main/config.json',
        '/api/models/org/secret/revision/main',
      ]) {
        const r = await raw(`${m.url}${p}`);
        assert.equal(r.status, 403, p);
        assert.equal(r.headers['x-error-code'], 'MirrorRepoDenied', p);
      }
      assert.equal(hub.countRequests(), 0);
    } finally {
      await m.close();
      await hub.close();
    }
  });
});
