// Lock and install a project's models in-process (what `hubcache lock` + `hubcache install` do).
//
//   HF_ENDPOINT=https://huggingface.co HF_HUB_CACHE=./hub-cache \
//     node --import tsx examples/manifest.ts ./my-project openai-community/gpt2
//
// Creates ./my-project/hubcache.json with that model if there is none, pins it in
// hubcache.lock, downloads exactly what the lock says, and verifies every file's hash.
// In your own project, import from 'hubcache' instead of '../src/index.js'.
import fs from 'node:fs/promises';
import path from 'node:path';
import { addModel, Cache, HubcacheError, initManifest, loadManifest } from '../src/index.js';

const [projectDir = '.', repo = 'openai-community/gpt2'] = process.argv.slice(2);

// Endpoint, token and cache folder from the same variables the Python clients read.
const cache = Cache.fromEnv();
const controller = new AbortController();
process.once('SIGINT', () => controller.abort());

try {
  await fs.mkdir(projectDir, { recursive: true });
  const file = path.join(projectDir, 'hubcache.json');
  if (!(await fs.stat(file).catch(() => undefined))) {
    await initManifest(file);
    await addModel(await loadManifest(file), { repo, alias: 'model', include: ['*.json', '*.safetensors'] });
  }
  const manifest = await loadManifest(file);

  const locked = await cache.lock({ loaded: manifest, signal: controller.signal });
  for (const e of locked.entries) console.error(`lock: ${e.alias} ${e.status} ${e.to ?? ''}`);

  const result = await cache.install({
    loaded: manifest,
    frozen: true, // the lock was just written: it must match
    signal: controller.signal,
    onProgress: (e) => {
      if (e.type === 'plan') console.error(`install: ${e.files.length} files, ${e.downloadBytes} bytes to download`);
      if (e.type === 'verify-done')
        console.error(`verified ${e.files} files (${e.bytes} bytes) in ${e.seconds.toFixed(2)} s`);
    },
  });
  console.error(`downloaded ${result.downloadedBytes} bytes`);
  for (const m of result.models) console.log(`${m.alias}\t${m.path}`);
  console.error(
    `config: ${await cache.modelPath({ loaded: manifest, alias: result.models[0]?.alias ?? 'model', file: 'config.json' })}`,
  );
} catch (err) {
  if (err instanceof HubcacheError) {
    console.error(`${err.name}: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`);
    process.exitCode = err.exitCode;
  } else throw err;
}
