// Small file-system helpers shared by the layouts. Writes that others may read concurrently go
// through a temp file in the same directory and a rename, so nobody sees half a file.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** A regular file, following symlinks (a broken link is not a file). */
export async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * `mkdir -p` that always ends. Node 20's own `fs.mkdir(p, { recursive: true })` loops forever in a
 * thread-pool thread (100% CPU, and the process can no longer exit) when a folder's parent exists
 * but refuses children with ENOENT, as /proc does: it retries mkdir(child) after each EEXIST of the
 * parent. Here each level is tried at most twice, so any such answer ends as the error it is.
 */
export async function mkdirp(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  try {
    await fs.mkdir(abs);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await fs.stat(abs).catch(() => undefined))?.isDirectory()) return;
      throw err;
    }
    if (code !== 'ENOENT' || path.dirname(abs) === abs) throw err;
  }
  await mkdirp(path.dirname(abs));
  try {
    await fs.mkdir(abs);
  } catch (err) {
    // Made meanwhile by another process: fine. Anything else (ENOENT again: /proc) is final.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!(await fs.stat(abs).catch(() => undefined))?.isDirectory()) throw err;
  }
}

/** Writes `data` to `p` atomically: temp file beside it, fsync, rename. */
export async function writeFileAtomic(p: string, data: string | Uint8Array): Promise<void> {
  await mkdirp(path.dirname(p));
  const tmp = path.join(path.dirname(p), `.${path.basename(p)}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, p);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * writeFileAtomic unless `p` already holds exactly `data`: a refresh of what is there costs no
 * write, so a complete cache on a read-only mount (or another user's) still serves.
 */
export async function writeFileIfChanged(p: string, data: string | Uint8Array): Promise<boolean> {
  const want = typeof data === 'string' ? Buffer.from(data) : data;
  const have = await fs.readFile(p).catch(() => undefined);
  if (have && Buffer.compare(have, want) === 0) return false;
  await writeFileAtomic(p, data);
  return true;
}

/** Removes `dir` if it holds nothing but (nested) empty folders; true when it is gone. Never removes a file or link. */
export async function removeEmptyTree(dir: string): Promise<boolean> {
  const st = await fs.lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return false;
  let empty = true;
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || !(await removeEmptyTree(path.join(dir, e.name)))) empty = false;
  }
  return (
    empty &&
    (await fs.rmdir(dir).then(
      () => true,
      () => false,
    ))
  );
}
