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
const DOTTY = {
  '..hidden.txt': 'hidden\n',
  '...': 'three dots\n',
  '..%2f..%2fescape.txt': 'not an escape\n',
  'sub/..x/.y': 'nested\n',
};

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
    for (const [name, body] of Object.entries(DOTTY))
      assert.equal(await fs.readFile(path.join(snap, name), 'utf8'), body, name);
    assert.deepEqual(await listTree(snap), [
      '..%2f..%2fescape.txt',
      '...',
      '..hidden.txt',
      'config.json',
      'sub/..x/.y',
    ]);
    const local = path.join(await tempDir(), 'out');
    const l = await runCli(['download', 'org/dots', '--local-dir', local], env);
    assert.equal(l.code, 0, l.stderr);
    for (const [name, body] of Object.entries(DOTTY))
      assert.equal(await fs.readFile(path.join(local, name), 'utf8'), body, name);
  });

  test('ModelScope: the same names land in the model folder', async () => {
    const cache = await tempDir();
    const r = await runCli(['download', 'modelscope:org/dots'], {
      MODELSCOPE_CACHE: cache,
      MODELSCOPE_ENDPOINT: hub.msEndpoint,
    });
    assert.equal(r.code, 0, r.stderr);
    const dir = r.stdout.trim();
    for (const [name, body] of Object.entries(DOTTY))
      assert.equal(await fs.readFile(path.join(dir, name), 'utf8'), body, name);
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
        assert.match(
          r.stderr,
          style === 'sameUrl'
            ? /pagination .*does not end: the next link points to a page already read/
            : /pagination .*does not end: a page added no new entry/,
        );
        assert.ok(hub.countRequests(tree) <= 2, `${hub.countRequests(tree)} tree requests`);
        assert.deepEqual(
          (await listTree(cache)).filter((p) => p.includes('/snapshots/')),
          [],
        );
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

describe('numbers, redirects and 404s from the hub', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/w').commit({ 'config.json': '{}', 'w.safetensors': { size: 50_000, seed: 3 } });
    hub.ms.createRepo('org/w').commit({ 'config.json': '{}', 'w.safetensors': { size: 50_000, seed: 3 } });
  });
  after(async () => {
    hub.faults.clear();
    await hub.close();
  });
  const hfEnv = (cache: string): Record<string, string> => ({ HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint });
  const msEnv = (cache: string): Record<string, string> => ({
    MODELSCOPE_CACHE: cache,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
  });
  /** Nothing of the repo is visible in the cache: no snapshot, blob or model file (locks aside). */
  const noFiles = async (cache: string): Promise<void> => {
    assert.deepEqual(
      (await listTree(cache)).filter(
        (p) => !p.startsWith('.locks/') && !/(^|\/)\.(lock|mdl)$/.test(p) && !p.endsWith('.lock'),
      ),
      [],
    );
  };
  /** The refused file is not visible: no w.safetensors in any snapshot or model folder, no blob of its content. */
  const refusedFileAbsent = async (cache: string): Promise<void> => {
    const sha = hub.hf.repo('org/w').file('w.safetensors')!.content.sha256();
    const files = await listTree(cache);
    assert.deepEqual(
      files.filter((p) => p.endsWith('/w.safetensors') || p.endsWith(`/blobs/${sha}`)),
      [],
      files.join('\n'),
    );
  };

  test('HF: lfs.size -5, 2.5, 1e15 and a top-level size of 1e15 are a server error (exit 21), before any plan', async () => {
    const cases: Array<[string, { size?: number; lfsSize?: number }]> = [
      ['neg', { lfsSize: -5 }],
      ['frac', { lfsSize: 2.5 }],
      ['huge', { lfsSize: 1e15 }],
      ['hugetop', { size: 1e15 }],
    ];
    for (const [name, numbers] of cases) {
      const id = `org/size-${name}`;
      hub.hf.createRepo(id).commit({ 'ok.txt': 'fine' });
      hub.hf.injectTreeEntries(id, [{ path: 'w.bin', content: 'abc', lfs: true, ...numbers }]);
      const cache = await tempDir();
      const r = await runCli(['download', id], hfEnv(cache));
      assert.equal(r.code, ExitCode.server, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /Bad (LFS )?size .* for w\.bin in the tree listing/, name);
      assert.doesNotMatch(r.stderr, /EFBIG| B\)|to download/, `${name}: no plan, no raw error`);
      await noFiles(cache);
    }
  });

  test('ModelScope: Size -5, 2.5, 1e15 are a server error (exit 21)', async () => {
    for (const [name, size] of [
      ['neg', -5],
      ['frac', 2.5],
      ['huge', 1e15],
    ] as const) {
      const id = `org/size-${name}`;
      hub.ms.createRepo(id).commit({ 'ok.txt': 'fine' });
      hub.ms.injectTreeEntries(id, [{ path: 'w.bin', content: 'abc', size }]);
      const cache = await tempDir();
      const r = await runCli(['download', `modelscope:${id}`], msEnv(cache));
      assert.equal(r.code, ExitCode.server, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /Bad Size .* for w\.bin/, name);
      await noFiles(cache);
    }
  });

  test('HF: an X-Linked-Size that is not a sane byte count makes the file metadata a server error', async () => {
    const { HfClient } = await import('../src/hubs/hf.js');
    const { ServerError } = await import('../src/errors.js');
    const client = new HfClient({ endpoint: hub.hfEndpoint });
    const ref = { hub: 'hf' as const, type: 'model' as const, id: 'org/w' };
    const commit = hub.hf.repo('org/w').headOf() as string;
    assert.equal((await client.fileMetadata(ref, 'main', 'w.safetensors')).size, 50_000);
    for (const bad of ['1000000000000000', '-5', '2.5', '12abc']) {
      hub.faults.status(200, {
        match: '/resolve/',
        method: 'HEAD',
        headers: { 'X-Repo-Commit': commit, ETag: '"abc"', 'X-Linked-Size': bad },
      });
      await assert.rejects(
        client.fileMetadata(ref, 'main', 'w.safetensors'),
        (e: unknown) => e instanceof ServerError && /Incomplete file metadata/.test(e.message),
        bad,
      );
    }
  });

  test('a redirect to file:///etc/passwd (HF HEAD, the CDN, ModelScope) is a server error (exit 21), nothing written', async () => {
    const cases: Array<
      [string, Parameters<TestHub['faults']['redirect']>[1], string[], (c: string) => Record<string, string>]
    > = [
      ['HF resolve HEAD', { host: 'hf', method: 'HEAD' }, ['download', 'org/w'], hfEnv],
      ['HF CDN GET', { host: 'cdn' }, ['download', 'org/w'], hfEnv],
      ['ModelScope download', { host: 'ms' }, ['download', 'modelscope:org/w'], msEnv],
      ['ftp: from the CDN', { host: 'cdn' }, ['download', 'org/w'], hfEnv],
    ];
    for (const [name, scope, args, env] of cases) {
      const fault = hub.faults.redirect(name.startsWith('ftp') ? 'ftp://127.0.0.1/x' : 'file:///etc/passwd', {
        times: Infinity,
        ...scope,
      });
      const cache = await tempDir();
      try {
        const r = await runCli(args, env(cache));
        assert.equal(r.code, ExitCode.server, `${name}: ${r.stderr}`);
        assert.match(r.stderr, /Refusing a redirect to a (file|ftp): URL/, name);
        assert.ok(fault.hits >= 1, `${name}: the fault was hit`);
        await refusedFileAbsent(cache);
      } finally {
        fault.cancel();
      }
    }
  });

  test('a plain 404 (no X-Error-Code) means not found: the repo on an API URL (10), the file on resolve/ (12)', async () => {
    const cases: Array<[string, Parameters<TestHub['faults']['status']>[1], string[], number, RegExp]> = [
      [
        'repo info',
        { match: '/revision/' },
        ['download', 'org/w'],
        ExitCode.repoNotFound,
        /Repository not found: org\/w/,
      ],
      [
        'tree listing',
        { match: '/tree/' },
        ['download', 'org/w'],
        ExitCode.repoNotFound,
        /Repository not found: org\/w/,
      ],
      [
        'resolve HEAD',
        { match: '/resolve/', method: 'HEAD' },
        ['download', 'org/w', 'w.safetensors'],
        ExitCode.entryNotFound,
        /File not found: org\/w\/w\.safetensors/,
      ],
      [
        'resolve GET',
        { match: '/resolve/', method: 'GET' },
        ['download', 'org/w', 'config.json'],
        ExitCode.entryNotFound,
        /File not found: .*config\.json/,
      ],
    ];
    for (const [name, scope, args, code, re] of cases) {
      const fault = hub.faults.status(404, { times: Infinity, ...scope });
      const cache = await tempDir();
      try {
        const r = await runCli(args, hfEnv(cache));
        assert.equal(r.code, code, `${name}: ${r.stderr}`);
        assert.match(r.stderr, re, name);
        assert.doesNotMatch(r.stderr, /HTTP 404 for/, name);
      } finally {
        fault.cancel();
      }
    }
  });
});
