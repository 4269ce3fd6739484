// Benchmark hub: the test hub in its own process (so serving does not share the measured
// process's event loop), with the benchmark repos. Prints one JSON line with the endpoints.
//   node --import tsx bench/hub-server.ts [--throttle BYTES_PER_SEC] [--big-mib 1024] [--huge-mib 4096]
import { startTestHub } from '../test/fixtures/test-hub.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MiB = 1024 * 1024;
const throttle = arg('--throttle', 0);
const hub = await startTestHub(throttle > 0 ? { throttleBytesPerSec: throttle, gzip: false } : { gzip: false });

hub.hf.createRepo('bench/big').commit({ 'model.safetensors': { size: arg('--big-mib', 1024) * MiB, seed: 42 } });
// The mirror bench's warm small file (bench/mirror.ts): 5 MiB, as in the nginx comparison.
hub.hf.createRepo('bench/five').commit({ 'model.safetensors': { size: 5 * MiB, seed: 44 } });
const huge = arg('--huge-mib', 0);
if (huge > 0) hub.hf.createRepo('bench/huge').commit({ 'model.safetensors': { size: huge * MiB, seed: 43 } });
// 200 small files of 4-64 KiB, like a tokenizer-heavy or config-heavy repo.
const small: Record<string, Uint8Array> = {};
for (let i = 0; i < 200; i++) {
  const size = 4096 + ((i * 7919) % 61440);
  small[`files/part-${String(i).padStart(3, '0')}.json`] = Buffer.alloc(size, i % 251);
}
hub.hf.createRepo('bench/small').commit(small);

process.stdout.write(`${JSON.stringify({ hfEndpoint: hub.hfEndpoint, cdnOrigin: hub.cdnOrigin })}\n`);
const stop = async (): Promise<void> => {
  await hub.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
