// Who may get what (docs/protocols.md §Mirror access control). Two layers:
// - the mirror's own gate: optional API keys, and repo allow/deny patterns;
// - upstream's rules, learned: per repo and class (`meta` = JSON API, `content` = file bodies)
//   whether anonymous access works (public) or not (restricted: gated, private, or missing);
//   for a restricted repo, per (token hash, repo, class) whether upstream accepted that caller's
//   own token, for a short TTL. Tokens are only ever kept as sha256 hashes, in memory.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fnmatch } from '../util/fnmatch.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Answer } from './upstream.js';

export type AccessClass = 'meta' | 'content';
export type Visibility = 'public' | 'restricted';

/** The caller as upstream would see them. */
export interface Caller {
  /** `Bearer <token>` to forward upstream (never an API key of the mirror). */
  authorization?: string;
  /** sha256 of the token (first 32 hex), the only form a token is remembered in. */
  tokenHash?: string;
}

/** What upstream answered a refused caller: replayed as is (status, X-Error-Code), with no body of content. */
export type Decision = { allowed: true } | { allowed: false; answer: Answer };

export interface AccessOptions {
  apiKeys?: string[];
  allow?: string[];
  deny?: string[];
  /** How long a visibility or a per-token decision is trusted. */
  ttlMs: number;
  /**
   * File remembering which repos were ever found restricted (repo ids only, no tokens), so that
   * after a restart, offline or with upstream down, their cached blobs go to nobody unchecked.
   */
  restrictedFile?: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 32);
}

interface Timed<T> {
  value: T;
  expiresAt: number;
}

export class AccessControl {
  private readonly keys: Buffer[];
  private readonly visibility = new Map<string, Timed<Visibility>>();
  private readonly decisions = new Map<string, Timed<Decision>>();

  private readonly everRestricted = new Set<string>();
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly opts: AccessOptions) {
    this.keys = (opts.apiKeys ?? []).map((k) => Buffer.from(hashToken(k)));
    if (opts.restrictedFile) {
      try {
        const list = JSON.parse(readFileSync(opts.restrictedFile, 'utf8')) as unknown;
        if (Array.isArray(list)) for (const r of list) if (typeof r === 'string') this.everRestricted.add(r);
      } catch {
        /* none yet, or unreadable: start empty */
      }
    }
  }

  /** True when the repo was ever seen restricted (survives restarts). */
  wasRestricted(repoKey: string): boolean {
    return this.everRestricted.has(repoKey);
  }

  get requiresApiKey(): boolean {
    return this.keys.length > 0;
  }

  /**
   * Splits the request's credentials into the mirror's API key and the caller's hub token. The
   * key comes as `X-Hubcache-Key`, as Basic auth's password, or as the Bearer token itself (then
   * the caller is anonymous upstream); `ok` is false when keys are required and none matched.
   */
  identify(headers: Record<string, string | string[] | undefined>): { ok: boolean; caller: Caller } {
    const auth = one(headers.authorization);
    const explicitKey = one(headers['x-hubcache-key']);
    let bearer: string | undefined;
    let basicPassword: string | undefined;
    if (auth) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (m) bearer = m[1];
      const b = /^Basic\s+(\S+)\s*$/i.exec(auth);
      if (b?.[1]) {
        const decoded = Buffer.from(b[1], 'base64').toString('utf8');
        basicPassword = decoded.slice(decoded.indexOf(':') + 1);
      }
    }
    let ok = !this.requiresApiKey;
    if (this.requiresApiKey) {
      if (explicitKey !== undefined) ok = this.isKey(explicitKey);
      else if (basicPassword !== undefined) ok = this.isKey(basicPassword);
      else if (bearer !== undefined && this.isKey(bearer)) {
        ok = true;
        bearer = undefined; // the key is the mirror's, not a hub token
      }
    }
    const caller: Caller = bearer ? { authorization: `Bearer ${bearer}`, tokenHash: hashToken(bearer) } : {};
    return { ok, caller };
  }

  private isKey(candidate: string): boolean {
    const h = Buffer.from(hashToken(candidate));
    return this.keys.some((k) => k.length === h.length && timingSafeEqual(k, h));
  }

  /** Repo ids the mirror serves: allowed by one `--allow` pattern (if any given) and by no `--deny`. */
  repoAllowed(repoId: string): boolean {
    const { allow = [], deny = [] } = this.opts;
    if (deny.some((p) => fnmatch(repoId, p))) return false;
    return allow.length === 0 || allow.some((p) => fnmatch(repoId, p));
  }

  getVisibility(cls: AccessClass, repoKey: string): Visibility | undefined {
    return fresh(this.visibility, `${cls}:${repoKey}`);
  }

  setVisibility(cls: AccessClass, repoKey: string, v: Visibility): void {
    put(this.visibility, `${cls}:${repoKey}`, v, this.opts.ttlMs);
    if (v === 'restricted' && cls === 'content' && !this.everRestricted.has(repoKey)) {
      this.everRestricted.add(repoKey);
      const file = this.opts.restrictedFile;
      if (file) {
        const data = JSON.stringify([...this.everRestricted].sort(), null, 1);
        this.saving = this.saving.then(() => writeFileAtomic(file, data)).catch(() => undefined);
      }
    }
  }

  /** Waits for the restricted-repo file to be written. */
  flush(): Promise<void> {
    return this.saving;
  }

  getDecision(cls: AccessClass, repoKey: string, caller: Caller): Decision | undefined {
    if (!caller.tokenHash) return undefined;
    return fresh(this.decisions, `${cls}:${caller.tokenHash}:${repoKey}`);
  }

  setDecision(cls: AccessClass, repoKey: string, caller: Caller, d: Decision): void {
    if (!caller.tokenHash) return;
    put(this.decisions, `${cls}:${caller.tokenHash}:${repoKey}`, d, this.opts.ttlMs);
  }
}

/**
 * Upstream's answer to a request about a repo says whether the asker may see it: 401/403 and
 * RepoNotFound/GatedRepo refuse; anything else (including RevisionNotFound, EntryNotFound)
 * means the repo itself is visible.
 */
export function refuses(a: Pick<Answer, 'status' | 'headers'>): boolean {
  const code = a.headers['x-error-code'];
  return a.status === 401 || a.status === 403 || code === 'RepoNotFound' || code === 'GatedRepo';
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function fresh<T>(m: Map<string, Timed<T>>, key: string): T | undefined {
  const e = m.get(key);
  if (!e) return undefined;
  if (e.expiresAt <= Date.now()) {
    m.delete(key);
    return undefined;
  }
  return e.value;
}

function put<T>(m: Map<string, Timed<T>>, key: string, value: T, ttlMs: number): void {
  m.delete(key);
  m.set(key, { value, expiresAt: Date.now() + ttlMs });
  if (m.size > 100_000) m.delete(m.keys().next().value as string);
}
