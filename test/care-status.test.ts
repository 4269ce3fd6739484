// `hubcache status`: cached refs against the hub, and against two endpoints (two test hubs, one
// lagging like a stale mirror); ModelScope by per-file revisions.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StatusReport } from '../src/care/status.js';
import { ExitCode } from '../src/errors.js';
import { startTestHub, type TestHub, type TestRepo } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

/** The same history on every hub: identical content and clock give identical commit ids. */
function seed(hub: TestHub): { repo: TestRepo; c1: string } {
  const repo = hub.hf.createRepo('org/model');
  const c1 = repo.commit({ 'config.json': '{"v":1}', 'w.safetensors': { size: 10_000, seed: 1 } });
  repo.tag('v1', c1);
  return { repo, c1 };
}

describe('care: status', () => {
  let primary: TestHub;
  let mirror: TestHub;
  let c1: string;
  let c2: string;
  let root: string;
  before(async () => {
    primary = await startTestHub();
    mirror = await startTestHub();
    const p = seed(primary);
    const m = seed(mirror);
    assert.equal(p.c1, m.c1, 'both hubs share the history');
    c1 = p.c1;
    root = await tempDir();
    const env = { HF_HUB_CACHE: root, HF_ENDPOINT: primary.hfEndpoint };
    assert.equal((await runCli(['download', 'org/model'], env)).code, 0);
    assert.equal((await runCli(['download', 'org/model', '--revision', 'v1'], env)).code, 0);
    // main moves on the primary hub only: the cache and the mirror are now behind.
    c2 = p.repo.commit({ 'config.json': '{"v":2}' });
  });
  after(async () => {
    await primary.close();
    await mirror.close();
  });

  test('one endpoint: main is outdated, the tag is not; exit 1', async () => {
    const r = await runCli(['status', '--json'], { HF_HUB_CACHE: root, HF_ENDPOINT: primary.hfEndpoint });
    assert.equal(r.code, 1, r.stderr);
    const rep = JSON.parse(r.stdout) as StatusReport;
    const byRef = new Map(rep.refs.map((x) => [x.ref, x]));
    assert.equal(byRef.get('main')?.state, 'outdated');
    assert.equal(byRef.get('main')?.local.commit, c1);
    assert.equal(byRef.get('main')?.remotes[0]?.commit, c2);
    assert.ok((byRef.get('main')?.remotes[0]?.dateMs ?? 0) > 0, 'remote date');
    assert.ok((byRef.get('main')?.local.dateMs ?? 0) > 0, 'local date');
    assert.equal(byRef.get('v1')?.state, 'up-to-date');
    assert.equal(rep.outdated, 1);
    const human = await runCli(['status', 'org/model'], { HF_HUB_CACHE: root, HF_ENDPOINT: primary.hfEndpoint });
    assert.match(
      human.stdout,
      new RegExp(`org/model\\s+main\\s+${c1.slice(0, 12)} \\(.*\\)\\s+${c2.slice(0, 12)} \\(.*\\)\\s+outdated`),
    );
  });

  test('`outdated` outside a project is the same check as `status` (cwd has no hubcache.json)', async () => {
    const r = await runCli(['outdated', '--cache', '--json'], { HF_HUB_CACHE: root, HF_ENDPOINT: primary.hfEndpoint });
    assert.equal(r.code, 1, r.stderr);
    const rep = JSON.parse(r.stdout) as StatusReport;
    assert.equal(rep.refs.find((x) => x.ref === 'main')?.state, 'outdated');
  });

  test('two endpoints: the mirror lags the hub on main', async () => {
    const r = await runCli(
      ['status', 'org/model', '--endpoint', primary.hfEndpoint, '--endpoint', mirror.hfEndpoint, '--json'],
      { HF_HUB_CACHE: root },
    );
    assert.equal(r.code, 1, r.stderr);
    const rep = JSON.parse(r.stdout) as StatusReport;
    const main = rep.refs.find((x) => x.ref === 'main')!;
    assert.deepEqual(
      main.remotes.map((x) => [x.endpoint, x.commit]),
      [
        [primary.hfEndpoint, c2],
        [mirror.hfEndpoint, c1],
      ],
    );
    assert.deepEqual(main.laggingEndpoints, [mirror.hfEndpoint]);
    assert.equal(main.state, 'outdated');
    const tag = rep.refs.find((x) => x.ref === 'v1')!;
    assert.deepEqual(tag.laggingEndpoints, []);
    const human = await runCli(['status', '--endpoint', primary.hfEndpoint, '--endpoint', mirror.hfEndpoint], {
      HF_HUB_CACHE: root,
    });
    assert.match(human.stdout, new RegExp(`lagging: ${mirror.hfEndpoint.replace(/[.]/g, '\\.')}`));
    assert.match(human.stdout, /1 outdated, 1 with a lagging endpoint/);
  });

  test('an unreachable endpoint is "unknown", not a crash, and exits 17 (offline: 16), not 0', async () => {
    const r = await runCli(['status', '--endpoint', 'http://127.0.0.1:9', '--json'], { HF_HUB_CACHE: root });
    assert.equal(r.code, ExitCode.network, r.stderr);
    const rep = JSON.parse(r.stdout) as StatusReport;
    assert.ok(
      rep.refs.every((x) => x.state === 'unknown' && x.remotes[0]?.error && x.remotes[0].exitCode === ExitCode.network),
    );
    const human = await runCli(['status', '--endpoint', 'http://127.0.0.1:9'], { HF_HUB_CACHE: root });
    assert.equal(human.code, ExitCode.network);
    assert.match(human.stdout, /0 outdated, 0 with a lagging endpoint, 2 unknown/);
    const off = await runCli(['status', '--offline', '--json'], {
      HF_HUB_CACHE: root,
      HF_ENDPOINT: primary.hfEndpoint,
    });
    assert.equal(off.code, ExitCode.offlineMiss);
    assert.equal((JSON.parse(off.stdout) as StatusReport).unknown, 2);
  });

  test('ModelScope: files changed upstream make the revision outdated', async () => {
    const msRoot = await tempDir();
    const ms = primary.ms.createRepo('qwen/Q');
    ms.commit({ 'config.json': '{"q":1}', 'w.bin': 'weights' });
    const env = { MODELSCOPE_CACHE: msRoot, MODELSCOPE_ENDPOINT: primary.msEndpoint, HF_HUB_CACHE: msRoot };
    assert.equal((await runCli(['download', 'modelscope:qwen/Q'], env)).code, 0);
    const fresh = await runCli(['status', '--json'], env);
    assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);
    ms.commit({ 'config.json': '{"q":2}' });
    const r = await runCli(['status', '--json'], env);
    assert.equal(r.code, 1);
    const ref = (JSON.parse(r.stdout) as StatusReport).refs[0]!;
    assert.deepEqual(
      [ref.repo, ref.ref, ref.state, ref.remotes[0]?.changedFiles],
      ['modelscope:qwen/Q', 'master', 'outdated', ['config.json']],
    );
  });
});
