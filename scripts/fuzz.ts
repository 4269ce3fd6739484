// Longer fuzzing runs of the targets test/fuzz.test.ts runs briefly: `npm run fuzz -- --seconds 60
// [--seed N] [--target http-head|chunked|pickle|archive]`. Targets take turns until the time is up;
// the first failure stops the run, saves its input under fuzz-failures/ and exits 1.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  archiveFuzzer,
  FUZZ_ARCHIVE,
  FuzzFailure,
  fuzzChunked,
  fuzzHttpHead,
  fuzzPickle,
  Rng,
} from '../test/fixtures/fuzz.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    target: { type: 'string', multiple: true },
  },
});
const seconds = Number(values.seconds);
if (!(seconds > 0)) {
  console.error('usage: npm run fuzz -- --seconds N [--seed N] [--target NAME]...');
  process.exit(2);
}
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const archive = await archiveFuzzer(await fs.readFile(FUZZ_ARCHIVE));
const targets: Record<string, (rng: Rng) => void | Promise<unknown>> = {
  'http-head': fuzzHttpHead,
  chunked: fuzzChunked,
  pickle: fuzzPickle,
  archive: (rng) => archive.run(rng),
};
const chosen = values.target?.length ? values.target : Object.keys(targets);
for (const t of chosen) {
  if (!targets[t]) {
    console.error(`unknown target ${t}; targets: ${Object.keys(targets).join(', ')}`);
    process.exit(2);
  }
}

console.log(`fuzzing ${chosen.join(', ')} for ${seconds} s, seed ${seed}`);
const deadline = Date.now() + seconds * 1000;
// Each target spends about the same wall time: the fast parsers run in batches, the archive one by one.
const batch: Record<string, number> = { 'http-head': 500, chunked: 500, pickle: 500, archive: 5 };
const counts = Object.fromEntries(chosen.map((t) => [t, 0]));
let code = 0;
try {
  for (let round = 0; Date.now() < deadline; round++) {
    for (const name of chosen) {
      // One generator per target and round, so a failure names the (seed, round) that reproduces it.
      const rng = new Rng(seed + round * 7919 + chosen.indexOf(name));
      for (let i = 0; i < (batch[name] ?? 1); i++) {
        try {
          await targets[name]?.(rng);
        } catch (err) {
          const input = err instanceof FuzzFailure ? err.input : Buffer.alloc(0);
          const dir = path.resolve('fuzz-failures');
          await fs.mkdir(dir, { recursive: true });
          const file = path.join(dir, `${name}-seed${seed}-round${round}.bin`);
          await fs.writeFile(file, input);
          console.error(`FAIL ${name} (seed ${seed}, round ${round}, case ${i}): ${(err as Error).message}`);
          console.error(`input saved to ${file}`);
          throw err;
        }
        counts[name] = (counts[name] ?? 0) + 1;
      }
    }
  }
} catch {
  code = 1;
} finally {
  await archive.close();
}
console.log(
  Object.entries(counts)
    .map(([t, n]) => `${t}: ${n} inputs`)
    .join(', '),
);
process.exit(code);
