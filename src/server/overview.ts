// What the operator sees (status JSON and dashboard), in one object: mirrorStatus() (upstream
// health and lag, fills, large files) plus the ModelScope upstream, blob hit ratio and bytes by
// source (from the request/fill events), the store's repos (a cache scan, reused for a few
// seconds, or until a fill or a prefetch changed it: it walks the disk), and prefetch jobs. Never holds a token.
import { mirrorStatus, type MirrorStatus } from './status.js';
import { jobsOf, type PrefetchJob } from './prefetch.js';
import type { MirrorServices } from './services.js';
import type { UpstreamHealth } from './upstream.js';

/** Route labels whose responses carry file bodies (a hit or a miss of the store). */
export const BLOB_ROUTES: ReadonlySet<string> = new Set(['hf.resolve', 'ms.download']);

/** Counts kept from the events since start. */
export class Traffic {
  hits = 0;
  misses = 0;
  bytesFromStore = 0;
  bytesFromFills = 0;
  bytesFetchedUpstream = 0;

  constructor(s: Pick<MirrorServices, 'events'>) {
    s.events.on('request', (e) => {
      if (e.source === 'store') this.bytesFromStore += e.bytes;
      else if (e.source === 'fill') this.bytesFromFills += e.bytes;
      if (!BLOB_ROUTES.has(e.route) || e.method !== 'GET' || e.status >= 400) return;
      if (e.source === 'store') this.hits++;
      else if (e.source === 'fill') this.misses++;
    });
    s.events.on('fill-end', (e) => {
      if (e.ok) this.bytesFetchedUpstream += e.bytes;
    });
  }

  /** Share of blob GETs answered from the store; null before the first one. */
  get hitRatio(): number | null {
    const n = this.hits + this.misses;
    return n === 0 ? null : this.hits / n;
  }
}

export interface StoreRepo {
  key: string;
  hub: string;
  type: string;
  id: string;
  size: number;
  files: number;
  lastUsedMs: number;
  revisions: string[];
}

export interface StoreView {
  root: string;
  usedBytes: number;
  maxSizeBytes?: number;
  repos: StoreRepo[];
  scannedAtMs: number;
}

export interface Overview extends Omit<MirrorStatus, 'store'> {
  modelscopeUpstreams: UpstreamHealth[];
  traffic: {
    hits: number;
    misses: number;
    hitRatio: number | null;
    bytesFromStore: number;
    bytesFromFills: number;
    bytesFetchedUpstream: number;
  };
  store: StoreView;
  prefetch: PrefetchJob[];
}

const SCAN_MAX_AGE_MS = 5000;

interface PerMirror {
  traffic: Traffic;
  scan?: { at: number; view: Promise<StoreView> };
}
const state = new WeakMap<MirrorServices, PerMirror>();

function stateOf(s: MirrorServices): PerMirror {
  let st = state.get(s);
  if (!st) {
    const fresh: PerMirror = { traffic: new Traffic(s) };
    // A fill changed the store: the next view scans again.
    s.events.on('fill-end', (e) => {
      if (e.ok) fresh.scan = undefined;
    });
    state.set(s, fresh);
    st = fresh;
  }
  return st;
}

/** Starts counting for this mirror (call at registration, before traffic arrives). */
export function trafficOf(s: MirrorServices): Traffic {
  return stateOf(s).traffic;
}

/** The store's repos from `cache.scan()`, at most SCAN_MAX_AGE_MS old (one scan in flight). */
export function storeView(s: MirrorServices): Promise<StoreView> {
  const st = stateOf(s);
  const scannedAt = st.scan?.at ?? 0;
  const prefetched = jobsOf(s)
    .list()
    .some((j) => (j.endedAt ?? 0) >= scannedAt);
  if (st.scan && Date.now() - scannedAt < SCAN_MAX_AGE_MS && !prefetched) return st.scan.view;
  const view = s.cache.scan().then((scan) => {
    const repos = scan.repos
      .map((r) => ({
        key: r.key,
        hub: r.hub,
        type: r.type,
        id: r.id,
        size: r.size,
        files: r.fileCount,
        lastUsedMs: r.lastAccessedMs,
        revisions: Object.keys(r.refs).length ? Object.keys(r.refs) : r.revisions.map((v) => v.commit.slice(0, 12)),
      }))
      .sort((a, b) => b.lastUsedMs - a.lastUsedMs);
    const out: StoreView = { root: s.options.cacheDir, usedBytes: scan.size, repos, scannedAtMs: scan.scannedAtMs };
    if (s.options.maxSizeBytes !== undefined) out.maxSizeBytes = s.options.maxSizeBytes;
    return out;
  });
  st.scan = { at: Date.now(), view };
  view.catch(() => {
    if (st.scan?.view === view) st.scan = undefined;
  });
  return view;
}

export async function overview(s: MirrorServices): Promise<Overview> {
  const t = trafficOf(s);
  const { store: _store, ...status } = mirrorStatus(s);
  return {
    ...status,
    modelscopeUpstreams: s.msUpstreams.status().upstreams,
    traffic: {
      hits: t.hits,
      misses: t.misses,
      hitRatio: t.hitRatio,
      bytesFromStore: t.bytesFromStore,
      bytesFromFills: t.bytesFromFills,
      bytesFetchedUpstream: t.bytesFetchedUpstream,
    },
    store: await storeView(s),
    prefetch: jobsOf(s).list(),
  };
}
