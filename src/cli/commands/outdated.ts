// `hubcache outdated`: in a project (a hubcache.json is found, or --manifest), locked entries whose
// branch/tag moved upstream; elsewhere, or with --cache, the same as `hubcache status` (cached refs
// vs the hub). Exit 1 when anything is outdated (like `npm outdated`), so CI can notice; a hub
// that cannot be asked ends the command with that failure's code (17: unreachable).
import { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import { formatRepoRef } from '../../hubs/repo-ref.js';
import type { HubName } from '../../hubs/types.js';
import { cacheStatus } from './status.js';
import type { CommandRunner } from '../runner.js';
import { changeLines, MANIFEST_OPTION_HELP, projectOptions } from '../project-output.js';

const short = (c: string): string => (/^[0-9a-f]{40}$/.test(c) ? c.slice(0, 8) : c);

export function outdatedCommand(run: CommandRunner): Command {
  return new Command('outdated')
    .argument('[names...]', 'manifest aliases (project mode) or repos (cache mode)')
    .option('--cache', 'check what is cached (like `hubcache status`) even inside a project')
    .option('--manifest <file>', MANIFEST_OPTION_HELP)
    .option('--details', 'also list the files that changed (one tree listing per outdated model)')
    .action(async (aliases: string[], _o: unknown, cmd: Command) =>
      run(
        cmd,
        async (ctx, flags: { manifest?: string; details?: boolean; cache?: boolean }) => {
          const { findManifest } = await import('../../manifest/manifest.js');
          if (flags.cache || (!flags.manifest && !(await findManifest(process.cwd()))))
            return cacheStatus(ctx, aliases);
          const found = await ctx.cache.outdated({
            ...projectOptions(ctx, flags),
            aliases,
            ...(flags.details ? { details: true } : {}),
            // Every endpoint is compared, as `status` does; a bare one is for the hub of the entries checked.
            ...(ctx.endpoints.count > 0
              ? { endpoints: (hubs: ReadonlySet<HubName>) => ctx.endpoints.forHubs(hubs) }
              : {}),
          });
          if (ctx.flags.json) ctx.out.json(found);
          else if (found.length === 0) ctx.out.info('everything is up to date');
          else {
            const width = Math.max(...found.map((e) => e.alias.length));
            for (const e of found) {
              const on = e.endpoint ? `  (on ${e.endpoint})` : '';
              const repo = formatRepoRef({ hub: e.hub, type: e.type, id: e.repo, revision: e.revision });
              ctx.out.result(`${e.alias.padEnd(width)}  ${repo}  ${short(e.locked)} → ${short(e.latest)}${on}`);
              if (e.changes) for (const line of changeLines(e.changes)) ctx.out.result(line);
            }
            ctx.out.info(`${found.length} outdated; run \`hubcache update\` to move the pins`);
          }
          return found.length > 0 ? ExitCode.findings : ExitCode.ok;
        },
        { compareEndpoints: true },
      ),
    );
}
