// Flags that several commands share, defined once so they read and parse the same everywhere.
import type { Command } from 'commander';

/** The help of a command's REPO argument (download, add). */
export const REPO_ARGUMENT_HELP =
  'org/name, hf:org/name@rev, modelscope:org/name, datasets/org/name, hf://datasets/org/name@rev';

/** `--include a,b --include c` → ['a', 'b', 'c'] (repeatable and comma-separated, like modelscope's CLI). */
export const collectPatterns = (v: string, prev: string[] = []): string[] => [
  ...prev,
  ...v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

/** `--include` / `--exclude` with huggingface_hub's pattern semantics. */
export function withPatternOptions(cmd: Command): Command {
  return cmd
    .option(
      '--include <pattern>',
      'only files matching this glob (repeatable, or comma-separated); * matches / too',
      collectPatterns,
    )
    .option('--exclude <pattern>', 'skip files matching this glob (repeatable, or comma-separated)', collectPatterns);
}
