// What every command shares: global flags → a Cache (env first, flags override), an Output, and
// an AbortSignal wired to Ctrl-C (first press: stop cleanly, keeping partial data for resume).
import path from 'node:path';
import type { Command } from 'commander';
import { Cache, type CacheOverrides } from '../cache.js';
import type { TransferOptions } from '../transfer/types.js';
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
  /** Transfer settings from the command's own flags (download's --connections), read before the Cache is built. */
  transfer?: (flags: GlobalFlags & Record<string, unknown>) => Partial<TransferOptions> | undefined;
}

/** Throws UsageError for unusable flags (an `--endpoint` that is not an http(s) URL...). */
export function makeContext(
  flags: GlobalFlags,
  io: CliIo,
  signal: AbortSignal,
  out: Output,
  opts: ContextOptions = {},
): CommandContext {
  const overrides: CacheOverrides = {};
  const cacheDir = flags.cacheDir ?? flags.cache_dir;
  if (cacheDir !== undefined) overrides.cacheDir = path.resolve(checkLocalDir(cacheDir, '--cache-dir'));
  // A bare --endpoint is for the hub of the command's repo (flags.hub, set from it), else HF.
  const endpoints = new EndpointFlags(flags.endpoint ?? [], flags.hub);
  if (!opts.compareEndpoints) overrides.endpoints = stripUndefined(endpoints.single());
  // --token is for the hub of the command's repo, else HF.
  if (flags.token) overrides.tokens = { [flags.hub ?? 'hf']: flags.token };
  if (flags.offline) overrides.offline = true;
  const transfer = opts.transfer?.(flags as GlobalFlags & Record<string, unknown>);
  if (transfer) overrides.transfer = transfer;
  return { cache: Cache.fromEnv(io.env, overrides), out, endpoints, signal, flags, io };
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
