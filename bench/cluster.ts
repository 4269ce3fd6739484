// `npm run bench:cluster`: the cluster on loopback. A real Ceph RGW (scripts/ceph-rgw.sh, temp dir), the
// bench hub, N `hubcache serve --store s3://...` replicas on one bucket, and M concurrent clients (spread
// round-robin over the replicas) all pulling the same cold blob, then again warm, then once more through
// fresh replicas (empty local caches: every byte from S3). Upstream bytes are counted at the hub; S3 bytes
// by a counting TCP relay between the replicas and the RGW. Every client's body is checked by sha256.
//   npm run bench:cluster [-- --replicas 3 --clients 12 --mib 64]
// Needs root and the Debian packages ceph-mon ceph-osd radosgw ceph-common.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { generatedContent } from '../test/fixtures/content.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
function num(name: string, d: number): number {
  if (!argv.includes(name)) return d;
  const v = Number(argv[argv.indexOf(name) + 1]);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`${name} needs a positive whole number`);
    process.exit(2);
  }
  return v;
}
const REPLICAS = num('--replicas', 3);
const CLIENTS = num('--clients', 12);
const MIB = num('--mib', 64);
const SIZE = MIB * 1024 * 1024;
const SECRET = 'bench-cluster-secret-0123456789';
const REPO = `bench/m${MIB}`;
const log = (s: string): void => void process.stderr.write(`${s}\n`);

if (process.getuid?.() !== 0) {
  console.error('bench:cluster runs the dev Ceph cluster, which needs root');
  process.exit(2);
}
// The replicas run from dist/ (what users run): build it so it is this tree's code.
execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hubcache-bench-cluster-'));
const rgwDir = path.join(scratch, 'rgw');
const children: ChildProcess[] = [];
let rgwStarted = false;

async function firstLine(child: ChildProcess, what: string, re = /.*/): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (!re.test(l)) return;
      rl.removeAllListeners('line');
      resolve(l);
    });
    child.once('exit', (c) => reject(new Error(`${what} exited with ${c}`)));
  });
}

/** A TCP relay in front of the RGW that counts the bytes each way (replica→S3 writes, S3→replica reads). */
function countingRelay(
  target: URL,
): Promise<{ url: string; read: () => number; written: () => number; close(): void }> {
  let read = 0;
  let written = 0;
  const srv = net.createServer((c) => {
    const s = net.connect(Number(target.port), target.hostname);
    c.on('data', (b: Buffer) => (written += b.length));
    s.on('data', (b: Buffer) => (read += b.length));
    c.pipe(s).pipe(c);
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
        read: () => read,
        written: () => written,
        close: () => srv.close(),
      }),
    ),
  );
}

