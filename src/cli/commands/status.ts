// `hubcache status [REPO...]`: cached refs vs what the hub serves now; with
// `--endpoint A --endpoint B`, the same repo compared across endpoints (e.g. the hub and a mirror).
import { Command } from 'commander';
import { normalizeMsEndpoint } from '../../config.js';
import type { RefStatus } from '../../care/status.js';
import { age, formatTable } from '../care-output.js';
import type { CommandContext } from '../context.js';
import type { CommandRunner } from '../runner.js';

export function statusCommand(run: CommandRunner): Command {
  // `outdated` runs this too when there is no hubcache.json (see outdated.ts).
  return new Command('status')
    .argument('[repos...]', 'only these repos (default: everything cached)')
    .addHelpText(
      'after',
      `
--endpoint is repeatable here: each repo is checked on every endpoint given (for the hub chosen
by --hub, default hf). ModelScope keeps per-file revisions, so a ModelScope repo counts as
outdated when one of its cached files changed on the hub. Exit code 1 when something is
outdated or an endpoint lags another.

Examples:
  hubcache status
  hubcache status org/name
  hubcache status org/name --endpoint https://huggingface.co --endpoint https://mirror.example`,
    )
    .action(async (repos: string[], _o: unknown, cmd: Command) => run(cmd, async (ctx) => cacheStatus(ctx, repos, cmd)));
}

/** The body of `status`, shared with `outdated` when no manifest is in play. */
export async function cacheStatus(ctx: CommandContext, repos: string[], cmd: Command): Promise<number> {
    // The global --endpoint keeps only its last value; every occurrence counts here.
    const endpoints = allValues(cmd, '--endpoint');
    const hub = ctx.flags.hub ?? 'hf';
    const normalized = endpoints.map((e) => (hub === 'modelscope' ? normalizeMsEndpoint(e) : e.replace(/\/+$/, '')));
    const report = await ctx.cache.status({
      ...(repos.length > 0 ? { targets: repos } : {}),
      defaults: { ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}), ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}) },
      ...(normalized.length > 0 ? { endpoints: { [hub]: normalized } } : {}),
      signal: ctx.signal,
    });
    if (ctx.flags.json) ctx.out.json(report);
    else if (report.refs.length === 0) ctx.out.result('No cached refs to check.');
    else {
      const width = Math.max(...report.refs.map((r) => r.remotes.length));
      const rows = report.refs.map((r) => [r.repo, r.ref, `${short(r.local.commit)} (${age(r.local.dateMs)})`, ...remoteCells(r, width), verdict(r)]);
      const names = report.refs[0]!.remotes.map((x) => x.endpoint);
      const sameEndpoints = report.refs.every((r) => r.remotes.map((x) => x.endpoint).join(' ') === names.join(' '));
      const remoteHeaders = width === 1 ? ['HUB'] : sameEndpoints ? names : Array.from({ length: width }, (_, i) => `ENDPOINT ${i + 1}`);
      const headers = ['REPO', 'REF', 'CACHED', ...remoteHeaders, 'STATE'];
      ctx.out.result(formatTable(headers, rows));
      for (const r of report.refs) for (const x of r.remotes) if (x.error) ctx.out.warn(`${r.repo}@${r.ref} on ${x.endpoint}: ${x.error}`);
      ctx.out.result(`\n${report.refs.length} ref(s): ${report.outdated} outdated, ${report.lagging} with a lagging endpoint, ${report.unknown} unknown.`);
    }
    return report.outdated > 0 || report.lagging > 0 ? 1 : 0;
}

function short(commit: string): string {
  return /^[0-9a-f]{40}$/.test(commit) ? commit.slice(0, 12) : commit;
}

function remoteCells(r: RefStatus, width: number): string[] {
  const cells = r.remotes.map((x) => {
    if (x.error) return 'error';
    const changed = x.changedFiles && x.changedFiles.length > 0 ? `, ${x.changedFiles.length} file(s) changed` : '';
    return `${short(x.commit ?? '?')}${x.dateMs ? ` (${age(x.dateMs)})` : ''}${changed}`;
  });
  while (cells.length < width) cells.push('-');
  return cells;
}

function verdict(r: RefStatus): string {
  const lag = r.laggingEndpoints.length > 0 ? `; lagging: ${r.laggingEndpoints.join(', ')}` : '';
  return `${r.state}${lag}`;
}

/** Every value of a repeated option in the raw command line (`--opt v` and `--opt=v`). */
function allValues(cmd: Command, flag: string): string[] {
  let root: Command = cmd;
  while (root.parent) root = root.parent;
  const args = (root as Command & { rawArgs?: string[] }).rawArgs ?? [];
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') break;
    if (a === flag && i + 1 < args.length) out.push(args[++i] as string);
    else if (a.startsWith(`${flag}=`)) out.push(a.slice(flag.length + 1));
  }
  return out;
}
