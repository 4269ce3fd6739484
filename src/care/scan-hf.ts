// Scan of one huggingface_hub repo folder (spec hf-hub.md §6.1), with two differences that
// make it useful for repairs: a damaged repo is reported with its damage instead of being
// skipped, and orphan blobs / partial downloads are listed (with sizes) instead of ignored.
//
// Speed: a snapshot entry's blob is found by readlink + path arithmetic (`../../blobs/<etag>`),
// and each blob is stat'ed once, in parallel batches; realpath is used only for the odd link
// that points somewhere else.
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { formatRepoRef, isCommitHash } from '../hubs/repo-ref.js';
import { BLOB_RE, etagOfBlobName, hfBlobLockPath, HfRepoCache, parseRepoFolderName } from '../layouts/hf-cache.js';
import { isAtomicTemp, isLegacyAtomicTemp } from '../util/fs.js';
import {
  isInside,
  JUNK_NAMES,
  readdirSafe,
  readlinkMany,
  readTextSafe,
  statMany,
  walkFiles,
  type WalkEntry,
} from './fs-walk.js';
import {
  repoOf,
  revisionOf,
  type CachedFile,
  type CachedRepo,
  type CachedRevision,
  type CacheWarning,
} from './model.js';

export { hfBlobLockPath };

interface BlobInfo {
  path: string;
  stat: Stats;
  /** A blob entry that is a link to a file outside the cache (moved to another disk). */
  outside: boolean;
}

export async function scanHfRepo(
  root: string,
  folder: string,
  warnings: CacheWarning[],
): Promise<CachedRepo | undefined> {
  const dir = path.join(root, folder);
  const parsed = parseRepoFolderName(folder);
  if (!parsed) {
    warnings.push({
      kind: 'foreign',
      path: dir,
      message: `Not a cache repo folder (expected models--org--name): ${folder}`,
    });
    return undefined;
  }
  const repoKey = formatRepoRef({ hub: 'hf', ...parsed });
  const warn = (w: Omit<CacheWarning, 'repo'>): void => {
    warnings.push({ ...w, repo: repoKey });
  };
  const layout = new HfRepoCache(root, parsed);
  const blobsDir = layout.blobsDir();
  const [blobs, refs, snapshotEntries, dirStat] = await Promise.all([
    scanBlobs(root, folder, blobsDir, warn),
    readRefs(layout.refsDir(), warn),
    fs.readdir(layout.snapshotsDir(), { withFileTypes: true }).catch(() => undefined),
    fs.stat(dir),
  ]);
  if (!snapshotEntries) warn({ kind: 'corrupted', path: dir, message: `No snapshots/ folder in ${folder}` });

  const revisions: CachedRevision[] = [];
  const referenced = new Set<string>();
  await Promise.all(
    (snapshotEntries ?? []).map(async (e) => {
      if (JUNK_NAMES.has(e.name)) return;
      const snapDir = path.join(layout.snapshotsDir(), e.name);
      if (!e.isDirectory()) {
        warn({ kind: 'foreign', path: snapDir, message: `Not a snapshot folder: ${snapDir}` });
        return;
      }
      const rev = await scanRevision(root, snapDir, e.name, blobsDir, blobs, warn);
      for (const f of rev.files) referenced.add(f.blobPath);
      revisions.push(rev);
    }),
  );
  revisions.sort((a, b) => (a.commit < b.commit ? -1 : 1));

  const byCommit = new Map(revisions.map((r) => [r.commit, r]));
  for (const [name, commit] of Object.entries(refs)) {
    const rev = byCommit.get(commit);
    if (rev) rev.refs.push(name);
    else {
      const why = isCommitHash(commit)
        ? `points to ${commit}, which has no snapshot`
        : `does not hold a commit hash (${JSON.stringify(commit.slice(0, 60))})`;
      warn({
        kind: 'missing-commit',
        path: path.join(layout.refsDir(), name),
        message: `Ref ${name} of ${repoKey} ${why}`,
      });
    }
  }
  for (const r of revisions) r.refs.sort();

  for (const b of blobs.values()) {
    if (referenced.has(b.path)) continue;
    warn({
      kind: 'orphan-blob',
      path: b.path,
      size: b.stat.size,
      lastModifiedMs: b.stat.mtimeMs,
      lockPath: hfBlobLockPath(root, folder, path.basename(b.path)),
      message: `Blob not used by any snapshot of ${repoKey}: ${path.basename(b.path)}`,
    });
  }

  return repoOf({ hub: 'hf', ...parsed, key: repoKey, layout: 'hf', path: dir, root, refs, revisions }, dirStat);
}

