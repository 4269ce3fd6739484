// `hubcache update [ALIAS...]`: moves pins to what their branches/tags point to now and prints
// which files were added, removed or changed.
import { Command } from 'commander';
import type { CommandRunner } from '../runner.js';
import { MANIFEST_OPTION_HELP, printLockResult, projectOptions } from '../project-output.js';

export function updateCommand(run: CommandRunner): Command {
  return new Command('update')
    .argument('[aliases...]', 'entries to update (default: every entry)')
    .option('--manifest <file>', MANIFEST_OPTION_HELP)
    .option('--dry-run', 'show what would change; write nothing')
    .addHelpText('after', '\nThen run `hubcache install` to download the new files.')
    .action(async (aliases: string[], _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: { manifest?: string; dryRun?: boolean }) => {
        const res = await ctx.cache.update({
          ...projectOptions(ctx, flags),
          aliases,
          ...(flags.dryRun ? { dryRun: true } : {}),
        });
        printLockResult(ctx, res, { showUnchanged: false });
        if (!ctx.flags.json && res.entries.some((e) => e.status !== 'unchanged' && e.status !== 'removed'))
          ctx.out.info('next: hubcache install');
        return 0;
      }),
    );
}
