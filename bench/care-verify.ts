// Which is faster for `hubcache verify`: worker threads (one hash per core) or concurrent
// streams on the main thread? Hashes the same files both ways, twice each (the first pass also
// warms the page cache). Run: node --import tsx bench/care-verify.ts [files] [MiB per file]
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { defaultHashConcurrency, hashFiles, type HashJob } from '../src/care/hash-pool.js';

const count = Number(process.argv[2] ?? 8);
const mib = Number(process.argv[3] ?? 64);

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hubcache-bench-verify-'));
  try {
    const chunk = randomFillSync(Buffer.alloc(1 << 20));
    const jobs: HashJob[] = [];
    for (let i = 0; i < count; i++) {
      const p = path.join(dir, `blob-${i}`);
      const fh = await fs.open(p, 'w');
      for (let m = 0; m < mib; m++) await fh.write(chunk);
      await fh.close();
      jobs.push({ path: p, algorithm: i % 4 === 3 ? 'git-sha1' : 'sha256' });
    }
    const total = count * mib;
    const concurrency = defaultHashConcurrency();
    console.log(
      `${count} files × ${mib} MiB = ${total} MiB, concurrency ${concurrency} (${os.availableParallelism()} cores)`,
    );
    const results: Record<string, number[]> = { threads: [], inline: [] };
    for (let round = 0; round < 2; round++) {
      for (const mode of ['inline', 'threads'] as const) {
        const t = performance.now();
        await hashFiles(jobs, { mode, concurrency });
        const s = (performance.now() - t) / 1000;
        results[mode]!.push(s);
        console.log(`  ${mode.padEnd(8)} ${s.toFixed(2)} s  ${(total / s).toFixed(0)} MiB/s`);
      }
    }
    const best = (m: string): number => Math.min(...(results[m] ?? [Infinity]));
    console.log(`worker threads are ${(best('inline') / best('threads')).toFixed(2)}x the speed of concurrent streams`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main();
