// Where hubcache keeps its own state inside a cache root. A module of its own, with no imports
// of weight, so `Cache.download` can check for a gc policy without loading all of cache care.
import path from 'node:path';

/**
 * Under `.locks/`, the one root folder huggingface_hub's cache scan skips, so `hf cache ls` shows
 * no warning for it (docs/protocols.md §HF cache root): the gc policy and unpack staging live here.
 */
export const HUBCACHE_DIR = path.join('.locks', 'hubcache');

/** `<cache>/.locks/hubcache/policy.json`. */
export function policyPath(root: string): string {
  return path.join(root, HUBCACHE_DIR, 'policy.json');
}
