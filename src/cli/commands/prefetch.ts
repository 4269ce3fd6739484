// `hubcache prefetch --mirror URL org/name`: asks a running `hubcache serve` to warm its store
// (POST /api/hubcache/prefetch), then follows the job until it is done (or returns at once with
// --no-wait). The mirror does the download; this command only talks to the mirror.
import { Command } from 'commander';
import { HubcacheError, HubHttpError, UnauthorizedError, UsageError } from '../../errors.js';
import { httpRequest, readText } from '../../hubs/http.js';
import { formatBytes } from '../../util/format.js';
import type { PrefetchJob } from '../../server/prefetch.js';
import type { CommandRunner } from '../runner.js';

interface PrefetchFlags {
  mirror?: string;
  revision?: string;
  include?: string[];
  exclude?: string[];
  apiKey?: string;
  wait?: boolean;
}

const repeat = (v: string, prev: string[] = []): string[] => [...prev, v];
const POLL_MS = 500;

export function prefetchCommand(run: CommandRunner): Command {
  return new Command('prefetch')
    .argument('<repo>', 'org/name, datasets/org/name or modelscope:org/name')
    .option('--mirror <url>', 'the mirror, e.g. http://mirror:8080 (env HUBCACHE_MIRROR)')
    .option('--revision <rev>', 'branch, tag or commit (default: main; master on ModelScope)')
    .option('--include <pattern>', 'only files matching this glob; repeatable', repeat)
    .option('--exclude <pattern>', 'skip files matching this glob; repeatable', repeat)
    .option('--api-key <key>', "the mirror's API key, when it runs with --api-keys (env HUBCACHE_API_KEY)")
    .option('--no-wait', 'print the job id and return; follow it on the dashboard or /api/hubcache/prefetch/<id>')
    .addHelpText(
      'after',
      `
The mirror downloads from its upstream with your --token (HF_TOKEN is not sent unless you pass it),
so a gated repo is prefetched only if your own token may fetch it.

Examples:
  hubcache prefetch --mirror http://mirror:8080 org/name
  hubcache prefetch --mirror http://mirror:8080 org/name --revision v1.2 --include "*.safetensors" --include "*.json"
  hubcache prefetch --mirror http://mirror:8080 modelscope:Qwen/Qwen2.5-0.5B --no-wait
  HUBCACHE_MIRROR=http://mirror:8080 HUBCACHE_API_KEY=k hubcache prefetch org/name`,
    )
    .action(async (repo: string, _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: PrefetchFlags) => {
        const env = ctx.io.env;
        const mirror = (flags.mirror ?? env.HUBCACHE_MIRROR ?? '').replace(/\/+$/, '');
        if (!mirror)
          throw new UsageError('prefetch needs the mirror: --mirror http://host:port', {
            hint: 'Or set HUBCACHE_MIRROR.',
          });
        if (!/^https?:\/\/[^/]+$/.test(mirror))
          throw new UsageError(`--mirror: not an http(s) origin: "${mirror}"`, {
            hint: 'Like http://mirror:8080 (no path).',
          });
        const apiKey = flags.apiKey ?? env.HUBCACHE_API_KEY;
        const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
        if (apiKey) headers['x-hubcache-key'] = apiKey;
        if (ctx.flags.token) headers.authorization = `Bearer ${ctx.flags.token}`;
        const body = JSON.stringify({
          repo,
          ...(flags.revision ? { revision: flags.revision } : {}),
          include: flags.include ?? [],
          exclude: flags.exclude ?? [],
        });
        let job = await call<PrefetchJob>(`${mirror}/api/hubcache/prefetch`, { method: 'POST', headers, body }, 202);
        if (flags.wait === false) {
          if (ctx.flags.json) ctx.out.json(job);
          else ctx.out.result(job.id);
          return 0;
        }
        ctx.out.info(`Prefetching ${job.repo}@${job.revision} on ${mirror} (job ${job.id})`);
        let last = '';
        let lastAt = 0;
        while (job.state === 'running') {
          await sleep(POLL_MS, ctx.signal);
          job = await call<PrefetchJob>(
            `${mirror}/api/hubcache/prefetch/${encodeURIComponent(job.id)}`,
            { method: 'GET', headers },
            200,
          );
          const line = `${job.filesDone}/${job.files} files, ${formatBytes(job.doneBytes)} of ${formatBytes(job.totalBytes)}`;
          if (line !== last && Date.now() - lastAt >= 1000) {
            ctx.out.info(`  ${line}`);
            last = line;
            lastAt = Date.now();
          }
        }
        if (job.state === 'failed')
          throw new HubcacheError(
            `The mirror could not prefetch ${job.repo}@${job.revision}: ${job.error ?? 'unknown error'}`,
          );
        if (ctx.flags.json) ctx.out.json(job);
        else
          ctx.out.result(
            `Prefetched ${job.repo}@${job.commit ?? job.revision}: ${job.files} file(s), ${formatBytes(job.downloadedBytes)} downloaded by the mirror`,
          );
        return 0;
      }),
    );
}

/** One exchange with the mirror; its JSON errors become typed errors with the mirror's message. */
async function call<T>(
  url: string,
  opts: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
  expect: number,
): Promise<T> {
  const res = await httpRequest(url, { ...opts, timeoutMs: 30_000 });
  const text = await readText(res, 4 * 1024 * 1024);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.status === expect && json && typeof json === 'object') return json as T;
  const message = (json as { error?: unknown } | undefined)?.error;
  const why =
    typeof message === 'string'
      ? message
      : `HTTP ${res.status}${json === undefined ? ' (not a hubcache mirror?)' : ''}`;
  if (res.status === 401)
    throw new UnauthorizedError(`The mirror refused the request: ${why}`, 401, url, {
      hint: 'Pass its API key: --api-key or HUBCACHE_API_KEY.',
    });
  if (res.status === 400) throw new UsageError(why);
  throw new HubHttpError(`The mirror refused the prefetch: ${why}`, res.status, url);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
