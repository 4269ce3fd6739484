// Upstream metadata shared by the replicas through the bucket (keys: s3-layout.ts), so that what one
// replica learned from upstream another answers without asking upstream again:
//   - refs: branch/tag → commit with the time upstream said so; reused by every replica until
//     fetchedAt + --metadata-ttl (past it only when upstream is down: stale-if-error);
//   - commits: what resolve/ needs of each file at an immutable commit (etag, size, LFS), kept forever;
//   - ModelScope revisions: the public file list of a revision (per-file revisions, sha256), with its fetch time.
// Access is never shared: a record says only whether upstream answered it *without a token* (`public`),
// so a gated or private repo's records make no replica serve it to a caller upstream has not accepted.
// Objects are small JSON written whole (a PUT is atomic): a reader never sees a partial record. Read
// failures throw StoreUnavailableError (the caller decides); write failures are logged, never fatal.
import type { FastifyBaseLogger } from 'fastify';
import type { RepoType } from '../hubs/types.js';
import type { S3BlobStore } from '../stores/s3-blob-store.js';
import { commitMetaKey, modelscopeRevisionMetaKey, refKey, type RefRecord } from '../stores/s3-layout.js';

/** What resolve/ needs of one file at one commit (the face's FileMeta without the commit). */
export interface SharedFile {
  etag: string;
  size: number;
  lfs: boolean;
}

/** `meta/hf/<repo>/commits/<commit>.json`: the files of a commit replicas have resolved so far. */
export interface CommitRecord {
  commit: string;
  files: Record<string, SharedFile>;
  /** Last time upstream served this repo's content without a token (ISO); absent: restricted or unknown. */
  publicCheckedAt?: string;
}

/** `meta/modelscope/<org>/<name>/revisions/<rev>.json`: a public file-list answer, as upstream gave it. */
export interface MsRevisionRecord {
  fetchedAt: string;
  status: number;
  headers: Record<string, string>;
  /** The answer body (JSON text). */
  body: string;
}

export interface SharedMetaCounters {
  /** Lookups answered by the bucket (no upstream request). */
  hits: number;
  /** Lookups the bucket could not answer (absent or past the TTL). */
  misses: number;
  writes: number;
  writeErrors: number;
  readErrors: number;
}

/** A record within `ttlMs` of `at` (ISO). */
export function freshWithin(at: string | undefined, ttlMs: number, now = Date.now()): boolean {
  const t = at ? Date.parse(at) : NaN;
  return Number.isFinite(t) && t + ttlMs > now;
}

/** A conditional read-modify-write that lost a race is retried this often, then given up (logged). */
const MERGE_ATTEMPTS = 4;

export class SharedMetadata {
  readonly counters: SharedMetaCounters = { hits: 0, misses: 0, writes: 0, writeErrors: 0, readErrors: 0 };
  /** Commit records read or written (immutable commits only grow): saves GETs for files already known. */
  private readonly commits = new Map<string, CommitRecord>();

  constructor(
    private readonly s3: S3BlobStore,
    private readonly log?: FastifyBaseLogger,
  ) {}

  /** The ref record of an HF branch or tag (any age; the caller checks the TTL), or undefined. */
  async hfRef(type: RepoType, id: string, ref: string): Promise<RefRecord | undefined> {
    const r = await this.read(() => this.s3.getJson<RefRecord>(refKey('hf', type, id, ref)));
    return r && typeof r.value.commit === 'string' && typeof r.value.fetchedAt === 'string' ? r.value : undefined;
  }

  async writeHfRef(type: RepoType, id: string, ref: string, commit: string, isPublic: boolean): Promise<void> {
    const rec = { commit, fetchedAt: new Date().toISOString(), ...(isPublic ? { public: true } : {}) };
    await this.write(refKey('hf', type, id, ref), () => this.s3.putJson(refKey('hf', type, id, ref), rec));
  }

