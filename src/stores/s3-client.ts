// The S3 side of a shared store: `s3://BUCKET/PREFIX` plus the standard AWS variables become one
// configured client, and every call goes through `S3Objects`, which maps the store's failures to typed
// errors (store-errors.ts) and turns 412/409 on conditional writes into a plain "precondition failed"
// answer. Works with AWS S3 and with compatibles (Ceph RGW, SeaweedFS, R2): a non-AWS endpoint means
// path-style addressing, and request checksums only where the API requires them (RGW 16 refuses the
// SDK's default aws-chunked streaming checksums with 411).
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  paginateListObjectsV2,
  type GetObjectCommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import fs from 'node:fs';
import { UsageError } from '../errors.js';
import { StoreError, StoreNotFoundError, StoreRangeError, StoreUnavailableError } from './store-errors.js';

export interface S3StoreConfig {
  bucket: string;
  /** Key prefix, empty or ending in `/`. */
  prefix: string;
  /** Custom endpoint (Ceph RGW, SeaweedFS, R2...); undefined = AWS S3. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Attempts per call for network errors, 5xx and throttling (the SDK's standard retry). */
  maxAttempts: number;
  connectTimeoutMs: number;
  /** A socket with no traffic for this long fails the call (a stalled store). */
  idleTimeoutMs: number;
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses `s3://BUCKET[/PREFIX]`. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new UsageError(`not an s3:// store URL: ${JSON.stringify(url)}`, { hint: 'Use s3://BUCKET/PREFIX.' });
  const bucket = m[1]!;
  if (!BUCKET_RE.test(bucket) || bucket.includes('..')) {
    throw new UsageError(`not a valid S3 bucket name: ${JSON.stringify(bucket)}`);
  }
  const segs = (m[2] ?? '').split('/').filter((s) => s !== '');
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (segs.some((s) => s === '.' || s === '..' || /[\u0000-\u001f\\]/.test(s))) {
    throw new UsageError(`unsafe S3 key prefix in ${JSON.stringify(url)}`);
  }
  return { bucket, prefix: segs.length ? `${segs.join('/')}/` : '' };
}

function isAwsHost(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host.endsWith('.amazonaws.com') || host.endsWith('.amazonaws.com.cn');
}

/**
 * Store config from the URL, an explicit endpoint (`--s3-endpoint`) and the environment:
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID +
 * AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN). Without keys in the environment the SDK's default chain
 * (profiles, instance roles) is used.
 */
export function s3ConfigFromEnv(url: string, opts: { endpoint?: string; env?: NodeJS.ProcessEnv } = {}): S3StoreConfig {
  const env = opts.env ?? process.env;
  const { bucket, prefix } = parseS3Url(url);
  const endpoint = opts.endpoint || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  if (endpoint !== undefined) {
    let u: URL;
    try {
      u = new URL(endpoint);
    } catch {
      throw new UsageError(`not a valid S3 endpoint URL: ${JSON.stringify(endpoint)}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new UsageError(`S3 endpoint must be http:// or https://, got ${JSON.stringify(endpoint)}`);
    }
  }
  const config: S3StoreConfig = {
    bucket,
    prefix,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    forcePathStyle: endpoint !== undefined && !isAwsHost(endpoint),
    maxAttempts: 3,
    connectTimeoutMs: 3000,
    idleTimeoutMs: 30_000,
  };
  if (endpoint !== undefined) config.endpoint = endpoint;
  const id = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (id && secret) {
    config.credentials = { accessKeyId: id, secretAccessKey: secret };
    if (env.AWS_SESSION_TOKEN) config.credentials.sessionToken = env.AWS_SESSION_TOKEN;
  } else if (id || secret) {
    throw new UsageError('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together');
  }
  return config;
}

export function createS3Client(config: S3StoreConfig): S3Client {
  // SDK releases after January 2027 will need Node 22; the one this package pins runs on Node 20 and
  // would print that notice on every start.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const c: S3ClientConfig = {
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    maxAttempts: config.maxAttempts,
    requestHandler: { connectionTimeout: config.connectTimeoutMs, socketTimeout: config.idleTimeoutMs },
  };
  if (config.endpoint !== undefined) {
    c.endpoint = config.endpoint;
    c.requestChecksumCalculation = 'WHEN_REQUIRED';
    c.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  if (config.credentials) c.credentials = config.credentials;
  return new S3Client(c);
}

/**
 * The outcome of a conditional write: written (with the new ETag, unquoted), or its condition did not
 * hold, with the object as it is now (absent: undefined).
 */
export type ConditionalResult = { ok: true; etag: string } | { ok: false; current?: { body: Buffer; etag: string } };

export interface ObjectInfo {
  size: number;
  /** Unquoted. */
  etag: string;
  lastModified?: Date;
  metadata: Record<string, string>;
}

export interface ListedObject {
  /** Key relative to the store prefix. */
  key: string;
  size: number;
  etag?: string;
  lastModified?: Date;
}

/** ETags come quoted (`"abc"`); RGW 16 only matches an If-Match sent without the quotes (AWS takes both). */
export function unquoteEtag(etag: string | undefined): string | undefined {
  return etag?.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

const UNAVAILABLE_CODES = new Set(
  [
    'ECONNREFUSED ECONNRESET ETIMEDOUT EPIPE EHOSTUNREACH ENETUNREACH ENOTFOUND EAI_AGAIN',
    'TimeoutError RequestTimeout RequestTimeoutException SlowDown ServiceUnavailable InternalError',
    'Throttling ThrottlingException RequestTimeTooSkewed PermanentRedirect',
  ]
    .join(' ')
    .split(' '),
);

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; Code?: unknown; name?: unknown } | null;
  for (const v of [e?.code, e?.Code, e?.name]) if (typeof v === 'string' && v !== 'Error') return v;
  return undefined;
}

