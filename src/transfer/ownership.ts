// Who may write a partial file, without trusting any lock (NFS flock can lie).
//
// A partial belongs to the writer whose id is in its name. A dead writer's partial is taken over
// by renaming it to our own name: rename is atomic, so exactly one contender wins. A writer is
// dead when its state was released, its pid is gone (same host), its heartbeat is older than
// `staleAfterSeconds`, or we watched it not change for that long (immune to clock skew). A writer
// that is wrongly judged dead keeps writing the same bytes into the same inode and learns at its
// next heartbeat that its name is gone; the final hash check guards the rest.
import { promises as fsp, constants as fsc } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as os from 'node:os';
import type { ExpectedContent } from './types.js';
import { AbortedError } from '../errors.js';
import {
  classifyPartialName,
  hostTag,
  parseWriterId,
  partialPath,
  readTrailer,
  stateBytes,
  stateMatches,
  type PartialKind,
  type PartialState,
  type TrailerRead,
} from './partial-state.js';
import { pidAlive } from '../util/process.js';
import { sleep } from './retry.js';
import { existsWithSize, unlinkQuiet } from './disk.js';
import { mkdirp } from '../util/fs.js';

/** Writer ids of downloads running in this process (pid liveness cannot tell them apart). */
export const activeWriters = new Set<string>();

const HOST = os.hostname();
const HOST_TAG = hostTag(HOST);

/** Thrown when our partial was taken over by another writer (we were judged dead). */
export class OwnershipLostError extends Error {
  constructor(readonly path: string) {
    super(`partial ${path} was taken over by another writer`);
  }
}

export type Resume =
  | { kind: 'none' }
  | { kind: 'state'; state: PartialState; slot: 0 | 1 }
  /** Bytes [0, length) are believed to be a prefix of the content; verified by the final hash. */
  | { kind: 'prefix'; length: number; from: PartialKind };

export function resumeBytes(r: Resume): number {
  if (r.kind === 'state') return stateBytes(r.state);
  if (r.kind === 'prefix') return r.length;
  return 0;
}

/** A partial file we own, with its heartbeat. */
export class OwnedPartial {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private beat: (() => Promise<void>) | undefined;
  private tick: (() => void) | undefined;
  private stopped = true;
  private closed = false;
  /** Mode-specific "leave it for others" (final checkpoint); default: make the mtime stale. */
  onRelease: (() => Promise<void>) | undefined;

  constructor(
    readonly path: string,
    readonly writerId: string,
    readonly fh: FileHandle,
    /** Inode of our file; undefined until first needed (read from our own descriptor). */
    private ino: number | undefined,
    public resume: Resume,
    /** True when we created the file (its mode is already 0666 & ~umask). */
    readonly created = false,
  ) {}

  /** Throws OwnershipLostError when our name no longer points at our inode. */
  async checkOwned(): Promise<void> {
    this.ino ??= (await this.fh.stat()).ino;
    try {
      const st = await fsp.stat(this.path);
      if (st.ino === this.ino) return;
    } catch {
      // missing: renamed away by a taker
    }
    throw new OwnershipLostError(this.path);
  }

  startHeartbeat(intervalMs: number, beat: () => Promise<void>, onLost: (err: Error) => void): void {
    this.beat = beat;
    this.stopped = false;
    const tick = (): void => {
      this.beating = this.runBeat(onLost).finally(() => {
        this.beating = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
      });
    };
    this.tick = tick;
    this.timer = setTimeout(tick, intervalMs);
  }

  /** Run the next heartbeat now (unless one is running); the period restarts after it. */
  beatNow(): void {
    if (this.stopped || this.beating || !this.tick) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.tick();
  }

  private async runBeat(onLost: (err: Error) => void): Promise<void> {
    try {
      await this.checkOwned();
      await this.beat?.();
    } catch (err) {
      // Lost ownership is fatal for this attempt; a failed checkpoint only costs resumability.
      if (err instanceof OwnershipLostError) onLost(err);
    }
  }

