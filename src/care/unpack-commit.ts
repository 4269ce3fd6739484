// unpack, step 3: commit, blobs before the links to them before refs. Existing blobs and files
// are kept (a blob's name is its content); refs, `.mv` and ModelScope files that differ from the
// cache's are only replaced with `updateRefs`. Each step is an atomic rename or link, under the
// same locks a download takes.
import path from 'node:path';
import type { RemoteFile } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import {
  fileMatches,
  maskModelName,
  ModelScopeCache,
  MsLegacyDir,
  parseMv,
  splitMsModelId,
} from '../layouts/modelscope-cache.js';
import { acquireLock } from '../locks/flock.js';
import { placeFile } from '../layouts/place.js';
import { isFile, writeFileAtomic } from '../util/fs.js';
import { decodeMsc, type MscEntry } from '../util/pickle.js';
import { safeJoin } from '../util/safe-path.js';
import type { CareContext } from './context.js';
import { symlinkBlobTarget, type MemberRole, type PackedRepo } from './pack-format.js';
import type { ChangeAction, Observed, RefChange, UnpackChange, UnpackOptions, UnpackReport } from './unpack-model.js';

export class Committer {
  private readonly symlinks: boolean;
  constructor(
    private readonly ctx: CareContext,
    private readonly opts: UnpackOptions,
    private readonly report: UnpackReport,
  ) {
    this.symlinks = opts.symlinks ?? true;
  }

  private note(p: string, action: ChangeAction, detail?: string): void {
    const c: UnpackChange = { path: p, action, ...(detail ? { detail } : {}) };
    this.report.changes.push(c);
    if (action === 'added') this.report.added++;
    else if (action === 'kept') this.report.kept++;
    else if (action === 'replaced') this.report.replaced++;
    else this.report.conflicts.push(c);
  }

  async hf(repo: PackedRepo, members: Observed[]): Promise<void> {
    const rc = new HfRepoCache(this.ctx.roots.hf, repo);
    const of = <K extends MemberRole['kind']>(kind: K): Array<Observed & { role: Extract<MemberRole, { kind: K }> }> =>
      members.filter((o): o is Observed & { role: Extract<MemberRole, { kind: K }> } => o.role.kind === kind);
    const blobs = of('hf-blob');
    if (blobs.length > 0 && !this.opts.dryRun) await rc.writeCachedirTag();
    for (const b of blobs) {
      const dest = rc.blobPath(b.role.etag);
      if (await isFile(dest)) {
        this.note(dest, 'kept');
        continue;
      }
      if (!this.opts.dryRun) {
        const lock = await acquireLock(rc.lockPath(b.role.etag), this.lockOpts());
        try {
          if (!(await isFile(dest))) await rc.addBlob(b.role.etag, b.staged as string, 'move');
        } finally {
          await lock.release();
        }
      }
      this.note(dest, 'added');
    }
    const sizes = new Map(blobs.map((b) => [b.role.etag, b.size]));
    for (const s of of('hf-snapshot')) {
      const dest = rc.snapshotPath(s.role.commit, s.role.repoPath);
      if (await isFile(dest)) {
        this.note(dest, 'kept');
        continue;
      }
      if (!this.opts.dryRun) {
        if (s.type === 'symlink') {
          const etag = path.posix.basename(symlinkBlobTarget(s.name, s.target ?? ''));
          await rc.linkSnapshot(s.role.commit, remoteFile(s.role.repoPath, etag, sizes.get(etag) ?? 0), {
            symlinks: this.symlinks,
            newBlob: false,
          });
        } else {
          await rc.addSnapshotFile(s.role.commit, s.role.repoPath, s.staged as string, 'move');
        }
      }
      this.note(dest, 'added');
    }
    for (const t of of('hf-tree')) await this.placeIfAbsent(t, rc.treePath(t.role.commit));
    for (const r of of('hf-ref')) await this.ref(repo, rc, r.role.ref, (r.small as Buffer).toString('utf8'));
  }

  private async ref(repo: PackedRepo, rc: HfRepoCache, name: string, commit: string): Promise<void> {
    const previous = await rc.readRef(name);
    const change: RefChange = { repo: repo.key, ref: name, commit, action: 'created' };
    if (previous !== undefined) change.previous = previous;
    if (previous === commit) change.action = 'unchanged';
    else if (previous !== undefined && !this.opts.updateRefs) {
      change.action = 'kept';
      this.note(
        rc.refPath(name),
        'conflict',
        `ref ${name} stays at ${previous}; the archive has ${commit} (--update-refs to take it)`,
      );
    } else {
      if (previous !== undefined) change.action = 'updated';
      if (!this.opts.dryRun) await rc.writeRef(name, commit);
    }
    this.report.refs.push(change);
  }

