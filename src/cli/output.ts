// How the CLI talks: results on stdout (a path, a table, or JSON), everything else on stderr.
// Progress is live bars on a TTY, periodic plain lines otherwise, JSON lines with --json, and
// nothing with --quiet. Errors become one line + a hint + a distinct exit code.
import cliProgress from 'cli-progress';
import { ExitCode, HubcacheError, OfflineMissError, type ExitCodeValue } from '../errors.js';
import type { ProgressEvent } from '../download/types.js';
import { formatBytes } from '../util/format.js';

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  /** Live bars; default: stderr is a TTY and not json/quiet. */
  tty: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}


export class Output {
  constructor(readonly o: OutputOptions) {}

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
      const e: Record<string, unknown> = { type: 'error', error: err instanceof Error ? err.name : 'Error', message, exitCode: code };
      if (hint) e.hint = hint;
      if (err instanceof OfflineMissError && err.missing.length > 0) e.missing = err.missing;
      this.o.stderr.write(`${JSON.stringify(e)}\n`);
    } else {
      this.o.stderr.write(`error: ${message}\n`);
      if (hint) this.o.stderr.write(`hint: ${hint}\n`);
      if (!(err instanceof HubcacheError) && err instanceof Error && process.env.HUBCACHE_DEBUG) this.o.stderr.write(`${err.stack}\n`);
    }
    return code;
  }

  /** A progress sink for downloads, matched to the output mode. */
  progress(): ProgressReporter {
    if (this.o.json) return new JsonProgress(this.o.stderr);
    if (this.o.quiet) return { onEvent: () => undefined, stop: () => undefined };
    return this.o.tty ? new BarProgress(this.o.stderr) : new LineProgress(this.o.stderr);
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
    const payload = e.type === 'plan' ? { ...e, files: e.files.map((f) => ({ path: f.path, size: f.size, status: f.status })) } : e;
    this.out.write(`${JSON.stringify(payload)}\n`);
  }
  stop(): void {}
}

/** Totals for the plain and bar reporters: bytes done across files, speed since start. */
class Totals {
  total = 0;
  readonly perFile = new Map<string, number>();
  readonly started = Date.now();
  resumed = 0;
  update(path: string, bytes: number): void {
    this.perFile.set(path, bytes);
  }
  get done(): number {
    let s = 0;
    for (const v of this.perFile.values()) s += v;
    return s;
  }
  speed(): number {
    const secs = (Date.now() - this.started) / 1000;
    return secs > 0 ? (this.done - this.resumed) / secs : 0;
  }
}

/** Not a TTY (CI logs, pipes): one line every few seconds, plus a line per finished file. */
class LineProgress implements ProgressReporter {
  private t = new Totals();
  private lastLine = 0;
  constructor(private readonly out: NodeJS.WritableStream) {}
  onEvent(e: ProgressEvent): void {
    if (e.type === 'plan') {
      this.t.total = e.downloadBytes;
      const n = e.files.filter((f) => f.status === 'planned').length;
      this.out.write(`${e.repo} @ ${e.commit.slice(0, 8)}: ${e.files.length} files, ${n} to download (${formatBytes(e.downloadBytes)})\n`);
    } else if (e.type === 'file-progress') {
      this.t.update(e.path, e.bytes);
      const now = Date.now();
      if (now - this.lastLine > 5000) {
        this.lastLine = now;
        this.out.write(`  ${formatBytes(this.t.done)} / ${formatBytes(this.t.total)} at ${formatBytes(this.t.speed())}/s\n`);
      }
    } else if (e.type === 'file-done' && e.status === 'downloaded') {
      this.out.write(`  done ${e.path} (${formatBytes(e.size)})\n`);
    } else if (e.type === 'warning') {
      this.out.write(`warning: ${e.message}\n`);
    } else if (e.type === 'done') {
      this.out.write(`downloaded ${formatBytes(e.downloadedBytes)} in ${e.seconds.toFixed(1)} s\n`);
    }
  }
  stop(): void {}
}

/** A TTY: a total bar and one bar per file in flight (bytes, speed, ETA). */
class BarProgress implements ProgressReporter {
  private multi: cliProgress.MultiBar;
  private total: cliProgress.SingleBar | undefined;
  private bars = new Map<string, { bar: cliProgress.SingleBar; started: number; startBytes: number }>();
  private t = new Totals();
  constructor(private readonly out: NodeJS.WritableStream) {
    this.multi = new cliProgress.MultiBar(
      {
        stream: out,
        format: ' {bar} {percentage}% | {name} | {done}/{size} | {speed}/s | ETA {eta_formatted}',
        barCompleteChar: '█',
        barIncompleteChar: '░',
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
        fps: 8,
      },
      cliProgress.Presets.shades_classic,
    );
  }
  private payload(name: string, done: number, size: number, speed: number) {
    return { name: name.length > 40 ? `…${name.slice(-39)}` : name.padEnd(40), done: formatBytes(done), size: formatBytes(size), speed: formatBytes(speed) };
  }
  onEvent(e: ProgressEvent): void {
    if (e.type === 'plan') {
      this.t.total = e.downloadBytes;
      if (e.downloadBytes > 0) this.total = this.multi.create(e.downloadBytes, 0, this.payload('total', 0, e.downloadBytes, 0));
    } else if (e.type === 'file-progress') {
      this.t.update(e.path, e.bytes);
      let b = this.bars.get(e.path);
      if (!b) {
        this.t.resumed += e.resumedBytes;
        b = { bar: this.multi.create(e.total, 0, this.payload(e.path, 0, e.total, 0)), started: Date.now(), startBytes: e.bytes };
        this.bars.set(e.path, b);
      }
      const secs = (Date.now() - b.started) / 1000;
      b.bar.update(e.bytes, this.payload(e.path, e.bytes, e.total, secs > 0 ? (e.bytes - b.startBytes) / secs : 0));
      this.total?.update(this.t.done, this.payload('total', this.t.done, this.t.total, this.t.speed()));
    } else if (e.type === 'file-done') {
      const bar = this.bars.get(e.path)?.bar;
      if (bar) {
        this.multi.remove(bar);
        this.bars.delete(e.path);
        if (e.status === 'downloaded') this.multi.log(`done ${e.path} (${formatBytes(e.size)})\n`);
      }
    } else if (e.type === 'warning') {
      this.multi.log(`warning: ${e.message}\n`);
    }
  }
  stop(): void {
    this.multi.stop();
  }
}
