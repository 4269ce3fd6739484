// How long `hubcache ls` needs to scan a cache of 10,000 files: builds one (HF repos with two
// revisions sharing most blobs, plus ModelScope repos in both layouts), then times scan() cold
// and warm. Run: node --import tsx bench/care-scan.ts [files] [runs]
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { scan } from '../src/care/scan.js';
import {
  buildHfRepo,
  buildMsLegacyRepo,
  buildMsSnapshotRepo,
  commitOf,
  type Files,
} from '../test/fixtures/care-cache.js';

const totalFiles = Number(process.argv[2] ?? 10_000);
const runs = Number(process.argv[3] ?? 7);

/** ~90% HF files (20 repos × 2 revisions, 80% of the blobs shared), ~10% ModelScope. */
async function buildCache(root: string): Promise<void> {
  const hfRepos = 20;
  const perRevision = Math.floor((totalFiles * 0.9) / (hfRepos * 2));
  await Promise.all(
    Array.from({ length: hfRepos }, async (_, r) => {
      const v1: Files = {};
      const v2: Files = {};
      for (let i = 0; i < perRevision; i++) {
        const p = i % 10 === 0 ? `model-${i}.safetensors` : `shard${i % 7}/file-${i}.json`;
        v1[p] = `repo ${r} file ${i}`;
        v2[p] = i % 5 === 0 ? `repo ${r} file ${i} v2` : v1[p];
      }
      await buildHfRepo(root, `org${r}/model-${r}`, [
        { commit: commitOf(`${r}-1`), files: v1, refs: ['v1.0'] },
        { commit: commitOf(`${r}-2`), files: v2, refs: ['main'] },
      ]);
    }),
  );
  const msFiles = totalFiles - hfRepos * 2 * perRevision;
  const half = Math.floor(msFiles / 2);
  const legacy: Files = {};
  const v2: Files = {};
  for (let i = 0; i < half; i++) legacy[`sub${i % 5}/w-${i}.bin`] = `ms legacy ${i}`;
  for (let i = 0; i < msFiles - half; i++) v2[`sub${i % 5}/w-${i}.bin`] = `ms v2 ${i}`;
  await buildMsLegacyRepo(root, 'qwen/Qwen2.5-mini', legacy);
  await buildMsSnapshotRepo(root, 'qwen/Qwen3-mini', 'master', v2);
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const median = s[Math.floor(s.length / 2)] ?? 0;
  return `min ${s[0]?.toFixed(0)} ms, median ${median.toFixed(0)} ms, max ${s[s.length - 1]?.toFixed(0)} ms`;
}

async function main(): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'hubcache-bench-scan-'));
  try {
    const t0 = performance.now();
    await buildCache(root);
    console.log(`built a cache of ${totalFiles} files in ${((performance.now() - t0) / 1000).toFixed(1)} s at ${root}`);
    const times: number[] = [];
    let last: Awaited<ReturnType<typeof scan>> | undefined;
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      last = await scan({ hf: root, modelscope: root });
      times.push(performance.now() - t);
    }
    const files = last!.repos.reduce((n, r) => n + r.revisions.reduce((m, v) => m + v.files.length, 0), 0);
    console.log(`scan: ${last!.repos.length} repos, ${files} files, ${last!.warnings.length} warnings`);
    console.log(`scan of ${files} files (${runs} runs): first ${times[0]?.toFixed(0)} ms; ${stats(times)}`);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

await main();
