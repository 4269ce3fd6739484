// `--endpoint`, repeatable and per hub: a bare URL is for the hub of the repos in play, `hf=URL`
// / `modelscope=URL` name the hub; `status` and `outdated` compare every endpoint given (two test
// hubs: a primary and a mirror that lags), an endpoint that cannot answer exits non-zero, and
// unusable values are usage errors (exit 2).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { StatusReport } from '../src/care/status.js';
import { ExitCode } from '../src/errors.js';
import type { OutdatedEntry } from '../src/manifest/outdated.js';
import { startTestHub, type TestHub, type TestRepo } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

/** The same history on both hubs (same content and clock give the same ids). */
function seed(hub: TestHub): { hf: TestRepo; ms: TestRepo } {
  const hf = hub.hf.createRepo('org/model');
  hf.commit({ 'config.json': '{"v":1}' });
  const ms = hub.ms.createRepo('qwen/Q');
  ms.commit({ 'config.json': '{"q":1}', 'w.bin': 'weights' });
  return { hf, ms };
}

describe('--endpoint: repeatable, per hub', () => {
  let primary: TestHub;
  let mirror: TestHub;
  let root: string;
  let c2: string;
  before(async () => {
    primary = await startTestHub();
    mirror = await startTestHub();
    const p = seed(primary);
    seed(mirror);
    root = await tempDir();
    const env = {
      HF_HUB_CACHE: root,
      MODELSCOPE_CACHE: root,
      HF_ENDPOINT: primary.hfEndpoint,
      MODELSCOPE_ENDPOINT: primary.msEndpoint,
    };
    assert.equal((await runCli(['download', 'org/model'], env)).code, 0);
    assert.equal((await runCli(['download', 'modelscope:qwen/Q'], env)).code, 0);
    // Both move on the primary only: the cache and the mirror are behind.
    c2 = p.hf.commit({ 'config.json': '{"v":2}' });
    p.ms.commit({ 'config.json': '{"q":2}' });
  });
  after(async () => {
    await primary.close();
    await mirror.close();
  });
  /** No endpoint variable set: whatever is asked, was asked because a flag said so. */
  const bare = (): Record<string, string> => ({ HF_HUB_CACHE: root, MODELSCOPE_CACHE: root });

  test('status modelscope:org/name --endpoint A --endpoint B checks ModelScope on A and B (not HF, not www.modelscope.cn)', async () => {
    primary.resetRequests();
    const r = await runCli(
      ['status', 'modelscope:qwen/Q', '--endpoint', primary.msEndpoint, '--endpoint', mirror.msEndpoint, '--json'],
      bare(),
    );
    assert.equal(r.code, 1, r.stderr);
    const [ref] = (JSON.parse(r.stdout) as StatusReport).refs;
    assert.deepEqual(
      ref?.remotes.map((x) => [x.endpoint, x.error]),
      [
        [primary.msEndpoint, undefined],
        [mirror.msEndpoint, undefined],
      ],
    );
    assert.equal(ref?.state, 'outdated');
    assert.deepEqual(ref?.laggingEndpoints, [mirror.msEndpoint]);
    assert.equal(primary.countRequests({ host: 'hf' }), 0, 'HF was not asked');
  });

  test("hf=URL and modelscope=URL name the hub: a mixed cache is checked on each hub's own endpoints", async () => {
    const r = await runCli(
      [
        'status',
        '--endpoint',
        `modelscope=${primary.msEndpoint}`,
        '--endpoint',
        `hf=${primary.hfEndpoint}`,
        '--endpoint',
        `hf=${mirror.hfEndpoint}`,
        '--json',
      ],
      bare(),
    );
    assert.equal(r.code, 1, r.stderr);
    const rep = JSON.parse(r.stdout) as StatusReport;
    const byRepo = new Map(rep.refs.map((x) => [x.repo, x]));
    assert.deepEqual(
      byRepo.get('org/model')?.remotes.map((x) => [x.endpoint, x.commit]),
      [
        [primary.hfEndpoint, c2],
        [mirror.hfEndpoint, byRepo.get('org/model')?.local.commit],
      ],
    );
    assert.deepEqual(
      byRepo.get('modelscope:qwen/Q')?.remotes.map((x) => x.endpoint),
      [primary.msEndpoint],
    );
    // A bare domain is a ModelScope endpoint, as MODELSCOPE_DOMAIN is (https:// added).
    const dom = await runCli(['status', 'modelscope:qwen/Q', '--endpoint', 'modelscope=127.0.0.1:9', '--json'], bare());
    assert.equal((JSON.parse(dom.stdout) as StatusReport).refs[0]?.remotes[0]?.endpoint, 'https://127.0.0.1:9');
  });

  test('a bare URL with repos on both hubs is ambiguous (exit 2, says how to name the hub)', async () => {
    const r = await runCli(['status', 'org/model', 'modelscope:qwen/Q', '--endpoint', primary.hfEndpoint], bare());
    assert.equal(r.code, ExitCode.usage, r.stderr);
    assert.match(r.stderr, /ambiguous: the repos are on both hubs/);
    assert.match(r.stderr, /hint: .*--endpoint hf=URL or --endpoint modelscope=URL/);
    const all = await runCli(['status', '--endpoint', primary.hfEndpoint], bare());
    assert.equal(all.code, ExitCode.usage, 'the whole cache holds both hubs too');
  });

  test('an endpoint that cannot answer leaves the state unknown and exits 17, also next to one that answers', async () => {
    const down = 'http://127.0.0.1:9';
    const r = await runCli(['status', 'org/model@main', '--endpoint', down, '--json'], bare());
    assert.equal(r.code, ExitCode.network, r.stderr);
    assert.equal((JSON.parse(r.stdout) as StatusReport).refs[0]?.state, 'unknown');
    // One endpoint up to date with the cache, the other down: "nothing outdated" is not known.
    const ms = await runCli(
      ['status', 'modelscope:qwen/Q', '--endpoint', mirror.msEndpoint, '--endpoint', down],
      bare(),
    );
    assert.equal(ms.code, ExitCode.network, ms.stdout + ms.stderr);
    assert.match(ms.stderr, /on http:\/\/127\.0\.0\.1:9: /);
  });

  test('unusable values are usage errors naming the flag; commands that use one endpoint refuse two', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['status', 'org/model', '--endpoint', 'notaurl'], /--endpoint "notaurl" is not a hub URL/],
      [['status', 'org/model', '--endpoint', 'http://'], /--endpoint "http:\/\/" is not a hub URL/],
      [['download', 'org/model', '--endpoint', 'ftp://127.0.0.1/'], /ftp: is not http or https/],
      [['download', 'org/model', '--endpoint', 'file:///tmp/hub'], /file: is not http or https/],
      [['download', 'org/model', '--endpoint', 'foo=http://127.0.0.1:9'], /unknown hub "foo"/],
      [['download', 'org/model', '--endpoint', `${primary.hfEndpoint}?x=1`], /no query or fragment/],
      [
        ['download', 'org/model', '--endpoint', primary.hfEndpoint, '--endpoint', mirror.hfEndpoint],
        /2 endpoints given for hf: .*this command uses one/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, bare());
      assert.equal(r.code, ExitCode.usage, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
  });

  test('the token goes to the first endpoint given for a hub only, never to the mirror after it', async () => {
    for (const h of [primary, mirror]) {
      h.hf.createRepo('org/priv', { private: true }).commit({ 'a.txt': 'secret' });
      h.tokens.add('hf_primary_only');
    }
    const cache = await tempDir();
    const dl = await runCli(['download', 'org/priv', '--endpoint', primary.hfEndpoint], {
      HF_HUB_CACHE: cache,
      HF_TOKEN: 'hf_primary_only',
    });
    assert.equal(dl.code, 0, dl.stderr);
    primary.resetRequests();
    mirror.resetRequests();
    const r = await runCli(
      ['status', 'org/priv', '--endpoint', primary.hfEndpoint, '--endpoint', mirror.hfEndpoint, '--json'],
      { HF_HUB_CACHE: cache, HF_TOKEN: 'hf_primary_only' },
    );
    const [ref] = (JSON.parse(r.stdout) as StatusReport).refs;
    assert.equal(ref?.state, 'up-to-date');
    assert.ok(
      primary.requests.length > 0 && primary.requests.every((q) => q.authorization === 'Bearer hf_primary_only'),
    );
    assert.ok(
      mirror.requests.length > 0 && mirror.requests.every((q) => q.authorization === undefined),
      'no token to the mirror',
    );
    assert.equal(r.code, ExitCode.repoNotFound, 'the mirror cannot see the private repo: not known there');
  });

  test("download: a bare URL is for the repo's hub; hf=/modelscope= work there too", async () => {
    const cache = await tempDir();
    const ms = await runCli(['download', 'modelscope:qwen/Q', '--endpoint', mirror.msEndpoint], {
      MODELSCOPE_CACHE: cache,
    });
    assert.equal(ms.code, 0, ms.stderr);
    const named = await runCli(
      [
        'download',
        'org/model',
        '--endpoint',
        `modelscope=${mirror.msEndpoint}`,
        '--endpoint',
        `hf=${mirror.hfEndpoint}`,
      ],
      { HF_HUB_CACHE: cache },
    );
    assert.equal(named.code, 0, named.stderr);
    assert.ok(named.stdout.trim().startsWith(path.join(cache, 'models--org--model')));
  });

  test('outdated in a project compares every --endpoint (not the last one), and exits 17 when one is down', async () => {
    const dir = await tempDir('hubcache-project-');
    const file = path.join(dir, 'hubcache.json');
    await fs.writeFile(file, JSON.stringify({ models: { m: { repo: 'org/model' } } }));
    const env = { HF_HUB_CACHE: await tempDir(), HF_ENDPOINT: mirror.hfEndpoint };
    const lock = await runCli(['lock', '--manifest', file], env);
    assert.equal(lock.code, 0, lock.stderr);
    // The lock pins the mirror's main; the primary has moved on. The mirror is given last.
    const r = await runCli(
      ['outdated', '--manifest', file, '--endpoint', primary.hfEndpoint, '--endpoint', mirror.hfEndpoint, '--json'],
      env,
    );
    assert.equal(r.code, 1, r.stderr);
    const found = JSON.parse(r.stdout) as OutdatedEntry[];
    assert.deepEqual(
      found.map((e) => [e.alias, e.endpoint, e.latest]),
      [['m', primary.hfEndpoint, c2]],
    );
    const human = await runCli(
      ['outdated', '--manifest', file, '--endpoint', primary.hfEndpoint, '--endpoint', mirror.hfEndpoint],
      env,
    );
    assert.match(
      human.stdout,
      new RegExp(
        `m\\s+org/model@main\\s+\\w{8} → ${c2.slice(0, 8)}\\s+\\(on ${primary.hfEndpoint.replace(/\./g, '\\.')}\\)`,
      ),
    );
    const current = await runCli(['outdated', '--manifest', file, '--endpoint', mirror.hfEndpoint], env);
    assert.equal(current.code, 0, current.stderr);
    const down = await runCli(
      ['outdated', '--manifest', file, '--endpoint', mirror.hfEndpoint, '--endpoint', 'http://127.0.0.1:9'],
      env,
    );
    assert.equal(down.code, ExitCode.network, down.stderr);
    assert.match(down.stderr, /127\.0\.0\.1:9/);
  });
});
