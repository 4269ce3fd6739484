// The ModelScope SDK's on-disk layouts (docs/protocols.md §ModelScope).
//
// Legacy (modelscope ≤1.37, written by default): <root>/models/<owner>/<name with . → ___>/<path>,
// with the pickled `.msc` index (one {Path, Revision} per cached file), `.mdl` ({'id': ...}) and
// `.mv` (last snapshot's revision). ≥1.38 reads that directory too (existence + sha256), so it is
// the one layout both SDK generations accept.
// New (modelscope_hub ≥1.38): <root>/models/<owner>--<name>/snapshots/<revision>/<path>, no index.
//
// Partial data lives in `<dir>/.hubcache-partial/`, never in the SDK's `._____temp` (a Python
// process resumes whatever it finds there, byte-for-byte, and our large partials carry a resume
// trailer) nor at `<path>.incomplete` (≥1.38's own partial name). A hidden folder inside the
// target dir is on the same file system as the targets even when a user symlinks a model dir to
// another disk, so the final rename stays atomic; no repo path collides with it in practice, and
// the SDKs only look at `.msc` entries (≤1.37) or at the exact repo paths (≥1.38).
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { msModelId } from '../hubs/modelscope.js';
import type { RemoteFile } from '../hubs/types.js';
import { acquireLock, type AcquireLockOptions } from '../locks/flock.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { placeFile, type PlaceMethod, type PlaceMode } from './place.js';
import { sha256File } from '../util/hash.js';
import { assertSafeRefName, safeJoin } from '../util/safe-path.js';
import { decodeMdl, decodeMsc, encodeMdl, encodeMsc, type MscEntry } from '../util/pickle.js';

export const MSC_FILE = '.msc';
export const MDL_FILE = '.mdl';
export const MV_FILE = '.mv';
/** Where hubcache keeps partial downloads inside a target dir (see the header comment). */
export const MS_PARTIAL_DIR = '.hubcache-partial';

export type MsLayout = 'v1' | 'v2';

/** The longest file name Linux, macOS and Windows file systems take (bytes). */
const NAME_MAX = 255;

/** `Qwen2.5-7B` → `Qwen2___5-7B`: the SDK's directory name for a model name. */
export function maskModelName(name: string): string {
  return name.split('.').join('___');
}

/** Owner and name of a ModelScope model id (`name` alone means owner `damo`). */
export function splitMsModelId(id: string): { owner: string; name: string } {
  const full = msModelId(id);
  const i = full.indexOf('/');
  return { owner: full.slice(0, i), name: full.slice(i + 1) };
}

/** The SDK's `.mv` text: `Revision:<name>,CreatedAt:<int>` (the raw name when no CreatedAt is known). */
export function formatMv(revisionName: string, createdAt: number | undefined): string {
  return createdAt === undefined ? revisionName : `Revision:${revisionName},CreatedAt:${Math.trunc(createdAt)}`;
}

export function parseMv(text: string): { revision: string; createdAt?: number } {
  const m = /^Revision:(.*),CreatedAt:(-?\d+)\s*$/s.exec(text);
  if (!m) return { revision: text.trim() };
  return { revision: m[1] as string, createdAt: Number(m[2]) };
}

/** The legacy "already cached" rule for one `.msc` entry (docs/protocols.md §ModelScope cached-file rule). */
export function mscEntryMatches(e: MscEntry, file: Pick<RemoteFile, 'path' | 'msRevision' | 'sha256'>): boolean {
  if (e.Path !== file.path || !file.sha256 || file.msRevision === undefined) return false;
  return e.Revision.startsWith(file.msRevision) || file.msRevision.startsWith(e.Revision);
}

/** Whether `p` is a regular file of exactly `size` bytes whose sha256 (when given and asked for) matches. */
export async function fileMatches(
  p: string,
  expected: { size: number; sha256?: string | undefined },
  verifySha: boolean,
  signal?: AbortSignal,
): Promise<boolean> {
  let st;
  try {
    st = await fs.stat(p);
  } catch {
    return false;
  }
  if (!st.isFile() || st.size !== expected.size) return false;
  if (!verifySha || !expected.sha256) return true;
  return (await sha256File(p, signal)) === expected.sha256;
}

