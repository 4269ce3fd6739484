// `download --local-dir D --link-mode ...`: files already in the cache are materialised without a
// second copy where the file system allows (hardlink → same inode, copy → own inode, symlink →
// a link into the cache's blobs, auto → reflink or hard link here), with the bytes saved reported;
// a later upstream change replaces the local file without touching the cached blob.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PlannedFile } from '../src/download/types.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { materializeFile } from '../src/layouts/link-mode.js';
import { blobOf } from './fixtures/care-cache.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { runCli, tempDir } from './helpers.js';

interface DownloadJson {
  path: string;
  savedBytes?: number;
  files: PlannedFile[];
}

describe('download --local-dir --link-mode', () => {
  let hub: TestHub;
  let cache: string;
  let snapshot: string;
  const SIZE = 150_000;

  before(async () => {
    hub = await startTestHub();
    hub.hf.createRepo('org/m').commit({ 'config.json': '{"v":1}', 'model.safetensors': { size: SIZE, seed: 5 } });
    cache = await tempDir();
    const r = await runCli(['download', 'org/m'], env());
    assert.equal(r.code, 0, r.stderr);
    snapshot = r.stdout.trim();
  });
  after(async () => hub.close());

  function env(): Record<string, string> {
    return { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.hfEndpoint };
  }
  async function toLocalDir(mode?: string): Promise<{ dir: string; out: DownloadJson }> {
    const dir = path.join(await tempDir('hubcache-local-'), 'm');
    const r = await runCli(
      ['download', 'org/m', '--local-dir', dir, '--json', ...(mode ? ['--link-mode', mode] : [])],
      env(),
    );
    assert.equal(r.code, 0, r.stderr);
    return { dir, out: JSON.parse(r.stdout) as DownloadJson };
  }
  const blob = (): Promise<string> => blobOf(path.join(snapshot, 'model.safetensors'));
  const total = SIZE + '{"v":1}'.length;

  test('hardlink: same inode as the cached blob, every byte saved; a re-run finds the files current', async () => {
    const { dir, out } = await toLocalDir('hardlink');
    const st = await fs.stat(path.join(dir, 'model.safetensors'));
    assert.equal(st.ino, (await fs.stat(await blob())).ino);
    assert.deepEqual(out.files.map((f) => [f.path, f.status, f.linkMethod]).sort(), [
      ['config.json', 'copied', 'hardlink'],
      ['model.safetensors', 'copied', 'hardlink'],
    ]);
    assert.equal(out.savedBytes, total);
    const again = await runCli(['download', 'org/m', '--local-dir', dir, '--json', '--link-mode', 'hardlink'], env());
    assert.equal(again.code, 0, again.stderr);
    assert.ok((JSON.parse(again.stdout) as DownloadJson).files.every((f) => f.status === 'cached'));
  });

  test('copy (the default): an inode of its own, nothing saved', async () => {
    for (const mode of [undefined, 'copy']) {
      const { dir, out } = await toLocalDir(mode);
      const local = path.join(dir, 'model.safetensors');
      assert.notEqual((await fs.stat(local)).ino, (await fs.stat(await blob())).ino);
      assert.deepEqual(await fs.readFile(local), await fs.readFile(await blob()));
      assert.equal(out.savedBytes, 0);
      assert.ok(out.files.every((f) => f.linkMethod === 'copy'));
    }
  });

  test('symlink: a link into the cache', async () => {
    const { dir, out } = await toLocalDir('symlink');
    const local = path.join(dir, 'model.safetensors');
    assert.ok((await fs.lstat(local)).isSymbolicLink());
    assert.equal(await fs.readlink(local), await blob());
    assert.ok((await fs.realpath(local)).startsWith(path.join(cache, 'models--org--m', 'blobs')));
    assert.equal(out.savedBytes, total);
  });

  test('auto: a reflink where the file system clones, else a hard link', async () => {
    const { dir, out } = await toLocalDir('auto');
    const methods = new Set(out.files.map((f) => f.linkMethod));
    assert.equal(methods.size, 1);
    const method = [...methods][0];
    assert.ok(method === 'reflink' || method === 'hardlink', String(method));
    const sameInode = (await fs.stat(path.join(dir, 'model.safetensors'))).ino === (await fs.stat(await blob())).ino;
    assert.equal(sameInode, method === 'hardlink');
    assert.equal(out.savedBytes, total);
  });

  test('reflink: a clone, or a clear usage error where the file system cannot clone', async () => {
    const dir = await tempDir('hubcache-local-');
    try {
      const r = await materializeFile(path.join(snapshot, 'model.safetensors'), path.join(dir, 'w'), 'reflink');
      assert.deepEqual(r, { method: 'reflink', savedBytes: SIZE });
    } catch (err) {
      assert.ok(err instanceof UsageError, String(err));
      assert.match(err.message, /cannot make reflinks/);
      assert.match(err.hint ?? '', /--link-mode auto/);
      assert.deepEqual(await fs.readdir(dir), [], 'no temp file left behind');
    }
    const cli = await runCli(['download', 'org/m', '--local-dir', path.join(dir, 'x'), '--link-mode', 'bogus'], env());
    assert.equal(cli.code, ExitCode.usage);
    const noDir = await runCli(['download', 'org/m', '--link-mode', 'hardlink'], env());
    assert.equal(noDir.code, ExitCode.usage);
    assert.match(noDir.stderr, /--link-mode needs --local-dir/);
  });

  test('an upstream change replaces a hard-linked local file without touching the cached blob', async () => {
    const r = hub.hf.createRepo('org/n');
    const first = r.commit({ 'config.json': '{"a":1}' });
    const e = env();
    assert.equal((await runCli(['download', 'org/n'], e)).code, 0);
    const dir = path.join(await tempDir('hubcache-local-'), 'n');
    assert.equal((await runCli(['download', 'org/n', '--local-dir', dir, '--link-mode', 'hardlink'], e)).code, 0);
    const oldBlob = await blobOf(path.join(cache, 'models--org--n', 'snapshots', first, 'config.json'));
    r.commit({ 'config.json': '{"a":2}' }); // same size
    const again = await runCli(['download', 'org/n', '--local-dir', dir, '--link-mode', 'hardlink'], e);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await fs.readFile(path.join(dir, 'config.json'), 'utf8'), '{"a":2}');
    assert.equal(await fs.readFile(oldBlob, 'utf8'), '{"a":1}');
  });
});
