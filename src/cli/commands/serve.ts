// `hubcache serve`: the pull-through mirror (src/server/). Flags, else HUBCACHE_SERVE_* variables;
// the first stdout line is `listening on http://HOST:PORT`; SIGTERM/SIGINT drain and exit 0.
import { Command, Option } from 'commander';
import fs from 'node:fs';
import { UsageError } from '../../errors.js';
import { parseDuration, parseSize } from '../../care/units.js';
import { collectPatterns } from '../options.js';
import type { CommandRunner } from '../runner.js';
import { MIN_CLUSTER_SECRET_LENGTH, type ClusterOptions } from '../../cluster/options.js';

interface ServeFlags {
  host?: string;
  port?: string;
  upstream?: string[];
  modelscopeUpstream?: string;
  metadataTtl?: string;
  maxSize?: string;
  upstreamToken?: string;
  apiKeys?: string;
  allow?: string[];
  deny?: string[];
  publicUrl?: string;
  drainTimeout?: string;
  logLevel?: string;
  memoryCache?: string;
  store?: string;
  s3Endpoint?: string;
  clusterSecret?: string;
  advertiseUrl?: string;
  leaseTtl?: string;
}

const repeat = (v: string, prev: string[] = []): string[] => [...prev, v];

export function serveCommand(run: CommandRunner): Command {
  return new Command('serve')
    .option('--host <host>', 'interface to listen on (default 127.0.0.1; env HUBCACHE_SERVE_HOST)')
    .option('--port <port>', 'port; 0 = any free port (default 8080; env HUBCACHE_SERVE_PORT)')
    .option(
      '--upstream <url>',
      'HF upstream; repeat for fallbacks, first = primary (default https://huggingface.co; env HUBCACHE_SERVE_UPSTREAM, comma-separated)',
      repeat,
    )
    .option(
      '--modelscope-upstream <url>',
      'ModelScope upstream (default https://www.modelscope.cn; env HUBCACHE_SERVE_MODELSCOPE_UPSTREAM)',
    )
    .option(
      '--metadata-ttl <duration>',
      'how long a branch/tag -> commit answer is reused: 60s, 5m (default 60s; env HUBCACHE_SERVE_METADATA_TTL)',
    )
    .option('--max-size <size>', 'LRU cap on the store, e.g. 500G (env HUBCACHE_SERVE_MAX_SIZE)')
    .option(
      '--upstream-token <token>',
      "the mirror's own token, used for public repos only (env HUBCACHE_SERVE_UPSTREAM_TOKEN)",
    )
    .option(
      '--api-keys <file>',
      'callers must present one of the keys in this file, one per line (env HUBCACHE_SERVE_API_KEYS)',
    )
    .option(
      '--allow <pattern>',
      'serve only repo ids matching this glob; repeatable (env HUBCACHE_SERVE_ALLOW, comma-separated)',
      collectPatterns,
    )
    .option(
      '--deny <pattern>',
      'refuse repo ids matching this glob; repeatable (env HUBCACHE_SERVE_DENY)',
      collectPatterns,
    )
    .option(
      '--public-url <url>',
      'origin clients reach the mirror at, for URLs it hands out (default: the request Host; env HUBCACHE_SERVE_PUBLIC_URL)',
    )
    .option(
      '--drain-timeout <duration>',
      'on SIGTERM, how long open downloads may finish before they are cut (default 10s; env HUBCACHE_SERVE_DRAIN_TIMEOUT)',
    )
    .option(
      '--memory-cache <size>',
      'RAM for hot warm blobs answered from memory, e.g. 256M; 0 = always from disk (env HUBCACHE_SERVE_MEMORY_CACHE)',
    )
    .option(
      '--store <url>',
      'cluster mode: replicas share this S3 bucket, s3://BUCKET/PREFIX; --cache-dir is then a local read-through cache (env HUBCACHE_SERVE_STORE)',
    )
    .option(
      '--s3-endpoint <url>',
      'S3 endpoint of --store, e.g. a Ceph RGW (env HUBCACHE_SERVE_S3_ENDPOINT, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)',
    )
    .option(
      '--cluster-secret <secret>',
      'shared by the replicas of a cluster: signs requests between them; required with --store (env HUBCACHE_CLUSTER_SECRET)',
    )
    .option(
      '--advertise-url <url>',
      'where the other replicas reach this one (default: the listen address; env HUBCACHE_SERVE_ADVERTISE_URL)',
    )
    .option(
      '--lease-ttl <duration>',
      'cluster mode: a blob fill whose replica stops renewing its lease for this long is taken over (default 30s; env HUBCACHE_SERVE_LEASE_TTL)',
    )
    .addOption(
      new Option('--log-level <level>', 'JSON log level on stderr (env HUBCACHE_SERVE_LOG_LEVEL)').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'silent',
      ]),
    )
    .addHelpText(
      'after',
      `
The store is a hubcache cache (--cache-dir, default HF_HUB_CACHE): seed it with \`hubcache download\`
or \`unpack\`, inspect it with \`hubcache ls\` / \`verify\`. --offline serves the store only.
Gated and private repos are served to a caller only after upstream accepted that caller's own token.

Examples:
  hubcache serve --port 8080 --cache-dir /srv/hf-mirror --max-size 500G
  HF_ENDPOINT=http://mirror:8080 hf download org/name          # any client, unchanged
  MODELSCOPE_ENDPOINT=http://mirror:8080 hubcache download modelscope:org/name   # the ModelScope face
  hubcache prefetch --mirror http://mirror:8080 org/name        # warm it before a rollout; dashboard at /
  hubcache serve --upstream https://huggingface.co --upstream https://hf-mirror.example --metadata-ttl 5m
  hubcache serve --offline --cache-dir /mnt/models --host 0.0.0.0   # air-gapped: the store only
  hubcache serve --store s3://models/hubcache --s3-endpoint http://rgw:7480 --cluster-secret "$SECRET" \\
    --cache-dir /var/cache/hubcache --max-size 200G --host 0.0.0.0 --advertise-url http://10.0.0.5:8080
  hubcache serve --api-keys /etc/hubcache/keys --deny 'secret-org/*'`,
    )
    .action(async (_o: unknown, cmd: Command) =>
      run(
        cmd,
        async (ctx, flags: ServeFlags) => {
          const env = ctx.io.env;
          const pick = (flag: string | undefined, name: string): string | undefined =>
            flag ?? (env[`HUBCACHE_SERVE_${name}`] || undefined);
          const list = (flag: string[] | undefined, name: string): string[] =>
            flag ??
            (env[`HUBCACHE_SERVE_${name}`] ?? '')
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean);
          const portText = pick(flags.port, 'PORT') ?? '8080';
          const port = Number(portText);
          if (!/^\d+$/.test(portText) || port > 65535)
            throw new UsageError(`Not a port: "${portText}"`, { hint: 'Use 0-65535 (0: any free port).' });
          const upstreams = list(flags.upstream, 'UPSTREAM');
          for (const u of upstreams) checkUrl(u, '--upstream');
          const msUpstream = pick(flags.modelscopeUpstream, 'MODELSCOPE_UPSTREAM');
          if (msUpstream) checkUrl(msUpstream, '--modelscope-upstream');
          const publicUrl = pick(flags.publicUrl, 'PUBLIC_URL');
          if (publicUrl) checkUrl(publicUrl, '--public-url');
          const ttl = pick(flags.metadataTtl, 'METADATA_TTL');
          const maxSize = pick(flags.maxSize, 'MAX_SIZE');
          const drain = pick(flags.drainTimeout, 'DRAIN_TIMEOUT');
          const keysFile = pick(flags.apiKeys, 'API_KEYS');
          const memCache = pick(flags.memoryCache, 'MEMORY_CACHE');
          const offline = !!ctx.flags.offline || /^(1|true|yes)$/i.test(env.HUBCACHE_SERVE_OFFLINE ?? '');
          const cacheDir =
            env.HUBCACHE_SERVE_CACHE_DIR && !ctx.flags.cacheDir
              ? env.HUBCACHE_SERVE_CACHE_DIR
              : ctx.cache.config.hf.cacheDir;
          const cluster = await clusterOptions(flags, env, pick);
          const { createMirror } = await import('../../server/app.js');
          const { DEFAULT_SERVE_OPTIONS } = await import('../../server/options.js');
          const metadataTtlMs = ttl ? parseDuration(ttl) : DEFAULT_SERVE_OPTIONS.metadataTtlMs;
          const token = pick(flags.upstreamToken, 'UPSTREAM_TOKEN');
          const mirror = createMirror(
            {
              ...DEFAULT_SERVE_OPTIONS,
              host: pick(flags.host, 'HOST') ?? DEFAULT_SERVE_OPTIONS.host,
              port,
              cacheDir,
              upstreams: upstreams.length ? upstreams : [...DEFAULT_SERVE_OPTIONS.upstreams],
              modelscopeUpstream: msUpstream ?? DEFAULT_SERVE_OPTIONS.modelscopeUpstream,
              metadataTtlMs,
              negativeTtlMs: Math.min(DEFAULT_SERVE_OPTIONS.negativeTtlMs, metadataTtlMs),
              ...(maxSize ? { maxSizeBytes: parseSize(maxSize) } : {}),
              offline,
              ...(token ? { upstreamToken: token } : {}),
              ...(keysFile ? { apiKeys: readKeys(keysFile) } : {}),
              allow: list(flags.allow, 'ALLOW'),
              deny: list(flags.deny, 'DENY'),
              ...(publicUrl ? { publicUrl } : {}),
              drainMs: drain ? parseDuration(drain) : DEFAULT_SERVE_OPTIONS.drainMs,
              logLevel: pick(flags.logLevel, 'LOG_LEVEL') ?? DEFAULT_SERVE_OPTIONS.logLevel,
              hotCacheBytes: memCache !== undefined ? parseSize(memCache) : DEFAULT_SERVE_OPTIONS.hotCacheBytes,
              ...(cluster ? { cluster } : {}),
            },
            { logStream: ctx.io.stderr },
          );
          let url: string;
          try {
            url = await mirror.listen();
          } catch (err) {
            await mirror.close(0);
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
              throw new UsageError(
                `Cannot listen on ${pick(flags.host, 'HOST') ?? DEFAULT_SERVE_OPTIONS.host}:${port}: ${code}`,
                { hint: 'Pick another --port (0: any free port) or --host.' },
              );
            }
            throw err;
          }
          ctx.io.stdout.write(`listening on ${url}\n`);
          await new Promise<void>((resolve) => {
            if (ctx.signal.aborted) resolve();
            ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          });
          await mirror.close();
          return 0;
        },
        { ownShutdown: true },
      ),
    );
}

