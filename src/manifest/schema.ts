// The two project files and their hand-written validators:
//   hubcache.json  what the project wants   { "models": { "<alias>": { "repo": "org/name", ... } } }
//   hubcache.lock  what that resolved to    { "lockfileVersion": 1, "models": { "<alias>": { ..., "commit", "files" } } }
// Validation works on the positioned JSON tree (json-source.ts), so every problem is reported
// as `file:line:column: message`, all problems at once, in document order.
import { ManifestError } from '../errors.js';
import { hubAdapter, hubNames } from '../hubs/registry.js';
import { parseRepoRef, isCommitHash } from '../hubs/repo-ref.js';
import type { HubName, RepoType } from '../hubs/types.js';
import { JsonSyntaxError, parseJsonSource, type JsonMember, type JsonNode, type SourcePos } from './json-source.js';

/** One entry of hubcache.json, as written there (only `repo` is required). */
export interface ManifestModel {
  /** `org/name` (no hub prefix, no `@revision`: those have their own fields). */
  repo: string;
  /** Default `hf`. */
  hub?: HubName;
  /** Default `model`. */
  type?: RepoType;
  /** Branch, tag or (HF only) commit. Default `main` on HF, `master` on ModelScope. */
  revision?: string;
  /** fnmatch globs, as `hf download --include` (`*` also matches `/`). Default: every file. */
  include?: string[];
  exclude?: string[];
  /** Plain files in this folder (relative to hubcache.json) instead of the shared cache. */
  localDir?: string;
}

export interface ManifestFileShape {
  models: Record<string, ManifestModel>;
}

/** One file pinned by the lock. HF: `gitOid` always, `sha256` for LFS files. ModelScope: `sha256` and `fileRevision`. */
export interface LockedFile {
  size: number;
  sha256?: string;
  gitOid?: string;
  /** ModelScope's per-file `Revision` (what `.msc` records). */
  fileRevision?: string;
}

/** The manifest entry with its defaults filled in; recorded in the lock so drift can be detected. */
export interface EntrySpec {
  hub: HubName;
  repo: string;
  type: RepoType;
  revision: string;
  include?: string[];
  exclude?: string[];
  localDir?: string;
}

export interface LockedModel extends EntrySpec {
  /** HF: the 40-hex commit. ModelScope: the resolved branch/tag name (its downloads are addressed by name). */
  commit: string;
  /** Only the files selected by include/exclude, keyed by repo path. */
  files: Record<string, LockedFile>;
}

export interface LockfileShape {
  lockfileVersion: 1;
  models: Record<string, LockedModel>;
}

export const LOCKFILE_VERSION = 1;

/** Aliases are used as CLI arguments and in paths of progress lines: keep them plain. */
export const ALIAS_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const MODEL_KEYS = ['repo', 'hub', 'type', 'revision', 'include', 'exclude', 'localDir'] as const;
const LOCKED_MODEL_KEYS = [
  'hub',
  'repo',
  'type',
  'revision',
  'include',
  'exclude',
  'localDir',
  'commit',
  'files',
] as const;
const LOCKED_FILE_KEYS = ['size', 'sha256', 'gitOid', 'fileRevision'] as const;
const TYPES: readonly RepoType[] = ['model', 'dataset', 'space'];

export function defaultRevision(hub: HubName): string {
  return hubAdapter(hub).defaultRevision;
}

/** Fills in defaults; the shape the lock records and `--frozen` compares. */
export function entrySpec(m: ManifestModel): EntrySpec {
  const hub = m.hub ?? 'hf';
  const spec: EntrySpec = { hub, repo: m.repo, type: m.type ?? 'model', revision: m.revision ?? defaultRevision(hub) };
  if (m.include && m.include.length > 0) spec.include = [...m.include];
  if (m.exclude && m.exclude.length > 0) spec.exclude = [...m.exclude];
  if (m.localDir !== undefined) spec.localDir = m.localDir;
  return spec;
}

export function sameSpec(a: EntrySpec, b: EntrySpec): boolean {
  const list = (x: string[] | undefined): string => JSON.stringify(x ?? []);
  return (
    a.hub === b.hub &&
    a.repo === b.repo &&
    a.type === b.type &&
    a.revision === b.revision &&
    list(a.include) === list(b.include) &&
    list(a.exclude) === list(b.exclude) &&
    (a.localDir ?? '') === (b.localDir ?? '')
  );
}

// ---------------------------------------------------------------------------------------------
// Errors with positions

