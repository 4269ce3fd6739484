// hubcache.json: finding it (walk up from a folder, like package.json), loading it, creating it
// and adding entries. The file is rewritten in one canonical form: 2-space JSON, aliases sorted,
// entry keys in a fixed order, trailing newline.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ManifestError, UsageError } from '../errors.js';
import { parseRepoRef } from '../hubs/repo-ref.js';
import type { RepoRef } from '../hubs/types.js';
import { writeFileAtomic } from '../util/fs.js';
import { leavesBase } from '../util/safe-path.js';
import { byCodePoint } from './lockfile.js';
import {
  ALIAS_RE,
  defaultRevision,
  InvalidManifestError,
  parseManifestText,
  patternProblem,
  revisionProblem,
  type ManifestModel,
  type ParsedManifest,
} from './schema.js';

export const MANIFEST_NAME = 'hubcache.json';
export const LOCKFILE_NAME = 'hubcache.lock';

/** A loaded hubcache.json, with where its lock lives. */
export interface Manifest {
  /** Absolute path of hubcache.json. */
  file: string;
  /** Its folder: relative `localDir`s are resolved from here. */
  dir: string;
  /** hubcache.lock beside it. */
  lockFile: string;
  models: Record<string, ManifestModel>;
  /** Source positions of each entry (for errors found after parsing). */
  positions: ParsedManifest['positions'];
}

/** Where to find the project: an explicit file (or folder holding one), else a walk up from `cwd`. */
export interface ManifestLocation {
  /** Path of hubcache.json, or of a folder that contains one. */
  manifest?: string;
  /** Start of the upward search when `manifest` is not given (default: process.cwd()). */
  cwd?: string;
}

/** The nearest hubcache.json in `startDir` or a parent folder. */
export async function findManifest(startDir: string): Promise<string | undefined> {
  let dir = path.resolve(startDir);
  for (;;) {
    const candidate = path.join(dir, MANIFEST_NAME);
    if (
      await fs.stat(candidate).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

async function manifestPathOf(loc: ManifestLocation): Promise<string> {
  if (loc.manifest !== undefined) {
    const p = path.resolve(loc.cwd ?? process.cwd(), loc.manifest);
    const st = await fs.stat(p).catch(() => undefined);
    return st?.isDirectory() ? path.join(p, MANIFEST_NAME) : p;
  }
  const start = loc.cwd ?? process.cwd();
  const found = await findManifest(start);
  if (!found) {
    throw new ManifestError(`No ${MANIFEST_NAME} in ${path.resolve(start)} or any parent folder`, {
      hint: 'Run `hubcache init` to create one, or pass --manifest FILE.',
    });
  }
  return found;
}

export function resolveLocalDir(manifest: Pick<Manifest, 'dir'>, localDir: string): string {
  return path.resolve(manifest.dir, localDir);
}

export function parseManifest(text: string, file: string): Manifest {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const parsed = parseManifestText(text, abs, (d) => path.resolve(dir, d));
  return {
    file: abs,
    dir,
    lockFile: path.join(dir, LOCKFILE_NAME),
    models: parsed.models,
    positions: parsed.positions,
  };
}

/** Finds, reads and validates hubcache.json. Throws InvalidManifestError with line:column on any problem. */
export async function loadManifest(loc: ManifestLocation | string = {}): Promise<Manifest> {
  const file = await manifestPathOf(typeof loc === 'string' ? { manifest: loc } : loc);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ManifestError(`${file} does not exist`, { hint: 'Run `hubcache init` to create it.' });
    }
    throw err;
  }
  return parseManifest(text, file);
}

const ENTRY_KEY_ORDER = ['repo', 'hub', 'type', 'revision', 'include', 'exclude', 'localDir'] as const;

/** Canonical hubcache.json text. */
export function stringifyManifest(models: Record<string, ManifestModel>): string {
  const sorted: Record<string, Record<string, unknown>> = {};
  for (const alias of Object.keys(models).sort(byCodePoint)) {
    const m = models[alias] as ManifestModel;
    const e: Record<string, unknown> = {};
    for (const k of ENTRY_KEY_ORDER) if (m[k] !== undefined) e[k] = m[k];
    sorted[alias] = e;
  }
  return `${JSON.stringify({ models: sorted }, null, 2)}\n`;
}

/** Creates an empty hubcache.json (in `dir`, or at the given file path). Refuses to overwrite. */
export async function initManifest(target: string): Promise<string> {
  const st = await fs.stat(target).catch(() => undefined);
  const file = st?.isDirectory() ? path.join(target, MANIFEST_NAME) : path.resolve(target);
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    await fs.writeFile(file, stringifyManifest({}), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UsageError(`${file} already exists`, { hint: 'Add models to it with `hubcache add org/name`.' });
    }
    throw err;
  }
  return file;
}

