// Pure functions: patterns, repo strings, env precedence, path safety, etags, layout names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fnmatch, fnmatchCacheSize, fnmatchToRegExp, FNMATCH_CACHE_MAX, matchesFilter } from '../src/util/fnmatch.js';
import { parseRepoRef, formatRepoRef } from '../src/hubs/repo-ref.js';
import { hfSettingsFromEnv, modelscopeSettingsFromEnv, envBool } from '../src/config.js';
import { assertSafeRepoPath, safeJoin } from '../src/util/safe-path.js';
import { normalizeEtag, quoteAll, quotePath, parseNextLink } from '../src/hubs/hf.js';
import { repoFolderName, parseRepoFolderName, formatTreeCache, parseTreeCache } from '../src/layouts/hf-cache.js';
import { UnsafePathError, UsageError } from '../src/errors.js';

test('the fnmatch regex cache is capped (least recently used go first)', () => {
  const hot = fnmatchToRegExp('hot/*.bin');
  for (let i = 0; i < FNMATCH_CACHE_MAX * 3; i++) {
    assert.ok(fnmatch(`f${i}.txt`, `f${i}.*`));
    if (i % 100 === 0) assert.equal(fnmatchToRegExp('hot/*.bin'), hot, 'a pattern in use stays compiled');
  }
  assert.equal(fnmatchCacheSize(), FNMATCH_CACHE_MAX);
  assert.equal(fnmatchToRegExp('hot/*.bin'), hot);
  assert.notEqual(fnmatchToRegExp('f0.*'), fnmatchToRegExp('f1.*'));
});

test('fnmatch follows Python fnmatchcase: * crosses /, classes, no braces', () => {
  assert.ok(fnmatch('a/b/c.json', '*.json'));
  assert.ok(fnmatch('data/x/y.json', 'data/*.json'));
  assert.ok(!fnmatch('config.JSON', '*.json'));
  assert.ok(fnmatch('a1', 'a[0-9]'));
  assert.ok(fnmatch('ab', 'a[!0-9]'));
  assert.ok(fnmatch('a[', 'a['));
  assert.ok(!fnmatch('a.json', '{a,b}.json'));
  assert.ok(fnmatch('{a,b}.json', '{a,b}.json'));
  assert.ok(fnmatch('x.bin', '?.bin'));
  assert.ok(fnmatch('a+b(c).txt', 'a+b(c).txt'));
});

test('include/exclude filter like huggingface_hub filter_repo_objects', () => {
  const f = { include: ['*.safetensors', '*.json'], exclude: ['*fp32*'] };
  assert.ok(matchesFilter('model.safetensors', f));
  assert.ok(matchesFilter('sub/config.json', f));
  assert.ok(!matchesFilter('model-fp32.safetensors', f));
  assert.ok(!matchesFilter('README.md', f));
  assert.ok(matchesFilter('unet/x.bin', { include: ['unet/'] }), 'trailing / means everything under');
  assert.ok(matchesFilter('anything', {}));
});

test('repo strings', () => {
  assert.deepEqual(parseRepoRef('org/name'), { hub: 'hf', type: 'model', id: 'org/name' });
  assert.deepEqual(parseRepoRef('hf:org/name@v1.0'), { hub: 'hf', type: 'model', id: 'org/name', revision: 'v1.0' });
  assert.deepEqual(parseRepoRef('modelscope:Qwen/Qwen2.5-7B'), {
    hub: 'modelscope',
    type: 'model',
    id: 'Qwen/Qwen2.5-7B',
  });
  assert.deepEqual(parseRepoRef('datasets/org/ds'), { hub: 'hf', type: 'dataset', id: 'org/ds' });
  assert.deepEqual(parseRepoRef('hf://datasets/org/ds@refs%2Fpr%2F1'), {
    hub: 'hf',
    type: 'dataset',
    id: 'org/ds',
    revision: 'refs/pr/1',
  });
  assert.deepEqual(parseRepoRef('gpt2'), { hub: 'hf', type: 'model', id: 'gpt2' });
  assert.equal(parseRepoRef('org/name', { revision: 'dev' }).revision, 'dev');
  assert.equal(formatRepoRef(parseRepoRef('ms:a/b@v1')), 'modelscope:a/b@v1');
  for (const bad of ['../x', 'a/b/c', 'a--b/c', '', 'foo:a/b', 'a/..', '/abs'])
    assert.throws(() => parseRepoRef(bad), UsageError, bad);
});

