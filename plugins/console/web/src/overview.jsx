// The overview (/administration/overview), the screen on the second monitor:
// runs running and queued now, the last 24 hours' runs by state with their
// throughput per hour, the queues with their depth and oldest waiting run,
// the workers (once the kernel lists them), open alerts by severity and the
// last 24 hours' failures grouped by job; refreshed every poll_seconds. The
// runs are counted by the store over every run the caller may see
// (GET /api/v1/overview), however many there are.
import './overview.css';
import { useEffect } from 'preact/hooks';
import { api } from './api.js';
import { usePoll } from './jobs.jsx';
import { t } from './i18n.js';
import { RunStatusIcon, runStatusLabel } from './run_states.jsx';
import { Chart, Link, Message, number, relative, time, useSession } from './ui.jsx';

// The order states are listed in; only "error" is a failure.
const ORDER = ['normal', 'warning', 'error', 'cancelled', 'timed_out', 'stopped', 'recovered'];

/** Everything the overview shows, read at once. */
async function readOverview(ctx) {
  const [runs, alerts, workers] = await Promise.all([
    api('/api/v1/overview'),
    ctx.can('alerts.read') ? api('/api/v1/alerts/counts').catch(() => null) : null,
    // Listed by the kernels that share a store; absent from older kernels.
    api('/api/v1/workers').catch(() => null),
  ]);
  return { ...runs, alerts, workers };
}

/** The severities' words in the operator's language. */
const SEVERITY_WORDS = () => ({ critical: t('Critical'), warning: t('Warning'), info: t('Info') });

function Tile({ id, label, value, href }) {
  return (
    <div class="tile" data-testid={`overview-${id}`}>
      <span class="tile-value">{href ? <Link href={href}>{value}</Link> : value}</span>
      <span class="tile-label">{label}</span>
    </div>
  );
}

export function OverviewPage() {
  const ctx = useSession();
  useEffect(() => {
    document.title = `${t('Overview')} · Opskernel`;
  }, []);
  const [data, error] = usePoll(() => readOverview(ctx), ctx.settings.poll_seconds, []);
  if (!data)
    return (
      <section>
        <h1>{t('Overview')}</h1>
        <Message error={error} />
        {!error && <p class="loading">{t('Loading…')}</p>}
      </section>
    );
  const completed = data.per_hour.reduce((n, h) => n + h.completed, 0);
  // Open alerts (not closed) by severity.
  const severities = { critical: 0, warning: 0, info: 0 };
  for (const g of data.alerts?.groups || []) if (g.status !== 'closed') severities[g.severity] = (severities[g.severity] || 0) + g.count;
  const failures = data.failures.map((f) => ({ ...f, key: f.job_id || f.job_type }));
  return (
    <section aria-labelledby="overview-title">
      <div class="page-head">
        <h1 id="overview-title">{t('Overview')}</h1>
        <p class="hint">{t('Checked {time}; refreshed every {n} s.', { time: time(data.now_ms), n: ctx.settings.poll_seconds })}</p>
      </div>
      <Message error={error} />
      <div class="overview">
        <section aria-labelledby="ov-now">
          <h2 id="ov-now">{t('Runs now')}</h2>
          <div class="tiles">
            <Tile id="running" label={t('Running')} value={number(data.now.running)} href="/administration/runs?status=running" />
            <Tile id="pending" label={t('Queued')} value={number(data.now.pending)} href="/administration/runs?status=pending" />
          </div>
        </section>
        <section aria-labelledby="ov-day">
          <h2 id="ov-day">{t('Last 24 hours')}</h2>
          <div class="tiles">
            {ORDER.map((s) => (
              <Tile id={`day-${s}`} label={runStatusLabel(s)} value={number(data.day[s] || 0)} />
            ))}
          </div>
          <Chart
            title={t('Runs completed per hour')}
            label={t('{n} runs completed in the last 24 hours', { n: number(completed) })}
            data={[data.per_hour.map((h) => h.hour_ms / 1000), data.per_hour.map((h) => h.completed)]}
            series={[{ label: t('Runs'), stroke: 'var(--chart-line)', width: 2 }]}
            yLabel={t('runs')}
          />
        </section>
        <section aria-labelledby="ov-queues">
          <h2 id="ov-queues">{t('Queues')}</h2>
          {data.pools.length ? (
            <ul class="attention-list">
              {data.pools.map((p) => (
                <li key={p.pool} data-testid={`queue-${p.pool}`}>
                  <strong>{p.pool}</strong>: {t('{n} queued', { n: number(p.queued) })}
                  {p.delayed > 0 && <>, {t('{n} to start later', { n: number(p.delayed) })}</>}
                  {p.held > 0 && <>, {t('{n} held', { n: number(p.held) })}</>}
                  {p.oldest_waiting_ms > 0 && (
                    <span class="hint">
                      {' '}
                      · {t('the oldest queued {time}', { time: relative(p.oldest_waiting_ms) })}
                    </span>
                  )}
                </li>
              ))}
            </ul>
          ) : (
            <p class="hint">{t('No worker pool has runs queued.')}</p>
          )}
        </section>
        <section aria-labelledby="ov-workers">
          <h2 id="ov-workers">{t('Workers')}</h2>
          {data.workers?.workers?.length ? (
            <ul class="attention-list">
              {data.workers.workers.map((w) => (
                <li key={w.node} data-testid={`worker-${w.node}`}>
                  <strong>{w.node}</strong> {w.status}
                  <span class="hint">
                    {' '}
                    · {w.version}
                    {w.heartbeat_ms > 0 && <> · {t('heartbeat {time}', { time: relative(w.heartbeat_ms) })}</>}
                  </span>
                </li>
              ))}
            </ul>
          ) : (
            <p class="hint">{t('This kernel lists no workers: it runs every run itself.')}</p>
          )}
          <p>
            <Link href="/administration/workers">{t('Every worker, and draining one')}</Link>
          </p>
        </section>
        {ctx.can('alerts.read') && (
          <section aria-labelledby="ov-alerts">
            <h2 id="ov-alerts">{t('Open alerts')}</h2>
            <div class="tiles">
              {Object.entries(severities).map(([s, n]) => (
                <Tile id={`alerts-${s}`} label={SEVERITY_WORDS()[s]} value={number(n)} href="/administration/alerts" />
              ))}
            </div>
          </section>
        )}
        <section aria-labelledby="ov-failures">
          <h2 id="ov-failures">{t('Failures in the last 24 hours, by job')}</h2>
          {failures.length ? (
            <ul class="attention-list">
              {failures.map((g) => (
                <li key={g.key} data-testid={`failures-${g.key}`}>
                  <RunStatusIcon status="error" />{' '}
                  {g.job_id ? <Link href={`/administration/jobs/${encodeURIComponent(g.job_id)}`}>{g.key}</Link> : g.key}{' '}
                  <strong>{number(g.count)}</strong>{' '}
                  <span class="hint">
                    · {t('last')} <Link href={`/administration/runs/${g.last.id}`}>{t('Run {id}', { id: g.last.id })}</Link>{' '}
                    {g.last.finished_ms ? time(g.last.finished_ms) : ''}
                    {g.last.summary ? `: ${g.last.summary}` : ''}
                  </span>
                </li>
              ))}
            </ul>
          ) : (
            <p class="hint">{t('No run failed in the last 24 hours.')}</p>
          )}
        </section>
      </div>
    </section>
  );
}
