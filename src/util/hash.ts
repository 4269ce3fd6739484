// Content hashes as the hubs define them: sha256 (LFS / ModelScope) and git's blob sha1.
import { createHash } from 'node:crypto';
import fs from 'node:fs';

/** sha256 of a file, streamed (never loads the file whole). */
export async function sha256File(p: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  const opts: { highWaterMark: number; signal?: AbortSignal } = { highWaterMark: 1 << 20 };
  if (signal) opts.signal = signal;
  for await (const chunk of fs.createReadStream(p, opts)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** git blob oid: sha1("blob <len>\0" + content). */
export async function gitBlobSha1File(p: string, signal?: AbortSignal): Promise<string> {
  const size = (await fs.promises.stat(p)).size;
  const h = createHash('sha1');
  h.update(`blob ${size}\0`);
  const opts: { highWaterMark: number; signal?: AbortSignal } = { highWaterMark: 1 << 20 };
  if (signal) opts.signal = signal;
  for await (const chunk of fs.createReadStream(p, opts)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function gitBlobSha1(content: Uint8Array): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}
