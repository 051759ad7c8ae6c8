// The overview (/administration/overview), the screen on the second monitor:
// runs running and queued now, the last 24 hours' runs by state with their
// throughput per hour, the queues with their depth and oldest waiting run,
// the workers (once the kernel lists them), open alerts by severity and the
// last 24 hours' failures grouped by job; refreshed every poll_seconds. It
// reads the admin API's lists (at most LIMIT runs each, said when reached)
// and counts as the caller may see them.
import './overview.css';
import { useEffect } from 'preact/hooks';
import { api, query } from './api.js';
import { usePoll } from './jobs.jsx';
import { t } from './i18n.js';
import { RunStatusIcon, runStatusLabel } from './run_states.jsx';
import { Chart, Link, Message, number, relative, time, useSession } from './ui.jsx';

const LIMIT = 1000;
const DAY = 86400000;
// The order states are listed in; only "error" is a failure.
const ORDER = ['normal', 'warning', 'error', 'cancelled', 'timed_out', 'stopped', 'recovered'];

/** Everything the overview shows, read at once. */
async function readOverview(ctx) {
  const now = Date.now();
  const runs = (q) => api(`/api/v1/runs${query({ ...q, limit: LIMIT })}`);
  const [running, pending, day, failed, queues, alerts, workers] = await Promise.all([
    runs({ status: 'running' }),
    runs({ status: 'pending' }),
    runs({ since_ms: now - DAY }),
    runs({ status: 'error', since_ms: now - DAY }),
    api('/api/v1/queues'),
    ctx.can('alerts.read') ? api('/api/v1/alerts/counts').catch(() => null) : null,
    // Listed by the kernels that share a store; absent from older kernels.
    api('/api/v1/workers').catch(() => null),
  ]);
  return { now, running: running.items, pending: pending.items, day: day.items, failed: failed.items, queues, alerts, workers };
}

/** The severities' words in the operator's language. */
const SEVERITY_WORDS = () => ({ critical: t('Critical'), warning: t('Warning'), info: t('Info') });

/** A count, "1,000+" when a list reached its limit. */
const counted = (items) => (items.length >= LIMIT ? `${number(LIMIT)}+` : number(items.length));

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
  const done = data.day.filter((r) => r.phase === 'COMPLETED');
  const byStatus = Object.fromEntries(ORDER.map((s) => [s, 0]));
  for (const r of done) byStatus[r.status] = (byStatus[r.status] || 0) + 1;
  // Runs completed per hour, the last 24 hours, oldest first.
  const hour0 = Math.floor((data.now - DAY) / 3600000) + 1;
  const hours = Array.from({ length: 24 }, (_, i) => hour0 + i);
  const perHour = hours.map((h) => done.filter((r) => Math.floor(r.finished_ms / 3600000) === h).length);
  // The oldest run waiting in each pool (due, not held).
  const oldest = {};
  for (const r of data.pending)
    if (!r.hold && r.scheduled_ms <= data.now && (!oldest[r.pool] || r.scheduled_ms < oldest[r.pool].scheduled_ms)) oldest[r.pool] = r;
  const pools = Object.entries(data.queues.pools || {});
  // Open alerts (not closed) by severity.
  const severities = { critical: 0, warning: 0, info: 0 };
  for (const g of data.alerts?.groups || []) if (g.status !== 'closed') severities[g.severity] = (severities[g.severity] || 0) + g.count;
  // The day's failures by job (a scheduled job, else the type of an ad-hoc run), most first.
  const groups = new Map();
  for (const r of data.failed) {
    const key = r.scheduled_job_id || r.job_type;
    const g = groups.get(key) || { key, job: r.scheduled_job_id, count: 0, last: r };
    g.count++;
    if (r.id > g.last.id) g.last = r;
    groups.set(key, g);
  }
  const failures = [...groups.values()].sort((a, b) => b.count - a.count || b.last.id - a.last.id);
  return (
    <section aria-labelledby="overview-title">
      <div class="page-head">
        <h1 id="overview-title">{t('Overview')}</h1>
        <p class="hint">{t('Checked {time}; refreshed every {n} s.', { time: time(data.now), n: ctx.settings.poll_seconds })}</p>
      </div>
      <Message error={error} />
      <div class="overview">
        <section aria-labelledby="ov-now">
          <h2 id="ov-now">{t('Runs now')}</h2>
          <div class="tiles">
            <Tile id="running" label={t('Running')} value={counted(data.running)} href="/administration/runs" />
            <Tile id="pending" label={t('Queued')} value={counted(data.pending)} href="/administration/runs" />
          </div>
        </section>
        <section aria-labelledby="ov-day">
          <h2 id="ov-day">{t('Last 24 hours')}</h2>
          <div class="tiles">
            {ORDER.map((s) => (
              <Tile id={`day-${s}`} label={runStatusLabel(s)} value={number(byStatus[s] || 0)} />
            ))}
          </div>
          {data.day.length >= LIMIT && (
            <p class="hint">{t('Counted over the newest {n} runs of the last 24 hours.', { n: number(LIMIT) })}</p>
          )}
          <Chart
            title={t('Runs completed per hour')}
            label={t('{n} runs completed in the last 24 hours', { n: number(done.length) })}
            data={[hours.map((h) => h * 3600), perHour]}
            series={[{ label: t('Runs'), stroke: 'var(--chart-line)', width: 2 }]}
            yLabel={t('runs')}
          />
        </section>
        <section aria-labelledby="ov-queues">
          <h2 id="ov-queues">{t('Queues')}</h2>
          {pools.length ? (
            <ul class="attention-list">
              {pools.map(([pool, depth]) => (
                <li key={pool} data-testid={`queue-${pool}`}>
                  <strong>{pool}</strong>: {t('{n} queued', { n: number(depth) })}
                  {oldest[pool] && (
                    <span class="hint">
                      {' '}
                      · {t('the oldest queued {time}', { time: relative(oldest[pool].scheduled_ms) })} (
                      <Link href={`/administration/runs/${oldest[pool].id}`}>{t('Run {id}', { id: oldest[pool].id })}</Link>)
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
                  {g.job ? <Link href={`/administration/jobs/${encodeURIComponent(g.job)}`}>{g.key}</Link> : g.key}{' '}
                  <strong>{number(g.count)}</strong>{' '}
                  <span class="hint">
                    · {t('last')} <Link href={`/administration/runs/${g.last.id}`}>{t('Run {id}', { id: g.last.id })}</Link>{' '}
                    {time(g.last.finished_ms)}
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
