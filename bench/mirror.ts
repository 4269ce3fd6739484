// `npm run bench:mirror`: `hubcache serve` side by side with nginx (sendfile on) serving the same
// warm files from disk, and a cold download through the mirror vs a direct one, against the test
// hub on loopback. Needs nginx (Debian nginx-light), wrk and curl.
//   npm run bench:mirror [-- --runs 3 --quick --cold-only]
// Scenarios (targets from the issue):
//   warm 5 MiB, wrk -c8 -d5s: mirror req/s ≥ 0.7× nginx
//   warm 1 GiB, curl: mirror time ≤ 1.5× nginx
//   cold 1 GiB, hubcache download through the mirror ≤ 1.2× hubcache download from the hub directly
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const num = (n: string, d: number): number => (argv.includes(n) ? Number(argv[argv.indexOf(n) + 1]) : d);
const RUNS = num('--runs', 3);
const BIG_MIB = argv.includes('--quick') ? 256 : 1024;
const COLD_ONLY = argv.includes('--cold-only');
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
for (const need of ['wrk', 'curl']) {
  if (!have(need)) {
    console.error(`missing ${need}: apt-get install -y --no-install-recommends nginx-light wrk curl`);
    process.exit(2);
  }
}
if (!NGINX) {
  console.error('missing nginx: apt-get install -y --no-install-recommends nginx-light');
  process.exit(2);
}
// The mirror runs from dist/ (what users run): build it so it is this tree's code.
execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hubcache-bench-mirror-'));
const children: ChildProcess[] = [];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (c) => reject(new Error(`${what} exited with ${c}`)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function startHub(): Promise<string> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/hub-server.ts'), '--sizes', String(BIG_MIB), '--five'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  return (JSON.parse(await firstLine(child, 'test hub')) as { hfEndpoint: string }).hfEndpoint;
}

async function startMirror(hub: string, cacheDir: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin/hubcache.js'),
      'serve',
      '--port',
      '0',
      '--cache-dir',
      cacheDir,
      '--upstream',
      hub,
      '--log-level',
      'warn',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  const line = await firstLine(child, 'hubcache serve');
  return line.replace(/^listening on /, '');
}

