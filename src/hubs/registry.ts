// The hubs hubcache knows, by name and by prefix. Built-in: hf (the default hub of a repo given
// without a prefix) and modelscope; registerHub adds another one (a mirror, a test hub).
import { UsageError } from '../errors.js';
import type { HubAdapter } from './adapter.js';
import { hfAdapter } from './hf/adapter.js';
import { modelscopeAdapter } from './modelscope/adapter.js';
import type { HfClient } from './hf.js';
import type { ModelScopeClient } from './modelscope.js';
import type { HubName } from './types.js';

export type { HubAdapter, HubClient, HubClientOptions } from './adapter.js';

/** The client class of each built-in hub (for their hub-only calls, e.g. HF's repoInfo). */
export interface HubClients {
  hf: HfClient;
  modelscope: ModelScopeClient;
}

/** Another endpoint of a hub than the configured one; only `primary`'s origin gets the token (accessAt). */
export interface EndpointAt {
  endpoint: string;
  primary?: string | undefined;
}

/** A Cache's clients: `client(hub)` for the configured endpoint, `client(hub, at)` for another one. */
export type ClientFor = <H extends HubName>(hub: H, at?: EndpointAt) => HubClients[H];

/** The hub of a repo given without a prefix (and the one shown without one). */
export const DEFAULT_HUB: HubName = 'hf';

const adapters = new Map<string, HubAdapter>();
const byPrefix = new Map<string, HubAdapter>();

/** Adds a hub; returns a function that removes it again. A name or prefix already taken is refused. */
export function registerHub(adapter: HubAdapter): () => void {
  const taken = [adapter.name, ...adapter.prefixes].find((p) => byPrefix.has(p) || adapters.has(p));
  if (taken !== undefined) throw new UsageError(`Hub prefix "${taken}" is already registered`);
  adapters.set(adapter.name, adapter);
  for (const p of new Set([adapter.name, ...adapter.prefixes])) byPrefix.set(p, adapter);
  return () => {
    if (adapters.get(adapter.name) !== adapter) return;
    adapters.delete(adapter.name);
    for (const [p, a] of byPrefix) if (a === adapter) byPrefix.delete(p);
  };
}

registerHub(hfAdapter);
registerHub(modelscopeAdapter);

/** The adapter of `name`; a name no adapter has is a usage error. */
export function hubAdapter(name: string): HubAdapter {
  const a = adapters.get(name);
  if (!a) throw new UsageError(`Unknown hub "${name}"`, { hint: `Known hubs: ${hubNames().join(', ')}.` });
  return a;
}

/** The hub a typed prefix (`hf`, `huggingface`, `ms`...) names, if any. */
export function hubForPrefix(prefix: string): HubName | undefined {
  return byPrefix.get(prefix)?.name as HubName | undefined;
}

/** Every registered hub's name, built-in ones first. */
export function hubNames(): HubName[] {
  return [...adapters.keys()] as HubName[];
}
