// `hubcache doctor`: what goes wrong in practice, each finding with a severity and a fix.
import { Command } from 'commander';
import type { DoctorFinding } from '../../care/doctor-checks.js';
import { repeatable } from '../care-output.js';
import type { CommandRunner } from '../runner.js';
import { formatBytes } from '../../util/format.js';

interface DoctorFlags {
  also?: string[];
  online?: boolean;
}

const LABEL: Record<DoctorFinding['severity'], string> = { error: 'error  ', warning: 'warning', info: 'note   ' };

export function doctorCommand(run: CommandRunner): Command {
  return new Command('doctor')
    .option('--also <dir>', 'another cache folder to check and compare for duplicates (repeatable)', repeatable)
    .option('--online', 'ask the hubs for file lists the cache does not hold (otherwise nothing goes to the network)')
    .addHelpText(
      'after',
      `
Exit code 1 when an error or a warning is found, 0 when there are only notes.

Examples:
  hubcache doctor
  hubcache doctor --also /data/other-cache --json`,
    )
    .action(async (_o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: DoctorFlags) => {
        const report = await ctx.cache.doctor({
          env: ctx.io.env,
          also: flags.also ?? [],
          online: !!flags.online,
          signal: ctx.signal,
        });
        if (ctx.flags.json) {
          ctx.out.json(report);
          return report.problems > 0 ? 1 : 0;
        }
        for (const d of report.dirs) {
          const where = [
            d.fsType,
            d.freeBytes !== undefined ? `${formatBytes(d.freeBytes)} free` : undefined,
            d.exists ? undefined : 'not created yet',
          ]
            .filter(Boolean)
            .join(', ');
          ctx.out.result(`${d.roles.join(' + ')}: ${d.path}${where ? ` (${where})` : ''}`);
        }
        ctx.out.result('');
        for (const f of report.findings) {
          if (f.severity === 'info' && ctx.flags.quiet) continue;
          ctx.out.result(`${LABEL[f.severity]}  ${f.message}`);
          if (f.fix) ctx.out.result(`         fix: ${f.fix}`);
        }
        const errors = report.findings.filter((f) => f.severity === 'error').length;
        const notes = report.findings.length - report.problems;
        ctx.out.result(
          report.problems === 0
            ? `No problems found (${notes} note(s)).`
            : `${report.problems} problem(s): ${errors} error(s), ${report.problems - errors} warning(s); ${notes} note(s).`,
        );
        return report.problems > 0 ? 1 : 0;
      }),
    );
}
