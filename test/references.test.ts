// Every reference in the code and docs resolves inside the repository (a fresh clone): protocol
// citations name a heading of docs/protocols.md, and scripts the README points to exist.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './helpers.js';

async function trackedFiles(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
  });
  return stdout
    .split('\n')
    .filter((f) => /\.(ts|mjs|js|md|sh)$/.test(f) && !f.startsWith('docs/api/'))
    .filter((f) => f !== 'test/references.test.ts');
}

test('every docs/protocols.md § citation names one of its headings', async () => {
  const doc = await fs.readFile(path.join(ROOT, 'docs/protocols.md'), 'utf8');
  const headings = new Set([...doc.matchAll(/^#{2,3} (.+)$/gm)].map((m) => m[1]!.trim()));
  let citations = 0;
  for (const file of await trackedFiles()) {
    const text = await fs.readFile(path.join(ROOT, file), 'utf8').catch(() => '');
    // "docs/protocols.md §A, §B and §C": each § up to the next punctuation.
    for (const m of text.matchAll(/docs\/protocols\.md((?:[ ,]+(?:and )?§[^§(),;.:\n]+)+)/g)) {
      for (const c of m[1]!.matchAll(/§([^§),;.:\n]+)/g)) {
        const name = c[1]!.replace(/\s+(and|,)\s*$/, '').trim();
        if (name.startsWith('<')) continue; // the doc's own "§<heading>" placeholder
        citations++;
        assert.ok(headings.has(name), `${file}: "§${name}" is not a heading of docs/protocols.md`);
      }
    }
    assert.doesNotMatch(text, /spec §|shared\/(spec|tools)\//, `${file} cites a document outside the repository`);
  }
  assert.ok(citations >= 20, `found ${citations} citations`);
});

test('the setup script the README and the compat check name is in the repository', async () => {
  const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
  const compat = await fs.readFile(path.join(ROOT, 'scripts/compat-python.ts'), 'utf8');
  for (const text of [readme, compat]) assert.match(text, /scripts\/official-clients\.sh/);
  const st = await fs.stat(path.join(ROOT, 'scripts/official-clients.sh'));
  assert.ok(st.mode & 0o111, 'executable');
});
