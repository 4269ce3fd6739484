// POST /api/hubcache/prefetch {repo, revision?, include?, exclude?}: warms the store before a
// rollout. Answers 202 with a job id at once; the job downloads with the same engine and layouts
// as `hubcache download`, from the primary HF upstream (or the ModelScope upstream for
// `modelscope:` ids), with the caller's own hub token if they sent one (never the mirror's: a
// prefetch must not pull what the caller could not fetch). Progress: GET
// /api/hubcache/prefetch/{id}, the status JSON and the dashboard. The mirror's API keys (when set)
// guard this route like every other.
import { randomBytes } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { downloadHf } from '../download/hf.js';
import { downloadModelScope } from '../download/modelscope.js';
import type { ProgressEvent } from '../download/types.js';
import { parseRepoRef } from '../hubs/repo-ref.js';
import type { RepoRef } from '../hubs/types.js';
import { sendError } from './reply.js';
import type { MirrorServices, RouteModule } from './services.js';

export interface PrefetchJob {
  id: string;
  repo: string;
  revision: string;
  include: string[];
  exclude: string[];
  state: 'running' | 'done' | 'failed';
  /** Resolved commit (HF) or revision name (ModelScope), once planned. */
  commit?: string;
  files: number;
  filesDone: number;
  totalBytes: number;
  /** Bytes on disk for this job: cached ones count at once, downloads as they progress. */
  doneBytes: number;
  downloadedBytes: number;
  error?: string;
  startedAt: number;
  endedAt?: number;
}

const MAX_JOBS_KEPT = 200;

export class PrefetchJobs {
  private readonly jobs = new Map<string, PrefetchJob>();

  get(id: string): PrefetchJob | undefined {
    return this.jobs.get(id);
  }

  /** Newest first. */
  list(): PrefetchJob[] {
    return [...this.jobs.values()].reverse().map((j) => ({ ...j }));
  }

  add(j: PrefetchJob): void {
    this.jobs.set(j.id, j);
    for (const [id, old] of this.jobs) {
      if (this.jobs.size <= MAX_JOBS_KEPT) break;
      if (old.state !== 'running') this.jobs.delete(id);
    }
  }
}

const jobs = new WeakMap<MirrorServices, PrefetchJobs>();

export function jobsOf(s: MirrorServices): PrefetchJobs {
  let j = jobs.get(s);
  if (!j) {
    j = new PrefetchJobs();
    jobs.set(s, j);
  }
  return j;
}

interface PrefetchBody {
  repo?: unknown;
  revision?: unknown;
  include?: unknown;
  exclude?: unknown;
}

function stringList(v: unknown, name: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  throw new Error(`"${name}" must be a string or a list of strings`);
}

export const prefetchRoutes: RouteModule = (app, s) => {
  const book = jobsOf(s);

  app.post('/api/hubcache/prefetch', async (req, reply) => {
    req.hubcache.route = 'hubcache.prefetch';
    let body: PrefetchBody;
    let repo: RepoRef;
    let include: string[];
    let exclude: string[];
    try {
      body = JSON.parse(typeof req.body === 'string' && req.body !== '' ? req.body : 'null') as PrefetchBody;
      if (typeof body !== 'object' || body === null)
        throw new Error('the body must be a JSON object: {"repo": "org/name", ...}');
      if (typeof body.repo !== 'string' || body.repo === '')
        throw new Error('"repo" (e.g. "org/name" or "modelscope:org/name") is required');
      if (body.revision !== undefined && (typeof body.revision !== 'string' || body.revision === ''))
        throw new Error('"revision" must be a non-empty string');
      repo = parseRepoRef(body.repo, body.revision ? { revision: body.revision } : {});
      include = stringList(body.include, 'include');
      exclude = stringList(body.exclude, 'exclude');
    } catch (err) {
      return sendError(reply, 400, `Bad prefetch request: ${(err as Error).message}`, 'MirrorBadRequest');
    }
    if (!s.access.repoAllowed(repo.id))
      return sendError(reply, 403, `This mirror does not serve ${repo.id}`, 'MirrorRepoDenied');
    if (s.options.offline)
      return sendError(reply, 409, 'The mirror is offline (--offline): nothing can be prefetched', 'MirrorOffline');
    const revision = repo.revision ?? (repo.hub === 'modelscope' ? 'master' : 'main');
    const job: PrefetchJob = {
      id: `p${randomBytes(6).toString('hex')}`,
      repo: `${repo.hub === 'modelscope' ? 'modelscope:' : repo.type === 'model' ? '' : `${repo.type}s/`}${repo.id}`,
      revision,
      include,
      exclude,
      state: 'running',
      files: 0,
      filesDone: 0,
      totalBytes: 0,
      doneBytes: 0,
      downloadedBytes: 0,
      startedAt: Date.now(),
    };
    book.add(job);
    const auth = s.callerOf(req).authorization;
    const token = auth ? auth.slice('Bearer '.length) : undefined;
    void run(s, job, repo, token);
    s.log.info({ job: job.id, repo: job.repo, revision }, 'prefetch started');
    return reply
      .code(202)
      .header('location', `/api/hubcache/prefetch/${job.id}`)
      .send({ ...job });
  });

  app.get('/api/hubcache/prefetch', async (req) => {
    req.hubcache.route = 'hubcache.prefetch';
    return { jobs: book.list() };
  });

  app.get<{ Params: { id: string } }>('/api/hubcache/prefetch/:id', async (req, reply: FastifyReply) => {
    req.hubcache.route = 'hubcache.prefetch';
    const job = book.get(req.params.id);
    if (!job) return sendError(reply, 404, `No prefetch job ${req.params.id}`, 'MirrorNoSuchJob');
    return { ...job };
  });
};

async function run(s: MirrorServices, job: PrefetchJob, repo: RepoRef, token: string | undefined): Promise<void> {
  const fileBytes = new Map<string, number>();
  const onProgress = (e: ProgressEvent): void => {
    if (e.type === 'plan') {
      job.commit = e.commit;
      job.files = e.files.length;
      job.totalBytes = e.totalBytes;
      job.doneBytes = e.totalBytes - e.downloadBytes;
    } else if (e.type === 'file-progress') {
      job.doneBytes += e.bytes - (fileBytes.get(e.path) ?? 0);
      fileBytes.set(e.path, e.bytes);
    } else if (e.type === 'file-done') {
      job.filesDone++;
    }
  };
  const opts = { repo, revision: job.revision, include: job.include, exclude: job.exclude, onProgress };
  try {
    const r =
      repo.hub === 'modelscope'
        ? await downloadModelScope(
            {
              cacheDir: s.options.cacheDir,
              endpoint: s.options.modelscopeUpstream,
              token,
              offline: false,
              engine: s.cache.engine,
            },
            repo,
            opts,
          )
        : await downloadHf(s.hfContext(s.upstreams.primary, token), repo, opts);
    job.commit = r.commit;
    job.downloadedBytes = r.downloadedBytes;
    job.doneBytes = job.totalBytes;
    job.state = 'done';
    s.log.info({ job: job.id, repo: job.repo, commit: r.commit, downloadedBytes: r.downloadedBytes }, 'prefetch done');
  } catch (err) {
    job.state = 'failed';
    job.error = (err as Error).message;
    s.log.warn({ job: job.id, repo: job.repo, error: job.error }, 'prefetch failed');
  } finally {
    job.endedAt = Date.now();
  }
}
