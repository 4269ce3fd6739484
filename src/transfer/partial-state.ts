// Partial file names and the resume state embedded at the end of a large partial.
//
// Layout of a large partial: [0, size) content (sparse where not yet fetched), then a trailer
// of two fixed-size slots. A checkpoint writes the slot NOT holding the newest state, after an
// fdatasync of the data it describes; each slot carries a sha256 of its JSON, so a torn slot is
// ignored and the other one (older, valid) is used. Hence the state is valid at any kill point.
// One file per partial means `hf cache prune` (`*/blobs/*.incomplete`) removes everything, and
// taking over a dead writer's partial is one atomic rename.
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FileHandle } from 'node:fs/promises';
import type { ExpectedContent } from './types.js';

export const SLOT_SIZE = 16 * 1024;
export const TRAILER_SIZE = 2 * SLOT_SIZE;
const MAGIC = Buffer.from('HCSTATE1', 'latin1');
const HEADER = MAGIC.length + 4 + 32;
/** Chunk count a slot can describe (bitmap in base64 plus the rest of the JSON). */
export const MAX_CHUNKS = 64 * 1024;

export interface PartialState {
  v: 1;
  writerId: string;
  pid: number;
  host: string;
  /** Wall-clock ms of the last checkpoint; 0 = released (the writer left it for others). */
  heartbeat: number;
  seq: number;
  size: number;
  sha256?: string;
  gitSha1?: string;
  /** Server ETag seen when the partial was started (diagnostics, and a guard without hashes). */
  etag?: string;
  chunkSize: number;
  /** Base64 bitmap of completed chunks. */
  done: string;
  /** Chunks partly on disk: [index, bytes from the chunk start]. */
  partial: Array<[number, number]>;
  createdAt: number;
}

/** 4 hex of the host name: lets a reader tell "same host" from a partial's name alone. */
export function hostTag(host = hostname()): string {
  return createHash('sha256').update(host).digest('hex').slice(0, 4);
}

/**
 * `hc` + host tag (4 hex) + pid (8 hex) + random (8 hex). The pid and host in the name let a
 * partial without state (single stream, or a crash mid-commit) be judged dead at once.
 */
export function newWriterId(): string {
  ownHostTag ??= hostTag();
  return `hc${ownHostTag}${process.pid.toString(16).padStart(8, '0')}${randomBytes(4).toString('hex')}`;
}
/** Computed once per process (ownership.ts judges "same host" by the name it had at load too). */
let ownHostTag: string | undefined;

export function parseWriterId(id: string): { hostTag: string; pid: number } | undefined {
  const m = /^hc([0-9a-f]{4})([0-9a-f]{8})[0-9a-f]{8}$/.exec(id);
  if (!m?.[1] || !m[2]) return undefined;
  return { hostTag: m[1], pid: parseInt(m[2], 16) };
}

export function partialPath(dir: string, key: string, writerId: string): string {
  return `${dir}/${key}.${writerId}.incomplete`;
}

export type PartialKind = 'ours' | 'hf';

/** Classify a directory entry as a partial of `key`: ours, huggingface_hub's, or unrelated. */
export function classifyPartialName(name: string, key: string): { kind: PartialKind; writerId: string } | undefined {
  if (!name.startsWith(`${key}.`) || !name.endsWith('.incomplete')) return undefined;
  const middle = name.slice(key.length + 1, -'.incomplete'.length);
  if (name === `${key}.incomplete`) return { kind: 'hf', writerId: '' };
  if (/^hc[0-9a-f]{20}$/.test(middle)) return { kind: 'ours', writerId: middle };
  if (/^[0-9a-f]{8}$/.test(middle)) return { kind: 'hf', writerId: middle };
  return undefined;
}

export function encodeBitmap(done: boolean[]): string {
  const bytes = Buffer.alloc(Math.ceil(done.length / 8));
  done.forEach((d, i) => {
    if (d) bytes[i >> 3] = (bytes[i >> 3] ?? 0) | (1 << (i & 7));
  });
  return bytes.toString('base64');
}

