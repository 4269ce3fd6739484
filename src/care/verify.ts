// `verify`: re-hashes every cached blob once and compares it with what it must be.
//   HF: the blob's name is its hash (64 hex: sha256 of an LFS file, 40 hex: git blob sha1); a
//       copied file (no-symlink mode) is checked against trees/<commit>.json when cached.
//   ModelScope: the sha256 of the hub's file listing (none offline: "unverifiable"); a legacy file
//       whose .msc revision differs from the listing's is not compared (it is outdated, not bad).
// `fix` deletes each bad blob under its lock and downloads exactly the affected files again.
// Names of one inode (hard links made by `dedup`) are hashed once, fetched once and linked again.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RemoteFile } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { placeFile } from '../layouts/place.js';
import { mscEntryMatches } from '../layouts/modelscope-cache.js';
import { acquireLock } from '../locks/flock.js';
import type { CareContext } from './context.js';
import { isInside, statMany } from './fs-walk.js';
import { hashFiles, hashFilesWithProgress, type HashAlgorithm, type HashJob } from './hash-pool.js';
import type { CachedFile, CachedRepo, CachedRevision, CacheScan } from './model.js';
import { etagOfBlobName } from '../layouts/hf-cache.js';
import { requireTargets } from './select.js';
import type { RepoRefDefaults } from '../hubs/repo-ref.js';

export type Verdict = 'ok' | 'corrupt' | 'truncated' | 'missing' | 'unverifiable';

export interface FileCheck {
  repo: string;
  revision: string;
  path: string;
  verdict: Verdict;
  blobPath?: string;
  algorithm?: HashAlgorithm;
  expected?: string;
  actual?: string;
  expectedSize?: number;
  size?: number;
  /** Why it could not be checked, or what went wrong while fixing it. */
  reason?: string;
}

export interface VerifyReport {
  repos: number;
  /** Distinct blobs hashed and their bytes. */
  blobs: number;
  bytes: number;
  ok: number;
  /** Corrupt, truncated and missing files that remain. */
  problems: FileCheck[];
  unverifiable: FileCheck[];
  /** Problems that `fix` repaired (verified again after the download). */
  fixed: FileCheck[];
  seconds: number;
}

export type VerifyEvent =
  | { type: 'verify-plan'; blobs: number; bytes: number; unverifiable: number }
  | { type: 'verify-progress'; bytes: number; total: number }
  | { type: 'verify-fix'; repo: string; revision: string; files: string[] }
  | { type: 'warning'; message: string };

export interface VerifyOptions {
  /** REPO[@REV] targets (default: every cached repo). */
  targets?: string[];
  defaults?: Pick<RepoRefDefaults, 'hub' | 'type'>;
  fix?: boolean;
  /** Parallel hashes (default: cores, at least 2). */
  concurrency?: number;
  hashMode?: 'threads' | 'inline';
  signal?: AbortSignal;
  onEvent?: (e: VerifyEvent) => void;
}

interface Expectation {
  algorithm: HashAlgorithm;
  hash: string;
  size?: number;
}

/** One file to check, with what it must hash to (or why that is unknown). */
interface Check {
  repo: CachedRepo;
  rev: CachedRevision;
  file: CachedFile;
  expect?: Expectation;
  reason?: string;
}

