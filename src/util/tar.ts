// A minimal POSIX tar (ustar + pax) writer and reader, streaming in both directions: a multi-GB
// file is copied in 1 MiB pieces and never held in memory. Only what `hubcache pack` needs:
// regular files, directories and symlinks. Names longer than ustar allows (100 bytes, or 255
// with the prefix field), link targets over 100 bytes and sizes of 8 GiB and more go into a pax
// extended header, which GNU tar, bsdtar and Python's tarfile all read.
import type { FileHandle } from 'node:fs/promises';

export const BLOCK = 512;
const COPY_CHUNK = 1 << 20;
/** Largest size the 11 octal digits of a ustar header can hold (8 GiB - 1). */
const USTAR_MAX_SIZE = 0o77777777777;
/** Pax headers are metadata: anything bigger is not an archive we wrote. */
const MAX_PAX_BYTES = 1 << 20;

export type TarEntryType = 'file' | 'dir' | 'symlink';

export interface TarHeader {
  name: string;
  type: TarEntryType;
  size: number;
  mode: number;
  mtimeMs: number;
  /** Symlink target. */
  linkName?: string;
}

/** The archive is not a tar we can read (bad checksum, truncated, unsupported entry). */
export class TarFormatError extends Error {}

// ---------------------------------------------------------------------------------------------
// Writing

/** Appends entries to a file handle opened for writing; call `finish()` to write the end marker. */
export class TarWriter {
  /** Bytes written so far. */
  bytes = 0;

  constructor(private readonly out: FileHandle) {}

  async addDirectory(name: string, mtimeMs: number): Promise<void> {
    await this.writeHeaders({ name: name.endsWith('/') ? name : `${name}/`, type: 'dir', size: 0, mode: 0o755, mtimeMs });
  }

  async addSymlink(name: string, target: string, mtimeMs: number): Promise<void> {
    await this.writeHeaders({ name, type: 'symlink', size: 0, mode: 0o777, mtimeMs, linkName: target });
  }

  async addBuffer(name: string, data: Buffer, mtimeMs: number): Promise<void> {
    await this.writeHeaders({ name, type: 'file', size: data.length, mode: 0o644, mtimeMs });
    await this.write(data);
    await this.pad(data.length);
  }

  /**
   * Copies `size` bytes of `src` into the archive, handing every chunk to `onChunk` (for
   * hashing). Fails if the file is shorter than `size` (it changed while being packed).
   */
  async addFile(name: string, src: FileHandle, size: number, mtimeMs: number, onChunk: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
    await this.writeHeaders({ name, type: 'file', size, mode: 0o644, mtimeMs });
    const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(size, 1)));
    let done = 0;
    while (done < size) {
      signal?.throwIfAborted();
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - done), done);
      if (bytesRead === 0) throw new TarFormatError(`${name} shrank while it was being packed (${done} of ${size} bytes)`);
      const chunk = buf.subarray(0, bytesRead);
      onChunk(chunk);
      await this.write(chunk);
      done += bytesRead;
    }
    await this.pad(size);
  }

  /** Two zero blocks: the end-of-archive marker. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
  }

  private async writeHeaders(h: TarHeader): Promise<void> {
    const pax: Record<string, string> = {};
    const split = splitUstarName(h.name);
    if (!split) pax.path = h.name;
    if (h.linkName !== undefined && Buffer.byteLength(h.linkName) > 100) pax.linkpath = h.linkName;
    if (h.size > USTAR_MAX_SIZE) pax.size = String(h.size);
    if (Object.keys(pax).length > 0) {
      const body = encodePax(pax);
      await this.write(ustarHeader({ name: 'PaxHeader', type: 'file', size: body.length, mode: 0o644, mtimeMs: h.mtimeMs }, 'x', { name: 'PaxHeader', prefix: '' }));
      await this.write(body);
      await this.pad(body.length);
    }
    await this.write(ustarHeader(h, typeFlagOf(h.type), split ?? { name: truncateBytes(h.name, 100), prefix: '' }));
  }

  private async write(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.out.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
    this.bytes += buf.length;
  }

  private async pad(size: number): Promise<void> {
    const rest = size % BLOCK;
    if (rest !== 0) await this.write(Buffer.alloc(BLOCK - rest));
  }
}

function typeFlagOf(t: TarEntryType): string {
  return t === 'file' ? '0' : t === 'dir' ? '5' : '2';
}

/** name ≤ 100 bytes, or prefix ≤ 155 + '/' + name ≤ 100 split at a slash; undefined if neither fits. */
export function splitUstarName(full: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(full) <= 100) return { name: full, prefix: '' };
  for (let i = full.indexOf('/'); i >= 0; i = full.indexOf('/', i + 1)) {
    const prefix = full.slice(0, i);
    const name = full.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) return { name, prefix };
  }
  return undefined;
}

