// Shared printing for the cache-care commands (ls, verify, status, rm, prune, gc): tables,
// dates, deletion plans, and the confirmation rule for anything that deletes.
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../errors.js';
import type { DeleteReport } from '../care/delete.js';
import type { CacheWarning } from '../care/model.js';
import { formatAge } from '../care/units.js';
import type { CommandContext } from './context.js';
import { formatBytes } from '../util/format.js';

/** For repeatable options: `--keep a --keep b`. */
export const repeatable = (v: string, prev: string[] = []): string[] => [...prev, v];

export function age(ms: number | undefined): string {
  return ms === undefined || ms <= 0 ? '-' : formatAge(ms);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function formatTable(
  headers: string[],
  rows: string[][],
  rightAligned: ReadonlySet<number> = new Set(),
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) =>
        i === cells.length - 1 ? c : rightAligned.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

const WARNING_LINES = 20;

/** Scan warnings on stderr: all of them up to a limit, then a count per kind. */
export function printWarnings(ctx: CommandContext, warnings: readonly CacheWarning[]): void {
  if (warnings.length === 0 || ctx.flags.quiet) return;
  if (ctx.flags.json) {
    for (const w of warnings) ctx.io.stderr.write(`${JSON.stringify({ type: 'warning', ...w })}\n`);
    return;
  }
  for (const w of warnings.slice(0, WARNING_LINES)) ctx.out.warn(w.message);
  if (warnings.length > WARNING_LINES) {
    const counts = new Map<string, number>();
    for (const w of warnings.slice(WARNING_LINES)) counts.set(w.kind, (counts.get(w.kind) ?? 0) + 1);
    ctx.out.warn(
      `...and ${warnings.length - WARNING_LINES} more: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')} (all of them with --json)`,
    );
  }
}

/** What a deletion removes (or would), one line per item, for stdout. */
export function describeDeletion(report: DeleteReport): string[] {
  const { plan } = report;
  const lines: string[] = [];
  for (const r of plan.repos) lines.push(`  ${r.repo}  (whole repo, ${formatBytes(r.size)})`);
  for (const r of plan.revisions)
    lines.push(
      `  ${r.repo}@${r.commit.slice(0, 12)}${r.refs.length ? ` [${r.refs.join(', ')}]` : ' (detached)'}  ${formatBytes(r.size)}`,
    );
  const byReason = new Map<string, { n: number; bytes: number }>();
  for (const b of plan.blobs.filter((x) => x.reason === 'orphan-blob')) bump(byReason, 'orphan blob', b.size);
  for (const f of plan.files)
    bump(
      byReason,
      f.reason === 'incomplete'
        ? 'partial download'
        : f.reason === 'broken-link'
          ? 'broken link'
          : 'leftover temp file',
      f.size,
    );
  for (const [what, { n, bytes }] of byReason) lines.push(`  ${n} ${what}${n > 1 ? 's' : ''}  ${formatBytes(bytes)}`);
  return lines;
}

function bump(m: Map<string, { n: number; bytes: number }>, key: string, bytes: number): void {
  const e = m.get(key) ?? { n: 0, bytes: 0 };
  e.n++;
  e.bytes += bytes;
  m.set(key, e);
}

function isEmpty(report: DeleteReport): boolean {
  const p = report.plan;
  return p.repos.length + p.revisions.length + p.blobs.length + p.files.length === 0;
}

export interface DeleteFlags {
  dryRun?: boolean;
  yes?: boolean;
}

/**
 * Shows a dry-run report and decides whether to go on: `--dry-run` stops here, `--yes` goes on,
 * a terminal is asked, anything else (a script, CI) is refused with a hint.
 */
export async function confirmDeletion(
  ctx: CommandContext,
  report: DeleteReport,
  flags: DeleteFlags,
  verb: string,
): Promise<boolean> {
  for (const s of report.plan.skipped) ctx.out.info(`skipping ${s.what}: ${s.reason}`);
  if (isEmpty(report)) {
    if (ctx.flags.json)
      ctx.out.json({ dryRun: !!flags.dryRun, deleted: [], freedBytes: 0, skipped: report.plan.skipped });
    else ctx.out.result('Nothing to remove.');
    return false;
  }
  if (flags.dryRun) {
    if (ctx.flags.json) ctx.out.json(jsonReport(report));
    else {
      ctx.out.result(`Would ${verb}:`);
      for (const l of describeDeletion(report)) ctx.out.result(l);
      ctx.out.result(`Would free ${formatBytes(report.freedBytes)}.`);
    }
    return false;
  }
  if (flags.yes) return true;
  if (!(ctx.io.isTTY && process.stdin.isTTY)) {
    throw new UsageError(`Refusing to ${verb} without confirmation (not a terminal)`, {
      hint: 'Add --yes to confirm, or --dry-run to see what would be removed.',
    });
  }
  ctx.io.stderr.write(
    `About to ${verb}:\n${describeDeletion(report).join('\n')}\nThis frees ${formatBytes(report.freedBytes)}.\n`,
  );
  const rl = createInterface({ input: process.stdin, output: ctx.io.stderr });
  try {
    const answer = await rl.question('Proceed? [y/N] ');
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export function jsonReport(report: DeleteReport): Record<string, unknown> {
  const p = report.plan;
  return {
    dryRun: report.dryRun,
    freedBytes: report.freedBytes,
    repos: p.repos.map((r) => ({ repo: r.repo, path: r.path, size: r.size })),
    revisions: p.revisions.map((r) => ({ repo: r.repo, commit: r.commit, refs: r.refs, path: r.path, size: r.size })),
    blobs: p.blobs.map((b) => ({ repo: b.repo, path: b.path, size: b.size, reason: b.reason })),
    files: p.files,
    deleted: report.deleted,
    skipped: report.skipped,
    errors: report.errors,
  };
}

/** After a real deletion: what went, what was left alone and why. Exit 3 when some deletions failed. */
export function printDeleteResult(ctx: CommandContext, report: DeleteReport): number {
  for (const s of report.skipped) ctx.out.warn(`left ${s.what}: ${s.reason}`);
  for (const e of report.errors) ctx.out.warn(`could not remove ${e.path}: ${e.message}`);
  if (ctx.flags.json) ctx.out.json(jsonReport(report));
  else ctx.out.result(`Removed ${report.deleted.length} item(s), freed ${formatBytes(report.freedBytes)}.`);
  return report.errors.length > 0 ? 3 : 0;
}
