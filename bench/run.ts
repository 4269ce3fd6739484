// `npm run bench`: hubcache side by side with aria2c -x16, curl and @huggingface/hub on the same
// data, against the test hub on loopback (never anything else). Prints median seconds, the ratio
// of each tool to hubcache, and peak RSS. Needs /usr/bin/time and aria2c (Debian: time, aria2).
//   npm run bench [-- --runs 3 --quick --skip-huge --only unthrottled]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (n: string): boolean => argv.includes(n);
const num = (n: string, d: number): number => (argv.includes(n) ? Number(argv[argv.indexOf(n) + 1]) : d);
const RUNS = num('--runs', 3);
const BIG_MIB = flag('--quick') ? 256 : 1024;
const THROTTLE = 40_000_000; // bytes/s per connection: a CDN that caps each stream
/** Run only the scenarios whose title contains this (e.g. "unthrottled", "small", "40 MB/s"). */
const ONLY = argv.includes('--only') ? String(argv[argv.indexOf('--only') + 1]) : '';
const wanted = (title: string): boolean => title.includes(ONLY);

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
for (const need of ['/usr/bin/time', 'aria2c', 'curl']) {
  if (!have(need)) {
    console.error(`missing ${need}: apt-get install -y time aria2 curl`);
    process.exit(2);
  }
}
if (!fs.existsSync(path.join(ROOT, 'dist/cli/main.js'))) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });

interface Hub {
  hfEndpoint: string;
  stop: () => void;
}
async function startHub(extra: string[]): Promise<Hub> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/hub-server.ts'), ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (c) => reject(new Error(`hub exited with ${c}`)));
  });
  const info = JSON.parse(line) as { hfEndpoint: string };
  return { hfEndpoint: info.hfEndpoint, stop: () => child.kill('SIGTERM') };
}