  async msLegacy(repo: PackedRepo, members: Observed[]): Promise<void> {
    const msRoot = this.ctx.roots.modelscope;
    const cache = new ModelScopeCache(msRoot, this.ctx.roots.modelscopeV2 ?? msRoot);
    const { owner, name } = splitMsModelId(repo.id);
    const dir = new MsLegacyDir(
      safeJoin(msRoot, repo.prefix.slice('ms/'.length)),
      cache.lockPath(repo.id),
      `${owner}/${maskModelName(name)}`,
    );
    const meta = (file: string): Buffer | undefined =>
      members.find((o) => o.role.kind === 'ms-meta' && o.role.file === file)?.small;
    const archiveIndex = safeDecodeMsc(meta('.msc'));
    const cachedIndex = await dir.readIndex();
    const toRecord: MscEntry[] = [];
    if (!this.opts.dryRun) await dir.writeMdl();
    for (const f of members) {
      if (f.role.kind !== 'ms-file') continue;
      const repoPath = f.role.repoPath;
      const outcome = await this.msFile(f, dir.filePath(repoPath), cache.v2LockPath(repo.id, repoPath));
      const entry = archiveIndex.find((e) => e.Path === repoPath);
      if (!entry) continue; // untracked in the source cache too
      const indexed = cachedIndex.some((e) => e.Path === repoPath);
      if (outcome === 'added' || outcome === 'replaced' || (outcome === 'kept' && (!indexed || this.opts.updateRefs)))
        toRecord.push(entry);
    }
    if (toRecord.length > 0 && !this.opts.dryRun)
      await dir.record(
        toRecord.map((e) => ({ path: e.Path, msRevision: e.Revision })),
        this.lockOpts(),
      );
    const mv = meta('.mv')?.toString('utf8');
    if (mv !== undefined) {
      const current = await dir.readMv();
      if (current === undefined || (this.opts.updateRefs && current.revision !== parseMv(mv).revision)) {
        if (!this.opts.dryRun) await writeFileAtomic(dir.mvPath, mv);
        this.note(dir.mvPath, current === undefined ? 'added' : 'replaced');
      } else if (current.revision !== parseMv(mv).revision) {
        this.note(
          dir.mvPath,
          'conflict',
          `.mv stays at revision ${current.revision}; the archive has ${parseMv(mv).revision} (--update-refs to take it)`,
        );
      }
    }
    if (!this.opts.dryRun && repo.type === 'model') await cache.ensureDottedSymlink(repo.id);
  }

  async msSnapshots(repo: PackedRepo, members: Observed[]): Promise<void> {
    const v2Root = this.ctx.roots.modelscopeV2 ?? this.ctx.roots.modelscope;
    const cache = new ModelScopeCache(this.ctx.roots.modelscope, v2Root);
    const repoDir = safeJoin(v2Root, repo.prefix.slice('msv2/'.length));
    for (const f of members) {
      if (f.role.kind !== 'msv2-file') continue;
      await this.msFile(
        f,
        safeJoin(repoDir, `snapshots/${f.role.revision}/${f.role.repoPath}`),
        cache.v2LockPath(repo.id, f.role.repoPath),
      );
    }
  }

  /** A ModelScope file: added when absent, kept when equal, replaced only with updateRefs. */
  private async msFile(f: Observed, dest: string, lockPath: string): Promise<ChangeAction> {
    const expected = { size: f.size, sha256: f.sha256 };
    if (await fileMatches(dest, expected, true, this.opts.signal)) {
      this.note(dest, 'kept');
      return 'kept';
    }
    const present = await isFile(dest);
    if (present && !this.opts.updateRefs) {
      this.note(dest, 'conflict', "the cached file differs from the archive's (--update-refs to take the archive's)");
      return 'conflict';
    }
    if (!this.opts.dryRun) {
      const lock = await acquireLock(lockPath, this.lockOpts());
      try {
        await placeFile(f.staged as string, dest, 'move');
      } finally {
        await lock.release();
      }
    }
    const action = present ? 'replaced' : 'added';
    this.note(dest, action);
    return action;
  }

  private async placeIfAbsent(o: Observed, dest: string): Promise<void> {
    if (await isFile(dest)) {
      this.note(dest, 'kept');
      return;
    }
    if (!this.opts.dryRun) await placeFile(o.staged as string, dest, 'move');
    this.note(dest, 'added');
  }

  private lockOpts(): { signal?: AbortSignal } {
    return this.opts.signal ? { signal: this.opts.signal } : {};
  }
}

function remoteFile(repoPath: string, etag: string, size: number): RemoteFile {
  const f: RemoteFile = { path: repoPath, size, lfs: etag.length === 64 };
  if (etag.length === 64) f.sha256 = etag;
  else f.gitOid = etag;
  return f;
}

function safeDecodeMsc(buf: Buffer | undefined): MscEntry[] {
  if (!buf) return [];
  try {
    return decodeMsc(buf);
  } catch {
    return [];
  }
}
