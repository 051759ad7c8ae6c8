// A job's drill-in (/administration/jobs/{id}): Information (recipients
// editable), Scheduling (with the next five fire times previewed), Latest
// executions, the 30-day failure trend and the run-duration chart.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { LogDialog, RunNowDialog, runNowRefusal, usePoll } from './jobs.jsx';
import { RunTable } from './runs.jsx';
import {
  Chart,
  Link,
  Message,
  StatusToggles,
  STATUSES,
  duration,
  isoTime,
  navigate,
  relative,
  time,
  useAction,
  useSession,
} from './ui.jsx';
import { RUN_STATUSES } from './run_states.jsx';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** Weekly days and times from a cron text, or null when it is not of that form. */
export function weeklyOf(cron) {
  const days = new Set();
  const times = [];
  for (const part of (cron || '').split(';').map((s) => s.trim()).filter(Boolean)) {
    const m = part.match(/^(\d{1,2}) (\d{1,2}) \* \* ([0-7](?:,[0-7])*)$/);
    if (!m) return null;
    const t = `${m[2].padStart(2, '0')}:${m[1].padStart(2, '0')}`;
    const ds = m[3].split(',').map((d) => Number(d) % 7);
    if (days.size && (ds.length !== days.size || ds.some((d) => !days.has(d)))) return null;
    ds.forEach((d) => days.add(d));
    if (!times.includes(t)) times.push(t);
  }
  return days.size ? { days: [...days].sort(), times } : null;
}

/** The cron text for weekly days and times ("02:30, 14:00"); throws naming what is wrong. */
export function cronOfWeekly(days, times) {
  if (!days.length) throw new Error('days: choose at least one day');
  const list = times.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new Error('times: give at least one time, such as 02:30');
  return list
    .map((t) => {
      const m = t.match(/^([01]?\d|2[0-3]):([0-5]\d)$/);
      if (!m) throw new Error(`times: '${t}' is not a time of day (HH:MM)`);
      return `${Number(m[2])} ${Number(m[1])} * * ${[...days].sort().join(',')}`;
    })
    .join(';');
}

function Information({ job, onSaved }) {
  const ctx = useSession();
  const [send, setSend] = useState(job.report_recipients.length > 0);
  const [list, setList] = useState(job.report_recipients.join(', '));
  const { error, run } = useAction();
  const [notice, setNotice] = useState('');
  const save = (e) => {
    e.preventDefault();
    setNotice('');
    const recipients = send ? list.split(/[,\s]+/).filter(Boolean) : [];
    run(async () => {
      await api(`/api/v1/jobs/${encodeURIComponent(job.id)}`, { method: 'PATCH', body: { report_recipients: recipients } });
      setNotice('Saved.');
      onSaved();
    });
  };
  const canWrite = ctx.can('jobs.write');
  return (
    <form onSubmit={save} class="form">
      <dl class="facts">
        <dt>Identifier</dt>
        <dd>{job.id}</dd>
        <dt>Description</dt>
        <dd>{job.description || '—'}</dd>
        <dt>Type</dt>
        <dd>{job.job_type}</dd>
        <dt>Owner</dt>
        <dd>{job.owner || '—'}</dd>
        <dt>Scope</dt>
        <dd>{job.scope}</dd>
        <dt>Region</dt>
        <dd>{job.region || 'all regions'}</dd>
        <dt>Schedule zone</dt>
        <dd>{job.time_zone || 'UTC'}</dd>
        <dt>Next run</dt>
        <dd>
          {job.enabled && job.planning !== 'disabled' && job.next_run_ms ? (
            <>
              {time(job.next_run_ms, job.time_zone || 'UTC')} <span class="hint">· {time(job.next_run_ms)} · {relative(job.next_run_ms)}</span>
            </>
          ) : (
            '—'
          )}
        </dd>
        <dt>Parameters</dt>
        <dd>
          <code>{JSON.stringify(job.params)}</code>
        </dd>
        <dt>Created</dt>
        <dd>{time(job.created_ms)}</dd>
      </dl>
      <p class="hint">The identifier and the description cannot be changed.</p>
      <fieldset disabled={!canWrite}>
        <legend>Execution report</legend>
        <div class="field check">
          <input id="send-report" type="checkbox" checked={send} onChange={(e) => setSend(e.currentTarget.checked)} />
          <label for="send-report">Send the report</label>
        </div>
        <div class="field">
          <label for="recipients">Recipients (e-mail addresses, separated by commas)</label>
          <input id="recipients" disabled={!send} value={list} onInput={(e) => setList(e.currentTarget.value)} />
        </div>
        <div class="actions">
          <button type="submit" class="primary">
            Save recipients
          </button>
        </div>
      </fieldset>
      {!canWrite && <p class="hint">Your role ({ctx.me.role}) may not change jobs.</p>}
      <Message error={error} notice={notice} />
    </form>
  );
}

