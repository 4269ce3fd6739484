// `hubcache doctor`: every finding triggered by a crafted input. The pure checks get fake mounts
// tables, environments and probes; the cache checks get repos downloaded from the test hub and
// then damaged or filtered (a diffusers pipeline without a component, a sharded checkpoint without
// a shard, .bin-only weights where safetensors exist, broken links, partials, stray refs,
// duplicates across an HF and a ModelScope cache).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  envFindings,
  networkFindings,
  reportedEnv,
  lockingFindings,
  mountFor,
  parseMounts,
  permissionFindings,
  spaceFindings,
  storageFindings,
  symlinkFindings,
  type DoctorFinding,
} from '../src/care/doctor-checks.js';
import type { DoctorOptions, DoctorReport } from '../src/care/doctor.js';
import { Cache } from '../src/cache.js';
import { blobOf } from './fixtures/care-cache.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { ROOT, runCli, tempDir } from './helpers.js';

const checks = (fs: DoctorFinding[]): string[] => fs.map((f) => `${f.severity} ${f.check}`).sort();

describe('doctor: pure checks', () => {
  const used = { hf: '/home/u/.cache/huggingface/hub', modelscope: '/home/u/.cache/modelscope/hub' };
  const HOME = { HOME: '/home/u' };

  test('a clean environment has nothing to say', () => {
    assert.deepEqual(envFindings(HOME, used), []);
  });

  test('network: the proxy that applies to each hub, a refused proxy URL, a CA bundle, passwords masked', () => {
    const endpoints = ['https://huggingface.co', 'https://www.modelscope.cn'];
    assert.deepEqual(networkFindings(HOME, endpoints), []);
    const viaProxy = networkFindings(
      { HTTPS_PROXY: 'http://bob:pw@proxy.corp:3128', NO_PROXY: '.modelscope.cn' },
      endpoints,
    );
    assert.deepEqual(checks(viaProxy), ['info net.proxy']);
    assert.match(viaProxy[0]!.message, /huggingface\.co go through the proxy proxy\.corp:3128 \(with credentials\)/);
    assert.deepEqual(checks(networkFindings({ HTTPS_PROXY: 'socks5://p:1080' }, endpoints)), [
      'error net.proxy-invalid',
    ]);
    const caFile = path.join(ROOT, 'test/fixtures/tls/cert.pem');
    assert.deepEqual(checks(networkFindings({ SSL_CERT_FILE: caFile }, endpoints)), ['info net.ca-bundle']);
    assert.deepEqual(checks(networkFindings({ REQUESTS_CA_BUNDLE: '/nonexistent.pem' }, endpoints)), [
      'error net.ca-bundle-invalid',
    ]);
    assert.equal(
      reportedEnv({ HTTPS_PROXY: 'http://bob:pw@proxy.corp:3128' }).HTTPS_PROXY,
      'http://bob:***@proxy.corp:3128',
    );
  });

  test('HF_HUB_CACHE and HF_HOME both set and disagreeing', () => {
    const f = envFindings(
      { ...HOME, HF_HOME: '/data/hf', HF_HUB_CACHE: '/scratch/hub' },
      { hf: '/scratch/hub', modelscope: used.modelscope },
    );
    assert.deepEqual(checks(f), ['warning env.hub-cache-overrides-home']);
    assert.match(f[0]!.message, /models are cached in \/scratch\/hub, not in \/data\/hf\/hub/);
    assert.match(f[0]!.fix!, /HF_HUB_CACHE=\/data\/hf\/hub/);
    assert.deepEqual(
      envFindings(
        { ...HOME, HF_HOME: '/data/hf', HF_HUB_CACHE: '/data/hf/hub' },
        { hf: '/data/hf/hub', modelscope: used.modelscope },
      ),
      [],
    );
  });

  test('HF_HUB_OFFLINE=0 masks TRANSFORMERS_OFFLINE=1; odd values; the reverse', () => {
    const masked = envFindings({ ...HOME, HF_HUB_OFFLINE: '0', TRANSFORMERS_OFFLINE: '1' }, used);
    assert.deepEqual(checks(masked), ['warning env.offline-conflict']);
    assert.match(masked[0]!.message, /masks TRANSFORMERS_OFFLINE=1.*ARE contacted/);
    const odd = envFindings({ ...HOME, HF_HUB_OFFLINE: 'y' }, used);
    assert.deepEqual(checks(odd), ['warning env.offline-value']);
    const reverse = envFindings({ ...HOME, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '0' }, used);
    assert.deepEqual(checks(reverse), ['info env.offline', 'warning env.offline-conflict']);
    assert.deepEqual(checks(envFindings({ ...HOME, TRANSFORMERS_OFFLINE: '1' }, used)), ['info env.offline']);
  });

  test('legacy and foreign cache variables, ModelScope endpoints, a --cache-dir elsewhere', () => {
    assert.deepEqual(
      checks(
        envFindings(
          { ...HOME, HUGGINGFACE_HUB_CACHE: '/a', HF_HUB_CACHE: '/b' },
          { hf: '/b', modelscope: used.modelscope },
        ),
      ),
      ['warning env.legacy-hub-cache-ignored'],
    );
    assert.deepEqual(
      checks(envFindings({ ...HOME, HUGGINGFACE_HUB_CACHE: '/a' }, { hf: '/a', modelscope: used.modelscope })),
      ['info env.legacy-hub-cache'],
    );
    assert.deepEqual(checks(envFindings({ ...HOME, TRANSFORMERS_CACHE: '/models' }, used)), [
      'warning env.transformers-cache',
    ]);
    assert.deepEqual(
      checks(
        envFindings(
          { ...HOME, MODELSCOPE_DOMAIN: 'www.modelscope.cn', MODELSCOPE_ENDPOINT: 'https://www.modelscope.ai' },
          used,
        ),
      ),
      ['warning env.modelscope-endpoint-conflict'],
    );
    assert.deepEqual(
      checks(
        envFindings(
          { ...HOME, MODELSCOPE_DOMAIN: 'www.modelscope.cn', MODELSCOPE_ENDPOINT: 'https://www.modelscope.cn' },
          used,
        ),
      ),
      [],
    );
    assert.deepEqual(checks(envFindings(HOME, { hf: '/elsewhere', modelscope: used.modelscope })), [
      'info env.cache-dir-differs',
    ]);
  });

  test('mounts: tmpfs, /tmp, a container overlay without a volume, a network file system', () => {
    const mounts = parseMounts(
      [
        'overlay / overlay rw,relatime,lowerdir=/a:/b 0 0',
        'tmpfs /dev/shm tmpfs rw 0 0',
        '/dev/sdb1 /data ext4 rw 0 0',
        'server:/export /mnt/nfs\\040share nfs4 rw 0 0',
        'tmpfs /tmp tmpfs rw 0 0',
      ].join('\n'),
    );
    assert.equal(mountFor('/mnt/nfs share/hub', mounts)?.fsType, 'nfs4');
    assert.equal(mountFor('/data/hub', mounts)?.fsType, 'ext4');
    assert.equal(
      mountFor('/database', mounts)?.fsType,
      'overlay',
      'a mount point is a path prefix, not a string prefix',
    );
    const at = (dir: string, container: boolean): string[] =>
      checks(storageFindings('HF hub cache', dir, mountFor(dir, mounts), container));
    assert.deepEqual(at('/tmp/hub', false), ['error fs.tmpfs']);
    assert.deepEqual(at('/dev/shm/hub', false), ['error fs.tmpfs']);
    assert.deepEqual(at('/root/.cache/huggingface/hub', true), ['warning fs.container-layer']);
    assert.deepEqual(at('/root/.cache/huggingface/hub', false), [], 'overlay outside a container is a normal root');
    assert.deepEqual(at('/data/hub', true), [], 'a volume is mounted over the cache');
    assert.deepEqual(at('/mnt/nfs share/hub', false), ['info fs.network']);
    const diskTmp = parseMounts('/dev/vda / ext4 rw 0 0');
    assert.deepEqual(
      checks(storageFindings('HF hub cache', '/var/tmp/hub', mountFor('/var/tmp/hub', diskTmp), false)),
      ['warning fs.temp-dir'],
    );
    const f = storageFindings('HF hub cache', '/tmp/hub', mountFor('/tmp/hub', mounts), false)[0]!;
    assert.match(f.message, /vanishes after a restart/);
    assert.match(f.fix!, /HF_HUB_CACHE=\$HOME/);
  });

  test('permissions, free space, symlinks, locks', () => {
    const probe = { exists: true, checked: '/c', writable: true, ownerUid: 1000 };
    assert.deepEqual(permissionFindings('HF hub cache', '/c', probe, 1000), []);
    assert.deepEqual(
      checks(permissionFindings('HF hub cache', '/c', { ...probe, writable: false, ownerUid: 0 }, 1000)),
      ['error fs.not-writable'],
    );
    assert.match(
      permissionFindings('HF hub cache', '/c', { ...probe, writable: false, ownerUid: 0 }, 1000)[0]!.fix!,
      /chown -R \$\(id -u\)/,
    );
    assert.deepEqual(checks(permissionFindings('HF hub cache', '/c', probe, 1001)), ['warning fs.other-owner']);
    assert.deepEqual(checks(permissionFindings('HF hub cache', '/c', probe, 0)), ['warning fs.root-in-user-cache']);
    const GiB = 1024 ** 3;
    assert.deepEqual(checks(spaceFindings('HF hub cache', '/c', 0.5 * GiB, 100 * GiB)), ['error fs.space']);
    assert.deepEqual(checks(spaceFindings('HF hub cache', '/c', 5 * GiB, 100 * GiB)), ['warning fs.space']);
    assert.deepEqual(checks(spaceFindings('HF hub cache', '/c', 50 * GiB, 100 * GiB)), ['info fs.space']);
    assert.deepEqual(checks(symlinkFindings('HF hub cache', '/c', false, false)), ['warning fs.no-symlinks']);
    assert.deepEqual(
      symlinkFindings('HF hub cache', '/c', false, true),
      [],
      'HF_HUB_DISABLE_SYMLINKS: copies are expected',
    );
    assert.deepEqual(checks(lockingFindings(false, 'native flock addon not loaded: x')), ['warning locks.flock']);
    assert.deepEqual(checks(lockingFindings(true, undefined)), ['info locks.flock']);
  });
});

