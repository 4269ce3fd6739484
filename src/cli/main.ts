// CLI entry: parses flags, builds the context, runs one command, maps errors to exit codes.
// Commands are thin: all logic lives in the library (Cache and friends).
import { Command, CommanderError, Option } from 'commander';
import { ExitCode } from '../errors.js';
import { parseRepoRef } from '../hubs/repo-ref.js';
import { VERSION } from '../version.js';
import { allOpts, makeContext, type CliIo, type CommandContext, type GlobalFlags } from './context.js';
import { downloadCommand } from './commands/download.js';
import { importCommand } from './commands/import.js';
import { initCommand } from './commands/init.js';
import { addCommand } from './commands/add.js';
import { lockCommand } from './commands/lock.js';
import { installCommand } from './commands/install.js';
import { outdatedCommand } from './commands/outdated.js';
import { updateCommand } from './commands/update.js';
import { pathCommand } from './commands/path.js';
import { lsCommand } from './commands/ls.js';
import { verifyCommand } from './commands/verify.js';
import { statusCommand } from './commands/status.js';
import { rmCommand } from './commands/rm.js';
import { pruneCommand } from './commands/prune.js';
import { gcCommand } from './commands/gc.js';
import { doctorCommand } from './commands/doctor.js';
import { packCommand } from './commands/pack.js';
import { unpackCommand } from './commands/unpack.js';
import { dedupCommand } from './commands/dedup.js';
import { serveCommand } from './commands/serve.js';
import { prefetchCommand } from './commands/prefetch.js';

export type CommandRunner = <F>(
  cmd: Command,
  body: (ctx: CommandContext, flags: F) => Promise<number>,
  opts?: { hubFromRepo?: string },
) => Promise<void>;

export async function main(argv: string[], ioIn: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = {
    stdout: ioIn.stdout ?? process.stdout,
    stderr: ioIn.stderr ?? process.stderr,
    env: ioIn.env ?? process.env,
    isTTY: ioIn.isTTY ?? !!process.stderr.isTTY,
  };
  let exitCode: number = ExitCode.ok;
  const ac = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(ExitCode.interrupted);
    io.stderr.write('\nInterrupted: stopping (partial downloads are kept and resume next time). Press Ctrl-C again to quit now.\n');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const run: CommandRunner = async (cmd, body, opts) => {
    const flags = allOpts<GlobalFlags & Record<string, unknown>>(cmd);
    if (opts?.hubFromRepo && !flags.hub) {
      try {
        flags.hub = parseRepoRef(opts.hubFromRepo).hub;
      } catch {
        /* reported by the command itself */
      }
    }
    const ctx = makeContext(flags, io, ac.signal);
    try {
      exitCode = await body(ctx, flags as never);
    } catch (err) {
      exitCode = ctx.out.error(err);
    }
  };

  const program = new Command('hubcache')
    .version(VERSION)
    .description('Download, cache and verify model weights from the Hugging Face Hub and ModelScope, sharing the official clients\' cache.')
    .option('--cache-dir <dir>', 'cache folder (default: HF_HUB_CACHE / HF_HOME/hub, MODELSCOPE_CACHE)')
    .option('--endpoint <url>', 'hub URL (default: HF_ENDPOINT or https://huggingface.co; MODELSCOPE_ENDPOINT/MODELSCOPE_DOMAIN for ModelScope)')
    .option('--token <token>', 'access token (default: HF_TOKEN or the token file; MODELSCOPE_API_TOKEN)')
    .option('--offline', 'use the cache only, never the network (also HF_HUB_OFFLINE=1)')
    .addOption(new Option('--hub <hub>', 'hub of repos given without a prefix').choices(['hf', 'modelscope']))
    .addOption(new Option('--repo-type <type>', 'repo type').choices(['model', 'dataset', 'space']))
    .option('--json', 'machine-readable output (results on stdout, events on stderr)')
    .option('-q, --quiet', 'no progress, only results and errors')
    .enablePositionalOptions(false)
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .addHelpText(
      'after',
      `
Examples:
  hubcache download org/name                          # whole repo into the HF cache; prints its path
  hubcache download modelscope:org/name --include "*.safetensors"
  hubcache ls                                         # what is cached (both hubs)
  hubcache verify org/name --fix                      # re-hash, re-download what is damaged
  hubcache doctor                                     # what is wrong with this setup, and how to fix it
  hubcache init && hubcache add org/name && hubcache install   # pin models for a project

Run \`hubcache <command> --help\` for a command's flags and examples. Exit codes: see the README.`,
    )
    .exitOverride();
  program.addCommand(downloadCommand(run));
  program.addCommand(importCommand(run));
  program.addCommand(initCommand(run));
  program.addCommand(addCommand(run));
  program.addCommand(lockCommand(run));
  program.addCommand(installCommand(run));
  program.addCommand(outdatedCommand(run));
  program.addCommand(updateCommand(run));
  program.addCommand(pathCommand(run));
  program.addCommand(lsCommand(run));
  program.addCommand(verifyCommand(run));
  program.addCommand(statusCommand(run));
  program.addCommand(rmCommand(run));
  program.addCommand(pruneCommand(run));
  program.addCommand(gcCommand(run));
  program.addCommand(doctorCommand(run));
  program.addCommand(packCommand(run));
  program.addCommand(unpackCommand(run));
  program.addCommand(dedupCommand(run));
  program.addCommand(serveCommand(run));
  program.addCommand(prefetchCommand(run));
  program.commands.forEach((c) => c.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) }));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      exitCode = err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    } else throw err;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  return exitCode;
}