function Scheduling({ job, onSaved }) {
  const ctx = useSession();
  const type = ctx.types.get(job.job_type);
  const weekly0 = weeklyOf(job.cron);
  const [planning, setPlanning] = useState(job.planning);
  const [mode, setMode] = useState(weekly0 ? 'weekly' : 'cron');
  const [cron, setCron] = useState(job.cron || '');
  const [days, setDays] = useState(weekly0 ? weekly0.days : [1, 2, 3, 4, 5]);
  const [times, setTimes] = useState(weekly0 ? weekly0.times.join(', ') : '02:00');
  const [zone, setZone] = useState(job.time_zone || 'UTC');
  const [enabled, setEnabled] = useState(job.enabled);
  const [preview, setPreview] = useState({ fire: [], error: null });
  const { error, setError, run } = useAction();
  const [notice, setNotice] = useState('');
  let effective = '';
  let localError = null;
  try {
    effective = planning === 'automatic' ? type?.default_schedule || '' : mode === 'weekly' ? cronOfWeekly(days, times) : cron;
  } catch (e) {
    localError = e;
  }
  useEffect(() => {
    if (planning === 'disabled' || localError || !effective) {
      setPreview({ fire: [], error: localError });
      return;
    }
    const t = setTimeout(() => {
      api(`/api/v1/cron/next${query({ cron: effective, time_zone: zone, n: 5 })}`)
        .then((r) => setPreview({ fire: r.fire_ms, error: null }))
        .catch((e) => setPreview({ fire: [], error: e }));
    }, 300);
    return () => clearTimeout(t);
  }, [planning, effective, zone]);
  const save = (e) => {
    e.preventDefault();
    setNotice('');
    if (localError) return setError(localError);
    const body = { planning, time_zone: zone, enabled };
    if (planning === 'scheduled') body.cron = effective;
    run(async () => {
      await api(`/api/v1/jobs/${encodeURIComponent(job.id)}`, { method: 'PATCH', body });
      setNotice('Saved.');
      onSaved();
    });
  };
  const canWrite = ctx.can('jobs.write');
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return (
    <form onSubmit={save} class="form">
      <fieldset disabled={!canWrite}>
        <legend>Planning</legend>
        {[
          ['automatic', `Automatic: the job type's own schedule (${type?.default_schedule || 'none'})`],
          ['scheduled', 'Scheduled: a cron expression, or days and times of the week'],
          ['disabled', 'Disabled: runs only when started by hand'],
        ].map(([v, label]) => (
          <div class="field check" key={v}>
            <input id={`pl-${v}`} type="radio" name="planning" value={v} checked={planning === v} onChange={() => setPlanning(v)} />
            <label for={`pl-${v}`}>{label}</label>
          </div>
        ))}
        {planning === 'scheduled' && (
          <div class="indent">
            <div class="field-row" role="radiogroup" aria-label="Schedule form">
              <div class="field check">
                <input id="mode-weekly" type="radio" name="mode" checked={mode === 'weekly'} onChange={() => setMode('weekly')} />
                <label for="mode-weekly">Days and times</label>
              </div>
              <div class="field check">
                <input id="mode-cron" type="radio" name="mode" checked={mode === 'cron'} onChange={() => setMode('cron')} />
                <label for="mode-cron">Cron expression</label>
              </div>
            </div>
            {mode === 'cron' ? (
              <div class="field">
                <label for="cron">
                  Cron expression <span class="hint">minute hour day-of-month month day-of-week; several separated by ;</span>
                </label>
                <input id="cron" class="mono" value={cron} onInput={(e) => setCron(e.currentTarget.value)} />
              </div>
            ) : (
              <>
                <fieldset class="days">
                  <legend>Days</legend>
                  {[1, 2, 3, 4, 5, 6, 0].map((d) => (
                    <span class="field check" key={d}>
                      <input
                        id={`day-${d}`}
                        type="checkbox"
                        checked={days.includes(d)}
                        onChange={(e) => setDays(e.currentTarget.checked ? [...days, d] : days.filter((x) => x !== d))}
                      />
                      <label for={`day-${d}`}>{DAYS[d]}</label>
                    </span>
                  ))}
                </fieldset>
                <div class="field">
                  <label for="times">
                    Times <span class="hint">HH:MM, separated by commas</span>
                  </label>
                  <input id="times" value={times} onInput={(e) => setTimes(e.currentTarget.value)} />
                </div>
              </>
            )}
          </div>
        )}
        <div class="field">
          <label for="zone">Time zone</label>
          <input id="zone" list="zones" value={zone} onInput={(e) => setZone(e.currentTarget.value)} />
          <datalist id="zones">
            {zones.map((z) => (
              <option value={z} />
            ))}
          </datalist>
        </div>
        <div class="field check">
          <input id="enabled" type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
          <label for="enabled">Enabled</label>
        </div>
      </fieldset>
      <section class="preview" aria-labelledby="preview-title">
        <h2 id="preview-title">Next five fire times</h2>
        <p class="hint">In the job's zone ({zone}) and in UTC.</p>
        {planning === 'disabled' ? (
          <p class="hint">None: the job runs only when started by hand.</p>
        ) : preview.error ? (
          <p class="message error" role="alert">
            {preview.error.message}
          </p>
        ) : (
          <ol class="fire" aria-live="polite">
            {preview.fire.map((ms) => (
              <li key={ms}>
                <time datetime={isoTime(ms)}>{time(ms, zone)}</time> <span class="hint">· {time(ms, 'UTC')}</span>
              </li>
            ))}
          </ol>
        )}
      </section>
      {canWrite ? (
        <div class="actions">
          <button type="submit" class="primary">
            Save scheduling
          </button>
        </div>
      ) : (
        <p class="hint">Your role ({ctx.me.role}) may not change jobs.</p>
      )}
      <Message error={error} notice={notice} />
    </form>
  );
}

