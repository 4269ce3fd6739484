// huggingface_hub's cache layout, byte for byte (docs/protocols.md §Hugging Face cache):
//   <cache>/models--org--name/{blobs/<etag>, snapshots/<commit>/<path> → ../../blobs/<etag>,
//   refs/<rev>, .no_exist/<commit>/<path>, trees/<commit>.json}, <cache>/.locks/<repo>/<etag>.lock
import fs from 'node:fs/promises';
import path from 'node:path';
import { isCommitHash } from '../hubs/repo-ref.js';
import { hfEtagOf, type RemoteFile, type RepoRef, type RepoType } from '../hubs/types.js';
import { assertSafeRefName, assertSafeRepoPath, safeJoin } from '../util/safe-path.js';
import { atomicTempPath, exists, isFile, mkdirp, writeFileAtomic, writeFileIfChanged } from '../util/fs.js';
import { placeFile, type PlaceMethod, type PlaceMode } from './place.js';

export const CACHEDIR_TAG =
  'Signature: 8a477f597d28d172789f06886806bc55\n' +
  '# This file is a cache directory tag created by huggingface_hub.\n' +
  '# For information about cache directory tags, see:\n' +
  '#\thttps://bford.info/cachedir/\n';

/** `models--org--name` (docs/protocols.md §HF repo folder). */
/** A blob's file name: a 40-hex git oid or a 64-hex sha256. */
export const BLOB_RE = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

/** The etag part of a blob or partial name (`<etag>`, `<etag>.<id>.incomplete`). */
export function etagOfBlobName(name: string): string | undefined {
  const etag = name.split('.')[0] ?? '';
  return BLOB_RE.test(etag) ? etag : undefined;
}

/** `<cache>/.locks/<repo folder>/<etag>.lock`: the lock huggingface_hub and hubcache take per blob. */
export function hfBlobLockPath(cacheDir: string, repoFolder: string, etag: string): string {
  return path.join(cacheDir, '.locks', repoFolder, `${etag}.lock`);
}

export function repoFolderName(type: RepoType, id: string): string {
  return [`${type}s`, ...id.split('/')].join('--');
}

/** Reverse of repoFolderName; undefined for names that are not repo folders. */
export function parseRepoFolderName(name: string): { type: RepoType; id: string } | undefined {
  const i = name.indexOf('--');
  if (i < 0) return undefined;
  const t = name.slice(0, i).replace(/s$/, '');
  if (t !== 'model' && t !== 'dataset' && t !== 'space') return undefined;
  return {
    type: t,
    id: name
      .slice(i + 2)
      .split('--')
      .join('/'),
  };
}

/** Content of `trees/<commit>.json` (format_version 1, docs/protocols.md §HF tree listings). */
export interface TreeCacheEntry {
  size: number;
  blob_id: string;
  lfs_sha256?: string;
  lfs_size?: number;
  xet_hash?: string;
}

/** One repo folder of the HF cache. All paths it hands out are checked to stay inside the cache. */
export class HfRepoCache {
  readonly dir: string;
  readonly folderName: string;

  constructor(
    readonly cacheDir: string,
    readonly repo: Pick<RepoRef, 'type' | 'id'>,
  ) {
    this.folderName = repoFolderName(repo.type, repo.id);
    this.dir = path.join(cacheDir, this.folderName);
  }

  /** The layout of a repo folder given by its path (`<cache>/models--org--name`); undefined for other names. */
  static atFolder(repoDir: string): HfRepoCache | undefined {
    const repo = parseRepoFolderName(path.basename(repoDir));
    return repo && new HfRepoCache(path.dirname(repoDir), repo);
  }

