// Naming things in a scanned cache: `org/name`, `modelscope:org/name@master`, `datasets/org/x@v1`,
// a bare commit hash (like `hf cache rm <hash>`), or a glob over repo ids (`--pattern 'org/*'`).
import { UsageError } from '../errors.js';
import { parseRepoRef, type RepoRefDefaults } from '../hubs/repo-ref.js';
import { fnmatch } from '../util/fnmatch.js';
import type { CachedRepo, CachedRevision, CacheScan } from './model.js';

/** Targets a project pins (its hubcache.lock): prune and gc keep them and say who pinned them. */
export interface ProjectPins {
  /** How messages name the pin's source: `./hubcache.lock`. */
  label: string;
  /** `hf:org/name@<commit>`, `modelscope:org/name`. */
  targets: string[];
}

/** The revisions `targets` name: all of a repo's for `org/name`, one for `org/name@rev`. */
export function pinnedRevisions(
  scan: CacheScan,
  targets: readonly string[],
  defaults: Pick<RepoRefDefaults, 'hub' | 'type'> = {},
): Set<CachedRevision> {
  const out = new Set<CachedRevision>();
  // Pins of repos that are not cached (yet) are fine: nothing to protect.
  for (const s of selectTargets(scan, targets, defaults).selections) for (const r of s.revisions) out.add(r);
  return out;
}

/** One matched target: a repo and the revisions the user meant (all of them when no @REV). */
export interface Selection {
  repo: CachedRepo;
  revisions: CachedRevision[];
}

export interface SelectResult {
  selections: Selection[];
  /** Targets that matched nothing in the cache. */
  missing: string[];
}

const HUB_PREFIX_RE = /^(?:hf|huggingface|modelscope|ms):(?!\/\/)|^hf:\/\//;
const TYPE_PREFIX_RE = /^(?:[a-z]+:(?:\/\/)?)?(?:(?:models|datasets|spaces)\/|(?:model|dataset|space)\/[^/@]+\/)/;
// hf cache's id of a repo without an org: `model/gpt2` (also a valid org/name, tried first).
const TYPED_SHORT_ID_RE = /^(model|dataset|space)\/([^/@]+)(@.*)?$/;
const HASH_RE = /^[0-9a-f]{40}$/i;

/**
 * Resolves user targets against a scan. Without a hub prefix (or --hub) a target names the HF
 * repo, or else the ModelScope repo of that id; without a type prefix (or --repo-type), a model.
 */
export function selectTargets(
  scan: CacheScan,
  targets: readonly string[],
  defaults: Pick<RepoRefDefaults, 'hub' | 'type'> = {},
): SelectResult {
  const selections = new Map<CachedRepo, Set<CachedRevision>>();
  const missing: string[] = [];
  const add = (repo: CachedRepo, revs: readonly CachedRevision[]): void => {
    const set = selections.get(repo) ?? new Set<CachedRevision>();
    for (const r of revs) set.add(r);
    selections.set(repo, set);
  };
  for (const target of targets) {
    if (HASH_RE.test(target)) {
      const hits = scan.repos.flatMap((repo) =>
        repo.revisions.filter((r) => r.commit === target.toLowerCase()).map((r) => ({ repo, r })),
      );
      if (hits.length === 0) missing.push(target);
      for (const h of hits) add(h.repo, [h.r]);
      continue;
    }
    let ref = parseRepoRef(target, defaults.type ? { type: defaults.type } : {});
    const explicitHub = HUB_PREFIX_RE.test(target) ? ref.hub : defaults.hub;
    let explicitType = TYPE_PREFIX_RE.test(target) || defaults.type !== undefined;
    const matching = (): CachedRepo[] =>
      scan.repos.filter(
        (r) =>
          r.id === ref.id &&
          (!explicitType || r.type === ref.type) &&
          (explicitHub === undefined || r.hub === explicitHub),
      );
    let candidates = matching();
    const short = TYPED_SHORT_ID_RE.exec(target);
    if (candidates.length === 0 && short) {
      ref = parseRepoRef(`${short[1]}s/${short[2]}${short[3] ?? ''}`);
      explicitType = true;
      candidates = matching();
    }
    // Prefer the HF repo, then a model, when the user left hub or type open.
    const repo = [...candidates].sort((a, b) => rank(a) - rank(b))[0];
    if (!repo) {
      missing.push(target);
      continue;
    }
    if (ref.revision === undefined) add(repo, repo.revisions);
    else {
      const rev = findRevision(repo, ref.revision);
      if (rev) add(repo, [rev]);
      else missing.push(target);
    }
  }
  return { selections: [...selections].map(([repo, revs]) => ({ repo, revisions: [...revs] })), missing };
}

function rank(r: CachedRepo): number {
  return (r.hub === 'hf' ? 0 : 2) + (r.type === 'model' ? 0 : 1);
}

/** A revision by commit, ref name, or unambiguous commit prefix (at least 7 characters). */
export function findRevision(repo: CachedRepo, rev: string): CachedRevision | undefined {
  const exact = repo.revisions.find((r) => r.commit === rev || r.refs.includes(rev));
  if (exact) return exact;
  const viaRef = repo.refs[rev];
  if (viaRef !== undefined) return repo.revisions.find((r) => r.commit === viaRef);
  if (rev.length >= 7) {
    const prefixed = repo.revisions.filter((r) => r.commit.startsWith(rev.toLowerCase()));
    if (prefixed.length === 1) return prefixed[0];
  }
  return undefined;
}

/** Repos whose id (or key) matches an fnmatch glob (`org/*`, `*llama*`, `modelscope:*`). */
export function matchesPattern(repo: CachedRepo, pattern: string): boolean {
  return fnmatch(repo.id, pattern) || fnmatch(repo.key, pattern);
}

/** Like selectTargets, but an unknown target is an error (for commands about named repos). */
export function requireTargets(
  scan: CacheScan,
  targets: readonly string[],
  defaults: Pick<RepoRefDefaults, 'hub' | 'type'> = {},
): Selection[] {
  const res = selectTargets(scan, targets, defaults);
  if (res.missing.length > 0) {
    throw new UsageError(`Not in the cache: ${res.missing.join(', ')}`, {
      hint: 'Run `hubcache ls` to see what is cached (and `--revisions` for revisions).',
    });
  }
  return res.selections;
}
