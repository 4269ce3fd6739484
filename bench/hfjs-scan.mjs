// Reference for `hubcache ls`: @huggingface/hub's scanCacheDir, printed like a user would.
//   node bench/hfjs-scan.mjs CACHE_DIR
import { scanCacheDir } from '@huggingface/hub';

const info = await scanCacheDir(process.argv[2]);
for (const r of info.repos) process.stdout.write(`${r.id.name} ${r.size}\n`);
