// `hubcache status [REPO...]`: cached refs vs what the hub serves now; with
// `--endpoint A --endpoint B`, the same repo compared across endpoints (e.g. the hub and a mirror).
// Exit codes: statusExitCode.
import { Command } from 'commander';
import type { RefStatus, StatusReport } from '../../care/status.js';
import { ExitCode } from '../../errors.js';
import type { HubName } from '../../hubs/types.js';
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
--endpoint is repeatable here: each ref is checked on every endpoint given for its hub. A bare
--endpoint URL is for the hub of the repos checked (ask for both hubs' repos and it must name
its hub: --endpoint hf=URL, --endpoint modelscope=URL). ModelScope keeps per-file revisions, so
a ModelScope repo counts as outdated when one of its cached files changed on the hub.
Exit code 1 when something is outdated or an endpoint lags another; else, if an endpoint could
not answer, that failure's code (17: unreachable, 16: offline, 10: repo not found).

Examples:
  hubcache status
  hubcache status org/name
  hubcache status org/name --endpoint https://huggingface.co --endpoint https://mirror.example
  hubcache status modelscope:org/name --endpoint https://www.modelscope.cn --endpoint modelscope=mirror.example`,
    )
    .action(async (repos: string[], _o: unknown, cmd: Command) =>
      run(cmd, async (ctx) => cacheStatus(ctx, repos), { compareEndpoints: true }),
    );
}

/** The body of `status`, shared with `outdated` when no manifest is in play. */
export async function cacheStatus(ctx: CommandContext, repos: string[]): Promise<number> {
  const report = await ctx.cache.status({
    ...(repos.length > 0 ? { targets: repos } : {}),
    defaults: {
      ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
      ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
    },
    // A bare --endpoint is for the hub of the refs checked (ambiguous if they are on both).
    ...(ctx.endpoints.count > 0 ? { endpoints: (hubs: ReadonlySet<HubName>) => ctx.endpoints.forHubs(hubs) } : {}),
    signal: ctx.signal,
  });
  if (ctx.flags.json) ctx.out.json(report);
  else if (report.refs.length === 0) ctx.out.result('No cached refs to check.');
  else {
    const width = Math.max(...report.refs.map((r) => r.remotes.length));
    const rows = report.refs.map((r) => [
      r.repo,
      r.ref,
      `${short(r.local.commit)} (${age(r.local.dateMs)})`,
      ...remoteCells(r, width),
      verdict(r),
    ]);
    const names = report.refs[0]!.remotes.map((x) => x.endpoint);
    const sameEndpoints = report.refs.every((r) => r.remotes.map((x) => x.endpoint).join(' ') === names.join(' '));
    const remoteHeaders =
      width === 1 ? ['HUB'] : sameEndpoints ? names : Array.from({ length: width }, (_, i) => `ENDPOINT ${i + 1}`);
    const headers = ['REPO', 'REF', 'CACHED', ...remoteHeaders, 'STATE'];
    ctx.out.result(formatTable(headers, rows));
    for (const r of report.refs)
      for (const x of r.remotes) if (x.error) ctx.out.warn(`${r.repo}@${r.ref} on ${x.endpoint}: ${x.error}`);
    ctx.out.result(
      `\n${report.refs.length} ref(s): ${report.outdated} outdated, ${report.lagging} with a lagging endpoint, ${report.unknown} unknown.`,
    );
  }
  return statusExitCode(report);
}

/**
 * 1 when something is outdated or an endpoint lags; else, when an endpoint could not answer, the
 * exit code of that failure (17 unreachable, 16 offline...): "nothing outdated" is not known then.
 */
export function statusExitCode(report: StatusReport): number {
  if (report.outdated > 0 || report.lagging > 0) return ExitCode.findings;
  const failed = report.refs.flatMap((r) => r.remotes).find((x) => x.error !== undefined);
  return failed ? (failed.exitCode ?? ExitCode.generic) : ExitCode.ok;
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
