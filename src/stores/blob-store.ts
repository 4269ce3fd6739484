// Where verified blobs live, behind one small interface, so the mirror (src/server/) can read
// them from the local HF cache today and from an object store later. A blob is addressed by its
// repo and its HF etag (sha256 for LFS files, git blob sha1 otherwise), as in `blobs/<etag>`.
// Only complete, verified content is ever `put`; partial downloads are not the store's business.
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HfRepoCache, parseRepoFolderName } from '../layouts/hf-cache.js';
import type { RepoRef } from '../hubs/types.js';
import { syncDir } from '../transfer/disk.js';
import { atomicTempPath } from '../util/fs.js';

export interface BlobKey {
  repo: RepoRef;
  etag: string;
}

export interface BlobStat {
  size: number;
  mtimeMs: number;
  /** A local file holding the bytes, when the store has one (lets a server hand it to sendfile). */
  localPath?: string;
}

/** Byte range `[start, end)`. */
export interface BlobRange {
  start: number;
  end: number;
}

export interface BlobStore {
  has(key: BlobKey): Promise<boolean>;
  stat(key: BlobKey): Promise<BlobStat | undefined>;
  /** The bytes (of `range`, default all); rejects when the blob is missing. */
  read(key: BlobKey, range?: BlobRange): Promise<Readable>;
  /** Adds a verified file as this blob (moved when `move`, else copied); atomic: readers see all or nothing. */
  put(key: BlobKey, fromFile: string, opts?: { move?: boolean }): Promise<void>;
  /** True when something was removed. */
  delete(key: BlobKey): Promise<boolean>;
  /** Every blob, or those of one repo. */
  list(repo?: RepoRef): AsyncIterable<{ key: BlobKey; size: number }>;
  /** Records a read for LRU eviction (gc removes the least recently used revisions). */
  markUsed(key: BlobKey): Promise<void>;
}

/** Read buffer per stream: large reads keep a warm 5 MiB blob to a handful of syscalls. */
const READ_CHUNK = 1024 * 1024;
/** atime is what gc calls "last used"; refreshing it more often than this buys nothing. */
const MARK_USED_EVERY_MS = 60_000;

/** The HF cache layout (`<root>/models--org--name/blobs/<etag>`) as a blob store. */
export class LocalBlobStore implements BlobStore {
  private readonly marked = new Map<string, number>();

  constructor(readonly root: string) {}

  blobPath(key: BlobKey): string {
    return new HfRepoCache(this.root, key.repo).blobPath(key.etag);
  }

  async has(key: BlobKey): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async stat(key: BlobKey): Promise<BlobStat | undefined> {
    const p = this.blobPath(key);
    try {
      const st = await fsp.stat(p);
      return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs, localPath: p } : undefined;
    } catch {
      return undefined;
    }
  }

  async read(key: BlobKey, range?: BlobRange): Promise<Readable> {
    const p = this.blobPath(key);
    const fh = await fsp.open(p, 'r'); // rejects now (ENOENT) rather than as a stream error later
    if (range && range.end <= range.start) {
      await fh.close();
      return Readable.from([]);
    }
    return createReadStream('', {
      fd: fh,
      highWaterMark: READ_CHUNK,
      ...(range ? { start: range.start, end: range.end - 1 } : {}),
    });
  }

  async put(key: BlobKey, fromFile: string, opts: { move?: boolean } = {}): Promise<void> {
    const target = this.blobPath(key);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const tmp = atomicTempPath(target); // the one temp pattern, which scans and prune know
    try {
      if (opts.move) await fsp.rename(fromFile, tmp);
      else await fsp.copyFile(fromFile, tmp);
      await fsp.rename(tmp, target);
      await syncDir(path.dirname(target));
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async delete(key: BlobKey): Promise<boolean> {
    try {
      await fsp.unlink(this.blobPath(key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async *list(repo?: RepoRef): AsyncIterable<{ key: BlobKey; size: number }> {
    const folders = repo ? [new HfRepoCache(this.root, repo).folderName] : await readdirQuiet(this.root);
    for (const folder of folders) {
      const parsed = parseRepoFolderName(folder);
      if (!parsed) continue;
      const ref: RepoRef = { hub: 'hf', type: parsed.type, id: parsed.id };
      const dir = path.join(this.root, folder, 'blobs');
      for (const name of await readdirQuiet(dir)) {
        if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(name)) continue; // partials and temp files are not blobs
        const st = await fsp.stat(path.join(dir, name)).catch(() => undefined);
        if (st?.isFile()) yield { key: { repo: ref, etag: name }, size: st.size };
      }
    }
  }

  async markUsed(key: BlobKey): Promise<void> {
    const p = this.blobPath(key);
    const now = Date.now();
    if (now - (this.marked.get(p) ?? 0) < MARK_USED_EVERY_MS) return;
    this.marked.set(p, now);
    if (this.marked.size > 100_000) this.marked.clear();
    try {
      const st = await fsp.stat(p);
      await fsp.utimes(p, new Date(now), st.mtime);
    } catch {
      /* gone or read-only: LRU order is only a hint */
    }
  }
}

async function readdirQuiet(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch {
    return [];
  }
}