/** blobs/: the blobs by name (stat'ed), partial downloads and strays reported. */
async function scanBlobs(
  root: string,
  folder: string,
  blobsDir: string,
  warn: (w: Omit<CacheWarning, 'repo'>) => void,
): Promise<Map<string, BlobInfo>> {
  const entries = (await readdirSafe(blobsDir)).filter((e) => !JUNK_NAMES.has(e.name));
  const paths = entries.map((e) => path.join(blobsDir, e.name));
  const stats = await statMany(paths);
  const blobs = new Map<string, BlobInfo>();
  const linked = entries.filter((e) => e.isSymbolicLink()).map((e) => path.join(blobsDir, e.name));
  const outside = new Set<string>();
  await Promise.all(
    linked.map(async (p) => {
      const real = await fs.realpath(p).catch(() => undefined);
      if (real && !isInside(root, real)) {
        outside.add(p);
        warn({ kind: 'outside-link', path: p, message: `Blob points outside the cache (${real}): ${p}` });
      }
    }),
  );
  entries.forEach((e, i) => {
    const p = paths[i] as string;
    const st = stats[i];
    if (isAtomicTemp(e.name) || isLegacyAtomicTemp(e.name)) {
      warn(staleTemp(p, st));
    } else if (e.name.endsWith('.incomplete')) {
      const etag = etagOfBlobName(e.name);
      warn({
        kind: 'incomplete',
        path: p,
        size: st?.size ?? 0,
        lastModifiedMs: st?.mtimeMs ?? 0,
        ...(etag ? { lockPath: hfBlobLockPath(root, folder, etag) } : {}),
        message: `Partial download: ${p}`,
      });
    } else if (st?.isFile() && BLOB_RE.test(e.name)) {
      blobs.set(e.name, { path: p, stat: st, outside: outside.has(p) });
    } else if (!st) {
      warn({ kind: 'broken-link', path: p, message: `Blob is a broken symlink: ${p}` });
    } else {
      warn({ kind: 'foreign', path: p, size: st.size, message: `Unexpected entry in blobs/: ${e.name}` });
    }
  });
  return blobs;
}

/** refs/**: ref name → content, unstripped like Python (a trailing newline makes it invalid). */
async function readRefs(
  refsDir: string,
  warn: (w: Omit<CacheWarning, 'repo'>) => void,
): Promise<Record<string, string>> {
  const st = await fs.stat(refsDir).catch(() => undefined);
  if (!st) return {};
  if (!st.isDirectory()) {
    warn({ kind: 'corrupted', path: refsDir, message: `refs is a file, not a folder: ${refsDir}` });
    return {};
  }
  const refs: Record<string, string> = {};
  const files = await walkFiles(refsDir);
  await Promise.all(
    files.map(async (f) => {
      if (isAtomicTemp(path.basename(f.abs)) || isLegacyAtomicTemp(path.basename(f.abs))) {
        warn(staleTemp(f.abs, await fs.lstat(f.abs).catch(() => undefined)));
        return;
      }
      const value = readTextSafe(f.abs);
      if (value !== undefined) refs[f.rel] = value;
    }),
  );
  return refs;
}

