// `hubcache install`: downloads exactly what hubcache.lock pins (locking first if the manifest
// changed, unless --frozen), then checks every file's size and hash against the lock.
import { Command } from 'commander';
import { formatBytes } from '../../util/format.js';
import type { CommandRunner } from '../runner.js';
import { MANIFEST_OPTION_HELP, printLockResult, projectOptions } from '../project-output.js';
import { parseCount } from '../validate.js';

interface InstallFlags {
  manifest?: string;
  frozen?: boolean;
  hash?: boolean;
  maxWorkers?: string;
}

export function installCommand(run: CommandRunner): Command {
  return new Command('install')
    .option('--manifest <file>', MANIFEST_OPTION_HELP)
    .option('--frozen', 'fail if hubcache.lock does not match hubcache.json (for CI), instead of re-locking')
    .option('--no-hash', 'for files already on disk, check sizes and blob names only instead of hashing them')
    .option('--max-workers <n>', 'files downloaded at once per model', '8')
    .addHelpText(
      'after',
      `
A fully cached install makes no network request. Every locked file is hashed afterwards, so a
corrupted or tampered file fails the install (exit 18) with its path and both hashes.
--offline (global flag) installs from the cache only.

Examples:
  hubcache install
  hubcache install --frozen          # CI: the lock must be up to date
  hubcache --offline install`,
    )
    .action(async (_o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: InstallFlags) => {
        const progress = ctx.out.progress();
        try {
          const res = await ctx.cache.install({
            ...projectOptions(ctx, flags),
            ...(flags.frozen ? { frozen: true } : {}),
            ...(ctx.flags.offline ? { offline: true } : {}),
            hash: flags.hash !== false,
            maxWorkers: parseCount('--max-workers', flags.maxWorkers ?? '8'),
            onProgress: (e) => {
              if (e.type === 'verify-start') {
                progress.stop();
                if (e.files > 0 && flags.hash !== false)
                  ctx.out.info(`verifying ${e.files} files (${formatBytes(e.bytes)})`);
              } else if (e.type !== 'verify-done') progress.onEvent(e);
            },
          });
          progress.stop();
          if (ctx.flags.json) {
            ctx.out.json({
              ...res,
              lock: res.lock
                ? { lockFile: res.lock.lockFile, written: res.lock.written, entries: res.lock.entries }
                : undefined,
            });
            return 0;
          }
          if (res.lock) printLockResult(ctx, res.lock, { showUnchanged: false, asInfo: true });
          const width = Math.max(0, ...res.models.map((m) => m.alias.length));
          for (const m of res.models) ctx.out.result(`${m.alias.padEnd(width)}  ${m.path}`);
          ctx.out.info(
            `${res.models.length} model(s) installed: ${formatBytes(res.downloadedBytes)} downloaded, ${res.hashedFiles} files (${formatBytes(res.hashedBytes)}) verified in ${res.seconds.toFixed(1)} s`,
          );
          return 0;
        } finally {
          progress.stop();
        }
      }),
    );
}
