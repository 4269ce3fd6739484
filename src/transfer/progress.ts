// Rate-limited progress reporting for one file.
import type { TransferProgress } from './types.js';

export class ProgressReporter {
  bytes = 0;
  resumedBytes = 0;
  private lastEmit = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly intervalMs: number,
    private readonly sink: ((p: TransferProgress) => void) | undefined,
  ) {}

  /** Set the on-disk count (after a resume or restart) and report it. */
  reset(bytes: number, resumedBytes: number): void {
    this.bytes = bytes;
    this.resumedBytes = resumedBytes;
    this.emit(false, true);
  }

  add(n: number): void {
    this.bytes += n;
    this.emit(false, false);
  }

  finish(): void {
    this.bytes = this.total;
    this.emit(true, true);
  }

  private emit(done: boolean, force: boolean): void {
    if (!this.sink) return;
    const now = Date.now();
    if (!force && now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    try {
      this.sink({ label: this.label, bytes: this.bytes, total: this.total, resumedBytes: this.resumedBytes, done });
    } catch {
      // A failing progress callback must not break the download.
    }
  }
}
