// `hubcache verify [REPO...]`: re-hash cached files; `--fix` downloads the bad ones again.
import { Command } from 'commander';
import type { FileCheck, VerifyEvent } from '../../care/verify.js';
import type { CommandContext } from '../context.js';
import type { CommandRunner } from '../runner.js';
import { checkLocalDir, checkRevision, parseCount } from '../validate.js';
import { UsageError } from '../../errors.js';
import type { ListingDiff } from '../../care/verify-listing.js';
import { formatBytes } from '../../util/format.js';

interface VerifyFlags {
  fix?: boolean;
  concurrency?: string;
  revision?: string;
  localDir?: string;
  failOnMissingFiles?: boolean;
  failOnExtraFiles?: boolean;
}

export function verifyCommand(run: CommandRunner): Command {
  return new Command('verify')
    .argument('[repos...]', 'only these repos: org/name[@revision], modelscope:org/name (default: everything cached)')
    .option('--fix', 'delete each bad file and download it again, then check it once more')
    .option('--concurrency <n>', 'files hashed at once (default: number of cores)')
    .option('--revision <rev>', 'check this revision of the given repos (like org/name@rev)')
    .option('--local-dir <dir>', 'check the files of a `download --local-dir` folder instead of the cache (one repo)')
    .option(
      '--fail-on-missing-files',
      'list files the revision has but the disk lacks, and exit 1 if any (as `hf cache verify`)',
    )
    .option('--fail-on-extra-files', 'list files on disk the revision does not have, and exit 1 if any')
    .addHelpText(
      'after',
      `
HF blobs are named by their hash (sha256 for LFS files, git sha1 otherwise), so they are checked
offline. ModelScope keeps no hashes on disk: its files are checked against the hub's listing, and
reported "unverifiable" offline. Exit code 1 when problems remain.

Examples:
  hubcache verify
  hubcache verify org/name@main --fix
  hubcache verify modelscope:org/name --json
  hubcache verify org/name --revision v1.0 --fail-on-missing-files
  hubcache verify org/name --local-dir ./models/name --fail-on-extra-files`,
    )
    .action(async (repos: string[], _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: VerifyFlags) => {
        if (flags.revision !== undefined) {
          checkRevision(flags.revision);
          if (repos.length === 0)
            throw new UsageError('--revision needs the repo(s) to check', {
              hint: 'hubcache verify org/name --revision v1.0',
            });
          const pinned = repos.find((r) => r.includes('@'));
          if (pinned) throw new UsageError(`${pinned} already names a revision; drop it or --revision`);
        }
        const targets = flags.revision !== undefined ? repos.map((r) => `${r}@${flags.revision}`) : repos;
        if (flags.localDir !== undefined) return verifyLocalDir(ctx, targets, checkLocalDir(flags.localDir), flags);
        const progress = progressPrinter(ctx);
        const defaults = {
          ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
          ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
        };
        const report = await ctx.cache.verify({
          ...(targets.length > 0 ? { targets } : {}),
          defaults,
          fix: !!flags.fix,
          ...(flags.concurrency ? { concurrency: parseCount('--concurrency', flags.concurrency) } : {}),
          signal: ctx.signal,
          onEvent: progress,
        });
        progress({ type: 'verify-progress', bytes: -1, total: 0 });
        const diffs =
          flags.failOnMissingFiles || flags.failOnExtraFiles
            ? await ctx.cache.listingDiffs({ ...(targets.length > 0 ? { targets } : {}), defaults, signal: ctx.signal })
            : [];
        const listed = listingFindings(ctx, diffs, flags);
        if (ctx.flags.json) {
          ctx.out.json({ ...report, ...(diffs.length ? { listing: diffs } : {}) });
        } else {
          for (const p of report.fixed) ctx.out.result(`fixed        ${where(p)}`);
          for (const p of report.problems) ctx.out.result(`${p.verdict.padEnd(12)} ${where(p)}${detail(p)}`);
          for (const p of report.unverifiable) ctx.out.info(`unverifiable ${where(p)}: ${p.reason ?? ''}`);
          ctx.out.result(
            `Checked ${report.blobs} blob(s), ${formatBytes(report.bytes)} in ${report.seconds.toFixed(1)} s: ${report.ok} ok, ` +
              `${report.problems.length} problem(s)${report.fixed.length ? `, ${report.fixed.length} fixed` : ''}, ${report.unverifiable.length} unverifiable.`,
          );
          if (report.problems.length > 0 && !flags.fix)
            ctx.out.info('hint: `hubcache verify --fix` downloads the bad files again.');
        }
        return report.problems.length > 0 || listed > 0 ? 1 : 0;
      }),
    );
}

