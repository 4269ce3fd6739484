// `hf download --local-dir` bookkeeping (docs/protocols.md §HF local-dir download): plain files at
// <dir>/<path>, and <dir>/.cache/huggingface/download/<path>.metadata = "commit\netag\ntimestamp\n",
// so either tool skips files the other already fetched.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { safeJoin } from '../util/safe-path.js';
import { mkdirp, writeFileAtomic } from '../util/fs.js';
import { CACHEDIR_TAG } from './hf-cache.js';

export interface LocalDirMetadata {
  commit: string;
  etag: string;
  timestamp: number;
}

export class HfLocalDir {
  readonly bookkeepingDir: string;

  constructor(readonly dir: string) {
    this.bookkeepingDir = path.join(dir, '.cache', 'huggingface');
  }

  filePath(repoPath: string): string {
    return safeJoin(this.dir, repoPath);
  }
  metadataPath(repoPath: string): string {
    return safeJoin(path.join(this.bookkeepingDir, 'download'), `${repoPath}.metadata`);
  }
  /** `download/<path>.lock`: the `.metadata` suffix swapped for `.lock`, as Python names it. */
  lockPath(repoPath: string): string {
    return this.metadataPath(repoPath).replace(/\.metadata$/, '.lock');
  }
  /** Partial files live beside the metadata, keyed like Python's `<b64(sha1(name))>.<etag>`. */
  partialDir(repoPath: string): string {
    return path.dirname(this.metadataPath(repoPath));
  }
  partialKey(repoPath: string, etag: string): string {
    const name = path.basename(this.metadataPath(repoPath));
    return `${createHash('sha1').update(name).digest('base64url').padEnd(28, '=')}.${etag}`;
  }
  treePath(commit: string): string {
    return path.join(this.bookkeepingDir, 'trees', `${commit}.json`);
  }

  /** Creates `.gitignore` ("*") and CACHEDIR.TAG once, like huggingface_hub. */
  async init(): Promise<void> {
    await mkdirp(this.bookkeepingDir);
    await fs.writeFile(path.join(this.bookkeepingDir, '.gitignore'), '*', { flag: 'wx' }).catch(() => undefined);
    await fs
      .writeFile(path.join(this.bookkeepingDir, 'CACHEDIR.TAG'), CACHEDIR_TAG, { flag: 'wx' })
      .catch(() => undefined);
  }

  /**
   * Valid only if parseable and the file was not modified after it was recorded
   * (`mtime - 1 <= timestamp`); unparseable metadata is deleted, like Python does.
   */
  async readMetadata(repoPath: string): Promise<LocalDirMetadata | undefined> {
    const mp = this.metadataPath(repoPath);
    let raw: string;
    try {
      raw = await fs.readFile(mp, 'utf8');
    } catch {
      return undefined;
    }
    const [commit, etag, ts] = raw.split('\n').map((l) => l.trim());
    const timestamp = Number.parseFloat(ts ?? '');
    if (!commit || !etag || !Number.isFinite(timestamp)) {
      await fs.rm(mp, { force: true });
      return undefined;
    }
    try {
      const st = await fs.stat(this.filePath(repoPath));
      if (st.mtimeMs / 1000 - 1 > timestamp) return undefined;
    } catch {
      return undefined;
    }
    return { commit, etag, timestamp };
  }

  async writeMetadata(repoPath: string, commit: string, etag: string): Promise<void> {
    // Python writes str(time.time()): a float in seconds; any float() -parsable form works.
    const ts = (Date.now() / 1000).toFixed(6);
    await writeFileAtomic(this.metadataPath(repoPath), `${commit}\n${etag}\n${ts}\n`);
  }
}
