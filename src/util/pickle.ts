// Minimal Python pickle codec for the ModelScope SDK's hidden index files `.msc` and `.mdl`
// (spec: modelscope-hub.md §2.2). Only plain data is supported: str, int, bool, None, list, dict
// with str keys (tuples and floats are read, never written). Every opcode that could make Python
// import or call code is refused, and every length is checked against the bytes actually present.

import { HubcacheError } from '../errors.js';

/** A value that round-trips through Python's pickle as plain data. Numbers are written as ints. */
export type PickleValue = string | number | boolean | null | PickleValue[] | { [key: string]: PickleValue };
export type PickleDict = { [key: string]: PickleValue };

/** One `.msc` entry: a repo-relative path and the per-file revision from the file-list API. */
export type MscEntry = { Path: string; Revision: string };

/** Malformed, truncated, hostile or unsupported pickle data (or a value we cannot pickle). */
export class PickleError extends HubcacheError {
  constructor(
    message: string,
    /** Byte offset of the opcode or field at fault, when decoding. */
    readonly offset?: number,
  ) {
    super(offset === undefined ? message : `${message} at offset ${offset}`);
  }
}

// Opcodes (CPython Lib/pickle.py names).
const MARK = 0x28; // (
const STOP = 0x2e; // .
const FLOAT = 0x46; // F
const INT = 0x49; // I
const BININT = 0x4a; // J
const BININT1 = 0x4b; // K
const LONG = 0x4c; // L
const BININT2 = 0x4d; // M
const NONE = 0x4e; // N
const UNICODE = 0x56; // V
const BINUNICODE = 0x58; // X
const EMPTY_LIST = 0x5d; // ]
const APPEND = 0x61; // a
const DICT = 0x64; // d
const APPENDS = 0x65; // e
const GET = 0x67; // g
const BINGET = 0x68; // h
const LONG_BINGET = 0x6a; // j
const LIST = 0x6c; // l
const PUT = 0x70; // p
const BINPUT = 0x71; // q
const LONG_BINPUT = 0x72; // r
const SETITEM = 0x73; // s
const TUPLE = 0x74; // t
const EMPTY_TUPLE = 0x29; // )
const SETITEMS = 0x75; // u
const BINFLOAT = 0x47; // G
const EMPTY_DICT = 0x7d; // }
const PROTO = 0x80;
const TUPLE1 = 0x85;
const TUPLE2 = 0x86;
const TUPLE3 = 0x87;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;
const LONG1 = 0x8a;
const LONG4 = 0x8b;
const SHORT_BINUNICODE = 0x8c;
const BINUNICODE8 = 0x8d;
const MEMOIZE = 0x94;
const FRAME = 0x95;

const HIGHEST_PROTOCOL = 5;
/** Deeper nesting is refused; CPython's own recursion limit stops its pickler well before this. */
const MAX_DEPTH = 1000;

/** Names of opcodes we refuse, for error messages. */
const OPCODE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x30, 'POP'],
  [0x31, 'POP_MARK'],
  [0x32, 'DUP'],
  [0x42, 'BINBYTES'],
  [0x43, 'SHORT_BINBYTES'],
  [0x50, 'PERSID'],
  [0x51, 'BINPERSID'],
  [0x52, 'REDUCE'],
  [0x53, 'STRING'],
  [0x54, 'BINSTRING'],
  [0x55, 'SHORT_BINSTRING'],
  [0x62, 'BUILD'],
  [0x63, 'GLOBAL'],
  [0x69, 'INST'],
  [0x6f, 'OBJ'],
  [0x81, 'NEWOBJ'],
  [0x82, 'EXT1'],
  [0x83, 'EXT2'],
  [0x84, 'EXT4'],
  [0x8e, 'BINBYTES8'],
  [0x8f, 'EMPTY_SET'],
  [0x90, 'ADDITEMS'],
  [0x91, 'FROZENSET'],
  [0x92, 'NEWOBJ_EX'],
  [0x93, 'STACK_GLOBAL'],
  [0x96, 'BYTEARRAY8'],
  [0x97, 'NEXT_BUFFER'],
  [0x98, 'READONLY_BUFFER'],
]);
/** Opcodes that make Python import a name, call something or load external objects. */
const CODE_OPCODES = new Set([0x50, 0x51, 0x52, 0x62, 0x63, 0x69, 0x6f, 0x81, 0x82, 0x83, 0x84, 0x92, 0x93]);

