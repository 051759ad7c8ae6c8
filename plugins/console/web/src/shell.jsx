// What the console's shell needs of its pages, kept out of the pages' own
// chunks (each page is fetched on its first visit, main.jsx) so the sign-in
// page and the shell load only this: the permission each page reads with
// (the menu shows a page only to roles holding it), the menu's counts
// (Attention's, polled with what the panel shows, and the webhook failures
// inbox's) and the maintenance banner in the header.
import { useEffect, useState } from 'preact/hooks';
import { api, query, readLog } from './api.js';
import { t } from './i18n.js';
import { time } from './format.js';
import { useEventCount, useMenuPoll } from './ui.jsx';

/** The permissions the admin features' pages read with. */
export const CACHE_READ = 'cache.read';
export const FEATURE_FLAGS_READ = 'feature_flags.read';
export const MAINTENANCE_READ = 'maintenance.read';
export const MIGRATIONS_READ = 'migrations.read';
export const RATE_LIMITS_READ = 'rate_limits.read';
export const WEBHOOK_FAILURES_READ = 'webhook_failures.read';
export const WORKERS_READ = 'jobs.read';

/** The key a run's failures are grouped and marked seen under: its scheduled job, else its type. */
export const failureKey = (r) => r.scheduled_job_id || `type:${r.job_type}`;

/**
 * Whether this user's Attention lists runs terminated for a cause (cancelled,
 * timed out, stopped, recovered) beside the failures; kept in this browser.
 */
export const attentionStopped = {
  key: (user) => `opk.console.attention.stopped.${user}`,
  get: (user) => localStorage.getItem(attentionStopped.key(user)) === '1',
  set(user, on) {
    localStorage.setItem(this.key(user), on ? '1' : '0');
    window.dispatchEvent(new Event('opk-attention'));
  },
};

/**
 * The alerts that need attention and the alert counts, or null when the
 * caller may not read alerts.
 */
async function alertsNeedingAttention(ctx) {
  if (!ctx.can('alerts.read')) return null;
  const [critical, escalated, counts] = await Promise.all([
    api(`/api/v1/alerts${query({ status: 'open,acknowledged,escalated', severity: 'critical', limit: 100 })}`),
    api(`/api/v1/alerts${query({ status: 'escalated', limit: 100 })}`),
    api('/api/v1/alerts/counts'),
  ]);
  return { critical: critical.alerts, escalated: escalated.alerts, counts };
}

/**
 * Polls what needs attention: every poll_seconds while the panel is shown
 * (`open`), else every 30 s for the menu's counts. Returns {count, critical,
 * escalated, alertCounts, over, queues, failed, stale, error, alertsError, at};
 * failed is {groups, total, since, stopped} (POST /api/v1/failure-groups);
 * alertCounts is null until read (or when the caller may not read alerts).
 */
export function useAttention(ctx, open) {
  const [state, setState] = useState({
    count: 0,
    critical: [],
    escalated: [],
    alertCounts: null,
    over: [],
    queues: [],
    failed: { groups: [], total: 0, since: 0, stopped: false },
    stale: [],
    error: null,
    alertsError: null,
    at: 0,
  });
  const marks = useEventCount(['opk-read', 'opk-alerts', 'opk-attention']);
  const load = async (live) => {
    const s = ctx.settings;
    const now = Date.now();
    // Alerts are read on their own: a failure there leaves the runs' panel whole.
    const alerts = alertsNeedingAttention(ctx).then(
      (a) => ({ a, e: null }),
      (e) => ({ a: undefined, e }),
    );
    try {
      // The server filters: only flagged runs cross the wire.
      const since = now - s.failed_lookback_days * 86400000;
      const stopped = attentionStopped.get(ctx.me.user_id);
      // The failures not seen, counted per job by the server after this
      // user's marks: exact however many there are, for the page and the menu.
      const read = readLog.all(ctx.me.user_id);
      const seenMarks = { after: { ...readLog.jobs }, seen_runs: [...read].slice(-10000) };
      const [running, recent, groups, stale, queues] = await Promise.all([
        api(`/api/v1/runs${query({ status: 'running', over_target: true, limit: 100 })}`),
        api(`/api/v1/runs${query({ over_target: true, since_ms: now - s.over_target_lookback_hours * 3600000, limit: 100 })}`),
        api('/api/v1/failure-groups', { method: 'POST', body: { since_ms: since, stopped, ...seenMarks } }),
        api(`/api/v1/runs${query({ status: 'running', stale: true, limit: 100 })}`),
        api('/api/v1/queues'),
      ]);
      const { a, e: alertsError } = await alerts;
      const over = new Map();
      for (const r of [...running.items, ...recent.items]) over.set(r.id, r);
      const next = {
        over: [...over.values()].sort((a, b) => b.id - a.id),
        queues: Object.entries(queues.pools || {})
          .filter(([, n]) => n > s.queue_threshold)
          .map(([pool, depth]) => ({ pool, depth })),
        failed: { groups: groups.groups, total: groups.total, since, stopped },
        stale: stale.items,
        critical: a ? a.critical : [],
        escalated: a ? a.escalated : [],
        alertCounts: a ? a.counts : null,
        error: null,
        alertsError,
        at: now,
      };
      const alertIds = new Set([...next.critical, ...next.escalated].map((x) => x.id));
      next.count = alertIds.size + next.over.length + next.queues.length + next.failed.total + next.stale.length;
      if (live()) setState(next);
    } catch (e) {
      if (live()) setState((old) => ({ ...old, error: e }));
    }
  };
  useMenuPoll(ctx, open, load, [ctx, marks, open]);
  return state;
}

/**
 * The inbox's counts ({open, handled, suppressed_endpoints}) for the menu's
 * badge: every poll_seconds while the page is shown (`open`), else every 30
 * s (or poll_seconds if slower), and after a change here; null when the
 * caller may not read them or they cannot be read.
 */
export function useWebhookFailureCounts(ctx, open) {
  const [counts, setCounts] = useState(null);
  const bump = useEventCount(['opk-webhook-failures']);
  const load = (live) =>
    api('/api/v1/webhook-failures/counts')
      .then((c) => live() && setCounts(c))
      .catch(() => live() && setCounts(null));
  useMenuPoll(ctx, open, ctx.can(WEBHOOK_FAILURES_READ) ? load : null, [ctx, bump, open]);
  return counts;
}

/**
 * The banner of the maintenance the signed-in user's scope is under, read
 * every minute; nothing when there is none. For an offline tenant the
 * console's own requests are refused with the window in the problem, which
 * shows the banner too.
 */
export function MaintenanceBanner() {
  const [m, setM] = useState(null);
  useEffect(() => {
    let live = true;
    const read = () =>
      api('/api/v1/maintenance/current')
        .then((d) => live && setM(d.maintenance || null))
        .catch((e) => live && setM(e?.problem?.maintenance || null));
    read();
    const timer = setInterval(read, 60000);
    return () => ((live = false), clearInterval(timer));
  }, []);
  if (!m) return null;
  return (
    <div class={`maintenance-banner ${m.mode}`} role="status" data-testid="maintenance-banner">
      <strong>{m.mode === 'offline' ? t('Offline for maintenance') : t('Read-only for maintenance')}</strong>
      {m.until_ms ? ` ${t('until {time}', { time: time(m.until_ms) })}` : ''}: {m.banner}
    </div>
  );
}
