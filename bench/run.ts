// `npm run bench`: hubcache side by side with aria2c, curl and the official clients on the same
// data, against the test hub on loopback (never anything else). Every row of issue 15, as a ratio
// measured in this one run: interleaved runs (A B A B ...), median seconds, peak RSS.
// Needs /usr/bin/time, aria2c and curl (Debian: apt-get install -y aria2 time curl).
//   npm run bench [-- --runs 3 --quick --skip-huge --only "10 MB/s"]
//   --only S     run the sections whose name contains S: durable, sweep, "10 MB/s", "40 MB/s",
//                unthrottled, small, resume, ls, startup, memory
//   --quick      smaller files (sweep 64 and 256 MiB, 256 MiB unthrottled), 3 kill times
//   --skip-huge  no 4 GiB file (sweep row and peak memory row)
//   PYCLIENTS=1  also time huggingface_hub (Python) on the small files, if it is installed
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { buildHfRepo, commitOf, type Files } from '../test/fixtures/care-cache.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (n: string): boolean => argv.includes(n);
const opt = (n: string): string | undefined => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : undefined);
const RUNS = Number(opt('--runs') ?? 3);
const QUICK = flag('--quick');
const SKIP_HUGE = flag('--skip-huge');
const ONLY = opt('--only') ?? '';
const wanted = (...names: string[]): boolean => !ONLY || names.some((n) => n.includes(ONLY));
const MiB = 1024 * 1024;
const SWEEP_MIB = QUICK ? [64, 256] : [64, 256, 512, 1024, ...(SKIP_HUGE ? [] : [4096])];
const BIG_MIB = QUICK ? 256 : 1024;
const HUGE_MIB = 4096;
const RESUME_MIB = QUICK ? [256] : [256, 512];
const KILL_AT = QUICK ? [0.4, 0.6, 0.8] : [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
const mibName = (m: number): string => (m >= 1024 ? `${m / 1024} GiB` : `${m} MiB`);

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
for (const need of ['/usr/bin/time', 'aria2c', 'curl']) {
  if (!have(need)) {
    console.error(`missing ${need}: apt-get install -y aria2 time curl`);
    process.exit(2);
  }
}
if (!fs.existsSync(path.join(ROOT, 'dist/cli/main.js')))
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
const HUBCACHE = path.join(ROOT, 'bin/hubcache.js');

// ---------------------------------------------------------------------------------------------
// Hub, timing, scratch space

interface Hub {
  hfEndpoint: string;
  /** Body bytes the hub sent since the previous call. */
  bytesSent: () => Promise<number>;
  stop: () => void;
}
async function startHub(args: string[]): Promise<Hub> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/hub-server.ts'), ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const queue: Array<(l: string) => void> = [];
  const first = new Promise<string>((resolve, reject) => {
    queue.push(resolve);
    child.once('exit', (c) => reject(new Error(`hub exited with ${c}`)));
  });
  lines.on('line', (l) => queue.shift()?.(l));
  const info = JSON.parse(await first) as { hfEndpoint: string };
  return {
    hfEndpoint: info.hfEndpoint,
    bytesSent: () =>
      new Promise<number>((resolve) => {
        queue.push((l) => resolve(Number(l)));
        child.stdin.write('bytes\n');
      }),
    stop: () => child.kill('SIGTERM'),
  };
}
const url = (hub: Hub, repo: string, file: string): string => `${hub.hfEndpoint}/${repo}/resolve/main/${file}`;
/** The hub hashes a generated file on its first metadata request: do that before timing. */
function warm(hub: Hub, repos: string[]): void {
  for (const r of repos) spawnSync('curl', ['-sSfI', '-o', '/dev/null', url(hub, r, 'model.safetensors')]);
}

