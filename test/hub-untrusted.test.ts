// What a hub sends is untrusted, but not everything odd is hostile: file names that merely start
// with dots download; `..` segments, absolute paths and backslashes do not. Sizes and counts
// from listings and headers are checked like the top-level `size`; pagination that never ends,
// redirects to non-http(s) URLs and plain 404s each get their own typed error.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ExitCode } from '../src/errors.js';
import { safeJoin } from '../src/util/safe-path.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { listTree, runCli, tempDir } from './helpers.js';

/** Literal file names a real repo may hold: dots first, and `%2f` as three plain characters. */
const DOTTY = { '..hidden.txt': 'hidden\n', '...': 'three dots\n', '..%2f..%2fescape.txt': 'not an escape\n', 'sub/..x/.y': 'nested\n' };

describe('names from the hub: dots are not escapes', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/dots').commit({ 'config.json': '{}', ...DOTTY });
    hub.ms.createRepo('org/dots').commit({ 'config.json': '{}', ...DOTTY });
  });
  after(async () => hub.close());

  test('HF: ..hidden.txt, ..., ..%2f..%2fescape.txt download into the snapshot (cache and --local-dir)', async () => {
    const cache = await tempDir();
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint };
    const r = await runCli(['download', 'org/dots'], env);
    assert.equal(r.code, 0, r.stderr);
    const snap = r.stdout.trim();
    assert.ok(snap.startsWith(path.join(cache, 'models--org--dots', 'snapshots')), snap);
    for (const [name, body] of Object.entries(DOTTY)) assert.equal(await fs.readFile(path.join(snap, name), 'utf8'), body, name);
    assert.deepEqual(await listTree(snap), ['..%2f..%2fescape.txt', '...', '..hidden.txt', 'config.json', 'sub/..x/.y']);
    const local = path.join(await tempDir(), 'out');
    const l = await runCli(['download', 'org/dots', '--local-dir', local], env);
    assert.equal(l.code, 0, l.stderr);
    for (const [name, body] of Object.entries(DOTTY)) assert.equal(await fs.readFile(path.join(local, name), 'utf8'), body, name);
  });

  test('ModelScope: the same names land in the model folder', async () => {
    const cache = await tempDir();
    const r = await runCli(['download', 'modelscope:org/dots'], { MODELSCOPE_CACHE: cache, MODELSCOPE_ENDPOINT: hub.msEndpoint });
    assert.equal(r.code, 0, r.stderr);
    const dir = r.stdout.trim();
    for (const [name, body] of Object.entries(DOTTY)) assert.equal(await fs.readFile(path.join(dir, name), 'utf8'), body, name);
  });

  test('`..` segments, absolute paths and backslashes are still refused, and nothing is written', async () => {
    const hostile = ['../x', 'a/../../x', '..', '/etc/passwd', 'a\\..\\..\\x', '..\\x', 'C:/x'];
    for (const p of hostile) assert.throws(() => safeJoin('/tmp/root', p), /unsafe|outside/i, p);
    for (const [i, p] of hostile.entries()) {
      const id = `org/evil${i}`;
      hub.hf.createRepo(id).commit({ 'ok.txt': 'fine' });
      hub.hf.injectTreeEntries(id, [{ path: p, content: 'pwned' }]);
      const cache = await tempDir();
      const r = await runCli(['download', id], { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint });
      assert.equal(r.code, ExitCode.unsafePath, `${p}: ${r.stderr}`);
      assert.deepEqual(await listTree(cache), [], p);
    }
  });
});
