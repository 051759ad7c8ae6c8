// Times, durations and numbers as the operator reads them, with the browser's
// Intl only: every time states its zone (the operator's choice, the browser's
// zone by default or UTC, or a zone given, such as a job's schedule zone),
// dates and numbers are written the way the operator's language writes them.
import { locale, t } from './i18n.js';
import { browserZone, prefs } from './prefs.js';

/** The IANA zone times are shown in: the browser's or UTC, as the operator chose. */
export const viewZone = () => (prefs.zone === 'UTC' ? 'UTC' : browserZone());

const formatters = new Map();
function formatter(options) {
  const key = `${locale()}|${JSON.stringify(options)}`;
  let f = formatters.get(key);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat(locale(), options);
    } catch {
      f = new Intl.DateTimeFormat(locale(), { ...options, timeZone: 'UTC' });
    }
    formatters.set(key, f);
  }
  return f;
}

const DATE = { year: 'numeric', month: 'short', day: 'numeric' };
const CLOCK = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };

/**
 * A time with its date, to the second, and its zone: "25 Nov 2026, 14:03:07
 * CET" (in `zone`, by default the operator's); '—' for none.
 */
export function time(ms, zone = viewZone()) {
  if (!ms) return '—';
  return formatter({ ...DATE, ...CLOCK, second: '2-digit', timeZone: zone, timeZoneName: 'short' }).format(ms);
}

/**
 * A time to the minute with its zone, for dense lists: "25 Nov, 14:03 CET"
 * (the year only for a time ten months or more away); '—' for none.
 */
export function shortTime(ms, zone = viewZone()) {
  if (!ms) return '—';
  const thisYear = Math.abs(ms - Date.now()) < 300 * 86400000;
  return formatter({ ...DATE, year: thisYear ? undefined : 'numeric', ...CLOCK, timeZone: zone, timeZoneName: 'short' }).format(ms);
}

/** The time of day only, to the second, without the zone (a log line's, under a heading naming it): 14:03:07. */
export function clock(ms, zone = viewZone()) {
  if (!ms) return '—';
  return formatter({ ...CLOCK, second: '2-digit', timeZone: zone }).format(ms);
}

/** A day's date without time: "25 Nov 2026". */
export function date(ms, zone = viewZone()) {
  if (!ms) return '—';
  return formatter({ ...DATE, timeZone: zone }).format(ms);
}

/** The short name of `zone` at the time `ms` (now by default): "CET", "GMT+1", "UTC". */
export function zoneName(zone = viewZone(), ms = Date.now()) {
  const part = formatter({ timeZone: zone, timeZoneName: 'short' }).formatToParts(ms).find((p) => p.type === 'timeZoneName');
  return part ? part.value : zone;
}

/** A machine-readable time for <time datetime>: 2026-11-25T13:03:07Z. */
export const isoTime = (ms) => (ms ? new Date(ms).toISOString().replace('.000Z', 'Z') : '');

/** A number as the operator's language writes it: 12,345 or 12 345. */
export function number(n, options) {
  return new Intl.NumberFormat(locale(), options).format(n);
}

/** A duration: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min (the decimal sign as the language writes it). */
export function duration(ms) {
  if (ms === undefined || ms === null || ms < 0) return '—';
  const pad = (n) => String(n).padStart(2, '0');
  if (ms < 1000) return t('{n} ms', { n: number(Math.round(ms)) });
  if (ms < 60000) return t('{n} s', { n: number(ms / 1000, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
  if (ms < 3600000) return t('{min} min {s} s', { min: Math.floor(ms / 60000), s: pad(Math.floor(ms / 1000) % 60) });
  return t('{h} h {min} min', { h: number(Math.floor(ms / 3600000)), min: pad(Math.floor(ms / 60000) % 60) });
}

/** How far `ms` is from `now`, in words of the language: "in 2 hours", "5 minutes ago". */
export function relative(ms, now = Date.now()) {
  const diff = ms - now;
  const abs = Math.abs(diff);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto', style: 'short' });
  if (abs < 60000) return rtf.format(Math.round(diff / 1000), 'second');
  if (abs < 3600000) return rtf.format(Math.round(diff / 60000), 'minute');
  if (abs < 2 * 86400000) return rtf.format(Math.round(diff / 3600000), 'hour');
  return rtf.format(Math.round(diff / 86400000), 'day');
}

/** A start still to come with its time and how soon: "starts 25 Nov 2026, 18:30 CET, in 2 hr". */
export const startsAt = (ms, zone) => t('starts {time}, {rel}', { time: shortTime(ms, zone), rel: relative(ms) });

/**
 * Tick labels for a chart's time axis (uPlot's axis `values`; seconds in):
 * years, months ("Nov 2026") or dates ("4 Nov") when the ticks are that far
 * apart, else times of day (to the second when they are seconds apart), in
 * the operator's zone and language.
 */
export function axisTimes(u, splits) {
  const step = splits.length > 1 ? splits[1] - splits[0] : 86400;
  const zone = viewZone();
  const f =
    step >= 300 * 86400
      ? formatter({ year: 'numeric', timeZone: zone })
      : step >= 28 * 86400
        ? formatter({ month: 'short', year: 'numeric', timeZone: zone })
        : step >= 86400
          ? formatter({ month: 'short', day: 'numeric', timeZone: zone })
          : formatter({ ...CLOCK, second: step < 60 ? '2-digit' : undefined, timeZone: zone });
  return splits.map((s) => f.format(s * 1000));
}

/**
 * The value of a <input type="datetime-local"> as epoch ms, read as a time
 * in `zone` (by default the operator's), or NaN when it is not a time.
 */
export function fromLocalInput(text, zone = viewZone()) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d))?$/.exec(text || '');
  if (!m) return NaN;
  const asUtc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  // The zone's offset at that moment, found by formatting it there (twice, across a change of offset).
  let ms = asUtc;
  for (let i = 0; i < 2; i++) ms = asUtc - offsetOf(zone, ms);
  return ms;
}

/** A time as the value of a <input type="datetime-local"> in `zone` (by default the operator's). */
export function toLocalInput(ms, zone = viewZone()) {
  return new Date(ms + offsetOf(zone, ms)).toISOString().slice(0, 16);
}

function offsetOf(zone, ms) {
  const p = {};
  for (const x of new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(ms))
    p[x.type] = x.value;
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}