/**
 * A directory laid out like the legacy SDK writes it: files at `<dir>/<path>` plus `.msc`
 * (and `.mdl`/`.mv`). Used for a cache model dir and for `--local-dir` (which has no `.mdl`).
 */
/** What both ModelScope layouts share: repo files under `dir`, put in through the one write API. */
abstract class MsFilesDir {
  abstract readonly dir: string;
  filePath(repoPath: string): string {
    return safeJoin(this.dir, repoPath);
  }
  /** Puts the bytes of `from` at the repo path (atomic; see placeFile for the modes). */
  addFile(repoPath: string, from: string, mode: PlaceMode): Promise<PlaceMethod> {
    return placeFile(from, this.filePath(repoPath), mode);
  }
}

export class MsLegacyDir extends MsFilesDir {
  constructor(
    readonly dir: string,
    /** The per-repo lock (`<root>/.lock/<owner>___<name>`) that serialises `.msc` rewrites. */
    readonly lockPath: string,
    /** `<owner>/<masked name>` for `.mdl`; undefined for a local dir (the SDK writes none there). */
    readonly mdlId?: string,
  ) {
    super();
  }

  get mscPath(): string {
    return path.join(this.dir, MSC_FILE);
  }
  get mdlPath(): string {
    return path.join(this.dir, MDL_FILE);
  }
  get mvPath(): string {
    return path.join(this.dir, MV_FILE);
  }
  get partialDir(): string {
    return path.join(this.dir, MS_PARTIAL_DIR);
  }

  /** The `.msc` entries; a missing or unreadable index counts as empty, as the SDK does. */
  async readIndex(): Promise<MscEntry[]> {
    let buf: Buffer;
    try {
      buf = await fs.readFile(this.mscPath);
    } catch {
      return [];
    }
    try {
      return decodeMsc(buf);
    } catch {
      return [];
    }
  }

  /**
   * The legacy rule (an `.msc` entry for the path with a matching per-file revision, a known
   * sha256, the file present) plus ours: the size matches, and with `verifySha` the sha256 too.
   */
  async isCached(
    file: RemoteFile,
    index: readonly MscEntry[],
    opts: { verifySha?: boolean; signal?: AbortSignal } = {},
  ): Promise<boolean> {
    if (!index.some((e) => mscEntryMatches(e, file))) return false;
    return fileMatches(this.filePath(file.path), file, opts.verifySha ?? false, opts.signal);
  }

  /**
   * Adds (or replaces) the `.msc` entries of `files`: under the per-repo lock, re-read from disk
   * so entries written meanwhile by another process survive, then an atomic rewrite.
   */
  async record(
    files: readonly Pick<RemoteFile, 'path' | 'msRevision'>[],
    lockOpts: AcquireLockOptions = {},
  ): Promise<void> {
    const add = files.filter((f): f is { path: string; msRevision: string } => typeof f.msRevision === 'string');
    if (add.length === 0) return;
    await this.updateIndex((index) => {
      const paths = new Set(add.map((f) => f.path));
      const kept = index.filter((e) => !paths.has(e.Path));
      return [...kept, ...add.map((f) => ({ Path: f.path, Revision: f.msRevision }))];
    }, lockOpts);
  }

  /** Read-modify-write of `.msc` under the repo lock; no write when nothing changed. */
  async updateIndex(change: (index: MscEntry[]) => MscEntry[], lockOpts: AcquireLockOptions = {}): Promise<void> {
    const lock = await acquireLock(this.lockPath, lockOpts);
    try {
      const before = await this.readIndex();
      const after = change(before);
      const same =
        after.length === before.length &&
        after.every((e, i) => e.Path === before[i]?.Path && e.Revision === before[i]?.Revision);
      if (same && (await exists(this.mscPath))) return;
      await writeFileAtomic(this.mscPath, encodeMsc(after));
    } finally {
      await lock.release();
    }
  }

