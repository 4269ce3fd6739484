// The CLI loads only the command it runs (commands/index.ts is the list), so a download does not
// load cache-care or manifest code; the list's help metadata matches each command's definition.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Help } from 'commander';
import { COMMANDS } from '../src/cli/commands/index.js';
import type { CommandRunner } from '../src/cli/runner.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { ROOT, runCli, tempDir } from './helpers.js';

/** Runs the CLI in a child process and returns the src/ modules it loaded (paths relative to src/). */
async function loadedModules(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string; modules: string[] }> {
  const log = path.join(await tempDir(), 'modules.log');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      path.join(ROOT, 'test/fixtures/record-modules.mjs'),
      path.join(ROOT, 'test/fixtures/cli-child.ts'),
      ...args,
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: os.tmpdir(), HUBCACHE_TEST_MODULE_LOG: log, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  const src = path.join(ROOT, 'src') + path.sep;
  const modules = (await fs.readFile(log, 'utf8'))
    .split('\n')
    .filter((u) => u.startsWith('file:'))
    .map((u) => fileURLToPath(u))
    .filter((p) => p.startsWith(src))
    .map((p) => path.relative(src, p).split(path.sep).join('/'));
  return { code, stdout, stderr, modules: [...new Set(modules)] };
}

test('--version alone loads version.ts only, and prints what commander prints', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await loadedModules([flag], {});
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.modules.sort(), ['cli/entry.ts', 'version.ts']);
    assert.equal(r.stdout, (await runCli([flag])).stdout);
  }
  // With anything else on the line, commander parses it as before.
  const r = await loadedModules(['--version', '--json'], {});
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.modules.includes('cli/main.ts'));
  assert.equal(r.stdout, (await runCli(['--version'])).stdout);
});

describe('lazy commands', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/lazy').commit({ 'config.json': '{}', 'model.bin': Buffer.alloc(20_000, 3) });
  });
  after(async () => hub.close());

  test('a download loads the download command only, and no care or manifest code', async () => {
    const cache = await tempDir();
    const r = await loadedModules(['download', 'org/lazy'], { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.modules.includes('cli/commands/download.ts'), 'the hook saw the command module');
    assert.ok(
      r.modules.some((m) => m.startsWith('download/')),
      'and the download flow',
    );
    const commands = r.modules.filter((m) => m.startsWith('cli/commands/'));
    assert.deepEqual(commands.sort(), ['cli/commands/download.ts', 'cli/commands/index.ts']);
    // care/paths.ts only names hubcache's own folder (download checks for a gc policy there).
    const heavy = r.modules.filter(
      (m) => (/^(care|manifest)\//.test(m) && m !== 'care/paths.ts') || m === 'cli/project-output.ts',
    );
    assert.deepEqual(heavy, []);
  });

  test('ls loads the scan, not the rest of cache care (verify, delete, gc...)', async () => {
    const cache = await tempDir();
    const r = await loadedModules(['ls'], { HF_HUB_CACHE: cache, MODELSCOPE_CACHE: cache });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.modules.includes('care/scan.ts'));
    const other = r.modules.filter((m) =>
      /^care\/(index|care|verify|delete|gc|prune|status|dedup|doctor)\.ts$/.test(m),
    );
    assert.deepEqual(other, []);
  });

  test('the top-level help loads no command module', async () => {
    const r = await loadedModules(['--cache-dir', '/nonexistent', '--help'], {});
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.modules.filter((m) => m.startsWith('cli/commands/')),
      ['cli/commands/index.ts'],
    );
  });
});

test('each command list entry matches its module (usage as the help prints it)', async () => {
  const run: CommandRunner = async () => {};
  const help = new Help();
  for (const entry of COMMANDS) {
    const cmd = (await entry.load())(run);
    assert.equal(cmd.name(), entry.name);
    assert.equal(help.subcommandTerm(cmd), `${entry.name} ${entry.usage}`, entry.name);
    assert.equal(cmd.description(), '', `${entry.name}: the description lives in commands/index.ts only`);
  }
});

test('the command is found after global options, through aliases and after `help`', async () => {
  const cache = await tempDir();
  const viaHelp = await runCli(['--cache-dir', cache, 'help', 'download']);
  assert.equal(viaHelp.code, 0, viaHelp.stderr);
  assert.match(viaHelp.stdout, /--local-dir/);
  const alias = await runCli(['--cache-dir', cache, '--json', 'list']);
  assert.equal(alias.code, 0, alias.stderr);
  assert.deepEqual((JSON.parse(alias.stdout) as { rows: unknown[] }).rows, []);
  const typo = await runCli(['--cache-dir', cache, 'dowload', 'org/x']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown command 'dowload'[\s\S]*download/);
});
