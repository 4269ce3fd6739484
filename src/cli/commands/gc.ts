// `hubcache gc --max-size 200G [--keep REPO...]`: removes least recently used revisions until the
// cache fits; `--save-policy` makes every later download do the same.
import { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { parseSize } from '../../care/units.js';
import { confirmDeletion, printDeleteResult, repeatable, type DeleteFlags } from '../care-output.js';
import type { CommandRunner } from '../runner.js';

interface GcFlags extends DeleteFlags {
  maxSize?: string;
  keep?: string[];
  savePolicy?: boolean;
}

export function gcCommand(run: CommandRunner): Command {
  return new Command('gc')
    .option('--max-size <size>', 'target size: 200G, 500MB, 1.5T (default: the saved policy)')
    .option('--keep <repo>', 'never remove this repo (org/name) or revision (org/name@rev); repeatable', repeatable)
    .option(
      '--save-policy',
      'save --max-size/--keep to <cache>/.locks/hubcache/policy.json: every download then runs this gc',
    )
    .option('--dry-run', 'show what would be removed and how much it frees; change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      `
"Least recently used" is the newest access time of a revision's blobs. A revision whose files a
download holds a lock on, or a repo with a download in progress, is never touched; run inside a
project, neither is what its hubcache.lock pins.

Examples:
  hubcache gc --max-size 200G --dry-run
  hubcache gc --max-size 200G --keep org/important -y
  hubcache gc --max-size 200G --keep org/important --save-policy -y
  hubcache gc -y                      # with the saved policy`,
    )
    .action(async (_o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: GcFlags) => {
        const saved = await ctx.cache.readCachePolicy();
        const maxSize = flags.maxSize ?? saved?.maxSize;
        if (!maxSize)
          throw new UsageError('gc needs a size: --max-size 200G', {
            hint: 'Or save one with `hubcache gc --max-size 200G --save-policy`.',
          });
        const keep = flags.keep ?? (flags.maxSize ? [] : (saved?.keep ?? []));
        const maxSizeBytes = parseSize(maxSize);
        if (flags.savePolicy) {
          if (flags.dryRun) ctx.out.info(`Would save the policy {maxSize: ${maxSize}, keep: [${keep.join(', ')}]}`);
          else
            ctx.out.info(
              `Saved the cache policy to ${await ctx.cache.saveCachePolicy({ maxSize, ...(keep.length ? { keep } : {}) })}`,
            );
        }
        const defaults = {
          ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
          ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
        };
        const { projectLockPins } = await import('../../manifest/pins.js');
        const projectPins = await projectLockPins();
        const pins = projectPins ? { projectPins } : {};
        const preview = await ctx.cache.gc({ maxSizeBytes, keep, defaults, ...pins, dryRun: true });
        if (!(await confirmDeletion(ctx, preview, flags, `shrink the cache to ${maxSize}`))) return 0;
        return printDeleteResult(ctx, await ctx.cache.executeDeletePlan(preview.plan, { signal: ctx.signal }));
      }),
    );
}
