// `hubcache rm REPO[@REVISION]...`: removes repos or revisions (spec: hf cache rm / delete strategy).
import { Command } from 'commander';
import { parseDuration } from '../../care/units.js';
import { RepoInUseError } from '../../errors.js';
import { confirmDeletion, printDeleteResult, type DeleteFlags } from '../care-output.js';
import type { CommandRunner } from '../runner.js';

interface RmFlags extends DeleteFlags {
  olderThan?: string;
  pattern?: string;
}

export function rmCommand(run: CommandRunner): Command {
  return new Command('rm')
    .argument(
      '[targets...]',
      'org/name (every revision), org/name@rev (a ref, commit or commit prefix), model/org/name or dataset/org/name (hf cache ids), modelscope:org/name, or a 40-hex commit',
    )
    .option('--older-than <age>', 'only revisions not used for this long: 30d, 12h, 2w')
    .option('--pattern <glob>', 'only repos whose id matches this glob (org/*, *llama*)')
    .option('--dry-run', 'show what would be removed and how much it frees; change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      `
A revision's snapshot goes first, then the refs pointing to it, then the blobs no other revision
uses, so a reader never meets a dangling link. Nothing outside the cache folder is ever deleted
(links pointing out are unlinked, not followed), and files a running download holds are skipped.
Without a terminal, --yes (or --dry-run) is required.

Examples:
  hubcache rm org/name --dry-run
  hubcache rm org/name@v1.0 -y
  hubcache rm dataset/org/name -y                  # hf cache's typed ids (model/..., dataset/..., space/...)
  hubcache rm --pattern "org/*" --older-than 30d -y
  hubcache rm modelscope:qwen/Qwen2.5-7B -y`,
    )
    .action(async (targets: string[], _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: RmFlags) => {
        const opts = {
          targets,
          ...(flags.olderThan ? { olderThanMs: parseDuration(flags.olderThan) } : {}),
          ...(flags.pattern ? { pattern: flags.pattern } : {}),
          defaults: {
            ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
            ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
          },
        };
        const preview = await ctx.cache.remove({ ...opts, dryRun: true });
        if (!(await confirmDeletion(ctx, preview, flags, 'remove'))) return 0;
        const report = await ctx.cache.executeDeletePlan(preview.plan, { signal: ctx.signal });
        const code = printDeleteResult(ctx, report);
        // What the user named is still there: say why, and do not exit 0 as if it were gone.
        const held = report.skipped.filter((s) => s.inUse);
        if (held.length === 0) return code;
        throw new RepoInUseError(
          `Not removed, a download is using it: ${[...new Set(held.map((s) => s.what))].join(', ')}`,
          {
            hint: 'Wait for the download to finish (or stop it), then run the same command again.',
          },
        );
      }),
    );
}
