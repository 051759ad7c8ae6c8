// The attention panel (/administration/attention): critical alerts not yet
// closed and escalated alerts, each linking to the alert; runs over their
// target duration, queues over the threshold, failed runs not yet seen
// grouped by job (how many, the last one and its error, the runs when opened,
// and "Mark all seen"), and stale runs, each linking to the run. What a user
// has seen is kept on the server (readLog in api.js), so it is the same in
// every browser; the server counts the failures not seen per job
// (POST /api/v1/failure-groups with those marks), however many there are.
// Polled for the navigation badges too (Attention, and Alerts from the
// alert counts) by useAttention in shell.jsx, which also reads what this
// page shows.
import './attention.css';
import { useEffect, useState } from 'preact/hooks';
import { api, query, readLog } from './api.js';
import { useReadMarks } from './jobs.jsx';
import { AlertStatusLabel, SeverityLabel } from './alerts.jsx';
import { t, tp } from './i18n.js';
import { Link, Message, duration, number, time, useSession } from './ui.jsx';
import { RunStatusIcon, runStateText } from './run_states.jsx';
import { attentionStopped, failureKey } from './shell.jsx';

function AlertList({ alerts, empty }) {
  if (!alerts.length) return <p class="hint">{empty}</p>;
  return (
    <ul class="attention-list">
      {alerts.map((a) => (
        <li key={a.id}>
          <SeverityLabel severity={a.severity} /> <Link href={`/administration/alerts/${a.id}`}>{a.title}</Link>{' '}
          <AlertStatusLabel status={a.status} />{' '}
          <span class="hint">
            {a.scope} · {t('last seen {time}', { time: time(a.last_seen_ms) })}
            {a.escalation_level > 0 ? ` · ${t('escalation level {n}', { n: a.escalation_level })}` : ''}
          </span>
        </li>
      ))}
    </ul>
  );
}

function RunList({ runs, empty, detail, showJob = true }) {
  if (!runs.length) return <p class="hint">{empty}</p>;
  return (
    <ul class="attention-list">
      {runs.map((r) => (
        <li key={r.id}>
          <RunStatusIcon status={r.status} /> <Link href={`/administration/runs/${r.id}`}>{t('Run {id}', { id: r.id })}</Link>{' '}
          {showJob && <span>{r.scheduled_job_id || r.job_type}</span>} <span class="hint">{detail(r)}</span>
        </li>
      ))}
    </ul>
  );
}

/** How a failed run ended, with when: its termination or its error. */
const failureText = (r) =>
  r.termination
    ? `${runStateText(r)} ${time(r.finished_ms)}`
    : r.summary
      ? t('failed {time}: {error}', { time: time(r.finished_ms), error: r.summary })
      : t('failed {time}', { time: time(r.finished_ms) });

/**
 * The runs of one failure group not yet seen, newest first, read when its
 * disclosure is opened (at most 200): the failures (and the terminated runs
 * when asked) since the lookback, of its job, else of its type and no job.
 */