export async function verify(ctx: CareContext, scan: CacheScan, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const started = Date.now();
  const emit = (e: VerifyEvent): void => opts.onEvent?.(e);
  const selections = opts.targets?.length
    ? requireTargets(scan, opts.targets, opts.defaults)
    : scan.repos.map((repo) => ({ repo, revisions: repo.revisions }));

  const checks: Check[] = [];
  const missing: FileCheck[] = [];
  for (const { repo, revisions } of selections) {
    for (const rev of revisions) {
      checks.push(...(await expectationsFor(ctx, repo, rev, emit)));
      for (const p of rev.missing) missing.push(await missingCheck(repo, rev, p));
    }
  }
  const { results, blobs, bytes } = await hashChecks(checks, opts, emit);
  const report: VerifyReport = {
    repos: selections.length,
    blobs,
    bytes,
    ok: 0,
    problems: [...missing],
    unverifiable: [],
    fixed: [],
    seconds: 0,
  };
  for (const r of results) {
    if (r.verdict === 'ok') report.ok++;
    else if (r.verdict === 'unverifiable') report.unverifiable.push(r);
    else report.problems.push(r);
  }
  if (opts.fix && report.problems.length > 0)
    await fix(ctx, report, new Map(selections.map((s) => [s.repo.key, s.repo])), opts, emit);
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

async function expectationsFor(
  ctx: CareContext,
  repo: CachedRepo,
  rev: CachedRevision,
  emit: (e: VerifyEvent) => void,
): Promise<Check[]> {
  if (repo.layout === 'hf') {
    const layout = new HfRepoCache(repo.root, repo);
    const blobsDir = layout.blobsDir();
    const tree = await layout.readTree(rev.commit).catch(() => undefined);
    const listed = new Map(tree?.map((f) => [f.path, f]));
    return rev.files.map((file) => {
      const remote = listed.get(file.path);
      const etag = path.dirname(file.blobPath) === blobsDir ? etagOfBlobName(path.basename(file.blobPath)) : undefined;
      if (etag) {
        const expect: Expectation = { algorithm: etag.length === 64 ? 'sha256' : 'git-sha1', hash: etag };
        if (remote && (remote.sha256 === etag || remote.gitOid === etag)) expect.size = remote.size;
        return { repo, rev, file, expect };
      }
      if (remote) return { repo, rev, file, expect: remoteExpectation(remote) };
      return { repo, rev, file, reason: 'a copied file, and no trees/<commit>.json names its hash' };
    });
  }
  // ModelScope: the hub's listing is the only source of hashes.
  if (ctx.offline)
    return rev.files.map((file) => ({ repo, rev, file, reason: 'offline: ModelScope keeps no hashes on disk' }));
  let listing: RemoteFile[];
  try {
    listing = await ctx.client('modelscope').listFiles(repo, rev.commit);
  } catch (err) {
    emit({ type: 'warning', message: `Cannot list ${repo.key}@${rev.commit}: ${(err as Error).message}` });
    return rev.files.map((file) => ({
      repo,
      rev,
      file,
      reason: `file listing unavailable: ${(err as Error).message}`,
    }));
  }
  const listed = new Map(listing.map((f) => [f.path, f]));
  return rev.files.map((file) => {
    const remote = listed.get(file.path);
    if (!remote?.sha256)
      return { repo, rev, file, reason: remote ? 'the hub lists no sha256 for it' : 'not in the hub listing any more' };
    if (file.msRevision !== undefined && !mscEntryMatches({ Path: file.path, Revision: file.msRevision }, remote)) {
      return {
        repo,
        rev,
        file,
        reason: `cached at revision ${file.msRevision.slice(0, 12)}, the hub lists ${remote.msRevision?.slice(0, 12) ?? '?'} (see \`hubcache status\`)`,
      };
    }
    return { repo, rev, file, expect: { algorithm: 'sha256', hash: remote.sha256, size: remote.size } };
  });
}

/** A file whose bytes are gone; for HF the dangling link still names the blob and so its hash. */
async function missingCheck(repo: CachedRepo, rev: CachedRevision, repoPath: string): Promise<FileCheck> {
  const check: FileCheck = {
    repo: repo.key,
    revision: rev.commit,
    path: repoPath,
    verdict: 'missing',
    reason: 'its blob or file is gone',
  };
  const linkPath = path.join(rev.path, ...repoPath.split('/'));
  const target = await fs.readlink(linkPath).then(
    (t) => path.resolve(path.dirname(linkPath), t),
    () => undefined,
  );
  const etag = target ? etagOfBlobName(path.basename(target)) : undefined;
  if (repo.layout === 'hf' && target && etag) {
    check.blobPath = target;
    check.algorithm = etag.length === 64 ? 'sha256' : 'git-sha1';
    check.expected = etag;
  } else {
    check.blobPath = linkPath;
  }
  return check;
}

function remoteExpectation(f: RemoteFile): Expectation {
  if (f.sha256) return { algorithm: 'sha256', hash: f.sha256, size: f.size };
  return { algorithm: 'git-sha1', hash: f.gitOid ?? '', size: f.size };
}

/** Hashes each distinct blob once and turns the results into verdicts per file. */
async function hashChecks(
  checks: Check[],
  opts: VerifyOptions,
  emit: (e: VerifyEvent) => void,
): Promise<{ results: FileCheck[]; blobs: number; bytes: number }> {
  const jobs: HashJob[] = [];
  const jobIndex = new Map<string, number>();
  let total = 0;
  // A file hard-linked under several names (after `dedup`: an HF blob and a ModelScope file) is one inode.
  const inodes = await inodeKeys(checks.filter((c) => c.expect).map((c) => c.file.blobPath));
  const keyOf = (c: Check): string => `${inodes.get(c.file.blobPath)}\0${c.expect?.algorithm}`;
  for (const c of checks) {
    if (!c.expect) continue;
    const key = keyOf(c);
    if (jobIndex.has(key)) continue;
    jobIndex.set(key, jobs.length);
    jobs.push({ path: c.file.blobPath, algorithm: c.expect.algorithm });
    total += c.file.size;
  }
  emit({ type: 'verify-plan', blobs: jobs.length, bytes: total, unverifiable: checks.filter((c) => !c.expect).length });
  const hashed = await hashFilesWithProgress(jobs, opts, (bytes) => emit({ type: 'verify-progress', bytes, total }));
  const results = checks.map((c): FileCheck => {
    const base: FileCheck = {
      repo: c.repo.key,
      revision: c.rev.commit,
      path: c.file.path,
      blobPath: c.file.blobPath,
      verdict: 'unverifiable',
      size: c.file.size,
    };
    if (!c.expect) return { ...base, reason: c.reason ?? 'no expected hash' };
    const r = hashed[jobIndex.get(keyOf(c)) as number];
    return { ...base, ...judge(c.expect, r) };
  });
  return { results, blobs: jobs.length, bytes: total };
}

/** `dev:ino` of each path (the path itself when it cannot be read: it is then its own group). */
async function inodeKeys(paths: readonly string[]): Promise<Map<string, string>> {
  const distinct = [...new Set(paths)];
  const stats = await statMany(distinct);
  return new Map(
    distinct.map((p, i) => {
      const st = stats[i];
      return [p, st ? `${st.dev}:${st.ino}` : p];
    }),
  );
}

function judge(expect: Expectation, r: Awaited<ReturnType<typeof hashFiles>>[number] | undefined): Partial<FileCheck> {
  const out: Partial<FileCheck> = { algorithm: expect.algorithm, expected: expect.hash };
  if (expect.size !== undefined) out.expectedSize = expect.size;
  if (!r || !r.ok) return { ...out, verdict: 'missing', reason: r ? r.message : 'not hashed' };
  out.actual = r.hex;
  out.size = r.size;
  if (r.hex === expect.hash.toLowerCase()) return { ...out, verdict: 'ok' };
  if (expect.size !== undefined && r.size < expect.size) return { ...out, verdict: 'truncated' };
  return { ...out, verdict: 'corrupt' };
}

// -------------------------------------------------------------------------------------------
// --fix

/**
 * Deletes each corrupt/truncated blob (under its lock, inside the cache only), then downloads
 * exactly the affected files of each revision again, and hashes them once more.
 */
async function fix(
  ctx: CareContext,
  report: VerifyReport,
  repos: Map<string, CachedRepo>,
  opts: VerifyOptions,
  emit: (e: VerifyEvent) => void,
): Promise<void> {
  const problems = report.problems;
  const roots = [ctx.roots.hf, ctx.roots.modelscope, ctx.roots.modelscopeV2 ?? ctx.roots.modelscope];
  // Names of one bad inode (hard links made by `dedup`): the first is fetched, the others re-linked to it.
  const sharers = await sharedInodes(problems);
  const fetched = problems.filter((p) => !sharers.has(p));
  for (const p of fetched) {
    if (p.verdict === 'missing' || !p.blobPath) continue;
    await removeBadBlob(p, roots).catch((err) => {
      p.reason = `could not remove the bad copy: ${(err as Error).message}`;
    });
  }
  const attempted = await fetchAgain(ctx, fetched, repos, opts, emit);
  const relinked: FileCheck[] = [];
  for (const [p, leader] of sharers) {
    const src = await resolvedFile(leader);
    if (!src || !p.blobPath) {
      p.reason = `it shares its bytes with ${leader.blobPath}, which could not be fetched again`;
      continue;
    }
    await relink(src, p, roots).then(
      () => relinked.push(p),
      (err) => (p.reason = `could not link it to the file fetched again (${src}): ${(err as Error).message}`),
    );
  }
  // Trust nothing: hash what was downloaded again.
  const rechecked = await recheck([...attempted, ...relinked], opts);
  report.problems = problems.filter((p) => !rechecked.has(p));
  report.fixed = [...rechecked];
}

/** Each revision's bad files downloaded again (files whose blob came back meanwhile are not). */
async function fetchAgain(
  ctx: CareContext,
  problems: FileCheck[],
  repos: Map<string, CachedRepo>,
  opts: VerifyOptions,
  emit: (e: VerifyEvent) => void,
): Promise<FileCheck[]> {
  const groups = new Map<string, FileCheck[]>();
  for (const p of problems)
    groups.set(`${p.repo}\0${p.revision}`, [...(groups.get(`${p.repo}\0${p.revision}`) ?? []), p]);
  const attempted: FileCheck[] = [];
  for (const [, group] of groups) {
    if (opts.signal?.aborted) break;
    const first = group[0] as FileCheck;
    const id = repos.get(first.repo);
    if (!id) continue;
    // A blob shared with a revision fixed a moment ago is back already: no second download.
    const todo: FileCheck[] = [];
    for (const p of group) if (!(p.blobPath && p.verdict !== 'missing' && (await exists(p.blobPath)))) todo.push(p);
    attempted.push(...group);
    if (todo.length === 0) continue;
    emit({ type: 'verify-fix', repo: first.repo, revision: first.revision, files: todo.map((p) => p.path) });
    try {
      await ctx.download({
        repo: { hub: id.hub, type: id.type, id: id.id },
        revision: first.revision,
        files: todo.map((p) => p.path),
        forceDownload: true,
        ...(id.layout === 'ms-snapshots' ? { msLayout: 'v2' as const } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      for (const p of todo) p.reason = `download failed: ${(err as Error).message}`;
      emit({ type: 'warning', message: `Could not fix ${first.repo}@${first.revision}: ${(err as Error).message}` });
    }
  }
  return attempted;
}

/** Bad files that share an inode with an earlier bad file → that file (the one fetched again). */
async function sharedInodes(problems: FileCheck[]): Promise<Map<FileCheck, FileCheck>> {
  const present = problems.filter((p) => p.verdict !== 'missing' && p.blobPath);
  const keys = await inodeKeys(present.map((p) => p.blobPath as string));
  const leaders = new Map<string, FileCheck>();
  const out = new Map<FileCheck, FileCheck>();
  for (const p of present) {
    const key = keys.get(p.blobPath as string) as string;
    const leader = leaders.get(key);
    if (!leader) leaders.set(key, p);
    else if (leader.blobPath !== p.blobPath) out.set(p, leader);
  }
  return out;
}

async function recheck(checks: FileCheck[], opts: VerifyOptions): Promise<Set<FileCheck>> {
  const targets = await Promise.all(checks.map(async (c) => ({ c, file: await resolvedFile(c) })));
  const ok = new Set<FileCheck>();
  // No hash known (a ModelScope file that was missing): the download verified it against the hub.
  for (const t of targets) {
    if (t.file && !t.c.expected) {
      t.c.verdict = 'ok';
      t.c.reason = 'downloaded again (checked by the download against the hub)';
      ok.add(t.c);
    }
  }
  const jobs = targets
    .filter((t) => t.file && t.c.algorithm && t.c.expected)
    .map((t) => ({ t, job: { path: t.file as string, algorithm: t.c.algorithm as HashAlgorithm } }));
  const results = await hashFiles(
    jobs.map((j) => j.job),
    opts.signal ? { signal: opts.signal } : {},
  );
  jobs.forEach((j, i) => {
    const r = results[i];
    if (r?.ok && r.hex === j.t.c.expected) {
      j.t.c.verdict = 'ok';
      j.t.c.actual = r.hex;
      j.t.c.size = r.size;
      delete j.t.c.reason;
      ok.add(j.t.c);
    }
  });
  return ok;
}

/** Where the file's bytes are now (a missing blob may have come back under its name). */
async function resolvedFile(c: FileCheck): Promise<string | undefined> {
  if (c.blobPath && (await exists(c.blobPath))) return c.blobPath;
  return undefined;
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}

async function removeBadBlob(p: FileCheck, roots: string[]): Promise<void> {
  await underBlobLock(p, roots, (real) => fs.unlink(real));
}

/** Puts a hard link to `src` (a copy where the file system cannot) in place of the bad file, atomically. */
async function relink(src: string, p: FileCheck, roots: string[]): Promise<void> {
  await underBlobLock(p, roots, async (real) => {
    await placeFile(src, real, 'link');
  });
}

/** Runs `op` on the bad file's real path, inside the cache only, holding its HF blob lock if it is a blob. */
async function underBlobLock(p: FileCheck, roots: string[], op: (real: string) => Promise<void>): Promise<void> {
  const blob = p.blobPath as string;
  const real = await fs.realpath(blob).catch(() => undefined);
  if (!real) return;
  const realRoots = await Promise.all(roots.map((r) => fs.realpath(r).catch(() => r)));
  if (!realRoots.some((r) => isInside(r, real) && r !== real))
    throw new Error(`${real} is outside the cache; not touching it`);
  const etag = etagOfBlobName(path.basename(blob));
  const layout = HfRepoCache.atFolder(path.dirname(path.dirname(blob)));
  const lockPath = etag && layout && path.dirname(blob) === layout.blobsDir() ? layout.lockPath(etag) : undefined;
  const lock = lockPath ? await acquireLock(lockPath, { timeoutMs: 30_000 }) : undefined;
  try {
    await op(real);
  } finally {
    await lock?.release();
  }
}