async function startHub(): Promise<{ endpoint: string; bytes: () => Promise<number> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/hub-server.ts'), '--sizes', `${MIB}`],
    {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const rl = readline.createInterface({ input: child.stdout });
  const lines: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  rl.on('line', (l) => (waiters.length ? waiters.shift()!(l) : lines.push(l)));
  const next = (): Promise<string> => new Promise((r) => (lines.length ? r(lines.shift()!) : waiters.push(r)));
  const { hfEndpoint } = JSON.parse(await next()) as { hfEndpoint: string };
  return {
    endpoint: hfEndpoint,
    // Body bytes the hub sent since the previous call (API and CDN).
    bytes: async () => {
      child.stdin.write('bytes\n');
      return Number(await next());
    },
  };
}

async function startReplica(hub: string, bucket: string, env: Record<string, string>, s3: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin/hubcache.js'),
      'serve',
      '--port',
      '0',
      '--upstream',
      hub,
      '--store',
      `s3://${bucket}/hc`,
      '--s3-endpoint',
      s3,
      '--cache-dir',
      fs.mkdtempSync(path.join(scratch, 'replica-')),
      '--log-level',
      'warn',
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: scratch, ...env, HUBCACHE_CLUSTER_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const line = await firstLine(child, 'hubcache serve', /listening on /);
  return /listening on (\S+)/.exec(line)![1]!;
}

/** One client: GET the blob, hash it as it arrives; resolves with the body's sha256 and length. */
function pull(url: string): Promise<{ sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
        const h = createHash('sha256');
        let bytes = 0;
        res.on('data', (b: Buffer) => {
          bytes += b.length;
          h.update(b);
        });
        res.on('end', () => resolve({ sha: h.digest('hex'), bytes }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

interface Round {
  name: string;
  seconds: number;
  mbps: number;
  upstream: number;
  s3Read: number;
  s3Written: number;
}
const rounds: Round[] = [];

try {
  log(`bench:cluster: ${os.cpus().length} cores, ${REPLICAS} replicas, ${CLIENTS} clients, ${MIB} MiB blob`);
  const t0 = Date.now();
  const env = Object.fromEntries(
    execFileSync('bash', [path.join(ROOT, 'scripts/ceph-rgw.sh'), 'start', rgwDir], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  ) as Record<string, string>;
  rgwStarted = true;
  log(`  RGW up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const relay = await countingRelay(new URL(env.AWS_ENDPOINT_URL_S3!));
  const s3env = { ...env, AWS_ENDPOINT_URL_S3: relay.url };
  const client = new S3Client({
    endpoint: env.AWS_ENDPOINT_URL_S3!,
    region: env.AWS_REGION!,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
  const bucket = `bench-${Date.now()}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();

  const hub = await startHub();
  const want = generatedContent(SIZE, MIB).sha256();
  const startReplicas = async (): Promise<string[]> => {
    const urls: string[] = [];
    for (let i = 0; i < REPLICAS; i++) urls.push(await startReplica(hub.endpoint, bucket, s3env, relay.url));
    return urls;
  };
  let replicas = await startReplicas();
  await hub.bytes(); // startup (the conditional-write probe does not touch the hub; reset anyway)

  const round = async (name: string): Promise<void> => {
    const [r0, w0] = [relay.read(), relay.written()];
    const t = process.hrtime.bigint();
    const got = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        pull(`${replicas[i % REPLICAS]}/${REPO}/resolve/main/model.safetensors`),
      ),
    );
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    for (const g of got) if (g.sha !== want || g.bytes !== SIZE) throw new Error(`${name}: a client got wrong bytes`);
    // The holder uploads after its callers are served: let the S3 writes land before counting them.
    await new Promise((r) => setTimeout(r, 2000));
    const r: Round = {
      name,
      seconds,
      mbps: (CLIENTS * SIZE) / 1e6 / seconds,
      upstream: await hub.bytes(),
      s3Read: relay.read() - r0,
      s3Written: relay.written() - w0,
    };
    rounds.push(r);
    log(`  ${name}: ${seconds.toFixed(2)} s, ${r.mbps.toFixed(0)} MB/s aggregate, all ${CLIENTS} bodies verified`);
  };
  await round('cold (empty bucket)');
  await round('warm (replica caches)');
  // Fresh replicas on the same bucket: local caches empty, the blob is in S3.
  for (const c of children.splice(1)) c.kill('SIGTERM');
  replicas = await startReplicas();
  await hub.bytes();
  await round('fresh replicas (from S3)');
  relay.close();
  log(`  total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  for (const c of children) c.kill('SIGTERM');
  if (rgwStarted) execFileSync('bash', [path.join(ROOT, 'scripts/ceph-rgw.sh'), 'stop', rgwDir], { stdio: 'inherit' });
}

const mb = (n: number): string => (n / 1e6).toFixed(1);
console.log(`\n${REPLICAS} replicas, ${CLIENTS} clients, one ${MIB} MiB blob (${mb(SIZE)} MB)\n`);
console.log('| round | time | aggregate | upstream (hub) | upstream / blob | S3 read | S3 written |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const r of rounds) {
  console.log(
    `| ${r.name} | ${r.seconds.toFixed(2)} s | ${r.mbps.toFixed(0)} MB/s | ${mb(r.upstream)} MB | ` +
      `${(r.upstream / SIZE).toFixed(2)}× | ${mb(r.s3Read)} MB | ${mb(r.s3Written)} MB |`,
  );
}
console.log(
  `\n(${os.cpus().length} cores, load average at the end ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')})`,
);
setTimeout(() => fs.rmSync(scratch, { recursive: true, force: true }), 500).unref();
