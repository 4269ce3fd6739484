// hubcache.json / hubcache.lock validation: every problem is reported at its exact line:column,
// with a typed error (exit 22), and the lockfile text is canonical.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ExitCode, ManifestError, UsageError } from '../src/errors.js';
import { parseJsonSource, jsonValue, type JsonSyntaxError } from '../src/manifest/json-source.js';
import { stringifyLockfile } from '../src/manifest/lockfile.js';
import { addModel, findManifest, initManifest, loadManifest, parseManifest } from '../src/manifest/manifest.js';
import { InvalidManifestError, parseLockfileText, type LockfileShape } from '../src/manifest/schema.js';
import { runCli, tempDir } from './helpers.js';

/** The issues of a manifest text as `line:column: message` strings. */
function issues(text: string): string[] {
  try {
    parseManifest(text, '/p/hubcache.json');
  } catch (err) {
    assert.ok(err instanceof InvalidManifestError, String(err));
    assert.ok(err instanceof ManifestError);
    assert.equal(err.exitCode, ExitCode.manifest);
    return err.issues.map((i) => `${i.line}:${i.column}: ${i.message}`);
  }
  return [];
}

const manifest = (entry: string): string => `{\n  "models": {\n    "m": ${entry}\n  }\n}\n`;

describe('manifest validation', () => {
  test('a valid manifest has no issues and keeps what was written', () => {
    const m = parseManifest(
      manifest('{ "repo": "org/name", "revision": "v1", "include": ["*.json"], "localDir": "./x" }'),
      '/p/hubcache.json',
    );
    assert.deepEqual(
      { ...m.models },
      { m: { repo: 'org/name', revision: 'v1', include: ['*.json'], localDir: './x' } },
    );
    assert.equal(m.lockFile, '/p/hubcache.lock');
    assert.deepEqual(issues('{}'), [], 'no models key: an empty project');
  });

  test('JSON syntax errors point at the offending character', () => {
    assert.deepEqual(issues('{\n  "models": {\n    "m": { "repo": "a/b", },\n  }\n}'), [
      '3:27: JSON syntax error: trailing comma before }',
    ]);
    assert.deepEqual(issues('{\r\n  "models": {\r\n    "m": { "repo": "a/b" \r\n    "x": 1 }'), [
      '4:5: JSON syntax error: expected "," or "}", found "\\""',
    ]);
    assert.deepEqual(issues('{"models": {"m": {"repo": "a/b"}}'), [
      '1:34: JSON syntax error: expected "," or "}", found end of file',
    ]);
    assert.deepEqual(issues('{"models": {}} x'), [
      '1:16: JSON syntax error: unexpected "x" after the end of the document',
    ]);
    assert.deepEqual(issues("{'models': {}}"), ['1:2: JSON syntax error: expected a "quoted" key, found "\'"']);
  });

  test('unknown keys, with a suggestion', () => {
    assert.deepEqual(issues(manifest('{ "repo": "a/b", "revison": "v1" }')), [
      '3:27: unknown key "revison" in models.m (did you mean "revision"?); allowed: repo, hub, type, revision, include, exclude, localDir',
    ]);
    assert.deepEqual(issues('{ "model": {} }'), [
      '1:3: unknown key "model" in the manifest (did you mean "models"?); allowed: models',
    ]);
  });

  test('wrong types', () => {
    assert.deepEqual(issues(manifest('{ "repo": "a/b", "include": "*.json" }')), [
      '3:38: include must be an array of strings, e.g. ["*.json"], not a string',
    ]);
    assert.deepEqual(issues(manifest('{ "repo": 42 }')), ['3:20: repo must be a string, not a number']);
    assert.deepEqual(issues(manifest('{ "repo": "a/b", "exclude": ["ok", 3] }')), [
      '3:45: exclude items must be a string, not a number',
    ]);
    assert.deepEqual(issues(manifest('"a/b"')), ['3:10: models.m must be an object, not a string']);
    assert.deepEqual(issues('{ "models": [] }'), ['1:13: "models" must be an object, not an array']);
    assert.deepEqual(issues(manifest('{ "repo": "a/b", "hub": "github" }')), [
      '3:34: hub must be one of "hf", "modelscope", not "github"',
    ]);
  });

  test('bad repo ids, revisions and patterns', () => {
    assert.deepEqual(issues(manifest('{ "repo": "not a repo" }')), [
      '3:20: "not a repo" is not a valid repo id (expected org/name, e.g. openai-community/gpt2)',
    ]);
    assert.match(
      issues(manifest('{ "repo": "hf:a/b@v1" }'))[0] ?? '',
      /^3:20: repo must be a plain id like "org\/name"; put the hub/,
    );
    assert.deepEqual(issues(manifest('{ "repo": "a/b", "revision": "../x" }')), [
      '3:39: "../x" is not a valid branch, tag or commit name',
    ]);
    assert.deepEqual(issues(manifest('{ "repo": "a/b", "include": ["/abs/*.json"] }')), [
      '3:39: pattern "/abs/*.json" starts with "/", but repo paths are relative (write "abs/*.json")',
    ]);
    assert.deepEqual(issues(manifest('{ "repo": "a/b", "include": [""] }')), [
      '3:39: empty pattern (it would match nothing useful); remove it',
    ]);
    assert.deepEqual(issues(manifest('{ "repo": "a/b", "include": ["*.json", "*.json"] }')), [
      '3:49: "*.json" is listed twice',
    ]);
    assert.deepEqual(issues(manifest(`{ "repo": "a/b", "hub": "modelscope", "revision": "${'a'.repeat(40)}" }`)), [
      '3:60: ModelScope revisions are branch or tag names; commit hashes cannot be downloaded from ModelScope',
    ]);
  });

  test('duplicate aliases, missing repo, bad alias names, shared localDir — all reported at once', () => {
    const text = [
      '{',
      '  "models": {',
      '    "a": { "repo": "x/a", "localDir": "models/a" },',
      '    "b": { "repo": "x/b", "localDir": "./models/a/" },',
      '    "a": { "repo": "x/c" },',
      '    "c": { "revision": "main" },',
      '    "-bad": { "repo": "x/d" }',
      '  }',
      '}',
    ].join('\n');
    assert.deepEqual(issues(text), [
      '4:39: localDir "./models/a/" is also used by "a"; each entry needs its own folder',
      '5:5: duplicate alias "a" (first defined at line 3:5)',
      '6:10: missing required key "repo"',
      '7:5: alias "-bad" must start with a letter or digit and contain only letters, digits, ".", "_" and "-"',
    ]);
  });

  test('the CLI prints file:line:column and exits 22', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'hubcache.json');
    await fs.writeFile(file, manifest('{ "repo": "a/b", "revison": "v1" }'));
    const r = await runCli(['lock', '--manifest', file]);
    assert.equal(r.code, ExitCode.manifest);
    assert.equal(
      r.stderr.split('\n')[0],
      `error: ${file}:3:27: unknown key "revison" in models.m (did you mean "revision"?); allowed: repo, hub, type, revision, include, exclude, localDir`,
    );
    const j = await runCli(['install', '--json', '--manifest', file]);
    assert.equal(j.code, ExitCode.manifest);
    assert.equal((JSON.parse(j.stderr.trim()) as { error: string }).error, 'InvalidManifestError');
    const none = await runCli(['lock', '--manifest', path.join(dir, 'missing.json')]);
    assert.equal(none.code, ExitCode.manifest);
    assert.match(none.stderr, /missing\.json does not exist\nhint: Run `hubcache init`/);
  });
});

