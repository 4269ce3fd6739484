// `hubcache import DIR --repo REPO`: adopt files already on disk into the cache after checking
// them against the hub's hashes. Exit code 1 when a file did not match.
import { Command, Option } from 'commander';
import { ExitCode, UsageError } from '../../errors.js';
import { formatRepoRef, parseRepoRef } from '../../hubs/repo-ref.js';
import type { ImportedFile, ImportMode } from '../../import/import-dir.js';
import { formatBytes } from '../../util/format.js';
import type { CommandRunner } from '../runner.js';

interface ImportFlags {
  repo: string;
  revision?: string;
  copy?: boolean;
  link?: boolean;
  move?: boolean;
  dryRun?: boolean;
  msLayout?: 'v1' | 'v2';
}

function modeOf(flags: ImportFlags): ImportMode {
  const chosen = (['copy', 'link', 'move'] as const).filter((m) => flags[m]);
  if (chosen.length > 1)
    throw new UsageError(`Choose one of --copy, --link, --move (got ${chosen.map((m) => `--${m}`).join(' ')})`);
  return chosen[0] ?? 'auto';
}

function describe(f: ImportedFile, dryRun: boolean): string {
  switch (f.status) {
    case 'adopted':
      return `${dryRun ? 'would adopt' : 'adopted'}  ${f.path} (${f.method ?? 'moved'}, ${formatBytes(f.size)})`;
    case 'cached':
      return `cached   ${f.path}`;
    case 'mismatch':
      return `MISMATCH ${f.path}: ${f.algorithm} expected ${f.expected}, got ${f.actual} (left in place)`;
    case 'missing':
      return `missing  ${f.path}`;
    case 'unverifiable':
      return `skipped  ${f.path} (the hub gives no hash to check it against)`;
  }
}

export function importCommand(run: CommandRunner): Command {
  const cmd = new Command('import')
    .argument('<dir>', 'folder holding the files, laid out by repo path')
    .requiredOption('--repo <repo>', 'the repo they belong to: org/name, hf:org/name, modelscope:org/name')
    .option('--revision <rev>', 'branch, tag (or HF commit) to check against (default: main, or master on ModelScope)')
    .option('--copy', 'copy matching files (the folder stays as it is)')
    .option('--link', 'hard-link matching files (no bytes duplicated; a copy where links are impossible)')
    .option('--move', 'move matching files (a copy across file systems)')
    .option('--dry-run', 'check and report only; change nothing')
    .addOption(
      new Option(
        '--ms-layout <layout>',
        'ModelScope layout to write: v1 (legacy, read by all versions) or v2 (≥1.38)',
      ).choices(['v1', 'v2']),
    )
    .addHelpText(
      'after',
      `
Default: move plain files within one file system (copy across file systems); files that are
symlinks, or that sit in another hub cache (an HF snapshot, a ModelScope model dir), are copied.
Files that do not match are reported and never touched. With --offline the expected hashes come
from the cache (HF trees/<commit>.json, or the files of the ModelScope .msc index).

Examples:
  hubcache import ./Qwen2.5-0.5B --repo modelscope:Qwen/Qwen2.5-0.5B
  hubcache import ~/.cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B/snapshots/<commit> --repo modelscope:Qwen/Qwen2.5-0.5B --link
  hubcache import ./gpt2 --repo openai-community/gpt2 --dry-run`,
    );
  return cmd.action(async (dirArg: string, _o: unknown, c: Command) => {
    const repoArg = c.opts<{ repo?: string }>().repo ?? '';
    await run(
      c,
      async (ctx, flags: ImportFlags) => {
        const repo = parseRepoRef(flags.repo, {
          ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
          ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
          ...(flags.revision ? { revision: flags.revision } : {}),
        });
        const res = await ctx.cache.importDir({
          dir: dirArg,
          repo,
          mode: modeOf(flags),
          ...(flags.dryRun ? { dryRun: true } : {}),
          ...(ctx.flags.offline ? { offline: true } : {}),
          ...(flags.msLayout ? { msLayout: flags.msLayout } : {}),
          signal: ctx.signal,
          onProgress: (e) => {
            if (e.type === 'warning') ctx.out.warn(e.message);
          },
        });
        const count = (s: ImportedFile['status']): number => res.files.filter((f) => f.status === s).length;
        if (ctx.flags.json) {
          ctx.out.json({
            path: res.path,
            commit: res.commit,
            revision: res.revision,
            dryRun: !!flags.dryRun,
            files: res.files,
          });
        } else {
          for (const f of res.files)
            if (f.status !== 'cached' || flags.dryRun) ctx.out.result(describe(f, !!flags.dryRun));
          ctx.out.result(
            `${count('adopted')} ${flags.dryRun ? 'to adopt' : 'adopted'}, ${count('cached')} already cached, ${count('mismatch')} mismatched, ${count('missing')} missing → ${res.path}`,
          );
        }
        const missing = count('missing');
        if (missing > 0)
          ctx.out.info(`hint: \`hubcache download ${formatRepoRef(repo)}\` fetches the ${missing} missing file(s).`);
        return res.hasMismatches ? ExitCode.findings : ExitCode.ok;
      },
      { hubFromRepo: repoArg },
    );
  });
}