export function decodeBitmap(b64: string, count: number): boolean[] {
  const bytes = Buffer.from(b64, 'base64');
  return Array.from({ length: count }, (_, i) => (((bytes[i >> 3] ?? 0) >> (i & 7)) & 1) === 1);
}

function encodeSlot(state: PartialState): Buffer {
  const json = Buffer.from(JSON.stringify(state), 'utf8');
  if (json.length > SLOT_SIZE - HEADER) throw new Error('resume state too large for its slot');
  const slot = Buffer.alloc(SLOT_SIZE);
  MAGIC.copy(slot, 0);
  slot.writeUInt32BE(json.length, MAGIC.length);
  createHash('sha256')
    .update(json)
    .digest()
    .copy(slot, MAGIC.length + 4);
  json.copy(slot, HEADER);
  return slot;
}

function decodeSlot(slot: Buffer): PartialState | undefined {
  if (slot.length < HEADER || !slot.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const len = slot.readUInt32BE(MAGIC.length);
  if (len > slot.length - HEADER) return undefined;
  const json = slot.subarray(HEADER, HEADER + len);
  const sum = createHash('sha256').update(json).digest();
  if (!sum.equals(slot.subarray(MAGIC.length + 4, HEADER))) return undefined;
  try {
    const parsed = JSON.parse(json.toString('utf8')) as Partial<PartialState>;
    return isState(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function isState(s: Partial<PartialState>): s is PartialState {
  return (
    s.v === 1 &&
    typeof s.writerId === 'string' &&
    typeof s.size === 'number' &&
    typeof s.chunkSize === 'number' &&
    s.chunkSize > 0 &&
    typeof s.done === 'string' &&
    typeof s.seq === 'number' &&
    typeof s.heartbeat === 'number' &&
    Array.isArray(s.partial)
  );
}

export interface TrailerRead {
  state: PartialState;
  /** Slot index holding `state` (the next checkpoint writes the other one). */
  slot: 0 | 1;
}

/** Read the newest valid state from the trailer of a partial whose length is `fileLength`. */
export async function readTrailer(fh: FileHandle, fileLength: number): Promise<TrailerRead | undefined> {
  if (fileLength < TRAILER_SIZE) return undefined;
  const buf = Buffer.alloc(TRAILER_SIZE);
  const { bytesRead } = await fh.read(buf, 0, TRAILER_SIZE, fileLength - TRAILER_SIZE);
  if (bytesRead !== TRAILER_SIZE) return undefined;
  const a = decodeSlot(buf.subarray(0, SLOT_SIZE));
  const b = decodeSlot(buf.subarray(SLOT_SIZE));
  const best = !a ? (b ? 1 : undefined) : !b ? 0 : b.seq > a.seq ? 1 : 0;
  if (best === undefined) return undefined;
  const state = best === 0 ? a : b;
  if (!state || state.size + TRAILER_SIZE !== fileLength) return undefined;
  return { state, slot: best };
}

export async function writeSlot(fh: FileHandle, state: PartialState, slot: 0 | 1): Promise<void> {
  const buf = encodeSlot(state);
  await fh.write(buf, 0, buf.length, state.size + slot * SLOT_SIZE);
}

/** Does a saved state describe exactly the content we expect? Never splice two versions. */
export function stateMatches(state: PartialState, expected: ExpectedContent): boolean {
  if (state.size !== expected.size) return false;
  if (expected.sha256 && state.sha256 && state.sha256 !== expected.sha256.toLowerCase()) return false;
  if (expected.gitSha1 && state.gitSha1 && state.gitSha1 !== expected.gitSha1.toLowerCase()) return false;
  // A state without a hash can only be trusted if we have none either (size-only).
  if (expected.sha256 && !state.sha256) return false;
  return true;
}

/** Bytes already on disk according to a state. */
export function stateBytes(state: PartialState): number {
  const count = Math.ceil(state.size / state.chunkSize);
  const done = decodeBitmap(state.done, count);
  let bytes = 0;
  done.forEach((d, i) => {
    if (d) bytes += Math.min(state.chunkSize, state.size - i * state.chunkSize);
  });
  for (const [i, n] of state.partial) if (!done[i]) bytes += n;
  return bytes;
}
