// Parsing of the repo strings users type: `org/name`, `hf:org/name@v1.0`, `modelscope:org/name`,
// `datasets/org/name`, `hf://datasets/org/name@rev` (huggingface_hub's URI form).
import { UsageError } from '../errors.js';
import type { HubName, RepoRef, RepoType } from './types.js';

/** Hub names users may type, as a `hub:` prefix or `--endpoint hub=URL`. */
export const HUB_PREFIXES: Record<string, HubName> = {
  hf: 'hf',
  huggingface: 'hf',
  modelscope: 'modelscope',
  ms: 'modelscope',
};
const TYPE_PREFIXES: Record<string, RepoType> = { models: 'model', datasets: 'dataset', spaces: 'space' };
// Hub ids: `name` or `org/name`, letters, digits, `-_.`; `--` and `..` are forbidden by the Hub.
const ID_RE = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface RepoRefDefaults {
  hub?: HubName;
  type?: RepoType;
  revision?: string;
}

export function parseRepoRef(input: string, defaults: RepoRefDefaults = {}): RepoRef {
  let s = input.trim();
  let hub: HubName | undefined;
  let type: RepoType | undefined;
  let revision: string | undefined;
  const uri = /^hf:\/\//.exec(s);
  if (uri) {
    hub = 'hf';
    s = s.slice(uri[0].length);
  } else {
    const m = /^([a-z]+):(?!\/\/)/.exec(s);
    if (m) {
      const h = HUB_PREFIXES[m[1] as string];
      if (!h) throw new UsageError(`Unknown hub prefix "${m[1]}:" in "${input}"`, { hint: 'Use hf:org/name or modelscope:org/name.' });
      hub = h;
      s = s.slice(m[0].length);
    }
  }
  const firstSeg = s.split('/')[0] ?? '';
  const t = TYPE_PREFIXES[firstSeg];
  if (t && s.split('/').length > 1) {
    type = t;
    s = s.slice(firstSeg.length + 1);
  }
  const at = s.indexOf('@');
  if (at >= 0) {
    revision = decodeURIComponent(s.slice(at + 1));
    s = s.slice(0, at);
    if (!revision) throw new UsageError(`Empty revision after "@" in "${input}"`);
  }
  if (!ID_RE.test(s) || s.includes('--') || s.includes('..')) {
    throw new UsageError(`Not a valid repo id: "${input}"`, { hint: 'Expected org/name, e.g. openai-community/gpt2.' });
  }
  if (hub && defaults.hub && hub !== defaults.hub) {
    throw new UsageError(`"${input}" names hub ${hub} but --hub says ${defaults.hub}`);
  }
  const ref: RepoRef = { hub: hub ?? defaults.hub ?? 'hf', type: type ?? defaults.type ?? 'model', id: s };
  const rev = defaults.revision ?? revision;
  if (rev !== undefined) ref.revision = rev;
  return ref;
}

export function formatRepoRef(r: RepoRef): string {
  const hub = r.hub === 'hf' ? '' : `${r.hub}:`;
  const type = r.type === 'model' ? '' : `${r.type}s/`;
  return `${hub}${type}${r.id}${r.revision ? `@${r.revision}` : ''}`;
}

export const COMMIT_RE = /^[0-9a-f]{40}$/;
export const isCommitHash = (rev: string): boolean => COMMIT_RE.test(rev);
