// `hubcache init`: creates an empty hubcache.json here (or at --manifest).
import path from 'node:path';
import { Command } from 'commander';
import type { CommandRunner } from '../runner.js';

// The file name, spelled here too so the help text does not load the manifest code.
const MANIFEST_NAME = 'hubcache.json';

export function initCommand(run: CommandRunner): Command {
  return new Command('init')
    .option('--manifest <file>', `where to create it (default: ./${MANIFEST_NAME})`)
    .addHelpText('after', '\nThen: hubcache add org/name, hubcache install.')
    .action(async (_o: unknown, cmd: Command) =>
      run(cmd, async (ctx, flags: { manifest?: string }) => {
        const { initManifest } = await import('../../manifest/manifest.js');
        const file = await initManifest(path.resolve(flags.manifest ?? '.'));
        if (ctx.flags.json) ctx.out.json({ manifest: file });
        else ctx.out.result(file);
        ctx.out.info('next: hubcache add org/name, then hubcache install');
        return 0;
      }),
    );
}