  async stopHeartbeat(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  /** Keep the partial for a later resume and mark it free to take over at once. */
  async abandon(): Promise<void> {
    await this.stopHeartbeat();
    try {
      await this.checkOwned();
      if (this.onRelease) await this.onRelease();
      else await this.fh.utimes(0, 0);
    } catch {
      // Not ours any more, or the disk refuses: the heartbeat goes stale on its own.
    }
    await this.close();
  }

  async close(): Promise<void> {
    await this.stopHeartbeat();
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }

  /** Close and delete (bad content). */
  async discard(): Promise<void> {
    await this.stopHeartbeat();
    // Checked while our descriptor is open (it tells our inode).
    const ours = await this.checkOwned().then(
      () => true,
      () => false,
    );
    await this.close();
    if (ours) await unlinkQuiet(this.path);
  }
}

export interface AcquireOptions {
  dir: string;
  key: string;
  finalPath: string;
  expected: ExpectedContent;
  writerId: string;
  staleAfterMs: number;
  foreignStaleAfterMs: number;
  liveWriterWaitMs: number;
  pollIntervalMs: number;
  signal: AbortSignal | undefined;
  /** Waiting callback, e.g. to report the other writer's progress. */
  onWaiting?: (otherBytes: number) => void;
}

export type Acquired = { kind: 'final' } | { kind: 'owned'; partial: OwnedPartial };

interface Candidate {
  path: string;
  kind: PartialKind;
  writerId: string;
  length: number;
  mtimeMs: number;
  ctimeMs: number;
  trailer: TrailerRead | undefined;
}

interface Observation {
  signature: string;
  changedAt: number;
  progress: number;
  progressAt: number;
}

/**
 * Find or create the partial we will write: wait for a live writer (returns 'final' when it
 * commits), take over the best dead one, or start a fresh one.
 */
export async function acquirePartial(o: AcquireOptions): Promise<Acquired> {
  const seen = new Map<string, Observation>();
  let waitStart: number | undefined;
  for (;;) {
    if (o.signal?.aborted) throw AbortedError.from(o.signal);
    if (await existsWithSize(o.finalPath, o.expected.size)) return { kind: 'final' };
    const now = Date.now();
    const live: Candidate[] = [];
    const usable: Array<{ c: Candidate; resume: Resume }> = [];
    for (const c of await scan(o.dir, o.key)) {
      if (c.writerId === o.writerId) continue;
      if (!isDead(c, observe(seen, c, now), now, o)) {
        live.push(c);
        continue;
      }
      const resume = usableResume(c, o.expected);
      if (resume) usable.push({ c, resume });
      else if (c.kind === 'ours') await unlinkQuiet(c.path); // dead and useless: garbage
    }
    waitStart = live.length > 0 ? (waitStart ?? now) : undefined;
    let waitedOut = false;
    if (live.length > 0 && waitStart !== undefined) {
      const lastProgress = Math.max(waitStart, ...live.map((c) => seen.get(c.path)?.progressAt ?? now));
      if (now - lastProgress < o.liveWriterWaitMs) {
        o.onWaiting?.(Math.max(...live.map((c) => seen.get(c.path)?.progress ?? 0)));
        await sleep(o.pollIntervalMs, o.signal);
        continue;
      }
      waitedOut = true; // the live writer makes no progress: work in parallel rather than hang
    }
    usable.sort((a, b) => resumeBytes(b.resume) - resumeBytes(a.resume));
    const best = usable[0];
    if (best) {
      const taken = await takeOver(best.c, o);
      if (taken) {
        for (const other of usable.slice(1)) if (other.c.kind === 'ours') await unlinkQuiet(other.c.path);
        return { kind: 'owned', partial: taken };
      }
      continue; // another contender won the rename: look again
    }
    const fresh = await createFresh(o);
    if (!waitedOut && (await shouldYield(o, seen))) {
      await fresh.discard();
      waitStart = Date.now();
      await sleep(o.pollIntervalMs, o.signal);
      continue;
    }
    return { kind: 'owned', partial: fresh };
  }
}

async function scan(dir: string, key: string): Promise<Candidate[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const out: Candidate[] = [];
  for (const name of names) {
    const cls = classifyPartialName(name, key);
    if (!cls) continue;
    const p = `${dir}/${name}`;
    const c = await inspect(p, cls.kind, cls.writerId);
    if (c) out.push(c);
  }
  return out;
}

async function inspect(p: string, kind: PartialKind, writerId: string): Promise<Candidate | undefined> {
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(p, fsc.O_RDONLY);
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const trailer = kind === 'ours' ? await readTrailer(fh, st.size) : undefined;
    return { path: p, kind, writerId, length: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, trailer };
  } catch {
    return undefined; // vanished while we looked
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function observe(seen: Map<string, Observation>, c: Candidate, now: number): Observation {
  const s = c.trailer?.state;
  const signature = s ? `${s.writerId}:${s.seq}:${s.heartbeat}` : `${c.mtimeMs}:${c.length}`;
  const progress = s ? stateBytes(s) : c.length;
  const prev = seen.get(c.path);
  const next: Observation = {
    signature,
    changedAt: prev && prev.signature === signature ? prev.changedAt : now,
    progress,
    progressAt: prev && prev.progress === progress ? prev.progressAt : now,
  };
  seen.set(c.path, next);
  return next;
}

/** Whether the writer `writerId` of process `pid` (on this host) still runs. */
export function writerAlive(pid: number, writerId: string): boolean {
  return pid === process.pid ? activeWriters.has(writerId) : pidAlive(pid);
}

function isDead(c: Candidate, obs: Observation, now: number, o: AcquireOptions): boolean {
  const stale = c.kind === 'hf' ? o.foreignStaleAfterMs : o.staleAfterMs;
  // Watched without change for the whole window: dead whatever the clocks say.
  if (now - obs.changedAt > stale) return true;
  // A state written by someone else than the name says: just taken over, not checkpointed yet.
  const s = c.trailer?.state.writerId === c.writerId ? c.trailer.state : undefined;
  if (s?.heartbeat === 0) return true;
  if (s ? s.host === HOST && !writerAlive(s.pid, s.writerId) : deadByName(c)) return true;
  // The rename of a takeover bumps ctime, not mtime.
  const lastSign = s ? s.heartbeat : c.trailer ? Math.max(c.mtimeMs, c.ctimeMs) : c.mtimeMs;
  return now - lastSign > stale;
}

/** A partial without state: its name still says which host and pid wrote it. */
function deadByName(c: Candidate): boolean {
  const id = c.kind === 'ours' ? parseWriterId(c.writerId) : undefined;
  return id !== undefined && id.hostTag === HOST_TAG && !writerAlive(id.pid, c.writerId);
}

/** How a dead partial can be resumed for `expected`, or undefined if it is useless. */
function usableResume(c: Candidate, expected: ExpectedContent): Resume | undefined {
  if (c.trailer) return stateMatches(c.trailer.state, expected) ? { kind: 'state', ...c.trailer } : undefined;
  // No state: usable only as a sequentially written prefix, and only if a hash can vouch for it.
  if (!expected.sha256 && !expected.gitSha1) return undefined;
  if (c.length === 0 || c.length > expected.size) return undefined;
  return { kind: 'prefix', length: c.length, from: c.kind };
}

async function takeOver(c: Candidate, o: AcquireOptions): Promise<OwnedPartial | undefined> {
  const mine = partialPath(o.dir, o.key, o.writerId);
  try {
    await fsp.rename(c.path, mine);
  } catch {
    return undefined;
  }
  const fh = await fsp.open(mine, fsc.O_RDWR);
  try {
    const st = await fh.stat();
    // Re-read what we now own: the previous writer may have checkpointed after our scan.
    const c2: Candidate = { ...c, path: mine, length: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    if (c.kind === 'ours') c2.trailer = await readTrailer(fh, st.size);
    const resume = usableResume(c2, o.expected) ?? { kind: 'none' };
    if (resume.kind === 'none') await fh.truncate(0);
    return new OwnedPartial(mine, o.writerId, fh, st.ino, resume);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

async function createFresh(o: AcquireOptions): Promise<OwnedPartial> {
  const mine = partialPath(o.dir, o.key, o.writerId);
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_TRUNC;
  let fh: FileHandle;
  try {
    fh = await fsp.open(mine, flags, 0o666);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
    await mkdirp(o.dir); // created lazily: one syscall less per file
    fh = await fsp.open(mine, flags, 0o666);
  }
  return new OwnedPartial(mine, o.writerId, fh, undefined, { kind: 'none' }, true);
}

/**
 * Partial names in a directory, listed once and reused for `ttlMs`. Small files look here
 * instead of listing the directory each (200 small files of one repo: one readdir, not 200 of a
 * directory that grows to 200 entries). A partial created after the listing by another live
 * process is missed: both then download the same small file into their own partials and the
 * second rename replaces the first with identical verified bytes; the blob lock normally
 * prevents even that.
 */
export class PartialListing {
  private readonly dirs = new Map<string, { at: number; heads: Promise<Map<string, string[]>> }>();
  constructor(private readonly ttlMs: number) {}

  /** Names in `dir` that are partials of `key` (ours or huggingface_hub's). */
  async partialsOf(dir: string, key: string): Promise<string[]> {
    const now = Date.now();
    let entry = this.dirs.get(dir);
    if (!entry || now - entry.at > this.ttlMs) {
      entry = { at: now, heads: listByHead(dir) };
      this.dirs.set(dir, entry);
    }
    const names = (await entry.heads).get(headOf(key)) ?? [];
    return names.filter((n) => classifyPartialName(n, key) !== undefined);
  }
}

/** Names up to their first dot: a partial `<key>.<id>.incomplete` shares it with its key. */
function headOf(name: string): string {
  const i = name.indexOf('.');
  return i < 0 ? name : name.slice(0, i);
}

async function listByHead(dir: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    if (!n.endsWith('.incomplete')) continue;
    const h = headOf(n);
    const list = out.get(h);
    if (list) list.push(n);
    else out.set(h, [n]);
  }
  return out;
}

/**
 * acquirePartial for a small file: when the listing shows no partial of its key (the usual
 * case) a fresh partial is created at once, without the full scan and the "who started first"
 * check (racing small downloads cost at most one duplicate small download, never a wrong file).
 */
export async function acquireSmallPartial(o: AcquireOptions, listing: PartialListing): Promise<Acquired> {
  if (o.signal?.aborted) throw AbortedError.from(o.signal);
  if ((await listing.partialsOf(o.dir, o.key)).length > 0) return acquirePartial(o);
  return { kind: 'owned', partial: await createFresh(o) };
}

/**
 * Two writers that started at the same moment both created fresh partials: the one with the
 * smaller writer id keeps going, the other deletes its own and waits. The smallest id never
 * yields, so someone always proceeds.
 */
async function shouldYield(o: AcquireOptions, seen: Map<string, Observation>): Promise<boolean> {
  const now = Date.now();
  for (const c of await scan(o.dir, o.key)) {
    if (c.kind !== 'ours' || c.writerId >= o.writerId) continue;
    if (c.trailer && !stateMatches(c.trailer.state, o.expected)) continue;
    if (!isDead(c, observe(seen, c, now), now, o)) return true;
  }
  return false;
}
