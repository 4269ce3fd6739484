// HTTP proxies from the environment, as curl, requests and huggingface_hub read them:
// HTTPS_PROXY for https URLs, HTTP_PROXY for http URLs (ALL_PROXY for both), lower-case names
// too, and NO_PROXY for hosts that are reached directly. Loopback is always reached directly
// (a proxy cannot reach this machine's 127.0.0.1 anyway).
import net from 'node:net';
import { UsageError } from '../errors.js';

export interface ProxyRoute {
  /** The proxy's origin, e.g. http://proxy.corp:3128. */
  url: URL;
  /** `Proxy-Authorization` value, from user:password in the proxy URL. */
  authorization?: string;
}

type Env = Record<string, string | undefined>;

function envValue(env: Env, name: string): string | undefined {
  const v = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return v?.trim() || undefined;
}

/** The proxy for `target`, or undefined for a direct connection. */
export function proxyFor(target: URL, env: Env): ProxyRoute | undefined {
  const raw = envValue(env, target.protocol === 'https:' ? 'https_proxy' : 'http_proxy') ?? envValue(env, 'all_proxy');
  if (!raw) return undefined;
  const host = bareHost(target.hostname);
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  if (isLoopback(host) || bypassed(host, port, envValue(env, 'no_proxy'))) return undefined;
  let url: URL;
  try {
    url = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new UsageError(`invalid proxy URL in the environment: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:') {
    throw new UsageError(`only http:// proxies are supported, not ${url.protocol}// (from HTTPS_PROXY/HTTP_PROXY)`);
  }
  const route: ProxyRoute = { url: new URL(url.origin) };
  if (url.username) {
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    route.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  return route;
}

export function bareHost(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1';
}

/**
 * NO_PROXY: comma- or space-separated entries; `*` matches everything; `host`, `.domain` and
 * `domain` match the host and its subdomains; an entry with `:port` matches that port only.
 */
function bypassed(host: string, port: string, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const h = host.toLowerCase();
  for (const raw of noProxy.split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let entryPort: string | undefined;
    if (entry.startsWith('[')) {
      const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
      entry = m?.[1] ?? entry;
      entryPort = m?.[2];
    } else if (entry.split(':').length === 2) {
      [entry = '', entryPort] = entry.split(':'); // host:port (a bare IPv6 address has more colons)
    }
    if (entryPort && entryPort !== port) continue;
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (entry.startsWith('.') ? h.endsWith(entry) || h === entry.slice(1) : h === entry || h.endsWith(`.${entry}`))
      return true;
  }
  return false;
}