/** nginx on loopback with its own config: one worker (the mirror is one Node process), sendfile on. */
async function startNginx(root: string): Promise<string> {
  const dir = path.join(scratch, 'nginx');
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const port = await freePort();
  // As root, nginx's workers would switch to `nobody`, who cannot read the private temp dirs.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const conf = `${user}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  default_type application/octet-stream;
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn(NGINX as string, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  for (let i = 0; i < 100; i++) {
    if (await ping(port)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return `http://127.0.0.1:${port}`;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.end();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Seconds for one `curl` GET to /dev/null (curl's own timer). */
function curlTime(url: string): number {
  const r = spawnSync('curl', ['-sSf', '-o', '/dev/null', '-w', '%{time_total}', url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl ${url} failed: ${r.stderr}`);
  return Number(r.stdout);
}

function wrk(url: string): number {
  const r = spawnSync('wrk', ['-t2', '-c8', '-d5s', url], { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout ?? '');
  if (r.status !== 0 || !m) throw new Error(`wrk ${url} failed: ${r.stdout}${r.stderr}`);
  if (/Non-2xx/.test(r.stdout)) throw new Error(`wrk ${url}: non-2xx answers\n${r.stdout}`);
  return Number(m[1]);
}

function hubcacheDownload(endpoint: string, repo: string): number {
  const cache = path.join(scratch, `client-${Date.now()}`);
  spawnSync('sync');
  const t = process.hrtime.bigint();
  const r = spawnSync(
    process.execPath,
    [path.join(ROOT, 'bin/hubcache.js'), 'download', repo, '--cache-dir', cache, '-q'],
    { env: { ...process.env, HF_ENDPOINT: endpoint }, encoding: 'utf8' },
  );
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`hubcache download ${repo} from ${endpoint} failed: ${r.stderr}`);
  fs.rmSync(cache, { recursive: true, force: true });
  return s;
}

interface Row {
  scenario: string;
  metric: string;
  nginxOrDirect: number;
  mirror: number;
  ratio: number;
  target: string;
}
const rows: Row[] = [];
/** Ends the run after the cold rows (`--cold-only`). */
class ColdOnly extends Error {}
const log = (s: string): void => void process.stderr.write(`${s}\n`);

try {
  log(
    `bench:mirror: ${os.cpus().length} cores, load ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}, ${RUNS} runs, scratch ${scratch}`,
  );
  const hub = await startHub();
  const F = 'model.safetensors';

  // Cold: a fresh mirror store each run, hubcache download through it vs from the hub directly.
  const cold: { direct: number[]; mirror: number[] } = { direct: [], mirror: [] };
  for (let i = 0; i < RUNS; i++) {
    cold.direct.push(hubcacheDownload(hub, `bench/m${BIG_MIB}`));
    const store = path.join(scratch, `store-cold-${i}`);
    const mirrorUrl = await startMirror(hub, store);
    cold.mirror.push(hubcacheDownload(mirrorUrl, `bench/m${BIG_MIB}`));
    children.pop()?.kill('SIGTERM');
    fs.rmSync(store, { recursive: true, force: true });
    const [d, m] = [cold.direct.at(-1) as number, cold.mirror.at(-1) as number];
    log(
      `  cold ${BIG_MIB} MiB: direct ${d.toFixed(2)} s, through the mirror ${m.toFixed(2)} s (${(m / d).toFixed(2)}×)`,
    );
  }
  const cd = median(cold.direct);
  const cm = median(cold.mirror);
  const ratios = cold.direct.map((d, i) => (cold.mirror[i] as number) / d);
  log(
    `  cold ratio per run: ${ratios.map((r) => r.toFixed(2)).join(' ')} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)})`,
  );
  rows.push({
    scenario: `cold ${BIG_MIB} MiB, hubcache download (vs direct)`,
    metric: 's',
    nginxOrDirect: cd,
    mirror: cm,
    ratio: cm / cd,
    target: '≤ 1.2',
  });
  if (COLD_ONLY) throw new ColdOnly();

  // Warm: one mirror store holding both files; nginx serves the very same blob files.
  const store = path.join(scratch, 'store');
  const mirror = await startMirror(hub, store);
  const fiveUrl = `${mirror}/bench/five/resolve/main/${F}`;
  const bigUrl = `${mirror}/bench/m${BIG_MIB}/resolve/main/${F}`;
  curlTime(fiveUrl);
  curlTime(bigUrl);
  const www = path.join(scratch, 'www');
  fs.mkdirSync(www);
  for (const [repo, name] of [
    ['bench--five', 'five.bin'],
    [`bench--m${BIG_MIB}`, 'big.bin'],
  ] as const) {
    const snap = path.join(store, `models--${repo}`, 'snapshots');
    const commit = fs.readdirSync(snap)[0] as string;
    fs.linkSync(fs.realpathSync(path.join(snap, commit, F)), path.join(www, name)); // same inode, same page cache
  }
  const nginx = await startNginx(www);
  curlTime(`${nginx}/five.bin`);

  const rps: { nginx: number[]; mirror: number[] } = { nginx: [], mirror: [] };
  const big: { nginx: number[]; mirror: number[] } = { nginx: [], mirror: [] };
  for (let i = 0; i < RUNS; i++) {
    rps.nginx.push(wrk(`${nginx}/five.bin`));
    rps.mirror.push(wrk(fiveUrl));
    log(`  warm 5 MiB wrk -c8: nginx ${rps.nginx.at(-1)} req/s, mirror ${rps.mirror.at(-1)} req/s`);
    big.nginx.push(curlTime(`${nginx}/big.bin`));
    big.mirror.push(curlTime(bigUrl));
    log(
      `  warm ${BIG_MIB} MiB curl: nginx ${big.nginx.at(-1)?.toFixed(2)} s, mirror ${big.mirror.at(-1)?.toFixed(2)} s`,
    );
  }
  const n5 = median(rps.nginx);
  const m5 = median(rps.mirror);
  rows.push({
    scenario: 'warm 5 MiB, wrk -t2 -c8 -d5s',
    metric: 'req/s',
    nginxOrDirect: n5,
    mirror: m5,
    ratio: m5 / n5,
    target: '≥ 0.7',
  });
  const nb = median(big.nginx);
  const mb = median(big.mirror);
  rows.push({
    scenario: `warm ${BIG_MIB} MiB, curl`,
    metric: 's',
    nginxOrDirect: nb,
    mirror: mb,
    ratio: mb / nb,
    target: '≤ 1.5',
  });
} catch (err) {
  if (!(err instanceof ColdOnly)) throw err;
} finally {
  for (const c of children) c.kill('SIGTERM');
}

const fmt = (v: number, metric: string): string => (metric === 'req/s' ? v.toFixed(0) : v.toFixed(2));
console.log('\n| scenario | nginx / direct | hubcache serve | ratio | target |');
console.log('|---|---:|---:|---:|---|');
for (const r of rows) {
  console.log(
    `| ${r.scenario} | ${fmt(r.nginxOrDirect, r.metric)} ${r.metric} | ${fmt(r.mirror, r.metric)} ${r.metric} | ${r.ratio.toFixed(2)}× | ${r.target} ${(r.target.startsWith('≥') ? r.ratio >= Number(r.target.slice(2)) : r.ratio <= Number(r.target.slice(2))) ? 'met' : 'missed'} |`,
  );
}
console.log(
  `\n(${os.cpus().length} cores, load average at the end ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}; median of ${RUNS} runs)`,
);
setTimeout(() => fs.rmSync(scratch, { recursive: true, force: true }), 500).unref();
