// Every command, by name, with only what the top-level help shows; a command's module (and the
// library code it needs) is loaded when that command runs, as npm's lib/commands does: a
// `download` loads neither cache-care nor manifest code.
import type { CommandFactory } from '../runner.js';

export interface CommandEntry {
  name: string;
  aliases?: string[];
  /** What the help lists after the name: `[options]` and the arguments, as commander prints them. */
  usage: string;
  description: string;
  load: () => Promise<CommandFactory>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'download',
    usage: '[options] [repo] [files...]',
    description: 'Download a repo (or some files of it) into the cache, or into a plain folder with --local-dir',
    load: async () => (await import('./download.js')).downloadCommand,
  },
  {
    name: 'import',
    usage: '[options] <dir>',
    description:
      'Adopt files already on disk (a copied model folder, another cache) into the cache, after checking their hashes',
    load: async () => (await import('./import.js')).importCommand,
  },
  {
    name: 'init',
    usage: '[options]',
    description: 'Create an empty hubcache.json in this folder (the list of models this project needs)',
    load: async () => (await import('./init.js')).initCommand,
  },
  {
    name: 'add',
    usage: '[options] <repo>',
    description: 'Add a model to hubcache.json (then `hubcache install` locks and downloads it)',
    load: async () => (await import('./add.js')).addCommand,
  },
  {
    name: 'lock',
    usage: '[options]',
    description: 'Pin every model of hubcache.json to an exact commit and its files, in hubcache.lock',
    load: async () => (await import('./lock.js')).lockCommand,
  },
  {
    name: 'install',
    usage: '[options]',
    description: 'Download every model pinned by hubcache.lock and verify it (locks first if hubcache.json changed)',
    load: async () => (await import('./install.js')).installCommand,
  },
  {
    name: 'outdated',
    usage: '[options] [names...]',
    description:
      'List models whose branch or tag moved upstream: hubcache.lock pins in a project, else the cache (exit 1 if any)',
    load: async () => (await import('./outdated.js')).outdatedCommand,
  },
  {
    name: 'update',
    usage: '[options] [aliases...]',
    description: 'Re-lock models to the current head of their branch/tag (default: all) and show what changed',
    load: async () => (await import('./update.js')).updateCommand,
  },
  {
    name: 'path',
    usage: '[options] <alias> [file]',
    description: 'Print where a locked model (or one of its files) is on disk',
    load: async () => (await import('./path.js')).pathCommand,
  },
  {
    name: 'ls',
    aliases: ['list'],
    usage: '[options] [repo]',
    description:
      'List cached repos (HF and ModelScope, every layout) with sizes, refs and last use; with REPO, its revisions and files',
    load: async () => (await import('./ls.js')).lsCommand,
  },
  {
    name: 'verify',
    usage: '[options] [repos...]',
    description:
      'Re-hash cached files (every blob once, on all cores) and report corrupt, truncated and missing ones; ' +
      '--fix downloads exactly those again',
    load: async () => (await import('./verify.js')).verifyCommand,
  },
  {
    name: 'status',
    usage: '[repos...]',
    description:
      'Compare cached refs (main, tags...) with the commit the hub serves now; with several --endpoint, say which one lags',
    load: async () => (await import('./status.js')).statusCommand,
  },
  {
    name: 'rm',
    aliases: ['remove'],
    usage: '[options] [targets...]',
    description: 'Remove cached repos or revisions; blobs still used by a remaining revision are kept',
    load: async () => (await import('./rm.js')).rmCommand,
  },
  {
    name: 'prune',
    usage: '[options]',
    description:
      'Remove detached revisions, old partial downloads no process is writing, broken links, orphan blobs and empty folders',
    load: async () => (await import('./prune.js')).pruneCommand,
  },
  {
    name: 'gc',
    usage: '[options]',
    description:
      'Remove least recently used revisions until the cache fits in --max-size; pinned (--keep) and in-use ones stay',
    load: async () => (await import('./gc.js')).gcCommand,
  },
  {
    name: 'doctor',
    usage: '[options]',
    description:
      'Check environment variables, cache folders (tmpfs, containers, permissions, space, symlinks), file locks and ' +
      'cached repos (damage, missing shards or components, duplicates); each finding comes with a fix',
    load: async () => (await import('./doctor.js')).doctorCommand,
  },
  {
    name: 'pack',
    usage: '[options] <repos...>',
    description:
      'Write cached repos (blobs, snapshots, refs, tree listings; ModelScope files with .msc/.mdl/.mv) into one tar ' +
      'with a manifest of sizes and sha256, for `hubcache unpack` on a machine with no network',
    load: async () => (await import('./pack.js')).packCommand,
  },
  {
    name: 'unpack',
    usage: '[options] <archive>',
    description:
      'Verify every hash of a `hubcache pack` archive, then merge it into the cache (existing blobs and files kept; ' +
      'refs written only where absent unless --update-refs)',
    load: async () => (await import('./unpack.js')).unpackCommand,
  },
  {
    name: 'dedup',
    usage: '[options]',
    description:
      'Find files stored more than once (HF cache, ModelScope cache, --also caches) and hard-link them to one copy; ' +
      'says how many bytes that frees',
    load: async () => (await import('./dedup.js')).dedupCommand,
  },
  {
    name: 'serve',
    usage: '[options]',
    description:
      'Run a pull-through mirror of the Hugging Face Hub and ModelScope that the official clients use unchanged ' +
      '(HF_ENDPOINT=..., MODELSCOPE_DOMAIN=...)',
    load: async () => (await import('./serve.js')).serveCommand,
  },
  {
    name: 'prefetch',
    usage: '[options] <repo>',
    description:
      'Ask a hubcache mirror (`hubcache serve`) to download a repo into its store now, e.g. before a rollout',
    load: async () => (await import('./prefetch.js')).prefetchCommand,
  },
];

/** The entry a name or alias stands for. */
export function findCommand(name: string): CommandEntry | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
