// `hubcache download REPO [FILES...]`: flags follow `hf download` (and `modelscope download`).
import { Command, Option } from 'commander';
import { UsageError } from '../../errors.js';
import { parseRepoTarget } from '../../hubs/repo-ref.js';
import type { DownloadOptions } from '../../download/types.js';
import type { TransferOptions } from '../../transfer/types.js';
import { LINK_MODES, type LinkMode } from '../../layouts/link-mode.js';
import { formatBytes } from '../../util/format.js';
import type { CommandRunner } from '../runner.js';
import { REPO_ARGUMENT_HELP, withPatternOptions } from '../options.js';
import { checkLocalDir, checkRevision, parseCount } from '../validate.js';

interface DownloadFlags {
  revision?: string;
  include?: string[];
  exclude?: string[];
  localDir?: string;
  dryRun?: boolean;
  forceDownload?: boolean;
  maxWorkers?: string;
  connections?: string;
  msLayout?: 'v1' | 'v2';
  linkMode?: LinkMode;
  model?: string;
  local_dir?: string;
  resumeDownload?: boolean;
}

export function downloadCommand(run: CommandRunner): Command {
  return withPatternOptions(
    new Command('download')
      .argument('[repo]', REPO_ARGUMENT_HELP)
      .argument('[files...]', 'only these files (a name ending in / means a whole folder)')
      .option('--revision <rev>', 'branch, tag, refs/pr/N or commit (default: main, or master on ModelScope)'),
  )
    .option('--local-dir <dir>', 'write plain files here (like `hf download --local-dir`), with metadata for re-runs')
    .option('--model <repo>', 'the repo, as `modelscope download --model org/name [files...]` spells it')
    .addOption(new Option('--local_dir <dir>', 'same as --local-dir (modelscope CLI spelling)').hideHelp())
    .addOption(
      new Option('--resume-download', 'accepted for huggingface-cli compatibility; resuming is automatic').hideHelp(),
    )
    .option('--dry-run', 'show what would be downloaded, with sizes; change nothing')
    .option('--force-download', 'download again even if cached')
    .addOption(new Option('--max-workers <n>', 'files downloaded at once').default('8'))
    .option(
      '--connections <n>',
      'most connections open at once, over all files (default 64); a large file gets as many as raise its speed',
    )
    .addOption(
      new Option(
        '--link-mode <mode>',
        'with --local-dir, how files already cached get there: copy (default), reflink, hardlink, symlink, or auto (reflink, else hard link, else copy); hard-linked files share bytes with the cache: do not edit them in place',
      ).choices([...LINK_MODES]),
    )
    .addOption(
      new Option(
        '--ms-layout <layout>',
        'ModelScope layout: v1 (legacy models/org/name___ + .msc, read by every modelscope version) or v2 (≥1.38 snapshots/<rev>/)',
      ).choices(['v1', 'v2']),
    )
    .addHelpText(
      'after',
      `
Prints the snapshot folder (or --local-dir) on stdout, so MODEL=$(hubcache download org/name) works.

Examples:
  hubcache download openai-community/gpt2
  hubcache download org/name config.json model.safetensors --revision v1.0
  hubcache download org/name --include "*.safetensors" --include "*.json" --exclude "*fp32*"
  hubcache download org/name --local-dir ./models/name
  hubcache download org/name --local-dir ./models/name --link-mode auto   # no second copy of cached files
  hubcache download org/name --dry-run
  HF_HUB_OFFLINE=1 hubcache download org/name      # cache only, no network`,
    )
    .action(async (repoPositional: string | undefined, rest: string[], _o: unknown, cmd: Command) => {
      // With --model (modelscope's spelling) every positional argument is a file.
      const model = cmd.opts<DownloadFlags>().model;
      const repoArg = model ?? repoPositional;
      const files = model !== undefined && repoPositional !== undefined ? [repoPositional, ...rest] : rest;
      return run<DownloadFlags>(
        cmd,
        async (ctx, flags) => {
          if (repoArg === undefined)
            throw new UsageError("missing required argument 'repo'", {
              hint: 'hubcache download org/name (or --model org/name)',
            });
          if (flags.revision !== undefined) checkRevision(flags.revision);
          const { repo, pathInRepo } = parseRepoTarget(repoArg, {
            ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
            ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
            ...(flags.revision ? { revision: flags.revision } : {}),
          });
          if (repo.revision !== undefined) checkRevision(repo.revision, 'revision');
          const localDir = flags.localDir ?? flags.local_dir;
          if (localDir !== undefined) checkLocalDir(localDir);
          if (flags.resumeDownload)
            ctx.out.info('note: --resume-download is not needed: interrupted downloads always resume.');
          const opts: DownloadOptions = {
            repo,
            signal: ctx.signal,
            maxWorkers: parseCount('--max-workers', flags.maxWorkers ?? '8'),
          };
          // hf://org/name@rev/sub/file (or sub/ for a folder) names what to fetch, as the files would.
          if (pathInRepo) files.push(pathInRepo);
          if (files.length > 0) opts.files = files;
          else {
            if (flags.include) opts.include = flags.include;
            if (flags.exclude) opts.exclude = flags.exclude;
          }
          if (localDir !== undefined) opts.localDir = localDir;
          if (flags.dryRun) opts.dryRun = true;
          if (flags.forceDownload) opts.forceDownload = true;
          if (flags.msLayout) opts.msLayout = flags.msLayout;
          if (flags.linkMode && localDir === undefined)
            throw new UsageError('--link-mode needs --local-dir', {
              hint: 'It says how cached files get into the --local-dir folder; the cache itself always links snapshots to blobs.',
            });
          if (flags.linkMode) opts.linkMode = flags.linkMode;
          const progress = ctx.out.progress();
          opts.onProgress = (e) => progress.onEvent(e);
          try {
            const res = await ctx.cache.download(opts);
            progress.stop();
            if (flags.dryRun) {
              const fetch = res.files.filter((f) => f.status === 'planned' || f.status === 'copied');
              if (ctx.flags.json)
                ctx.out.json({
                  path: res.path,
                  commit: res.commit,
                  files: res.files,
                  downloadBytes: fetch.reduce((s, f) => s + f.size, 0),
                });
              else {
                for (const f of res.files) {
                  const from = f.reusedFrom ? `  (${f.status} from ${f.reusedFrom})` : '';
                  const what = f.status === 'planned' ? 'download' : f.status.padEnd(8);
                  ctx.out.result(`${what}  ${formatBytes(f.size).padStart(9)}  ${f.path}${from}`);
                }
                ctx.out.result(
                  `total: ${fetch.length} of ${res.files.length} files to fetch, ${formatBytes(fetch.reduce((s, f) => s + f.size, 0))}`,
                );
              }
              return 0;
            }
            if (ctx.flags.json)
              ctx.out.json({
                path: res.path,
                commit: res.commit,
                revision: res.revision,
                downloadedBytes: res.downloadedBytes,
                usedCacheFallback: res.usedCacheFallback,
                files: res.files,
                ...(res.savedBytes !== undefined ? { savedBytes: res.savedBytes } : {}),
              });
            else {
              for (const f of res.files.filter((x) => x.reusedFrom)) {
                ctx.out.info(`${f.path}: ${f.status} from ${f.reusedFrom} (same sha256), not downloaded`);
              }
              if (res.savedBytes)
                ctx.out.info(
                  `${formatBytes(res.savedBytes)} not copied (--link-mode ${flags.linkMode ?? 'copy'}: ${[...new Set(res.files.map((f) => f.linkMethod).filter(Boolean))].join(', ')})`,
                );
              ctx.out.result(res.path);
            }
            return 0;
          } finally {
            progress.stop();
          }
        },
        { ...(repoArg !== undefined ? { hubFromRepo: repoArg } : {}), transfer: connectionsFlag },
      );
    });
}

/** `--connections N`: N ranges per large file, and N connections in all. */
function connectionsFlag(flags: Record<string, unknown>): Partial<TransferOptions> | undefined {
  if (typeof flags.connections !== 'string') return undefined;
  const n = parseCount('--connections', flags.connections, { max: 256 });
  return { connections: n, maxConnections: n };
}
