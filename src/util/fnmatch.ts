// Python `fnmatch.fnmatchcase` semantics, which huggingface_hub and modelscope use for
// allow/ignore patterns. Generic glob libraries differ in ways that matter here: `*` must match
// `/` too (so `*.json` matches `a/b/c.json`), there is no brace expansion and no escaping.

/**
 * Compiled patterns, least recently used first (a Map keeps insertion order). Patterns come from
 * users and manifests, so a long-running process (a server) must not keep every one it ever saw.
 */
const cache = new Map<string, RegExp>();
export const FNMATCH_CACHE_MAX = 512;

/** How many compiled patterns are kept (for tests). */
export function fnmatchCacheSize(): number {
  return cache.size;
}

/** Translate one fnmatch pattern to an anchored RegExp, like Python's fnmatch.translate. */
export function fnmatchToRegExp(pattern: string): RegExp {
  const hit = cache.get(pattern);
  if (hit) {
    cache.delete(pattern); // move to the most recently used end
    cache.set(pattern, hit);
    return hit;
  }
  let out = '';
  for (let i = 0; i < pattern.length;) {
    const c = pattern[i++] as string;
    if (c === '*') {
      while (pattern[i] === '*') i++; // `**` is just `*`
      out += '.*';
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      let j = i;
      if (pattern[j] === '!') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j++;
      if (j >= pattern.length) {
        out += '\\['; // unclosed class: a literal `[`
      } else {
        let body = pattern.slice(i, j).replace(/\\/g, '\\\\');
        i = j + 1;
        if (body.startsWith('!')) body = '^' + body.slice(1);
        else if (body.startsWith('^')) body = '\\' + body;
        out += `[${body}]`;
      }
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
    }
  }
  const re = new RegExp(`^${out}$`, 's');
  cache.set(pattern, re);
  if (cache.size > FNMATCH_CACHE_MAX) cache.delete(cache.keys().next().value as string);
  return re;
}

export function fnmatch(name: string, pattern: string): boolean {
  return fnmatchToRegExp(pattern).test(name);
}

/** huggingface_hub's pattern normalisation: `\` → `/`, and a trailing `/` means "everything under". */
export function normalizePattern(pattern: string): string {
  const p = pattern.replace(/\\/g, '/');
  return p.endsWith('/') ? p + '*' : p;
}

export interface PathFilter {
  include?: readonly string[];
  exclude?: readonly string[];
}

/** Kept iff (no include or matches one) and matches no exclude — `filter_repo_objects` in huggingface_hub. */
export function matchesFilter(path: string, filter: PathFilter): boolean {
  const p = path.replace(/\\/g, '/');
  const inc = filter.include?.filter((x) => x.length > 0) ?? [];
  const exc = filter.exclude?.filter((x) => x.length > 0) ?? [];
  if (inc.length > 0 && !inc.some((pat) => fnmatch(p, normalizePattern(pat)))) return false;
  return !exc.some((pat) => fnmatch(p, normalizePattern(pat)));
}
