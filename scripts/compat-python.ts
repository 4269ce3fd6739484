// By-hand compatibility check against the real Python clients (not part of `npm test`: CI has no
// way to get their sources). Set them up with scripts/official-clients.sh, then:
//   PYCLIENTS=/path/to/dest npm run compat
// Each check shares one cache between hubcache and a Python client against the test hub on
// loopback, and asserts that the second tool downloads nothing the first one already has.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { main } from '../src/cli/main.js';
import { startTestHub, type TestHub } from '../test/fixtures/test-hub.js';
import { startMirror } from '../test/fixtures/mirror.js';

const PY = process.env.PYCLIENTS;
if (!PY) {
  console.error('Set PYCLIENTS to the folder made by scripts/official-clients.sh');
  process.exit(2);
}

const execFileP = promisify(execFile);

// Async on purpose: the test hub runs in this process, so a blocking exec would starve it.
async function py(client: 'hfpy' | 'mspy' | 'mshubpy', code: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await execFileP(path.join(PY!, client), ['-c', code], {
    env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return stdout.trim();
}

async function hubcache(args: string[], env: Record<string, string>): Promise<string> {
  let out = '';
  let err = '';
  const code = await main(args, {
    env: { HOME: os.tmpdir(), ...env },
    isTTY: false,
    stdout: { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream,
    stderr: { write: (s: string) => ((err += s), true) } as unknown as NodeJS.WritableStream,
  });
  assert.equal(code, 0, `hubcache ${args.join(' ')} failed: ${err}`);
  return out.trim();
}

const bodies = (hub: TestHub): number =>
  hub.requests.filter(
    (r) => r.method === 'GET' && (r.host === 'cdn' || r.path.includes('/resolve/') || r.path.includes('/repo?')),
  ).length;
const tmp = (): Promise<string> => fs.mkdtemp(path.join(os.tmpdir(), 'compat-'));
const results: string[] = [];
const check = async (name: string, fn: () => Promise<void>): Promise<void> => {
  try {
    await fn();
    results.push(`PASS ${name}`);
  } catch (err) {
    results.push(`FAIL ${name}: ${(err as Error).message.split('\n').slice(0, 6).join(' | ')}`);
  }
};

const hub = await startTestHub();
try {
  const repo = hub.hf.createRepo('org/compat');
  const c1 = repo.commit({
    'config.json': '{"a":1}',
    'model.safetensors': { size: 1_500_000, seed: 3 },
    'sub/tokenizer.json': '{"t":1}',
  });
  repo.tag('v1', c1);
  repo.commit({ 'config.json': '{"a":2}' });
  const hfEnv = (cache: string): Record<string, string> => ({
    HF_HUB_CACHE: cache,
    HF_ENDPOINT: hub.hfEndpoint,
    HF_HUB_DISABLE_XET: '1',
  });

  await check(
    'HF: Python reads a hubcache cache offline (snapshot_download, hf_hub_download, scan_cache_dir)',
    async () => {
      const cache = await tmp();
      const ours = await hubcache(['download', 'org/compat'], hfEnv(cache));
      await hubcache(['download', 'org/compat', '--revision', 'v1', 'config.json'], hfEnv(cache));
      // hubcache's own state (the gc policy) must not show up as a warning in Python's scan
      await hubcache(['gc', '--max-size', '1T', '--save-policy', '--yes'], hfEnv(cache));
      const got = await py(
        'hfpy',
        `
from huggingface_hub import snapshot_download, hf_hub_download, scan_cache_dir
p = snapshot_download('org/compat', local_files_only=True)
f = hf_hub_download('org/compat', 'sub/tokenizer.json', local_files_only=True)
v = hf_hub_download('org/compat', 'config.json', revision='v1', local_files_only=True)
info = scan_cache_dir()
assert not info.warnings, info.warnings
r = list(info.repos)[0]
print(p); print(open(v).read()); print(len(r.revisions), sorted(x for rev in r.revisions for x in rev.refs))`,
        { ...hfEnv(cache), HF_HUB_OFFLINE: '1' },
      );
      const [p, v, revs] = got.split('\n');
      assert.equal(p, ours);
      assert.equal(v, '{"a":1}');
      assert.equal(revs, "2 ['main', 'v1']");
      hub.resetRequests();
      await py('hfpy', `from huggingface_hub import snapshot_download; snapshot_download('org/compat')`, hfEnv(cache));
      assert.equal(bodies(hub), 0, 'Python online fetched no file body');
    },
  );

  await check('HF: a model installed from hubcache.lock is found by name by Python offline', async () => {
    const cache = await tmp();
    const manifest = path.join(await tmp(), 'hubcache.json');
    await hubcache(['init', '--manifest', manifest], hfEnv(cache));
    await hubcache(['add', 'org/compat', '--manifest', manifest], hfEnv(cache));
    await hubcache(['install', '--manifest', manifest], hfEnv(cache));
    const got = await py(
      'hfpy',
      `
from huggingface_hub import snapshot_download
print(snapshot_download('org/compat', local_files_only=True))`,
      { ...hfEnv(cache), HF_HUB_OFFLINE: '1' },
    );
    assert.match(got, /snapshots\/[0-9a-f]{40}$/);
  });

  await check('HF: hubcache reuses a cache written by Python (offline and online)', async () => {
    const cache = await tmp();
    const theirs = await py(
      'hfpy',
      `from huggingface_hub import snapshot_download; print(snapshot_download('org/compat'))`,
      hfEnv(cache),
    );
    const off = await hubcache(['download', 'org/compat', '--offline'], hfEnv(cache));
    assert.equal(off, theirs);
    hub.resetRequests();
    await hubcache(['download', 'org/compat'], hfEnv(cache));
    assert.equal(bodies(hub), 0);
  });

  await check('HF: pack → unpack into an empty cache, then Python reads it offline', async () => {
    const src = await tmp();
    await hubcache(['download', 'org/compat'], hfEnv(src));
    const bundle = path.join(await tmp(), 'bundle.tar');
    await hubcache(['pack', 'org/compat', '-o', bundle], hfEnv(src));
    const dst = await tmp();
    await hubcache(['unpack', bundle], hfEnv(dst));
    const out = await py(
      'hfpy',
      `
from huggingface_hub import snapshot_download, scan_cache_dir
p = snapshot_download('org/compat', local_files_only=True)
info = scan_cache_dir()
assert not info.warnings, info.warnings
print(sorted(f.file_name for r in info.repos for rev in r.revisions for f in rev.files))`,
      { ...hfEnv(dst), HF_HUB_OFFLINE: '1' },
    );
    assert.equal(out, "['config.json', 'model.safetensors', 'tokenizer.json']");
  });

  await check('HF: --local-dir shared both ways', async () => {
    const cache = await tmp();
    const dir = path.join(await tmp(), 'ld');
    await py(
      'hfpy',
      `from huggingface_hub import snapshot_download; snapshot_download('org/compat', local_dir='${dir}')`,
      hfEnv(cache),
    );
    hub.resetRequests();
    await hubcache(['download', 'org/compat', '--local-dir', dir], hfEnv(cache));
    assert.equal(bodies(hub), 0, 'hubcache skipped files Python put in the local dir');
    const dir2 = path.join(await tmp(), 'ld2');
    await hubcache(['download', 'org/compat', '--local-dir', dir2], hfEnv(cache));
    hub.resetRequests();
    await py(
      'hfpy',
      `from huggingface_hub import snapshot_download; snapshot_download('org/compat', local_dir='${dir2}')`,
      hfEnv(cache),
    );
    assert.equal(bodies(hub), 0, 'Python skipped files hubcache put in the local dir');
  });

  await check(
    'HF mirror (hubcache serve): snapshot_download, hf_hub_download, gated, metadata through it; no Xet',
    async () => {
      hub.xet = true; // the upstream advertises Xet: the mirror must hide it
      hub.pageSize = 2;
      const gated = hub.hf.findRepo('org/compat-gated') ?? hub.hf.createRepo('org/compat-gated', { gated: 'manual' });
      gated.commit({ 'w.safetensors': { size: 100_000, seed: 5 } });
      hub.tokens.add('hf_compat_ok', { canAccessGated: true });
      const m = await startMirror([hub.hfEndpoint]);
      try {
        hub.resetRequests();
        const cache = await tmp();
        const got = await py(
          'hfpy',
          `
import huggingface_hub as h, os
p = h.snapshot_download('org/compat')
print(sorted(os.listdir(p)))
print(open(h.hf_hub_download('org/compat', 'config.json', revision='v1')).read())
try:
    h.hf_hub_download('org/compat-gated', 'w.safetensors'); print('LEAK')
except h.errors.GatedRepoError: print('gated refused')
print(os.path.getsize(h.hf_hub_download('org/compat-gated', 'w.safetensors', token='hf_compat_ok')))
print(h.get_hf_file_metadata(h.hf_hub_url('org/compat', 'model.safetensors')).xet_file_data)`,
          { HF_HUB_CACHE: cache, HF_ENDPOINT: m.url },
        );
        assert.deepEqual(got.split('\n'), [
          "['config.json', 'model.safetensors', 'sub']",
          '{"a":1}',
          'gated refused',
          '100000',
          'None',
        ]);
        assert.equal(
          hub.countRequests((r) => r.path.includes('xet-read-token')),
          0,
        );
        // A second Python cache: everything from the warm mirror.
        hub.resetRequests();
        await py('hfpy', `import huggingface_hub as h; h.snapshot_download('org/compat')`, {
          HF_HUB_CACHE: await tmp(),
          HF_ENDPOINT: m.url,
        });
        assert.equal(bodies(hub), 0, 'no body fetched upstream for the second client');
      } finally {
        await m.close();
        hub.xet = false;
        hub.pageSize = 1000;
      }
    },
  );

  const msRepo = hub.ms.createRepo('org/ms.compat-1.5');
  msRepo.commit({
    'configuration.json': '{"x":1}',
    'model.safetensors': { size: 1_200_000, seed: 4 },
    'sub/vocab.txt': 'a\nb\n',
  });
  const msEnv = (cache: string): Record<string, string> => ({
    MODELSCOPE_CACHE: cache,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
  });
  for (const client of ['mspy', 'mshubpy'] as const) {
    const sd =
      client === 'mspy'
        ? 'from modelscope.hub.snapshot_download import snapshot_download'
        : 'from modelscope_hub.compat.snapshot_download import snapshot_download';
    await check(`ModelScope (${client}): Python finds hubcache's files cached`, async () => {
      const cache = await tmp();
      await hubcache(['download', 'modelscope:org/ms.compat-1.5'], msEnv(cache));
      hub.resetRequests();
      const p = await py(
        client,
        `${sd}\nprint(snapshot_download('org/ms.compat-1.5', endpoint='${hub.msEndpoint}'))`,
        msEnv(cache),
      );
      assert.ok(p.includes('ms___compat-1___5'), p);
      assert.equal(bodies(hub), 0, `${client} fetched no file body`);
    });
    await check(`ModelScope (${client}): hubcache reuses Python's download`, async () => {
      const cache = await tmp();
      await py(client, `${sd}\nsnapshot_download('org/ms.compat-1.5', endpoint='${hub.msEndpoint}')`, msEnv(cache));
      hub.resetRequests();
      await hubcache(['download', 'modelscope:org/ms.compat-1.5'], msEnv(cache));
      assert.equal(bodies(hub), 0);
    });
    await check(
      `ModelScope mirror (${client}): snapshot_download through hubcache serve, warm for the next client`,
      async () => {
        const m = await startMirror([hub.hfEndpoint], { modelscopeUpstream: hub.msEndpoint });
        try {
          const env = { MODELSCOPE_CACHE: await tmp() };
          const out = await py(
            client,
            `${sd}\nprint(snapshot_download('org/ms.compat-1.5', endpoint='${m.url}'))`,
            env,
          );
          const p = out.split('\n').at(-1) ?? ''; // modelscope 1.37 prints a "Downloading Model from" line first
          assert.equal(await fs.readFile(path.join(p, 'configuration.json'), 'utf8'), '{"x":1}');
          assert.equal((await fs.stat(path.join(p, 'model.safetensors'))).size, 1_200_000);
          hub.resetRequests();
          await py(client, `${sd}\nsnapshot_download('org/ms.compat-1.5', endpoint='${m.url}')`, {
            MODELSCOPE_CACHE: await tmp(),
          });
          assert.equal(bodies(hub), 0, 'no body fetched upstream for the second client');
        } finally {
          await m.close();
        }
      },
    );
  }

  // Cluster mode: two replicas on one bucket of a real Ceph RGW (scripts/ceph-rgw.sh); Python through
  // replica A, then a fresh Python cache through replica B costs no upstream body.
  const rgwDir = await tmp();
  const rgwStarted = await execFileP('bash', ['scripts/ceph-rgw.sh', 'start', rgwDir], { timeout: 120_000 }).then(
    (r) => r.stdout,
    (err: Error) => {
      results.push(`SKIP HF cluster (2 replicas on Ceph RGW): ${err.message.split('\n')[0]}`);
      return undefined;
    },
  );
  if (rgwStarted !== undefined) {
    try {
      await check(
        'HF cluster (2 replicas on one RGW bucket): Python via A, then via B with no upstream body',
        async () => {
          const env = Object.fromEntries(
            [...rgwStarted.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1] as string, m[2] as string]),
          );
          process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // as src/stores/s3-client.ts
          const s3 = new S3Client({
            endpoint: env['AWS_ENDPOINT_URL_S3'],
            region: env['AWS_REGION'] ?? 'us-east-1',
            forcePathStyle: true,
            credentials: {
              accessKeyId: env['AWS_ACCESS_KEY_ID'] ?? '',
              secretAccessKey: env['AWS_SECRET_ACCESS_KEY'] ?? '',
            },
          });
          await s3.send(new CreateBucketCommand({ Bucket: 'compat' }));
          s3.destroy();
          const cluster = { store: 's3://compat/hc', secret: 'compat-cluster-secret', env: { ...process.env, ...env } };
          const a = await startMirror([hub.hfEndpoint], { cluster });
          const b = await startMirror([hub.hfEndpoint], { cluster });
          try {
            const fetchVia = (m: { url: string }, cache: string): Promise<string> =>
              py(
                'hfpy',
                `import huggingface_hub as h, os\nprint(sorted(os.listdir(h.snapshot_download('org/compat'))))`,
                {
                  HF_HUB_CACHE: cache,
                  HF_ENDPOINT: m.url,
                },
              );
            assert.equal(await fetchVia(a, await tmp()), "['config.json', 'model.safetensors', 'sub']");
            await a.mirror.services.cluster?.idle(); // its uploads to the bucket
            hub.resetRequests();
            assert.equal(await fetchVia(b, await tmp()), "['config.json', 'model.safetensors', 'sub']");
            assert.equal(bodies(hub), 0, 'replica B fetched no body upstream');
          } finally {
            await a.close();
            await b.close();
          }
        },
      );
    } finally {
      await execFileP('bash', ['scripts/ceph-rgw.sh', 'stop', rgwDir], { timeout: 60_000 }).catch(() => undefined);
    }
  }
} finally {
  await hub.close();
}
console.log(results.join('\n'));
process.exitCode = results.some((r) => r.startsWith('FAIL')) ? 1 : 0;
