// File names from a server are untrusted: one `../` in a listing would let a hostile hub write
// anywhere. Every remote path goes through `assertSafeRepoPath` before it touches the disk, and
// every join goes through `safeJoin`, which re-checks containment after resolution.
import path from 'node:path';
import { UnsafePathError } from '../errors.js';

/** Rejects `..` segments, absolute/drive/UNC paths, backslashes, NUL and control characters, empty segments. */
export function assertSafeRepoPath(p: string, what = 'file name'): string {
  const bad = (why: string): never => {
    throw new UnsafePathError(`Refusing unsafe ${what} from server: ${JSON.stringify(p)} (${why})`, {
      hint: 'The hub sent a path that would escape the target folder; nothing was written.',
    });
  };
  if (typeof p !== 'string' || p.length === 0) bad('empty');
  if (p.length > 4096) bad('too long');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(p)) bad('control character');
  if (p.includes('\\')) bad('backslash');
  if (p.startsWith('/')) bad('absolute path');
  if (/^[A-Za-z]:/.test(p)) bad('drive letter');
  for (const seg of p.split('/')) {
    if (seg === '..') bad('parent directory segment');
    if (seg === '') bad('empty segment');
    if (seg === '.') bad('dot segment');
  }
  return p;
}

/**
 * Whether a relative path (from `path.relative` or `path.posix.normalize`) leaves its base: a
 * leading `..` segment or an absolute path. A name that only starts with dots (`..hidden`) stays.
 */
export function leavesBase(rel: string): boolean {
  return rel === '..' || rel.startsWith('../') || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
}

/** Whether `p` is `root` or inside it, by path arithmetic only (callers resolve links first). */
export function isInside(root: string, p: string): boolean {
  return !leavesBase(path.relative(root, p));
}

/** Joins a validated repo path under `root` and checks the result stays strictly inside it. */
export function safeJoin(root: string, repoPath: string): string {
  assertSafeRepoPath(repoPath);
  const base = path.resolve(root);
  const abs = path.resolve(base, ...repoPath.split('/'));
  if (abs === base || !isInside(base, abs)) throw new UnsafePathError(`Refusing path outside ${root}: ${repoPath}`);
  return abs;
}

/** Checks a ref/revision name used as a relative path under `refs/` (branch names may contain `/`). */
export function assertSafeRefName(rev: string): string {
  return assertSafeRepoPath(rev, 'revision name');
}
