// `hubcache add REPO`: adds (or updates) one entry of hubcache.json. Nothing is downloaded:
// `hubcache install` locks and fetches it.
import { Command } from 'commander';
import { parseRepoRef } from '../../hubs/repo-ref.js';
import type { CommandRunner } from '../runner.js';
import { REPO_ARGUMENT_HELP, withPatternOptions } from '../options.js';
import { manifestLocation, MANIFEST_OPTION_HELP } from '../project-output.js';

interface AddFlags {
  as?: string;
  revision?: string;
  include?: string[];
  exclude?: string[];
  localDir?: string;
  manifest?: string;
}

export function addCommand(run: CommandRunner): Command {
  return withPatternOptions(
    new Command('add')
      .argument('<repo>', REPO_ARGUMENT_HELP)
      .option('--as <alias>', 'name of the entry (default: the repo name)')
      .option('--revision <rev>', 'branch, tag or commit to follow (default: main, master on ModelScope)'),
  )
    .option('--local-dir <dir>', 'install as plain files in this folder instead of the shared cache')
    .option('--manifest <file>', MANIFEST_OPTION_HELP)
    .addHelpText(
      'after',
      `
Examples:
  hubcache add openai-community/gpt2 --include "*.safetensors" --include "*.json"
  hubcache add Qwen/Qwen2.5-0.5B --as qwen --revision v1.0
  hubcache add modelscope:damo/nlp_model --local-dir ./models/nlp`,
    )
    .action(async (repoArg: string, _o: unknown, cmd: Command) =>
      run(
        cmd,
        async (ctx, flags: AddFlags) => {
          const { addModel, loadManifest } = await import('../../manifest/manifest.js');
          const repo = parseRepoRef(repoArg, {
            ...(ctx.flags.hub ? { hub: ctx.flags.hub } : {}),
            ...(ctx.flags.repoType ? { type: ctx.flags.repoType } : {}),
          });
          const manifest = await loadManifest(manifestLocation(flags));
          const res = await addModel(manifest, {
            repo,
            ...(flags.as ? { alias: flags.as } : {}),
            ...(flags.revision ? { revision: flags.revision } : {}),
            ...(flags.include ? { include: flags.include } : {}),
            ...(flags.exclude ? { exclude: flags.exclude } : {}),
            ...(flags.localDir ? { localDir: flags.localDir } : {}),
          });
          if (ctx.flags.json)
            ctx.out.json({ manifest: manifest.file, alias: res.alias, entry: res.model, replaced: res.replaced });
          else {
            ctx.out.result(res.alias);
            ctx.out.info(
              `${res.replaced ? 'updated' : 'added'} "${res.alias}" (${repoArg}) in ${manifest.file}; run \`hubcache install\``,
            );
          }
          return 0;
        },
        { hubFromRepo: repoArg },
      ),
    );
}
