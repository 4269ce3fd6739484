// Where verified blobs live, behind one interface that the mirror reads and fills through: the local HF
// cache (LocalBlobStore, below) and a bucket shared by the replicas of a cluster (S3BlobStore,
// s3-blob-store.ts). A blob is named by its HF etag: a sha256 for LFS files, a git blob sha1 otherwise
// (`blobs/<etag>`). The local cache keeps a copy per repo, so its keys also name the repo; a
// content-addressed store ignores the repo. Only complete, verified content is ever `put`.
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { UsageError } from '../errors.js';
import { HfRepoCache, parseRepoFolderName, repoFolderName } from '../layouts/hf-cache.js';
import type { RepoRef } from '../hubs/types.js';
import { syncDir } from '../transfer/disk.js';
import { atomicTempPath } from '../util/fs.js';

export interface BlobKey {
  etag: string;
  /** Whose copy, for a store laid out per repo; without it the local store looks in every repo. */
  repo?: RepoRef;
}

export interface BlobStat {
  size: number;
  /** When the local copy was last written (hot-blob cache validation). */
  mtimeMs?: number;
  /** A local file holding the bytes, when the store has one (lets a server hand it to sendfile). */
  localPath?: string;
  /** The object store's own version tag (unquoted), when it has one. */
  etag?: string;
}

/** Byte range `[start, end)`. */
export interface BlobRange {
  start: number;
  end: number;
}

export interface BlobPutOptions {
  /** Move the file instead of copying it (local store). */
  move?: boolean;
  /** The file's sha256 when the caller verified it already (saves hashing it again). */
  sha256?: string;
}

export interface BlobStore {
  /** Where the store is, for messages. */
  readonly where: string;
  has(key: BlobKey): Promise<boolean>;
  stat(key: BlobKey): Promise<BlobStat | undefined>;
  /** The bytes (of `range`, default all); rejects when the blob is missing. */
  read(key: BlobKey, range?: BlobRange): Promise<Readable>;
  /**
   * Adds a verified file as this blob; atomic: readers see all or nothing. `stored: false` when the
   * store had the blob already (a content-addressed store does not upload it again).
   */
  put(key: BlobKey, fromFile: string, opts?: BlobPutOptions): Promise<{ stored: boolean }>;
  /** True when something was removed. */
  delete(key: BlobKey): Promise<boolean>;
  /** Every blob, or those of one repo (per-repo stores), or those whose etag starts with `prefix`. */
  list(filter?: { repo?: RepoRef; prefix?: string }): AsyncIterable<{ key: BlobKey; size: number }>;
  /** Records a read for LRU eviction (gc removes the least recently used revisions); may do nothing. */
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

  get where(): string {
    return this.root;
  }

  /** The blob's path in the key's repo; UsageError without a repo (use stat() to find any copy). */
  blobPath(key: BlobKey): string {
    if (!key.repo) throw new UsageError(`local blob ${key.etag}: which repo's copy?`);
    return new HfRepoCache(this.root, key.repo).blobPath(key.etag);
  }

  /** The key's own copy, or without a repo the first repo holding this etag. */
  private async locate(key: BlobKey): Promise<string | undefined> {
    if (key.repo) return this.blobPath(key);
    if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(key.etag)) return undefined;
    for (const folder of await readdirQuiet(this.root)) {
      if (!parseRepoFolderName(folder)) continue;
      const p = path.join(this.root, folder, 'blobs', key.etag);
      if ((await fsp.stat(p).catch(() => undefined))?.isFile()) return p;
    }
    return undefined;
  }

  async has(key: BlobKey): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async stat(key: BlobKey): Promise<BlobStat | undefined> {
    const p = await this.locate(key);
    if (!p) return undefined;
    try {
      const st = await fsp.stat(p);
      return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs, localPath: p } : undefined;
    } catch {
      return undefined;
    }
  }

  async read(key: BlobKey, range?: BlobRange): Promise<Readable> {
    const p = (await this.locate(key)) ?? this.blobPath(key);
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

  async put(key: BlobKey, fromFile: string, opts: BlobPutOptions = {}): Promise<{ stored: boolean }> {
    const target = this.blobPath(key);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const tmp = atomicTempPath(target); // the one temp pattern, which scans and prune know
    try {
      if (opts.move) await fsp.rename(fromFile, tmp);
      else await fsp.copyFile(fromFile, tmp);
      await fsp.rename(tmp, target);
      await syncDir(path.dirname(target));
      return { stored: true };
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async delete(key: BlobKey): Promise<boolean> {
    try {
      await fsp.unlink((await this.locate(key)) ?? this.blobPath(key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async *list(filter: { repo?: RepoRef; prefix?: string } = {}): AsyncIterable<{ key: BlobKey; size: number }> {
    const { repo, prefix = '' } = filter;
    const folders = repo ? [repoFolderName(repo.type, repo.id)] : await readdirQuiet(this.root);
    for (const folder of folders) {
      const parsed = parseRepoFolderName(folder);
      if (!parsed) continue;
      const ref: RepoRef = { hub: 'hf', type: parsed.type, id: parsed.id };
      const dir = path.join(this.root, folder, 'blobs');
      for (const name of await readdirQuiet(dir)) {
        if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(name)) continue; // partials and temp files are not blobs
        if (!name.startsWith(prefix)) continue;
        const st = await fsp.stat(path.join(dir, name)).catch(() => undefined);
        if (st?.isFile()) yield { key: { repo: ref, etag: name }, size: st.size };
      }
    }
  }

  async markUsed(key: BlobKey): Promise<void> {
    const p = await this.locate(key);
    if (!p) return;
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
