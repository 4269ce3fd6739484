// A content-addressed blob store on S3 (or a compatible store), for mirrors that share one bucket.
// Keys are the blob names of the HF cache's blobs/ folder: a sha256 (64 hex) or a git blob sha1
// (40 hex); s3-layout.ts says where each kind of object lives. Reads stream from S3 (Range GETs go to
// S3 as Range GETs); writes stream from a local file and are verified first, so a blob key in the
// bucket always holds the bytes its name promises.
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { IntegrityError } from '../errors.js';
import { gitBlobSha1File, sha256File } from '../util/hash.js';
import type { BlobKey, BlobPutOptions, BlobRange, BlobStat, BlobStore } from './blob-store.js';
import {
  S3Objects,
  s3ConfigFromEnv,
  toStoreError,
  unquoteEtag,
  type ConditionalResult,
  type S3StoreConfig,
} from './s3-client.js';
import { blobAlgorithm, blobKey } from './s3-layout.js';
import { StoreError, StoreNotFoundError, StoreRangeError, StoreUnavailableError } from './store-errors.js';

/** S3's smallest multipart part (except the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

/** A blob's bytes; `resumes()` tells how often a cut connection was resumed (for metrics). */
export type BlobReadable = Readable & { resumes(): number };

export interface S3BlobStoreOptions {
  /** Multipart part size for put(); at least 5 MiB. Default 16 MiB. */
  partSize?: number;
  /** Parts uploaded at once (each is buffered in memory). Default 4. */
  queueSize?: number;
  /** How often read() resumes a body cut mid-stream. Default 3. */
  maxResumes?: number;
}

/** Metadata that put() records on each blob, readable with a HEAD. */
const META_SHA256 = 'sha256';

/** Blobs by content in a bucket; BlobKey.repo is ignored (one copy serves every repo). */
export class S3BlobStore implements BlobStore {
  readonly objects: S3Objects;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly maxResumes: number;

  constructor(config: S3StoreConfig, opts: S3BlobStoreOptions = {}) {
    this.objects = new S3Objects(config);
    this.partSize = Math.max(MIN_PART_SIZE, opts.partSize ?? 16 * 1024 * 1024);
    this.queueSize = Math.max(1, opts.queueSize ?? 4);
    this.maxResumes = Math.max(0, opts.maxResumes ?? 3);
  }

  /** From `s3://BUCKET/PREFIX`, an optional `--s3-endpoint` and the AWS environment variables. */
  static fromUrl(
    url: string,
    opts: S3BlobStoreOptions & { endpoint?: string; env?: NodeJS.ProcessEnv } = {},
  ): S3BlobStore {
    return new S3BlobStore(s3ConfigFromEnv(url, opts), opts);
  }

  /** Where the store is, for messages (`s3://bucket/prefix/ at http://...`). */
  get where(): string {
    return this.objects.where;
  }

  async has(key: BlobKey): Promise<boolean> {
    return (await this.objects.head(blobKey(key.etag))) !== undefined;
  }

  async stat(key: BlobKey): Promise<BlobStat | undefined> {
    const info = await this.objects.head(blobKey(key.etag));
    return info && { size: info.size, etag: info.etag };
  }