  /** A file at a commit as some replica resolved it, with whether the repo was public (within `ttlMs`). */
  async hfFile(
    type: RepoType,
    id: string,
    commit: string,
    filePath: string,
    ttlMs: number,
  ): Promise<{ file: SharedFile; isPublic: boolean } | undefined> {
    const key = commitMetaKey(type, id, commit);
    let rec = this.commits.get(key);
    if (!rec?.files[filePath] || !freshWithin(rec.publicCheckedAt, ttlMs)) {
      rec = (await this.read(() => this.s3.getJson<CommitRecord>(key)))?.value;
      if (rec && typeof rec.files === 'object' && rec.files) this.commits.set(key, rec);
    }
    const file = rec?.files?.[filePath];
    if (!file || typeof file.etag !== 'string' || !Number.isSafeInteger(file.size)) return undefined;
    return { file, isPublic: freshWithin(rec?.publicCheckedAt, ttlMs) };
  }

  /** Adds a resolved file to its commit's record (If-Match merge, so concurrent replicas lose nothing). */
  async addHfFile(
    type: RepoType,
    id: string,
    commit: string,
    filePath: string,
    file: SharedFile,
    isPublic: boolean,
    ttlMs: number,
  ): Promise<void> {
    const key = commitMetaKey(type, id, commit);
    const known = this.commits.get(key);
    // Nothing new to say: the file is there and the public mark is fresh for at least half the TTL.
    const publicOk = !isPublic || freshWithin(known?.publicCheckedAt, Number.isFinite(ttlMs) ? ttlMs / 2 : ttlMs);
    if (known?.files[filePath]?.etag === file.etag && publicOk) return;
    await this.write(key, async () => {
      for (let i = 0; i < MERGE_ATTEMPTS; i++) {
        const cur = await this.s3.getJson<CommitRecord>(key);
        const base: CommitRecord = cur?.value?.files ? cur.value : { commit, files: {} };
        const next: CommitRecord = {
          ...base,
          commit,
          files: { ...base.files, [filePath]: { etag: file.etag, size: file.size, lfs: file.lfs } },
        };
        if (isPublic) next.publicCheckedAt = new Date().toISOString();
        const r = await this.s3.putJson(key, next, cur ? { ifMatch: cur.etag } : { ifNoneMatch: '*' });
        if (r.ok) {
          this.commits.set(key, next);
          return r;
        }
      }
      return { ok: false };
    });
  }

  /** A ModelScope revision's public file list (any age; the caller checks the TTL), or undefined. */
  async msRevision(id: string, revision: string): Promise<MsRevisionRecord | undefined> {
    const r = await this.read(() => this.s3.getJson<MsRevisionRecord>(modelscopeRevisionMetaKey(id, revision)));
    return r && typeof r.value.body === 'string' && Number.isSafeInteger(r.value.status) ? r.value : undefined;
  }

  async writeMsRevision(id: string, revision: string, rec: Omit<MsRevisionRecord, 'fetchedAt'>): Promise<void> {
    const key = modelscopeRevisionMetaKey(id, revision);
    await this.write(key, () => this.s3.putJson(key, { fetchedAt: new Date().toISOString(), ...rec }));
  }

  /** Counts a lookup's outcome (hit: the bucket answered it). */
  note(hit: boolean): void {
    if (hit) this.counters.hits++;
    else this.counters.misses++;
  }

  private async read<T>(get: () => Promise<T>): Promise<T> {
    try {
      return await get();
    } catch (err) {
      this.counters.readErrors++;
      throw err;
    }
  }

  private async write(key: string, put: () => Promise<{ ok: boolean }>): Promise<void> {
    try {
      const r = await put();
      if (r.ok) this.counters.writes++;
      else this.log?.debug({ key }, 'shared metadata: lost the write race too often; another replica wrote it');
    } catch (err) {
      this.counters.writeErrors++;
      this.log?.warn({ err, key }, 'shared metadata: could not write to the store (answers are not affected)');
    }
  }
}

const perStore = new WeakMap<S3BlobStore, SharedMetadata>();

/** The one SharedMetadata of a replica's store (faces, status and metrics share its counters). */
export function sharedMetadataOf(s3: S3BlobStore, log?: FastifyBaseLogger): SharedMetadata {
  let m = perStore.get(s3);
  if (!m) {
    m = new SharedMetadata(s3, log);
    perStore.set(s3, m);
  }
  return m;
}