test('HF env precedence and parsing', () => {
  const base = { HOME: '/home/u' };
  assert.equal(hfSettingsFromEnv(base).cacheDir, '/home/u/.cache/huggingface/hub');
  assert.equal(hfSettingsFromEnv({ ...base, XDG_CACHE_HOME: '/x' }).cacheDir, '/x/huggingface/hub');
  assert.equal(hfSettingsFromEnv({ ...base, HF_HOME: '~/hf' }).cacheDir, '/home/u/hf/hub');
  assert.equal(hfSettingsFromEnv({ ...base, HF_HOME: '/h', HUGGINGFACE_HUB_CACHE: '/legacy' }).cacheDir, '/legacy');
  assert.equal(
    hfSettingsFromEnv({ ...base, HF_HOME: '/h', HUGGINGFACE_HUB_CACHE: '/legacy', HF_HUB_CACHE: '$HOME/c' }).cacheDir,
    '/home/u/c',
  );
  assert.equal(hfSettingsFromEnv({ ...base, HF_ENDPOINT: 'http://127.0.0.1:9/' }).endpoint, 'http://127.0.0.1:9');
  assert.equal(hfSettingsFromEnv({ ...base, HF_TOKEN: ' hf_abc\n' }).token, 'hf_abc');
  assert.equal(hfSettingsFromEnv({ ...base, HF_HUB_OFFLINE: '1' }).offline, true);
  assert.equal(hfSettingsFromEnv({ ...base, TRANSFORMERS_OFFLINE: 'yes' }).offline, true);
  assert.equal(
    hfSettingsFromEnv({ ...base, HF_HUB_OFFLINE: '0', TRANSFORMERS_OFFLINE: '1' }).offline,
    false,
    'a non-empty HF_HUB_OFFLINE wins',
  );
  assert.ok(envBool('True') && envBool('on') && !envBool('2') && !envBool(''));
  const ms = modelscopeSettingsFromEnv({ ...base, MODELSCOPE_DOMAIN: 'www.modelscope.ai' });
  assert.equal(ms.endpoint, 'https://www.modelscope.ai');
  assert.equal(ms.cacheDir, '/home/u/.cache/modelscope/hub');
  assert.equal(
    modelscopeSettingsFromEnv({ ...base, MODELSCOPE_CACHE: '/m', MODELSCOPE_ENDPOINT: 'http://127.0.0.1:5' }).endpoint,
    'http://127.0.0.1:5',
  );
});

test('unsafe server paths are refused', () => {
  for (const p of ['../evil', 'a/../../b', '/etc/passwd', 'a\\b', 'C:x', 'a\0b', '', 'a//b', './a', 'a/.']) {
    assert.throws(() => assertSafeRepoPath(p), UnsafePathError, JSON.stringify(p));
  }
  assert.equal(assertSafeRepoPath('sub/dir/model.safetensors'), 'sub/dir/model.safetensors');
  assert.equal(assertSafeRepoPath('.gitattributes'), '.gitattributes');
  assert.equal(safeJoin('/root/x', 'a/b'), '/root/x/a/b');
});

test('etags, URL quoting, Link parsing', () => {
  assert.equal(normalizeEtag('W/"abc"'), 'abc');
  assert.equal(normalizeEtag('"abc"'), 'abc');
  assert.equal(quoteAll('refs/pr/1'), 'refs%2Fpr%2F1');
  assert.equal(quoteAll("a!b'c(d)*"), 'a%21b%27c%28d%29%2A');
  assert.equal(quotePath('a b/c#.txt'), 'a%20b/c%23.txt');
  assert.equal(parseNextLink('<https://h/api?cursor=2>; rel="next"', 'https://h/x'), 'https://h/api?cursor=2');
  assert.equal(parseNextLink('<https://h/p>; rel="prev"', 'https://h/x'), undefined);
});

test('repo folder names and tree cache', () => {
  assert.equal(repoFolderName('model', 'openai-community/gpt2'), 'models--openai-community--gpt2');
  assert.equal(repoFolderName('dataset', 'org/ds'), 'datasets--org--ds');
  assert.equal(repoFolderName('model', 'gpt2'), 'models--gpt2');
  assert.deepEqual(parseRepoFolderName('spaces--org--demo'), { type: 'space', id: 'org/demo' });
  assert.equal(parseRepoFolderName('kernels--a--b'), undefined);
  const files = [
    { path: 'b.json', size: 3, gitOid: 'a'.repeat(40), lfs: false },
    { path: 'a.safetensors', size: 10, gitOid: 'b'.repeat(40), sha256: 'c'.repeat(64), lfs: true },
  ];
  const text = formatTreeCache(files);
  assert.ok(text.startsWith('{\n "format_version": 1,\n "files": {\n  "a.safetensors": {'));
  assert.deepEqual(
    parseTreeCache(text).map((f) => f.path),
    ['a.safetensors', 'b.json'],
  );
  assert.throws(() => parseTreeCache('{"format_version":2,"files":{}}'));
});