function truncateBytes(s: string, max: number): string {
  const b = Buffer.from(s);
  return b.length <= max ? s : b.subarray(0, max).toString('latin1');
}

/** Pax records: `<len> <key>=<value>\n`, where len counts the whole record including itself. */
export function encodePax(records: Record<string, string>): Buffer {
  const parts = Object.entries(records).map(([k, v]) => {
    const payload = ` ${k}=${v}\n`;
    const bytes = Buffer.byteLength(payload);
    // The length counts its own digits: iterate to the fixed point (at most two steps).
    let len = bytes;
    for (let next = bytes + String(len).length; next !== len; next = bytes + String(len).length) len = next;
    return `${len}${payload}`;
  });
  return Buffer.from(parts.join(''));
}

export function decodePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number.parseInt(buf.subarray(off, sp).toString('ascii'), 10);
    if (!Number.isSafeInteger(len) || len <= sp - off || off + len > buf.length) throw new TarFormatError('malformed pax header');
    const record = buf.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    off += len;
  }
  return out;
}

function ustarHeader(h: TarHeader, typeFlag: string, n: { name: string; prefix: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(n.name, 0, 100, 'utf8');
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, 0);
  writeOctal(b, 116, 8, 0);
  writeOctal(b, 124, 12, h.size > USTAR_MAX_SIZE ? 0 : h.size);
  writeOctal(b, 136, 12, Math.max(0, Math.floor(h.mtimeMs / 1000)));
  b.fill(0x20, 148, 156);
  b.write(typeFlag, 156, 1, 'ascii');
  if (h.linkName !== undefined) b.write(truncateBytes(h.linkName, 100), 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  b.write(n.prefix, 345, 155, 'utf8');
  writeOctal(b, 148, 7, checksum(b));
  b[155] = 0x20;
  return b;
}

/** `width - 1` zero-padded octal digits and a NUL. */
function writeOctal(b: Buffer, off: number, width: number, value: number): void {
  b.write(`${value.toString(8).padStart(width - 1, '0')}\0`, off, width, 'ascii');
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (b[i] as number);
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Pull-style reads of exact byte counts over an async iterable of chunks (a file stream). */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private ended = false;
  /** Archive offset of the next unread byte. */
  offset = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    return true;
  }

  /** Exactly n bytes, or fewer only at the end of the input. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.more()));
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    this.offset += out.length;
    return out;
  }

  /** n bytes as a sequence of chunks, without gathering them. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw new TarFormatError(`archive truncated at byte ${this.offset} (${left} bytes of an entry missing)`);
      const chunk = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(chunk.length);
      this.offset += chunk.length;
      left -= chunk.length;
      yield chunk;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const chunk of this.take(n)) void chunk;
  }
}

export interface TarEntry extends TarHeader {
  /** The entry's bytes; must be consumed (or is skipped) before the next entry is read. */
  body: AsyncIterable<Buffer>;
  /** Archive offset of the entry's header (for error messages). */
  offset: number;
}