/**
 * Maps an SDK or socket failure to a typed store error. Conditions a caller handles (404, 412, 409, 416)
 * are mapped by the callers that expect them, before this.
 */
export function toStoreError(err: unknown, what: string, where: string): StoreError {
  if (err instanceof StoreError) return err;
  const status = statusOf(err);
  const code = codeOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  const tag = [status, code].filter((x) => x !== undefined).join(' ');
  const message = `object store ${where}: ${what} failed${tag ? ` (${tag})` : ''}: ${detail || 'no detail'}`;
  const opts = { cause: err };
  if (code === 'NoSuchBucket') {
    return new StoreUnavailableError(message, status, code, { ...opts, hint: 'Create the bucket, or fix --store.' });
  }
  if (status === 403 || code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'AccessDenied') {
    return new StoreUnavailableError(message, status, code, {
      ...opts,
      hint: 'Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy.',
    });
  }
  if (status === undefined || status >= 500 || status === 429 || (code !== undefined && UNAVAILABLE_CODES.has(code))) {
    return new StoreUnavailableError(message, status, code, opts);
  }
  return new StoreError(message, status, code, opts);
}

const isPrecondition = (err: unknown): boolean => {
  const s = statusOf(err);
  return (
    s === 412 || (s === 409 && codeOf(err) === 'ConditionalRequestConflict') || codeOf(err) === 'PreconditionFailed'
  );
};
const isNotFound = (err: unknown): boolean => {
  const code = codeOf(err);
  return statusOf(err) === 404 && code !== 'NoSuchBucket' && code !== 'NoSuchUpload';
};

/** Object operations on one bucket + prefix, with typed errors. Keys are relative to the prefix. */
export class S3Objects {
  readonly client: S3Client;
  readonly where: string;

