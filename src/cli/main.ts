// CLI entry: parses flags, builds the context, runs one command, maps errors to exit codes.
// Commands are thin: all logic lives in the library (Cache and friends). Only the command being
// run is loaded (see commands/index.ts); the others are listed by name for the help.
import { Command, CommanderError, Help, Option } from 'commander';
import { hubNames } from '../hubs/registry.js';
import { ExitCode } from '../errors.js';
import { parseRepoRef } from '../hubs/repo-ref.js';
import { VERSION } from '../version.js';
import type { Output } from './output.js';
import { allOpts, makeContext, makeOutput, type CliIo, type GlobalFlags } from './context.js';
import { COMMANDS, findCommand } from './commands/index.js';
import type { CommandRunner } from './runner.js';

const GRACE_MS = 1000;

/**
 * Ends the process now, as that signal's default action does (shells report 130 for SIGINT, 143
 * for SIGTERM). Not process.exit(): exit() joins libuv's thread pool, so a pool thread stuck in a
 * system call (Node's recursive mkdir under /proc spins forever) would keep the process alive.
 */
function endBySignal(signal: NodeJS.Signals): never {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  process.exit(ExitCode.interrupted); // not reached: the signal's default action ends the process
}

export async function main(argv: string[], ioIn: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = {
    stdout: ioIn.stdout ?? process.stdout,
    stderr: ioIn.stderr ?? process.stderr,
    env: ioIn.env ?? process.env,
    isTTY: ioIn.isTTY ?? !!process.stderr.isTTY,
    ...((ioIn.columns ?? process.stderr.columns) ? { columns: ioIn.columns ?? process.stderr.columns } : {}),
  };
  let exitCode: number = ExitCode.ok;
  const ac = new AbortController();
  let interrupts = 0;
  // The running command's Output: a notice goes above its live bars instead of being drawn over.
  let liveOut: Output | undefined;
  // A command that bounds its own shutdown (serve drains open streams for --drain-timeout).
  let ownShutdown = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) endBySignal(signal);
    ac.abort();
    if (ownShutdown) return;
    const text =
      'Interrupted: stopping (partial downloads are kept and resume next time). Press Ctrl-C again to quit now.';
    if (liveOut) liveOut.notice(text);
    else io.stderr.write(`\n${text}\n`);
    // The command stops and cleans up within milliseconds; a file-system call that never returns
    // (a hung mount, a FIFO where a file should be) or a socket left open must not keep the
    // process alive after that, so it ends GRACE_MS after the signal at the latest. Partial data
    // is crash-safe (kill -9 leaves a valid cache), so cutting a slow cleanup short loses nothing.
    setTimeout(() => endBySignal(signal), GRACE_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const run: CommandRunner = async (cmd, body, opts) => {
    const flags = allOpts<GlobalFlags & Record<string, unknown>>(cmd);
    if (opts?.hubFromRepo && !flags.hub) {
      try {
        flags.hub = parseRepoRef(opts.hubFromRepo).hub;
      } catch {
        /* reported by the command itself */
      }
    }
    const out = makeOutput(flags, io);
    liveOut = out;
    ownShutdown = !!opts?.ownShutdown;
    try {
      const ctx = makeContext(flags, io, ac.signal, out, opts);
      try {
        exitCode = await body(ctx, flags as never);
      } finally {
        await ctx.cache.close();
      }
    } catch (err) {
      exitCode = out.error(err);
    }
  };

  const program = new Command('hubcache')
    .version(VERSION)
    .description(
      "Download, cache and verify model weights from the Hugging Face Hub and ModelScope, sharing the official clients' cache.",
    )
    .option('--cache-dir <dir>', 'cache folder (default: HF_HUB_CACHE / HF_HOME/hub, MODELSCOPE_CACHE)')
    .addOption(new Option('--cache_dir <dir>', 'same as --cache-dir (modelscope CLI spelling)').hideHelp())
    .option(
      '--endpoint <url>',
      "hub URL for the repo's hub, or hf=URL / modelscope=URL (repeatable; default: HF_ENDPOINT or " +
        'https://huggingface.co, MODELSCOPE_ENDPOINT/MODELSCOPE_DOMAIN)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--token <token>', 'access token (default: HF_TOKEN or the token file; MODELSCOPE_API_TOKEN)')
    .option('--offline', 'use the cache only, never the network (also HF_HUB_OFFLINE=1)')
    .addOption(new Option('--hub <hub>', 'hub of repos given without a prefix').choices(hubNames()))
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
  const wanted = findCommand(commandName(program, argv) ?? '');
  for (const entry of COMMANDS) {
    // Commands not run get a stand-in that only names and describes them for the help.
    const cmd = entry === wanted ? (await entry.load())(run) : new Command(entry.name);
    cmd.description(entry.description).aliases(entry.aliases ?? []);
    program.addCommand(cmd);
  }
  program.configureHelp({
    subcommandTerm: (cmd) => {
      const entry = findCommand(cmd.name());
      return entry
        ? [cmd.name() + (entry.aliases ? `|${entry.aliases[0]}` : ''), entry.usage].join(' ')
        : new Help().subcommandTerm(cmd);
    },
  });
  program.commands.forEach((c) =>
    c.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) }),
  );

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      exitCode = err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    } else throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}

/** The command argv names (`hubcache [global options] NAME ...`, or `hubcache help NAME`), if any. */
function commandName(program: Command, argv: string[]): string | undefined {
  const operands: string[] = [];
  for (let i = 0; i < argv.length && operands.length < 2; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      operands.push(...argv.slice(i + 1, i + 3));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      operands.push(arg);
      if (arg !== 'help') break;
      continue;
    }
    // A global option that takes a value (`--cache-dir DIR`) also consumes the next argument.
    const opt = program.options.find((o) => o.long === arg || o.short === arg);
    if (opt?.required || opt?.optional) i++;
  }
  return operands[0] === 'help' ? operands[1] : operands[0];
}
