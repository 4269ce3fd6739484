// `ls` rows: filters and sort keys like `hf cache ls` (`size>1GB`, `accessed>7d`, `type=model`,
// `refs=main`, plus `hub=modelscope`), over repos or, with `revisions`, over revisions.
import { UsageError } from '../errors.js';
import { statMany } from './fs-walk.js';
import type { CachedFile, CachedRepo, CachedRevision, CacheScan } from './model.js';
import { parseDuration, parseSize } from './units.js';

export interface ListRow {
  repo: CachedRepo;
  /** Set in revisions mode. */
  revision?: CachedRevision;
}

export type SortKey = 'name' | 'size' | 'accessed' | 'modified';

export interface ListOptions {
  /** One row per revision instead of per repo. */
  revisions?: boolean;
  /** `key op value`, all must hold. */
  filters?: string[];
  /** `name`, `size`, `accessed`, `modified`, optionally `:asc` / `:desc`. */
  sort?: string;
  limit?: number;
}

type Predicate = (row: ListRow, nowMs: number) => boolean;

const HUB_ALIASES: Record<string, 'hf' | 'modelscope'> = {
  hf: 'hf',
  huggingface: 'hf',
  modelscope: 'modelscope',
  ms: 'modelscope',
};
const FILTER_RE = /^\s*([a-zA-Z_]+)\s*(==|!=|>=|<=|>|<|=)\s*(.+?)\s*$/;
const DEFAULT_ORDER: Record<SortKey, 'asc' | 'desc'> = {
  name: 'asc',
  size: 'desc',
  accessed: 'desc',
  modified: 'desc',
};

export function listRows(scan: CacheScan, opts: ListOptions = {}, nowMs = Date.now()): ListRow[] {
  const predicates = (opts.filters ?? []).map(compileFilter);
  let rows: ListRow[] = opts.revisions
    ? scan.repos.flatMap((repo) => repo.revisions.map((revision) => ({ repo, revision })))
    : scan.repos.map((repo) => ({ repo }));
  rows = rows.filter((row) => predicates.every((p) => p(row, nowMs)));
  rows.sort(compileSort(opts.sort ?? 'name'));
  return opts.limit !== undefined ? rows.slice(0, Math.max(0, opts.limit)) : rows;
}

/** Bytes the rows hold on disk: each inode once, so files hard-linked by `dedup` count once in a total. */
export async function rowsDiskBytes(rows: readonly ListRow[]): Promise<number> {
  const revisions = rows.flatMap((r) => (r.revision ? [r.revision] : r.repo.revisions));
  const blobs = new Map<string, CachedFile>();
  for (const v of revisions) for (const f of v.files) blobs.set(f.blobPath, f);
  // Only a file the scan did not stat (ModelScope layouts) is stat'ed here.
  const unknown = [...blobs.values()].filter((f) => f.inode === undefined);
  const stats = await statMany(unknown.map((f) => f.blobPath));
  const inodes = new Map(unknown.map((f, i) => [f, stats[i] ? `${stats[i].dev}:${stats[i].ino}` : f.blobPath]));
  const seen = new Set<string>();
  let bytes = 0;
  for (const f of blobs.values()) {
    const key = f.inode ?? inodes.get(f)!;
    if (seen.has(key)) continue;
    seen.add(key);
    bytes += f.size;
  }
  return bytes;
}

const sizeOf = (r: ListRow): number => r.revision?.size ?? r.repo.size;
const accessedOf = (r: ListRow): number => r.revision?.lastAccessedMs ?? r.repo.lastAccessedMs;
const modifiedOf = (r: ListRow): number => r.revision?.lastModifiedMs ?? r.repo.lastModifiedMs;
const refsOf = (r: ListRow): string[] => r.revision?.refs ?? Object.keys(r.repo.refs);

export function compileFilter(expr: string): Predicate {
  const m = FILTER_RE.exec(expr);
  if (!m)
    throw new UsageError(`Invalid filter: "${expr}"`, {
      hint: 'Use key<op>value, e.g. size>1GB, accessed>7d, type=model, hub=modelscope, refs=main.',
    });
  const [, rawKey, op, value] = m as unknown as [string, string, string, string];
  const key = rawKey.toLowerCase();
  const textOnly = (): void => {
    if (op !== '=' && op !== '==' && op !== '!=') throw new UsageError(`Only = and != work with ${key} (in "${expr}")`);
  };
  const equal = (a: string): boolean =>
    op === '!=' ? a.toLowerCase() !== value.toLowerCase() : a.toLowerCase() === value.toLowerCase();
  switch (key) {
    case 'size': {
      const n = parseSize(value);
      return (row) => compare(sizeOf(row), op, n);
    }
    case 'accessed':
    case 'modified': {
      // `accessed>7d`: last accessed more than 7 days ago (as in `hf cache ls`).
      const ms = parseDuration(value);
      return (row, now) => compare(now - (key === 'accessed' ? accessedOf(row) : modifiedOf(row)), op, ms);
    }
    case 'type':
      textOnly();
      return (row) => equal(row.repo.type);
    case 'hub': {
      textOnly();
      const want = HUB_ALIASES[value.toLowerCase()];
      if (!want) throw new UsageError(`Unknown hub "${value}" in "${expr}"`, { hint: 'Use hub=hf or hub=modelscope.' });
      return (row) => (row.repo.hub === want) === (op !== '!=');
    }
    case 'refs':
      textOnly();
      return (row) => {
        const has = refsOf(row).some((r) => r.toLowerCase() === value.toLowerCase());
        return op === '!=' ? !has : has;
      };
    default:
      throw new UsageError(`Unknown filter key "${rawKey}" in "${expr}"`, {
        hint: 'Keys: size, accessed, modified, type, hub, refs.',
      });
  }
}

function compare(left: number, op: string, right: number): boolean {
  switch (op) {
    case '=':
    case '==':
      return left === right;
    case '!=':
      return left !== right;
    case '>':
      return left > right;
    case '<':
      return left < right;
    case '>=':
      return left >= right;
    default:
      return left <= right;
  }
}

export function compileSort(expr: string): (a: ListRow, b: ListRow) => number {
  const m = /^\s*(name|size|accessed|modified)(?::(asc|desc))?\s*$/i.exec(expr);
  if (!m)
    throw new UsageError(`Invalid sort: "${expr}"`, {
      hint: 'Use name, size, accessed or modified, optionally with :asc or :desc.',
    });
  const key = (m[1] as string).toLowerCase() as SortKey;
  const dir = ((m[2]?.toLowerCase() as 'asc' | 'desc' | undefined) ?? DEFAULT_ORDER[key]) === 'asc' ? 1 : -1;
  const value = (r: ListRow): number | string => {
    if (key === 'name') return `${r.repo.key.toLowerCase()}\0${r.revision?.commit ?? ''}`;
    if (key === 'size') return sizeOf(r);
    return key === 'accessed' ? accessedOf(r) : modifiedOf(r);
  };
  return (a, b) => {
    const va = value(a);
    const vb = value(b);
    return (va < vb ? -1 : va > vb ? 1 : 0) * dir;
  };
}
