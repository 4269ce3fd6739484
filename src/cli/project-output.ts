// What the project commands (init, add, lock, install, update, outdated, path) share: the
// --manifest flag, the options they pass to the library, and how lock results are printed.
import { formatRepoRef } from '../hubs/repo-ref.js';
import type { LockResult } from '../manifest/lock.js';
import type { FileChanges } from '../manifest/lockfile.js';
import type { ManifestLocation } from '../manifest/manifest.js';
import type { LockedModel } from '../manifest/schema.js';
import { formatBytes } from '../util/format.js';
import type { CommandContext } from './context.js';

export const MANIFEST_OPTION_HELP = 'hubcache.json to use (default: the nearest one in this folder or a parent)';

export function manifestLocation(flags: { manifest?: string }): ManifestLocation {
  return flags.manifest !== undefined ? { manifest: flags.manifest } : {};
}

/** What every project command passes to the library. */
export function projectOptions(ctx: CommandContext, flags: { manifest?: string }) {
  return { signal: ctx.signal, ...manifestLocation(flags) };
}

const short = (commit: string | undefined): string =>
  commit === undefined ? '-' : /^[0-9a-f]{40}$/.test(commit) ? commit.slice(0, 8) : commit;

function entrySummary(m: LockedModel | undefined): string {
  if (!m) return '';
  const files = Object.values(m.files);
  return `${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(files.reduce((s, f) => s + f.size, 0))}`;
}

export function changeLines(c: FileChanges): string[] {
  return [
    ...c.added.map((a) => `  + ${a.path} (${formatBytes(a.size)})`),
    ...c.removed.map((r) => `  - ${r.path} (${formatBytes(r.size)})`),
    ...c.changed.map(
      (x) =>
        `  ~ ${x.path} (${x.oldSize === x.newSize ? formatBytes(x.newSize) : `${formatBytes(x.oldSize)} → ${formatBytes(x.newSize)}`}, ${x.oldHash.slice(0, 12)} → ${x.newHash.slice(0, 12)})`,
    ),
  ];
}

/** One line per entry (and one per changed file), aligned, for lock and update. */
export function printLockResult(
  ctx: CommandContext,
  res: LockResult,
  opts: { showUnchanged: boolean; asInfo?: boolean },
): void {
  // install prints these as side information (its result is the model paths).
  const line = (t: string): void => (opts.asInfo ? ctx.out.info(t) : ctx.out.result(t));
  if (ctx.flags.json) {
    ctx.out.json({ lockFile: res.lockFile, written: res.written, entries: res.entries });
    return;
  }
  const shown = res.entries.filter((e) => opts.showUnchanged || e.status !== 'unchanged');
  const width = Math.max(0, ...shown.map((e) => e.alias.length));
  for (const e of shown) {
    const m = res.lockfile.models[e.alias];
    const what = m ? formatRepoRef({ hub: m.hub, type: m.type, id: m.repo, revision: m.revision }) : '';
    const move =
      e.status === 'removed'
        ? short(e.from)
        : e.from && e.from !== e.to
          ? `${short(e.from)} → ${short(e.to)}`
          : short(e.to);
    line(
      `${e.alias.padEnd(width)}  ${e.status.padEnd(9)}  ${what}  ${move}${m ? `  (${entrySummary(m)})` : ''}`.trimEnd(),
    );
    if (e.changes) for (const l of changeLines(e.changes)) line(l);
  }
  if (shown.length === 0 && !opts.asInfo) ctx.out.info('everything is up to date');
  ctx.out.info(res.written ? `wrote ${res.lockFile}` : `${res.lockFile} unchanged`);
}
