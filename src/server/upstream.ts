// The HF upstreams, in fallback order: one metadata exchange goes to the first that answers
// (a network error, a timeout, a 5xx or a 429 moves on to the next), and every answer is recorded per
// upstream and per repo, so the status API can show which upstream served what, and when a
// fallback lags the primary (answers an older commit for the same branch).
import { httpRequest, readText } from '../hubs/http.js';
import type { MirrorEventBus } from './events.js';

/** An upstream HTTP answer, body read (metadata only: JSON and error bodies, bounded). */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Every upstream failed (or was skipped): the mirror answers 502, or 504 after a timeout. */
export class UpstreamDownError extends Error {
  constructor(
    message: string,
    readonly timeout: boolean,
  ) {
    super(message);
  }
}

export interface UpstreamRequest {
  method: 'GET' | 'HEAD' | 'POST';
  /** Path and query, starting with `/`. */
  path: string;
  /** Authorization to send (`Bearer ...`), or none. */
  authorization?: string | undefined;
  headers?: Record<string, string>;
  body?: string;
  /** `type/id` of the repo concerned, for the per-repo record. */
  repoKey?: string;
  /** Label for events: `revision`, `tree`, `resolve`... */
  op: string;
}

export interface UpstreamHealth {
  url: string;
  ok: number;
  errors: number;
  lastError?: string;
  lastErrorAt?: number;
  lastOkAt?: number;
  lastLatencyMs?: number;
}

/** What one upstream last said a revision of a repo resolves to. */
export interface RevisionRecord {
  commit: string;
  at: number;
}

export interface RepoUpstreamRecord {
  /** upstream URL → revision → commit it answered. */
  revisions: Record<string, Record<string, RevisionRecord>>;
  /** The upstream that answered this repo's last request. */
  lastUpstream?: string;
  lastAt?: number;
}

const MAX_ERROR_BODY = 256 * 1024;
const MAX_JSON_BODY = 64 * 1024 * 1024;

export class UpstreamPool {
  readonly urls: string[];
  private readonly health = new Map<string, UpstreamHealth>();
  private readonly repos = new Map<string, RepoUpstreamRecord>();

  constructor(
    urls: string[],
    private readonly events: MirrorEventBus,
    private readonly timeoutMs: number,
  ) {
    this.urls = urls.map((u) => u.replace(/\/+$/, ''));
    for (const url of this.urls) this.health.set(url, { url, ok: 0, errors: 0 });
  }

  get primary(): string {
    return this.urls[0] as string;
  }

  /** The first usable answer, in fallback order; throws UpstreamDownError when none answers. */
  async request(r: UpstreamRequest): Promise<Answer & { upstream: string }> {
    let timeout = false;
    const failures: string[] = [];
    for (const upstream of this.urls) {
      const started = Date.now();
      try {
        const res = await httpRequest(`${upstream}${r.path}`, {
          method: r.method,
          headers: { ...(r.authorization ? { authorization: r.authorization } : {}), ...r.headers },
          ...(r.body !== undefined ? { body: r.body } : {}),
          timeoutMs: this.timeoutMs,
        });
        const limit = res.status >= 400 ? MAX_ERROR_BODY : MAX_JSON_BODY;
        const body = r.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await readText(res, limit), 'utf8');
        if (r.method === 'HEAD') await res.body.dump();
        const ms = Date.now() - started;
        this.events.emit('upstream', { upstream, op: r.op, status: res.status, ms });
        // 5xx and 429 (rate limited) mean "not now": the next upstream, else stale-if-error.
        if (res.status >= 500 || res.status === 429) {
          this.noteError(upstream, `HTTP ${res.status}`);
          failures.push(`${upstream}: HTTP ${res.status}`);
          continue;
        }
        this.noteOk(upstream, ms, r.repoKey);
        return { status: res.status, headers: res.headers, body, upstream };
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (/timeout|timed out|ETIMEDOUT/i.test(msg)) timeout = true;
        this.events.emit('upstream', { upstream, op: r.op, ms: Date.now() - started, error: msg });
        this.noteError(upstream, msg);
        failures.push(msg); // network error, timeout, or a malformed answer: try the next one
      }
    }
    throw new UpstreamDownError(`No upstream answered (${failures.join('; ')})`, timeout);
  }

  /** Records that `upstream` resolved `revision` of a repo to `commit`. */
  recordRevision(repoKey: string, upstream: string, revision: string, commit: string): void {
    const rec = this.repoRecord(repoKey);
    (rec.revisions[upstream] ??= {})[revision] = { commit, at: Date.now() };
  }

  private repoRecord(repoKey: string): RepoUpstreamRecord {
    let rec = this.repos.get(repoKey);
    if (!rec) {
      rec = { revisions: {} };
      this.repos.set(repoKey, rec);
      if (this.repos.size > 10_000) this.repos.delete(this.repos.keys().next().value as string);
    }
    return rec;
  }

  private noteOk(upstream: string, ms: number, repoKey: string | undefined): void {
    const h = this.health.get(upstream);
    if (h) {
      h.ok++;
      h.lastOkAt = Date.now();
      h.lastLatencyMs = ms;
    }
    if (repoKey) {
      const rec = this.repoRecord(repoKey);
      rec.lastUpstream = upstream;
      rec.lastAt = Date.now();
    }
  }

  private noteError(upstream: string, msg: string): void {
    const h = this.health.get(upstream);
    if (!h) return;
    h.errors++;
    h.lastError = msg;
    h.lastErrorAt = Date.now();
  }

  /**
   * JSON for /api/hubcache/status: health per upstream, and per repo which upstream answered and
   * the revisions where a fallback's commit differs from the primary's (`lagging`).
   */
  status(): { upstreams: UpstreamHealth[]; repos: Record<string, RepoUpstreamRecord & { lagging: string[] }> } {
    const repos: Record<string, RepoUpstreamRecord & { lagging: string[] }> = {};
    for (const [key, rec] of this.repos) {
      const primary = rec.revisions[this.primary] ?? {};
      const lagging: string[] = [];
      for (const [up, revs] of Object.entries(rec.revisions)) {
        if (up === this.primary) continue;
        for (const [rev, r] of Object.entries(revs)) {
          const p = primary[rev];
          if (p && p.commit !== r.commit && p.at >= r.at - 24 * 3600_000)
            lagging.push(`${up} ${rev}: ${r.commit.slice(0, 8)} vs primary ${p.commit.slice(0, 8)}`);
        }
      }
      repos[key] = { ...rec, lagging };
    }
    return { upstreams: [...this.health.values()].map((h) => ({ ...h })), repos };
  }
}