  /** `.mdl` = {'id': '<owner>/<masked name>'}, rewritten only when missing or different. */
  async writeMdl(): Promise<void> {
    if (this.mdlId === undefined) return;
    try {
      if (decodeMdl(await fs.readFile(this.mdlPath)).id === this.mdlId) return;
    } catch {
      /* missing or unreadable: write it */
    }
    await writeFileAtomic(this.mdlPath, encodeMdl(this.mdlId));
  }

  async writeMv(revisionName: string, createdAt: number | undefined): Promise<void> {
    const text = formatMv(revisionName, createdAt);
    const current = await fs.readFile(this.mvPath, 'utf8').catch(() => undefined);
    if (current !== text) await writeFileAtomic(this.mvPath, text);
  }

  async readMv(): Promise<{ revision: string; createdAt?: number } | undefined> {
    const text = await fs.readFile(this.mvPath, 'utf8').catch(() => undefined);
    return text === undefined ? undefined : parseMv(text);
  }

  /** Files the index says are cached and that exist on disk (for offline use and scans). */
  async indexedFiles(): Promise<{ path: string; size: number; revision: string }[]> {
    const out: { path: string; size: number; revision: string }[] = [];
    for (const e of await this.readIndex()) {
      let abs: string;
      try {
        abs = this.filePath(e.Path);
      } catch {
        continue; // a hostile or broken index entry is never followed
      }
      const st = await fs.stat(abs).catch(() => undefined);
      if (st?.isFile()) out.push({ path: e.Path, size: st.size, revision: e.Revision });
    }
    return out;
  }

  /** Removes the partial folder when it is empty (another writer may still be using it). */
  async cleanupPartials(): Promise<void> {
    await fs.rmdir(this.partialDir).catch(() => undefined);
  }
}

/** One repo as the new (≥1.38) layout stores it: `<root>/models/<owner>--<name>/snapshots/<rev>/`. */
/** `<v2root>/models/<owner>--<name>/snapshots`: the revisions of a modelscope ≥1.38 repo folder. */
export function msSnapshotsDir(repoDir: string): string {
  return path.join(repoDir, 'snapshots');
}

export class MsSnapshotDir extends MsFilesDir {
  constructor(
    readonly repoDir: string,
    readonly revision: string,
  ) {
    super();
    assertSafeRefName(revision);
  }
  get dir(): string {
    return safeJoin(msSnapshotsDir(this.repoDir), this.revision);
  }
  get partialDir(): string {
    return path.join(this.repoDir, MS_PARTIAL_DIR);
  }
  /** Every regular file of the snapshot (relative POSIX paths), for offline use and scans. */
  async files(): Promise<{ path: string; size: number }[]> {
    return listRegularFiles(this.dir);
  }
  async cleanupPartials(): Promise<void> {
    await fs.rmdir(this.partialDir).catch(() => undefined);
  }
}

/** A ModelScope cache root with MODELSCOPE_CACHE semantics: models under `<root>/models/`. */
export class ModelScopeCache {
  constructor(
    readonly root: string,
    /** Base of the ≥1.38 layout; the SDK uses MODELSCOPE_CACHE itself when it is set. */
    readonly v2Root: string = root,
  ) {}

  get modelsDir(): string {
    return path.join(this.root, 'models');
  }

  /** `<root>/models/<owner>/<masked name>` (docs/protocols.md §ModelScope repo folder; the owner is not masked). */
  legacyDirPath(id: string): string {
    const { owner, name } = splitMsModelId(id);
    return safeJoin(this.modelsDir, `${owner}/${maskModelName(name)}`);
  }

  /** The SDK's snapshot lock: `<root>/.lock/<owner>___<name>`. */
  lockPath(id: string): string {
    const { owner, name } = splitMsModelId(id);
    return path.join(this.root, '.lock', `${owner}___${name}`);
  }

  legacy(id: string): MsLegacyDir {
    const { owner, name } = splitMsModelId(id);
    return new MsLegacyDir(this.legacyDirPath(id), this.lockPath(id), `${owner}/${maskModelName(name)}`);
  }

