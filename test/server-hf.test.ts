// `hubcache serve`, HF face, on the wire: resolve headers and ranges, the JSON routes, xet
// stripping, Link rewriting, error mapping, and odd repo ids — against the test hub as upstream.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generatedContent, startTestHub, type TestHub } from './fixtures/test-hub.js';
import { raw, startMirror, type TestMirror } from './fixtures/mirror.js';

const MODEL = { size: 3 * 1024 * 1024 + 17, seed: 7 };
const modelBytes = generatedContent(MODEL.size, MODEL.seed).toBuffer();

describe('serve: HF face on the wire', () => {
  let hub: TestHub;
  let m: TestMirror;
  let commit: string;

  before(async () => {
    hub = await startTestHub({ pageSize: 2, xet: true });
    commit = hub.hf
      .createRepo('org/model')
      .commit({ 'config.json': '{"a":1}', 'model.safetensors': MODEL, 'sub/b.txt': 'b', 'sub/c.txt': 'c' });
    hub.hf.createRepo('gpt2').commit({ 'config.json': '{"n":2}' });
    hub.hf.createRepo('org/data', { type: 'dataset' }).commit({ 'train.csv': 'a,b\n1,2\n' });
    hub.hf.createRepo('org/app', { type: 'space' }).commit({ 'app.py': 'print(1)\n' });
    hub.tokens.add('hf_user', { name: 'alice' });
    m = await startMirror([hub.hfEndpoint]);
  });
  after(async () => {
    await m.close();
    await hub.close();
  });

  test('HEAD resolve of an LFS file: 200 with the headers huggingface_hub reads, no Xet header', async () => {
    const r = await raw(`${m.url}/org/model/resolve/main/model.safetensors`, {
      method: 'HEAD',
      headers: { 'accept-encoding': 'identity' },
    });
    const sha = generatedContent(MODEL.size, MODEL.seed).sha256();
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-repo-commit'], commit);
    assert.equal(r.headers.etag, `"${sha}"`);
    assert.equal(r.headers['x-linked-etag'], `"${sha}"`);
    assert.equal(r.headers['x-linked-size'], String(MODEL.size));
    assert.equal(r.headers['content-length'], String(MODEL.size));
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.equal(r.body.length, 0);
    for (const h of Object.keys(r.headers)) assert.doesNotMatch(h, /xet/i, `header ${h} leaked`);
    assert.equal(r.headers.link, undefined);
  });

  test('GET resolve: the body; Range a-b, a-, -n answer 206 with Content-Range; beyond the end 416', async () => {
    const url = `${m.url}/org/model/resolve/main/model.safetensors`;
    const full = await raw(url);
    assert.equal(full.status, 200);
    assert.ok(full.body.equals(modelBytes));
    const cases: Array<[string, number, number]> = [
      ['bytes=0-0', 0, 1],
      ['bytes=100-1099', 100, 1100],
      [`bytes=${MODEL.size - 10}-`, MODEL.size - 10, MODEL.size],
      ['bytes=-5', MODEL.size - 5, MODEL.size],
      [`bytes=10-${MODEL.size + 100}`, 10, MODEL.size],
    ];
    for (const [range, a, b] of cases) {
      const r = await raw(url, { headers: { range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${a}-${b - 1}/${MODEL.size}`, range);
      assert.equal(r.headers['content-length'], String(b - a), range);
      assert.ok(r.body.equals(modelBytes.subarray(a, b)), range);
    }
    // @huggingface/hub's file info probe: a normal 206, not Xet JSON.
    const probe = await raw(url, { headers: { range: 'bytes=0-0', accept: 'application/vnd.xet-fileinfo+json' } });
    assert.equal(probe.status, 206);
    assert.equal(probe.headers['content-range'], `bytes 0-0/${MODEL.size}`);
    assert.match(String(probe.headers['content-type']), /octet-stream/);
    const bad = await raw(url, { headers: { range: `bytes=${MODEL.size}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${MODEL.size}`);
  });

  test('a git file: ETag is the git blob sha1, as upstream; by full commit too', async () => {
    const up = await raw(`${hub.hfEndpoint}/org/model/resolve/main/config.json`, { method: 'HEAD' });
    const r = await raw(`${m.url}/org/model/resolve/${commit}/config.json`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.etag, up.headers.etag);
    assert.equal(r.body.toString(), '{"a":1}');
  });

  test('repo ids without org, datasets and spaces', async () => {
    assert.equal((await raw(`${m.url}/gpt2/resolve/main/config.json`)).body.toString(), '{"n":2}');
    assert.equal((await raw(`${m.url}/datasets/org/data/resolve/main/train.csv`)).body.toString(), 'a,b\n1,2\n');
    assert.equal((await raw(`${m.url}/spaces/org/app/resolve/main/app.py`)).body.toString(), 'print(1)\n');
    const info = await raw(`${m.url}/api/models/gpt2/revision/main`);
    assert.equal(info.status, 200);
    assert.equal((JSON.parse(info.body.toString()) as { id: string }).id, 'gpt2');
    const ds = await raw(`${m.url}/api/datasets/org/data/tree/main?recursive=true`);
    assert.deepEqual(
      (JSON.parse(ds.body.toString()) as Array<{ path: string }>).map((e) => e.path),
      ['train.csv'],
    );
  });

  test('revision JSON: upstream answer with sha = commit', async () => {
    const r = await raw(`${m.url}/api/models/org/model/revision/main?expand=sha&expand=siblings`);
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body.toString()) as { sha: string }).sha, commit);
    const info = await raw(`${m.url}/api/models/org/model`);
    assert.equal((JSON.parse(info.body.toString()) as { sha: string }).sha, commit);
  });

  test('tree: xetHash removed from every entry, Link pagination pointing at the mirror and followable', async () => {
    const direct = await raw(`${hub.hfEndpoint}/api/models/org/model/tree/main?recursive=true`);
    assert.match(direct.body.toString(), /xetHash/, 'the test hub sends xetHash');
    let url: string | undefined = `${m.url}/api/models/org/model/tree/${commit}?recursive=true&expand=false`;
    const paths: string[] = [];
    let pages = 0;
    while (url) {
      const r = await raw(url);
      assert.equal(r.status, 200);
      assert.doesNotMatch(r.body.toString(), /xetHash/);
      for (const e of JSON.parse(r.body.toString()) as Array<{ path: string }>) paths.push(e.path);
      const link = r.headers.link as string | undefined;
      const next = link ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : undefined;
      if (next) assert.ok(next.startsWith(`${m.url}/`), `Link escapes the mirror: ${next}`);
      url = next;
      pages++;
    }
    assert.ok(pages >= 3, `paginated (${pages} pages)`);
    assert.deepEqual(paths.sort(), ['config.json', 'model.safetensors', 'sub', 'sub/b.txt', 'sub/c.txt']);
  });

  test('paths-info, form (huggingface_hub) and JSON (@huggingface/hub), xetHash removed', async () => {
    const form = await raw(`${m.url}/api/models/org/model/paths-info/${commit}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'paths=model.safetensors&paths=config.json&expand=false',
    });
    assert.equal(form.status, 200);
    const entries = JSON.parse(form.body.toString()) as Array<{ path: string; lfs?: unknown; xetHash?: unknown }>;
    assert.deepEqual(entries.map((e) => e.path).sort(), ['config.json', 'model.safetensors']);
    assert.ok(entries.every((e) => e.xetHash === undefined));
    const json = await raw(`${m.url}/api/models/org/model/paths-info/main`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ paths: ['model.safetensors'], expand: true }),
    });
    const j = JSON.parse(json.body.toString()) as Array<{ path: string; lastCommit?: unknown; xetHash?: unknown }>;
    assert.equal(j.length, 1);
    assert.ok(j[0]?.lastCommit, 'expand passed on');
    assert.equal(j[0]?.xetHash, undefined);
  });

  test('refs pass through; whoami-v2 with the caller token only; xet-read-token 404; other /api 501 JSON', async () => {
    const refs = await raw(`${m.url}/api/models/org/model/refs`);
    assert.equal(
      (JSON.parse(refs.body.toString()) as { branches: Array<{ targetCommit: string }> }).branches[0]?.targetCommit,
      commit,
    );
    const me = await raw(`${m.url}/api/whoami-v2`, { headers: { authorization: 'Bearer hf_user' } });
    assert.equal(me.status, 200);
    assert.equal((JSON.parse(me.body.toString()) as { name: string }).name, 'alice');
    const anon = await raw(`${m.url}/api/whoami-v2`);
    assert.equal(anon.status, 401, 'not served from the previous caller');
    const xet = await raw(`${m.url}/api/models/org/model/xet-read-token/${commit}`);
    assert.equal(xet.status, 404);
    const search = await raw(`${m.url}/api/models?search=bert`);
    assert.equal(search.status, 501);
    assert.equal(search.headers['x-error-code'], 'MirrorUnsupported');
    assert.match((JSON.parse(search.body.toString()) as { error: string }).error, /does not serve/);
  });

  test("errors keep upstream's status and X-Error-Code", async () => {
    const missingRepo = await raw(`${m.url}/org/nope/resolve/main/x.bin`, { method: 'HEAD' });
    assert.equal(missingRepo.status, 401);
    assert.equal(missingRepo.headers['x-error-code'], 'RepoNotFound');
    const missingFile = await raw(`${m.url}/org/model/resolve/main/nope.bin`);
    assert.equal(missingFile.status, 404);
    assert.equal(missingFile.headers['x-error-code'], 'EntryNotFound');
    const missingRev = await raw(`${m.url}/org/model/resolve/nobranch/config.json`, { method: 'HEAD' });
    assert.equal(missingRev.status, 404);
    assert.equal(missingRev.headers['x-error-code'], 'RevisionNotFound');
    const apiRev = await raw(`${m.url}/api/models/org/model/revision/nobranch`);
    assert.equal(apiRev.status, 404);
    assert.equal(apiRev.headers['x-error-code'], 'RevisionNotFound');
  });

  test('hostile paths and repo ids are refused before anything reaches upstream or the disk', async () => {
    hub.resetRequests();
    for (const p of [
      '/org/model/resolve/main/..%2F..%2Fetc%2Fpasswd',
      '/org/model/resolve/main/a/%2E%2E/b',
      '/org/model/resolve/main/a%5Cb',
    ]) {
      const r = await raw(`${m.url}${p}`);
      assert.equal(r.status, 400, p);
      assert.equal(r.headers['x-error-code'], 'MirrorUnsafePath', p);
    }
    const badId = await raw(`${m.url}/api/models/..%2F..%2Fx/revision/main`);
    assert.equal(badId.status, 404);
    assert.equal(hub.countRequests(), 0);
  });
});

