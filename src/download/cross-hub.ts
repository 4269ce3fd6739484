// Reuse across hubs: one model on both hubs, both layouts in one cache (HF_HOME and MODELSCOPE_CACHE on
// one folder). A file the other hub's layout already holds with the same sha256
// is linked from there (a hard link; a copy across file systems) instead of being fetched again.
//   HF LFS blobs are named by their sha256, so ModelScope downloads look them up by name.
//   ModelScope keeps no hashes on disk (`.msc` holds paths and revisions only), so HF downloads look
//   its indexed files up by size, and the candidate's sha256 is computed before anything is linked.
// The index is the care scan of the cache, built once per download and only when a file must be fetched.
import path from 'node:path';
import { placeFile } from '../layouts/place.js';
import type { HubName, RemoteFile } from '../hubs/types.js';
import { fileMatches } from '../layouts/modelscope-cache.js';
import type { CacheRoots } from '../care/scan.js';
import { etagOfBlobName } from '../layouts/hf-cache.js';
import { isInside } from '../util/safe-path.js';
import type { FileStatus, PlannedFile } from './types.js';

/**
 * The roots, when the HF and ModelScope caches are one folder tree (HF_HOME and MODELSCOPE_CACHE on one
 * folder, or one inside the other); undefined for separate caches (`hubcache dedup` links those).
 */
export function sharedCacheRoots(roots: CacheRoots): CacheRoots | undefined {
  return isInside(roots.modelscope, roots.hf) || isInside(roots.hf, roots.modelscope) ? roots : undefined;
}

const LAYOUT_NAME: Record<HubName, string> = { hf: 'HF cache', modelscope: 'ModelScope cache' };

export class CrossHubIndex {
  private index: Promise<{ bySha: Map<string, string>; bySize: Map<number, string[]> }> | undefined;

  /** `want`: the hub whose layout is searched (the other one than the download's). */
  constructor(
    private readonly roots: CacheRoots,
    private readonly want: HubName,
  ) {}

  /** How progress names where a reused file came from. */
  get source(): string {
    return LAYOUT_NAME[this.want];
  }

  /** Files of the other layout that may hold `f`'s bytes (not yet hashed); none without a sha256. */
  async candidates(f: Pick<RemoteFile, 'size' | 'sha256'>): Promise<string[]> {
    if (!f.sha256 || f.size === 0) return [];
    const { bySha, bySize } = await (this.index ??= this.build());
    const named = bySha.get(f.sha256);
    if (this.want === 'hf') return named ? [named] : [];
    return bySize.get(f.size) ?? [];
  }

  /**
   * Puts the first candidate whose size and sha256 are `f`'s at `dest` (atomically); undefined when
   * none matches (then the file is fetched as usual).
   */
  async place(
    candidates: readonly string[],
    f: Pick<RemoteFile, 'size' | 'sha256'>,
    dest: string,
    signal?: AbortSignal,
  ): Promise<FileStatus | undefined> {
    for (const c of candidates) {
      if (!(await fileMatches(c, f, true, signal))) continue;
      return (await placeFile(c, dest, 'link')) === 'linked' ? 'linked' : 'copied';
    }
    return undefined;
  }

  private async build(): Promise<{ bySha: Map<string, string>; bySize: Map<number, string[]> }> {
    const { scan } = await import('../care/scan.js'); // loaded only when something must be fetched
    const s = await scan(this.roots);
    const bySha = new Map<string, string>();
    const bySize = new Map<number, string[]>();
    for (const repo of s.repos) {
      if (repo.hub !== this.want) continue;
      for (const rev of repo.revisions) {
        for (const file of rev.files) {
          if (file.outside || file.size === 0) continue;
          const etag = this.want === 'hf' ? etagOfBlobName(path.basename(file.blobPath)) : undefined;
          if (etag?.length === 64) bySha.set(etag, file.blobPath);
          if (this.want !== 'modelscope') continue;
          const same = bySize.get(file.size) ?? [];
          if (!same.includes(file.blobPath)) bySize.set(file.size, [...same, file.blobPath]);
        }
      }
    }
    return { bySha, bySize };
  }
}

/**
 * Marks the planned files the other hub's layout holds as `linked` (from `index.source`) and returns
 * their candidates by repo path. The index is built only if some file is still planned.
 */
export async function planReuse(
  index: CrossHubIndex | undefined,
  planned: PlannedFile[],
  remote: ReadonlyMap<string, RemoteFile>,
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!index) return out;
  for (const p of planned) {
    if (p.status !== 'planned') continue;
    const f = remote.get(p.path);
    const found = f ? await index.candidates(f) : [];
    if (found.length === 0) continue;
    p.status = 'linked';
    p.reusedFrom = index.source;
    out.set(p.path, found);
  }
  return out;
}
