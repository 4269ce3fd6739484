// The mirror's state as one JSON object (for `/api/hubcache/status` and the dashboard): upstream
// health and per-repo upstream records (with lag), fills in flight, flagged large files, and
// what the store is capped at. Never holds a token. Store contents (repos, sizes, last use) come
// from `services.cache.scan()`, which walks the disk: callers decide how often to pay for it.
import type { MirrorEventBus } from './events.js';
import type { FillManager } from './fills.js';
import type { ServeOptions } from './options.js';
import type { RepoUpstreamRecord, UpstreamHealth, UpstreamPool } from './upstream.js';

/** The parts of MirrorServices the status reads (named here, so services.ts and this file do not import each other). */
export interface StatusSources {
  events: MirrorEventBus;
  upstreams: UpstreamPool;
  fills: FillManager;
  options: ServeOptions;
  statusBook: StatusBook;
}

export interface MirrorStatus {
  startedAt: string;
  offline: boolean;
  upstreams: UpstreamHealth[];
  /** `type/id` → which upstream answered, the commits each upstream gave per revision, and lag notes. */
  repos: Record<string, RepoUpstreamRecord & { lagging: string[] }>;
  fills: Array<{ key: string; bytes: number; size: number; waiters: number; startedAt: number }>;
  /** Files over 50 GB seen (huggingface_hub will not fetch them over plain HTTP). */
  largeFiles: Array<{ repo: string; path: string; size: number }>;
  store: { root: string; maxSizeBytes?: number };
}

/** Keeps what the status needs beyond the services' own state (subscribes to the events). */
export class StatusBook {
  readonly startedAt = new Date();
  readonly largeFiles: Array<{ repo: string; path: string; size: number }> = [];

  constructor(s: Pick<StatusSources, 'events'>) {
    s.events.on('large-file', (e) => {
      if (this.largeFiles.length < 1000) this.largeFiles.push(e);
    });
  }
}

export function mirrorStatus(s: StatusSources): MirrorStatus {
  const up = s.upstreams.status();
  return {
    startedAt: s.statusBook.startedAt.toISOString(),
    offline: s.options.offline,
    upstreams: up.upstreams,
    repos: up.repos,
    fills: s.fills.active(),
    largeFiles: [...s.statusBook.largeFiles],
    store: {
      root: s.options.cacheDir,
      ...(s.options.maxSizeBytes !== undefined ? { maxSizeBytes: s.options.maxSizeBytes } : {}),
    },
  };
}
