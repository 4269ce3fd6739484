// What the mirror reports about itself, as typed events: the one hook for metrics, the dashboard
// and tests. Emitting is synchronous and cheap; a listener that throws is logged, never fatal.
import { EventEmitter } from 'node:events';

/** Where a response body came from. */
export type BodySource = 'store' | 'fill' | 'upstream' | 'none';

export interface MirrorEvents {
  /** One per finished response (also cut ones: `aborted`). */
  request: [
    {
      id: string;
      method: string;
      /** Route label, e.g. `hf.resolve`, `hf.tree`, `health` (bounded set: fine as a metric label). */
      route: string;
      status: number;
      /** Body bytes actually written to the socket. */
      bytes: number;
      source: BodySource;
      /** Served from stale metadata because upstream failed (`X-Hubcache-Stale: 1`). */
      stale: boolean;
      aborted: boolean;
      ms: number;
    },
  ];
  /** A blob fill started (one per single-flight group). */
  'fill-start': [{ key: string; repo: string; path: string; size: number; upstream: string }];
  /** Throttled progress of a fill: contiguous prefix on disk, callers waiting on it. */
  'fill-progress': [{ key: string; bytes: number; size: number; waiters: number }];
  'fill-end': [{ key: string; ok: boolean; bytes: number; ms: number; error?: string }];
  /** A caller joined a running fill (single-flight hit). */
  'fill-join': [{ key: string; waiters: number }];
  /** One upstream exchange (metadata; blob bodies are counted by fill-end). */
  upstream: [{ upstream: string; op: string; status?: number; ms: number; error?: string }];
  /** A file huggingface_hub will not fetch over plain HTTP (> 50 GB). */
  'large-file': [{ repo: string; path: string; size: number }];
}

export class MirrorEventBus extends EventEmitter<MirrorEvents> {
  constructor() {
    super({ captureRejections: false });
    this.setMaxListeners(50);
  }
}