export interface ManifestIssue {
  file: string;
  line: number;
  column: number;
  /** Where in the document, e.g. `models.gpt2.revision`. */
  keyPath: string;
  message: string;
}

/** hubcache.json / hubcache.lock is not valid JSON or breaks the schema. Lists every problem found. */
export class InvalidManifestError extends ManifestError {
  readonly issues: ManifestIssue[];
  constructor(issues: ManifestIssue[], hint?: string) {
    const shown = issues.slice(0, 20).map((i) => `${i.file}:${i.line}:${i.column}: ${i.message}`);
    if (issues.length > shown.length) shown.push(`... and ${issues.length - shown.length} more`);
    super(shown.join('\n'), hint ? { hint } : undefined);
    this.issues = issues;
  }
  get file(): string {
    return this.issues[0]?.file ?? '';
  }
  get line(): number {
    return this.issues[0]?.line ?? 0;
  }
  get column(): number {
    return this.issues[0]?.column ?? 0;
  }
}

/** Collects issues while walking a positioned tree. */
class Checker {
  readonly issues: ManifestIssue[] = [];
  constructor(readonly file: string) {}

  report(pos: SourcePos, keyPath: string, message: string): void {
    this.issues.push({ file: this.file, line: pos.line, column: pos.column, keyPath, message });
  }

  /** An object's members, reporting unknown and duplicate keys; undefined if not an object. */
  object(
    node: JsonNode,
    keyPath: string,
    what: string,
    allowed?: readonly string[],
  ): Map<string, JsonMember> | undefined {
    if (node.kind !== 'object') {
      this.report(node.pos, keyPath, `${what} must be an object, not ${kindName(node)}`);
      return undefined;
    }
    const out = new Map<string, JsonMember>();
    for (const m of node.members) {
      const first = out.get(m.key);
      if (first) {
        this.report(
          m.keyPos,
          join(keyPath, m.key),
          `duplicate key "${m.key}" (first at line ${first.keyPos.line}:${first.keyPos.column})`,
        );
        continue;
      }
      if (allowed && !allowed.includes(m.key)) {
        const near = closest(m.key, allowed);
        this.report(
          m.keyPos,
          join(keyPath, m.key),
          `unknown key "${m.key}" in ${what}${near ? ` (did you mean "${near}"?)` : ''}; allowed: ${allowed.join(', ')}`,
        );
        continue;
      }
      out.set(m.key, m);
    }
    return out;
  }

  string(node: JsonNode, keyPath: string, check?: (s: string) => string | undefined): string | undefined {
    if (node.kind !== 'string') {
      this.report(node.pos, keyPath, `${lastKey(keyPath)} must be a string, not ${kindName(node)}`);
      return undefined;
    }
    const problem = check?.(node.value);
    if (problem) {
      this.report(node.pos, keyPath, problem);
      return undefined;
    }
    return node.value;
  }

  oneOf<T extends string>(node: JsonNode, keyPath: string, values: readonly T[]): T | undefined {
    const s = this.string(node, keyPath);
    if (s === undefined) return undefined;
    if (!(values as readonly string[]).includes(s)) {
      this.report(
        node.pos,
        keyPath,
        `${lastKey(keyPath)} must be one of ${values.map((v) => `"${v}"`).join(', ')}, not "${s}"`,
      );
      return undefined;
    }
    return s as T;
  }

  stringList(node: JsonNode, keyPath: string, check: (s: string) => string | undefined): string[] | undefined {
    if (node.kind !== 'array') {
      this.report(
        node.pos,
        keyPath,
        `${lastKey(keyPath)} must be an array of strings, e.g. ["*.json"], not ${kindName(node)}`,
      );
      return undefined;
    }
    const out: string[] = [];
    let ok = true;
    node.items.forEach((item, idx) => {
      const s = this.string(item, `${keyPath}[${idx}]`, check);
      if (s === undefined) ok = false;
      else if (out.includes(s)) this.report(item.pos, `${keyPath}[${idx}]`, `"${s}" is listed twice`);
      else out.push(s);
    });
    return ok ? out : undefined;
  }

  integer(node: JsonNode, keyPath: string): number | undefined {
    if (node.kind !== 'number' || !Number.isSafeInteger(node.value) || node.value < 0) {
      this.report(node.pos, keyPath, `${lastKey(keyPath)} must be a non-negative integer`);
      return undefined;
    }
    return node.value;
  }

