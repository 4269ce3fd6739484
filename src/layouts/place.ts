// Putting a verified file into a cache layout without ever leaving a half-written file behind:
// a rename for moves, the one atomic temp name (util/fs) + rename for copies and hard links.
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { mkdirp, replaceAtomically } from '../util/fs.js';

export type PlaceMode = 'move' | 'copy' | 'link';
export type PlaceMethod = 'moved' | 'copied' | 'linked';

const CROSS_DEVICE = new Set(['EXDEV']);
const NO_HARD_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);

/**
 * Places the bytes of `src` at `dest` (replacing what is there, atomically). Symlinked sources
 * are resolved first, so a link into another cache is copied or hard-linked, never moved.
 * `move` degrades to a copy across file systems (the source then stays where it was);
 * `link` degrades to a copy where hard links are impossible.
 */
export async function placeFile(src: string, dest: string, mode: PlaceMode): Promise<PlaceMethod> {
  await mkdirp(path.dirname(dest));
  const isLink = (await fs.lstat(src)).isSymbolicLink();
  const real = await fs.realpath(src);
  if (mode === 'move' && !isLink) {
    try {
      await fs.rename(real, dest);
      return 'moved';
    } catch (err) {
      if (!CROSS_DEVICE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  return replaceAtomically(dest, async (tmp): Promise<PlaceMethod> => {
    if (mode === 'link') {
      try {
        await fs.link(real, tmp);
        return 'linked';
      } catch (err) {
        if (!NO_HARD_LINK.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      }
    }
    await fs.copyFile(real, tmp, fsConstants.COPYFILE_FICLONE);
    return 'copied';
  });
}
