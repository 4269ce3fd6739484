// `unpack`: merges a `hubcache pack` archive into a cache, for a machine with no network.
//
// 1. Read: every member name is checked before its bytes are touched (no absolute paths, no
//    `..`, no member outside the known layouts, symlinks only from an HF snapshot to a blob of
//    the same repo, no hard links or devices, no duplicates, tree listings with safe paths and
//    ids only); file bodies stream into a staging folder inside the cache (same file system:
//    the commit is a rename), hashed on the way.
// 2. Verify: the members must match the manifest exactly (names, sizes, sha256, link targets),
//    HF blobs must hash to their names, refs must name a commit of the archive. Any mismatch
//    stops here, the staging folder is removed, and the cache is untouched.
// 3. Commit, blobs before the links to them before refs: existing blobs and files are kept (a
//    blob's name is its content); refs, `.mv` and ModelScope files that differ from the cache's
//    are only replaced with `updateRefs`. Each step is an atomic rename or link, under the same
//    locks a download takes, so a crash leaves a consistent cache and readers never see half a file.
//
// The steps live in unpack-read.ts, unpack-verify.ts and unpack-commit.ts; this file runs them.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DiskFullError } from '../errors.js';
import type { CareContext } from './context.js';
import { HUBCACHE_DIR } from './scan.js';
import { Committer } from './unpack-commit.js';
import type { UnpackOptions, UnpackReport } from './unpack-model.js';
import { readArchive } from './unpack-read.js';
import { verify } from './unpack-verify.js';

export {
  ArchiveError,
  type ChangeAction,
  type RefChange,
  type UnpackChange,
  type UnpackEvent,
  type UnpackOptions,
  type UnpackReport,
} from './unpack-model.js';

export async function unpack(ctx: CareContext, opts: UnpackOptions): Promise<UnpackReport> {
  const started = Date.now();
  const archive = path.resolve(opts.archive);
  const { size: archiveSize } = await fs.stat(archive);
  const hfRoot = ctx.roots.hf;
  const cleanup: string[] = [];
  let staging: string | undefined;
  if (!opts.dryRun) {
    await checkSpace(hfRoot, archiveSize);
    // Folders created only for staging are removed again (deepest first, and only when empty).
    for (let dir = path.join(hfRoot, HUBCACHE_DIR); ; dir = path.dirname(dir)) {
      if (
        !(await fs.stat(dir).then(
          () => true,
          () => false,
        ))
      )
        cleanup.push(dir);
      if (dir === hfRoot || path.dirname(dir) === dir) break;
    }
    staging = path.join(hfRoot, HUBCACHE_DIR, `unpack-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(staging, { recursive: true });
  }
  try {
    const { observed, manifest } = await readArchive(archive, archiveSize, staging, opts);
    verify(observed, manifest);
    const report: UnpackReport = {
      archive,
      dryRun: !!opts.dryRun,
      repos: manifest.repos,
      verified: observed.size,
      bytes: [...observed.values()].reduce((s, o) => s + o.size, 0),
      added: 0,
      kept: 0,
      replaced: 0,
      conflicts: [],
      refs: [],
      changes: [],
      seconds: 0,
    };
    const committer = new Committer(ctx, opts, report);
    for (const repo of manifest.repos) {
      const members = [...observed.values()].filter((o) => 'prefix' in o.role && o.role.prefix === repo.prefix);
      if (repo.layout === 'hf') await committer.hf(repo, members);
      else if (repo.layout === 'ms-legacy') await committer.msLegacy(repo, members);
      else await committer.msSnapshots(repo, members);
    }
    report.seconds = (Date.now() - started) / 1000;
    return report;
  } finally {
    if (staging) await fs.rm(staging, { recursive: true, force: true });
    for (const dir of cleanup) await fs.rmdir(dir).catch(() => undefined); // only if still empty
  }
}

async function checkSpace(root: string, needed: number): Promise<void> {
  let dir = root;
  while (
    !(await fs.stat(dir).then(
      () => true,
      () => false,
    )) &&
    path.dirname(dir) !== dir
  )
    dir = path.dirname(dir);
  const st = await fs.statfs(dir).catch(() => undefined);
  if (!st) return;
  const free = st.bavail * st.bsize;
  if (free < needed) {
    throw new DiskFullError(
      `Not enough space to unpack: the archive holds ${needed} bytes, ${free} are free on the file system of ${root}`,
      needed,
      free,
      {
        hint: 'Free space (`hubcache prune`, `hubcache gc --max-size ...`) or unpack into another --cache-dir.',
      },
    );
  }
}