async function scanRevision(
  root: string,
  snapDir: string,
  commit: string,
  blobsDir: string,
  blobs: Map<string, BlobInfo>,
  warn: (w: Omit<CacheWarning, 'repo'>) => void,
): Promise<CachedRevision> {
  // A temp of an atomic write (a copy, a link being replaced) is never a file of the snapshot.
  const walked = await walkFiles(snapDir);
  const temps = walked.filter((e) => {
    const name = path.basename(e.abs);
    return isAtomicTemp(name) || (e.kind === 'symlink' && isLegacyAtomicTemp(name));
  });
  const entries = walked.filter((e) => !temps.includes(e));
  const links = entries.filter((e) => e.kind === 'symlink');
  const targets = await readlinkMany(links.map((l) => l.abs));
  const files: CachedFile[] = [];
  const missing: string[] = [];
  const slow: WalkEntry[] = [];
  links.forEach((l, i) => {
    const t = targets[i];
    const blob = t === undefined ? undefined : (blobOfLink(l.rel, t, blobs) ?? blobOfTarget(l.abs, t, blobsDir, blobs));
    if (blob) files.push(fileOf(l, blob.path, blob.stat, blob.outside));
    else slow.push(l); // dangling, or pointing somewhere unusual: settle it with stat + realpath
  });
  slow.push(...entries.filter((e) => e.kind !== 'symlink'));
  await Promise.all(
    temps.map(async (t) => {
      warn(staleTemp(t.abs, await fs.lstat(t.abs).catch(() => undefined)));
    }),
  );
  const stats = await statMany(slow.map((s) => s.abs));
  await Promise.all(
    slow.map(async (e, i) => {
      const st = stats[i];
      if (!st) {
        missing.push(e.rel);
        warn({ kind: 'broken-link', path: e.abs, message: `Blob missing (broken symlink): ${e.abs}` });
        return;
      }
      if (!st.isFile()) {
        warn({ kind: 'foreign', path: e.abs, message: `Not a regular file in a snapshot: ${e.abs}` });
        return;
      }
      const real = e.kind === 'symlink' ? await fs.realpath(e.abs).catch(() => e.abs) : e.abs;
      const out = !isInside(root, real);
      if (out)
        warn({
          kind: 'outside-link',
          path: e.abs,
          size: st.size,
          message: `Points outside the cache (${real}): ${e.abs}`,
        });
      files.push(fileOf(e, real, st, out));
    }),
  );
  files.sort((a, b) => (a.path < b.path ? -1 : 1));
  missing.sort();
  const folder = files.length === 0 ? await fs.stat(snapDir).catch(() => undefined) : undefined;
  return revisionOf(commit, snapDir, files, missing, folder ?? { atimeMs: 0, mtimeMs: 0 });
}

/** The blob of huggingface_hub's own link form, by string arithmetic: one `../` per folder, `blobs/<name>`. */
function blobOfLink(rel: string, target: string, blobs: Map<string, BlobInfo>): BlobInfo | undefined {
  let up = 2; // snapshots/<commit>/
  for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) up++;
  const prefix = `${'../'.repeat(up)}blobs/`;
  return target.startsWith(prefix) && !target.includes('/', prefix.length)
    ? blobs.get(target.slice(prefix.length))
    : undefined;
}

/** Any other link form that still lands in blobsDir (absolute, `./`, a detour). */
function blobOfTarget(
  link: string,
  target: string,
  blobsDir: string,
  blobs: Map<string, BlobInfo>,
): BlobInfo | undefined {
  const abs = path.resolve(path.dirname(link), target);
  return path.dirname(abs) === blobsDir ? blobs.get(path.basename(abs)) : undefined;
}

/** A leftover temp of an atomic write (util/fs atomicTempPath): prune removes it once old enough. */
function staleTemp(p: string, st: Stats | undefined): Omit<CacheWarning, 'repo'> {
  const size = st && !st.isSymbolicLink() ? st.size : 0;
  return { kind: 'stale-temp', path: p, size, lastModifiedMs: st?.mtimeMs ?? 0, message: `Leftover temp file: ${p}` };
}

function fileOf(e: WalkEntry, blobPath: string, st: Stats, outside: boolean): CachedFile {
  const f: CachedFile = {
    path: e.rel,
    linkPath: e.abs,
    blobPath,
    size: st.size,
    lastAccessedMs: st.atimeMs,
    lastModifiedMs: st.mtimeMs,
    inode: `${st.dev}:${st.ino}`,
  };
  if (outside) f.outside = true;
  return f;
}
