// hubcache.lock: reading, writing (sorted, one file per line, so diffs in review are one line per
// changed file), comparing with the manifest, and diffing two locked versions of an entry.
import fs from 'node:fs/promises';
import { writeFileAtomic } from '../util/fs.js';
import {
  entrySpec,
  LOCKFILE_VERSION,
  parseLockfileText,
  sameSpec,
  type EntrySpec,
  type LockedFile,
  type LockedModel,
  type LockfileShape,
  type ManifestModel,
} from './schema.js';

/** Code-point order, so the file is byte-identical whatever the machine's locale. */
export const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const q = (s: string): string => JSON.stringify(s);

function stringifyFile(f: LockedFile): string {
  const parts = [`"size": ${f.size}`];
  if (f.sha256) parts.push(`"sha256": ${q(f.sha256)}`);
  if (f.gitOid) parts.push(`"gitOid": ${q(f.gitOid)}`);
  if (f.fileRevision) parts.push(`"fileRevision": ${q(f.fileRevision)}`);
  return `{ ${parts.join(', ')} }`;
}

/** Canonical text of a lockfile: aliases and paths sorted, entry fields in a fixed order. */
export function stringifyLockfile(lock: LockfileShape): string {
  const lines = ['{', `  "lockfileVersion": ${LOCKFILE_VERSION},`];
  const aliases = Object.keys(lock.models).sort(byCodePoint);
  if (aliases.length === 0) lines.push('  "models": {}');
  else {
    lines.push('  "models": {');
    aliases.forEach((alias, ai) => {
      const m = lock.models[alias] as LockedModel;
      lines.push(`    ${q(alias)}: {`);
      const fields: string[] = [
        `"hub": ${q(m.hub)}`,
        `"repo": ${q(m.repo)}`,
        `"type": ${q(m.type)}`,
        `"revision": ${q(m.revision)}`,
      ];
      if (m.include?.length) fields.push(`"include": [${m.include.map(q).join(', ')}]`);
      if (m.exclude?.length) fields.push(`"exclude": [${m.exclude.map(q).join(', ')}]`);
      if (m.localDir !== undefined) fields.push(`"localDir": ${q(m.localDir)}`);
      fields.push(`"commit": ${q(m.commit)}`);
      for (const f of fields) lines.push(`      ${f},`);
      const paths = Object.keys(m.files).sort(byCodePoint);
      if (paths.length === 0) lines.push('      "files": {}');
      else {
        lines.push('      "files": {');
        paths.forEach((p, i) =>
          lines.push(`        ${q(p)}: ${stringifyFile(m.files[p] as LockedFile)}${i < paths.length - 1 ? ',' : ''}`),
        );
        lines.push('      }');
      }
      lines.push(`    }${ai < aliases.length - 1 ? ',' : ''}`);
    });
    lines.push('  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** The lockfile at `file`, or undefined when there is none yet. */
export async function readLockfile(file: string): Promise<LockfileShape | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseLockfileText(text, file);
}

/** Writes atomically, and only when the content changes (keeps mtimes and `git status` quiet). */
export async function writeLockfile(file: string, lock: LockfileShape): Promise<boolean> {
  const text = stringifyLockfile(lock);
  const old = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (old === text) return false;
  await writeFileAtomic(file, text);
  return true;
}

export function specOf(m: LockedModel): EntrySpec {
  const { commit: _c, files: _f, ...spec } = m;
  return spec;
}

export type DriftKind = 'added' | 'removed' | 'changed';

/** One way the manifest and the lock disagree. */
export interface Drift {
  alias: string;
  kind: DriftKind;
  /** Human description, e.g. `revision main → v2`. */
  detail: string;
}

/** Entries added to, removed from, or changed in the manifest since the lock was written. */
export function manifestDrift(models: Record<string, ManifestModel>, lock: LockfileShape | undefined): Drift[] {
  const out: Drift[] = [];
  const locked = lock?.models ?? {};
  for (const alias of Object.keys(models).sort(byCodePoint)) {
    const want = entrySpec(models[alias] as ManifestModel);
    const have = locked[alias];
    if (!have) out.push({ alias, kind: 'added', detail: 'not in hubcache.lock' });
    else if (!sameSpec(want, specOf(have)))
      out.push({ alias, kind: 'changed', detail: describeSpecChange(specOf(have), want) });
  }
  for (const alias of Object.keys(locked).sort(byCodePoint)) {
    if (!models[alias]) out.push({ alias, kind: 'removed', detail: 'no longer in hubcache.json' });
  }
  return out;
}

function describeSpecChange(a: EntrySpec, b: EntrySpec): string {
  const parts: string[] = [];
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- scalars of a manifest entry
  const show = (v: unknown): string => (v === undefined ? '(none)' : Array.isArray(v) ? JSON.stringify(v) : String(v));
  for (const k of ['hub', 'repo', 'type', 'revision', 'include', 'exclude', 'localDir'] as const) {
    if (show(a[k]) !== show(b[k])) parts.push(`${k} ${show(a[k])} → ${show(b[k])}`);
  }
  return parts.join(', ');
}

/** What differs between two locked versions of one entry. */
export interface FileChanges {
  added: Array<{ path: string; size: number }>;
  removed: Array<{ path: string; size: number }>;
  changed: Array<{ path: string; oldSize: number; newSize: number; oldHash: string; newHash: string }>;
}

/** The identity used to compare two versions of a file: sha256, else git oid, else per-file revision. */
export function fileHash(f: LockedFile): string {
  return f.sha256 ?? f.gitOid ?? f.fileRevision ?? `size:${f.size}`;
}

export function diffFiles(before: Record<string, LockedFile>, after: Record<string, LockedFile>): FileChanges {
  const out: FileChanges = { added: [], removed: [], changed: [] };
  for (const p of Object.keys(after).sort(byCodePoint)) {
    const a = after[p] as LockedFile;
    const b = before[p];
    if (!b) out.added.push({ path: p, size: a.size });
    else if (b.size !== a.size || fileHash(b) !== fileHash(a))
      out.changed.push({ path: p, oldSize: b.size, newSize: a.size, oldHash: fileHash(b), newHash: fileHash(a) });
  }
  for (const p of Object.keys(before).sort(byCodePoint)) {
    if (!after[p]) out.removed.push({ path: p, size: (before[p] as LockedFile).size });
  }
  return out;
}

export const noChanges = (c: FileChanges): boolean =>
  c.added.length === 0 && c.removed.length === 0 && c.changed.length === 0;