/**
 * Entries of a tar stream. Accepts ustar, pax (`x` per-entry, `g` global headers ignored) and
 * old-style v7 headers; refuses every other entry type (hard links, devices, FIFOs, GNU
 * extensions) with TarFormatError, so a caller only ever sees files, directories and symlinks.
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const r = new ChunkReader(source);
  let pax: Record<string, string> = {};
  for (;;) {
    const offset = r.offset;
    const block = await r.read(BLOCK);
    if (block.length === 0) return; // no end marker: tolerated, like GNU tar
    if (block.length < BLOCK) throw new TarFormatError(`archive truncated at byte ${offset}`);
    if (block.every((x) => x === 0)) return;
    const h = parseHeader(block, offset);
    const padded = Math.ceil(h.size / BLOCK) * BLOCK;
    if (h.flag === 'x' || h.flag === 'g') {
      if (h.size > MAX_PAX_BYTES) throw new TarFormatError(`pax header of ${h.size} bytes at byte ${offset}`);
      const body = await r.read(padded);
      if (body.length < padded) throw new TarFormatError(`archive truncated at byte ${r.offset}`);
      if (h.flag === 'x') pax = decodePax(body.subarray(0, h.size));
      continue;
    }
    const type = h.flag === '0' || h.flag === '\0' || h.flag === '7' ? 'file' : h.flag === '5' ? 'dir' : h.flag === '2' ? 'symlink' : undefined;
    if (!type) throw new TarFormatError(`unsupported entry type ${JSON.stringify(h.flag)} for ${JSON.stringify(h.name)} at byte ${offset} (only files, directories and symlinks)`);
    const size = pax.size !== undefined ? parseDecimal(pax.size, offset) : h.size;
    const entry: TarEntry = { name: pax.path ?? h.name, type, size: type === 'file' ? size : 0, mode: h.mode, mtimeMs: h.mtime * 1000, offset, body: noBody() };
    if (type === 'symlink') entry.linkName = pax.linkpath ?? h.linkName;
    pax = {};
    let consumed = false;
    const dataPadded = Math.ceil(entry.size / BLOCK) * BLOCK;
    if (type === 'file') {
      entry.body = {
        [Symbol.asyncIterator]: () => {
          if (consumed) throw new TarFormatError(`body of ${entry.name} read twice`);
          consumed = true;
          return r.take(entry.size);
        },
      };
    } else if (size > 0) {
      await r.skip(Math.ceil(size / BLOCK) * BLOCK);
    }
    const before = r.offset;
    yield entry;
    if (type === 'file') {
      // Skip whatever the caller did not read, then the padding.
      const read = r.offset - before;
      await r.skip(dataPadded - read);
    }
  }
}

async function* noBody(): AsyncGenerator<Buffer> {
  // directories and symlinks carry no data
}

interface RawHeader {
  name: string;
  flag: string;
  size: number;
  mode: number;
  mtime: number;
  linkName: string;
}

function parseHeader(b: Buffer, offset: number): RawHeader {
  const stored = parseOctal(b.subarray(148, 156));
  if (stored !== checksum(b)) throw new TarFormatError(`bad header checksum at byte ${offset} (not a tar archive, or a corrupted one)`);
  const str = (from: number, len: number): string => {
    const s = b.subarray(from, from + len);
    const end = s.indexOf(0);
    return (end < 0 ? s : s.subarray(0, end)).toString('utf8');
  };
  const isUstar = b.subarray(257, 262).toString('ascii') === 'ustar';
  const name = str(0, 100);
  const prefix = isUstar ? str(345, 155) : '';
  return {
    name: prefix ? `${prefix}/${name}` : name,
    flag: String.fromCharCode(b[156] as number),
    size: parseSize(b.subarray(124, 136), offset),
    mode: parseOctal(b.subarray(100, 108)),
    mtime: parseOctal(b.subarray(136, 148)),
    linkName: str(157, 100),
  };
}

function parseOctal(field: Buffer): number {
  const s = field.toString('ascii').replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

/** Octal, or GNU base-256 (high bit of the first byte set) for big sizes. */
function parseSize(field: Buffer, offset: number): number {
  if (((field[0] as number) & 0x80) !== 0) {
    let v = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + (field[i] as number);
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`entry size too large at byte ${offset}`);
    return v;
  }
  const v = parseOctal(field);
  if (!Number.isSafeInteger(v) || v < 0) throw new TarFormatError(`bad entry size at byte ${offset}`);
  return v;
}

function parseDecimal(s: string, offset: number): number {
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v < 0) throw new TarFormatError(`bad pax size ${JSON.stringify(s)} at byte ${offset}`);
  return v;
}
