// Download part of a repo into a cache folder, with progress and Ctrl-C support.
//
//   HF_ENDPOINT=https://huggingface.co node --import tsx examples/download.ts openai-community/gpt2 ./hub-cache
//
// In your own project, import from 'hubcache' instead of '../src/index.js'.
import { Cache, HubcacheError, type ProgressEvent } from '../src/index.js';

const [repo = 'openai-community/gpt2', dir = './hub-cache'] = process.argv.slice(2);

// One folder, laid out like huggingface_hub's cache (Python finds these files too).
const cache = Cache.at(dir, { ...(process.env.HF_ENDPOINT ? { hfEndpoint: process.env.HF_ENDPOINT } : {}) });

const controller = new AbortController();
process.once('SIGINT', () => controller.abort());

let total = 0;
function onProgress(e: ProgressEvent): void {
  if (e.type === 'plan') {
    total = e.downloadBytes;
    console.error(`${e.repo} @ ${e.commit.slice(0, 8)}: ${e.files.length} files, ${e.downloadBytes} bytes to download`);
  } else if (e.type === 'file-done') {
    console.error(`  ${e.status.padEnd(10)} ${e.path} (${e.size} bytes)`);
  } else if (e.type === 'done') {
    console.error(`done: ${e.downloadedBytes}/${total} bytes in ${e.seconds.toFixed(2)} s`);
  }
}

try {
  const result = await cache.download({
    repo,
    include: ['*.json', '*.safetensors', '*.txt'],
    signal: controller.signal,
    onProgress,
  });
  // One file, by name: downloads it if needed, returns its path.
  const config = await cache.file(repo, 'config.json', { signal: controller.signal });
  console.error(`config.json is at ${config}`);
  console.log(result.path);
} catch (err) {
  // Typed errors: RepoNotFoundError, OfflineMissError, IntegrityError, AbortedError...
  if (err instanceof HubcacheError) {
    console.error(`${err.name}: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`);
    process.exitCode = err.exitCode;
  } else throw err;
}
