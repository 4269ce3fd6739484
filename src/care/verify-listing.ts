// What `hf cache verify` adds to re-hashing: the revision's file listing compared with what is on
// disk (files missing locally, files the revision does not have), for cached revisions and for a
// `--local-dir` folder, whose files are hashed against the listing (huggingface_hub's verify_maps).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RemoteFile, RepoRef } from '../hubs/types.js';
import { HfLocalDir } from '../layouts/hf-local-dir.js';
import { HfRepoCache, parseTreeCache } from '../layouts/hf-cache.js';
import { OfflineMissError, UsageError } from '../errors.js';
import { gitBlobSha1File, sha256File } from '../util/hash.js';
import { runPool } from '../util/pool.js';
import type { CareContext } from './context.js';
import type { CachedRepo, CachedRevision } from './model.js';
import type { FileCheck } from './verify.js';

export interface ListingDiff {
  repo: string;
  revision: string;
  /** In the revision's listing, not on disk. */
  missing: string[];
  /** On disk, not in the revision's listing. */
  extra: string[];
}

/** The listing of a cached revision: HF's trees/<commit>.json (offline), else the hub's. */
async function listingOf(
  ctx: CareContext,
  repo: CachedRepo,
  rev: CachedRevision,
  signal?: AbortSignal,
): Promise<RemoteFile[]> {
  if (repo.layout === 'hf') {
    const tree = await new HfRepoCache(repo.root, repo).readTree(rev.commit);
    if (tree) return tree;
  }
  if (ctx.offline)
    throw new OfflineMissError(`No file listing of ${repo.key}@${rev.commit.slice(0, 12)} in the cache, and offline`);
  return ctx.client(repo.hub).listFiles(repo, rev.commit, signal);
}

/** Missing and extra files of each selected revision; a revision whose listing is unknown gets `reason`. */
export async function listingDiffs(
  ctx: CareContext,
  selections: ReadonlyArray<{ repo: CachedRepo; revisions: readonly CachedRevision[] }>,
  signal?: AbortSignal,
): Promise<Array<ListingDiff & { reason?: string }>> {
  const out: Array<ListingDiff & { reason?: string }> = [];
  for (const { repo, revisions } of selections) {
    for (const rev of revisions) {
      const onDisk = new Set([...rev.files.map((f) => f.path), ...rev.missing]);
      try {
        const listed = await listingOf(ctx, repo, rev, signal);
        const names = new Set(listed.map((f) => f.path));
        out.push({
          repo: repo.key,
          revision: rev.commit,
          missing: [...names].filter((p) => !onDisk.has(p)).sort(),
          extra: [...onDisk].filter((p) => !names.has(p)).sort(),
        });
      } catch (err) {
        out.push({ repo: repo.key, revision: rev.commit, missing: [], extra: [], reason: (err as Error).message });
      }
    }
  }
  return out;
}

export interface LocalDirVerifyReport extends ListingDiff {
  path: string;
  checked: number;
  ok: number;
  problems: FileCheck[];
}

/** Every file of `dir` below it, as repo paths, without the `.cache/huggingface` bookkeeping. */
async function localFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (r === '.cache/huggingface' || r === '.cache') {
        if (e.isDirectory() && r === '.cache') await walk(path.join(d, e.name), r);
        continue;
      }
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
      else if (e.isFile() || e.isSymbolicLink()) out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/**
 * `hf cache verify REPO --local-dir DIR`: each file of the revision's listing that is in DIR is
 * hashed (sha256 when the hub gives it, else the git blob sha1); missing and extra files listed.
 */
export async function verifyLocalDir(
  ctx: CareContext,
  repo: RepoRef,
  dir: string,
  opts: { signal?: AbortSignal; concurrency?: number } = {},
): Promise<LocalDirVerifyReport> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) throw new UsageError(`--local-dir ${dir} is not a folder`);
  const local = new HfLocalDir(dir);
  let listed: RemoteFile[];
  let revision: string;
  if (ctx.offline) {
    // Offline: the commit the download recorded, and the listing it kept beside the files.
    const files = await localFiles(dir);
    const meta = (await Promise.all(files.map((f) => local.readMetadata(f)))).find((m) => m !== undefined);
    revision = repo.revision ?? meta?.commit ?? '';
    const kept = revision ? await fs.readFile(local.treePath(revision), 'utf8').catch(() => undefined) : undefined;
    if (kept === undefined)
      throw new OfflineMissError(`Offline, and ${dir} keeps no file listing to verify against`, [], {
        hint: 'Run without --offline.',
      });
    listed = parseTreeCache(kept);
  } else {
    const client = ctx.client(repo.hub);
    const snap = await client.snapshot(repo, repo.revision ?? (repo.hub === 'hf' ? 'main' : 'master'), opts.signal);
    listed = snap.files;
    revision = snap.commit;
  }
  const onDisk = new Set(await localFiles(dir));
  const names = new Map(listed.map((f) => [f.path, f]));
  const both = [...names.keys()].filter((p) => onDisk.has(p)).sort();
  const report: LocalDirVerifyReport = {
    repo: `${repo.hub === 'hf' ? '' : `${repo.hub}:`}${repo.id}`,
    revision,
    path: dir,
    checked: both.length,
    ok: 0,
    problems: [],
    missing: [...names.keys()].filter((p) => !onDisk.has(p)).sort(),
    extra: [...onDisk].filter((p) => !names.has(p)).sort(),
  };
  await runPool(both, opts.concurrency ?? 4, async (p) => {
    const remote = names.get(p) as RemoteFile;
    const file = local.filePath(p);
    const algorithm = remote.sha256 ? 'sha256' : 'git-sha1';
    const expected = (remote.sha256 ?? remote.gitOid ?? '').toLowerCase();
    const actual =
      algorithm === 'sha256' ? await sha256File(file, opts.signal) : await gitBlobSha1File(file, opts.signal);
    if (actual === expected) report.ok++;
    else {
      const size = (await fs.stat(file)).size;
      report.problems.push({
        repo: report.repo,
        revision,
        path: p,
        verdict: size < remote.size ? 'truncated' : 'corrupt',
        algorithm,
        expected,
        actual,
        expectedSize: remote.size,
        size,
      });
    }
  });
  report.problems.sort((a, b) => (a.path < b.path ? -1 : 1));
  return report;
}
