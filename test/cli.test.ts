// The CLI surface: version in step with package.json, help with examples, usage errors exit 2.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { VERSION } from '../src/version.js';
import { ROOT, runCli, tempDir } from './helpers.js';

test('--version matches package.json', async () => {
  const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
  const r = await runCli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('--help lists every command, with examples', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  for (const c of [
    'download',
    'import',
    'ls',
    'verify',
    'status',
    'rm',
    'prune',
    'gc',
    'doctor',
    'pack',
    'unpack',
    'dedup',
    'init',
    'add',
    'lock',
    'install',
    'outdated',
    'update',
    'path',
  ]) {
    assert.match(r.stdout, new RegExp(`\\n  ${c}\\b`), c);
  }
  assert.match(r.stdout, /Examples:/);
  const d = await runCli(['download', '--help']);
  assert.equal(d.code, 0);
  assert.match(d.stdout, /--include[\s\S]*--local-dir[\s\S]*Examples:/);
});

test('usage errors exit 2 with a message', async () => {
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command/);
  const missing = await runCli(['download']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing required argument/);
  const badConn = await runCli(['download', 'org/name', '--connections', '0']);
  assert.equal(badConn.code, 2);
  assert.match(badConn.stderr, /--connections/);
});

test('a reader that closes the pipe early (`hubcache ls | head`) ends the CLI quietly, not with EPIPE', async () => {
  const cache = await tempDir();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fixtures/cli-child.ts'), 'ls'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: cache, HF_HUB_CACHE: cache, MODELSCOPE_CACHE: cache },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.destroy(); // closed before the child writes its first line
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});
