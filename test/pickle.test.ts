import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';

import { HubcacheError } from '../src/errors.js';
import {
  decodeMdl,
  decodeMsc,
  decodePickle,
  encodeMdl,
  encodeMsc,
  encodePickle,
  PickleError,
  type MscEntry,
  type PickleValue,
} from '../src/util/pickle.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// Opcodes our decoder accepts, by pickletools name; the fixture script reports the first one outside this set.
const SUPPORTED = [
  'PROTO',
  'FRAME',
  'STOP',
  'MARK',
  'NONE',
  'NEWTRUE',
  'NEWFALSE',
  'INT',
  'LONG',
  'BININT',
  'BININT1',
  'BININT2',
  'LONG1',
  'LONG4',
  'FLOAT',
  'BINFLOAT',
  'UNICODE',
  'BINUNICODE',
  'SHORT_BINUNICODE',
  'BINUNICODE8',
  'EMPTY_LIST',
  'EMPTY_DICT',
  'EMPTY_TUPLE',
  'TUPLE',
  'TUPLE1',
  'TUPLE2',
  'TUPLE3',
  'LIST',
  'DICT',
  'APPEND',
  'APPENDS',
  'SETITEM',
  'SETITEMS',
  'MEMOIZE',
  'PUT',
  'BINPUT',
  'LONG_BINPUT',
  'GET',
  'BINGET',
  'LONG_BINGET',
];

// One python run builds every CPython-written fixture (protocols 0–5), so the suite stays fast.
const FIXTURE_SCRIPT = String.raw`
import json, os, pickle, pickletools, sys

SUPPORTED = set(sys.argv[1].split(','))

def msc(n, shared_from=None):
    shared = ''.join(['e4'] * 20)  # built at run time: one object, memoized once, then LONG_BINGET
    out = []
    for i in range(n):
        rev = shared if shared_from is not None and i >= shared_from else '%040x' % (i * 7919 + 1)
        out.append({'Path': 'weights/part_%05d.safetensors' % i, 'Revision': rev})
    return out

values = {
    'empty': [],
    'one': msc(1),
    'three': msc(3),
    'many': msc(1500, shared_from=100),
    'nonascii': [{'Path': '模型/权重文件.bin', 'Revision': 'abc'}, {'Path': 'données/résumé.txt', 'Revision': 'd'},
                 {'Path': 'emoji/😀.txt', 'Revision': 'e'}],
    'long': [{'Path': 'deep/' * 60 + '长文件名.bin', 'Revision': 'r' * 300}],
    'mdl': {'id': 'Qwen/Qwen2___5-7B'},
    'extra_keys': [{'Path': 'a', 'Revision': 'b', 'Size': 3, 'Sha256': None}],
    'scalars': [0, 1, 255, 256, 65535, 65536, -1, -256, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**53 - 1,
                -(2**53 - 1), True, False, None, 1.5, -0.25],
    'nested': {'a': [[], {}, [[1, [2, [3]]]]], 'b': {'c': {'d': 'e'}}, '__proto__': {'x': 1}, '': ''},
    'tuples': [(), (1,), (1, 'two'), (1, 2, 3), (1, 2, 3, 4), {'t': ((),)}],
    'odd_strings': ['', 'back\\slash \\u0041 \\\\u0042', 'nl\n cr\r nul\x00 sub\x1a', '\ufeffbom', '\udc80lone',
                    'pair\ud83d\ude00', 'x' * 256, '\xe4' * 128, '\xff\x80 latin'],
    'big_dict': {('k%d' % i): i for i in range(2500)},
}

class Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))

class Obj:
    pass

obj = Obj()
obj.x = 1
rec = []
rec.append(rec)
shared = []
shared_dict = {}
bad = {
    'global': os.system,
    'reduce': Evil(),
    'nested_reduce': [{'Path': 'a', 'Revision': Evil()}],
    'object': obj,
    'bytes': b'abc',
    'set': {1, 2},
    'frozenset': frozenset([1]),
    'bytearray': bytearray(b'x'),
    'huge_int': 2**64,
    'unsafe_int': 2**53,
    'int_key': {1: 'a'},
    'recursive': rec,
    'shared_list': [shared, shared],
    'shared_dict': [shared_dict, shared_dict],
}

def first_unsupported(b):
    for op, arg, pos in pickletools.genops(b):
        if op.name not in SUPPORTED:
            return [op.name, pos]
    return None

good = []
for name, v in values.items():
    for proto in range(6):
        b = pickle.dumps(v, protocol=proto)
        good.append({'name': name, 'proto': proto, 'hex': b.hex(),
                     'ops': [op.name for op, arg, pos in pickletools.genops(b)], 'json': json.dumps(v)})
evil = []
for name, v in bad.items():
    for proto in range(6):
        b = pickle.dumps(v, protocol=proto)
        evil.append({'name': name, 'proto': proto, 'hex': b.hex(), 'first': first_unsupported(b)})
scalars = [[x, pickle.dumps(x, 2).hex()] for x in values['scalars'] if not isinstance(x, float)]
print(json.dumps({'good': good, 'evil': evil, 'scalars': scalars}))
`;