  /** `--local-dir`: files, `.msc` and `.mv` right in `dir`, no `.mdl`; the lock stays in the cache. */
  localDir(dir: string, id: string): MsLegacyDir {
    return new MsLegacyDir(path.resolve(dir), this.lockPath(id));
  }

  /** `<v2root>/models/<owner>--<name>` (the name is not masked). */
  v2RepoDir(id: string): string {
    const { owner, name } = splitMsModelId(id);
    return safeJoin(path.join(this.v2Root, 'models'), `${owner}--${name}`);
  }

  v2Snapshot(id: string, revision: string): MsSnapshotDir {
    return new MsSnapshotDir(this.v2RepoDir(id), revision);
  }

  /**
   * modelscope_hub's per-file lock: `<base>/.lock/model_<owner>___<name>_<path: / → ___, . → _>.lock`.
   * That flattened name outgrows a file name (NAME_MAX, 255 bytes) for deep repo paths, and then
   * open() fails with ENAMETOOLONG. What the SDK does there, read in github:modelscope/modelscope:
   * up to v1.37.1 it takes only the per-repo lock `.lock/<owner>___<name>` (snapshot_download.py,
   * `repo_id.replace('/', '___')`), neither hashed nor truncated; ≥1.38 moved the per-file lock
   * into the separate modelscope_hub package (not in that repository), which by the spec's rule
   * uses the flattened path as is and so cannot lock such a file either. So a name that fits stays
   * the SDK's (both tools exclude each other); a longer one keeps the readable start, cut to fit,
   * plus a sha256 of the repo path, so distinct paths never share a lock. Only hubcache meets there.
   */
  v2LockPath(id: string, repoPath: string): string {
    const { owner, name } = splitMsModelId(id);
    const p = repoPath.split('/').join('___').split('.').join('_');
    const full = `model_${owner}___${name}_${p}.lock`;
    if (Buffer.byteLength(full) <= NAME_MAX) return path.join(this.v2Root, '.lock', full);
    const digest = createHash('sha256').update(`${id}\0${repoPath}`).digest('hex').slice(0, 32);
    const room = NAME_MAX - `_${digest}.lock`.length;
    let head = full.slice(0, -'.lock'.length);
    while (Buffer.byteLength(head) > room) head = head.slice(0, -1);
    return path.join(this.v2Root, '.lock', `${head}_${digest}.lock`);
  }

  /** `<root>/models/<owner>/<dotted name>`, where the SDK links to the masked dir; undefined without dots. */
  dottedLinkPath(id: string): string | undefined {
    const { owner, name } = splitMsModelId(id);
    return name.includes('.') ? safeJoin(this.modelsDir, `${owner}/${name}`) : undefined;
  }

  /**
   * The convenience symlink `<root>/models/<owner>/<dotted name>` → the masked dir, made after a
   * snapshot like the SDK does; best effort (Windows, odd file systems), never replaces anything.
   */
  async ensureDottedSymlink(id: string): Promise<void> {
    const link = this.dottedLinkPath(id);
    if (link === undefined || (await exists(link))) return;
    await fs.symlink(this.legacyDirPath(id), link, 'dir').catch(() => undefined);
  }

  /**
   * A copy of `file` already on disk in either layout (other than `exclude`), verified by size
   * and sha256: a download source that costs no network.
   */
  async findLocalCopy(
    id: string,
    revision: string,
    file: RemoteFile,
    exclude: string,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    if (!file.sha256) return undefined;
    const candidates = [this.legacyDirPath(id), this.v2Snapshot(id, revision).dir];
    for (const dir of candidates) {
      let p: string;
      try {
        p = safeJoin(dir, file.path);
      } catch {
        continue;
      }
      if (path.resolve(p) === path.resolve(exclude)) continue;
      if (await fileMatches(p, file, true, signal)) return p;
    }
    return undefined;
  }
}

async function listRegularFiles(root: string): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const abs = path.join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(abs, r);
      else {
        const st = await fs.stat(abs).catch(() => undefined);
        if (st?.isFile()) out.push({ path: r, size: st.size });
      }
    }
  };
  await walk(root, '');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