  /** A required key: reports it at the object's opening brace when missing. */
  required(members: Map<string, JsonMember>, key: string, objPos: SourcePos, keyPath: string): JsonNode | undefined {
    const m = members.get(key);
    if (!m) this.report(objPos, keyPath, `missing required key "${key}"`);
    return m?.value;
  }
}

function kindName(n: JsonNode): string {
  return n.kind === 'null'
    ? 'null'
    : n.kind === 'array'
      ? 'an array'
      : n.kind === 'object'
        ? 'an object'
        : `a ${n.kind}`;
}
const join = (keyPath: string, key: string): string => (keyPath ? `${keyPath}.${key}` : key);
const lastKey = (keyPath: string): string => keyPath.slice(keyPath.lastIndexOf('.') + 1).replace(/\[\d+\]$/, ' items');

/** The allowed key nearest to a typo (edit distance ≤ 2), for "did you mean". */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

// ---------------------------------------------------------------------------------------------
// Field rules, shared by the manifest and the lock

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function repoIdProblem(repo: string): string | undefined {
  let ref;
  try {
    ref = parseRepoRef(repo);
  } catch {
    return `"${repo}" is not a valid repo id (expected org/name, e.g. openai-community/gpt2)`;
  }
  if (ref.id !== repo) {
    return `repo must be a plain id like "org/name"; put the hub, type and revision in the "hub", "type" and "revision" keys (got "${repo}")`;
  }
  return undefined;
}

export function revisionProblem(rev: string): string | undefined {
  if (rev === '') return 'revision must not be empty';
  if (rev.length > 256) return 'revision is too long';
  if (
    CONTROL.test(rev) ||
    rev.includes('\\') ||
    rev.startsWith('/') ||
    rev.endsWith('/') ||
    rev.split('/').some((s) => s === '' || s === '.' || s === '..')
  ) {
    return `"${rev}" is not a valid branch, tag or commit name`;
  }
  return undefined;
}

export function patternProblem(p: string): string | undefined {
  if (p === '') return 'empty pattern (it would match nothing useful); remove it';
  if (p.length > 1024) return 'pattern is too long';
  if (CONTROL.test(p)) return `pattern ${JSON.stringify(p)} contains a control character`;
  const norm = p.replace(/\\/g, '/');
  if (norm.startsWith('/'))
    return `pattern "${p}" starts with "/", but repo paths are relative (write "${norm.replace(/^\/+/, '')}")`;
  if (norm.split('/').includes('..')) return `pattern "${p}" contains a ".." segment, which no repo path has`;
  return undefined;
}

function localDirProblem(d: string): string | undefined {
  if (d.trim() === '') return 'localDir must not be empty';
  if (CONTROL.test(d)) return 'localDir contains a control character';
  return undefined;
}

function repoPathProblem(p: string): string | undefined {
  if (
    p === '' ||
    CONTROL.test(p) ||
    p.includes('\\') ||
    p.startsWith('/') ||
    /^[A-Za-z]:/.test(p) ||
    p.split('/').some((s) => s === '' || s === '.' || s === '..')
  ) {
    return `unsafe file path ${JSON.stringify(p)}`;
  }
  return undefined;
}

const hex =
  (n: number) =>
  (s: string): string | undefined =>
    new RegExp(`^[0-9a-f]{${n}}$`).test(s) ? undefined : `expected ${n} lowercase hex digits, got "${s}"`;

/** Validates one entry's spec fields (common to the manifest and the lock). */
function checkSpecFields(
  c: Checker,
  members: Map<string, JsonMember>,
  objPos: SourcePos,
  keyPath: string,
): Partial<EntrySpec> {
  const out: Partial<EntrySpec> = {};
  const repoNode = c.required(members, 'repo', objPos, keyPath);
  if (repoNode) {
    const repo = c.string(repoNode, `${keyPath}.repo`, repoIdProblem);
    if (repo !== undefined) out.repo = repo;
  }
  const hubM = members.get('hub');
  if (hubM) {
    const hub = c.oneOf(hubM.value, `${keyPath}.hub`, hubNames());
    if (hub) out.hub = hub;
  }
  const typeM = members.get('type');
  if (typeM) {
    const type = c.oneOf(typeM.value, `${keyPath}.type`, TYPES);
    if (type) out.type = type;
  }
  const revM = members.get('revision');
  if (revM) {
    const rev = c.string(revM.value, `${keyPath}.revision`, revisionProblem);
    if (rev !== undefined) {
      if ((out.hub ?? 'hf') === 'modelscope' && isCommitHash(rev)) {
        c.report(
          revM.value.pos,
          `${keyPath}.revision`,
          'ModelScope revisions are branch or tag names; commit hashes cannot be downloaded from ModelScope',
        );
      } else out.revision = rev;
    }
  }
  if (out.hub === 'modelscope' && out.type !== undefined && out.type !== 'model' && typeM) {
    c.report(typeM.value.pos, `${keyPath}.type`, `ModelScope ${out.type}s are not supported yet; only models`);
  }
  for (const key of ['include', 'exclude'] as const) {
    const m = members.get(key);
    if (!m) continue;
    const list = c.stringList(m.value, `${keyPath}.${key}`, patternProblem);
    if (list) out[key] = list;
  }
  const ldM = members.get('localDir');
  if (ldM) {
    const ld = c.string(ldM.value, `${keyPath}.localDir`, localDirProblem);
    if (ld !== undefined) out.localDir = ld;
  }
  return out;
}

