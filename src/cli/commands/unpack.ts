// `hubcache unpack bundle.tar`: verify a `pack` archive completely, then merge it into the cache.
import { Command } from 'commander';
import type { CommandRunner } from '../runner.js';
import { formatBytes } from '../../util/format.js';

interface UnpackFlags {
  updateRefs?: boolean;
  dryRun?: boolean;
}

export function unpackCommand(run: CommandRunner): Command {
  return new Command('unpack')
    .argument('<archive>', 'the tar written by `hubcache pack`')
    .option(
      '--update-refs',
      "also move existing refs (main, tags), ModelScope .mv and differing ModelScope files to the archive's",
    )
    .option('--dry-run', 'verify the archive and show what would change; write nothing')
    .addHelpText(
      'after',
      `
Nothing is written when a member is unsafe (absolute path, .., a link out of its repo), damaged
(size or sha256 differs from the manifest) or missing. Use the global --cache-dir to unpack
somewhere else than HF_HUB_CACHE / MODELSCOPE_CACHE.

Examples:
  hubcache unpack models.tar
  hubcache unpack models.tar --cache-dir /data/hf-cache --update-refs`,
    )
    .action(async (archive: string, _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: UnpackFlags) => {
        let last = 0;
        const report = await ctx.cache.unpack({
          archive,
          updateRefs: !!flags.updateRefs,
          dryRun: !!flags.dryRun,
          signal: ctx.signal,
          onEvent: (e) => {
            if (e.type === 'warning') ctx.out.warn(e.message);
            else if (Date.now() - last > 2000 && e.bytes < e.total) {
              last = Date.now();
              ctx.out.info(`  read ${formatBytes(e.bytes)} / ${formatBytes(e.total)}`);
            }
          },
        });
        if (ctx.flags.json) {
          ctx.out.json(report);
          return 0;
        }
        for (const c of report.conflicts) ctx.out.warn(`${c.path}: ${c.detail ?? 'kept'}`);
        for (const r of report.refs)
          if (r.action !== 'unchanged' && r.action !== 'kept')
            ctx.out.info(`ref ${r.repo}@${r.ref}: ${r.action} → ${r.commit.slice(0, 12)}`);
        const verb = report.dryRun ? 'Would add' : 'Added';
        ctx.out.result(
          `Verified ${report.verified} member(s), ${formatBytes(report.bytes)}. ${verb} ${report.added}, kept ${report.kept} already cached` +
            `${report.replaced ? `, replaced ${report.replaced}` : ''}${report.conflicts.length ? `, ${report.conflicts.length} conflict(s) left as cached` : ''}: ${report.repos.map((r) => r.key).join(', ')}`,
        );
        return 0;
      }),
    );
}
