// Cluster mode on the status page, the dashboard and /metrics. Each replica writes a small heartbeat
// object (`replicas/<id>.json`, s3-layout.ts) every few seconds: its address, start time, fills in
// progress and byte counters; leases show only busy replicas, heartbeats show idle ones too. The view
// lists them (at most every VIEW_MAX_AGE_MS) and sums what the cluster saved: blob bytes the replicas
// served to clients minus the blob bytes they fetched from upstream.
import type { ClusterCounters, ClusterServices } from '../cluster/services.js';
import { sharedMetadataOf, type SharedMetaCounters } from '../cluster/metadata.js';
import { REPLICAS_PREFIX, replicaKey } from '../stores/s3-layout.js';
import { trafficOf, type Overview } from './overview.js';
import type { MirrorServices, RouteModule } from './services.js';

export const HEARTBEAT_MS = 5000;
/** A replica not seen for this many heartbeats is shown as lost (its heartbeat object stays: it may come back). */
const LOST_AFTER_BEATS = 3;
const VIEW_MAX_AGE_MS = 2000;

/** What one replica's heartbeat object holds. */
export interface ReplicaBeat {
  id: string;
  address: string;
  startedAt: string;
  lastSeen: string;
  fills: Array<{ key: string; bytes: number; size: number; waiters: number }>;
  /** Blob bytes sent to clients (from the local cache, the bucket, peers or a running fill). */
  servedBytes: number;
  /** Blob bytes fetched from upstream by this replica's fills. */
  upstreamBytes: number;
  counters: ClusterCounters;
  metadata: SharedMetaCounters;
}

export interface ClusterStatus {
  replicaId: string;
  store: string;
  replicas: Array<ReplicaBeat & { alive: boolean }>;
  /** Σ servedBytes − Σ upstreamBytes over the replicas seen (≥ 0). */
  upstreamBytesSaved: number;
  /** Set when the bucket could not be listed (the replicas are then the last ones seen). */
  storeError?: string;
}

class ClusterView {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();
  private last: { at: number; view: Promise<ClusterStatus> } | undefined;
  private known: Array<ReplicaBeat & { alive: boolean }> = [];

  constructor(
    private readonly s: MirrorServices,
    private readonly cluster: ClusterServices,
    /** The listen address, until ClusterServices knows its advertised one. */
    private readonly listenUrl: () => string,
  ) {}

  beat(): ReplicaBeat {
    const s = this.s;
    const t = trafficOf(s);
    return {
      id: this.cluster.replicaId,
      address: this.cluster.address || this.listenUrl(),
      startedAt: this.startedAt,
      lastSeen: new Date().toISOString(),
      fills: s.fills.active().map(({ key, bytes, size, waiters }) => ({ key, bytes, size, waiters })),
      servedBytes: t.bytesFromStore + t.bytesFromFills,
      upstreamBytes: t.bytesFetchedUpstream,
      counters: { ...this.cluster.counters },
      metadata: { ...sharedMetadataOf(this.cluster.s3, s.log).counters },
    };
  }

  /** Writes this replica's heartbeat now (errors logged: the store may be down for a while). */
  async writeBeat(): Promise<void> {
    try {
      await this.cluster.s3.putJson(replicaKey(this.cluster.replicaId), this.beat());
    } catch (err) {
      this.s.log.warn({ err }, 'cluster heartbeat: could not write to the store');
    }
  }

  start(): void {
    void this.writeBeat();
    this.timer ??= setInterval(() => void this.writeBeat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  status(): Promise<ClusterStatus> {
    if (this.last && Date.now() - this.last.at < VIEW_MAX_AGE_MS) return this.last.view;
    const view = this.read();
    this.last = { at: Date.now(), view };
    return view;
  }

  private async read(): Promise<ClusterStatus> {
    const c = this.cluster;
    const out: ClusterStatus = { replicaId: c.replicaId, store: c.s3.where, replicas: [], upstreamBytesSaved: 0 };
    try {
      const beats: ReplicaBeat[] = [];
      for await (const o of c.s3.objects.list(REPLICAS_PREFIX)) {
        if (!o.key.endsWith('.json')) continue;
        const r = await c.s3.getJson<ReplicaBeat>(o.key);
        if (r && typeof r.value.id === 'string' && typeof r.value.lastSeen === 'string') beats.push(r.value);
      }
      const self = this.beat(); // this replica as it is now, not as of its last heartbeat
      const now = Date.now();
      this.known = [self, ...beats.filter((b) => b.id !== self.id)].map((b) => ({
        ...b,
        alive: now - Date.parse(b.lastSeen) < LOST_AFTER_BEATS * HEARTBEAT_MS,
      }));
    } catch (err) {
      out.storeError = (err as Error).message;
    }
    out.replicas = this.known;
    const served = this.known.reduce((n, r) => n + (r.servedBytes || 0), 0);
    const fetched = this.known.reduce((n, r) => n + (r.upstreamBytes || 0), 0);
    out.upstreamBytesSaved = Math.max(0, served - fetched);
    return out;
  }
}

const views = new WeakMap<MirrorServices, ClusterView>();

/** The cluster part of the status (undefined outside cluster mode). */
export function clusterStatus(s: MirrorServices): Promise<ClusterStatus> | undefined {
  return views.get(s)?.status();
}

/** The overview with the cluster, in cluster mode (status JSON and dashboard show the same). */
export async function withCluster(s: MirrorServices, o: Overview): Promise<Overview & { cluster?: ClusterStatus }> {
  const c = clusterStatus(s);
  return c ? { ...o, cluster: await c } : o;
}

/** Cluster mode: heartbeats from listen to close. */
export const clusterRoutes: RouteModule = (app, s) => {
  const cluster = s.cluster;
  if (!cluster) return;
  const view = new ClusterView(s, cluster, () => {
    const a = app.server.address();
    return typeof a === 'object' && a ? `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : '';
  });
  views.set(s, view);
  app.addHook('onListen', async () => view.start());
  app.addHook('onClose', async () => view.stop());
};
