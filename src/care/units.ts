// Sizes and durations as users type them (`200G`, `1.5GB`, `512MiB`, `30d`, `1h`) and as the
// cache commands print them. Decimal units like huggingface_hub (`1G` = 10^9 bytes); the `i`
// forms are binary, for users who think in GiB.
import { UsageError } from '../errors.js';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  p: 1e15,
  ki: 2 ** 10,
  mi: 2 ** 20,
  gi: 2 ** 30,
  ti: 2 ** 40,
  pi: 2 ** 50,
};

const DURATION_UNITS: Record<string, number> = {
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 7 * 86_400,
  mo: 30 * 86_400,
  y: 365 * 86_400,
};

/** `200G`, `1.5GB`, `512MiB`, `1000` → bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]i?)?b?\s*$/i.exec(text);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) {
    throw new UsageError(`Not a size: "${text}"`, {
      hint: 'Use a number with an optional unit: 500M, 1.5GB, 200G, 10GiB.',
    });
  }
  return Math.round(Number(m[1]) * unit);
}

/** `30d`, `1h`, `90m`, `2w`, `6mo`, `1y`, `45` (seconds) → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|mo|y)?\s*$/i.exec(text);
  const unit = DURATION_UNITS[(m?.[2] ?? 's').toLowerCase()];
  if (!m || unit === undefined) {
    throw new UsageError(`Not a duration: "${text}"`, {
      hint: 'Use a number with a unit: 90s, 30m, 1h, 7d, 2w, 6mo, 1y.',
    });
  }
  return Math.round(Number(m[1]) * unit * 1000);
}

const AGE_STEPS: Array<[label: string, seconds: number, max: number | undefined]> = [
  ['second', 1, 60],
  ['minute', 60, 60],
  ['hour', 3600, 24],
  ['day', 86_400, 6],
  ['week', 7 * 86_400, 6],
  ['month', 30 * 86_400, 11],
  ['year', 365 * 86_400, undefined],
];

/** "3 days ago", like huggingface_hub's `format_timesince`. */
export function formatAge(timestampMs: number, nowMs = Date.now()): string {
  const delta = (nowMs - timestampMs) / 1000;
  if (delta < 20) return 'a few seconds ago';
  let value = 0;
  let label = 'second';
  for (const [l, div, max] of AGE_STEPS) {
    value = Math.round(delta / div);
    label = l;
    if (max !== undefined && value <= max) break;
  }
  return `${value} ${label}${value > 1 ? 's' : ''} ago`;
}
