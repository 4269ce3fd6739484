// `hubcache pack` / `unpack` against caches filled from the test hub: pack → unpack into an empty
// cache → `download --offline` works for both hubs (byte-identical layout: blob links, refs,
// tree listing, .msc); merging keeps existing refs unless --update-refs; hostile archives (../,
// absolute path, links and devices, duplicates, hostile tree listings) and a corrupted byte are
// refused with nothing written; an archive made by the old hand-written tar writer still unpacks.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { UnpackReport } from '../src/care/unpack.js';
import { ExitCode } from '../src/errors.js';
import { decodeMsc } from '../src/util/pickle.js';
import { pack as tarPack, type Header } from 'tar-stream';
import { readTarFile, TarFileWriter } from '../src/care/archive-tar.js';
import { createHash } from 'node:crypto';
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

  const env = (root: string): Record<string, string> => ({
    HF_HUB_CACHE: root,
    MODELSCOPE_CACHE: root,
    HF_ENDPOINT: hub.hfEndpoint,
    MODELSCOPE_ENDPOINT: hub.msEndpoint,
  });

  before(async () => {
    hub = await startTestHub();
    const repo = hub.hf.createRepo('org/model');
    c1 = repo.commit({ 'config.json': '{"v":1}', 'model.safetensors': weights, 'tok/vocab.txt': 'a b c' });
    repo.tag('v1', c1);
    c2 = repo.commit({ 'config.json': '{"v":2}' });
    hub.ms
      .createRepo('org/ms.model')
      .commit({ 'configuration.json': '{"ms":1}', 'pytorch_model.bin': { size: 40_000, seed: 12 } });
    source = await tempDir();
    for (const args of [
      ['download', 'org/model', '--revision', 'v1'],
      ['download', 'org/model'],
      ['download', 'modelscope:org/ms.model'],
    ]) {
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
    assert.ok(
      names.includes('ms/models/org/ms___model/.msc') && names.includes('ms/models/org/ms___model/pytorch_model.bin'),
    );
    const verbose = execFileSync('tar', ['-tvf', bundle]).toString();
    assert.match(
      verbose,
      new RegExp(`hf/models--org--model/snapshots/${c1}/tok/vocab\\.txt -> \\.\\./\\.\\./\\.\\./blobs/[0-9a-f]{40}`),
    );
  });

  test('tar format: long and non-ASCII names, long link targets read back by GNU tar, Python and readTarFile', async () => {
    const file = path.join(await tempDir('hubcache-bundle-'), 'names.tar');
    const mid = `${'d'.repeat(120)}/${'f'.repeat(90)}.bin`; // > 100 bytes: ustar prefix + name
    const long = `${'e/'.repeat(150)}weights.safetensors`; // > 255 bytes: pax path
    const utf8 = 'naïve/模型.bin'; // non-ASCII: pax path
    const target = `${'../'.repeat(40)}blobs/x`; // > 100 bytes: pax linkpath
    const fh = await fs.open(file, 'w');
    const tar = new TarFileWriter(fh);
    await tar.addBuffer(mid, Buffer.from('mid'), Date.now());
    await tar.addBuffer(long, Buffer.from('long'), Date.now());
    await tar.addBuffer(utf8, Buffer.from('utf8'), Date.now());
    await tar.addSymlink('link', target, Date.now());
    await tar.finish();
    await fh.close();
    assert.equal(tar.bytes, (await fs.stat(file)).size);
    assert.deepEqual(execFileSync('tar', ['-tf', file]).toString().trim().split('\n'), [mid, long, utf8, 'link']);
    const py = execFileSync('python3', [
      '-c',
      'import tarfile,sys,json; t=tarfile.open(sys.argv[1]); print(json.dumps([[m.name, m.size, m.linkname] for m in t]))',
      file,
    ]).toString();
    assert.deepEqual(JSON.parse(py), [
      [mid, 3, ''],
      [long, 4, ''],
      [utf8, 4, ''],
      ['link', 0, target],
    ]);
    const back: Array<[string, string, string]> = [];
    for await (const e of readTarFile(file)) {
      const parts: Buffer[] = [];
      for await (const c of e.body) parts.push(c);
      back.push([e.name, Buffer.concat(parts).toString(), e.linkName ?? '']);
    }
    assert.deepEqual(back, [
      [mid, 'mid', ''],
      [long, 'long', ''],
      [utf8, 'utf8', ''],
      ['link', '', target],
    ]);
  });

  test('a full disk while packing fails with its ENOSPC (no hang), for a file and for the next entry', async () => {
    const src = path.join(await tempDir('hubcache-bundle-'), 'big.bin');
    await fs.writeFile(src, Buffer.alloc(8 << 20, 1));
    const out = await fs.open('/dev/full', 'w');
    const tar = new TarFileWriter(out);
    const input = await fs.open(src, 'r');
    try {
      const full = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === 'ENOSPC';
      await assert.rejects(
        tar.addFile('big.bin', input, 8 << 20, Date.now(), () => undefined),
        full,
      );
      await assert.rejects(tar.addBuffer('next', Buffer.from('x'), Date.now()), full);
    } finally {
      await input.close();
      await out.close();
    }
  });

  test('an archive written by the hand-written tar writer (before tar-stream) still unpacks', async () => {
    // test/fixtures/pack-v1-before-tar-stream.tar: `hubcache pack` of commit b10e815 (ustar names,
    // a ustar prefix, pax path and linkpath, a UTF-8 name, a tree listing, both ModelScope layouts).
    const fixture = path.join(import.meta.dirname, 'fixtures', 'pack-v1-before-tar-stream.tar');
    const target = await tempDir();
    const r = await runCli(['unpack', fixture, '--json'], env(target));
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as UnpackReport;
    assert.equal(rep.verified, 18);
    const snap = path.join(target, 'models--org--old', 'snapshots');
    const [commit] = await fs.readdir(snap);
    const read = (p: string): Promise<string> => fs.readFile(path.join(snap, commit as string, p), 'utf8');
    assert.equal(await read(`${'d'.repeat(120)}/${'f'.repeat(90)}.txt`), 'mid');
    assert.equal(await read(`${'e/'.repeat(150)}w.txt`), 'long');
    assert.equal(await read('naïve.txt'), 'utf8');
    assert.equal(
      await fs.readFile(path.join(target, 'models', 'org--new', 'snapshots', 'master', 'a.txt'), 'utf8'),
      'v2 layout',
    );
    assert.equal(
      await fs.readFile(path.join(target, 'models', 'org', 'old___ms', 'configuration.json'), 'utf8'),
      '{"ms":1}',
    );
    const v = await runCli(['verify', 'org/old', '--offline'], env(target));
    assert.equal(v.code, 0, v.stderr);
  });

  test('unpack into an empty cache, then download --offline works for both hubs, byte for byte', async () => {
    const target = await tempDir();
    const before = hub.requests.length;
    const r = await runCli(['unpack', bundle, '--json'], env(target));
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as UnpackReport;
    assert.equal(rep.kept, 0);
    assert.deepEqual(rep.refs.map((x) => `${x.ref}:${x.action}`).sort(), ['main:created', 'v1:created']);
    const content = (files: string[]): string[] =>
      files.filter((p) => !p.startsWith('.locks/') && !p.startsWith('.lock/'));
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
      assert.equal(
        await fs.readFile(path.join(out.path, 'config.json'), 'utf8'),
        rev === 'main' ? '{"v":2}' : '{"v":1}',
      );
    }
    const ms = await runCli(['download', 'modelscope:org/ms.model', '--offline'], env(target));
    assert.equal(ms.code, 0, ms.stderr);
    const msDir = ms.stdout.trim();
    assert.equal(
      sha256(await fs.readFile(path.join(msDir, 'pytorch_model.bin'))),
      sha256(await fs.readFile(path.join(source, 'models', 'org', 'ms___model', 'pytorch_model.bin'))),
    );
    // .msc order is append order, which parallel downloads do not fix; the SDK ignores it.
    const byPath = (b: Buffer) => decodeMsc(b).sort((x, y) => x.Path.localeCompare(y.Path));
    assert.deepEqual(
      byPath(await fs.readFile(path.join(msDir, '.msc'))),
      byPath(await fs.readFile(path.join(source, 'models', 'org', 'ms___model', '.msc'))),
    );
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
    assert.deepEqual(
      rep.refs.find((x) => x.ref === 'main'),
      { repo: 'org/model', ref: 'main', commit: c2, previous: c1, action: 'kept' },
    );
    assert.equal(rep.conflicts.length, 1);
    assert.equal(await fs.readFile(path.join(target, 'models--org--model', 'refs', 'main'), 'utf8'), c1);
    const again = await runCli(['unpack', bundle, '--update-refs', '--json'], env(target));
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as UnpackReport).added, 0);
    assert.equal(await fs.readFile(path.join(target, 'models--org--model', 'refs', 'main'), 'utf8'), c2);
  });

  /** Writes raw tar entries with tar-stream itself (any type, any name: what a hostile tool could write). */
  async function writeTar(
    file: string,
    entries: Array<{ header: Partial<Header> & { name: string }; data?: Buffer }>,
  ): Promise<void> {
    const tar = tarPack();
    const done = new Promise<void>((resolve, reject) => {
      const out = createWriteStream(file);
      out.on('finish', resolve).on('error', reject);
      tar.pipe(out);
    });
    for (const e of entries) {
      await new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
        if (e.data) tar.entry(e.header, e.data, cb);
        else tar.entry(e.header, cb);
      });
    }
    tar.finalize();
    await done;
  }

  async function hostile(
    ...members: Array<{ header: Partial<Header> & { name: string }; data?: Buffer }>
  ): Promise<string> {
    const file = path.join(await tempDir('hubcache-bundle-'), 'hostile.tar');
    // A legitimate member first: it must not survive the refusal either.
    const blob = Buffer.from('hello');
    await writeTar(file, [{ header: { name: `hf/models--org--x/blobs/${sha256(blob)}` }, data: blob }, ...members]);
    return file;
  }

  const snapFile = `hf/models--org--x/snapshots/${'a'.repeat(40)}`;
  for (const [label, member] of [
    ['a ../ member name', { header: { name: 'hf/models--org--x/../../evil.txt' }, data: Buffer.from('x') }],
    ['an absolute member name', { header: { name: '/tmp/hubcache-evil.txt' }, data: Buffer.from('x') }],
    [
      'a symlink escaping the repo',
      { header: { name: `${snapFile}/passwd`, type: 'symlink', linkname: '../../../../../../etc/passwd' } },
    ],
    [
      'a symlink to another repo',
      {
        header: { name: `${snapFile}/f`, type: 'symlink', linkname: `../../../models--org--y/blobs/${'b'.repeat(64)}` },
      },
    ],
    ['a member outside the layouts', { header: { name: 'etc/cron.d/evil' }, data: Buffer.from('x') }],
    ['a hard link', { header: { name: `${snapFile}/hard`, type: 'link', linkname: '/etc/passwd' } }],
    ['a character device', { header: { name: `${snapFile}/tty`, type: 'character-device', devmajor: 5, devminor: 0 } }],
    ['a block device', { header: { name: `${snapFile}/sda`, type: 'block-device', devmajor: 8, devminor: 0 } }],
    ['a FIFO', { header: { name: `${snapFile}/fifo`, type: 'fifo' } }],
  ] as const) {
    test(`a hostile archive with ${label} is refused, nothing written`, async () => {
      const file = await hostile(member);
      const target = await tempDir();
      const r = await runCli(['unpack', file], env(target));
      assert.equal(r.code, ExitCode.unsafePath, r.stderr);
      assert.match(r.stderr, /Refusing archive member/);
      assert.deepEqual(await fs.readdir(target), []);
      await assert.rejects(fs.access('/tmp/hubcache-evil.txt'));
    });
  }

  test('a member that appears twice is refused, nothing written', async () => {
    const name = `${snapFile}/config.json`;
    const file = await hostile(
      { header: { name }, data: Buffer.from('one') },
      { header: { name }, data: Buffer.from('two') },
    );
    const target = await tempDir();
    const r = await runCli(['unpack', file], env(target));
    assert.equal(r.code, ExitCode.integrity, r.stderr);
    assert.match(r.stderr, /appears twice/);
    assert.deepEqual(await fs.readdir(target), []);
  });

  /**
   * The real bundle with its tree listing replaced by `listing`, and the manifest updated to
   * match (size and sha256): consistent in every other way, so only the listing check can refuse it.
   */
  async function withTreeListing(listing: unknown): Promise<string> {
    const members: Array<{ header: Partial<Header> & { name: string }; data?: Buffer }> = [];
    const body = Buffer.from(JSON.stringify(listing));
    let treeName = '';
    for await (const e of readTarFile(bundle)) {
      const parts: Buffer[] = [];
      for await (const c of e.body) parts.push(c);
      let data = Buffer.concat(parts);
      if (e.name.includes('/trees/') && !treeName) {
        treeName = e.name;
        data = body;
      }
      if (e.name === 'hubcache-pack.json') {
        const m = JSON.parse(data.toString()) as { entries: Array<{ name: string; size?: number; sha256?: string }> };
        const entry = m.entries.find((x) => x.name === treeName) as { size?: number; sha256?: string };
        entry.size = body.length;
        entry.sha256 = createHash('sha256').update(body).digest('hex');
        data = Buffer.from(JSON.stringify(m));
      }
      members.push(
        e.type === 'symlink'
          ? { header: { name: e.name, type: 'symlink', linkname: e.linkName ?? '' } }
          : { header: { name: e.name }, data },
      );
    }
    const file = path.join(await tempDir('hubcache-bundle-'), 'tree.tar');
    await writeTar(file, members);
    return file;
  }

  const oid = 'c'.repeat(40);
  for (const [label, files] of [
    ['a ../ path', { '../../../evil.txt': { size: 1, blob_id: oid } }],
    ['an absolute path', { '/etc/passwd': { size: 1, blob_id: oid } }],
    ['a ../ blob id', { 'config.json': { size: 1, blob_id: '../../../../etc/passwd' } }],
    ['a non-hex blob id', { 'config.json': { size: 1, blob_id: 'z'.repeat(40) } }],
    ['a negative size', { 'config.json': { size: -5, blob_id: oid } }],
    ['a bad lfs_sha256', { 'w.bin': { size: 1, blob_id: oid, lfs_sha256: '../x', lfs_size: 1 } }],
  ] as const) {
    test(`a tree listing with ${label} is refused like any hostile member, nothing written`, async () => {
      const file = await withTreeListing({ format_version: 1, files });
      const target = await tempDir();
      const r = await runCli(['unpack', file], env(target));
      assert.equal(r.code, ExitCode.unsafePath, r.stderr);
      assert.match(r.stderr, /Refusing archive member "hf\/models--org--model\/trees\/[0-9a-f]{40}\.json"/);
      assert.deepEqual(await fs.readdir(target), []);
    });
  }

  test('a tree listing that is not one (not JSON, wrong format_version) is refused', async () => {
    for (const listing of ['not json', { format_version: 2, files: {} }]) {
      const file = await withTreeListing(listing);
      const r = await runCli(['unpack', file], env(await tempDir()));
      assert.equal(r.code, ExitCode.unsafePath, r.stderr);
    }
  });

  test('a corrupted byte: unpack fails naming the member and both hashes, nothing committed', async () => {
    const data = await fs.readFile(bundle);
    const blobName = execFileSync('tar', ['-tf', bundle])
      .toString()
      .split('\n')
      .find((n) => /blobs\/[0-9a-f]{64}$/.test(n)) as string;
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
