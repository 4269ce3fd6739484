// The examples/ folder runs as documented: real child processes against the test hub.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { ROOT, tempDir, type CliResult } from './helpers.js';

function runExample(name: string, args: string[], env: Record<string, string>): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'examples', name), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: env.HOME ?? ROOT, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
}

describe('examples', () => {
  let hub: TestHub;
  let commit: string;
  before(async () => {
    hub = await startTestHub();
    commit = hub.hf.createRepo('org/example').commit({
      'config.json': '{"a":1}',
      'model.safetensors': Buffer.alloc(20_000, 2),
      'big.bin': Buffer.alloc(5000, 1),
    });
  });
  after(async () => hub.close());

  test('examples/download.ts: Cache.at + download + progress + file', async () => {
    const cache = await tempDir();
    const home = await tempDir();
    const r = await runExample('download.ts', ['org/example', cache], { HF_ENDPOINT: hub.hfEndpoint, HOME: home });
    assert.equal(r.code, 0, r.stderr);
    const snap = path.join(cache, 'models--org--example', 'snapshots', commit);
    assert.equal(r.stdout.trim(), snap);
    assert.match(r.stderr, /org\/example @ [0-9a-f]{8}: 2 files, 20007 bytes to download/);
    assert.match(r.stderr, /downloaded model\.safetensors|downloaded\s+model\.safetensors/);
    assert.deepEqual((await fs.readdir(snap)).sort(), ['config.json', 'model.safetensors'], 'include patterns applied');
  });

  test('examples/manifest.ts: lock + install in-process, then a cached re-run', async () => {
    const cache = await tempDir();
    const project = path.join(await tempDir(), 'proj');
    const env = { HF_ENDPOINT: hub.hfEndpoint, HF_HUB_CACHE: cache, HOME: await tempDir() };
    const r = await runExample('manifest.ts', [project, 'org/example'], env);
    assert.equal(r.code, 0, r.stderr);
    const snap = path.join(cache, 'models--org--example', 'snapshots', commit);
    assert.equal(r.stdout, `model\t${snap}\n`);
    assert.match(r.stderr, /lock: model added [0-9a-f]{40}/);
    assert.match(r.stderr, /downloaded 20007 bytes/);
    assert.match(r.stderr, new RegExp(`config: ${snap}/config\\.json`));
    const lock = JSON.parse(await fs.readFile(path.join(project, 'hubcache.lock'), 'utf8')) as {
      models: { model: { commit: string } };
    };
    assert.equal(lock.models.model.commit, commit);
    hub.resetRequests();
    const again = await runExample('manifest.ts', [project, 'org/example'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /lock: model unchanged/);
    assert.match(again.stderr, /downloaded 0 bytes/);
    assert.equal(hub.requests.length, 0, 'locked and cached: no request at all');
  });
});
