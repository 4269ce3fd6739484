// Xet is hidden from clients for now (docs/protocols.md §Mirror Xet): clients that see `xetHash` in a tree
// listing skip the HTTP path and ask for a Xet token the mirror does not serve, bypassing its
// cache. So listings lose `xetHash`, and resolve answers never carry Xet headers or links.

/** JSON with every `xetHash` property removed, at any depth. */
export function stripXetJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripXetJson);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (k !== 'xetHash') out[k] = stripXetJson(v);
    return out;
  }
  return value;
}

/** Upstream headers a resolve answer must never pass on. */
export const XET_HEADERS = new Set([
  'x-xet-hash',
  'x-xet-refresh-route',
  'x-xet-cas-url',
  'x-xet-access-token',
  'x-xet-token-expiration',
]);

/** A Link header without its Xet relations (`xet-auth`, `xet-reconstruction-info`); undefined if nothing is left. */
export function stripXetLinks(link: string | undefined): string | undefined {
  if (!link) return undefined;
  const kept = link.split(/,(?=\s*<)/).filter((part) => !/\brel\s*=\s*"?xet-/i.test(part));
  return kept.length ? kept.map((p) => p.trim()).join(', ') : undefined;
}
