// `hubcache dedup`: identical files across caches and hubs become hard links to one copy.
import { Command } from 'commander';
import { parseSize } from '../../care/units.js';
import { repeatable } from '../care-output.js';
import type { CommandRunner } from '../runner.js';
import { formatBytes } from '../../util/format.js';

interface DedupFlags {
  also?: string[];
  dryRun?: boolean;
  minSize?: string;
}

export function dedupCommand(run: CommandRunner): Command {
  return new Command('dedup')
    .option('--also <dir>', 'another cache folder to include (repeatable)', repeatable)
    .option('--dry-run', 'show what would be linked and freed; change nothing')
    .option('--min-size <size>', 'leave files smaller than this alone (e.g. 1MB)', '1')
    .addHelpText(
      'after',
      `
HF LFS blobs are named by their sha256; other files are hashed, and only when another file of
the same size exists on the same file system. A file a download holds (its lock) is skipped.
Hard links cannot cross file systems; those duplicates are only reported.

Examples:
  hubcache dedup --dry-run
  hubcache dedup --also /data/old-hf-cache`,
    )
    .action(async (_o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: DedupFlags) => {
        const report = await ctx.cache.dedup({
          also: flags.also ?? [],
          dryRun: !!flags.dryRun,
          minSize: parseSize(flags.minSize ?? '1'),
          signal: ctx.signal,
          onEvent: (e) => {
            if (e.type === 'warning') ctx.out.warn(e.message);
            else if (e.type === 'dedup-plan' && e.hashFiles > 0)
              ctx.out.info(
                `Hashing ${e.hashFiles} file(s) whose size matches another one (${formatBytes(e.hashBytes)})`,
              );
          },
        });
        if (ctx.flags.json) {
          ctx.out.json(report);
          return 0;
        }
        for (const s of report.skipped) ctx.out.warn(`skipped ${s.path}: ${s.reason}`);
        for (const g of report.groups) {
          ctx.out.info(`${formatBytes(g.size).padStart(9)}  ${g.keep}`);
          for (const l of g.linked) ctx.out.info(`           = ${l}`);
        }
        if (report.crossDevice.files > 0)
          ctx.out.info(
            `${report.crossDevice.files} duplicate(s) (${formatBytes(report.crossDevice.bytes)}) are on another file system and cannot be linked.`,
          );
        const verb = report.dryRun ? 'Would link' : 'Linked';
        ctx.out.result(
          `${verb} ${report.linkedFiles} file(s) in ${report.groups.length} group(s), ${report.dryRun ? 'freeing' : 'freed'} ${formatBytes(report.savedBytes)}.`,
        );
        return 0;
      }),
    );
}