describe('doctor: the cache', () => {
  let hub: TestHub;
  /** No volatile folders, a plain disk, flock available: only the cache's own state can be wrong. */
  const quiet: DoctorOptions = {
    tempDirs: [],
    mounts: '/dev/vda / ext4 rw 0 0',
    inContainer: false,
    locking: { available: true },
  };

  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/pipe').commit({
      'model_index.json': JSON.stringify({
        _class_name: 'StableDiffusionPipeline',
        unet: ['diffusers', 'UNet2DConditionModel'],
        vae: ['diffusers', 'AutoencoderKL'],
        safety_checker: [null, null],
      }),
      'unet/config.json': '{}',
      'unet/diffusion_pytorch_model.safetensors': { size: 2000, seed: 1 },
      'vae/config.json': '{}',
      'vae/diffusion_pytorch_model.safetensors': { size: 2000, seed: 2 },
    });
    hub.hf.createRepo('org/sharded').commit({
      'config.json': '{}',
      'model.safetensors.index.json': JSON.stringify({
        metadata: {},
        weight_map: {
          a: 'model-00001-of-00002.safetensors',
          b: 'model-00002-of-00002.safetensors',
          c: 'model-00002-of-00002.safetensors',
        },
      }),
      'model-00001-of-00002.safetensors': { size: 3000, seed: 3 },
      'model-00002-of-00002.safetensors': { size: 3000, seed: 4 },
      'pytorch_model.bin.index.json': JSON.stringify({ weight_map: { a: 'pytorch_model-00001-of-00001.bin' } }),
      'pytorch_model-00001-of-00001.bin': { size: 3000, seed: 5 },
    });
    hub.hf.createRepo('org/binny').commit({
      'config.json': '{}',
      'pytorch_model.bin': { size: 2500, seed: 6 },
      'model.safetensors': { size: 2400, seed: 6 },
    });
    hub.hf
      .createRepo('org/weights')
      .commit({ 'config.json': '{"hf":true}', 'model.safetensors': { size: 5000, seed: 9 } });
    hub.ms
      .createRepo('org/weights-ms')
      .commit({ 'configuration.json': '{"framework":"pt"}', 'model.safetensors': { size: 5000, seed: 9 } });
  });
  after(async () => hub.close());

  async function cacheWith(
    downloads: string[][],
  ): Promise<{ root: string; cache: Cache; env: Record<string, string> }> {
    const root = await tempDir();
    const env = {
      HF_HUB_CACHE: root,
      MODELSCOPE_CACHE: root,
      HF_ENDPOINT: hub.hfEndpoint,
      MODELSCOPE_ENDPOINT: hub.msEndpoint,
    };
    for (const args of downloads) {
      const r = await runCli(['download', ...args], env);
      assert.equal(r.code, 0, r.stderr);
    }
    return { root, cache: Cache.fromEnv(env), env };
  }
  const problems = (r: DoctorReport): string[] => checks(r.findings.filter((f) => f.severity !== 'info'));

  test('a complete, healthy cache: no problems', async () => {
    const { cache, env } = await cacheWith([['org/pipe'], ['org/sharded']]);
    const r = await cache.doctor({ ...quiet, env });
    assert.deepEqual(problems(r), []);
    assert.equal(r.problems, 0);
    assert.ok(r.findings.some((f) => f.check === 'locks.flock' && f.severity === 'info'));
    assert.ok(r.dirs[0]?.roles.includes('HF hub cache') && r.dirs[0].symlinks === true);
  });

  test('a diffusers pipeline without one of its components', async () => {
    const { cache, env } = await cacheWith([['org/pipe', '--exclude', 'vae/*']]);
    const r = await cache.doctor({ ...quiet, env });
    assert.deepEqual(problems(r), ['warning repo.diffusers-components']);
    const f = r.findings.find((x) => x.check === 'repo.diffusers-components')!;
    assert.match(f.message, /component\(s\) listed in model_index\.json: vae \(/);
    assert.doesNotMatch(f.message, /safety_checker/);
    assert.match(f.fix!, /^hubcache download org\/pipe --revision [0-9a-f]{40} --include 'vae\/\*'$/);
    assert.ok(
      r.findings.some((x) => x.check === 'repo.partial-snapshot'),
      'and an offline snapshot_download would call it incomplete',
    );
  });

  test('a sharded checkpoint with a missing shard; an index whose shards were left out on purpose', async () => {
    const { cache, env } = await cacheWith([
      ['org/sharded', '--exclude', 'model-00002-of-00002.safetensors', '--exclude', '*.bin'],
    ]);
    const r = await cache.doctor({ ...quiet, env });
    assert.deepEqual(problems(r), ['error repo.missing-shards']);
    const f = r.findings.find((x) => x.check === 'repo.missing-shards')!;
    assert.match(
      f.message,
      /model\.safetensors\.index\.json names 2 shard\(s\), 1 missing: model-00002-of-00002\.safetensors/,
    );
    assert.ok(r.findings.some((x) => x.check === 'repo.unused-index' && x.severity === 'info'));
  });

  test('only .bin cached where safetensors exist upstream: from the cached tree listing, or --online', async () => {
    const { root, cache, env } = await cacheWith([['org/binny', '--include', '*.bin', '--include', '*.json']]);
    const r = await cache.doctor({ ...quiet, env });
    assert.deepEqual(problems(r), ['warning repo.bin-only']);
    assert.match(r.findings.find((x) => x.check === 'repo.bin-only')!.fix!, /--include '\*\.safetensors'$/);
    // Without the tree listing on disk the check needs the hub, and only asks it with --online.
    const trees = path.join(root, 'models--org--binny', 'trees');
    await fs.rm(trees, { recursive: true });
    const before = hub.requests.length;
    assert.deepEqual(problems(await cache.doctor({ ...quiet, env })), []);
    assert.equal(hub.requests.length, before, 'no network without --online');
    assert.deepEqual(problems(await cache.doctor({ ...quiet, env, online: true })), ['warning repo.bin-only']);
  });

  test('broken links, partial downloads, refs to missing commits; the CLI exits 1', async () => {
    const { root, cache, env } = await cacheWith([['org/weights']]);
    const repo = path.join(root, 'models--org--weights');
    const snap = path.join(repo, 'snapshots', (await fs.readdir(path.join(repo, 'snapshots')))[0]!);
    const blob = await blobOf(path.join(snap, 'config.json'));
    await fs.unlink(blob);
    const partial = path.join(repo, 'blobs', `${'c'.repeat(64)}.0123abcd.incomplete`);
    await fs.writeFile(partial, 'partial');
    const old = new Date(Date.now() - 3 * 86_400_000);
    await fs.utimes(partial, old, old);
    await fs.writeFile(path.join(repo, 'refs', 'feature'), 'd'.repeat(40));
    const r = await cache.doctor({ ...quiet, env });
    assert.deepEqual(problems(r), [
      'error cache.broken-link',
      'warning cache.incomplete',
      'warning cache.missing-commit',
    ]);
    assert.match(r.findings.find((f) => f.check === 'cache.broken-link')!.fix!, /^hubcache verify org\/weights --fix$/);
    assert.equal(
      r.findings.find((f) => f.check === 'cache.missing-commit')!.fix,
      'hubcache download org/weights --revision feature (fetches it again), or delete the ref file',
    );
    const cli = await runCli(['doctor', '--json'], env);
    assert.equal(cli.code, 1, cli.stderr);
    const json = JSON.parse(cli.stdout) as DoctorReport;
    assert.ok(json.findings.some((f) => f.check === 'cache.broken-link'));
    assert.ok(
      json.findings.some((f) => f.check === 'fs.temp-dir'),
      'the real run sees the cache under /tmp',
    );
    assert.equal(json.env.HF_HUB_CACHE, root);
    const human = await runCli(['doctor'], env);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /^error {4}org\/weights: 1 broken link\(s\)/m);
    assert.match(human.stdout, /^ {9}fix: hubcache verify org\/weights --fix$/m);
  });

  test('the same weights in an HF cache and a ModelScope cache: offers dedup', async () => {
    const hfRoot = await tempDir();
    const msRoot = await tempDir();
    const env = {
      HF_HUB_CACHE: hfRoot,
      MODELSCOPE_CACHE: msRoot,
      HF_ENDPOINT: hub.hfEndpoint,
      MODELSCOPE_ENDPOINT: hub.msEndpoint,
    };
    for (const repo of ['org/weights', 'modelscope:org/weights-ms'])
      assert.equal((await runCli(['download', repo], env)).code, 0);
    const cache = Cache.fromEnv(env);
    const r = await cache.doctor({ ...quiet, env, likelyDuplicateMinSize: 1 });
    assert.deepEqual(problems(r), ['warning cache.duplicates']);
    const f = r.findings.find((x) => x.check === 'cache.duplicates')!;
    assert.match(f.message, /1 more \(5\.0 kB\) have a same-size twin/);
    assert.match(f.message, new RegExp(`hf ${hfRoot}, modelscope ${msRoot}`));
    assert.match(f.fix!, /hubcache dedup --dry-run/);
    await cache.dedup();
    assert.deepEqual(problems(await cache.doctor({ ...quiet, env, likelyDuplicateMinSize: 1 })), [], 'one inode now');
    // Two HF caches: blob names are hashes, so the twin is certain. --also names the other cache.
    const other = await tempDir();
    assert.equal((await runCli(['download', 'org/weights'], { ...env, HF_HUB_CACHE: other })).code, 0);
    const both = await cache.doctor({ ...quiet, env, also: [other] });
    const dup = both.findings.find((x) => x.check === 'cache.duplicates')!;
    assert.match(dup.message, /^1 redundant copy of identical files \(5\.0 kB\), across hf /);
    assert.equal(dup.fix, `hubcache dedup --also ${other} --dry-run, then hubcache dedup --also ${other}`);
  });

  test('tmpfs and a container layer, from the mounts table', async () => {
    const { root, cache, env } = await cacheWith([]);
    const tmpfs = await cache.doctor({ ...quiet, env, mounts: `/dev/vda / ext4 rw 0 0\ntmpfs ${root} tmpfs rw 0 0` });
    assert.deepEqual(problems(tmpfs), ['error fs.tmpfs']);
    const layer = await cache.doctor({ ...quiet, env, mounts: 'overlay / overlay rw 0 0', inContainer: true });
    assert.deepEqual(problems(layer), ['warning fs.container-layer']);
    const volume = await cache.doctor({
      ...quiet,
      env,
      mounts: `overlay / overlay rw 0 0\n/dev/vdb ${path.dirname(root)} ext4 rw 0 0`,
      inContainer: true,
    });
    assert.deepEqual(problems(volume), []);
  });
});