interface Measure {
  seconds: number;
  rssMB: number;
}
/** Runs one command under /usr/bin/time: wall seconds and peak RSS of the process. */
function timed(cmd: string, args: string[], env: Record<string, string> = {}): Measure {
  const r = spawnSync('/usr/bin/time', ['-f', 'BENCH %e %M', cmd, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 1 << 26,
  });
  const m = /BENCH ([\d.]+) (\d+)/.exec(r.stderr ?? '');
  if (r.status !== 0 || !m)
    throw new Error(
      `${cmd} ${args.join(' ').slice(0, 200)} failed (exit ${r.status}): ${(r.stderr ?? '').slice(-800)}`,
    );
  return { seconds: Number(m[1]), rssMB: Number(m[2]) / 1024 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hubcache-bench-'));
const downloads = path.join(scratch, 'dl');
/**
 * An empty output folder for the next run. Every earlier run's output is deleted and `sync` runs
 * first (untimed): otherwise a tool that leaves 1 GiB of dirty pages behind (curl, aria2c: no
 * fsync) makes the kernel write them back during the next tool's run, and that run pays for it
 * (seen: hubcache's fsync waiting behind curl's writeback, 1.0 s runs turning into 2.6 s).
 */
const fresh = (name: string): string => {
  fs.rmSync(downloads, { recursive: true, force: true });
  spawnSync('sync');
  const d = path.join(downloads, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

// ---------------------------------------------------------------------------------------------
// Scenarios: interleaved runs of several tools, medians

interface Row {
  title: string;
  tool: string;
  seconds: number;
  rssMB: number;
  /** Shown instead of seconds (resume rows: a share, not a time). */
  note?: string;
}
type Tool = { name: string; run: () => Measure };
const rows: Row[] = [];
const log = (s: string): void => void process.stderr.write(`${s}\n`);

function scenario(title: string, tools: Tool[], runs = RUNS): void {
  const samples = new Map<string, Measure[]>();
  for (let i = 0; i < runs; i++) {
    for (const t of tools) {
      // Interleaved runs, so drift of the machine's speed hits every tool alike.
      const m = t.run();
      samples.set(t.name, [...(samples.get(t.name) ?? []), m]);
      log(`  ${title} | ${t.name}: ${m.seconds.toFixed(2)} s, ${m.rssMB.toFixed(0)} MB`);
    }
  }
  for (const t of tools) {
    const s = samples.get(t.name) ?? [];
    rows.push({ title, tool: t.name, seconds: median(s.map((x) => x.seconds)), rssMB: median(s.map((x) => x.rssMB)) });
  }
}
const secondsOf = (title: string, tool: string): number | undefined =>
  rows.find((r) => r.title === title && r.tool === tool)?.seconds;

const HC = 'hubcache';
const hubcache = (hub: Hub, repo: string, extra: string[] = [], name = HC): Tool => ({
  name,
  run: () =>
    timed(process.execPath, [HUBCACHE, 'download', repo, '--cache-dir', fresh('hubcache'), '-q', ...extra], {
      HF_ENDPOINT: hub.hfEndpoint,
    }),
});
const ARIA_X16 = 'aria2c -x16 -s16 -k1M';
const aria = (hub: Hub, repo: string): Tool => ({
  name: ARIA_X16,
  run: () =>
    timed('aria2c', [
      '-x16',
      '-s16',
      '-k1M',
      '-q',
      '--allow-overwrite=true',
      '--file-allocation=none',
      '-d',
      fresh('aria'),
      '-o',
      'model.safetensors',
      url(hub, repo, 'model.safetensors'),
    ]),
});
const CURL = 'curl (1 stream, no hash)';
const CURL_FSYNC = 'curl + fsync (durable reference)';
const curl = (hub: Hub, repo: string, durable: boolean): Tool => ({
  name: durable ? CURL_FSYNC : CURL,
  run: () => {
    const out = path.join(fresh('curl'), 'model.safetensors');
    const get = `curl -sSfL -o '${out}' '${url(hub, repo, 'model.safetensors')}'`;
    // `sync FILE` fsyncs that one file: what hubcache does before its commit.
    return timed('sh', ['-c', durable ? `${get} && sync '${out}'` : get]);
  },
});

const smallNames = Array.from({ length: 200 }, (_, i) => `files/part-${String(i).padStart(3, '0')}.json`);
const ARIA_J16 = 'aria2c -j16 (16 files at once)';

// ---------------------------------------------------------------------------------------------
// Sections

/** The machine's durable-write rate: 1 GiB (256 MiB with --quick) written and fdatasync'ed. */
function durableRate(): number {
  const mib = QUICK ? 256 : 1024;
  const f = path.join(fresh('dd'), 'dd');
  const t = performance.now();
  execFileSync('dd', ['if=/dev/zero', `of=${f}`, 'bs=1M', `count=${mib}`, 'conv=fdatasync'], { stdio: 'ignore' });
  const rate = (mib * MiB) / ((performance.now() - t) / 1000) / 1e6;
  fs.rmSync(f);
  return rate;
}

async function sweep(rateMB: number): Promise<void> {
  const hub = await startHub(['--throttle', String(rateMB * 1e6), '--sizes', SWEEP_MIB.join(',')]);
  try {
    warm(
      hub,
      SWEEP_MIB.map((m) => `bench/m${m}`),
    );
    for (const m of SWEEP_MIB)
      scenario(`${mibName(m)}, ${rateMB} MB/s per connection`, [
        hubcache(hub, `bench/m${m}`),
        aria(hub, `bench/m${m}`),
      ]);
  } finally {
    hub.stop();
  }
}

async function unthrottledAndSmall(): Promise<void> {
  const memory = !SKIP_HUGE && wanted('memory');
  const sizes = [...(wanted('unthrottled') ? [BIG_MIB] : []), ...(memory ? [HUGE_MIB] : [])];
  const hub = await startHub(['--sizes', sizes.join(','), '--small']);
  try {
    warm(
      hub,
      sizes.map((m) => `bench/m${m}`),
    );
    const big = `bench/m${BIG_MIB}`;
    if (wanted('unthrottled')) {
      scenario(`${mibName(BIG_MIB)}, unthrottled loopback`, [
        hubcache(hub, big),
        hubcache(hub, big, ['--connections', '1'], 'hubcache --connections 1'),
        curl(hub, big, false),
        curl(hub, big, true),
        aria(hub, big),
      ]);
    }
    if (wanted('small')) small(hub);
    if (memory) {
      const m = hubcache(hub, `bench/m${HUGE_MIB}`).run();
      rows.push({
        title: `${mibName(HUGE_MIB)}, unthrottled, peak memory`,
        tool: HC,
        seconds: m.seconds,
        rssMB: m.rssMB,
      });
    }
  } finally {
    hub.stop();
  }
}

function small(hub: Hub): void {
  const tools: Tool[] = [hubcache(hub, 'bench/small')];
  tools.push({
    name: ARIA_J16,
    run: () => {
      const d = fresh('aria-small');
      const list = path.join(scratch, 'aria-small.txt');
      fs.writeFileSync(list, smallNames.map((n) => `${url(hub, 'bench/small', n)}\n  out=${n}\n`).join(''));
      return timed('aria2c', [
        '-j16',
        '-x1',
        '-q',
        '--allow-overwrite=true',
        '--file-allocation=none',
        '-d',
        d,
        '-i',
        list,
      ]);
    },
  });
  tools.push({
    name: '@huggingface/hub snapshotDownload',
    run: () =>
      timed(process.execPath, [
        path.join(ROOT, 'bench/hfjs-snapshot.mjs'),
        'bench/small',
        fresh('hfjs'),
        hub.hfEndpoint,
      ]),
  });
  const py =
    process.env.PYCLIENTS && spawnSync('python3', ['-c', 'import huggingface_hub'], { stdio: 'ignore' }).status === 0;
  if (py) {
    tools.push({
      name: 'huggingface_hub snapshot_download',
      run: () =>
        timed(
          'python3',
          [
            '-c',
            'import sys; from huggingface_hub import snapshot_download as s; s("bench/small", cache_dir=sys.argv[1])',
            fresh('hfpy'),
          ],
          { HF_ENDPOINT: hub.hfEndpoint, HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1' },
        ),
    });
  } else {
    log(
      `  200 small files | huggingface_hub: skipped (${process.env.PYCLIENTS ? 'python3 -c "import huggingface_hub" failed' : 'set PYCLIENTS=1 to include it'})`,
    );
  }
  tools.push({
    name: 'curl (1 connection, keep-alive)',
    run: () => {
      const d = fresh('curl-small');
      return timed('curl', [
        '-sSfL',
        '--create-dirs',
        ...smallNames.flatMap((n) => ['-o', path.join(d, n), url(hub, 'bench/small', n)]),
      ]);
    },
  });
  scenario('200 small files (4-64 KiB)', tools);
}

/**
 * Resume after kill -9, on 16 connections × 10 MB/s (160 MB/s: below the disk's durable rate,
 * so what a kill loses is the checkpointing's doing, not the disk's): hubcache is killed at
 * several shares of a full run's time, then run again to the end. Re-fetched = bytes sent over both runs − file size, as a share of the bytes
 * sent before the kill (what had arrived).
 */
async function resume(): Promise<void> {
  const hub = await startHub(['--throttle', '10000000', '--sizes', RESUME_MIB.join(',')]);
  try {
    warm(
      hub,
      RESUME_MIB.map((m) => `bench/m${m}`),
    );
    for (const m of RESUME_MIB) {
      const repo = `bench/m${m}`;
      const title = `resume after kill -9, ${mibName(m)}, 16 × 10 MB/s`;
      const conn = ['--connections', '16'];
      const full = hubcache(hub, repo, conn).run().seconds;
      log(`  ${title}: an uninterrupted run takes ${full.toFixed(2)} s`);
      const shares: number[] = [];
      for (const at of KILL_AT) {
        const cache = fresh('resume');
        await hub.bytesSent();
        const killAfter = at * full;
        const child = spawn(process.execPath, [HUBCACHE, 'download', repo, '--cache-dir', cache, '-q', ...conn], {
          env: { ...process.env, HF_ENDPOINT: hub.hfEndpoint },
          stdio: 'ignore',
        });
        const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
        await sleep(killAfter * 1000);
        child.kill('SIGKILL');
        const code = await exited;
        await sleep(300); // the hub notices the closed sockets
        const arrived = await hub.bytesSent();
        if (code === 0) {
          log(`  ${title}: finished before the kill at ${killAfter.toFixed(2)} s`);
          continue;
        }
        const again = timed(process.execPath, [HUBCACHE, 'download', repo, '--cache-dir', cache, '-q', ...conn], {
          HF_ENDPOINT: hub.hfEndpoint,
        });
        const second = await hub.bytesSent();
        const refetched = Math.max(0, arrived + second - m * MiB);
        const share = arrived > 0 ? refetched / arrived : 0;
        shares.push(share);
        log(
          `  ${title}: kill at ${killAfter.toFixed(2)} s: ${(arrived / MiB).toFixed(0)} MiB had arrived, ${(refetched / MiB).toFixed(1)} MiB fetched again (${(share * 100).toFixed(1)}%); resume run ${again.seconds.toFixed(2)} s`,
        );
        rows.push({
          title,
          tool: `kill at ${killAfter.toFixed(1)} s`,
          seconds: share,
          rssMB: again.rssMB,
          note: `${(share * 100).toFixed(1)}% of ${(arrived / MiB).toFixed(0)} MiB`,
        });
      }
      if (shares.length)
        rows.push({
          title,
          tool: 'worst kill',
          seconds: Math.max(...shares),
          rssMB: 0,
          note: `${(Math.max(...shares) * 100).toFixed(1)}% re-fetched`,
        });
    }
  } finally {
    hub.stop();
  }
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `hubcache ls` over 100 repos × 100 files, whole process, against scanCacheDir and find. */
async function ls(): Promise<void> {
  const cache = path.join(scratch, 'ls-cache');
  await Promise.all(
    Array.from({ length: 100 }, (_, r) => {
      const files: Files = {};
      for (let i = 0; i < 100; i++)
        files[i % 10 === 0 ? `model-${i}.safetensors` : `sub${i % 4}/file-${i}.json`] = `repo ${r} file ${i}`;
      return buildHfRepo(cache, `org${r % 10}/model-${r}`, [{ commit: commitOf(String(r)), files, refs: ['main'] }]);
    }),
  );
  scenario(
    'ls, 100 repos × 100 files',
    [
      { name: 'hubcache ls', run: () => timed(process.execPath, [HUBCACHE, 'ls', '--cache-dir', cache]) },
      {
        name: '@huggingface/hub scanCacheDir',
        run: () => timed(process.execPath, [path.join(ROOT, 'bench/hfjs-scan.mjs'), cache]),
      },
      { name: 'find', run: () => timed('find', [cache]) },
    ],
    Math.max(RUNS, 5),
  );
}

function startup(): void {
  scenario(
    'startup',
    [
      { name: 'hubcache --version', run: () => timed(process.execPath, [HUBCACHE, '--version']) },
      { name: 'node -e 0', run: () => timed(process.execPath, ['-e', '0']) },
    ],
    Math.max(RUNS, 7),
  );
}

// ---------------------------------------------------------------------------------------------
// Run, then print the table and the targets

let durable: number | undefined;
try {
  log(
    `bench: ${os.cpus().length} cores, load average ${os.loadavg()[0]?.toFixed(1)}, ${RUNS} runs each, scratch ${scratch}`,
  );
  if (wanted('durable')) {
    durable = durableRate();
    log(`durable-write rate (dd ${QUICK ? 256 : 1024} MiB, conv=fdatasync): ${durable.toFixed(0)} MB/s`);
  }
  if (wanted('sweep', '10 MB/s')) await sweep(10);
  if (wanted('sweep', '40 MB/s')) await sweep(40);
  if (wanted('unthrottled', 'small', 'memory')) await unthrottledAndSmall();
  if (wanted('resume')) await resume();
  if (wanted('ls')) await ls();
  if (wanted('startup')) startup();
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}

if (durable !== undefined)
  console.log(`\nDurable-write rate of this machine: ${durable.toFixed(0)} MB/s (dd, conv=fdatasync).`);
// Table: seconds and the ratio tool / hubcache (>1 means hubcache is faster).
const hcOf = (title: string): number | undefined =>
  rows.find((r) => r.title === title && r.tool.startsWith('hubcache') && !r.tool.includes('--connections'))?.seconds;
console.log('\n| scenario | tool | median s | tool time ÷ hubcache time | peak RSS MB |\n|---|---|---|---|---|');
for (const r of rows) {
  if (r.note) {
    console.log(`| ${r.title} | ${r.tool} | ${r.note} | | ${r.rssMB ? r.rssMB.toFixed(0) : ''} |`);
    continue;
  }
  const b = hcOf(r.title);
  console.log(
    `| ${r.title} | ${r.tool} | ${r.seconds.toFixed(2)} | ${b ? (r.seconds / b).toFixed(2) : ''} | ${r.rssMB.toFixed(0)} |`,
  );
}

// Targets of issue 15, each from the rows above.
const targets: Array<{ what: string; value: string; met: boolean }> = [];
const ratioTarget = (
  what: string,
  a: number | undefined,
  b: number | undefined,
  ok: (x: number) => boolean,
  fmt = (x: number): string => `${x.toFixed(2)}×`,
): void => {
  if (a === undefined || b === undefined) return;
  const x = a / b;
  targets.push({ what, value: fmt(x), met: ok(x) });
};
for (const rate of [10, 40]) {
  for (const m of SWEEP_MIB) {
    const t = `${mibName(m)}, ${rate} MB/s per connection`;
    const goal = rate === 10 ? 1.5 : 1.0;
    ratioTarget(`${t}: speed ≥ ${goal}× aria2c -x16`, secondsOf(t, ARIA_X16), secondsOf(t, HC), (x) => x >= goal);
  }
}
const un = `${mibName(BIG_MIB)}, unthrottled loopback`;
ratioTarget(`${un}: time ≤ 1.0× curl + fsync`, secondsOf(un, HC), secondsOf(un, CURL_FSYNC), (x) => x <= 1.0);
ratioTarget(
  `${un}, 1 connection: time ≤ 1.15× curl + fsync`,
  secondsOf(un, 'hubcache --connections 1'),
  secondsOf(un, CURL_FSYNC),
  (x) => x <= 1.15,
);
const sm = '200 small files (4-64 KiB)';
ratioTarget(`${sm}: time ≤ 1.0× aria2c -j16`, secondsOf(sm, HC), secondsOf(sm, ARIA_J16), (x) => x <= 1.0);
ratioTarget(
  `${sm}: ≥ 5× faster than @huggingface/hub`,
  secondsOf(sm, '@huggingface/hub snapshotDownload'),
  secondsOf(sm, HC),
  (x) => x >= 5,
);
ratioTarget(
  `${sm}: ≥ 5× faster than huggingface_hub`,
  secondsOf(sm, 'huggingface_hub snapshot_download'),
  secondsOf(sm, HC),
  (x) => x >= 5,
);
for (const r of rows.filter((x) => x.tool === 'worst kill'))
  targets.push({
    what: `${r.title}: ≤ 5% re-fetched at every kill`,
    value: `${(r.seconds * 100).toFixed(1)}%`,
    met: r.seconds <= 0.05,
  });
const lsS = secondsOf('ls, 100 repos × 100 files', 'hubcache ls');
if (lsS !== undefined)
  targets.push({
    what: 'hubcache ls, 100 × 100 files, whole process: ≤ 0.25 s',
    value: `${lsS.toFixed(2)} s`,
    met: lsS <= 0.25,
  });
const v = secondsOf('startup', 'hubcache --version');
if (v !== undefined) targets.push({ what: 'hubcache --version: ≤ 0.12 s', value: `${v.toFixed(2)} s`, met: v <= 0.12 });
const mem = rows.find((r) => r.title.endsWith('peak memory'));
if (mem) targets.push({ what: `${mem.title}: < 200 MB`, value: `${mem.rssMB.toFixed(0)} MB`, met: mem.rssMB < 200 });
if (targets.length) {
  console.log('\n| target | measured | met |\n|---|---|---|');
  for (const t of targets) console.log(`| ${t.what} | ${t.value} | ${t.met ? 'yes' : 'no'} |`);
}
