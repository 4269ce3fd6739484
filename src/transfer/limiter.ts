// Shared budgets of one engine: connections (a FIFO semaphore) and hash buffer memory.
import { AbortedError } from '../errors.js';

/** FIFO counting semaphore; waiters leave the queue when their signal aborts. */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<{ grant: () => void }> = [];

  constructor(readonly capacity: number) {
    this.available = capacity;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new AbortedError();
    if (this.available > 0 && this.waiters.length === 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new AbortedError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant();
    else this.available++;
  }
}

/** Byte budget for out-of-order data kept in memory; callers spill to disk when it says no. */
export class MemoryBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  tryTake(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  get inUse(): number {
    return this.used;
  }
}
