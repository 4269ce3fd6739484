// How the CLI talks: results on stdout (a path, a table, or JSON), everything else on stderr.
// Progress is live bars on a TTY, periodic plain lines otherwise, JSON lines with --json, and
// nothing with --quiet. Errors become one line + a hint + a distinct exit code.
import { ExitCode, HubcacheError, OfflineMissError, type ExitCodeValue } from '../errors.js';
import type { ProgressEvent } from '../download/types.js';
import { formatBytes } from '../util/format.js';
import { fitBarLine } from './progress-line.js';

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  /** Live bars; default: stderr is a TTY and not json/quiet. */
  tty: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Terminal width when the stream does not say (default 80). */
  columns?: number;
}

export class Output {
  /** The live bars on screen, if any: other stderr lines must go through them. */
  private bars: BarProgress | undefined;
  constructor(readonly o: OutputOptions) {}

  /** A line for the user now (e.g. "Interrupted"), printed above live bars rather than under them. */
  notice(text: string): void {
    if (this.bars) this.bars.line(text);
    else this.o.stderr.write(`\n${text}\n`);
  }

  /** The command's result, for `$(hubcache ...)`. */
  result(text: string): void {
    this.o.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
  json(value: unknown): void {
    this.o.stdout.write(`${JSON.stringify(value)}\n`);
  }
  info(text: string): void {
    if (!this.o.quiet && !this.o.json) this.o.stderr.write(`${text}\n`);
  }
  warn(text: string): void {
    if (this.o.json) this.o.stderr.write(`${JSON.stringify({ type: 'warning', message: text })}\n`);
    else this.o.stderr.write(`warning: ${text}\n`);
  }

  /** Prints an error and returns the exit code it maps to. */
  error(err: unknown): ExitCodeValue {
    const code = err instanceof HubcacheError ? err.exitCode : ExitCode.generic;
    const message = err instanceof Error ? err.message : String(err);
    const hint = err instanceof HubcacheError ? err.hint : undefined;
    if (this.o.json) {
      const e: Record<string, unknown> = {
        type: 'error',
        error: err instanceof Error ? err.name : 'Error',
        message,
        exitCode: code,
      };
      if (hint) e.hint = hint;
      if (err instanceof OfflineMissError && err.missing.length > 0) e.missing = err.missing;
      this.o.stderr.write(`${JSON.stringify(e)}\n`);
    } else {
      this.o.stderr.write(`error: ${message}\n`);
      if (hint) this.o.stderr.write(`hint: ${hint}\n`);
      if (!(err instanceof HubcacheError) && err instanceof Error && process.env.HUBCACHE_DEBUG)
        this.o.stderr.write(`${err.stack}\n`);
    }
    return code;
  }

  /** A progress sink for downloads, matched to the output mode. */
  progress(): ProgressReporter {
    if (this.o.json) return new JsonProgress(this.o.stderr);
    if (this.o.quiet) return { onEvent: () => undefined, stop: () => undefined };
    if (!this.o.tty) return new LineProgress(this.o.stderr);
    this.bars = new BarProgress(this.o.stderr, this.o.columns ?? 80);
    return this.bars;
  }
}

export interface ProgressReporter {
  onEvent(e: ProgressEvent): void;
  stop(): void;
}

/** One JSON object per line on stderr; file-progress throttled to 2/s per file. */
class JsonProgress implements ProgressReporter {
  private last = new Map<string, number>();
  constructor(private readonly out: NodeJS.WritableStream) {}
  onEvent(e: ProgressEvent): void {
    if (e.type === 'file-progress') {
      const now = Date.now();
      if (now - (this.last.get(e.path) ?? 0) < 500 && e.bytes < e.total) return;
      this.last.set(e.path, now);
    }
    const payload =
      e.type === 'plan' ? { ...e, files: e.files.map((f) => ({ path: f.path, size: f.size, status: f.status })) } : e;
    this.out.write(`${JSON.stringify(payload)}\n`);
  }
  stop(): void {}
}

/**
 * What the plain and bar reporters count: bytes still to fetch (the plan), bytes done per file in
 * flight, and what came from resumed partials, so the speed counts only bytes fetched now.
 */
class Totals {
  total = 0;
  readonly started = Date.now();
  private planned = new Map<string, number>();
  private perFile = new Map<string, { bytes: number; resumed: number }>();
  plan(e: Extract<ProgressEvent, { type: 'plan' }>): void {
    this.total = e.downloadBytes;
    for (const f of e.files) if (f.status === 'planned') this.planned.set(f.path, f.size);
  }
  /** Returns the resumed bytes when this is the file's first progress event after a resume. */
  progress(e: Extract<ProgressEvent, { type: 'file-progress' }>): number {
    const first = !this.perFile.has(e.path);
    this.perFile.set(e.path, { bytes: e.bytes, resumed: e.resumedBytes });
    return first ? e.resumedBytes : 0;
  }
  /**
   * A planned file that ended without a download (another entry or process fetched the same blob,
   * it was linked or copied) leaves the total, or the total bar would stop short of 100%.
   */
  fileDone(e: Extract<ProgressEvent, { type: 'file-done' }>): void {
    if (e.status === 'downloaded') {
      const f = this.perFile.get(e.path);
      this.perFile.set(e.path, { bytes: e.size, resumed: f?.resumed ?? 0 });
    } else if (this.planned.has(e.path)) {
      this.total -= this.planned.get(e.path) ?? 0;
      this.perFile.delete(e.path);
    }
    this.planned.delete(e.path);
  }
  get done(): number {
    let s = 0;
    for (const v of this.perFile.values()) s += v.bytes;
    return s;
  }
  get resumed(): number {
    let s = 0;
    for (const v of this.perFile.values()) s += v.resumed;
    return s;
  }
  /** Bytes per second fetched over the network (resumed bytes excluded). */
  speed(seconds = (Date.now() - this.started) / 1000): number {
    return seconds > 0 ? Math.max(0, this.done - this.resumed) / seconds : 0;
  }
  /** The lines every reporter prints: the plan, a resume, the end. */
  planLine(e: Extract<ProgressEvent, { type: 'plan' }>): string {
    const n = e.files.filter((f) => f.status === 'planned').length;
    return `${e.repo} @ ${e.commit.slice(0, 8)}: ${e.files.length} files, ${n} to download (${formatBytes(e.downloadBytes)})`;
  }
  resumeLine(path: string, resumed: number, size: number): string {
    return `${path}: resuming ${formatBytes(resumed)}, fetching ${formatBytes(Math.max(0, size - resumed))}`;
  }
  summaryLine(e: Extract<ProgressEvent, { type: 'done' }>): string {
    const fetched = Math.max(0, this.done - this.resumed);
    const resumed = this.resumed > 0 ? ` (resumed ${formatBytes(this.resumed)}, fetched ${formatBytes(fetched)})` : '';
    const speed = e.seconds > 0 && fetched > 0 ? `, ${formatBytes(this.speed(e.seconds))}/s` : '';
    return `downloaded ${formatBytes(e.downloadedBytes)} in ${e.seconds.toFixed(1)} s${resumed}${speed}`;
  }
}

/** Not a TTY (CI logs, pipes): one line every few seconds, plus a line per finished file. */
class LineProgress implements ProgressReporter {
  private t = new Totals();
  private lastLine = 0;
  constructor(private readonly out: NodeJS.WritableStream) {}
  onEvent(e: ProgressEvent): void {
    if (e.type === 'plan') {
      this.t.plan(e);
      this.out.write(`${this.t.planLine(e)}\n`);
    } else if (e.type === 'file-progress') {
      const resumed = this.t.progress(e);
      if (resumed > 0) this.out.write(`  ${this.t.resumeLine(e.path, resumed, e.total)}\n`);
      const now = Date.now();
      if (now - this.lastLine > 5000) {
        this.lastLine = now;
        this.out.write(
          `  ${formatBytes(this.t.done)} / ${formatBytes(this.t.total)} at ${formatBytes(this.t.speed())}/s\n`,
        );
      }
    } else if (e.type === 'file-done') {
      this.t.fileDone(e);
      if (e.status === 'downloaded') this.out.write(`  done ${e.path} (${formatBytes(e.size)})\n`);
    } else if (e.type === 'warning') {
      this.out.write(`warning: ${e.message}\n`);
    } else if (e.type === 'done') {
      this.out.write(`${this.t.summaryLine(e)}\n`);
    }
  }
  stop(): void {}
}

/**
 * A TTY: a total bar and one bar per file in flight, redrawn in place below the lines that stay
 * (plan, resumes, finished files, warnings, the summary), each bar fitted to the terminal width.
 */
class BarProgress implements ProgressReporter {
  private t = new Totals();
  private bars = new Map<string, { size: number; bytes: number; started: number; startBytes: number }>();
  private drawn = 0;
  private lastDraw = 0;
  private stopped = false;
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly fallbackColumns: number,
  ) {}
  private get columns(): number {
    return (this.out as Partial<NodeJS.WriteStream>).columns || this.fallbackColumns;
  }
  private get rows(): number {
    return (this.out as Partial<NodeJS.WriteStream>).rows || 24;
  }
  onEvent(e: ProgressEvent): void {
    if (e.type === 'plan') {
      this.t.plan(e);
      this.log(this.t.planLine(e));
    } else if (e.type === 'file-progress') {
      const resumed = this.t.progress(e);
      let b = this.bars.get(e.path);
      if (!b) {
        b = { size: e.total, bytes: e.bytes, started: Date.now(), startBytes: e.bytes };
        this.bars.set(e.path, b);
      }
      b.bytes = e.bytes;
      if (resumed > 0) this.log(this.t.resumeLine(e.path, resumed, e.total));
      else this.draw(false);
    } else if (e.type === 'file-done') {
      this.t.fileDone(e);
      this.bars.delete(e.path);
      if (e.status === 'downloaded') this.log(`done ${e.path} (${formatBytes(e.size)})`);
      else this.draw(true);
    } else if (e.type === 'warning') {
      this.log(`warning: ${e.message}`);
    } else if (e.type === 'done') {
      this.bars.clear();
      this.log(this.t.summaryLine(e));
    }
  }
  /** A line that stays: written above the bars, which are drawn again below it. */
  line(text: string): void {
    this.log(text);
  }
  private log(line: string): void {
    this.erase();
    this.out.write(`${line}\n`);
    this.draw(true);
  }
  private erase(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }
  private draw(force: boolean): void {
    const now = Date.now();
    if (this.stopped || (!force && now - this.lastDraw < 125)) return;
    this.lastDraw = now;
    const cols = this.columns;
    const lines: string[] = [];
    if (this.bars.size > 0 && this.t.total > 0) {
      lines.push(
        fitBarLine(
          { name: 'total', done: Math.min(this.t.done, this.t.total), size: this.t.total, speed: this.t.speed() },
          cols,
        ),
      );
    }
    const room = Math.max(1, this.rows - 2 - lines.length);
    const inFlight = [...this.bars];
    for (const [name, b] of inFlight.slice(0, inFlight.length > room ? room - 1 : room)) {
      const secs = (now - b.started) / 1000;
      lines.push(
        fitBarLine({ name, done: b.bytes, size: b.size, speed: secs > 0 ? (b.bytes - b.startBytes) / secs : 0 }, cols),
      );
    }
    if (inFlight.length > room) lines.push(`… ${inFlight.length - room + 1} more`.slice(0, cols - 1));
    this.erase();
    if (lines.length > 0) this.out.write(`${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }
  stop(): void {
    if (this.stopped) return;
    this.erase();
    this.stopped = true;
  }
}
