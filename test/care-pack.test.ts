// `hubcache pack` / `unpack` against caches filled from the test hub: pack → unpack into an empty
// cache → `download --offline` works for both hubs (byte-identical layout: blob links, refs,
// tree listing, .msc); merging keeps existing refs unless --update-refs; hostile archives (../,
// absolute path, a symlink escaping its repo) and a corrupted byte are refused with nothing written.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { UnpackReport } from '../src/care/unpack.js';
import { ExitCode } from '../src/errors.js';
import { decodeMsc } from '../src/layouts/pickle.js';
import { readTar, TarWriter } from '../src/util/tar.js';
import { sha256 } from './fixtures/care-cache.js';
import { startTestHub, type TestHub } from './fixtures/test-hub.js';
import { listTree, runCli, tempDir } from './helpers.js';

describe('care: pack / unpack', () => {
  let hub: TestHub;
  let c1: string;
  let c2: string;
  let source: string;
  let bundle: string;
  const weights = { size: 120_000, seed: 11 };

  const env = (root: string): Record<string, string> => ({ HF_HUB_CACHE: root, MODELSCOPE_CACHE: root, HF_ENDPOINT: hub.hfEndpoint, MODELSCOPE_ENDPOINT: hub.msEndpoint });

  before(async () => {
    hub = await startTestHub();
    const repo = hub.hf.createRepo('org/model');
    c1 = repo.commit({ 'config.json': '{"v":1}', 'model.safetensors': weights, 'tok/vocab.txt': 'a b c' });
    repo.tag('v1', c1);
    c2 = repo.commit({ 'config.json': '{"v":2}' });
    hub.ms.createRepo('org/ms.model').commit({ 'configuration.json': '{"ms":1}', 'pytorch_model.bin': { size: 40_000, seed: 12 } });
    source = await tempDir();
    for (const args of [['download', 'org/model', '--revision', 'v1'], ['download', 'org/model'], ['download', 'modelscope:org/ms.model']]) {
      const r = await runCli(args, env(source));
      assert.equal(r.code, 0, r.stderr);
    }
    bundle = path.join(await tempDir('hubcache-bundle-'), 'models.tar');
    const p = await runCli(['pack', 'org/model', 'modelscope:org/ms.model', '-o', bundle], env(source));
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stdout.trim(), bundle);
  });
  after(async () => hub.close());

  test('the archive is a plain tar (GNU tar lists it) with the layout and a manifest last', async () => {
    const names = execFileSync('tar', ['-tf', bundle]).toString().trim().split('\n');
    assert.equal(names.at(-1), 'hubcache-pack.json');
    assert.ok(names.includes(`hf/models--org--model/snapshots/${c1}/tok/vocab.txt`));
    assert.ok(names.includes(`hf/models--org--model/refs/main`) && names.includes('hf/models--org--model/refs/v1'));
    assert.ok(names.includes(`hf/models--org--model/trees/${c2}.json`));
    assert.ok(names.includes('ms/models/org/ms___model/.msc') && names.includes('ms/models/org/ms___model/pytorch_model.bin'));
    const verbose = execFileSync('tar', ['-tvf', bundle]).toString();
    assert.match(verbose, new RegExp(`hf/models--org--model/snapshots/${c1}/tok/vocab\\.txt -> \\.\\./\\.\\./\\.\\./blobs/[0-9a-f]{40}`));
  });

  test('tar format: long names (ustar prefix, pax), long link targets read back by GNU tar, Python and readTar', async () => {
    const file = path.join(await tempDir('hubcache-bundle-'), 'names.tar');
    const mid = `${'d'.repeat(120)}/${'f'.repeat(90)}.bin`; // > 100 bytes: ustar prefix + name
    const long = `${'e/'.repeat(150)}weights.safetensors`; // > 255 bytes: pax path
    const target = `${'../'.repeat(40)}blobs/x`; // > 100 bytes: pax linkpath
    const fh = await fs.open(file, 'w');
    const tar = new TarWriter(fh);
    await tar.addBuffer(mid, Buffer.from('mid'), Date.now());
    await tar.addBuffer(long, Buffer.from('long'), Date.now());
    await tar.addSymlink('link', target, Date.now());
    await tar.finish();
    await fh.close();
    assert.deepEqual(execFileSync('tar', ['-tf', file]).toString().trim().split('\n'), [mid, long, 'link']);
    const py = execFileSync('python3', ['-c', 'import tarfile,sys,json; t=tarfile.open(sys.argv[1]); print(json.dumps([[m.name, m.size, m.linkname] for m in t]))', file]).toString();
    assert.deepEqual(JSON.parse(py), [[mid, 3, ''], [long, 4, ''], ['link', 0, target]]);
    const back: Array<[string, string, string]> = [];
    for await (const e of readTar(createReadStream(file))) {
      const parts: Buffer[] = [];
      for await (const c of e.body) parts.push(c);
      back.push([e.name, Buffer.concat(parts).toString(), e.linkName ?? '']);
    }
    assert.deepEqual(back, [[mid, 'mid', ''], [long, 'long', ''], ['link', '', target]]);
  });

  test('unpack into an empty cache, then download --offline works for both hubs, byte for byte', async () => {
    const target = await tempDir();
    const before = hub.requests.length;
    const r = await runCli(['unpack', bundle, '--json'], env(target));
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as UnpackReport;
    assert.equal(rep.kept, 0);
    assert.deepEqual(rep.refs.map((x) => `${x.ref}:${x.action}`).sort(), ['main:created', 'v1:created']);
    const content = (files: string[]): string[] => files.filter((p) => !p.startsWith('.locks/') && !p.startsWith('.lock/'));
    assert.deepEqual(content(await listTree(target)), content(await listTree(source)));
    const repoDir = path.join(target, 'models--org--model');
    assert.equal(await fs.readFile(path.join(repoDir, 'refs', 'main'), 'utf8'), c2);
    const link = path.join(repoDir, 'snapshots', c1, 'tok', 'vocab.txt');
    assert.match(await fs.readlink(link), /^\.\.\/\.\.\/\.\.\/blobs\/[0-9a-f]{40}$/);
    for (const rev of ['main', 'v1']) {
      const d = await runCli(['download', 'org/model', '--revision', rev, '--offline', '--json'], env(target));
      assert.equal(d.code, 0, d.stderr);
      const out = JSON.parse(d.stdout) as { path: string; files: Array<{ status: string }> };
      assert.ok(out.files.every((f) => f.status === 'cached'));
      assert.equal(await fs.readFile(path.join(out.path, 'config.json'), 'utf8'), rev === 'main' ? '{"v":2}' : '{"v":1}');
    }
    const ms = await runCli(['download', 'modelscope:org/ms.model', '--offline'], env(target));
    assert.equal(ms.code, 0, ms.stderr);
    const msDir = ms.stdout.trim();
    assert.equal(sha256(await fs.readFile(path.join(msDir, 'pytorch_model.bin'))), sha256(await fs.readFile(path.join(source, 'models', 'org', 'ms___model', 'pytorch_model.bin'))));
    // .msc order is append order, which parallel downloads do not fix; the SDK ignores it.
    const byPath = (b: Buffer) => decodeMsc(b).sort((x, y) => x.Path.localeCompare(y.Path));
    assert.deepEqual(byPath(await fs.readFile(path.join(msDir, '.msc'))), byPath(await fs.readFile(path.join(source, 'models', 'org', 'ms___model', '.msc'))));
    assert.equal(hub.requests.length, before, 'no request at all');
    // The cache's own verifier agrees (HF blobs by name).
    const v = await runCli(['verify', 'org/model', '--offline'], env(target));
    assert.equal(v.code, 0, v.stderr);
  });

  test('merging: existing blobs and refs are kept; --update-refs moves refs', async () => {
    const target = await tempDir();
    assert.equal((await runCli(['download', 'org/model', '--revision', 'v1'], env(target))).code, 0);
    await fs.writeFile(path.join(target, 'models--org--model', 'refs', 'main'), c1); // an older main
    const r = await runCli(['unpack', bundle, '--json'], env(target));
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as UnpackReport;
    assert.ok(rep.kept >= 3, `kept ${rep.kept}`);
    assert.deepEqual(rep.refs.find((x) => x.ref === 'main'), { repo: 'org/model', ref: 'main', commit: c2, previous: c1, action: 'kept' });
    assert.equal(rep.conflicts.length, 1);
    assert.equal(await fs.readFile(path.join(target, 'models--org--model', 'refs', 'main'), 'utf8'), c1);
    const again = await runCli(['unpack', bundle, '--update-refs', '--json'], env(target));
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as UnpackReport).added, 0);
    assert.equal(await fs.readFile(path.join(target, 'models--org--model', 'refs', 'main'), 'utf8'), c2);
  });

  async function hostile(build: (tar: TarWriter) => Promise<void>): Promise<string> {
    const file = path.join(await tempDir('hubcache-bundle-'), 'hostile.tar');
    const fh = await fs.open(file, 'w');
    const tar = new TarWriter(fh);
    // A legitimate member first: it must not survive the refusal either.
    const blob = Buffer.from('hello');
    await tar.addBuffer(`hf/models--org--x/blobs/${sha256(blob)}`, blob, Date.now());
    await build(tar);
    await tar.finish();
    await fh.close();
    return file;
  }

  for (const [label, build] of [
    ['a ../ member name', (t: TarWriter) => t.addBuffer('hf/models--org--x/../../evil.txt', Buffer.from('x'), Date.now())],
    ['an absolute member name', (t: TarWriter) => t.addBuffer('/tmp/hubcache-evil.txt', Buffer.from('x'), Date.now())],
    ['a symlink escaping the repo', (t: TarWriter) => t.addSymlink(`hf/models--org--x/snapshots/${'a'.repeat(40)}/passwd`, '../../../../../../etc/passwd', Date.now())],
    ['a symlink to another repo', (t: TarWriter) => t.addSymlink(`hf/models--org--x/snapshots/${'a'.repeat(40)}/f`, `../../../models--org--y/blobs/${'b'.repeat(64)}`, Date.now())],
    ['a member outside the layouts', (t: TarWriter) => t.addBuffer('etc/cron.d/evil', Buffer.from('x'), Date.now())],
  ] as const) {
    test(`a hostile archive with ${label} is refused, nothing written`, async () => {
      const file = await hostile(build);
      const target = await tempDir();
      const r = await runCli(['unpack', file], env(target));
      assert.equal(r.code, ExitCode.unsafePath, r.stderr);
      assert.match(r.stderr, /Refusing archive member/);
      assert.deepEqual(await fs.readdir(target), []);
      await assert.rejects(fs.access('/tmp/hubcache-evil.txt'));
    });
  }

  test('a corrupted byte: unpack fails naming the member and both hashes, nothing committed', async () => {
    const data = await fs.readFile(bundle);
    const blobName = execFileSync('tar', ['-tf', bundle]).toString().split('\n').find((n) => /blobs\/[0-9a-f]{64}$/.test(n)) as string;
    const expected = path.basename(blobName);
    // The weights' bytes sit after their 512-byte header: find the header by name, flip a byte in the body.
    const header = data.indexOf(Buffer.from(`blobs/${expected}`));
    assert.ok(header > 0);
    const bodyStart = Math.ceil((header + 1) / 512) * 512;
    const damaged = Buffer.from(data);
    damaged[bodyStart + 1000] = (damaged[bodyStart + 1000] as number) ^ 0xff;
    const file = path.join(path.dirname(bundle), 'damaged.tar');
    await fs.writeFile(file, damaged);
    const target = await tempDir();
    const r = await runCli(['unpack', file], env(target));
    assert.equal(r.code, ExitCode.integrity, r.stderr);
    const actual = /got ([0-9a-f]{64})/.exec(r.stderr)?.[1];
    assert.ok(r.stderr.includes(`sha256 mismatch for ${blobName}: expected ${expected}, got `), r.stderr);
    assert.ok(actual && actual !== expected);
    assert.deepEqual(await fs.readdir(target), []);
  });

  test('a truncated archive is refused', async () => {
    const data = await fs.readFile(bundle);
    const file = path.join(path.dirname(bundle), 'truncated.tar');
    await fs.writeFile(file, data.subarray(0, Math.floor(data.length / 2)));
    const target = await tempDir();
    const r = await runCli(['unpack', file], env(target));
    assert.equal(r.code, ExitCode.integrity, r.stderr);
    assert.deepEqual(await fs.readdir(target), []);
  });

  test('--dry-run verifies and reports, writes nothing; pack of an unknown repo is a usage error', async () => {
    const target = await tempDir();
    const r = await runCli(['unpack', bundle, '--dry-run', '--json'], env(target));
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as UnpackReport;
    assert.ok(rep.dryRun && rep.added > 0);
    assert.deepEqual(await fs.readdir(target), []);
    const p = await runCli(['pack', 'org/nope', '-o', path.join(target, 'x.tar')], env(source));
    assert.equal(p.code, ExitCode.usage);
  });
});
