// A stream that joins a fill in the moment between the partial being moved into place and the
// fill's commit must read the committed blob, not fail on the partial that is gone.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MirrorEventBus } from '../src/server/events.js';
import { FillManager } from '../src/server/fills.js';
import { tempDir } from './helpers.js';

test('a stream opened after the partial moved, before the commit, gets the committed bytes', async () => {
  const dir = await tempDir('hubcache-fill-commit-');
  const bytes = Buffer.alloc(300_000, 7);
  const partial = path.join(dir, 'blob.incomplete');
  const final = path.join(dir, 'blob');
  let moved!: () => void;
  const movedOnce = new Promise<void>((r) => (moved = r));
  const fills = new FillManager(new MirrorEventBus());
  const fill = fills.join('k', {
    size: bytes.length,
    repo: 'org/x',
    path: 'w.bin',
    upstream: 'http://127.0.0.1:9',
    run: async (onPartial) => {
      await fsp.writeFile(partial, bytes);
      onPartial({ path: partial, bytes: bytes.length });
      await fsp.rename(partial, final); // the download layer commits the file...
      moved();
      await sleep(300); // ...and more bookkeeping (index, refs, an S3 check) runs before run() resolves
      return final;
    },
  });
  await movedOnce;
  assert.equal(fill.finalPath, undefined, 'still in the window');
  const got = await buffer(fill.stream(0, bytes.length));
  assert.ok(got.equals(bytes));
});