interface Measure {
  seconds: number;
  rssMB: number;
}
/** Runs one command under /usr/bin/time: wall seconds and peak RSS of the process. */
function timed(cmd: string, args: string[], env: Record<string, string> = {}): Measure {
  const r = spawnSync('/usr/bin/time', ['-f', 'BENCH %e %M', cmd, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  const m = /BENCH ([\d.]+) (\d+)/.exec(r.stderr ?? '');
  if (r.status !== 0 || !m) throw new Error(`${cmd} failed (exit ${r.status}): ${(r.stderr ?? '').slice(-800)}`);
  return { seconds: Number(m[1]), rssMB: Number(m[2]) / 1024 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hubcache-bench-'));
/**
 * An empty output folder for the next run. Every earlier run's output is deleted and `sync` runs
 * first (untimed): otherwise a tool that leaves 1 GiB of dirty pages behind (curl, aria2c: no
 * fsync) makes the kernel write them back during the next tool's run, and that run pays for it
 * (seen: hubcache's fsync waiting behind curl's writeback, 1.0 s runs turning into 2.6 s).
 */
const fresh = (name: string): string => {
  for (const old of fs.readdirSync(scratch)) fs.rmSync(path.join(scratch, old), { recursive: true, force: true });
  spawnSync('sync');
  const d = path.join(scratch, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

type Tool = { name: string; run: (hub: Hub) => Measure };
function scenario(title: string, tools: Tool[], hub: Hub): Array<{ title: string; tool: string; seconds: number; rssMB: number }> {
  const rows: Array<{ title: string; tool: string; seconds: number; rssMB: number }> = [];
  if (!wanted(title)) return rows;
  const samples = new Map<string, Measure[]>();
  for (let i = 0; i < RUNS; i++) {
    for (const t of tools) {
      // Interleaved runs, so drift of the machine's speed hits every tool alike.
      const m = t.run(hub);
      samples.set(t.name, [...(samples.get(t.name) ?? []), m]);
      process.stderr.write(`  ${title} | ${t.name}: ${m.seconds.toFixed(2)} s, ${m.rssMB.toFixed(0)} MB\n`);
    }
  }
  for (const t of tools) {
    const s = samples.get(t.name) ?? [];
    rows.push({ title, tool: t.name, seconds: median(s.map((x) => x.seconds)), rssMB: median(s.map((x) => x.rssMB)) });
  }
  return rows;
}

const hubcacheTool = (repo: string, extra: string[] = []): Tool => ({
  name: 'hubcache',
  run: (hub) => timed(process.execPath, [path.join(ROOT, 'bin/hubcache.js'), 'download', repo, '--cache-dir', fresh('hubcache'), '-q', ...extra], { HF_ENDPOINT: hub.hfEndpoint }),
});
const hfjsTool = (repo: string): Tool => ({
  name: '@huggingface/hub',
  run: (hub) => timed(process.execPath, [path.join(ROOT, 'bench/hfjs-snapshot.mjs'), repo, fresh('hfjs'), hub.hfEndpoint]),
});
const url = (hub: Hub, repo: string, file: string): string => `${hub.hfEndpoint}/${repo}/resolve/main/${file}`;
const bigFile = 'model.safetensors';
const curlBig: Tool = { name: 'curl (1 stream, no hash)', run: (hub) => timed('curl', ['-sSfL', '-o', path.join(fresh('curl'), bigFile), url(hub, 'bench/big', bigFile)]) };
const ariaBig: Tool = {
  name: 'aria2c -x16 -s16 -k1M',
  run: (hub) => timed('aria2c', ['-x16', '-s16', '-k1M', '-q', '--allow-overwrite=true', '--file-allocation=none', '-d', fresh('aria'), '-o', bigFile, url(hub, 'bench/big', bigFile)]),
};
const smallNames = Array.from({ length: 200 }, (_, i) => `files/part-${String(i).padStart(3, '0')}.json`);
const curlSmall: Tool = {
  name: 'curl (1 connection, keep-alive)',
  run: (hub) => {
    const d = fresh('curl-small');
    return timed('curl', ['-sSfL', '--create-dirs', ...smallNames.flatMap((n) => ['-o', path.join(d, n), url(hub, 'bench/small', n)])]);
  },
};

const rows: ReturnType<typeof scenario> = [];
try {
  process.stderr.write(`bench: ${os.cpus().length} cores, ${RUNS} runs each, scratch ${scratch}\n`);
  const throttled = `${BIG_MIB} MiB, 40 MB/s per connection`;
  if (wanted(throttled)) {
    const slow = await startHub(['--throttle', String(THROTTLE), '--big-mib', String(BIG_MIB)]);
    rows.push(...scenario(throttled, [hubcacheTool('bench/big'), ariaBig, curlBig, hfjsTool('bench/big')], slow));
    slow.stop();
  }
  const skipHuge = flag('--skip-huge') || !wanted('peak memory');
  const hub = await startHub(['--big-mib', String(BIG_MIB), ...(skipHuge ? [] : ['--huge-mib', flag('--quick') ? '1024' : '4096'])]);
  rows.push(...scenario(`${BIG_MIB} MiB, unthrottled loopback`, [hubcacheTool('bench/big'), curlBig, ariaBig], hub));
  rows.push(...scenario('200 small files', [hubcacheTool('bench/small'), hfjsTool('bench/small'), curlSmall], hub));
  if (!skipHuge) {
    const m = hubcacheTool('bench/huge').run(hub);
    rows.push({ title: `${flag('--quick') ? 1024 : 4096} MiB, peak memory`, tool: 'hubcache', seconds: m.seconds, rssMB: m.rssMB });
  }
  hub.stop();
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}

// Table: seconds and the ratio tool / hubcache (>1 means hubcache is faster).
const base = new Map(rows.filter((r) => r.tool === 'hubcache').map((r) => [r.title, r.seconds]));
console.log('\n| scenario | tool | median s | × hubcache time | peak RSS MB |\n|---|---|---|---|---|');
for (const r of rows) {
  const b = base.get(r.title) ?? r.seconds;
  console.log(`| ${r.title} | ${r.tool} | ${r.seconds.toFixed(2)} | ${(r.seconds / b).toFixed(2)} | ${r.rssMB.toFixed(0)} |`);
}
