// Downloads into a folder where a stale file may already sit at the target path (a local dir, a
// ModelScope model dir). The transfer engine takes an existing file of the right size at its
// `finalPath` as "already downloaded", which is right for content-addressed blobs but wrong for a
// repo path whose content changed upstream at the same size. So the engine commits into a staging
// name private to (content key, repo path) in the partial folder, and the caller renames it over
// the target. A staged file left by a crash between the two renames holds verified bytes of that
// same content, so reusing it is correct.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { mkdirp } from '../util/fs.js';

/** `<partialDir>/<partialKey>.<16 hex of sha1(repo path)>.staged`. */
export function stagedPath(partialDir: string, partialKey: string, repoPath: string): string {
  return path.join(
    partialDir,
    `${partialKey}.${createHash('sha1').update(repoPath).digest('hex').slice(0, 16)}.staged`,
  );
}

/** Moves a staged download over its target (same file system: an atomic rename). */
export async function commitStaged(staged: string, dest: string): Promise<void> {
  await mkdirp(path.dirname(dest));
  await fs.rename(staged, dest);
}
