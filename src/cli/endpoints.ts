// `--endpoint`, repeatable. `--endpoint URL` is for the hub of the repos the command works on;
// `--endpoint hf=URL` / `--endpoint modelscope=URL` (or `ms=URL`) names the hub, as HF_ENDPOINT
// and MODELSCOPE_ENDPOINT / MODELSCOPE_DOMAIN do (config.ts; a ModelScope value may be a bare
// domain, as MODELSCOPE_DOMAIN is). `status` and `outdated` compare every endpoint given for a
// hub; the other commands talk to one per hub and refuse several rather than pick one.
import { parseEndpoint } from './validate.js';
import { UsageError } from '../errors.js';
import { HUB_PREFIXES } from '../hubs/repo-ref.js';
import type { HubName } from '../hubs/types.js';

export type EndpointLists = Record<HubName, string[]>;

const NAME_HINT = 'Name the hub: --endpoint hf=URL or --endpoint modelscope=URL.';

interface Given {
  /** The hub named by `hub=`; undefined = the hub of the repos in play. */
  hub?: HubName;
  value: string;
  /** As typed, for messages. */
  raw: string;
}

export class EndpointFlags {
  private readonly given: Given[] = [];

  /** `hub`: the hub the command is known to work on (`--hub`, or the hub of its one repo). */
  constructor(
    values: readonly string[] = [],
    private readonly hub?: HubName,
  ) {
    for (const raw of values) {
      const m = /^([a-z]+)=(.*)$/i.exec(raw);
      if (!m) {
        this.given.push({ value: raw, raw });
        continue;
      }
      const key = (m[1] as string).toLowerCase();
      const named = Object.hasOwn(HUB_PREFIXES, key) ? HUB_PREFIXES[key] : undefined;
      if (!named) throw new UsageError(`--endpoint ${raw}: unknown hub "${m[1]}"`, { hint: NAME_HINT });
      // Checked now: a named endpoint does not wait to learn which hub it is for.
      this.given.push({ hub: named, value: endpointUrl(named, m[2] as string, raw), raw });
    }
  }

  get count(): number {
    return this.given.length;
  }

  /**
   * The endpoints per hub, in command-line order, for a command working on repos of `hubs`. A
   * bare URL goes to the known hub, else to the one hub of `hubs` (HF when there is none); when
   * `hubs` holds both, it is ambiguous.
   */
  forHubs(hubs: Iterable<HubName> = []): EndpointLists {
    const out: EndpointLists = { hf: [], modelscope: [] };
    for (const g of this.given) {
      const hub = g.hub ?? this.hub ?? onlyHub(hubs, g.raw);
      out[hub].push(g.hub ? g.value : endpointUrl(hub, g.value, g.raw));
    }
    return out;
  }

  /** For commands that use one endpoint per hub: as forHubs, refusing two for the same hub. */
  single(hubs: Iterable<HubName> = []): Partial<Record<HubName, string>> {
    const lists = this.forHubs(hubs);
    const out: Partial<Record<HubName, string>> = {};
    for (const hub of ['hf', 'modelscope'] as const) {
      const list = lists[hub];
      if (list.length > 1) {
        throw new UsageError(`${list.length} endpoints given for ${hub}: ${list.join(', ')}; this command uses one`, {
          hint: 'Only `status` and `outdated` compare several endpoints; pass one --endpoint per hub here.',
        });
      }
      if (list[0] !== undefined) out[hub] = list[0];
    }
    return out;
  }
}

function onlyHub(hubs: Iterable<HubName>, raw: string): HubName {
  const set = new Set(hubs);
  if (set.size > 1) {
    throw new UsageError(`--endpoint ${raw} is ambiguous: the repos are on both hubs`, { hint: NAME_HINT });
  }
  return set.values().next().value ?? 'hf';
}

/** A hub base URL from a flag value (one validator for every flag: cli/validate.ts). */
export function endpointUrl(hub: HubName, value: string, raw = value): string {
  return parseEndpoint(value, {
    flag: raw === value ? '--endpoint' : `--endpoint ${raw.slice(0, raw.length - value.length)}`,
    bareHost: hub === 'modelscope',
  });
}
