// The CLI surface: version in step with package.json, help with examples, usage errors exit 2.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { VERSION } from '../src/version.js';
import { ROOT, runCli } from './helpers.js';

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
