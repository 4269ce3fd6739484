// GET /: the operator's dashboard, server-rendered from the overview (overview.ts; the same data
// as /api/hubcache/status) and refreshed every 5 s: store use vs cap, hit ratio, upstream health
// and lag, live fills and prefetch jobs with progress, files over 50 GB, and the cached repos.
// Everything shown is escaped; no token is ever part of the overview.
import { formatBytes } from '../util/format.js';
import { withCluster, type ClusterStatus } from './cluster-view.js';
import { overview, trafficOf, type Overview } from './overview.js';
import { MAX_HTTP_DOWNLOAD_SIZE } from './options.js';
import type { RouteModule } from './services.js';
import type { UpstreamHealth } from './upstream.js';

export const dashboardRoutes: RouteModule = (app, s) => {
  trafficOf(s);
  app.get('/', async (req, reply) => {
    req.hubcache.route = 'dashboard';
    const html = renderDashboard(await withCluster(s, await overview(s)));
    req.hubcache.bytes += Buffer.byteLength(html);
    return reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  });
};

function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function ago(ms: number | undefined, now: number): string {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function bar(done: number, total: number): string {
  const pct = total > 0 ? Math.min(100, (done / total) * 100) : 100;
  return `<div class="bar" role="progressbar" aria-valuenow="${pct.toFixed(0)}"><span style="width:${pct.toFixed(1)}%"></span></div> ${pct.toFixed(0)} %`;
}

function upstreamRows(list: UpstreamHealth[], face: string, now: number): string {
  return list
    .map((u) => {
      const healthy = u.lastErrorAt === undefined || (u.lastOkAt ?? 0) > u.lastErrorAt;
      return `<tr><td>${esc(face)}</td><td>${esc(u.url)}</td><td class="${healthy ? 'ok' : 'bad'}">${healthy ? 'up' : 'failing'}</td>
<td>${u.ok}</td><td>${u.errors}</td><td>${u.lastLatencyMs === undefined ? '—' : `${u.lastLatencyMs} ms`}</td>
<td>${esc(u.lastError ?? '')}${u.lastErrorAt ? ` (${ago(u.lastErrorAt, now)})` : ''}</td></tr>`;
    })
    .join('\n');
}

/** Cluster mode: the replicas seen (heartbeats), their fills, and the upstream bytes saved. */
function clusterSection(c: ClusterStatus | undefined, now: number): string {
  if (!c) return '';
  const rows = c.replicas.map(
    (r) =>
      `<tr><td>${esc(r.id)}${r.id === c.replicaId ? ' (this one)' : ''}</td><td>${esc(r.address)}</td><td class="${r.alive ? 'ok' : 'bad'}">${r.alive ? 'up' : 'lost'}</td><td>${ago(Date.parse(r.lastSeen), now)}</td><td>${r.fills.length}</td><td>${esc(r.fills.map((f) => `${f.key} ${formatBytes(f.bytes)}/${formatBytes(f.size)}`).join(', '))}</td><td>${formatBytes(r.servedBytes)}</td><td>${formatBytes(r.upstreamBytes)}</td><td>${r.metadata.hits}</td></tr>`,
  );
  return `<h2>Cluster (${c.replicas.filter((r) => r.alive).length} replicas up) on ${esc(c.store)}</h2>
${c.storeError ? `<p class="bad">Store unreadable: ${esc(c.storeError)} (replicas as last seen)</p>` : ''}
<p id="saved">Upstream bytes saved: <b>${formatBytes(c.upstreamBytesSaved)}</b> (served by the replicas minus fetched from upstream)</p>
<table id="cluster"><tr><th>replica</th><th>address</th><th>state</th><th>last seen</th><th>fills</th><th>filling now</th><th>served</th><th>from upstream</th><th>metadata from the bucket</th></tr>${rows.join('')}</table>`;
}

export function renderDashboard(o: Overview & { cluster?: ClusterStatus }, now = Date.now()): string {
  const t = o.traffic;
  const store = o.store;
  const cap = store.maxSizeBytes;
  const lagging = Object.entries(o.repos).flatMap(([repo, r]) =>
    r.lagging.map((l) => `<li><b>${esc(repo)}</b>: ${esc(l)}</li>`),
  );
  const large = o.largeFiles.map((f) => `<li><b>${esc(f.repo)}</b> ${esc(f.path)} (${formatBytes(f.size)})</li>`);
  const fills = o.fills.map(
    (f) =>
      `<tr><td>${esc(f.key)}</td><td>${bar(f.bytes, f.size)}</td><td>${formatBytes(f.bytes)} / ${formatBytes(f.size)}</td><td>${f.waiters}</td><td>${ago(f.startedAt, now)}</td></tr>`,
  );
  const jobs = o.prefetch.map(
    (
      j,
    ) => `<tr><td>${esc(j.id)}</td><td>${esc(j.repo)}@${esc(j.revision)}</td><td class="${j.state === 'failed' ? 'bad' : j.state === 'done' ? 'ok' : ''}">${esc(j.state)}</td>
<td>${bar(j.doneBytes, j.totalBytes)}</td><td>${j.filesDone} / ${j.files}</td><td>${esc(j.error ?? '')}</td></tr>`,
  );
  const repos = store.repos.map((r) => {
    const big = o.largeFiles.some((f) => f.repo.endsWith(`/${r.id}`) && f.size > MAX_HTTP_DOWNLOAD_SIZE);
    return `<tr><td class="repo">${esc(r.key)}</td><td>${esc(r.hub)}</td><td>${esc(r.revisions.join(', '))}</td><td>${r.files}</td><td>${formatBytes(r.size)}</td><td>${ago(r.lastUsedMs, now)}</td><td>${big ? '<span class="bad">file &gt; 50 GB</span>' : ''}</td></tr>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>hubcache mirror</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}
.bar{display:inline-block;width:10em;height:.8em;background:#eee;vertical-align:middle}.bar span{display:block;height:100%;background:#3a7}
.ok{color:#1a7f37}.bad{color:#c62828;font-weight:600}.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:12em}.card b{font-size:1.3em;display:block}
</style></head><body>
<h1>hubcache mirror</h1>
<p>Up since ${esc(o.startedAt)}${o.offline ? ' — <span class="bad">offline: serving the store only</span>' : ''}. JSON: <a href="/api/hubcache/status">/api/hubcache/status</a>, metrics: <a href="/metrics">/metrics</a>.</p>
<div class="cards">
<div class="card" id="store">Store<b>${formatBytes(store.usedBytes)}${cap !== undefined ? ` of ${formatBytes(cap)}` : ''}</b>${cap !== undefined ? bar(store.usedBytes, cap) : 'no --max-size cap'}</div>
<div class="card" id="hits">Hit ratio<b>${t.hitRatio === null ? '—' : `${(t.hitRatio * 100).toFixed(1)} %`}</b>${t.hits} hits, ${t.misses} misses</div>
<div class="card">Served<b>${formatBytes(t.bytesFromStore + t.bytesFromFills)}</b>${formatBytes(t.bytesFromStore)} from the store, ${formatBytes(t.bytesFetchedUpstream)} fetched upstream</div>
<div class="card">Fills now<b>${o.fills.length}</b>${o.fills.reduce((n, f) => n + f.waiters, 0)} waiting callers</div>
</div>
${clusterSection(o.cluster, now)}
<h2>Upstreams</h2>
<table><tr><th>face</th><th>upstream</th><th>health</th><th>ok</th><th>errors</th><th>last latency</th><th>last error</th></tr>
${upstreamRows(o.upstreams, 'HF', now)}
${upstreamRows(o.modelscopeUpstreams, 'ModelScope', now)}
</table>
${lagging.length ? `<h2 class="bad">Fallback upstreams lagging the primary</h2><ul>${lagging.join('')}</ul>` : '<p class="ok">No fallback upstream lags the primary.</p>'}
<h2>Live fills</h2>
${fills.length ? `<table><tr><th>blob</th><th>progress</th><th>bytes</th><th>waiters</th><th>started</th></tr>${fills.join('')}</table>` : '<p>None.</p>'}
<h2>Prefetch jobs</h2>
${jobs.length ? `<table><tr><th>job</th><th>repo</th><th>state</th><th>progress</th><th>files</th><th>error</th></tr>${jobs.join('')}</table>` : '<p>None.</p>'}
${large.length ? `<h2 class="bad">Files over 50 GB (huggingface_hub will not download them over plain HTTP)</h2><ul>${large.join('')}</ul>` : ''}
<h2>Cached repos (${store.repos.length})</h2>
${repos.length ? `<table id="repos"><tr><th>repo</th><th>hub</th><th>revisions</th><th>files</th><th>size</th><th>last used</th><th></th></tr>${repos.join('')}</table>` : '<p>The store is empty.</p>'}
<p><small>Store ${esc(store.root)}, scanned ${ago(store.scannedAtMs, now)}.</small></p>
</body></html>
`;
}
