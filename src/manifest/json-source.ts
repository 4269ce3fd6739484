// A positioned JSON tree built from jsonc-parser's visitor, so a problem in hubcache.json /
// hubcache.lock can be reported as `file:line:column`. JSON.parse cannot do that (it gives no
// positions for valid-but-wrong values, and silently keeps the last duplicate key); jsonc-parser's
// own parseTree has no line:column and recurses without a depth limit.
import { ParseErrorCode, visit } from 'jsonc-parser';

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

/** An object or array being read: what comes next, and the key a value will belong to. */
interface Frame {
  kind: 'object' | 'array';
  node: JsonNode;
  expect: 'key' | 'colon' | 'value' | 'comma';
  afterComma: boolean;
  key?: { key: string; keyPos: SourcePos };
}

const MAX_DEPTH = 64;

/**
 * Parses strict JSON (RFC 8259; a leading BOM is allowed) with jsonc-parser's scanner and visitor
 * (comments and trailing commas refused). Duplicate keys are kept, in order. The first syntax
 * error throws, worded by what was expected where it happened.
 */
export function parseJsonSource(source: string): JsonNode {
  // A BOM is invisible in editors, so it must not shift the columns of line 1.
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  // Line starts, so any offset maps to line:column with a binary search.
  const lineStarts = [0];
  for (let k = 0; k < text.length; k++) if (text[k] === '\n') lineStarts.push(k + 1);
  const posAt = (offset: number): SourcePos => locate(lineStarts, offset);
  const describe = (at: number): string => (at >= text.length ? 'end of file' : JSON.stringify(text[at]));

  const stack: Frame[] = [];
  let root: JsonNode | undefined;
  const place = (node: JsonNode): void => {
    const top = stack.at(-1);
    if (!top) root = node;
    else if (top.node.kind === 'object' && top.key) top.node.members.push({ ...top.key, value: node });
    else if (top.node.kind === 'array') top.node.items.push(node);
    if (top) top.expect = 'comma';
  };
  const open = (node: JsonNode & { kind: 'object' | 'array' }, offset: number): void => {
    if (stack.length >= MAX_DEPTH) throw new JsonSyntaxError('nesting too deep', posAt(offset));
    place(node);
    stack.push({ kind: node.kind, node, expect: node.kind === 'object' ? 'key' : 'value', afterComma: false });
  };
  const messageAt = (code: ParseErrorCode, offset: number): string => {
    const found = describe(offset);
    switch (code) {
      case ParseErrorCode.UnexpectedEndOfString:
        return 'unterminated string';
      case ParseErrorCode.InvalidEscapeCharacter:
        return 'bad escape in string';
      case ParseErrorCode.InvalidUnicode:
        return 'bad \\u escape';
      case ParseErrorCode.InvalidCharacter:
        return 'control character in string (use \\n, \\t...)';
      case ParseErrorCode.InvalidNumberFormat:
      case ParseErrorCode.UnexpectedEndOfNumber:
        return 'bad number';
      case ParseErrorCode.InvalidCommentToken:
      case ParseErrorCode.UnexpectedEndOfComment:
        return 'comments are not allowed in JSON';
    }
    const top = stack.at(-1);
    if (!top) return root ? `unexpected ${found} after the end of the document` : `unexpected ${found}`;
    const close = top.kind === 'object' ? '}' : ']';
    if (top.afterComma && text[offset] === close) return `trailing comma before ${close}`;
    if (top.expect === 'key') return `expected a "quoted" key, found ${found}`;
    if (top.expect === 'colon') return `expected ":" after the key, found ${found}`;
    if (top.expect === 'comma') return `expected "," or "${close}", found ${found}`;
    return `unexpected ${found}`;
  };

  const close = (bracket: string, offset: number): void => {
    if (text[offset] !== bracket) {
      throw new JsonSyntaxError(messageAt(ParseErrorCode.ValueExpected, offset), posAt(offset));
    }
    stack.pop();
  };

  visit(
    text,
    {
      onObjectBegin: (offset) => open({ kind: 'object', pos: posAt(offset), members: [] }, offset),
      onArrayBegin: (offset) => open({ kind: 'array', pos: posAt(offset), items: [] }, offset),
      // Called before the missing-bracket error: report it while the frame still says what was expected.
      onObjectEnd: (offset) => close('}', offset),
      onArrayEnd: (offset) => close(']', offset),
      onObjectProperty: (key, offset) => {
        const top = stack.at(-1) as Frame;
        top.key = { key, keyPos: posAt(offset) };
        top.expect = 'colon';
        top.afterComma = false;
      },
      onSeparator: (ch) => {
        const top = stack.at(-1) as Frame;
        if (ch === ':') top.expect = 'value';
        else {
          top.expect = top.kind === 'object' ? 'key' : 'value';
          top.afterComma = true;
        }
      },
      onLiteralValue: (value: unknown, offset) => {
        const pos = posAt(offset);
        if (typeof value === 'string') place({ kind: 'string', pos, value });
        else if (typeof value === 'number') place({ kind: 'number', pos, value });
        else if (typeof value === 'boolean') place({ kind: 'boolean', pos, value });
        else place({ kind: 'null', pos });
        const top = stack.at(-1);
        if (top) top.afterComma = false;
      },
      onError: (code, offset) => {
        throw new JsonSyntaxError(messageAt(code, offset), posAt(offset));
      },
    },
    { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false },
  );
  return root as JsonNode;
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
      for (const m of node.members)
        Object.defineProperty(out, m.key, {
          value: jsonValue(m.value),
          enumerable: true,
          writable: true,
          configurable: true,
        });
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