function Executions({ runs, onLog }) {
  const [statuses, setStatuses] = useState(RUN_STATUSES.map((s) => s.id));
  const shown = runs.filter((r) => statuses.includes(r.status));
  return (
    <div>
      <div class="tools">
        <StatusToggles value={statuses} onChange={setStatuses} statuses={RUN_STATUSES} label="Filter executions by status" />
      </div>
      <RunTable runs={shown} caption="Latest executions" onLog={onLog} empty="No executions match. Change the filters, or start one with Run now." />
    </div>
  );
}

const TABS = [
  ['info', 'Information'],
  ['schedule', 'Scheduling'],
  ['runs', 'Latest executions'],
];

export function JobPage({ id }) {
  const ctx = useSession();
  const [tab, setTab] = useState('info');
  const [dialog, setDialog] = useState(null);
  const [withStopped, setWithStopped] = useState(false);
  const tabRefs = useRef({});
  const [data, error, reload] = usePoll(
    () => api(`/api/v1/jobs/${encodeURIComponent(id)}${query({ last_n: 50 })}`),
    ctx.settings.poll_seconds,
    [id],
  );
  useEffect(() => {
    document.title = `${id} · Jobs · Opskernel`;
  }, [id]);
  if (error && !data)
    return (
      <section>
        <h1>{id}</h1>
        <Message error={error} />
        <Link href="/administration/jobs">Back to the jobs</Link>
      </section>
    );
  if (!data) return <p class="loading">Loading…</p>;
  const { job, runs, failures_30d: failures, terminated_30d: stopped = [] } = data;
  const refusal = runNowRefusal(ctx, [job]);
  // Only real failures, unless the runs terminated for a cause are asked for too.
  const perDay = failures.map((f, i) => f.failures + (withStopped ? stopped[i]?.terminated || 0 : 0));
  const total = perDay.reduce((a, n) => a + n, 0);
  const done = runs.filter((r) => r.phase === 'COMPLETED' && r.started_ms).reverse();
  const type = ctx.types.get(job.job_type);
  const onKey = (e) => {
    const i = TABS.findIndex(([t]) => t === tab);
    const next = e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i + TABS.length - 1) % TABS.length : -1;
    if (next < 0) return;
    e.preventDefault();
    setTab(TABS[next][0]);
    tabRefs.current[TABS[next][0]]?.focus();
  };
  return (
    <section aria-labelledby="job-title">
      <div class="page-head">
        <div>
          <p class="crumbs">
            <Link href="/administration/jobs">Jobs</Link> /
          </p>
          <h1 id="job-title">{job.id}</h1>
          <p class="sub">
            {job.description} <span class="hint">· {job.job_type}</span>
          </p>
        </div>
        <div class="tools">
          <button
            type="button"
            class="primary"
            disabled={!!refusal}
            aria-describedby={refusal ? 'job-run-why' : undefined}
            onClick={() => setDialog({ kind: 'run' })}
          >
            Run now
          </button>
        </div>
      </div>
      {refusal && (
        <p id="job-run-why" class="message notice">
          {refusal}
        </p>
      )}
      <Message error={error} />
      <div class="charts">
        <div>
          <Chart
            title={withStopped ? 'Failed or stopped runs per day, last 30 days' : 'Failures per day, last 30 days'}
            label={
              withStopped
                ? `${total} failed, cancelled, timed-out, stopped or recovered run${total === 1 ? '' : 's'} in the last 30 days`
                : `${total} failed run${total === 1 ? '' : 's'} in the last 30 days`
            }
            data={[failures.map((f) => f.day_ms / 1000), perDay.map((n) => n || null)]}
            series={[{ label: 'Failures', stroke: 'var(--chart-fail)', fill: 'var(--chart-fail-fill)' }]}
            bars
            yLabel="failures"
          />
          <label class="check">
            <input type="checkbox" checked={withStopped} onChange={(e) => setWithStopped(e.currentTarget.checked)} />{' '}
            Include cancelled, timed-out, stopped and recovered runs
          </label>
        </div>
        <Chart
          title={`Run duration, last ${done.length} completed runs${type?.target_duration_ms ? ` (target ${duration(type.target_duration_ms)})` : ''}`}
          label={
            done.length
              ? `Durations from ${duration(Math.min(...done.map((r) => r.duration_ms)))} to ${duration(Math.max(...done.map((r) => r.duration_ms)))}`
              : 'No completed runs yet'
          }
          data={[done.map((r) => r.started_ms / 1000), done.map((r) => r.duration_ms / 1000)]}
          series={[{ label: 'Seconds', stroke: 'var(--chart-line)', width: 2 }]}
          yLabel="seconds"
        />
      </div>
      <div role="tablist" aria-label="Job" class="tabs" onKeyDown={onKey}>
        {TABS.map(([t, label]) => (
          <button
            type="button"
            role="tab"
            id={`tab-${t}`}
            key={t}
            ref={(el) => (tabRefs.current[t] = el)}
            aria-selected={tab === t ? 'true' : 'false'}
            aria-controls={`panel-${t}`}
            tabIndex={tab === t ? 0 : -1}
            onClick={() => setTab(t)}
          >
            {label}
            {t === 'runs' ? ` (${runs.length})` : ''}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} class="panel" tabIndex={0}>
        {tab === 'info' && <Information job={job} onSaved={reload} />}
        {tab === 'schedule' && <Scheduling job={job} onSaved={reload} />}
        {tab === 'runs' && <Executions runs={runs} onLog={(runId) => setDialog({ kind: 'log', runId })} />}
      </div>
      {dialog?.kind === 'run' && (
        <RunNowDialog
          jobs={[job]}
          onClose={() => setDialog(null)}
          onStarted={(ids) => {
            setDialog(null);
            navigate(`/administration/runs/${ids[0]}`);
          }}
        />
      )}
      {dialog?.kind === 'log' && <LogDialog runId={dialog.runId} onClose={() => (setDialog(null), reload())} />}
    </section>
  );
}
