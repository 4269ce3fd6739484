// Reference: @huggingface/hub's snapshotDownload, as a user of the JS client would call it.
//   node bench/hfjs-snapshot.mjs REPO CACHE_DIR HUB_URL
import { snapshotDownload } from '@huggingface/hub';

const [repo, cacheDir, hubUrl] = process.argv.slice(2);
await snapshotDownload({ repo, cacheDir, hubUrl });
