// `hubcache prune`: removes what nothing can use any more (detached revisions, stale partial
// downloads, broken links, orphan blobs, leftover temp files, empty folders).
import { Command } from 'commander';
import { parseDuration } from '../../care/units.js';
import { confirmDeletion, printDeleteResult, type DeleteFlags } from '../care-output.js';
import type { CommandRunner } from '../runner.js';

interface PruneFlags extends DeleteFlags {
  incompleteOlderThan?: string;
}

export function pruneCommand(run: CommandRunner): Command {
  return new Command('prune')
    .option('--incomplete-older-than <age>', 'partial downloads and temp files younger than this are kept', '1d')
    .option('--dry-run', 'show what would be removed and how much it frees; change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      `
Run inside a project, what its hubcache.lock pins is kept even when no ref points to it.
A partial download is kept while its lock is held, while it is still being written, or while
the hubcache process writing it is alive (the heartbeat in its resume state).

Examples:
  hubcache prune --dry-run
  hubcache prune --incomplete-older-than 1h -y`,
    )
    .action(async (_o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: PruneFlags) => {
        const { projectLockPins } = await import('../../manifest/pins.js');
        const projectPins = await projectLockPins();
        const olderThan = parseDuration(flags.incompleteOlderThan ?? '1d');
        const pins = projectPins ? { projectPins } : {};
        const preview = await ctx.cache.prune({ incompleteOlderThanMs: olderThan, ...pins, dryRun: true });
        if (!(await confirmDeletion(ctx, preview, flags, 'prune'))) return 0;
        return printDeleteResult(ctx, await ctx.cache.executeDeletePlan(preview.plan, { signal: ctx.signal }));
      }),
    );
}
