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

describe('tree pagination that never ends', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub({ pageSize: 2 });
    hub.hf.createRepo('org/paged').commit({ 'a.txt': 'a', 'b.txt': 'b', 'c/d.txt': 'd', 'e.txt': 'e' });
  });
  after(async () => hub.close());
  const tree = { host: 'hf' as const, path: '/tree/' };

  test('the switch: every page links to itself, or to a fresh URL serving the same page', async () => {
    const same = hub.faults.endlessPages({ times: 1 });
    const url = `${hub.hfEndpoint}/api/models/org/paged/tree/main?recursive=true`;
    const a = await fetch(url);
    assert.equal(a.headers.get('link'), `<${url}>; rel="next"`);
    assert.equal(same.hits, 1);
    hub.faults.endlessPages({ times: 1, style: 'freshUrl' });
    const b = await fetch(url);
    const next = /^<([^>]+)>/.exec(b.headers.get('link') ?? '')?.[1] ?? '';
    assert.match(next, /[?&]loop=1(&|$)/);
    assert.deepEqual(await (await fetch(next)).json(), await b.json(), 'the fresh URL serves the same page');
  });

  for (const style of ['sameUrl', 'freshUrl'] as const) {
    test(`${style}: the download stops after a page or two with a server error (exit 21), nothing written`, async () => {
      const fault = hub.faults.endlessPages({ style });
      hub.resetRequests();
      const cache = await tempDir();
      try {
        const r = await runCli(['download', 'org/paged'], { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint });
        assert.equal(r.code, ExitCode.server, r.stderr);
        assert.match(r.stderr, style === 'sameUrl' ? /pagination .*does not end: the next link points to a page already read/ : /pagination .*does not end: a page added no new entry/);
        assert.ok(hub.countRequests(tree) <= 2, `${hub.countRequests(tree)} tree requests`);
        assert.deepEqual((await listTree(cache)).filter((p) => p.includes('/snapshots/')), []);
      } finally {
        fault.cancel();
      }
    });
  }

  test('honest pagination (4 files, 2 per page, folders listed too) still lists everything', async () => {
    const cache = await tempDir();
    hub.resetRequests();
    const r = await runCli(['download', 'org/paged'], { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await listTree(r.stdout.trim()), ['a.txt', 'b.txt', 'c/d.txt', 'e.txt']);
    assert.equal(hub.countRequests(tree), 3, '5 entries (one a folder), 2 per page');
  });
});
