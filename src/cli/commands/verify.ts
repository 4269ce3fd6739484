// `hubcache verify [REPO...]`: re-hash cached files; `--fix` downloads the bad ones again.
import { Command } from 'commander';
import type { FileCheck, VerifyEvent } from '../../care/verify.js';
import type { CommandContext } from '../context.js';
import type { CommandRunner } from '../runner.js';
import { formatBytes } from '../../util/format.js';

interface VerifyFlags {
  fix?: boolean;
  concurrency?: string;
}

export function verifyCommand(run: CommandRunner): Command {
  return new Command('verify')
    .argument('[repos...]', 'only these repos: org/name[@revision], modelscope:org/name (default: everything cached)')
    .option('--fix', 'delete each bad file and download it again, then check it once more')
    .option('--concurrency <n>', 'files hashed at once (default: number of cores)')
    .addHelpText(
      'after',
      `
HF blobs are named by their hash (sha256 for LFS files, git sha1 otherwise), so they are checked
offline. ModelScope keeps no hashes on disk: its files are checked against the hub's listing, and
reported "unverifiable" offline. Exit code 1 when problems remain.

Examples:
  hubcache verify
  hubcache verify org/name@main --fix
  hubcache verify modelscope:org/name --json`,
    )
    .action(async (repos: string[], _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: VerifyFlags) => {
        const progress = progressPrinter(ctx);
        const report = await ctx.cache.verify({
          ...(repos.length > 0 ? { targets: repos } : {}),
          defaults: { ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}), ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}) },
          fix: !!flags.fix,
          ...(flags.concurrency ? { concurrency: Math.max(1, Number(flags.concurrency) || 1) } : {}),
          signal: ctx.signal,
          onEvent: progress,
        });
        progress({ type: 'verify-progress', bytes: -1, total: 0 });
        if (ctx.flags.json) {
          ctx.out.json(report);
        } else {
          for (const p of report.fixed) ctx.out.result(`fixed        ${where(p)}`);
          for (const p of report.problems) ctx.out.result(`${p.verdict.padEnd(12)} ${where(p)}${detail(p)}`);
          for (const p of report.unverifiable) ctx.out.info(`unverifiable ${where(p)}: ${p.reason ?? ''}`);
          ctx.out.result(
            `Checked ${report.blobs} blob(s), ${formatBytes(report.bytes)} in ${report.seconds.toFixed(1)} s: ${report.ok} ok, ` +
              `${report.problems.length} problem(s)${report.fixed.length ? `, ${report.fixed.length} fixed` : ''}, ${report.unverifiable.length} unverifiable.`,
          );
          if (report.problems.length > 0 && !flags.fix) ctx.out.info('hint: `hubcache verify --fix` downloads the bad files again.');
        }
        return report.problems.length > 0 ? 1 : 0;
      }),
    );
}

function where(p: FileCheck): string {
  return `${p.repo}@${p.revision.length === 40 ? p.revision.slice(0, 12) : p.revision}  ${p.path}`;
}

function detail(p: FileCheck): string {
  const parts: string[] = [];
  if (p.verdict === 'truncated' && p.expectedSize !== undefined) parts.push(`${p.size ?? 0} of ${p.expectedSize} bytes`);
  if (p.verdict === 'corrupt' && p.expected) parts.push(`${p.algorithm} ${p.actual?.slice(0, 12)}…, expected ${p.expected.slice(0, 12)}…`);
  if (p.reason) parts.push(p.reason);
  return parts.length ? `  (${parts.join('; ')})` : '';
}

/** Progress on stderr: a line per second at most (JSON lines with --json), nothing with --quiet. */
function progressPrinter(ctx: CommandContext): (e: VerifyEvent) => void {
  let last = 0;
  let planned = false;
  return (e) => {
    if (ctx.flags.quiet) return;
    if (ctx.flags.json) {
      if (e.type !== 'verify-progress' || e.bytes >= 0) ctx.io.stderr.write(`${JSON.stringify(e)}\n`);
      return;
    }
    if (e.type === 'warning') ctx.out.warn(e.message);
    else if (e.type === 'verify-plan') {
      planned = true;
      ctx.out.info(`Hashing ${e.blobs} blob(s), ${formatBytes(e.bytes)}${e.unverifiable ? ` (${e.unverifiable} file(s) unverifiable)` : ''}`);
    } else if (e.type === 'verify-fix') {
      ctx.out.info(`Downloading again: ${e.repo}@${e.revision.slice(0, 12)} ${e.files.join(', ')}`);
    } else if (e.type === 'verify-progress' && planned && e.bytes >= 0) {
      const now = Date.now();
      if (now - last < 1000 && e.bytes < e.total) return;
      last = now;
      const pct = e.total > 0 ? Math.floor((e.bytes / e.total) * 100) : 100;
      ctx.io.stderr.write(ctx.io.isTTY ? `\r  ${pct}% ${formatBytes(e.bytes)} / ${formatBytes(e.total)}   ` : `  ${pct}% ${formatBytes(e.bytes)} / ${formatBytes(e.total)}\n`);
    } else if (e.type === 'verify-progress' && e.bytes < 0 && ctx.io.isTTY && planned) {
      ctx.io.stderr.write('\n');
    }
  };
}
