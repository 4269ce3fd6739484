// Content hashes (sha256, git's blob sha1), their verification, and the chunk map of a file.
// Large files are hashed in file order by reading them back (prefix-hasher.ts); small ones as
// their bytes stream by (single.ts).
import { createHash, type Hash } from 'node:crypto';
import type { ExpectedContent } from './types.js';
import { IntegrityError } from '../errors.js';

export interface Digest {
  bytes: number;
  sha256: string;
  gitSha1?: string;
}

/** sha256 of the content, plus git's blob sha1 ("blob <size>\0" + content) when asked. */
export class ContentHasher {
  private readonly sha256: Hash = createHash('sha256');
  private readonly sha1: Hash | undefined;
  private bytes = 0;

  constructor(size: number, wantGitSha1: boolean) {
    this.sha1 = wantGitSha1 ? createHash('sha1').update(`blob ${size}\0`) : undefined;
  }

  update(buf: Buffer): void {
    this.sha256.update(buf);
    this.sha1?.update(buf);
    this.bytes += buf.length;
  }

  get hashedBytes(): number {
    return this.bytes;
  }

  digest(): Digest {
    const out: Digest = { bytes: this.bytes, sha256: this.sha256.digest('hex') };
    if (this.sha1) out.gitSha1 = this.sha1.digest('hex');
    return out;
  }
}

/** The first mismatch between what we hashed and what was expected, if any. */
export function verifyDigest(label: string, expected: ExpectedContent, d: Digest): IntegrityError | undefined {
  if (d.bytes !== expected.size) return new IntegrityError(label, String(expected.size), String(d.bytes), 'size');
  if (expected.sha256 && d.sha256 !== expected.sha256.toLowerCase()) {
    return new IntegrityError(label, expected.sha256.toLowerCase(), d.sha256, 'sha256');
  }
  if (expected.gitSha1 && d.gitSha1 !== expected.gitSha1.toLowerCase()) {
    return new IntegrityError(label, expected.gitSha1.toLowerCase(), d.gitSha1 ?? '', 'git-sha1');
  }
  return undefined;
}

/** One range of the file. `written` = bytes from `start` that are on disk (write completed). */
export interface Chunk {
  index: number;
  start: number;
  end: number;
  written: number;
}

export function chunkLength(c: Chunk): number {
  return c.end - c.start;
}

export function makeChunks(size: number, chunkSize: number): Chunk[] {
  const out: Chunk[] = [];
  for (let start = 0, i = 0; start < size; start += chunkSize, i++) {
    out.push({ index: i, start, end: Math.min(size, start + chunkSize), written: 0 });
  }
  return out;
}
