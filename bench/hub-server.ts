// Benchmark hub: the test hub in its own process (so serving does not share the measured
// process's event loop), with the benchmark repos. Prints one JSON line with the endpoints.
//   node --import tsx bench/hub-server.ts [--throttle BYTES_PER_SEC] [--sizes 64,256] [--small] [--five]
// Repo `bench/m<MiB>` holds one `model.safetensors` of that many MiB per entry of --sizes;
// `bench/small` (with --small) 200 files of 4-64 KiB. On stdin, the line `bytes` answers with
// the body bytes sent since the previous `bytes` (for the resume row: what had arrived).
import readline from 'node:readline';
import { startTestHub } from '../test/fixtures/test-hub.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const MiB = 1024 * 1024;
const throttle = Number(arg('--throttle') ?? 0);
const hub = await startTestHub(throttle > 0 ? { throttleBytesPerSec: throttle, gzip: false } : { gzip: false });

const sizes = (arg('--sizes') ?? '').split(',').filter(Boolean).map(Number);
for (const mib of sizes)
  hub.hf.createRepo(`bench/m${mib}`).commit({ 'model.safetensors': { size: mib * MiB, seed: mib } });
// The mirror bench's warm small file (bench/mirror.ts): 5 MiB, as in the nginx comparison.
if (process.argv.includes('--five'))
  hub.hf.createRepo('bench/five').commit({ 'model.safetensors': { size: 5 * MiB, seed: 44 } });
if (process.argv.includes('--small')) {
  // 200 small files of 4-64 KiB, like a tokenizer-heavy or config-heavy repo.
  const small: Record<string, Uint8Array> = {};
  for (let i = 0; i < 200; i++) {
    const size = 4096 + ((i * 7919) % 61440);
    small[`files/part-${String(i).padStart(3, '0')}.json`] = Buffer.alloc(size, i % 251);
  }
  hub.hf.createRepo('bench/small').commit(small);
}

process.stdout.write(`${JSON.stringify({ hfEndpoint: hub.hfEndpoint, cdnOrigin: hub.cdnOrigin })}\n`);
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'bytes') return;
  const sent = hub.requests.reduce((a, r) => a + r.bytesSent, 0);
  hub.resetRequests();
  process.stdout.write(`${sent}\n`);
});
const stop = async (): Promise<void> => {
  await hub.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
