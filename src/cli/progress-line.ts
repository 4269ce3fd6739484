// One progress bar line fitted to the terminal: the numbers (percent, size, speed, ETA) always
// fit; the file name is shortened first, then the bar.
import { formatBytes } from '../util/format.js';

export interface BarLine {
  name: string;
  done: number;
  size: number;
  /** Bytes per second over the network (0 when unknown or stalled). */
  speed: number;
}

/** Seconds → `42s`, `3m05s`, `2h07m`; `--` when unknown (no speed yet, or stalled). */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `…the/end/of/a/long/name` in at most `width` characters (the end says most about a file). */
export function shortenName(name: string, width: number): string {
  if (width <= 0) return '';
  if (name.length <= width) return name;
  return width === 1 ? '…' : `…${name.slice(name.length - width + 1)}`;
}

const NAME_MIN = 12;
const NAME_MAX = 40;
const BAR_MIN = 10;
const BAR_MAX = 30;

/** The line, at most `columns - 1` characters (the last column would make some terminals wrap). */
export function fitBarLine(l: BarLine, columns: number): string {
  const width = Math.max(1, columns - 1);
  const fraction = l.size > 0 ? Math.min(1, l.done / l.size) : 1;
  const eta = l.speed > 0 ? formatEta((l.size - l.done) / l.speed) : '--';
  const tail = ` ${String(Math.floor(fraction * 100)).padStart(3)}% ${formatBytes(l.done)}/${formatBytes(l.size)} ${formatBytes(l.speed)}/s ETA ${eta}`;
  let rest = width - tail.length;
  if (rest <= 0) return tail.trimStart().slice(0, width);
  const wanted = Math.min(l.name.length, NAME_MAX);
  let nameW = Math.min(wanted, NAME_MIN, rest);
  rest -= nameW;
  let barW = rest >= BAR_MIN + 1 ? BAR_MIN : 0;
  rest -= barW ? barW + 1 : 0;
  const grow = Math.min(rest, wanted - nameW);
  nameW += grow;
  rest -= grow;
  if (barW) barW += Math.min(rest, BAR_MAX - BAR_MIN);
  const filled = Math.round(fraction * barW);
  const bar = barW ? ` ${'█'.repeat(filled)}${'░'.repeat(barW - filled)}` : '';
  return `${shortenName(l.name, nameW).padEnd(nameW)}${bar}${tail}`;
}