/** An upstream answering every resolve HEAD with `headers` (for answers the test hub never gives). */
async function fakeUpstream(headers: Record<string, string>): Promise<{ url: string; close: () => Promise<void> }> {
  const srv = http.createServer((req, res) => {
    res.writeHead(req.url?.includes('/resolve/') ? 302 : 404, { location: 'https://cdn.example/x', ...headers });
    res.end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

describe('serve: odd upstream answers', () => {
  const commit = 'c'.repeat(40);

  test('a file over 50 GB is flagged (log + large-file event), headers still served', async () => {
    const up = await fakeUpstream({
      'x-repo-commit': commit,
      'x-linked-etag': `"${'d'.repeat(64)}"`,
      'x-linked-size': '60000000000',
    });
    const m = await startMirror([up.url]);
    try {
      const flagged: Array<{ path: string; size: number }> = [];
      m.mirror.services.events.on('large-file', (e) => flagged.push(e));
      const r = await raw(`${m.url}/org/huge/resolve/main/w.gguf`, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-linked-size'], '60000000000');
      assert.deepEqual(flagged, [{ repo: 'model/org/huge', path: 'w.gguf', size: 60_000_000_000 }]);
    } finally {
      await m.close();
      await up.close();
    }
  });

  test('a hostile etag from upstream (a path, not a hash) is refused with 502, nothing written', async () => {
    const up = await fakeUpstream({
      'x-repo-commit': commit,
      'x-linked-etag': '"../../../../tmp/pwned"',
      'x-linked-size': '5',
    });
    const m = await startMirror([up.url]);
    try {
      const r = await raw(`${m.url}/org/evil/resolve/main/w.bin`);
      assert.equal(r.status, 502);
      assert.match(r.body.toString(), /lacks X-Repo-Commit, ETag or size/);
      await assert.rejects(fs.stat(path.join(m.cacheDir, 'models--org--evil', 'blobs')));
    } finally {
      await m.close();
      await up.close();
    }
  });
});

describe('serve: renamed repos', () => {
  test("upstream's relative redirect for a renamed repo is followed; the old name keeps working", async () => {
    const hub = await startTestHub();
    const repo = hub.hf.createRepo('org/old');
    const c = repo.commit({ 'config.json': '{"r":1}' });
    repo.renameTo('org/new');
    const m = await startMirror([hub.hfEndpoint]);
    try {
      const r = await raw(`${m.url}/org/old/resolve/main/config.json`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-repo-commit'], c);
      assert.equal(r.body.toString(), '{"r":1}');
    } finally {
      await m.close();
      await hub.close();
    }
  });
});
