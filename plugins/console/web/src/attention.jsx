// The attention panel (/administration/attention): critical alerts not yet
// closed and escalated alerts, each linking to the alert; runs over their
// target duration, queues over the threshold, failed runs not yet looked at,
// and stale runs, each linking to the run. Polled for the navigation badges
// too (Attention, and Alerts from the alert counts).
import { useEffect, useState } from 'preact/hooks';
import { api, query, readLog } from './api.js';
import { useReadMarks } from './jobs.jsx';
import { AlertStatusLabel, SeverityLabel } from './alerts.jsx';
import { Link, Message, StatusIcon, duration, time, useEventCount, useMenuPoll, useSession } from './ui.jsx';
import { RunStatusIcon, runStateText } from './run_states.jsx';

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
    failed: [],
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
      const [running, recent, failed, stale, queues, terminated] = await Promise.all([
        api(`/api/v1/runs${query({ status: 'running', over_target: true, limit: 100 })}`),
        api(`/api/v1/runs${query({ over_target: true, since_ms: now - s.over_target_lookback_hours * 3600000, limit: 100 })}`),
        api(`/api/v1/runs${query({ status: 'error', since_ms: since, limit: 200 })}`),
        api(`/api/v1/runs${query({ status: 'running', stale: true, limit: 100 })}`),
        api('/api/v1/queues'),
        stopped ? api(`/api/v1/runs${query({ status: 'terminated', since_ms: since, limit: 200 })}`) : { items: [] },
      ]);
      const read = readLog.all(ctx.me.user_id);
      const { a, e: alertsError } = await alerts;
      const over = new Map();
      for (const r of [...running.items, ...recent.items]) over.set(r.id, r);
      const next = {
        over: [...over.values()].sort((a, b) => b.id - a.id),
        queues: Object.entries(queues.pools || {})
          .filter(([, n]) => n > s.queue_threshold)
          .map(([pool, depth]) => ({ pool, depth })),
        failed: [...failed.items, ...terminated.items].filter((r) => !read.has(r.id)).sort((a, b) => b.id - a.id),
        stale: stale.items,
        critical: a ? a.critical : [],
        escalated: a ? a.escalated : [],
        alertCounts: a ? a.counts : null,
        error: null,
        alertsError,
        at: now,
      };
      const alertIds = new Set([...next.critical, ...next.escalated].map((x) => x.id));
      next.count = alertIds.size + next.over.length + next.queues.length + next.failed.length + next.stale.length;
      if (live()) setState(next);
    } catch (e) {
      if (live()) setState((old) => ({ ...old, error: e }));
    }
  };
  useMenuPoll(ctx, open, load, [ctx, marks, open]);
  return state;
}

function AlertList({ alerts, empty }) {
  if (!alerts.length) return <p class="hint">{empty}</p>;
  return (
    <ul class="attention-list">
      {alerts.map((a) => (
        <li key={a.id}>
          <SeverityLabel severity={a.severity} /> <Link href={`/administration/alerts/${a.id}`}>{a.title}</Link>{' '}
          <AlertStatusLabel status={a.status} />{' '}
          <span class="hint">
            {a.scope} · last seen {time(a.last_seen_ms)}
            {a.escalation_level > 0 ? ` · escalation level ${a.escalation_level}` : ''}
          </span>
        </li>
      ))}
    </ul>
  );
}

function RunList({ runs, empty, detail }) {
  if (!runs.length) return <p class="hint">{empty}</p>;
  return (
    <ul class="attention-list">
      {runs.map((r) => (
        <li key={r.id}>
          <RunStatusIcon status={r.status} /> <Link href={`/administration/runs/${r.id}`}>Run {r.id}</Link>{' '}
          <span>{r.scheduled_job_id || r.job_type}</span> <span class="hint">{detail(r)}</span>
        </li>
      ))}
    </ul>
  );
}

export function AttentionPage({ data }) {
  const ctx = useSession();
  useReadMarks();
  useEffect(() => {
    document.title = 'Attention · Opskernel';
  }, []);
  const s = ctx.settings;
  return (
    <section aria-labelledby="att-title">
      <div class="page-head">
        <h1 id="att-title">Attention</h1>
        <p class="hint">{data.at ? `Checked ${time(data.at)}; refreshed every ${s.poll_seconds} s.` : 'Checking…'}</p>
      </div>
      <Message error={data.error} />
      <Message error={data.alertsError && new Error(`Alerts could not be read: ${data.alertsError.message}`)} />
      <div class="attention">
        {ctx.can('alerts.read') && (
          <>
            <section aria-labelledby="att-critical">
              <h2 id="att-critical">Critical alerts, not closed ({data.critical.length})</h2>
              <AlertList alerts={data.critical} empty="No critical alert is open." />
            </section>
            <section aria-labelledby="att-escalated">
              <h2 id="att-escalated">Escalated alerts ({data.escalated.length})</h2>
              <AlertList alerts={data.escalated} empty="No alert is escalated." />
            </section>
          </>
        )}
        <section aria-labelledby="att-over">
          <h2 id="att-over">Over their target duration ({data.over.length})</h2>
          <RunList
            runs={data.over}
            empty={`No run in the last ${s.over_target_lookback_hours} h ran longer than its target.`}
            detail={(r) => `${duration(r.duration_ms)} against a target of ${duration(r.target_duration_ms)}${r.phase === 'RUNNING' ? ', still running' : ''}`}
          />
        </section>
        <section aria-labelledby="att-queues">
          <h2 id="att-queues">Queues over {s.queue_threshold} ({data.queues.length})</h2>
          {data.queues.length ? (
            <ul class="attention-list">
              {data.queues.map((q) => (
                <li key={q.pool}>
                  Pool <strong>{q.pool}</strong>: {q.depth} runs queued
                </li>
              ))}
            </ul>
          ) : (
            <p class="hint">No worker pool has more than {s.queue_threshold} runs queued.</p>
          )}
        </section>
        <section aria-labelledby="att-failed">
          <h2 id="att-failed">Failed, not yet looked at ({data.failed.length})</h2>
          <label class="check">
            <input
              type="checkbox"
              checked={attentionStopped.get(ctx.me.user_id)}
              onChange={(e) => attentionStopped.set(ctx.me.user_id, e.currentTarget.checked)}
            />{' '}
            Include cancelled, timed-out, stopped and recovered runs
          </label>
          <RunList
            runs={data.failed}
            empty={`No unread failures in the last ${s.failed_lookback_days} days.`}
            detail={(r) =>
              r.termination
                ? `${runStateText(r)} ${time(r.finished_ms)}`
                : `failed ${time(r.finished_ms)}${r.summary ? `: ${r.summary}` : ''}`
            }
          />
        </section>
        <section aria-labelledby="att-stale">
          <h2 id="att-stale">Stale ({data.stale.length})</h2>
          <RunList runs={data.stale} empty="No run has been running past the stale threshold." detail={(r) => `running since ${time(r.started_ms)}`} />
        </section>
      </div>
    </section>
  );
}