function fail(c: Checker, hint: string): never {
  throw new InvalidManifestError(c.issues, hint);
}

function parseOrThrow(text: string, file: string, hint: string): JsonNode {
  try {
    return parseJsonSource(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) {
      throw new InvalidManifestError(
        [
          {
            file,
            line: err.pos.line,
            column: err.pos.column,
            keyPath: '',
            message: `JSON syntax error: ${err.message}`,
          },
        ],
        hint,
      );
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// hubcache.json

export interface ParsedManifest {
  models: Record<string, ManifestModel>;
  /** Where each alias's entry starts, for errors found later (e.g. include matching nothing). */
  positions: Record<string, { entry: SourcePos; include?: SourcePos; exclude?: SourcePos; revision?: SourcePos }>;
}

const MANIFEST_HINT = 'Fix hubcache.json (see `hubcache add --help` for the format) and run the command again.';

/**
 * Parses and validates hubcache.json. `resolveLocalDir` maps a localDir to an absolute path, so
 * two entries writing into the same folder are caught here.
 */
export function parseManifestText(
  text: string,
  file: string,
  resolveLocalDir: (d: string) => string = (d) => d,
): ParsedManifest {
  const root = parseOrThrow(text, file, MANIFEST_HINT);
  const c = new Checker(file);
  const out: ParsedManifest = {
    models: Object.create(null) as Record<string, ManifestModel>,
    positions: Object.create(null) as ParsedManifest['positions'],
  };
  const top = c.object(root, '', 'the manifest', ['models']);
  const modelsM = top?.get('models');
  if (modelsM) {
    const seenDirs = new Map<string, string>();
    if (modelsM.value.kind === 'object') {
      // Duplicate aliases get their own message (the generic one says "key").
      const firstAt = new Map<string, SourcePos>();
      for (const m of modelsM.value.members) {
        const keyPath = `models.${m.key}`;
        const prev = firstAt.get(m.key);
        if (prev) {
          c.report(m.keyPos, keyPath, `duplicate alias "${m.key}" (first defined at line ${prev.line}:${prev.column})`);
          continue;
        }
        firstAt.set(m.key, m.keyPos);
        if (!ALIAS_RE.test(m.key)) {
          c.report(
            m.keyPos,
            keyPath,
            `alias "${m.key}" must start with a letter or digit and contain only letters, digits, ".", "_" and "-"`,
          );
          continue;
        }
        const fields = c.object(m.value, keyPath, `models.${m.key}`, MODEL_KEYS);
        if (!fields) continue;
        const spec = checkSpecFields(c, fields, m.value.pos, keyPath);
        if (spec.repo === undefined) continue;
        const model: ManifestModel = { repo: spec.repo };
        for (const k of ['hub', 'type', 'revision', 'include', 'exclude', 'localDir'] as const) {
          if (spec[k] !== undefined) (model as unknown as Record<string, unknown>)[k] = spec[k];
        }
        if (model.localDir !== undefined) {
          const abs = resolveLocalDir(model.localDir);
          const other = seenDirs.get(abs);
          if (other)
            c.report(
              (fields.get('localDir') as JsonMember).value.pos,
              `${keyPath}.localDir`,
              `localDir "${model.localDir}" is also used by "${other}"; each entry needs its own folder`,
            );
          else seenDirs.set(abs, m.key);
        }
        out.models[m.key] = model;
        out.positions[m.key] = {
          entry: m.keyPos,
          ...(fields.get('include') ? { include: (fields.get('include') as JsonMember).keyPos } : {}),
          ...(fields.get('exclude') ? { exclude: (fields.get('exclude') as JsonMember).keyPos } : {}),
          ...(fields.get('revision') ? { revision: (fields.get('revision') as JsonMember).keyPos } : {}),
        };
      }
    } else c.object(modelsM.value, 'models', '"models"');
  }
  if (c.issues.length > 0) fail(c, MANIFEST_HINT);
  return out;
}

// ---------------------------------------------------------------------------------------------
// hubcache.lock

const LOCK_HINT = 'hubcache.lock is generated: fix the conflict or delete it, then run `hubcache lock`.';

export function parseLockfileText(text: string, file: string): LockfileShape {
  const root = parseOrThrow(text, file, LOCK_HINT);
  const c = new Checker(file);
  const out: LockfileShape = {
    lockfileVersion: LOCKFILE_VERSION,
    models: Object.create(null) as Record<string, LockedModel>,
  };
  const top = c.object(root, '', 'the lockfile', ['lockfileVersion', 'models']);
  if (top) {
    const v = c.required(top, 'lockfileVersion', root.pos, '');
    if (v && !(v.kind === 'number' && v.value === LOCKFILE_VERSION)) {
      c.report(
        v.pos,
        'lockfileVersion',
        `lockfileVersion ${v.kind === 'number' ? v.value : '?'} is not supported by this hubcache (it reads version ${LOCKFILE_VERSION}); upgrade hubcache or re-run \`hubcache lock\``,
      );
      fail(c, LOCK_HINT);
    }
    const modelsNode = c.required(top, 'models', root.pos, '');
    const models = modelsNode && c.object(modelsNode, 'models', '"models"');
    for (const [alias, m] of models ?? []) {
      const keyPath = `models.${alias}`;
      if (!ALIAS_RE.test(alias)) {
        c.report(m.keyPos, keyPath, `bad alias "${alias}"`);
        continue;
      }
      const fields = c.object(m.value, keyPath, keyPath, LOCKED_MODEL_KEYS);
      if (!fields) continue;
      const spec = checkSpecFields(c, fields, m.value.pos, keyPath);
      for (const k of ['hub', 'type', 'revision'] as const) c.required(fields, k, m.value.pos, keyPath);
      const hub = spec.hub ?? 'hf';
      const commitNode = c.required(fields, 'commit', m.value.pos, keyPath);
      const commit = commitNode && c.string(commitNode, `${keyPath}.commit`, hub === 'hf' ? hex(40) : revisionProblem);
      const filesNode = c.required(fields, 'files', m.value.pos, keyPath);
      const files = filesNode ? checkLockedFiles(c, filesNode, `${keyPath}.files`, hub) : undefined;
      if (spec.repo && spec.hub && spec.type && spec.revision && commit !== undefined && files) {
        out.models[alias] = { ...(spec as EntrySpec), commit, files };
      }
    }
  }
  if (c.issues.length > 0) fail(c, LOCK_HINT);
  return out;
}

function checkLockedFiles(
  c: Checker,
  node: JsonNode,
  keyPath: string,
  hub: HubName,
): Record<string, LockedFile> | undefined {
  const members = c.object(node, keyPath, 'files');
  if (!members) return undefined;
  const out = Object.create(null) as Record<string, LockedFile>;
  for (const [p, m] of members) {
    const fp = `${keyPath}[${JSON.stringify(p)}]`;
    const bad = repoPathProblem(p);
    if (bad) {
      c.report(m.keyPos, fp, bad);
      continue;
    }
    const f = c.object(m.value, fp, `file ${p}`, LOCKED_FILE_KEYS);
    if (!f) continue;
    const sizeNode = c.required(f, 'size', m.value.pos, fp);
    const size = sizeNode && c.integer(sizeNode, `${fp}.size`);
    const entry: LockedFile = { size: size ?? 0 };
    const sha = f.get('sha256');
    if (sha) {
      const v = c.string(sha.value, `${fp}.sha256`, hex(64));
      if (v) entry.sha256 = v;
    }
    const oid = f.get('gitOid');
    if (oid) {
      const v = c.string(oid.value, `${fp}.gitOid`, hex(40));
      if (v) entry.gitOid = v;
    }
    const rev = f.get('fileRevision');
    if (rev) {
      const v = c.string(rev.value, `${fp}.fileRevision`, revisionProblem);
      if (v) entry.fileRevision = v;
    }
    if (hub === 'hf' && !sha && !oid) c.report(m.value.pos, fp, `file ${p} has neither "sha256" nor "gitOid"`);
    out[p] = entry;
  }
  return out;
}
