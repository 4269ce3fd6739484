// A small JSON parser that remembers where every value and key starts, so a problem in
// hubcache.json / hubcache.lock can be reported as `file:line:column`. JSON.parse cannot do that
// (it gives no positions for valid-but-wrong values, and silently keeps the last duplicate key).

/** 1-based line and column (in UTF-16 code units, like editors count), plus the 0-based offset. */
export interface SourcePos {
  offset: number;
  line: number;
  column: number;
}

export interface JsonMember {
  key: string;
  keyPos: SourcePos;
  value: JsonNode;
}

export type JsonNode =
  | { kind: 'object'; pos: SourcePos; members: JsonMember[] }
  | { kind: 'array'; pos: SourcePos; items: JsonNode[] }
  | { kind: 'string'; pos: SourcePos; value: string }
  | { kind: 'number'; pos: SourcePos; value: number }
  | { kind: 'boolean'; pos: SourcePos; value: boolean }
  | { kind: 'null'; pos: SourcePos };

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly pos: SourcePos,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** Parses strict JSON (RFC 8259; a leading BOM is allowed). Duplicate keys are kept, in order. */
export function parseJsonSource(source: string): JsonNode {
  // A BOM is invisible in editors, so it must not shift the columns of line 1.
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  let i = 0;
  // Line starts, so any offset maps to line:column with a binary search.
  const lineStarts = [0];
  for (let k = 0; k < text.length; k++) if (text[k] === '\n') lineStarts.push(k + 1);
  const posAt = (offset: number): SourcePos => locate(lineStarts, offset);
  const fail = (message: string, at = i): never => {
    throw new JsonSyntaxError(message, posAt(at));
  };
  const describe = (at: number): string => (at >= text.length ? 'end of file' : JSON.stringify(text[at]));

  const skipWs = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const expect = (ch: string, what: string): void => {
    skipWs();
    if (text[i] !== ch) fail(`expected ${what}, found ${describe(i)}`);
    i++;
  };

  const parseString = (): string => {
    const start = i;
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text[i] as string;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') {
        const e = text[i + 1] ?? '';
        if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
          out += String.fromCharCode(Number.parseInt(hex, 16));
          i += 6;
        } else if (ESCAPES[e] !== undefined) {
          out += ESCAPES[e];
          i += 2;
        } else fail(`bad escape \\${e}`);
        continue;
      }
      if (c.charCodeAt(0) < 0x20) fail('control character in string (use \\n, \\t...)');
      out += c;
      i++;
    }
  };

  const parseValue = (depth: number): JsonNode => {
    if (depth > 64) fail('nesting too deep');
    skipWs();
    const pos = posAt(i);
    const c = text[i];
    if (c === '{') {
      i++;
      const members: JsonMember[] = [];
      skipWs();
      if (text[i] === '}') {
        i++;
        return { kind: 'object', pos, members };
      }
      for (;;) {
        skipWs();
        if (text[i] !== '"') fail(text[i] === '}' ? 'trailing comma before }' : `expected a "quoted" key, found ${describe(i)}`);
        const keyPos = posAt(i);
        const key = parseString();
        expect(':', '":" after the key');
        members.push({ key, keyPos, value: parseValue(depth + 1) });
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { kind: 'object', pos, members };
        }
        fail(`expected "," or "}", found ${describe(i)}`);
      }
    }
    if (c === '[') {
      i++;
      const items: JsonNode[] = [];
      skipWs();
      if (text[i] === ']') {
        i++;
        return { kind: 'array', pos, items };
      }
      for (;;) {
        skipWs();
        if (text[i] === ']') fail('trailing comma before ]');
        items.push(parseValue(depth + 1));
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { kind: 'array', pos, items };
        }
        fail(`expected "," or "]", found ${describe(i)}`);
      }
    }
    if (c === '"') return { kind: 'string', pos, value: parseString() };
    const num = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
    if (num) {
      i += num[0].length;
      return { kind: 'number', pos, value: Number(num[0]) };
    }
    for (const [word, node] of [
      ['true', { kind: 'boolean', pos, value: true }],
      ['false', { kind: 'boolean', pos, value: false }],
      ['null', { kind: 'null', pos }],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return node;
      }
    }
    return fail(`unexpected ${describe(i)}`);
  };

  const root = parseValue(0);
  skipWs();
  if (i < text.length) fail(`unexpected ${describe(i)} after the end of the document`);
  return root;
}

function locate(lineStarts: readonly number[], offset: number): SourcePos {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((lineStarts[mid] as number) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { offset, line: lo + 1, column: offset - (lineStarts[lo] as number) + 1 };
}

/** The plain JS value of a node (duplicate keys: the last wins, as with JSON.parse). */
export function jsonValue(node: JsonNode): unknown {
  switch (node.kind) {
    case 'object': {
      const out: Record<string, unknown> = {};
      // defineProperty, so a key named "__proto__" is data, not a prototype change.
      for (const m of node.members) Object.defineProperty(out, m.key, { value: jsonValue(m.value), enumerable: true, writable: true, configurable: true });
      return out;
    }
    case 'array':
      return node.items.map(jsonValue);
    case 'null':
      return null;
    default:
      return node.value;
  }
}
