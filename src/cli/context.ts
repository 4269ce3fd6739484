// What every command shares: global flags → a Cache (env first, flags override), an Output, and
// an AbortSignal wired to Ctrl-C (first press: stop cleanly, keeping partial data for resume).
import path from 'node:path';
import type { Command } from 'commander';
import { Cache } from '../cache.js';
import type { HubName, RepoType } from '../hubs/types.js';
import { EndpointFlags } from './endpoints.js';
import { Output } from './output.js';
import { checkLocalDir } from './validate.js';

export interface GlobalFlags {
  cacheDir?: string;
  /** `--cache_dir`, the modelscope CLI's spelling of --cache-dir. */
  cache_dir?: string;
  /** Every `--endpoint` given, in order (see endpoints.ts). */
  endpoint?: string[];
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
  /** Terminal width, for fitting progress lines (default: stderr's columns, else 80). */
  columns?: number;
}

export interface CommandContext {
  cache: Cache;
  out: Output;
  /** The `--endpoint` flags; the cache's config already holds them unless the command compares endpoints. */
  endpoints: EndpointFlags;
  signal: AbortSignal;
  flags: GlobalFlags;
  io: CliIo;
}

/** Collects the options of a command and of its parents (commander keeps them per level). */
export function allOpts<T>(cmd: Command): T {
  return cmd.optsWithGlobals() as T;
}

/** The Output matching the global flags; made first so errors in the other flags are printed by it. */
export function makeOutput(flags: GlobalFlags, io: CliIo): Output {
  return new Output({
    json: !!flags.json,
    quiet: !!flags.quiet,
    tty: io.isTTY && !flags.json && !flags.quiet,
    stdout: io.stdout,
    stderr: io.stderr,
    ...(io.columns ? { columns: io.columns } : {}),
  });
}

export interface ContextOptions {
  /** The command compares several endpoints per hub itself (status, outdated). */
  compareEndpoints?: boolean;
}

/** Throws UsageError for unusable flags (an `--endpoint` that is not an http(s) URL...). */
export function makeContext(
  flags: GlobalFlags,
  io: CliIo,
  signal: AbortSignal,
  out: Output,
  opts: ContextOptions = {},
): CommandContext {
  const cache = Cache.fromEnv(io.env);
  const c = cache.config;
  const cacheDir = flags.cacheDir ?? flags.cache_dir;
  if (cacheDir !== undefined) {
    const dir = path.resolve(checkLocalDir(cacheDir, '--cache-dir'));
    c.hf.cacheDir = dir;
    c.modelscope.cacheDir = dir;
    c.modelscope.v2Dir = dir; // as with MODELSCOPE_CACHE=dir
  }
  // A bare --endpoint is for the hub of the command's repo (flags.hub, set from it), else HF.
  const endpoints = new EndpointFlags(flags.endpoint ?? [], flags.hub);
  const one = opts.compareEndpoints ? { hf: undefined, modelscope: undefined } : endpoints.single();
  if (one.hf) c.hf.endpoint = one.hf;
  if (one.modelscope) c.modelscope.endpoint = one.modelscope;
  if (flags.token) {
    if (flags.hub === 'modelscope') c.modelscope.token = flags.token;
    else c.hf.token = flags.token;
  }
  if (flags.offline) c.hf.offline = true;
  return { cache, out, endpoints, signal, flags, io };
}