  /**
   * The blob's bytes, or a range of them, streamed from S3 (nothing buffered beyond the socket's
   * window). A connection lost mid-body is resumed from the next byte, pinned to the same object
   * version by If-Match (up to `maxResumes` times). A missing blob is a StoreNotFoundError, a range past
   * the end a StoreRangeError, a store failure (also mid-stream) a StoreUnavailableError.
   */
  async read(key: BlobKey, range?: BlobRange): Promise<BlobReadable> {
    if (range) checkRange(range);
    const k = blobKey(key.etag);
    if (range && range.end === range.start) {
      if (!(await this.objects.head(k)))
        throw new StoreNotFoundError(`object store ${this.where}: no object ${k}`, 404);
      return Object.assign(Readable.from([]), { resumes: () => 0 });
    }
    const first = await this.objects.get(k, range && { start: range.start, end: range.end - 1 });
    const etag = unquoteEtag(first.ETag);
    const start = range?.start ?? 0;
    const last = start + (first.ContentLength ?? 0) - 1;
    const { objects, maxResumes } = this;
    const where = this.where;
    let resumes = 0;
    async function* bytes(): AsyncGenerator<Buffer> {
      let body = first.Body as Readable;
      let pos = start;
      for (;;) {
        try {
          for await (const chunk of body) {
            pos += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          if (pos > last) return;
          throw Object.assign(new Error(`body ended at byte ${pos} of ${start}-${last}`), { code: 'ECONNRESET' });
        } catch (err) {
          body.destroy();
          const e = toStoreError(err, `GET ${k}`, where);
          if (!(e instanceof StoreUnavailableError) || resumes >= maxResumes || pos > last) throw e;
          resumes++;
          body = (await objects.get(k, { start: pos, end: last }, etag)).Body as Readable;
        }
      }
    }
    const out = Readable.from(bytes(), { objectMode: false });
    return Object.assign(out, { resumes: () => resumes });
  }

  /**
   * Stores a local file as blob `key`, streamed from the file (multipart above the part size). The file
   * is hashed first unless the caller already verified it (`sha256`, for a sha256 key the key itself);
   * a file that does not match its key is refused with an IntegrityError and nothing is written.
   * A blob already present with the same size is not uploaded again (content addressing).
   */
  async put(blob: BlobKey, fromFilePath: string, opts: BlobPutOptions = {}): Promise<{ stored: boolean }> {
    const key = blob.etag;
    const algorithm = blobAlgorithm(key);
    const k = blobKey(key);
    let sha256 = opts.sha256;
    if (algorithm === 'sha256') {
      sha256 ??= await sha256File(fromFilePath);
      if (sha256 !== key) throw new IntegrityError(fromFilePath, key, sha256, 'sha256');
    } else {
      const sha1 = await gitBlobSha1File(fromFilePath);
      if (sha1 !== key) throw new IntegrityError(fromFilePath, key, sha1, 'git-sha1');
    }
    const { size } = await fs.stat(fromFilePath);
    const existing = await this.objects.head(k);
    if (existing && existing.size === size) return { stored: false };
    await this.objects.uploadFile(k, fromFilePath, {
      partSize: this.partSize,
      queueSize: this.queueSize,
      ...(sha256 ? { metadata: { [META_SHA256]: sha256 } } : {}),
    });
    return { stored: true };
  }

  async delete(key: BlobKey): Promise<boolean> {
    const k = blobKey(key.etag);
    if (!(await this.objects.head(k))) return false;
    await this.objects.delete(k);
    return true;
  }

  /** Nothing to record: the bucket keeps every blob (replicas' local caches do the LRU). */
  async markUsed(): Promise<void> {}

  /** Blobs whose etag starts with `prefix` (hex digits), both kinds, in key order within each kind. */
  async *list(filter: { prefix?: string } = {}): AsyncGenerator<{ key: BlobKey; size: number }> {
    const prefix = filter.prefix ?? '';
    if (!/^[0-9a-f]{0,64}$/.test(prefix)) return;
    for (const algorithm of ['sha256', 'sha1'] as const) {
      if (algorithm === 'sha1' && prefix.length > 40) continue;
      const dir = `blobs/${algorithm}/`;
      for await (const o of this.objects.list(dir + prefix)) {
        const key = o.key.slice(dir.length);
        if (key.length === (algorithm === 'sha256' ? 64 : 40)) yield { key: { etag: key }, size: o.size };
      }
    }
  }

  /**
   * A small JSON object at a layout key (s3-layout.ts: meta/..., refs/...), with its ETag for a later
   * conditional replace; undefined when absent.
   */
  async getJson<T>(key: string): Promise<{ value: T; etag: string } | undefined> {
    const r = await this.objects.getBytes(key);
    if (!r) return undefined;
    try {
      return { value: JSON.parse(r.body.toString('utf8')) as T, etag: r.etag };
    } catch (err) {
      throw new StoreError(`object store ${this.where}: ${key} is not JSON`, undefined, undefined, { cause: err });
    }
  }

  /**
   * Writes a small JSON object. `ifNoneMatch: '*'` creates it only if absent (the first writer wins),
   * `ifMatch` replaces only the version with that ETag; `{ ok: false, current }` when the condition did
   * not hold. An object that already holds exactly these bytes counts as written.
   */
  async putJson(
    key: string,
    value: unknown,
    cond: { ifNoneMatch?: '*'; ifMatch?: string } = {},
  ): Promise<ConditionalResult> {
    return this.objects.putBytes(key, JSON.stringify(value), { ...cond, contentType: 'application/json' });
  }

  /** Fails with a StoreUnavailableError naming the problem when the bucket is missing or refuses us. */
  async check(): Promise<void> {
    await this.objects.checkBucket();
  }

  close(): void {
    this.objects.destroy();
  }
}

function checkRange(r: BlobRange): void {
  const ok = Number.isSafeInteger(r.start) && r.start >= 0 && Number.isSafeInteger(r.end) && r.end >= r.start;
  if (!ok) throw new StoreRangeError(`invalid byte range [${r.start}, ${r.end})`);
}
