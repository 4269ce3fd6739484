// Settings read from the environment exactly as the official clients read them, so that one
// set of variables (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, MODELSCOPE_CACHE, ...) drives
// hubcache and the Python tools alike. Pure functions of an env object: no global state.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TransferOptions } from './transfer/types.js';

export type Env = Record<string, string | undefined>;

/** huggingface_hub's boolean parsing: true iff upper-cased value is 1/ON/YES/TRUE. */
export function envBool(value: string | undefined): boolean {
  return value !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(value.toUpperCase());
}

/** Python `expanduser` then `expandvars` (unknown $VARs are left as is). */
export function expandPath(p: string, env: Env): string {
  let out = p;
  if (out === '~' || out.startsWith('~/')) out = path.join(env.HOME ?? os.homedir(), out.slice(1));
  out = out.replace(
    /\$(\w+)|\$\{(\w+)\}/g,
    (m, a: string | undefined, b: string | undefined) => env[(a ?? b) as string] ?? m,
  );
  return out;
}

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

function home(env: Env): string {
  return env.HOME ?? os.homedir();
}

export interface HfSettings {
  /** HF_HOME: token, stored_tokens, hub/ ... */
  home: string;
  /** The hub cache (the folder holding models--org--name). */
  cacheDir: string;
  endpoint: string;
  /** Token from HF_TOKEN / HUGGING_FACE_HUB_TOKEN / the token file, already cleaned. */
  token?: string;
  tokenPath: string;
  offline: boolean;
  disableSymlinks: boolean;
  /** HF_HUB_DISABLE_IMPLICIT_TOKEN: a token found in env/file is not sent unless passed explicitly. */
  disableImplicitToken: boolean;
  etagTimeoutSeconds: number;
  downloadTimeoutSeconds: number;
}

export const HF_DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Token "cleaning" like huggingface_hub: drop CR/LF, trim; empty means none. */
export function cleanToken(t: string | undefined): string | undefined {
  if (t === undefined) return undefined;
  const c = t.replace(/[\r\n]/g, '').trim();
  return c === '' ? undefined : c;
}

function readTokenFile(p: string): string | undefined {
  try {
    return cleanToken(fs.readFileSync(p, 'utf8'));
  } catch {
    return undefined;
  }
}

function intEnv(v: string | undefined, dflt: number): number {
  const n = v === undefined ? NaN : Number.parseInt(v, 10);
  return Number.isFinite(n) && n > 0 ? n : dflt;
}

export function hfSettingsFromEnv(env: Env = process.env): HfSettings {
  const xdg = nonEmpty(env.XDG_CACHE_HOME) ?? path.join(home(env), '.cache');
  const hfHome = expandPath(nonEmpty(env.HF_HOME) ?? path.join(xdg, 'huggingface'), env);
  const cacheDir = expandPath(
    nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE) ?? path.join(hfHome, 'hub'),
    env,
  );
  const tokenPath = expandPath(nonEmpty(env.HF_TOKEN_PATH) ?? path.join(hfHome, 'token'), env);
  const token = cleanToken(nonEmpty(env.HF_TOKEN) ?? nonEmpty(env.HUGGING_FACE_HUB_TOKEN)) ?? readTokenFile(tokenPath);
  // `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE` as strings: a non-empty HF_HUB_OFFLINE=0 wins.
  const offline = envBool(nonEmpty(env.HF_HUB_OFFLINE) ?? nonEmpty(env.TRANSFORMERS_OFFLINE));
  const out: HfSettings = {
    home: hfHome,
    cacheDir,
    endpoint: (nonEmpty(env.HF_ENDPOINT) ?? HF_DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    tokenPath,
    offline,
    disableSymlinks: envBool(env.HF_HUB_DISABLE_SYMLINKS),
    disableImplicitToken: envBool(env.HF_HUB_DISABLE_IMPLICIT_TOKEN),
    etagTimeoutSeconds: intEnv(env.HF_HUB_ETAG_TIMEOUT, 10),
    downloadTimeoutSeconds: intEnv(env.HF_HUB_DOWNLOAD_TIMEOUT, 10),
  };
  if (token) out.token = token;
  return out;
}

export interface ModelScopeSettings {
  /** Legacy cache root (MODELSCOPE_CACHE or ~/.cache/modelscope/hub); models live in `<root>/models/`. */
  cacheDir: string;
  endpoint: string;
  token?: string;
  credentialsDir: string;
}

export const MS_DEFAULT_ENDPOINT = 'https://www.modelscope.cn';

/** `modelscope.cn` or a full URL → a base URL without trailing slash (the SDK adds https://). */
export function normalizeMsEndpoint(v: string): string {
  const withScheme = /^https?:\/\//i.test(v) ? v : `https://${v}`;
  return withScheme.replace(/\/+$/, '');
}

export function modelscopeSettingsFromEnv(env: Env = process.env): ModelScopeSettings {
  const cacheDir = expandPath(
    nonEmpty(env.MODELSCOPE_CACHE) ?? path.join(home(env), '.cache', 'modelscope', 'hub'),
    env,
  );
  const credentialsDir = expandPath(
    nonEmpty(env.MODELSCOPE_CREDENTIALS_PATH) ?? path.join(home(env), '.modelscope', 'credentials'),
    env,
  );
  const endpointRaw = nonEmpty(env.MODELSCOPE_ENDPOINT) ?? nonEmpty(env.MODELSCOPE_DOMAIN);
  const token = cleanToken(nonEmpty(env.MODELSCOPE_API_TOKEN)) ?? readTokenFile(path.join(credentialsDir, 'git_token'));
  const out: ModelScopeSettings = {
    cacheDir,
    endpoint: endpointRaw ? normalizeMsEndpoint(endpointRaw) : MS_DEFAULT_ENDPOINT,
    credentialsDir,
  };
  if (token) out.token = token;
  return out;
}

/** The settings of one hub in a Cache. */
export interface HubSettings {
  /** Cache root for this hub's layout. */
  cacheDir: string;
  endpoint: string;
  token?: string | undefined;
}

export interface CacheConfig {
  hf: HubSettings & { offline: boolean; symlinks: boolean };
  /**
   * `cacheDir` has MODELSCOPE_CACHE semantics. `offline` defaults to `hf.offline` (the one
   * `--offline` switch); `v2Dir` is the base of modelscope ≥1.38's layout (default: cacheDir).
   */
  modelscope: HubSettings & { offline?: boolean; v2Dir?: string };
  transfer?: Partial<TransferOptions>;
}