describe('lockfile', () => {
  const lock: LockfileShape = {
    lockfileVersion: 1,
    models: {
      zeta: {
        hub: 'modelscope',
        repo: 'org/ms',
        type: 'model',
        revision: 'master',
        commit: 'master',
        files: { 'b.bin': { size: 3, sha256: 'c'.repeat(64), fileRevision: 'd'.repeat(40) } },
      },
      alpha: {
        hub: 'hf',
        repo: 'org/a',
        type: 'dataset',
        revision: 'main',
        include: ['*.json'],
        localDir: './data',
        commit: 'a'.repeat(40),
        files: {
          'z.json': { size: 1, gitOid: 'b'.repeat(40) },
          'a.json': { size: 2, sha256: 'e'.repeat(64), gitOid: 'f'.repeat(40) },
        },
      },
    },
  };

  test('canonical text: sorted aliases and paths, one file per line, round-trips', () => {
    const text = stringifyLockfile(lock);
    assert.equal(
      text,
      `{
  "lockfileVersion": 1,
  "models": {
    "alpha": {
      "hub": "hf",
      "repo": "org/a",
      "type": "dataset",
      "revision": "main",
      "include": ["*.json"],
      "localDir": "./data",
      "commit": "${'a'.repeat(40)}",
      "files": {
        "a.json": { "size": 2, "sha256": "${'e'.repeat(64)}", "gitOid": "${'f'.repeat(40)}" },
        "z.json": { "size": 1, "gitOid": "${'b'.repeat(40)}" }
      }
    },
    "zeta": {
      "hub": "modelscope",
      "repo": "org/ms",
      "type": "model",
      "revision": "master",
      "commit": "master",
      "files": {
        "b.bin": { "size": 3, "sha256": "${'c'.repeat(64)}", "fileRevision": "${'d'.repeat(40)}" }
      }
    }
  }
}
`,
    );
    const back = parseLockfileText(text, 'hubcache.lock');
    assert.equal(stringifyLockfile(back), text);
    assert.deepEqual(JSON.parse(JSON.stringify(back)), JSON.parse(text));
  });

  test('lockfile problems are positioned too', () => {
    const bad = (text: string): string[] => {
      try {
        parseLockfileText(text, 'hubcache.lock');
      } catch (err) {
        assert.ok(err instanceof InvalidManifestError);
        return err.issues.map((i) => `${i.line}:${i.column}: ${i.message}`);
      }
      return [];
    };
    assert.match(bad('{ "lockfileVersion": 2, "models": {} }')[0] ?? '', /^1:22: lockfileVersion 2 is not supported/);
    const text = stringifyLockfile(lock)
      .replace(`"sha256": "${'e'.repeat(64)}"`, '"sha256": "E"')
      .replace('"z.json"', '"../z.json"');
    assert.deepEqual(bad(text), [
      '13:42: expected 64 lowercase hex digits, got "E"',
      '14:9: unsafe file path "../z.json"',
    ]);
  });
});

