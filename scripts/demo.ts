// `npm run demo`: starts the bundled test hub on 127.0.0.1, publishes a small model, downloads it
// into a fresh cache with the real CLI, then shows what landed where. Nothing leaves loopback.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { main } from '../src/cli/main.js';
import { startTestHub } from '../test/fixtures/test-hub.js';

async function tree(dir: string, prefix = ''): Promise<string[]> {
  const lines: string[] = [];
  const entries = (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) lines.push(`${prefix}${e.name} -> ${await fs.readlink(p)}`);
    else if (e.isDirectory()) {
      lines.push(`${prefix}${e.name}/`);
      lines.push(...(await tree(p, `${prefix}  `)));
    } else lines.push(`${prefix}${e.name} (${(await fs.stat(p)).size} B)`);
  }
  return lines;
}

const hub = await startTestHub();
try {
  const repo = hub.hf.createRepo('demo-org/tiny-model');
  repo.commit({
    'config.json': JSON.stringify({ architectures: ['TinyModel'], hidden_size: 64 }, null, 2),
    'model.safetensors': { size: 8 * 1024 * 1024, seed: 1 },
    'tokenizer/tokenizer.json': JSON.stringify({ vocab: { a: 0, b: 1 } }),
    'README.md': '# tiny-model\nA demo model served by the hubcache test hub.\n',
  });
  const cache = await fs.mkdtemp(path.join(os.tmpdir(), 'hubcache-demo-'));
  const env = { ...process.env, HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint };
  console.error(`demo hub: ${hub.hfEndpoint}    fresh cache: ${cache}\n`);
  console.error('$ hubcache download demo-org/tiny-model');
  const code = await main(['download', 'demo-org/tiny-model'], { env });
  if (code !== 0) process.exitCode = code;
  console.error('\n$ hubcache download demo-org/tiny-model   # again: served from the cache');
  await main(['download', 'demo-org/tiny-model'], { env });
  const lsCode = await main(['ls'], { env }).catch(() => 2);
  if (lsCode === 2) console.error('(hubcache ls not available)');
  console.error(`\nCache layout (the same as huggingface_hub's, shared with Python):`);
  console.error((await tree(cache)).map((l) => `  ${l}`).join('\n'));
} finally {
  await hub.close();
}
