// `hubcache lock`: resolves every hubcache.json entry without a current pin to an exact commit
// and writes hubcache.lock.
import { Command } from 'commander';
import type { CommandRunner } from '../runner.js';
import { MANIFEST_OPTION_HELP, printLockResult, projectOptions } from '../project-output.js';

export function lockCommand(run: CommandRunner): Command {
  return new Command('lock')
    .option('--manifest <file>', MANIFEST_OPTION_HELP)
    .option('--dry-run', 'show what would be locked; write nothing')
    .addHelpText(
      'after',
      `
Entries already locked with the same repo, revision and patterns keep their pin (no request).
To move pins to what their branches point to now, use \`hubcache update\`.`,
    )
    .action(async (_o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: { manifest?: string; dryRun?: boolean }) => {
        const res = await ctx.cache.lock({ ...projectOptions(ctx, flags), ...(flags.dryRun ? { dryRun: true } : {}) });
        printLockResult(ctx, res, { showUnchanged: true });
        return 0;
      }),
    );
}