  constructor(
    readonly config: S3StoreConfig,
    client?: S3Client,
  ) {
    this.client = client ?? createS3Client(config);
    this.where = `s3://${config.bucket}/${config.prefix}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
  }

  private full(key: string): string {
    return this.config.prefix + key;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(err, what, this.where);
    }
  }

  /** Fails with a clear StoreUnavailableError when the bucket is missing or refuses us. */
  async checkBucket(): Promise<void> {
    await this.call(`HEAD bucket ${this.config.bucket}`, async () => {
      try {
        await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
      } catch (err) {
        // HEAD answers carry no error code: name the common cases.
        const s = statusOf(err);
        if (s === 404) {
          throw new StoreUnavailableError(`object store ${this.where}: bucket does not exist`, 404, 'NoSuchBucket');
        }
        throw err;
      }
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return this.call(`HEAD ${key}`, async () => {
      try {
        const r = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.full(key) }));
        const info: ObjectInfo = {
          size: r.ContentLength ?? 0,
          etag: unquoteEtag(r.ETag) ?? '',
          metadata: r.Metadata ?? {},
        };
        if (r.LastModified) info.lastModified = r.LastModified;
        return info;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    });
  }

  /**
   * GET, whole or a byte range (`end` inclusive, as in HTTP). With `ifMatch`, a changed object fails with a
   * StoreError of status 412 instead of mixing versions.
   */
  async get(key: string, range?: { start: number; end?: number }, ifMatch?: string): Promise<GetObjectCommandOutput> {
    return this.call(`GET ${key}`, async () => {
      try {
        return await this.client.send(
          new GetObjectCommand({
            Bucket: this.config.bucket,
            Key: this.full(key),
            ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}),
            ...(ifMatch ? { IfMatch: unquoteEtag(ifMatch) } : {}),
          }),
        );
      } catch (err) {
        if (isNotFound(err)) {
          throw new StoreNotFoundError(`object store ${this.where}: no object ${key}`, 404, codeOf(err));
        }
        if (statusOf(err) === 416) {
          throw new StoreRangeError(
            `object store ${this.where}: range ${range?.start}-${range?.end ?? ''} outside ${key}`,
            416,
          );
        }
        throw err;
      }
    });
  }

  /** A small object's bytes and ETag, or undefined when it does not exist. */
  async getBytes(key: string): Promise<{ body: Buffer; etag: string } | undefined> {
    return this.call(`GET ${key}`, async () => {
      try {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: this.full(key) }));
        const body = Buffer.from(await r.Body!.transformToByteArray());
        return { body, etag: unquoteEtag(r.ETag) ?? '' };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    });
  }

  /**
   * PUT of a small body. `ifNoneMatch: '*'` creates only; `ifMatch: etag` replaces only that version
   * (sent unquoted). A condition that does not hold is `{ ok: false, current }`, never an error. The SDK
   * retries a PUT whose answer was lost, and the retry then fails its condition against our own first
   * write: a current object holding exactly our bytes is therefore our write.
   */
  async putBytes(
    key: string,
    body: Uint8Array | string,
    cond: { ifNoneMatch?: '*'; ifMatch?: string; contentType?: string } = {},
  ): Promise<ConditionalResult> {
    const failed = await this.call(`PUT ${key}`, async () => {
      try {
        const r = await this.client.send(
          new PutObjectCommand({
            Bucket: this.config.bucket,
            Key: this.full(key),
            Body: body,
            ContentType: cond.contentType ?? 'application/octet-stream',
            ...(cond.ifNoneMatch ? { IfNoneMatch: cond.ifNoneMatch } : {}),
            ...(cond.ifMatch ? { IfMatch: unquoteEtag(cond.ifMatch) } : {}),
          }),
        );
        return { ok: true, etag: unquoteEtag(r.ETag) ?? '' } as const;
      } catch (err) {
        const conditional = cond.ifNoneMatch !== undefined || cond.ifMatch !== undefined;
        if (conditional && (isPrecondition(err) || (cond.ifMatch && isNotFound(err)))) return undefined;
        throw err;
      }
    });
    if (failed) return failed;
    const current = await this.getBytes(key);
    if (current && current.body.equals(Buffer.from(body))) return { ok: true, etag: current.etag };
    return current ? { ok: false, current } : { ok: false };
  }

  /**
   * Uploads a file, streamed: one PUT below `partSize`, else a multipart upload of `partSize` parts
   * (`queueSize` in flight, so at most partSize x queueSize bytes buffered). The object appears only
   * when the upload completes; a failed upload is aborted.
   */
  async uploadFile(
    key: string,
    filePath: string,
    opts: { partSize: number; queueSize: number; metadata?: Record<string, string>; contentType?: string },
  ): Promise<{ etag: string }> {
    return this.call(`upload ${key}`, async () => {
      const size = (await fs.promises.stat(filePath)).size;
      const upload = new Upload({
        client: this.client,
        partSize: opts.partSize,
        queueSize: opts.queueSize,
        leavePartsOnError: false,
        params: {
          Bucket: this.config.bucket,
          Key: this.full(key),
          Body: fs.createReadStream(filePath, { highWaterMark: 1 << 20 }),
          ContentLength: size,
          ContentType: opts.contentType ?? 'application/octet-stream',
          ...(opts.metadata ? { Metadata: opts.metadata } : {}),
        },
      });
      const r = await upload.done();
      return { etag: unquoteEtag(r.ETag) ?? '' };
    });
  }

  /** Deletes unconditionally (RGW 16 ignores If-Match on DELETE, so callers must not rely on it). */
  async delete(key: string): Promise<void> {
    await this.call(`DELETE ${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: this.full(key) })),
    );
  }

  /** Every object under `prefix` (relative to the store prefix), page by page. */
  async *list(prefix = ''): AsyncGenerator<ListedObject> {
    const pages = paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.config.bucket, Prefix: this.full(prefix) },
    );
    const it = pages[Symbol.asyncIterator]();
    for (;;) {
      const page = await this.call(`LIST ${prefix}`, () => it.next());
      if (page.done) return;
      for (const o of page.value.Contents ?? []) {
        if (o.Key === undefined) continue;
        const item: ListedObject = { key: o.Key.slice(this.config.prefix.length), size: o.Size ?? 0 };
        const etag = unquoteEtag(o.ETag);
        if (etag !== undefined) item.etag = etag;
        if (o.LastModified) item.lastModified = o.LastModified;
        yield item;
      }
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