describe('manifest files', () => {
  test('found by walking up; init refuses to overwrite; add validates its arguments', async () => {
    const root = await tempDir();
    const deep = path.join(root, 'a', 'b');
    await fs.mkdir(deep, { recursive: true });
    assert.equal(await findManifest(deep), undefined);
    await assert.rejects(
      loadManifest({ cwd: deep }),
      (e: unknown) => e instanceof ManifestError && /No hubcache\.json in/.test(e.message),
    );
    const file = await initManifest(root);
    assert.equal(await fs.readFile(file, 'utf8'), '{\n  "models": {}\n}\n');
    assert.equal(await findManifest(deep), file);
    await assert.rejects(initManifest(root), UsageError);
    const m = await loadManifest({ cwd: deep });
    assert.equal(m.file, file);
    await assert.rejects(addModel(m, { repo: 'org/x', alias: 'has space' }), UsageError);
    await assert.rejects(addModel(m, { repo: 'org/x', include: ['/abs'] }), UsageError);
    await assert.rejects(
      addModel(m, { repo: 'modelscope:org/x', revision: 'a'.repeat(40) }),
      (e: unknown) => e instanceof UsageError && /commit hashes cannot be downloaded/.test(e.message),
    );
    const added = await addModel(m, { repo: 'modelscope:org/x@v2', localDir: path.join(root, 'models', 'x') });
    assert.deepEqual(added, {
      alias: 'x',
      model: { repo: 'org/x', hub: 'modelscope', revision: 'v2', localDir: './models/x' },
      replaced: false,
    });
    assert.equal((await addModel(m, { repo: 'modelscope:org/x', revision: 'v3' })).replaced, true);
    assert.deepEqual((await loadManifest(file)).models.x, { repo: 'org/x', hub: 'modelscope', revision: 'v3' });
  });

  test('the JSON reader keeps positions, escapes and "__proto__" as plain data', () => {
    const node = parseJsonSource('\ufeff{"__proto__": {"x": 1}, "s": "a\\u00e9\\n"}');
    const v = jsonValue(node) as Record<string, unknown>;
    assert.deepEqual(Object.keys(v), ['__proto__', 's']);
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.equal(v.s, 'aé\n');
    assert.equal(node.kind === 'object' && node.members[1]?.keyPos.column, 25, 'a BOM takes no column');
  });

  test('the JSON reader (jsonc-parser underneath) refuses what is not strict JSON, at the right place', () => {
    const err = (text: string): string => {
      try {
        parseJsonSource(text);
      } catch (e) {
        return `${(e as JsonSyntaxError).pos.line}:${(e as JsonSyntaxError).pos.column}: ${(e as Error).message}`;
      }
      return 'parsed';
    };
    assert.equal(err('{"a": 1 // note\n}'), '1:9: comments are not allowed in JSON');
    assert.equal(err('[1, 2,]'), '1:7: trailing comma before ]');
    assert.equal(err('{"a" 1}'), '1:6: expected ":" after the key, found "1"');
    assert.equal(err('{"a": "x\ty"}'), '1:7: control character in string (use \\n, \\t...)');
    assert.equal(err('{"a": "x'), '1:7: unterminated string');
    assert.equal(err(''), '1:1: unexpected end of file');
    assert.equal(err('[1 2]'), '1:4: expected "," or "]", found "2"');
    // Deep nesting ends in an error, not a stack overflow.
    assert.equal(err('['.repeat(100_000)), '1:65: nesting too deep');
    // Duplicate keys are kept, each with its own position.
    const dup = parseJsonSource('{"a": 1,\n "a": 2}');
    assert.deepEqual(dup.kind === 'object' && dup.members.map((m) => [m.key, m.keyPos.line, m.keyPos.column]), [
      ['a', 1, 2],
      ['a', 2, 2],
    ]);
  });
});
