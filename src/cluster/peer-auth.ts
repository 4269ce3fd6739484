// Requests between replicas of one cluster carry an HMAC of method, path and time made with the cluster
// secret (`--cluster-secret`), valid for a short window: a peer endpoint is never reachable without it.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const PEER_HEADER = 'x-hubcache-peer';
/** How far a signature's time may be from ours (replay window and clock differences). */
export const PEER_AUTH_WINDOW_MS = 30_000;

function mac(secret: string, method: string, path: string, time: number, replica: string): string {
  return createHmac('sha256', secret).update(`${method.toUpperCase()}\n${path}\n${time}\n${replica}`).digest('hex');
}

/** The header value a replica sends with a peer request: `<replica id>:<unix ms>:<hmac hex>`. */
export function signPeerRequest(
  secret: string,
  replica: string,
  method: string,
  path: string,
  now = Date.now(),
): string {
  return `${replica}:${now}:${mac(secret, method, path, now, replica)}`;
}

/** `ok` for a valid, current signature of this request; `expired` when valid but outside the window. */
export type PeerCheck = 'ok' | 'expired' | 'invalid';

/** Checks a peer request's signature header against this request's method and path (with query). */
export function verifyPeerRequest(
  secret: string,
  header: string | string[] | undefined,
  method: string,
  path: string,
  now = Date.now(),
): PeerCheck {
  if (typeof header !== 'string') return 'invalid';
  const m = /^([A-Za-z0-9._-]{1,100}):(\d{1,16}):([0-9a-f]{64})$/.exec(header);
  if (!m) return 'invalid';
  const [, replica, t, sig] = m as unknown as [string, string, string, string];
  const time = Number(t);
  const want = Buffer.from(mac(secret, method, path, time, replica), 'hex');
  if (!timingSafeEqual(want, Buffer.from(sig, 'hex'))) return 'invalid';
  return Math.abs(now - time) > PEER_AUTH_WINDOW_MS ? 'expired' : 'ok';
}
