// Real clients through `hubcache serve`: @huggingface/hub (snapshot, single file, Range),
// hubcache's own `download --endpoint <mirror>`, a hostile upstream listing, and the CLI itself
// (first stdout line, --help, bad flags, SIGTERM drain).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { downloadFile, snapshotDownload } from '@huggingface/hub';
import { ExitCode } from '../src/errors.js';
import { generatedContent, startTestHub, type TestHub } from './fixtures/test-hub.js';
import { raw, startMirror, type TestMirror } from './fixtures/mirror.js';
import { ROOT, runCli, tempDir } from './helpers.js';

const W = { size: 2 * 1024 * 1024 + 5, seed: 21 };
const weights = generatedContent(W.size, W.seed).toBuffer();

describe('serve: clients through the mirror', () => {
  let hub: TestHub;
  let m: TestMirror;
  let commit: string;

  before(async () => {
    hub = await startTestHub({ xet: true });
    commit = hub.hf
      .createRepo('org/model')
      .commit({ 'config.json': '{"a":1}', 'model.safetensors': W, 'sub/vocab.txt': 'a\nb\n' });
    m = await startMirror([hub.hfEndpoint]);
  });
  after(async () => {
    await m.close();
    await hub.close();
  });

  test('@huggingface/hub: snapshotDownload, downloadFile and a Range (Blob.slice) through the mirror', async () => {
    const cacheDir = await tempDir();
    const snap = await snapshotDownload({ repo: 'org/model', cacheDir, hubUrl: m.url });
    assert.ok(snap.endsWith(commit), snap);
    assert.ok((await fs.readFile(path.join(snap, 'model.safetensors'))).equals(weights));
    assert.equal(await fs.readFile(path.join(snap, 'config.json'), 'utf8'), '{"a":1}');
    assert.equal(await fs.readFile(path.join(snap, 'sub/vocab.txt'), 'utf8'), 'a\nb\n');
    const blob = await downloadFile({ repo: 'org/model', path: 'model.safetensors', hubUrl: m.url });
    assert.ok(blob);
    assert.equal(blob.size, W.size);
    const part = Buffer.from(await blob.slice(1000, 1100).arrayBuffer());
    assert.ok(part.equals(weights.subarray(1000, 1100)));
    assert.equal(
      hub.countRequests((r) => r.path.includes('xet-read-token')),
      0,
      'no Xet token ever asked upstream',
    );
  });

  test('hubcache download --endpoint <mirror>: cold, then a fresh cache from the warm mirror costs no upstream call', async () => {
    const c1 = await tempDir();
    const r1 = await runCli(['download', 'org/model', '--endpoint', m.url], { HF_HUB_CACHE: c1 });
    assert.equal(r1.code, 0, r1.stderr);
    const snap = path.join(c1, 'models--org--model', 'snapshots', commit);
    assert.ok((await fs.readFile(path.join(snap, 'model.safetensors'))).equals(weights));
    const v = await runCli(['verify', 'org/model'], { HF_HUB_CACHE: c1, HF_ENDPOINT: m.url });
    assert.equal(v.code, 0, v.stderr);
    hub.resetRequests();
    const c2 = await tempDir();
    const r2 = await runCli(['download', 'org/model', '--endpoint', m.url], { HF_HUB_CACHE: c2 });
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok(
      (await fs.readFile(path.join(c2, 'models--org--model', 'snapshots', commit, 'model.safetensors'))).equals(
        weights,
      ),
    );
    assert.equal(hub.countRequests(), 0, 'served by the mirror alone');
  });

  test('hostile names in an upstream listing: hubcache refuses them through the mirror, the mirror will not serve them', async () => {
    hub.hf.createRepo('org/evil').commit({ 'ok.txt': 'fine' });
    hub.hf.injectTreeEntries('org/evil', [{ type: 'file', path: '../../escape.txt', size: 4, oid: 'a'.repeat(40) }]);
    const cache = await tempDir();
    const r = await runCli(['download', 'org/evil', '--endpoint', m.url], { HF_HUB_CACHE: cache });
    assert.equal(r.code, ExitCode.unsafePath, r.stderr);
    await assert.rejects(fs.stat(path.join(cache, '..', 'escape.txt')));
    const direct = await raw(`${m.url}/org/evil/resolve/main/..%2F..%2Fescape.txt`);
    assert.equal(direct.status, 400);
    await assert.rejects(fs.stat(path.join(m.cacheDir, '..', 'escape.txt')));
  });
});