/** Cluster mode's options (or none), checked here so that a bad flag is a usage error before anything starts. */
async function clusterOptions(
  flags: ServeFlags,
  env: NodeJS.ProcessEnv,
  pick: (flag: string | undefined, name: string) => string | undefined,
): Promise<ClusterOptions | undefined> {
  const store = pick(flags.store, 'STORE');
  const endpoint = pick(flags.s3Endpoint, 'S3_ENDPOINT');
  const secret = flags.clusterSecret ?? (env.HUBCACHE_CLUSTER_SECRET || undefined);
  const advertise = pick(flags.advertiseUrl, 'ADVERTISE_URL');
  const leaseTtl = pick(flags.leaseTtl, 'LEASE_TTL');
  if (!store) {
    const stray = [
      endpoint && '--s3-endpoint',
      flags.clusterSecret && '--cluster-secret',
      advertise && '--advertise-url',
      leaseTtl && '--lease-ttl',
    ].filter(Boolean);
    if (stray.length) throw new UsageError(`${stray.join(', ')} are for cluster mode: add --store s3://BUCKET/PREFIX`);
    return undefined;
  }
  // Loaded only in cluster mode: the AWS SDK is large.
  const { s3ConfigFromEnv } = await import('../../stores/s3-client.js');
  s3ConfigFromEnv(store, { env, ...(endpoint ? { endpoint } : {}) }); // URL, endpoint and key pair, or UsageError
  if (!secret)
    throw new UsageError('--store needs --cluster-secret (or HUBCACHE_CLUSTER_SECRET)', {
      hint: 'Give every replica the same secret: it authenticates the requests between them.',
    });
  if (secret.length < MIN_CLUSTER_SECRET_LENGTH)
    throw new UsageError(`--cluster-secret must be at least ${MIN_CLUSTER_SECRET_LENGTH} characters`);
  if (advertise) checkUrl(advertise, '--advertise-url');
  const leaseTtlMs = leaseTtl ? parseDuration(leaseTtl) : undefined;
  if (leaseTtlMs !== undefined && leaseTtlMs < 1000) throw new UsageError('--lease-ttl must be at least 1s');
  return {
    ...(leaseTtlMs !== undefined ? { leaseTtlMs } : {}),
    store,
    secret,
    env,
    ...(endpoint ? { endpoint } : {}),
    ...(advertise ? { advertiseUrl: advertise.replace(/\/+$/, '') } : {}),
  };
}

function checkUrl(u: string, flag: string): void {
  let ok = false;
  try {
    ok = /^https?:$/.test(new URL(u).protocol);
  } catch {
    ok = false;
  }
  if (!ok) throw new UsageError(`${flag}: not an http(s) URL: "${u}"`);
}

function readKeys(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `Cannot read --api-keys file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const keys = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (keys.length === 0)
    throw new UsageError(`--api-keys file ${file} holds no key`, { hint: 'One key per line; # starts a comment.' });
  return keys;
}