// ---------------------------------------------------------------------------------------------
// Encoding

/** Growable output buffer; avoids one small Buffer per string. */
class Writer {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  u16(n: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(n, this.len);
    this.len += 2;
  }
  i32(n: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(n, this.len);
    this.len += 4;
  }
  u32(n: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(n, this.len);
    this.len += 4;
  }
  /** BINUNICODE: u32 LE byte length, then the bytes as CPython writes them (UTF-8, surrogatepass). */
  binunicode(s: string): void {
    this.byte(BINUNICODE);
    if (LONE_SURROGATE.test(s)) {
      const b = encodeSurrogatePass(s);
      this.u32(b.length);
      this.bytes(b);
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    if (n > 0xffffffff) throw new PickleError('string too long for BINUNICODE');
    this.u32(n);
    this.ensure(n);
    this.len += this.buf.write(s, this.len, n, 'utf8');
  }
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * UTF-8 that keeps lone surrogates as 3-byte sequences, like Python's 'surrogatepass' (which
 * pickle uses). Buffer.from(s, 'utf8') would silently turn them into U+FFFD.
 */
function encodeSurrogatePass(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return Buffer.from(out);
}

/** Python's pickle.encode_long: minimal little-endian two's complement. */
function encodeLong(n: number): Buffer {
  let x = BigInt(n);
  const bytes: number[] = [];
  // Emit bytes until the rest is pure sign extension and the last byte's top bit shows the sign.
  for (;;) {
    const b = Number(x & 0xffn);
    bytes.push(b);
    x >>= 8n;
    if ((x === 0n && (b & 0x80) === 0) || (x === -1n && (b & 0x80) !== 0)) break;
  }
  return Buffer.from(bytes);
}

function isPlainObject(v: object): v is PickleDict {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function writeValue(w: Writer, v: PickleValue, depth: number): void {
  if (v === null) return w.byte(NONE);
  switch (typeof v) {
    case 'string':
      return w.binunicode(v);
    case 'boolean':
      return w.byte(v ? NEWTRUE : NEWFALSE);
    case 'number':
      if (!Number.isSafeInteger(v)) throw new PickleError(`cannot pickle ${v}: only safe integers are supported`);
      // Same opcode choice as CPython's save_long, so scalar ints are byte-identical to pickle.dumps(x, 2).
      if (v >= 0 && v <= 0xff) {
        w.byte(BININT1);
        w.byte(v);
      } else if (v >= 0 && v <= 0xffff) {
        w.byte(BININT2);
        w.u16(v);
      } else if (v >= -0x80000000 && v <= 0x7fffffff) {
        w.byte(BININT);
        w.i32(v);
      } else {
        const b = encodeLong(v);
        w.byte(LONG1);
        w.byte(b.length);
        w.bytes(b);
      }
      return;
    case 'object':
      break;
    default:
      throw new PickleError(`cannot pickle a value of type ${typeof v}`);
  }
  // Depth also stops cyclic input, which would otherwise recurse forever.
  if (depth >= MAX_DEPTH) throw new PickleError(`value nested deeper than ${MAX_DEPTH} levels (or recursive)`);
  if (Array.isArray(v)) {
    w.byte(EMPTY_LIST);
    for (const item of v) {
      writeValue(w, item, depth + 1);
      w.byte(APPEND);
    }
    return;
  }
  if (!isPlainObject(v)) throw new PickleError('cannot pickle a non-plain object');
  w.byte(EMPTY_DICT);
  for (const key of Object.keys(v)) {
    w.binunicode(key);
    writeValue(w, v[key] as PickleValue, depth + 1);
    w.byte(SETITEM);
  }
}

/**
 * Pickle `value` with the minimal protocol-2 subset of docs/protocols.md §ModelScope index pickle (PROTO, EMPTY_LIST/EMPTY_DICT,
 * BINUNICODE, SETITEM, APPEND, STOP; NONE, NEWTRUE/NEWFALSE, BININT1/BININT2/BININT/LONG1).
 */
export function encodePickle(value: PickleValue): Buffer {
  const w = new Writer();
  w.byte(PROTO);
  w.byte(2);
  writeValue(w, value, 0);
  w.byte(STOP);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 that also accepts encoded surrogates (Python's 'surrogatepass'); null if invalid. */
function decodeSurrogatePass(b: Uint8Array): string | null {
  const units: number[] = [];
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    let cp: number;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) {
      cp = c;
      need = 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
      cp = c & 0x1f;
      need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      cp = c & 0x0f;
      need = 2;
      if (c === 0xe0) lo = 0xa0;
    } else if (c >= 0xf0 && c <= 0xf4) {
      cp = c & 0x07;
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return null;
    for (let k = 1; k <= need; k++) {
      const d = b[i + k];
      if (d === undefined) return null;
      if (k === 1 ? d < lo || d > hi : d < 0x80 || d > 0xbf) return null;
      cp = (cp << 6) | (d & 0x3f);
    }
    i += need + 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else units.push(cp);
    // Flush in chunks so fromCharCode never gets too many arguments.
    if (units.length >= 8192) out += String.fromCharCode(...units.splice(0));
  }
  return out + String.fromCharCode(...units);
}

/** Protocol-0 text fields; non-ASCII bytes survive as-is and then fail the callers' ASCII patterns. */
function text(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** Python's raw-unicode-escape decoding, used by the protocol-0 UNICODE opcode. */
function decodeRawUnicodeEscape(b: Uint8Array, at: number): string {
  const units: number[] = [];
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    if (c !== 0x5c) {
      units.push(c);
      i++;
      continue;
    }
    // \u / \U are escapes only after an odd run of backslashes; the backslashes stay literal.
    const start = i;
    while (i < b.length && b[i] === 0x5c) units.push(b[i++] as number);
    const next = b[i];
    if ((i - start) % 2 === 0 || (next !== 0x75 && next !== 0x55)) continue;
    units.pop();
    const count = next === 0x75 ? 4 : 8;
    const hex = text(b.subarray(i + 1, i + 1 + count));
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== count)
      throw new PickleError('truncated \\uXXXX escape in UNICODE', at);
    const cp = parseInt(hex, 16);
    if (cp > 0x10ffff) throw new PickleError('\\Uxxxxxxxx out of range in UNICODE', at);
    if (cp >= 0x10000) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    else units.push(cp);
    i += 1 + count;
  }
  let out = '';
  for (let k = 0; k < units.length; k += 8192) out += String.fromCharCode(...units.slice(k, k + 8192));
  return out;
}

/** Parses a decimal integer the way CPython writes it (no leading zeros), as a safe integer. */
function parseDecimalInt(s: string, at: number): number {
  if (!/^[+-]?(0|[1-9][0-9]*)$/.test(s)) throw new PickleError(`malformed integer ${JSON.stringify(s)}`, at);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new PickleError(`integer ${s} is outside the safe range`, at);
  return n;
}

function isDict(v: PickleValue | undefined): v is PickleDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setKey(d: PickleDict, key: PickleValue, value: PickleValue, at: number): void {
  if (typeof key !== 'string') throw new PickleError('dict key is not a str', at);
  // defineProperty so a '__proto__' key becomes an own property instead of changing the prototype.
  Object.defineProperty(d, key, { value, writable: true, enumerable: true, configurable: true });
}

interface Decoded {
  value: PickleValue;
  /** Arrays that were Python tuples. */
  tuples: WeakSet<PickleValue[]>;
}

class Unpickler {
  private pos = 0;
  private readonly stack: PickleValue[] = [];
  private readonly marks: number[] = [];
  /** Stack index below which nothing may be popped: the innermost open MARK. */
  private fence = 0;
  private readonly memo = new Map<number, PickleValue>();
  private readonly tuples = new WeakSet<PickleValue[]>();
  /** Containers already stored inside another one. A second placement would make a DAG or a cycle. */
  private readonly placed = new WeakSet<object>();

  constructor(private readonly buf: Buffer) {}

  private need(n: number, what: string, at: number): void {
    if (n > this.buf.length - this.pos) {
      throw new PickleError(`pickle data truncated: ${what} needs ${n} bytes, ${this.buf.length - this.pos} left`, at);
    }
  }
  private u8(at: number): number {
    this.need(1, 'argument', at);
    return this.buf[this.pos++] as number;
  }
  private u16(at: number): number {
    this.need(2, 'argument', at);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  private u32(at: number): number {
    this.need(4, 'argument', at);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  private i32(at: number): number {
    this.need(4, 'argument', at);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  /** A u64 length, checked against what is left before it becomes a number. */
  private len64(what: string, at: number): number {
    this.need(8, 'argument', at);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    const left = this.buf.length - this.pos;
    if (v > BigInt(left)) throw new PickleError(`pickle data truncated: ${what} declares ${v} bytes, ${left} left`, at);
    return Number(v);
  }
  private take(n: number, what: string, at: number): Buffer {
    this.need(n, what, at);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  private line(at: number): Buffer {
    const end = this.buf.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleError('pickle data truncated: missing end of line', at);
    const b = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return b;
  }
  private str(n: number, at: number): string {
    const b = this.take(n, 'string', at);
    try {
      return utf8.decode(b);
    } catch {
      const s = decodeSurrogatePass(b);
      if (s === null) throw new PickleError('string is not valid UTF-8', at);
      return s;
    }
  }

  private pop(at: number): PickleValue {
    if (this.stack.length <= this.fence) throw new PickleError('unpickling stack underflow', at);
    return this.stack.pop() as PickleValue;
  }
  private top(at: number): PickleValue {
    if (this.stack.length <= this.fence) throw new PickleError('unpickling stack underflow', at);
    return this.stack[this.stack.length - 1] as PickleValue;
  }
  private popMark(at: number): PickleValue[] {
    const m = this.marks.pop();
    if (m === undefined) throw new PickleError('could not find MARK', at);
    this.fence = this.marks[this.marks.length - 1] ?? 0;
    return this.stack.splice(m);
  }
  private adopt(child: PickleValue, at: number): void {
    if (typeof child !== 'object' || child === null) return;
    if (this.placed.has(child)) throw new PickleError('shared or recursive list/dict references are not supported', at);
    this.placed.add(child);
  }
  private list(at: number, op: string): PickleValue[] {
    const target = this.top(at);
    if (!Array.isArray(target) || this.tuples.has(target)) throw new PickleError(`${op} target is not a list`, at);
    return target;
  }
  private dict(at: number, op: string): PickleDict {
    const target = this.top(at);
    if (!isDict(target)) throw new PickleError(`${op} target is not a dict`, at);
    return target;
  }
  private tuple(items: PickleValue[], at: number): void {
    for (const it of items) this.adopt(it, at);
    this.tuples.add(items);
    this.stack.push(items);
  }
  private memoPut(index: number, at: number): void {
    if (index < 0) throw new PickleError('negative memo index', at);
    this.memo.set(index, this.top(at));
  }
  private memoGet(index: number, at: number): void {
    const v = this.memo.get(index);
    if (v === undefined) throw new PickleError(`memo key ${index} not found`, at);
    this.stack.push(v);
  }
  private long(n: number, at: number): number {
    if (n === 0) return 0;
    // A safe integer fits in 7 bytes; CPython never pads, but allow a little slack before refusing.
    if (n > 16) throw new PickleError(`integer of ${n} bytes is outside the safe range`, at);
    const b = this.take(n, 'LONG', at);
    let x = 0n;
    for (let k = n - 1; k >= 0; k--) x = (x << 8n) | BigInt(b[k] as number);
    if (((b[n - 1] as number) & 0x80) !== 0) x -= 1n << BigInt(8 * n);
    if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new PickleError(`integer ${x} is outside the safe range`, at);
    }
    return Number(x);
  }

  run(): Decoded {
    const { buf, stack } = this;
    for (;;) {
      const at = this.pos;
      if (at >= buf.length) throw new PickleError('pickle data truncated: no STOP opcode', at);
      const op = buf[this.pos++] as number;
      switch (op) {
        case PROTO: {
          const v = this.u8(at);
          if (v > HIGHEST_PROTOCOL) throw new PickleError(`unsupported pickle protocol ${v}`, at);
          break;
        }
        case FRAME:
          // Frames only group bytes for buffered reading; the length must still fit.
          this.len64('FRAME', at);
          break;
        case STOP: {
          if (this.marks.length > 0) throw new PickleError('STOP with an open MARK', at);
          if (stack.length !== 1) throw new PickleError(`STOP with ${stack.length} items on the stack`, at);
          if (this.pos !== buf.length)
            throw new PickleError(`${buf.length - this.pos} bytes of trailing data after STOP`, this.pos);
          const value = stack[0] as PickleValue;
          if (typeof value === 'object' && value !== null && this.placed.has(value)) {
            throw new PickleError('recursive list/dict references are not supported', at);
          }
          checkDepth(value);
          return { value, tuples: this.tuples };
        }
        case MARK:
          this.marks.push(stack.length);
          this.fence = stack.length;
          break;

        case NONE:
          stack.push(null);
          break;
        case NEWTRUE:
          stack.push(true);
          break;
        case NEWFALSE:
          stack.push(false);
          break;
        case BININT1:
          stack.push(this.u8(at));
          break;
        case BININT2:
          stack.push(this.u16(at));
          break;
        case BININT:
          stack.push(this.i32(at));
          break;
        case LONG1:
          stack.push(this.long(this.u8(at), at));
          break;
        case LONG4: {
          const n = this.i32(at);
          if (n < 0) throw new PickleError('LONG4 with a negative byte count', at);
          stack.push(this.long(n, at));
          break;
        }
        case INT: {
          // Protocol 0/1 write bools as I01 / I00.
          const s = text(this.line(at));
          if (s === '01') stack.push(true);
          else if (s === '00') stack.push(false);
          else stack.push(parseDecimalInt(s, at));
          break;
        }
        case LONG: {
          const s = text(this.line(at));
          stack.push(parseDecimalInt(s.endsWith('L') ? s.slice(0, -1) : s, at));
          break;
        }
        case BINFLOAT:
          this.need(8, 'BINFLOAT', at);
          stack.push(buf.readDoubleBE(this.pos));
          this.pos += 8;
          break;
        case FLOAT: {
          const s = text(this.line(at));
          if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) stack.push(Number(s));
          else if (/^[+-]?inf$/.test(s)) stack.push(s.startsWith('-') ? -Infinity : Infinity);
          else if (/^[+-]?nan$/.test(s)) stack.push(NaN);
          else throw new PickleError(`malformed float ${JSON.stringify(s)}`, at);
          break;
        }

        case SHORT_BINUNICODE:
          stack.push(this.str(this.u8(at), at));
          break;
        case BINUNICODE:
          stack.push(this.str(this.u32(at), at));
          break;
        case BINUNICODE8:
          stack.push(this.str(this.len64('BINUNICODE8', at), at));
          break;
        case UNICODE:
          stack.push(decodeRawUnicodeEscape(this.line(at), at));
          break;

        case EMPTY_LIST:
          stack.push([]);
          break;
        case EMPTY_DICT:
          stack.push({});
          break;
        case EMPTY_TUPLE:
          this.tuple([], at);
          break;
        case TUPLE1:
        case TUPLE2:
        case TUPLE3: {
          const n = op - TUPLE1 + 1;
          if (stack.length - this.fence < n) throw new PickleError('unpickling stack underflow', at);
          this.tuple(stack.splice(stack.length - n), at);
          break;
        }
        case TUPLE:
          this.tuple(this.popMark(at), at);
          break;
        case LIST: {
          const items = this.popMark(at);
          for (const it of items) this.adopt(it, at);
          stack.push(items);
          break;
        }
        case DICT: {
          const items = this.popMark(at);
          if (items.length % 2 !== 0) throw new PickleError('odd number of items for DICT', at);
          const d: PickleDict = {};
          for (let k = 0; k < items.length; k += 2) {
            const v = items[k + 1] as PickleValue;
            this.adopt(v, at);
            setKey(d, items[k] as PickleValue, v, at);
          }
          stack.push(d);
          break;
        }
        case APPEND: {
          const v = this.pop(at);
          const list = this.list(at, 'APPEND');
          this.adopt(v, at);
          list.push(v);
          break;
        }
        case APPENDS: {
          const items = this.popMark(at);
          const list = this.list(at, 'APPENDS');
          for (const it of items) {
            this.adopt(it, at);
            list.push(it);
          }
          break;
        }
        case SETITEM: {
          const v = this.pop(at);
          const k = this.pop(at);
          const d = this.dict(at, 'SETITEM');
          this.adopt(v, at);
          setKey(d, k, v, at);
          break;
        }
        case SETITEMS: {
          const items = this.popMark(at);
          if (items.length % 2 !== 0) throw new PickleError('odd number of items for SETITEMS', at);
          const d = this.dict(at, 'SETITEMS');
          for (let k = 0; k < items.length; k += 2) {
            const v = items[k + 1] as PickleValue;
            this.adopt(v, at);
            setKey(d, items[k] as PickleValue, v, at);
          }
          break;
        }

        case MEMOIZE:
          this.memoPut(this.memo.size, at);
          break;
        case BINPUT:
          this.memoPut(this.u8(at), at);
          break;
        case LONG_BINPUT:
          this.memoPut(this.u32(at), at);
          break;
        case PUT:
          this.memoPut(parseDecimalInt(text(this.line(at)), at), at);
          break;
        case BINGET:
          this.memoGet(this.u8(at), at);
          break;
        case LONG_BINGET:
          this.memoGet(this.u32(at), at);
          break;
        case GET:
          this.memoGet(parseDecimalInt(text(this.line(at)), at), at);
          break;

        default: {
          const hex = `0x${op.toString(16).padStart(2, '0')}`;
          const name = OPCODE_NAMES.get(op);
          if (name === undefined) throw new PickleError(`unknown pickle opcode ${hex}`, at);
          if (CODE_OPCODES.has(op)) {
            throw new PickleError(
              `refusing pickle opcode ${name} (${hex}): it would make Python import or call code`,
              at,
            );
          }
          throw new PickleError(`unsupported pickle opcode ${name} (${hex})`, at);
        }
      }
    }
  }
}

/** The decoded value is a tree (see adopt), so a plain walk is linear; this bounds later recursion. */
function checkDepth(root: PickleValue): void {
  const todo: Array<[PickleValue, number]> = [[root, 0]];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const [v, depth] = next;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_DEPTH) throw new PickleError(`pickle nested deeper than ${MAX_DEPTH} levels`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) todo.push([child, depth + 1]);
    }
  }
}

function decode(buf: Uint8Array): Decoded {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return new Unpickler(b).run();
}

/**
 * Unpickle plain data written by CPython with any protocol 0–5. Tuples come back as arrays and
 * floats as numbers. Anything else (classes, globals, bytes, sets, shared references) → PickleError.
 */
export function decodePickle(buf: Uint8Array): PickleValue {
  return decode(buf).value;
}

// ---------------------------------------------------------------------------------------------
// .msc / .mdl

/** The `.msc` cache index: a list of `{'Path': str, 'Revision': str}` dicts. */
export function encodeMsc(entries: readonly MscEntry[]): Buffer {
  const list: PickleValue[] = entries.map((e, i) => {
    if (typeof e?.Path !== 'string' || typeof e.Revision !== 'string') {
      throw new PickleError(`.msc entry ${i} needs string Path and Revision`);
    }
    // Only the two keys modelscope writes, in its order.
    return { Path: e.Path, Revision: e.Revision };
  });
  return encodePickle(list);
}

/** Reads a `.msc` index. Extra keys in an entry are ignored; any other shape → PickleError. */
export function decodeMsc(buf: Uint8Array): MscEntry[] {
  const { value, tuples } = decode(buf);
  if (!Array.isArray(value) || tuples.has(value)) throw new PickleError('.msc does not hold a list');
  return value.map((e, i) => {
    if (!isDict(e)) throw new PickleError(`.msc entry ${i} is not a dict`);
    const { Path, Revision } = e;
    if (typeof Path !== 'string' || typeof Revision !== 'string') {
      throw new PickleError(`.msc entry ${i} has no string 'Path' and 'Revision'`);
    }
    return { Path, Revision };
  });
}

/** The `.mdl` model meta: `{'id': '<owner>/<masked name>'}`. */
export function encodeMdl(id: string): Buffer {
  if (typeof id !== 'string') throw new PickleError('.mdl id must be a string');
  return encodePickle({ id });
}

/** Reads a `.mdl` file; extra keys are ignored. */
export function decodeMdl(buf: Uint8Array): { id: string } {
  const value = decodePickle(buf);
  if (!isDict(value)) throw new PickleError('.mdl does not hold a dict');
  const { id } = value;
  if (typeof id !== 'string') throw new PickleError(".mdl has no string 'id'");
  return { id };
}