// Loads each hex pickle with CPython and reports JSON of the result (or the exception).
const LOAD_SCRIPT = String.raw`
import json, pickle, sys
out = []
for h in json.load(sys.stdin):
    try:
        out.append([True, json.dumps(pickle.loads(bytes.fromhex(h)))])
    except Exception as e:
        out.append([False, repr(e)])
print(json.dumps(out))
`;

interface GoodCase {
  name: string;
  proto: number;
  hex: string;
  ops: string[];
  json: string;
}
interface EvilCase {
  name: string;
  proto: number;
  hex: string;
  first: [string, number] | null;
}
interface Fixtures {
  good: GoodCase[];
  evil: EvilCase[];
  scalars: Array<[PickleValue, string]>;
}

function runPython(args: string[], input?: string): string {
  const r = spawnSync('python3', args, { input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return r.stdout;
}

const hasPython = spawnSync('python3', ['--version']).status === 0;
const skipPy = hasPython ? false : 'python3 not available';
const fx: Fixtures = hasPython
  ? (JSON.parse(runPython(['-c', FIXTURE_SCRIPT, SUPPORTED.join(',')])) as Fixtures)
  : { good: [], evil: [], scalars: [] };

function good(name: string, proto: number): GoodCase {
  const c = fx.good.find((g) => g.name === name && g.proto === proto);
  assert.ok(c, `fixture ${name}/${proto}`);
  return c;
}

/** What CPython's pickle.loads makes of each buffer, as parsed JSON. */
function pythonLoads(bufs: Buffer[]): PickleValue[] {
  const out = JSON.parse(runPython(['-c', LOAD_SCRIPT], JSON.stringify(bufs.map((b) => b.toString('hex'))))) as Array<
    [boolean, string]
  >;
  return out.map(([ok, s]) => {
    assert.ok(ok, `python failed to load: ${s}`);
    return JSON.parse(s) as PickleValue;
  });
}

function expectPickleError(fn: () => unknown, pattern?: RegExp): PickleError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof PickleError, `expected PickleError, got ${String(caught)}`);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

/** Small deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

function randomString(r: () => number): string {
  const pools = ['abc/._-', 'é模型😀\u0000\n\\', '\uD800\uDC80\uFEFF'];
  let s = '';
  const n = Math.floor(r() * 12);
  for (let i = 0; i < n; i++) {
    const pool = pools[Math.floor(r() * pools.length)] as string;
    s += pool[Math.floor(r() * pool.length)] as string;
  }
  return s;
}

function randomValue(r: () => number, depth: number): PickleValue {
  const k = Math.floor(r() * (depth > 3 ? 5 : 7));
  const ints = [0, 1, 255, 256, 65535, 65536, -1, -129, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 40, -(2 ** 47) - 3];
  switch (k) {
    case 0:
      return randomString(r);
    case 1:
      return ints[Math.floor(r() * ints.length)] as number;
    case 2:
      return r() < 0.5;
    case 3:
      return null;
    case 4:
      return Math.floor((r() - 0.5) * Number.MAX_SAFE_INTEGER);
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const d: { [key: string]: PickleValue } = {};
      for (let i = Math.floor(r() * 4); i > 0; i--) d[randomString(r)] = randomValue(r, depth + 1);
      return d;
    }
  }
}

const manyEntries: MscEntry[] = Array.from({ length: 1500 }, (_, i) => ({
  Path: `weights/part_${String(i).padStart(5, '0')}.safetensors`,
  Revision: i.toString(16).padStart(40, '0'),
}));

describe('encodePickle: spec byte format', () => {
  test('empty list', () => {
    assert.deepEqual(encodePickle([]), hex('80 02 5d 2e'));
    assert.deepEqual(encodeMsc([]), hex('80 02 5d 2e'));
  });

  test('worked .msc example', () => {
    const expected = hex(
      '80 02 5d 7d 58 04000000 50617468 58 0b000000 636f6e6669672e6a736f6e 73 58 08000000 5265766973696f6e 58 03000000 616263 73 61 2e',
    );
    assert.deepEqual(encodePickle([{ Path: 'config.json', Revision: 'abc' }]), expected);
    assert.deepEqual(encodeMsc([{ Path: 'config.json', Revision: 'abc' }]), expected);
  });

  test('worked .mdl example', () => {
    const expected = hex('80 02 7d 58 02000000 6964 58 11000000 5177656e2f5177656e325f5f5f352d3742 73 2e');
    assert.deepEqual(encodeMdl('Qwen/Qwen2___5-7B'), expected);
    assert.deepEqual(decodeMdl(expected), { id: 'Qwen/Qwen2___5-7B' });
  });

  test('BINUNICODE length counts UTF-8 bytes', () => {
    assert.deepEqual(encodePickle('模型'), hex('80 02 58 06000000 e6a8a1 e59e8b 2e'));
    // Lone surrogates are kept the way CPython's surrogatepass writes them, not replaced by U+FFFD.
    assert.deepEqual(encodePickle('\uDC80'), hex('80 02 58 03000000 edb280 2e'));
    assert.deepEqual(encodePickle('\uD83D\uDE00'), hex('80 02 58 04000000 f09f9880 2e'));
  });

  test('encodeMsc writes only Path and Revision, in that order', () => {
    const withExtra = { Revision: 'abc', Path: 'config.json', Sha256: 'x' } as MscEntry;
    assert.deepEqual(encodeMsc([withExtra]), encodeMsc([{ Path: 'config.json', Revision: 'abc' }]));
  });

  test('scalar ints, bools and None match CPython protocol 2 byte for byte', { skip: skipPy }, () => {
    assert.ok(fx.scalars.length > 10);
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- scalars only
    for (const [value, h] of fx.scalars) assert.equal(encodePickle(value).toString('hex'), h, `value ${String(value)}`);
  });

  test('refuses values it cannot pickle faithfully', () => {
    const bad: unknown[] = [
      1.5,
      NaN,
      Infinity,
      2 ** 53,
      undefined,
      () => 1,
      1n,
      Symbol('x'),
      new Date(0),
      new Map(),
      Buffer.from('x'),
      [undefined],
      { a: undefined },
      new (class Foo {})(),
    ];
    for (const v of bad) expectPickleError(() => encodePickle(v as PickleValue), /cannot pickle/);
    const cyclic: PickleValue[] = [];
    cyclic.push(cyclic);
    expectPickleError(() => encodePickle(cyclic), /nested deeper|recursive/);
    expectPickleError(() => encodeMsc([{ Path: 'a' } as MscEntry]), /entry 0/);
    expectPickleError(() => encodeMsc([null as unknown as MscEntry]), /entry 0/);
    expectPickleError(() => encodeMdl(5 as unknown as string));
  });

  test('PickleError is a HubcacheError', () => {
    const e = expectPickleError(() => decodePickle(hex('80 02 63')));
    assert.ok(e instanceof HubcacheError);
    assert.equal(e.offset, 2);
  });
});

describe('round trips', () => {
  test('decode(encode(v)) is v for .msc, .mdl and random values', () => {
    for (const entries of [[], manyEntries.slice(0, 1), manyEntries]) {
      assert.deepEqual(decodeMsc(encodeMsc(entries)), entries);
    }
    assert.deepEqual(decodeMdl(encodeMdl('ns/模型___1')), { id: 'ns/模型___1' });
    const r = rng(42);
    for (let i = 0; i < 500; i++) {
      const v = randomValue(r, 0);
      assert.deepEqual(decodePickle(encodePickle(v)), v);
    }
  });

  test('a __proto__ key stays an ordinary key', () => {
    const v = JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}') as PickleValue;
    const back = decodePickle(encodePickle(v)) as { [key: string]: PickleValue };
    assert.deepEqual(Object.keys(back), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.equal(({} as { polluted?: number }).polluted, undefined);
  });

  test('python3 loads what we write', { skip: skipPy }, () => {
    const r = rng(7);
    const values: PickleValue[] = [
      [],
      [{ Path: 'config.json', Revision: 'abc' }],
      manyEntries,
      [
        { Path: '模型/权重文件.bin', Revision: 'r' },
        { Path: 'emoji/😀 \uDC80.txt', Revision: 'x'.repeat(300) },
      ],
      { id: 'Qwen/Qwen2___5-7B' },
      ...Array.from({ length: 200 }, () => randomValue(r, 0)),
    ];
    const loaded = pythonLoads(values.map((v) => encodePickle(v)));
    assert.equal(loaded.length, values.length);
    values.forEach((v, i) => assert.deepEqual(loaded[i], v, `value ${i}`));
  });
});

describe('decoding what CPython writes', { skip: skipPy }, () => {
  test('every fixture, protocols 0-5', () => {
    assert.equal(fx.good.length, 13 * 6);
    for (const c of fx.good) {
      assert.deepEqual(decodePickle(hex(c.hex)), JSON.parse(c.json), `${c.name} protocol ${c.proto}`);
    }
  });

  test('.msc and .mdl helpers on CPython output', () => {
    for (let proto = 0; proto <= 5; proto++) {
      for (const name of ['empty', 'one', 'three', 'many', 'nonascii', 'long']) {
        const c = good(name, proto);
        assert.deepEqual(decodeMsc(hex(c.hex)), JSON.parse(c.json), `${name} protocol ${proto}`);
      }
      assert.deepEqual(decodeMsc(hex(good('extra_keys', proto).hex)), [{ Path: 'a', Revision: 'b' }]);
      assert.deepEqual(decodeMdl(hex(good('mdl', proto).hex)), { id: 'Qwen/Qwen2___5-7B' });
    }
  });

  test('fixtures exercise the opcodes the spec lists', () => {
    const count = (c: GoodCase, op: string): number => c.ops.filter((o) => o === op).length;
    const three4 = good('three', 4);
    for (const op of ['FRAME', 'MEMOIZE', 'MARK', 'SHORT_BINUNICODE', 'SETITEMS', 'APPENDS', 'BINGET']) {
      assert.ok(count(three4, op) > 0, op);
    }
    assert.ok(count(good('one', 4), 'APPEND') === 1 && count(good('one', 4), 'APPENDS') === 0);
    assert.ok(count(good('mdl', 4), 'SETITEM') === 1);
    const many4 = good('many', 4);
    assert.ok(count(many4, 'FRAME') >= 2, 'several frames');
    assert.equal(count(many4, 'APPENDS'), 2, 'APPENDS batched by 1000');
    assert.ok(count(many4, 'LONG_BINGET') > 0);
    const many2 = good('many', 2);
    assert.ok(count(many2, 'LONG_BINPUT') > 0 && count(many2, 'LONG_BINGET') > 0 && count(many2, 'BINPUT') > 0);
    assert.ok(count(good('long', 4), 'BINUNICODE') > 0);
    assert.ok(count(good('odd_strings', 5), 'BINUNICODE') > 0);
    assert.ok(count(good('big_dict', 4), 'SETITEMS') >= 3);
    const zero = good('three', 0);
    for (const op of ['UNICODE', 'PUT', 'GET', 'LIST', 'DICT']) assert.ok(count(zero, op) > 0, op);
    assert.ok(count(good('scalars', 0), 'LONG') > 0 && count(good('scalars', 0), 'FLOAT') > 0);
    assert.ok(count(good('scalars', 2), 'LONG1') > 0);
    assert.ok(count(good('tuples', 2), 'TUPLE3') > 0 && count(good('tuples', 2), 'TUPLE') > 0);
  });

  test('BINUNICODE8 (CPython only writes it past 4 GiB, so hand-made)', () => {
    assert.equal(decodePickle(hex('80 04 8d 0300000000000000 616263 2e')), 'abc');
  });
});

describe('hostile and malformed input', () => {
  test(
    'CPython pickles of code, objects and unsupported types are refused by name and offset',
    { skip: skipPy },
    () => {
      assert.equal(fx.evil.length, 14 * 6);
      for (const c of fx.evil) {
        const e = expectPickleError(() => decodePickle(hex(c.hex)));
        if (c.first) {
          const [name, pos] = c.first;
          assert.ok(
            e.message.includes(name) && e.offset === pos,
            `${c.name}/${c.proto}: ${e.message} vs ${name}@${pos}`,
          );
        }
      }
      const sys4 = fx.evil.find((c) => c.name === 'global' && c.proto === 4);
      assert.ok(sys4);
      expectPickleError(
        () => decodePickle(hex(sys4.hex)),
        /refusing pickle opcode STACK_GLOBAL \(0x93\).*import or call code at offset 28/,
      );
      const reduce2 = fx.evil.find((c) => c.name === 'reduce' && c.proto === 2);
      assert.ok(reduce2);
      expectPickleError(() => decodePickle(hex(reduce2.hex)), /refusing pickle opcode GLOBAL \(0x63\)/);
      expectPickleError(() => decodeMsc(hex(reduce2.hex)), /GLOBAL/);
    },
  );

  test('hand-made malformed pickles', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /truncated: no STOP opcode at offset 0/],
      ['80 02', /no STOP/],
      ['80', /truncated/],
      ['80 06 5d 2e', /unsupported pickle protocol 6/],
      ['80 02 5d 2e 00', /trailing data after STOP at offset 4/],
      ['80 02 61 2e', /stack underflow at offset 2/],
      ['80 02 5d 28 61 2e', /stack underflow/],
      ['80 02 5d 28 85 2e', /stack underflow/],
      ['80 02 68 05 2e', /memo key 5 not found/],
      ['80 02 6a ffffffff 2e', /memo key 4294967295 not found/],
      ['80 02 94 2e', /stack underflow/],
      ['28 70 30 0a 2e', /stack underflow/],
      ['80 02 2e', /STOP with 0 items/],
      ['80 02 5d 5d 2e', /STOP with 2 items/],
      ['80 02 5d 28 2e', /open MARK/],
      ['80 02 5d 65 2e', /could not find MARK/],
      ['80 02 7d 28 4b 01 75 2e', /odd number of items for SETITEMS/],
      ['28 4b 01 64 2e', /odd number of items for DICT/],
      ['80 02 7d 4b 01 4b 02 73 2e', /dict key is not a str/],
      ['80 02 7d 4e 61 2e', /APPEND target is not a list/],
      ['80 02 5d 58 01000000 61 4e 73 2e', /SETITEM target is not a dict/],
      ['80 02 29 4e 61 2e', /APPEND target is not a list/],
      ['80 02 58 ffffffff 2e', /declares|needs 4294967295 bytes/],
      ['80 04 8d ffffffffffffffff 2e', /BINUNICODE8 declares 18446744073709551615 bytes/],
      ['80 04 95 ffffffffffffffff 5d 2e', /FRAME declares/],
      ['80 04 95 0500', /truncated/],
      ['80 02 8b ffffff7f 00', /outside the safe range/],
      ['80 02 8b 00000080 2e', /negative byte count/],
      ['80 02 8a 08 0000000000000080 2e', /outside the safe range/],
      ['80 02 8a 07 00000000000020 2e', /outside the safe range/],
      ['80 02 58 02000000 c328 2e', /not valid UTF-8/],
      ['80 02 58 03000000 eda0', /truncated/],
      ['80 02 58 02000000 c080 2e', /not valid UTF-8/],
      ['80 02 58 03000000 e08080 2e', /not valid UTF-8/],
      ['80 02 ff 2e', /unknown pickle opcode 0xff at offset 2/],
      ['80 02 00 2e', /unknown pickle opcode 0x00/],
      ['80 02 53 27 61 27 0a 2e', /unsupported pickle opcode STRING \(0x53\)/],
      ['80 02 43 01 61 2e', /unsupported pickle opcode SHORT_BINBYTES/],
      ['80 02 4e 32 5d 2e', /unsupported pickle opcode DUP/],
      ['80 02 5d 71 00 68 00 61 2e', /recursive/],
      ['80 02 5d 5d 71 00 61 68 00 61 2e', /shared or recursive/],
      ['80 02 5d 71 00 28 68 00 74 61 2e', /recursive/],
      ['56 61 5c 75 30 30 34 0a 2e', /truncated \\uXXXX/],
      ['56 5c 55 30 30 31 31 30 30 30 30 0a 2e', /out of range/],
      ['49 30 31 30 0a 2e', /malformed integer/],
      ['49 31 32 33', /missing end of line/],
      ['46 31 2e 35 78 0a 2e', /malformed float/],
      ['4e 70 2d 31 0a 2e', /negative memo index/],
      ['4e 70 30 31 0a 2e', /malformed integer/],
    ];
    for (const [h, re] of cases) expectPickleError(() => decodePickle(hex(h)), re);
  });

  test('odd but valid hand-made pickles', () => {
    assert.deepEqual(decodePickle(hex('56 61 5c 75 30 30 34 31 5c 5c 75 30 30 34 31 0a 2e')), 'aA\\\\u0041');
    assert.deepEqual(decodePickle(hex('56 5c 55 30 30 30 31 46 36 30 30 0a 2e')), '😀');
    assert.equal(decodePickle(hex('49 30 0a 2e')), 0);
    assert.equal(decodePickle(hex('49 30 31 0a 2e')), true);
    assert.equal(decodePickle(hex('4c 2d 31 32 4c 0a 2e')), -12);
    assert.equal(decodePickle(hex('80 02 8a 00 2e')), 0);
    assert.equal(decodePickle(hex('80 02 8a 02 ff 00 2e')), 255);
    assert.equal(decodePickle(hex('80 02 8b 01000000 ff 2e')), -1);
    assert.equal(decodePickle(hex('80 02 58 03000000 efbbbf 2e')), '\uFEFF');
    assert.equal(decodePickle(hex('80 02 58 03000000 edb280 2e')), '\uDC80');
    assert.deepEqual(decodePickle(hex('80 02 7d 58 01000000 61 4b 01 73 58 01000000 61 4b 02 73 2e')), { a: 2 });
    // Accepts a Uint8Array view that is not a Buffer.
    const view = new Uint8Array([0, 0x80, 0x02, 0x5d, 0x2e, 0]).subarray(1, 5);
    assert.deepEqual(decodePickle(view), []);
  });

  test('deep nesting is bounded', () => {
    const deep = (n: number): Buffer =>
      Buffer.concat([hex('80 02'), Buffer.alloc(n, 0x5d), Buffer.alloc(n - 1, 0x61), hex('2e')]);
    assert.ok(Array.isArray(decodePickle(deep(900))));
    expectPickleError(() => decodePickle(deep(5000)), /nested deeper/);
  });

  test('.msc/.mdl shape validation', () => {
    const bad = (v: PickleValue): Buffer => encodePickle(v);
    expectPickleError(() => decodeMsc(bad({ Path: 'a', Revision: 'b' })), /not hold a list/);
    expectPickleError(() => decodeMsc(bad(['x'])), /entry 0 is not a dict/);
    expectPickleError(() => decodeMsc(bad([[]])), /entry 0 is not a dict/);
    expectPickleError(() => decodeMsc(bad([{ Path: 'a' }])), /entry 0/);
    expectPickleError(() => decodeMsc(bad([{ Path: 'a', Revision: 1 }])), /entry 0/);
    expectPickleError(
      () =>
        decodeMsc(
          bad([
            { Path: 'a', Revision: 'b' },
            { Path: null, Revision: 'b' },
          ]),
        ),
      /entry 1/,
    );
    expectPickleError(() => decodeMsc(hex('80 02 29 2e')), /not hold a list/); // a tuple
    expectPickleError(() => decodeMsc(Buffer.alloc(0)), /truncated/);
    expectPickleError(() => decodeMdl(bad([])), /not hold a dict/);
    expectPickleError(() => decodeMdl(bad({ ID: 'x' })), /no string 'id'/);
    assert.deepEqual(decodeMdl(bad({ id: 'a/b', extra: [1] })), { id: 'a/b' });
  });

  test('every truncation of CPython output is a PickleError', { skip: skipPy }, () => {
    for (const c of fx.good.filter((g) => g.name !== 'big_dict')) {
      const full = hex(c.hex);
      const step = Math.max(1, Math.ceil(full.length / (full.length > 8192 ? 30 : 200)));
      for (let n = 0; n < full.length; n += step) expectPickleError(() => decodePickle(full.subarray(0, n)));
    }
  });

  test('random corruption never throws anything but PickleError and never hangs', () => {
    const r = rng(1234);
    const seeds = [
      encodeMsc(manyEntries.slice(0, 5)),
      encodeMdl('a/b'),
      ...fx.good.filter((g) => g.name !== 'many' && g.name !== 'big_dict').map((g) => hex(g.hex)),
    ];
    const started = Date.now();
    for (let i = 0; i < 20000; i++) {
      const src = seeds[i % seeds.length] as Buffer;
      const b = Buffer.from(src);
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      const cut = r() < 0.2 ? b.subarray(0, Math.floor(r() * b.length)) : b;
      try {
        decodePickle(cut);
      } catch (e) {
        if (!(e instanceof PickleError)) throw new Error(`non-PickleError for ${cut.toString('hex')}: ${String(e)}`);
      }
    }
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256)));
      try {
        decodePickle(b);
      } catch (e) {
        if (!(e instanceof PickleError)) throw new Error(`non-PickleError for ${b.toString('hex')}: ${String(e)}`);
      }
    }
    assert.ok(Date.now() - started < 10_000);
  });
});
