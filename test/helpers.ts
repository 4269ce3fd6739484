// Shared test helpers: temp dirs, running the CLI in-process or as a real child process.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function tempDir(prefix = 'hubcache-test-'): Promise<string> {
  return fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), prefix)));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Child processes only: the signal that ended it, if one did. */
  signal?: NodeJS.Signals;
}

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** Runs the CLI in this process with a clean environment (only what the test passes). */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const out = collect();
  const err = collect();
  const code = await main(args, {
    stdout: out.stream,
    stderr: err.stream,
    env: { HOME: os.tmpdir(), ...env },
    isTTY: false,
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

/** Runs the CLI as a real child process (for locks, kills and concurrency). */
export function spawnCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): {
  done: Promise<CliResult>;
  pid: number | undefined;
  kill: (sig?: NodeJS.Signals) => void;
  stderrMatches: (re: RegExp) => Promise<void>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fixtures/cli-child.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    for (const w of waiters.splice(0))
      if (w.re.test(stderr)) w.resolve();
      else waiters.push(w);
  });
  /** Resolves once stderr matches: a sure sign the child got that far (no guessing with sleeps). */
  const stderrMatches = (re: RegExp): Promise<void> =>
    new Promise((resolve) => (re.test(stderr) ? resolve() : waiters.push({ re, resolve })));
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, ...(signal ? { signal } : {}) }),
    ),
  );
  return { done, pid: child.pid, kill: (sig = 'SIGKILL') => child.kill(sig), stderrMatches };
}

/** Every file under `dir` (relative POSIX paths), following nothing. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(dir, p).split(path.sep).join('/'));
    }
  };
  await walk(dir);
  return out.sort();
}
