// Parsing of the repo strings users type: `org/name`, `hf:org/name@v1.0`, `modelscope:org/name`,
// `datasets/org/name`, `dataset/org/name` (hf cache's ids), `hf://datasets/org/name@rev/path` (huggingface_hub's URIs).
import { UsageError } from '../errors.js';
import { DEFAULT_HUB, hubForPrefix } from './registry.js';
import type { HubName, RepoRef, RepoType } from './types.js';

const TYPE_PREFIXES: Record<string, RepoType> = { models: 'model', datasets: 'dataset', spaces: 'space' };
const SINGULAR_TYPES: Record<string, RepoType> = { model: 'model', dataset: 'dataset', space: 'space' };
// Hub ids: `name` or `org/name`, letters, digits, `-_.`; `--` and `..` are forbidden by the Hub.
const ID_RE = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface RepoRefDefaults {
  hub?: HubName;
  type?: RepoType;
  revision?: string;
}

/** A repo string that may also name a path inside the repo (`hf://org/name@rev/sub/file.json`). */
export interface RepoTarget {
  repo: RepoRef;
  /** The path after the revision in an hf:// URI ('' when none). */
  pathInRepo: string;
}

export function parseRepoRef(input: string, defaults: RepoRefDefaults = {}): RepoRef {
  const t = parseRepoTarget(input, defaults);
  if (t.pathInRepo) throw new UsageError(`"${input}" names a file (${t.pathInRepo}); give the repo only here`);
  return t.repo;
}

// huggingface_hub's special refs keep their slashes in an hf:// URI (`@refs/pr/3/file`).
const SPECIAL_REF_RE = /^refs\/(?:convert\/[\w.-]+|pr\/\d+)/;

/**
 * `hf://[models/|datasets/|spaces/]org/name[@rev][/path]` as huggingface_hub's parse_hf_uri reads it:
 * the `@` belongs to the revision only right after org/name, a revision ends at the next `/`
 * (except refs/pr/N and refs/convert/X) and is percent-decoded, and the rest is a path in the repo.
 */
function splitHfUri(
  input: string,
  body: string,
): { type?: RepoType; id: string; revision?: string; pathInRepo: string } {
  let loc = body;
  let type: RepoType | undefined;
  const first = loc.split('/')[0] ?? '';
  if (TYPE_PREFIXES[first] && loc.includes('/')) {
    type = TYPE_PREFIXES[first];
    loc = loc.slice(first.length + 1);
  } else if (SINGULAR_TYPES[first]) {
    throw new UsageError(`Type prefix must be plural in "${input}": did you mean ${first}s/?`);
  }
  // A trailing `/` is kept on the path: for `download` it means a whole folder.
  const folder = /[^/]\/+$/.test(loc) ? '/' : '';
  loc = loc.replace(/^\/+|\/+$/g, '');
  const at = loc.indexOf('@');
  if (at < 0 || (loc.slice(0, at).match(/\//g)?.length ?? 0) > 1) {
    const parts = loc.split('/');
    const sub = parts.slice(2).join('/');
    return { ...(type ? { type } : {}), id: parts.slice(0, 2).join('/'), pathInRepo: sub ? `${sub}${folder}` : '' };
  }
  const id = loc.slice(0, at);
  const rest = loc.slice(at + 1);
  const special = SPECIAL_REF_RE.exec(rest)?.[0];
  const rawRev = special ?? (rest.includes('/') ? rest.slice(0, rest.indexOf('/')) : rest);
  const sub = rest.slice(rawRev.length).replace(/^\//, '');
  const pathInRepo = sub ? `${sub}${folder}` : '';
  if (!rawRev) throw new UsageError(`Empty revision after "@" in "${input}"`);
  return { ...(type ? { type } : {}), id, revision: decodeURIComponent(rawRev), pathInRepo };
}

export function parseRepoTarget(input: string, defaults: RepoRefDefaults = {}): RepoTarget {
  let s = input.trim();
  let hub: HubName | undefined;
  let type: RepoType | undefined;
  let revision: string | undefined;
  let pathInRepo = '';
  const uri = /^hf:\/\//.exec(s);
  if (uri) {
    hub = 'hf';
    const u = splitHfUri(input, s.slice(uri[0].length));
    ({ type, revision, pathInRepo } = u);
    s = u.id;
  } else {
    const m = /^([a-z]+):(?!\/\/)/.exec(s);
    if (m) {
      const h = hubForPrefix(m[1] as string);
      if (!h)
        throw new UsageError(`Unknown hub prefix "${m[1]}:" in "${input}"`, {
          hint: 'Use hf:org/name or modelscope:org/name.',
        });
      hub = h;
      s = s.slice(m[0].length);
    }
    const segs = s.split('/');
    const firstSeg = segs[0] ?? '';
    // `datasets/org/name`, and hf cache's typed ids `dataset/org/name` (singular, so only with org/name after it).
    const t = TYPE_PREFIXES[firstSeg] ?? (segs.length === 3 ? SINGULAR_TYPES[firstSeg] : undefined);
    if (t && segs.length > 1) {
      type = t;
      s = s.slice(firstSeg.length + 1);
    }
    const at = s.indexOf('@');
    if (at >= 0) {
      revision = decodeURIComponent(s.slice(at + 1));
      s = s.slice(0, at);
      if (!revision) throw new UsageError(`Empty revision after "@" in "${input}"`);
    }
  }
  if (!ID_RE.test(s) || s.includes('--') || s.includes('..')) {
    throw new UsageError(`Not a valid repo id: "${input}"`, { hint: 'Expected org/name, e.g. openai-community/gpt2.' });
  }
  if (hub && defaults.hub && hub !== defaults.hub) {
    throw new UsageError(`"${input}" names hub ${hub} but --hub says ${defaults.hub}`);
  }
  const ref: RepoRef = { hub: hub ?? defaults.hub ?? DEFAULT_HUB, type: type ?? defaults.type ?? 'model', id: s };
  const rev = defaults.revision ?? revision;
  if (rev !== undefined) ref.revision = rev;
  return { repo: ref, pathInRepo };
}

export function formatRepoRef(r: RepoRef): string {
  const hub = r.hub === DEFAULT_HUB ? '' : `${r.hub}:`;
  const type = r.type === 'model' ? '' : `${r.type}s/`;
  return `${hub}${type}${r.id}${r.revision ? `@${r.revision}` : ''}`;
}

// Defined next to the hub vocabulary (the hub clients need them without the registry).
export { COMMIT_RE, isCommitHash } from './types.js';