  blobsDir(): string {
    return path.join(this.dir, 'blobs');
  }
  snapshotsDir(): string {
    return path.join(this.dir, 'snapshots');
  }
  refsDir(): string {
    return path.join(this.dir, 'refs');
  }
  blobPath(etag: string): string {
    if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(etag)) throw new Error(`not an etag: ${etag}`);
    return path.join(this.dir, 'blobs', etag);
  }
  snapshotDir(commit: string): string {
    return path.join(this.snapshotsDir(), commit);
  }
  snapshotPath(commit: string, repoPath: string): string {
    return safeJoin(this.snapshotDir(commit), repoPath);
  }
  lockPath(etag: string): string {
    return hfBlobLockPath(this.cacheDir, this.folderName, etag);
  }
  refPath(revision: string): string {
    return safeJoin(this.refsDir(), assertSafeRefName(revision));
  }
  noExistPath(commit: string, repoPath: string): string {
    return safeJoin(path.join(this.dir, '.no_exist', commit), repoPath);
  }
  treePath(commit: string): string {
    return path.join(this.dir, 'trees', `${commit}.json`);
  }

  /** Folders this instance already created: a repo of many files needs each mkdir only once. */
  private readonly madeDirs = new Set<string>();
  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await mkdirp(dir);
    this.madeDirs.add(dir);
  }

  /** The commit a ref points to, read unstripped like Python (a stray newline makes it invalid). */
  async readRef(revision: string): Promise<string | undefined> {
    try {
      const v = await fs.readFile(this.refPath(revision), 'utf8');
      return isCommitHash(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  /** Revision → commit using only the disk: a full hash is itself, anything else goes through refs/. */
  async resolveLocal(revision: string): Promise<string | undefined> {
    return isCommitHash(revision) ? revision : this.readRef(revision);
  }

  /** Exactly 40 bytes, no newline, atomic (tmp + rename), and only when it changes (docs/protocols.md §HF refs). */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (isCommitHash(revision) || revision === commit) return;
    if ((await this.readRef(revision)) === commit) return;
    await writeFileAtomic(this.refPath(revision), commit);
  }

  /**
   * Puts the bytes of `from` in as blob `etag` (moved, copied or hard-linked: see placeFile),
   * atomically. The caller holds the blob's lock and has verified the bytes.
   */
  async addBlob(etag: string, from: string, mode: PlaceMode): Promise<PlaceMethod> {
    const dest = this.blobPath(etag);
    await this.ensureDir(path.dirname(dest));
    return placeFile(from, dest, mode);
  }

  /** A snapshot entry as a regular file (a cache made without symlinks), atomically. */
  async addSnapshotFile(commit: string, repoPath: string, from: string, mode: PlaceMode): Promise<PlaceMethod> {
    return placeFile(from, this.snapshotPath(commit, repoPath), mode);
  }

  async writeCachedirTag(): Promise<void> {
    const p = path.join(this.cacheDir, 'CACHEDIR.TAG');
    if (await exists(p)) return;
    await mkdirp(this.cacheDir);
    await fs.writeFile(p, CACHEDIR_TAG, { flag: 'wx' }).catch(() => undefined);
  }

  async readTree(commit: string): Promise<RemoteFile[] | undefined> {
    let raw: string;
    try {
      raw = await fs.readFile(this.treePath(commit), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return parseTreeCache(raw);
    } catch {
      return undefined; // Python ignores an unreadable tree cache too
    }
  }

  /** `trees/<commit>.json`, as huggingface_hub ≥1.22 writes it, so Python can check completeness offline. */
  async writeTree(commit: string, files: readonly RemoteFile[]): Promise<void> {
    await writeFileIfChanged(this.treePath(commit), formatTreeCache(files));
  }

  async hasSnapshotFile(commit: string, repoPath: string): Promise<boolean> {
    return isFile(this.snapshotPath(commit, repoPath));
  }

  async hasBlob(etag: string): Promise<boolean> {
    return isFile(this.blobPath(etag));
  }

  /** Records "this file does not exist at that commit" (docs/protocols.md §HF missing-file markers). */
  async markMissing(commit: string, repoPath: string): Promise<void> {
    try {
      const p = this.noExistPath(commit, repoPath);
      await mkdirp(path.dirname(p));
      await fs.writeFile(p, '');
    } catch {
      /* best effort, like Python */
    }
  }

  /**
   * Points `snapshots/<commit>/<path>` at the blob with a relative symlink. Without symlink
   * support, copies the blob (or moves it when it was just downloaded), like huggingface_hub.
   */
  async linkSnapshot(commit: string, file: RemoteFile, opts: { symlinks: boolean; newBlob: boolean }): Promise<string> {
    const etag = hfEtagOf(file);
    const blob = this.blobPath(etag);
    const ptr = this.snapshotPath(commit, file.path);
    await this.ensureDir(path.dirname(ptr));
    if (opts.symlinks) {
      const target = path.relative(path.dirname(ptr), blob);
      const tmp = atomicTempPath(ptr);
      try {
        // Usually nothing is there yet: link in place (one syscall). Something there (an old
        // copy, a link to another blob) is replaced atomically through a temp link + rename.
        const made = await fs.symlink(target, ptr).then(
          () => true,
          (err: NodeJS.ErrnoException) => {
            if (err.code === 'EEXIST') return false;
            throw err;
          },
        );
        if (made) return ptr;
        await fs.symlink(target, tmp);
        await fs.rename(tmp, ptr); // a reader sees the old entry or the new link, never none
        return ptr;
      } catch (err) {
        await fs.rm(tmp, { force: true });
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && this.madeDirs.delete(path.dirname(ptr))) {
          // The folder was removed since we made it (a concurrent prune): make it again, once.
          return this.linkSnapshot(commit, file, opts);
        }
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EINVAL') throw err;
      }
    }
    await placeFile(blob, ptr, opts.newBlob ? 'move' : 'copy');
    return ptr;
  }
}

export function formatTreeCache(files: readonly RemoteFile[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const out: Record<string, TreeCacheEntry> = {};
  for (const f of sorted) {
    const e: TreeCacheEntry = { size: f.size, blob_id: f.gitOid ?? '' };
    if (f.lfs && f.sha256) {
      e.lfs_sha256 = f.sha256;
      e.lfs_size = f.size;
    }
    out[f.path] = e;
  }
  return JSON.stringify({ format_version: 1, files: out }, null, 1);
}

export function parseTreeCache(raw: string): RemoteFile[] {
  const j = JSON.parse(raw) as { format_version?: unknown; files?: Record<string, TreeCacheEntry> };
  if (j.format_version !== 1 || !j.files || typeof j.files !== 'object') throw new Error('bad tree cache');
  const files: RemoteFile[] = [];
  for (const [p, e] of Object.entries(j.files)) {
    assertSafeRepoPath(p);
    if (e.xet_hash !== undefined && !/^[0-9a-f]{64}$/.test(e.xet_hash)) throw new Error('bad xet hash');
    const f: RemoteFile = { path: p, size: e.size, lfs: e.lfs_sha256 !== undefined };
    if (e.blob_id) f.gitOid = e.blob_id;
    if (e.lfs_sha256) f.sha256 = e.lfs_sha256;
    files.push(f);
  }
  return files;
}
