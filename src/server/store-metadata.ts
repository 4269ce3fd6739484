// Metadata answers built from the store alone, for --offline and for an upstream that is down with
// nothing in memory (e.g. after a restart): HF revision/info, tree and paths-info of a revision the
// store holds (refs/ and snapshots/); ModelScope info, revisions and file list from the legacy
// layout (.msc, .mv, files). Listing only what the store can serve, so a client's snapshot_download
// asks for nothing the mirror cannot give. Served with X-Hubcache-Stale.
import { randomBytes } from 'node:crypto';
import { promises as fsp, type Dirent } from 'node:fs';
import path from 'node:path';
import { isCommitHash } from '../hubs/repo-ref.js';
import type { RepoRef } from '../hubs/types.js';
import { HfRepoCache } from '../layouts/hf-cache.js';
import { ModelScopeCache } from '../layouts/modelscope-cache.js';
import { sha256File } from '../util/hash.js';

interface StoredFile {
  path: string;
  etag: string;
  size: number;
  gitOid?: string;
}

export interface StoreAnswer {
  status: number;
  body: unknown;
}

/** The files of `commit` the store holds (snapshot links to present blobs), with git oids from trees/ if known. */
async function storedFiles(rc: HfRepoCache, commit: string): Promise<StoredFile[]> {
  const root = rc.snapshotDir(commit);
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(root, { recursive: true, withFileTypes: true });
  } catch {
    return [];
  }
  const oids = new Map((await rc.readTree(commit))?.map((f) => [f.path, f.gitOid]) ?? []);
  const out: StoredFile[] = [];
  for (const e of entries) {
    if (e.isDirectory()) continue;
    const abs = path.join(e.parentPath, e.name);
    const rel = path.relative(root, abs).split(path.sep).join('/');
    const target = await fsp.readlink(abs).catch(() => undefined);
    const etag = target ? path.basename(target) : undefined;
    if (!etag || !/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(etag)) continue;
    const st = await fsp.stat(abs).catch(() => undefined);
    if (!st?.isFile()) continue;
    const f: StoredFile = { path: rel, etag, size: st.size };
    const oid = oids.get(rel);
    if (oid) f.gitOid = oid;
    out.push(f);
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function treeEntry(f: StoredFile): Record<string, unknown> {
  const lfs = f.etag.length === 64;
  const e: Record<string, unknown> = {
    type: 'file',
    oid: lfs ? (f.gitOid ?? f.etag.slice(0, 40)) : f.etag,
    size: f.size,
    path: f.path,
  };
  if (lfs) e.lfs = { oid: f.etag, size: f.size, pointerSize: 134 };
  return e;
}

/** Directories implied by the files (tree listings include them). */
function directories(files: StoredFile[]): string[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort();
}

const notFound = (code: string, message: string): StoreAnswer => ({ status: 404, body: { error: message, code } });

/**
 * The answer for `op` (`info`, `revision`, `tree`, `paths-info`) from the store, or undefined
 * when the store does not know the revision (the caller then answers 502/504).
 */
export async function storeMetadata(
  cacheDir: string,
  repo: RepoRef,
  op: string,
  rev: string,
  opts: { treePath?: string; recursive?: boolean; paths?: string[]; blobs?: boolean },
): Promise<StoreAnswer | undefined> {
  const rc = new HfRepoCache(cacheDir, repo);
  const commit = isCommitHash(rev) ? rev : await rc.resolveLocal(rev);
  if (!commit) return undefined;
  const files = await storedFiles(rc, commit);
  if (files.length === 0) return undefined;
  if (op === 'info' || op === 'revision') {
    const siblings = files.map((f) =>
      opts.blobs
        ? {
            rfilename: f.path,
            size: f.size,
            blobId: f.gitOid ?? f.etag,
            ...(f.etag.length === 64 ? { lfs: { sha256: f.etag, size: f.size, pointerSize: 134 } } : {}),
          }
        : { rfilename: f.path },
    );
    const slash = repo.id.indexOf('/');
    return {
      status: 200,
      body: {
        _id: '',
        id: repo.id,
        ...(repo.type === 'model' ? { modelId: repo.id } : {}),
        author: slash >= 0 ? repo.id.slice(0, slash) : repo.id,
        sha: commit,
        private: false,
        gated: false,
        disabled: false,
        tags: [],
        siblings,
      },
    };
  }
  if (op === 'tree') {
    const dir = (opts.treePath ?? '').replace(/^\/+|\/+$/g, '');
    const under = (p: string): boolean => dir === '' || p.startsWith(`${dir}/`);
    const direct = (p: string): boolean => under(p) && !p.slice(dir === '' ? 0 : dir.length + 1).includes('/');
    const keep = opts.recursive ? under : direct;
    const dirs = directories(files).filter((d) => keep(d) && d !== dir);
    if (dir !== '' && !directories(files).includes(dir)) return notFound('EntryNotFound', `Entry not found: ${dir}`);
    const entries: Array<Record<string, unknown> & { path: string }> = [
      ...dirs.map((d) => ({ type: 'directory', oid: '0'.repeat(40), size: 0, path: d })),
      ...files.filter((f) => keep(f.path)).map((f) => ({ ...treeEntry(f), path: f.path })),
    ];
    return { status: 200, body: entries.sort((a, b) => (a.path < b.path ? -1 : 1)) };
  }
  if (op === 'paths-info') {
    const wanted = new Set((opts.paths ?? []).map((p) => p.replace(/^\/+|\/+$/g, '')));
    const dirSet = new Set(directories(files));
    const out: Record<string, unknown>[] = files.filter((f) => wanted.has(f.path)).map(treeEntry);
    for (const w of wanted) if (dirSet.has(w)) out.push({ type: 'directory', oid: '0'.repeat(40), size: 0, path: w });
    return { status: 200, body: out };
  }
  return undefined;
}

/** `paths` of a paths-info body, form-encoded (huggingface_hub) or JSON (@huggingface/hub). */
export function pathsOfBody(body: string | undefined, contentType: string | undefined): string[] {
  if (!body) return [];
  try {
    if (/json/i.test(contentType ?? '')) {
      const j = JSON.parse(body) as { paths?: unknown };
      return Array.isArray(j.paths)
        ? j.paths.filter((p): p is string => typeof p === 'string')
        : typeof j.paths === 'string'
          ? [j.paths]
          : [];
    }
    const form = new URLSearchParams(body);
    return [...form.getAll('paths'), ...form.getAll('paths[]')];
  } catch {
    return [];
  }
}

// ---- ModelScope ---------------------------------------------------------------------------

/** sha256 of store files already hashed, by path + size + mtime (an air-gapped file list is asked often). */
const msHashes = new Map<string, string>();

async function storedSha256(abs: string, size: number, mtimeMs: number): Promise<string> {
  const k = `${abs}|${size}|${mtimeMs}`;
  let h = msHashes.get(k);
  if (h === undefined) {
    h = await sha256File(abs);
    if (msHashes.size > 100_000) msHashes.clear();
    msHashes.set(k, h);
  }
  return h;
}

const msOk = (data: unknown): StoreAnswer => ({
  status: 200,
  body: { Code: 200, Data: data, Message: 'success', RequestId: randomBytes(16).toString('hex'), Success: true },
});
const msNotFound = (message: string): StoreAnswer => ({
  status: 404,
  body: { Code: 404, Data: null, Message: message, RequestId: randomBytes(16).toString('hex'), Success: false },
});

/**
 * A ModelScope answer (`info`, `revisions`, `files`) from the store's legacy layout alone
 * (`.msc` entries whose files exist, `.mv` for the revision name, as `hubcache download
 * modelscope:` and the SDK write them), or undefined when the store holds nothing of the repo.
 * Only the revision the store was filled at is known; each file's Sha256 is computed once.
 */
export async function msStoreMetadata(
  cacheDir: string,
  repoId: string,
  op: 'info' | 'revisions' | 'files',
  query: { revision?: string | null; recursive?: boolean; root?: string | null },
): Promise<StoreAnswer | undefined> {
  const dir = new ModelScopeCache(cacheDir).legacy(repoId);
  const indexed = await dir.indexedFiles();
  if (indexed.length === 0) return undefined;
  const mv = await dir.readMv();
  const revision = mv?.revision || 'master';
  const createdAt = mv?.createdAt ?? 0;
  if (op === 'revisions') {
    const branch = { Revision: revision, CreatedAt: createdAt, CommitId: '', Message: '' };
    return msOk({ RevisionMap: { Branches: [branch], Tags: [] } });
  }
  const asked = query.revision;
  if (asked && asked !== revision) return msNotFound(`Revision ${asked} is not in the mirror's store (${revision} is)`);
  const [owner = '', name = ''] = repoId.split('/');
  if (op === 'info') return msOk({ Id: 0, Name: name, Path: owner, Visibility: 5, Revision: revision, Tags: [] });
  const root = (query.root ?? '').replace(/^\/+|\/+$/g, '');
  const rel = (p: string): string | undefined =>
    root === '' ? p : p.startsWith(`${root}/`) ? p.slice(root.length + 1) : undefined;
  const files: Record<string, unknown>[] = [];
  const trees = new Set<string>();
  for (const f of indexed.sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const r = rel(f.path);
    if (r === undefined) continue;
    if (!query.recursive && r.includes('/')) {
      trees.add(`${root === '' ? '' : `${root}/`}${r.slice(0, r.indexOf('/'))}`);
      continue;
    }
    const abs = dir.filePath(f.path);
    const st = await fsp.stat(abs).catch(() => undefined);
    if (!st?.isFile()) continue;
    files.push({
      Name: path.posix.basename(f.path),
      Path: f.path,
      Type: 'blob',
      Size: st.size,
      Sha256: await storedSha256(abs, st.size, st.mtimeMs),
      Revision: f.revision,
    });
  }
  const dirs = [...trees].map((t) => ({ Name: path.posix.basename(t), Path: t, Type: 'tree', Size: 0, Sha256: '' }));
  return msOk({ Files: [...dirs, ...files] });
}