/** Prints missing / extra files the flags ask about (a warning naming a revision whose listing is unknown); returns their count. */
function listingFindings(
  ctx: CommandContext,
  diffs: Array<ListingDiff & { reason?: string }>,
  flags: VerifyFlags,
): number {
  let n = 0;
  for (const d of diffs) {
    const at = `${d.repo}@${d.revision.length === 40 ? d.revision.slice(0, 12) : d.revision}`;
    if (d.reason) {
      ctx.out.warn(`cannot compare ${at} with its file listing: ${d.reason}`);
      n++; // asked for, and not shown: not a pass
    }
    const found = [
      ...(flags.failOnMissingFiles
        ? d.missing.map((p) => `missing-file ${at}  ${p}  (in the revision, not on disk)`)
        : []),
      ...(flags.failOnExtraFiles ? d.extra.map((p) => `extra-file   ${at}  ${p}  (on disk, not in the revision)`) : []),
    ];
    n += found.length;
    if (!ctx.flags.json) for (const line of found) ctx.out.result(line);
  }
  return n;
}

/** `verify REPO --local-dir DIR`: hash the folder's files against the revision's listing. */
async function verifyLocalDir(
  ctx: CommandContext,
  targets: string[],
  dir: string,
  flags: VerifyFlags,
): Promise<number> {
  if (targets.length !== 1)
    throw new UsageError('--local-dir checks one repo', { hint: 'hubcache verify org/name --local-dir ./models/name' });
  if (flags.fix)
    throw new UsageError('--fix does not apply to --local-dir', {
      hint: 'Run `hubcache download REPO --local-dir DIR` again: it fetches what is wrong.',
    });
  const repo = ctx.cache.parseRepo(targets[0] as string);
  if (ctx.flags.hub) repo.hub = ctx.flags.hub;
  if (ctx.flags.repoType) repo.type = ctx.flags.repoType;
  const r = await ctx.cache.verifyLocalDir(repo, dir, {
    signal: ctx.signal,
    ...(flags.concurrency ? { concurrency: parseCount('--concurrency', flags.concurrency) } : {}),
  });
  const listed = listingFindings(ctx, [r], flags);
  if (ctx.flags.json) ctx.out.json(r);
  else {
    for (const p of r.problems) ctx.out.result(`${p.verdict.padEnd(12)} ${where(p)}${detail(p)}`);
    if (!flags.failOnMissingFiles && r.missing.length)
      ctx.out.warn(
        `${r.missing.length} file(s) of the revision are not in ${dir}; --fail-on-missing-files lists them.`,
      );
    if (!flags.failOnExtraFiles && r.extra.length)
      ctx.out.warn(`${r.extra.length} file(s) in ${dir} are not in the revision; --fail-on-extra-files lists them.`);
    ctx.out.result(
      `Checked ${r.checked} file(s) of ${r.repo}@${r.revision.slice(0, 12)} in ${dir}: ${r.ok} ok, ${r.problems.length} problem(s).`,
    );
  }
  return r.problems.length > 0 || listed > 0 ? 1 : 0;
}

function where(p: FileCheck): string {
  return `${p.repo}@${p.revision.length === 40 ? p.revision.slice(0, 12) : p.revision}  ${p.path}`;
}

function detail(p: FileCheck): string {
  const parts: string[] = [];
  if (p.verdict === 'truncated' && p.expectedSize !== undefined)
    parts.push(`${p.size ?? 0} of ${p.expectedSize} bytes`);
  if (p.verdict === 'corrupt' && p.expected)
    parts.push(`${p.algorithm} ${p.actual?.slice(0, 12)}…, expected ${p.expected.slice(0, 12)}…`);
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
      ctx.out.info(
        `Hashing ${e.blobs} blob(s), ${formatBytes(e.bytes)}${e.unverifiable ? ` (${e.unverifiable} file(s) unverifiable)` : ''}`,
      );
    } else if (e.type === 'verify-fix') {
      ctx.out.info(`Downloading again: ${e.repo}@${e.revision.slice(0, 12)} ${e.files.join(', ')}`);
    } else if (e.type === 'verify-progress' && planned && e.bytes >= 0) {
      const now = Date.now();
      if (now - last < 1000 && e.bytes < e.total) return;
      last = now;
      const pct = e.total > 0 ? Math.floor((e.bytes / e.total) * 100) : 100;
      ctx.io.stderr.write(
        ctx.io.isTTY
          ? `\r  ${pct}% ${formatBytes(e.bytes)} / ${formatBytes(e.total)}   `
          : `  ${pct}% ${formatBytes(e.bytes)} / ${formatBytes(e.total)}\n`,
      );
    } else if (e.type === 'verify-progress' && e.bytes < 0 && ctx.io.isTTY && planned) {
      ctx.io.stderr.write('\n');
    }
  };
}
