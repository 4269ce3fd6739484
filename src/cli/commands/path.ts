// `hubcache path ALIAS [FILE]`: where an installed model (or one of its files) is, for scripts:
//   python serve.py --model "$(hubcache path llama)"
import { Command } from 'commander';
import type { CommandRunner } from '../runner.js';
import { MANIFEST_OPTION_HELP, projectOptions } from '../project-output.js';

export function pathCommand(run: CommandRunner): Command {
  return new Command('path')
    .argument('<alias>', 'entry of hubcache.json, or the repo id it locks (org/name, modelscope:org/name)')
    .argument('[file]', 'a file of the model, e.g. config.json')
    .option('--manifest <file>', MANIFEST_OPTION_HELP)
    .addHelpText('after', '\nFails (exit 16) when the model is not installed; run `hubcache install` first.')
    .action(async (alias: string, file: string | undefined, _o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: { manifest?: string }) => {
        const p = await ctx.cache.modelPath({
          ...projectOptions(ctx, flags),
          alias,
          ...(file !== undefined ? { file } : {}),
        });
        if (ctx.flags.json) ctx.out.json({ alias, file, path: p });
        else ctx.out.result(p);
        return 0;
      }),
    );
}