export interface AddModelOptions {
  /** `org/name`, `modelscope:org/name@rev`, `datasets/org/name`, or a parsed RepoRef. */
  repo: string | RepoRef;
  /** Default: the repo's name (the part after the `/`). */
  alias?: string;
  revision?: string;
  include?: string[];
  exclude?: string[];
  localDir?: string;
}

export interface AddModelResult {
  alias: string;
  model: ManifestModel;
  /** The alias existed (same repo) and its entry was replaced. */
  replaced: boolean;
}

/**
 * Adds (or, for the same repo, replaces) an entry and rewrites hubcache.json. Bad arguments are
 * UsageErrors; an alias already used by another repo is refused.
 */
export async function addModel(manifest: Manifest, opts: AddModelOptions): Promise<AddModelResult> {
  const ref = typeof opts.repo === 'string' ? parseRepoRef(opts.repo) : opts.repo;
  const alias = opts.alias ?? ref.id.slice(ref.id.lastIndexOf('/') + 1);
  if (!ALIAS_RE.test(alias)) {
    throw new UsageError(`"${alias}" is not a valid alias`, {
      hint: 'Use letters, digits, ".", "_" and "-" (pass --as NAME).',
    });
  }
  const revision = opts.revision ?? ref.revision;
  const bad =
    (revision !== undefined ? revisionProblem(revision) : undefined) ??
    [...(opts.include ?? []), ...(opts.exclude ?? [])].map(patternProblem).find(Boolean);
  if (bad) throw new UsageError(bad);
  const model: ManifestModel = { repo: ref.id };
  if (ref.hub !== 'hf') model.hub = ref.hub;
  if (ref.type !== 'model') model.type = ref.type;
  if (revision !== undefined && revision !== defaultRevision(ref.hub)) model.revision = revision;
  if (opts.include?.length) model.include = [...new Set(opts.include)];
  if (opts.exclude?.length) model.exclude = [...new Set(opts.exclude)];
  if (opts.localDir !== undefined) {
    // Stored relative to the manifest when inside the project, so the file works on every checkout.
    const abs = path.resolve(opts.localDir);
    const rel = path.relative(manifest.dir, abs);
    model.localDir = rel === '' ? '.' : leavesBase(rel) ? abs : `./${rel.split(path.sep).join('/')}`;
  }
  const existing = manifest.models[alias];
  if (
    existing &&
    (existing.repo !== model.repo || (existing.hub ?? 'hf') !== ref.hub || (existing.type ?? 'model') !== ref.type)
  ) {
    throw new UsageError(`Alias "${alias}" is already used for ${existing.repo}`, {
      hint: 'Pick another one with --as NAME.',
    });
  }
  const models = { ...manifest.models, [alias]: model };
  // Re-validate the whole result (e.g. two entries sharing a localDir) before writing anything.
  const text = stringifyManifest(models);
  let checked: Manifest;
  try {
    checked = parseManifest(text, manifest.file);
  } catch (err) {
    // Positions would point into text that was never written: report the problems alone.
    if (err instanceof InvalidManifestError) throw new UsageError(err.issues.map((i) => i.message).join('; '));
    throw err;
  }
  await writeFileAtomic(manifest.file, text);
  manifest.models = checked.models;
  manifest.positions = checked.positions;
  return { alias, model, replaced: existing !== undefined };
}
