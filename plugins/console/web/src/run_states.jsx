// Honest run states: a run an operator cancelled, one its timeout stopped,
// one stopped at the kernel's shutdown and one closed after a crash (or
// after it ran too long) each have a status of their own, and the run's
// `termination` ({cause, by, reason, limit_ms}) says why in words. Only
// "error" is a failure.
import './run_states.css';
import { t } from './i18n.js';
import { STATUSES, StatusIcon, duration, statusLabel } from './ui.jsx';

/**
 * The statuses of runs terminated for a cause (not failures), beside
 * "cancelled"; `label` is read in the operator's language each time.
 */
export const STOPPED_STATUSES = [
  {
    id: 'timed_out',
    glyph: '⌛',
    get label() {
      return t('Timed out');
    },
  },
  {
    id: 'stopped',
    glyph: '■',
    get label() {
      return t('Stopped at shutdown');
    },
  },
  {
    id: 'recovered',
    glyph: '↺',
    get label() {
      return t('Recovered');
    },
  },
];
const STOPPED = Object.fromEntries(STOPPED_STATUSES.map((s) => [s.id, s]));

/** Every run status, the terminated ones last but cancelled. */
export const RUN_STATUSES = [...STATUSES, ...STOPPED_STATUSES];

/** The statuses that are not failures although the run did not finish. */
export const TERMINATED = new Set(['cancelled', ...STOPPED_STATUSES.map((s) => s.id)]);

/** A status's words, the terminated ones included. */
export const runStatusLabel = (s) => (STOPPED[s] ? STOPPED[s].label : statusLabel(s));

/** The status icon, labelled, for every run status (ui.jsx draws the glyphs). */
export function RunStatusIcon({ status, decorative }) {
  const s = STOPPED[status];
  if (!s || decorative) return <StatusIcon status={status} decorative={decorative} />;
  return (
    <span class={`status status-${status}`} role="img" aria-label={s.label} title={s.label}>
      {s.glyph}
    </span>
  );
}

/**
 * Why a run was terminated, in words: "Cancelled by ann: wrong tenant",
 * "Timed out after 5 min 00 s", "Stopped at shutdown", "Recovered after a
 * crash", "Recovered by ann after running too long: stuck"; empty for a run
 * that was not terminated.
 */
export function terminationText(run) {
  const end = run?.termination;
  if (!end) return '';
  const by = end.by || t('an operator');
  switch (end.cause) {
    case 'operator':
      return end.reason ? t('Cancelled by {by}: {reason}', { by, reason: end.reason }) : t('Cancelled by {by}', { by });
    case 'timeout':
      return end.limit_ms > 0 ? t('Timed out after {duration}', { duration: duration(end.limit_ms) }) : t('Timed out');
    case 'shutdown':
      return t('Stopped at shutdown');
    case 'crash':
      return t('Recovered after a crash');
    case 'stale':
      return end.reason
        ? t('Recovered by {by} after running too long: {reason}', { by, reason: end.reason })
        : t('Recovered by {by} after running too long', { by });
    default:
      return end.cause;
  }
}

/** The words a run's status is shown with: why it was terminated, or its status. */
export const runStateText = (run) => terminationText(run) || runStatusLabel(run.status);
