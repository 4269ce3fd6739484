// The one thing a command module needs from the CLI entry: a way to run its body with a context
// (flags → Cache, Output, Ctrl-C signal) and have errors mapped to exit codes. Its own module, so
// commands do not import cli/main.ts (which loads them).
import type { Command } from 'commander';
import type { CommandContext, ContextOptions } from './context.js';

export type CommandRunner = <F>(
  cmd: Command,
  body: (ctx: CommandContext, flags: F) => Promise<number>,
  opts?: {
    hubFromRepo?: string;
    /** The command ends itself within its own bound after SIGINT/SIGTERM (no 1 s cut, no download notice). */
    ownShutdown?: boolean;
  } & ContextOptions,
) => Promise<void>;

/** What a command module exports: it builds its commander Command (name, arguments, options, action). */
export type CommandFactory = (run: CommandRunner) => Command;
