// What every command shares: global flags → a Cache (env first, flags override), an Output, and
// an AbortSignal wired to Ctrl-C (first press: stop cleanly, keeping partial data for resume).
import path from 'node:path';
import type { Command } from 'commander';
import { Cache } from '../cache.js';
import { normalizeMsEndpoint } from '../config.js';
import type { HubName, RepoType } from '../hubs/types.js';
import { Output } from './output.js';

export interface GlobalFlags {
  cacheDir?: string;
  endpoint?: string;
  token?: string;
  offline?: boolean;
  json?: boolean;
  quiet?: boolean;
  hub?: HubName;
  repoType?: RepoType;
}

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
  isTTY: boolean;
}

export interface CommandContext {
  cache: Cache;
  out: Output;
  signal: AbortSignal;
  flags: GlobalFlags;
  io: CliIo;
}

/** Collects the options of a command and of its parents (commander keeps them per level). */
export function allOpts<T>(cmd: Command): T {
  return cmd.optsWithGlobals() as T;
}

export function makeContext(flags: GlobalFlags, io: CliIo, signal: AbortSignal): CommandContext {
  const cache = Cache.fromEnv(io.env);
  const c = cache.config;
  if (flags.cacheDir) {
    const dir = path.resolve(flags.cacheDir);
    c.hf.cacheDir = dir;
    c.modelscope.cacheDir = dir;
    c.modelscope.v2Dir = dir; // as with MODELSCOPE_CACHE=dir
  }
  if (flags.endpoint) {
    // --endpoint applies to the hub of the command's repo (default HF).
    if (flags.hub === 'modelscope') c.modelscope.endpoint = normalizeMsEndpoint(flags.endpoint);
    else c.hf.endpoint = flags.endpoint.replace(/\/+$/, '');
  }
  if (flags.token) {
    if (flags.hub === 'modelscope') c.modelscope.token = flags.token;
    else c.hf.token = flags.token;
  }
  if (flags.offline) c.hf.offline = true;
  const out = new Output({
    json: !!flags.json,
    quiet: !!flags.quiet,
    tty: io.isTTY && !flags.json && !flags.quiet,
    stdout: io.stdout,
    stderr: io.stderr,
  });
  return { cache, out, signal, flags, io };
}