/** `hubcache serve` as a real process; resolves once its first stdout line is out. */
function spawnServe(args: string[], env: Record<string, string> = {}) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'test/fixtures/cli-child.ts'), 'serve', ...args],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const nl = stdout.indexOf('\n');
      if (nl >= 0) resolve(stdout.slice(0, nl));
    });
    child.on('close', (code) => reject(new Error(`serve exited ${code} before listening: ${stderr}`)));
  });
  firstLine.catch(() => undefined);
  const exit = new Promise<number>((resolve) => child.on('close', (code, sig) => resolve(code ?? (sig ? 128 : 1))));
  return { child, firstLine, exit, stderr: () => stderr };
}

describe('serve: the command', () => {
  test('--help shows the flags and examples; a bad flag value is a usage error (exit 2)', async () => {
    const help = await runCli(['serve', '--help']);
    assert.equal(help.code, 0);
    for (const f of [
      '--upstream',
      '--metadata-ttl',
      '--max-size',
      '--api-keys',
      '--allow',
      '--deny',
      '--upstream-token',
      'Examples:',
      'HF_ENDPOINT=',
    ]) {
      assert.ok(help.stdout.includes(f), f);
    }
    const bad = await runCli(['serve', '--port', 'eighty']);
    assert.equal(bad.code, ExitCode.usage);
    assert.match(bad.stderr, /Not a port/);
    const badUp = await runCli(['serve', '--upstream', 'ftp://x', '--port', '0']);
    assert.equal(badUp.code, ExitCode.usage);
    const badTtl = await runCli(['serve', '--metadata-ttl', 'soon', '--port', '0']);
    assert.equal(badTtl.code, ExitCode.usage);
    const busy = http.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = String((busy.address() as { port: number }).port);
    const taken = await runCli(['serve', '--port', port, '--cache-dir', await tempDir()]);
    busy.close();
    assert.equal(taken.code, ExitCode.usage);
    assert.match(taken.stderr, /EADDRINUSE/);
    const noKeys = await runCli(['serve', '--api-keys', '/nonexistent/keys', '--port', '0']);
    assert.equal(noKeys.code, ExitCode.usage);
    assert.match(noKeys.stderr, /Cannot read --api-keys/);
  });

  test('first stdout line "listening on", env HUBCACHE_SERVE_*, /healthz; SIGTERM drains an open download and exits 0', async () => {
    const hub = await startTestHub();
    const size = 3 * 1024 * 1024;
    hub.hf.createRepo('org/m').commit({ 'model.safetensors': { size, seed: 4 } });
    const cache = await tempDir();
    const s = spawnServe(['--port', '0', '--cache-dir', cache], {
      HUBCACHE_SERVE_UPSTREAM: hub.hfEndpoint,
      HUBCACHE_SERVE_DRAIN_TIMEOUT: '20s',
    });
    try {
      const line = await s.firstLine;
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
      assert.ok(m, line);
      const url = m[1] as string;
      assert.equal((await raw(`${url}/healthz`)).status, 200);
      // A slow cold download is under way when SIGTERM arrives: it finishes, then the process exits 0.
      hub.throttleBytesPerSec = 2 * 1024 * 1024;
      const body = new Promise<{ status: number; length: number; complete: boolean }>((resolve, reject) => {
        http
          .get(`${url}/org/m/resolve/main/model.safetensors`, { agent: false }, (res) => {
            let n = 0;
            let signalled = false;
            res.on('data', (c: Buffer) => {
              n += c.length;
              if (!signalled) {
                signalled = true;
                s.child.kill('SIGTERM');
              }
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, length: n, complete: res.complete }));
            res.on('error', reject);
          })
          .on('error', reject);
      });
      const got = await body;
      assert.equal(got.status, 200);
      assert.equal(got.length, size);
      assert.ok(got.complete);
      assert.equal(await s.exit, 0, s.stderr());
      await assert.rejects(raw(`${url}/healthz`), 'no longer accepting');
      // The logs are JSON lines on stderr.
      const logLine = s
        .stderr()
        .split('\n')
        .find((l) => l.startsWith('{') && l.includes('"msg":"request"'));
      assert.ok(logLine, s.stderr());
      assert.equal(typeof (JSON.parse(logLine) as { reqId?: unknown }).reqId, 'string');
    } finally {
      s.child.kill('SIGKILL');
      await hub.close();
    }
  });
});
