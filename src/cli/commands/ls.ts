// `hubcache ls [REPO]`: what the cache holds, both hubs and layouts (like `hf cache ls`).
import { Command } from 'commander';
import type { CachedRepo, CachedRevision } from '../../care/model.js';
import type { requireTargets } from '../../care/select.js';
import { age, formatTable, printWarnings, repeatable } from '../care-output.js';
import type { CommandContext } from '../context.js';
import type { CommandRunner } from '../runner.js';
import { formatBytes } from '../../util/format.js';

interface LsFlags {
  sort?: string;
  filter?: string[];
  revisions?: boolean;
  limit?: string;
}

export function lsCommand(run: CommandRunner): Command {
  return new Command('ls')
    .argument('[repo]', 'show one repo: org/name[@revision], modelscope:org/name, datasets/org/name')
    .option('--sort <key>', 'name, size, accessed or modified, optionally :asc or :desc', 'name')
    .option(
      '-f, --filter <expr>',
      'keep rows where key<op>value holds (repeatable): size>1GB, accessed>7d, modified<1d, type=model, hub=modelscope, refs=main',
      repeatable,
    )
    .option('--revisions', 'one row per revision')
    .option('--limit <n>', 'at most this many rows')
    .addHelpText(
      'after',
      `
Sizes count blobs shared between revisions once; partial downloads and orphan blobs are not
counted but reported as warnings on stderr (see \`hubcache prune\`).

Examples:
  hubcache ls
  hubcache ls --sort size --filter "size>1GB"
  hubcache ls --filter "accessed>30d" --filter hub=hf
  hubcache ls --revisions --filter refs=main
  hubcache ls org/name              # its revisions and files
  hubcache ls --json`,
    )
    .action(async (repoArg: string | undefined, _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: LsFlags) => {
        const [{ listRows, rowsDiskBytes }, { requireTargets }] = await Promise.all([
          import('../../care/list.js'),
          import('../../care/select.js'),
        ]);
        const scan = await ctx.cache.scan();
        if (repoArg) {
          const selections = requireTargets(scan, [repoArg], defaultsOf(ctx));
          const keys = new Set(selections.map((s) => s.repo.key));
          printWarnings(
            ctx,
            scan.warnings.filter((w) => w.repo !== undefined && keys.has(w.repo)),
          );
          return showRepo(ctx, selections);
        }
        printWarnings(ctx, scan.warnings);
        const rows = listRows(scan, {
          revisions: !!flags.revisions,
          filters: flags.filter ?? [],
          sort: flags.sort ?? 'name',
          ...(flags.limit !== undefined ? { limit: Number(flags.limit) } : {}),
        });
        if (ctx.flags.json) {
          const size = await rowsDiskBytes(scan.repos.map((repo) => ({ repo })));
          ctx.out.json({
            roots: scan.roots,
            size,
            rows: rows.map((r) =>
              r.revision ? { ...repoSummary(r.repo), revision: revisionJson(r.revision) } : repoJson(r.repo),
            ),
          });
          return 0;
        }
        if (rows.length === 0) {
          ctx.out.result(flags.revisions ? 'No cached revisions found.' : 'No cached repositories found.');
          return 0;
        }
        if (flags.revisions) {
          const table = rows.map(({ repo, revision: v }) => [
            repo.hub,
            repo.type,
            repo.id,
            v!.commit,
            v!.refs.join(',') || '(detached)',
            String(v!.fileCount),
            formatBytes(v!.size),
            age(v!.lastAccessedMs),
            age(v!.lastModifiedMs),
          ]);
          ctx.out.result(
            formatTable(
              ['HUB', 'TYPE', 'ID', 'REVISION', 'REFS', 'FILES', 'SIZE', 'LAST ACCESSED', 'LAST MODIFIED'],
              table,
              new Set([5, 6]),
            ),
          );
        } else {
          const table = rows.map(({ repo }) => [
            repo.hub,
            repo.type,
            repo.id,
            Object.keys(repo.refs).sort().join(',') || '-',
            String(repo.revisions.length),
            String(repo.fileCount),
            formatBytes(repo.size),
            age(repo.lastAccessedMs),
            age(repo.lastModifiedMs),
          ]);
          ctx.out.result(
            formatTable(
              ['HUB', 'TYPE', 'ID', 'REFS', 'REVISIONS', 'FILES', 'SIZE', 'LAST ACCESSED', 'LAST MODIFIED'],
              table,
              new Set([4, 5, 6]),
            ),
          );
        }
        const repos = new Set(rows.map((r) => r.repo));
        const revisions = flags.revisions ? rows.length : [...repos].reduce((n, r) => n + r.revisions.length, 0);
        const bytes = await rowsDiskBytes(rows);
        ctx.out.result(`\n${repos.size} repo(s), ${revisions} revision(s), ${formatBytes(bytes)} on disk.`);
        return 0;
      }),
    );
}

function defaultsOf(ctx: CommandContext) {
  return {
    ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
    ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
  };
}

function showRepo(ctx: CommandContext, selections: ReturnType<typeof requireTargets>): number {
  if (ctx.flags.json) {
    ctx.out.json({
      repos: selections.map((s) => ({
        ...repoJson(s.repo),
        revisions: s.revisions.map((r) => ({ ...revisionJson(r), files: r.files, missing: r.missing })),
      })),
    });
    return 0;
  }
  for (const { repo, revisions } of selections) {
    ctx.out.result(
      `${repo.key}  (${repo.hub}, ${repo.type}, ${repo.layout} layout)  ${formatBytes(repo.size)}  ${repo.path}`,
    );
    for (const rev of revisions) {
      ctx.out.result(
        `\n  revision ${rev.commit}  ${rev.refs.length ? `[${rev.refs.join(', ')}]` : '(detached)'}  ${rev.fileCount} files, ${formatBytes(rev.size)}, modified ${age(rev.lastModifiedMs)}`,
      );
      const rows = rev.files.map((f) => [`    ${f.path}`, formatBytes(f.size), age(f.lastAccessedMs)]);
      for (const m of rev.missing) rows.push([`    ${m}`, 'MISSING', '-']);
      if (rows.length > 0) ctx.out.result(formatTable(['    FILE', 'SIZE', 'LAST ACCESSED'], rows, new Set([1])));
    }
  }
  return 0;
}

function repoSummary(r: CachedRepo): Record<string, unknown> {
  return { key: r.key, hub: r.hub, type: r.type, id: r.id, layout: r.layout, path: r.path };
}

function repoJson(r: CachedRepo): Record<string, unknown> {
  return {
    ...repoSummary(r),
    refs: r.refs,
    revisions: r.revisions.length,
    files: r.fileCount,
    size: r.size,
    lastAccessed: new Date(r.lastAccessedMs).toISOString(),
    lastModified: new Date(r.lastModifiedMs).toISOString(),
  };
}

function revisionJson(v: CachedRevision): Record<string, unknown> {
  return {
    commit: v.commit,
    refs: v.refs,
    path: v.path,
    files: v.fileCount,
    size: v.size,
    lastAccessed: new Date(v.lastAccessedMs).toISOString(),
    lastModified: new Date(v.lastModifiedMs).toISOString(),
  };
}
