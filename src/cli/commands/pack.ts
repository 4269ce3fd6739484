// `hubcache pack REPO[@REV]... -o bundle.tar`: cached repos into one archive for an offline machine.
import { Command } from 'commander';
import type { CommandRunner } from '../runner.js';
import { formatBytes } from '../../util/format.js';

interface PackFlags {
  output: string;
}

export function packCommand(run: CommandRunner): Command {
  return new Command('pack')
    .argument(
      '<repos...>',
      'org/name[@revision], modelscope:org/name (a repo without @revision: every cached revision)',
    )
    .requiredOption('-o, --output <file>', 'the archive to write (replaced atomically when complete)')
    .addHelpText(
      'after',
      `
Every file is hashed while it is packed; a corrupt HF blob stops the pack (run \`hubcache verify --fix\`).

Examples:
  hubcache pack org/model@main modelscope:org/other -o models.tar
  # on the offline machine:
  hubcache unpack models.tar && HF_HUB_OFFLINE=1 hubcache download org/model`,
    )
    .action(async (repos: string[], _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: PackFlags) => {
        let last = 0;
        const report = await ctx.cache.pack({
          targets: repos,
          defaults: {
            ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
            ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
          },
          output: flags.output,
          signal: ctx.signal,
          onEvent: (e) => {
            if (e.type === 'warning') ctx.out.warn(e.message);
            else if (e.type === 'pack-plan')
              ctx.out.info(`Packing ${e.repos} repo(s): ${e.files} file(s), ${formatBytes(e.bytes)}`);
            else if (Date.now() - last > 2000 && e.bytes < e.total) {
              last = Date.now();
              ctx.out.info(`  ${formatBytes(e.bytes)} / ${formatBytes(e.total)}`);
            }
          },
        });
        if (ctx.flags.json) ctx.out.json(report);
        else {
          ctx.out.info(
            `Packed ${report.files} file(s) and ${report.links} link(s) of ${report.repos.map((r) => r.key).join(', ')}: ${formatBytes(report.archiveBytes)} in ${report.seconds.toFixed(1)} s`,
          );
          ctx.out.result(report.output);
        }
        return 0;
      }),
    );
}