function GroupRuns({ group, failed }) {
  const ctx = useSession();
  const [runs, setRuns] = useState(null);
  const [error, setError] = useState(null);
  const user = ctx.me.user_id;
  useEffect(() => {
    let live = true;
    const by = group.job_id ? { job_id: group.job_id } : { job_type: group.job_type };
    const read = (status) => api(`/api/v1/runs${query({ ...by, status, since_ms: failed.since, limit: 200 })}`);
    Promise.all([read('error'), failed.stopped ? read('terminated') : { items: [] }])
      .then(([f, t]) => {
        if (!live) return;
        const mark = readLog.seenUpTo(user, group.key);
        const seen = readLog.all(user);
        setRuns(
          [...f.items, ...t.items]
            .filter((r) => failureKey(r) === group.key && r.id > mark && !seen.has(r.id))
            .sort((a, b) => b.id - a.id)
            .slice(0, 200),
        );
      })
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [group.key, group.count, group.last.id, failed.since, failed.stopped]);
  if (error) return <Message error={error} />;
  if (!runs) return <p class="hint">{t('Checking…')}</p>;
  return <RunList runs={runs} empty="" showJob={false} detail={failureText} />;
}

/**
 * The failures not yet seen, grouped by job, the most recent first, as the
 * server counts them: each with its count, its last failure and that one's
 * error, its runs behind a disclosure, and "Mark all seen".
 */
function FailureGroups({ failed, empty }) {
  const ctx = useSession();
  const [error, setError] = useState(null);
  const [opened, setOpened] = useState({});
  if (!failed.groups.length) return <p class="hint">{empty}</p>;
  return (
    <>
      <Message error={error} />
      <ul class="attention-list failure-groups">
        {failed.groups.map((g) => {
          const last = g.last;
          const name = g.job_id || g.job_type;
          return (
            <li key={g.key} data-testid={`attention-group-${g.key}`}>
              <div class="group-head">
                <RunStatusIcon status={last.status} />{' '}
                {g.job_id ? <Link href={`/administration/jobs/${encodeURIComponent(g.job_id)}`}>{name}</Link> : <span>{name}</span>}{' '}
                <strong data-testid="attention-group-count">{tp(g.count, '{n} failure', '{n} failures', { n: number(g.count) })}</strong>{' '}
                <span class="hint">
                  · {t('last')} <Link href={`/administration/runs/${last.id}`}>{t('Run {id}', { id: last.id })}</Link> {failureText(last)}
                </span>{' '}
                <button
                  type="button"
                  aria-label={t('Mark all failures of {job} seen', { job: name })}
                  onClick={() => {
                    setError(null);
                    readLog.markJob(ctx.me.user_id, g.key, last.id).catch(setError);
                  }}
                >
                  {t('Mark all seen')}
                </button>
              </div>
              <details onToggle={(e) => e.currentTarget.open && setOpened((o) => ({ ...o, [g.key]: true }))}>
                <summary>{tp(g.count, 'Its run', 'Its {n} runs', { n: number(g.count) })}</summary>
                {opened[g.key] && <GroupRuns group={g} failed={failed} />}
              </details>
            </li>
          );
        })}
      </ul>
    </>
  );
}

export function AttentionPage({ data }) {
  const ctx = useSession();
  useReadMarks();
  useEffect(() => {
    document.title = `${t('Attention')} · Opskernel`;
  }, []);
  const s = ctx.settings;
  return (
    <section aria-labelledby="att-title">
      <div class="page-head">
        <h1 id="att-title">{t('Attention')}</h1>
        <p class="hint">{data.at ? t('Checked {time}; refreshed every {n} s.', { time: time(data.at), n: s.poll_seconds }) : t('Checking…')}</p>
      </div>
      <Message error={data.error} />
      <Message error={data.alertsError && new Error(t('Alerts could not be read: {detail}', { detail: data.alertsError.message }))} />
      <div class="attention">
        {ctx.can('alerts.read') && (
          <>
            <section aria-labelledby="att-critical">
              <h2 id="att-critical">{t('Critical alerts, not closed ({n})', { n: data.critical.length })}</h2>
              <AlertList alerts={data.critical} empty={t('No critical alert is open.')} />
            </section>
            <section aria-labelledby="att-escalated">
              <h2 id="att-escalated">{t('Escalated alerts ({n})', { n: data.escalated.length })}</h2>
              <AlertList alerts={data.escalated} empty={t('No alert is escalated.')} />
            </section>
          </>
        )}
        <section aria-labelledby="att-over">
          <h2 id="att-over">{t('Over their target duration ({n})', { n: data.over.length })}</h2>
          <RunList
            runs={data.over}
            empty={t('No run in the last {n} h ran longer than its target.', { n: s.over_target_lookback_hours })}
            detail={(r) =>
              r.phase === 'RUNNING'
                ? t('{duration} against a target of {target}, still running', { duration: duration(r.duration_ms), target: duration(r.target_duration_ms) })
                : t('{duration} against a target of {target}', { duration: duration(r.duration_ms), target: duration(r.target_duration_ms) })
            }
          />
        </section>
        <section aria-labelledby="att-queues">
          <h2 id="att-queues">{t('Queues over {threshold} ({n})', { threshold: s.queue_threshold, n: data.queues.length })}</h2>
          {data.queues.length ? (
            <ul class="attention-list">
              {data.queues.map((q) => (
                <li key={q.pool}>{t('Pool {pool}: {n} runs queued', { pool: q.pool, n: q.depth })}</li>
              ))}
            </ul>
          ) : (
            <p class="hint">{t('No worker pool has more than {n} runs queued.', { n: s.queue_threshold })}</p>
          )}
        </section>
        <section aria-labelledby="att-failed">
          <h2 id="att-failed">{t('Failed, not yet looked at ({n})', { n: data.failed.total })}</h2>
          <label class="check">
            <input
              type="checkbox"
              checked={attentionStopped.get(ctx.me.user_id)}
              onChange={(e) => attentionStopped.set(ctx.me.user_id, e.currentTarget.checked)}
            />{' '}
            {t('Include cancelled, timed-out, stopped and recovered runs')}
          </label>
          <FailureGroups
            failed={data.failed}
            empty={t('No unread failures in the last {n} days. Failures you mark seen, or whose logs you read, leave this list.', { n: s.failed_lookback_days })}
          />
        </section>
        <section aria-labelledby="att-stale">
          <h2 id="att-stale">{t('Stale ({n})', { n: data.stale.length })}</h2>
          <RunList
            runs={data.stale}
            empty={t('No run has been running past the stale threshold.')}
            detail={(r) => t('running since {time}', { time: time(r.started_ms) })}
          />
        </section>
      </div>
    </section>
  );
}
