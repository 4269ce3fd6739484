// Putting a cached file into a plain folder (`download --local-dir --link-mode`) without a second
// copy where the file system allows:
//   reflink  — a copy-on-write clone (btrfs, XFS, APFS, bcachefs): no extra space, and editing
//              either file never affects the other;
//   hardlink — the same inode: no extra space, but an in-place edit of the local file changes
//              the cached blob too (treat such files as read-only);
//   symlink  — a link to the cached blob: nothing copied; breaks if the cache entry is removed;
//   copy     — a real copy (cloned by the kernel when it can, which cannot be detected);
//   auto     — reflink, else hardlink, else copy.
// Every method writes the one atomic temp name (util/fs) beside the target and renames it into place, so a reader sees
// the old file or the new one, never half of one.
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { replaceAtomically } from '../util/fs.js';

export const LINK_MODES = ['auto', 'hardlink', 'reflink', 'symlink', 'copy'] as const;
export type LinkMode = (typeof LINK_MODES)[number];
/** What was actually done for one file. */
export type LinkMethod = 'reflink' | 'hardlink' | 'symlink' | 'copy';

export interface Materialized {
  method: LinkMethod;
  /** Bytes not written a second time (the file's size, or 0 for a copy). */
  savedBytes: number;
}

/** Errors that mean "this file system (pair) cannot do that", as opposed to a real failure. */
const NO_REFLINK = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY', 'EPERM']);
const NO_HARDLINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS']);

/**
 * Makes `dest` hold the bytes of `src` (a snapshot entry: symlinks are resolved first, so links
 * and clones go to the blob itself), replacing what is there atomically.
 */
export async function materializeFile(src: string, dest: string, mode: LinkMode): Promise<Materialized> {
  const real = await fs.realpath(src);
  const { size } = await fs.stat(real);
  const method = await replaceAtomically(dest, (tmp) => placeAt(real, tmp, mode));
  return { method, savedBytes: method === 'copy' ? 0 : size };
}

async function placeAt(real: string, tmp: string, mode: LinkMode): Promise<LinkMethod> {
  switch (mode) {
    case 'symlink':
      await fs.symlink(real, tmp);
      return 'symlink';
    case 'hardlink':
      await strictly(() => fs.link(real, tmp), NO_HARDLINK, 'hard links', real, tmp);
      return 'hardlink';
    case 'reflink':
      await strictly(
        () => fs.copyFile(real, tmp, fsConstants.COPYFILE_FICLONE_FORCE),
        NO_REFLINK,
        'reflinks (copy-on-write clones)',
        real,
        tmp,
      );
      return 'reflink';
    case 'copy':
      await fs.copyFile(real, tmp, fsConstants.COPYFILE_FICLONE);
      return 'copy';
    case 'auto':
      if (await attempt(() => fs.copyFile(real, tmp, fsConstants.COPYFILE_FICLONE_FORCE), NO_REFLINK)) return 'reflink';
      if (await attempt(() => fs.link(real, tmp), NO_HARDLINK)) return 'hardlink';
      await fs.copyFile(real, tmp);
      return 'copy';
  }
}

/** Runs `op`; false when it failed because the file system cannot do it (then nothing is left at tmp). */
async function attempt(op: () => Promise<void>, unsupported: ReadonlySet<string>): Promise<boolean> {
  try {
    await op();
    return true;
  } catch (err) {
    if (!unsupported.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    return false;
  }
}

async function strictly(
  op: () => Promise<void>,
  unsupported: ReadonlySet<string>,
  what: string,
  src: string,
  dest: string,
): Promise<void> {
  if (await attempt(op, unsupported)) return;
  throw new UsageError(`This file system cannot make ${what} from ${src} to ${path.dirname(dest)}`, {
    hint: 'Use --link-mode auto (tries a reflink, then a hard link, then copies) or --link-mode copy.',
  });
}
