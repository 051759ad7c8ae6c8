// A job's drill-in (/administration/jobs/{id}): Information (recipients
// editable), Scheduling (with the next five fire times previewed), Latest
// executions, the 30-day failure trend and the run-duration chart; Run now,
// and Delete with a reason.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { locale, manifestText, msg, t, tp, tr } from './i18n.js';
import { LogDialog, RunNowDialog, runNowRefusal, typeTitle, usePoll } from './jobs.jsx';
import { RunTable } from './runs.jsx';
import {
  Chart,
  Dialog,
  FormActions,
  Link,
  Message,
  StatusToggles,
  duration,
  isoTime,
  navigate,
  relative,
  time,
  useAction,
  useSession,
} from './ui.jsx';
import { RUN_STATUSES } from './run_states.jsx';

/** Day `d` of the week (0 is Sunday) in the operator's language, short. */
const dayName = (d) => new Intl.DateTimeFormat(locale(), { weekday: 'short', timeZone: 'UTC' }).format(Date.UTC(2023, 0, 1 + d));

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
  if (!days.length) throw new Error(t('days: choose at least one day'));
  const list = times.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new Error(t('times: give at least one time, such as 02:30'));
  return list
    .map((hhmm) => {
      const m = hhmm.match(/^([01]?\d|2[0-3]):([0-5]\d)$/);
      if (!m) throw new Error(t("times: '{time}' is not a time of day (HH:MM)", { time: hhmm }));
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
      setNotice(t('Saved.'));
      onSaved();
    });
  };
  const canWrite = ctx.can('jobs.write');
  const type = ctx.types.get(job.job_type);
  return (
    <form onSubmit={save} class="form">
      <dl class="facts">
        <dt>{t('Identifier')}</dt>
        <dd>{job.id}</dd>
        <dt>{t('Description')}</dt>
        <dd>{job.description || '—'}</dd>
        <dt>{t('Type')}</dt>
        <dd data-testid="job-type-info">
          {typeTitle(ctx, job.job_type)} <span class="hint">· {job.job_type}</span>
          {manifestText(type, 'description') && (
            <>
              <br />
              <span class="hint">{manifestText(type, 'description')}</span>
            </>
          )}
        </dd>
        <dt>{t('Owner')}</dt>
        <dd>{job.owner || '—'}</dd>
        <dt>{t('Scope')}</dt>
        <dd>{job.scope}</dd>
        <dt>{t('Region')}</dt>
        <dd>{job.region || t('all regions')}</dd>
        <dt>{t('Schedule zone')}</dt>
        <dd>{job.time_zone || 'UTC'}</dd>
        <dt>{t('Next run')}</dt>
        <dd>
          {job.enabled && job.planning !== 'disabled' && job.next_run_ms ? (
            <>
              {time(job.next_run_ms, job.time_zone || 'UTC')} <span class="hint">· {time(job.next_run_ms)} · {relative(job.next_run_ms)}</span>
            </>
          ) : (
            '—'
          )}
        </dd>
        <dt>{t('Parameters')}</dt>
        <dd>
          <code>{JSON.stringify(job.params)}</code>
        </dd>
        <dt>{t('Created')}</dt>
        <dd>{time(job.created_ms)}</dd>
      </dl>
      <p class="hint">{t('The identifier and the description cannot be changed.')}</p>
      <fieldset disabled={!canWrite}>
        <legend>{t('Execution report')}</legend>
        <div class="field check">
          <input id="send-report" type="checkbox" checked={send} onChange={(e) => setSend(e.currentTarget.checked)} />
          <label for="send-report">{t('Send the report')}</label>
        </div>
        <div class="field">
          <label for="recipients">{t('Recipients (e-mail addresses, separated by commas)')}</label>
          <input id="recipients" disabled={!send} value={list} onInput={(e) => setList(e.currentTarget.value)} />
        </div>
        <div class="actions">
          <button type="submit" class="primary">
            {t('Save recipients')}
          </button>
        </div>
      </fieldset>
      {!canWrite && <p class="hint">{t('Your role ({role}) may not change jobs.', { role: ctx.me.role })}</p>}
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
      setNotice(t('Saved.'));
      onSaved();
    });
  };
  const canWrite = ctx.can('jobs.write');
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return (
    <form onSubmit={save} class="form">
      <fieldset disabled={!canWrite}>
        <legend>{t('Planning')}</legend>
        {[
          ['automatic', t("Automatic: the job type's own schedule ({schedule})", { schedule: type?.default_schedule || t('none') })],
          ['scheduled', t('Scheduled: a cron expression, or days and times of the week')],
          ['disabled', t('Disabled: runs only when started by hand')],
        ].map(([v, label]) => (
          <div class="field check" key={v}>
            <input id={`pl-${v}`} type="radio" name="planning" value={v} checked={planning === v} onChange={() => setPlanning(v)} />
            <label for={`pl-${v}`}>{label}</label>
          </div>
        ))}
        {planning === 'scheduled' && (
          <div class="indent">
            <div class="field-row" role="radiogroup" aria-label={t('Schedule form')}>
              <div class="field check">
                <input id="mode-weekly" type="radio" name="mode" checked={mode === 'weekly'} onChange={() => setMode('weekly')} />
                <label for="mode-weekly">{t('Days and times')}</label>
              </div>
              <div class="field check">
                <input id="mode-cron" type="radio" name="mode" checked={mode === 'cron'} onChange={() => setMode('cron')} />
                <label for="mode-cron">{t('Cron expression')}</label>
              </div>
            </div>
            {mode === 'cron' ? (
              <div class="field">
                <label for="cron">
                  {t('Cron expression')}{' '}
                  <span class="hint">{t('minute hour day-of-month month day-of-week; several separated by ;')}</span>
                </label>
                <input id="cron" class="mono" value={cron} onInput={(e) => setCron(e.currentTarget.value)} />
              </div>
            ) : (
              <>
                <fieldset class="days">
                  <legend>{t('Days')}</legend>
                  {[1, 2, 3, 4, 5, 6, 0].map((d) => (
                    <span class="field check" key={d}>
                      <input
                        id={`day-${d}`}
                        type="checkbox"
                        checked={days.includes(d)}
                        onChange={(e) => setDays(e.currentTarget.checked ? [...days, d] : days.filter((x) => x !== d))}
                      />
                      <label for={`day-${d}`}>{dayName(d)}</label>
                    </span>
                  ))}
                </fieldset>
                <div class="field">
                  <label for="times">
                    {t('Times')} <span class="hint">{t('HH:MM, separated by commas')}</span>
                  </label>
                  <input id="times" value={times} onInput={(e) => setTimes(e.currentTarget.value)} />
                </div>
              </>
            )}
          </div>
        )}
        <div class="field">
          <label for="zone">{t('Time zone')}</label>
          <input id="zone" list="zones" value={zone} onInput={(e) => setZone(e.currentTarget.value)} />
          <datalist id="zones">
            {zones.map((z) => (
              <option value={z} />
            ))}
          </datalist>
        </div>
        <div class="field check">
          <input id="enabled" type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
          <label for="enabled">{t('Enabled')}</label>
        </div>
      </fieldset>
      <section class="preview" aria-labelledby="preview-title">
        <h2 id="preview-title">{t('Next five fire times')}</h2>
        <p class="hint">{t("In the job's zone ({zone}) and in UTC.", { zone })}</p>
        {planning === 'disabled' ? (
          <p class="hint">{t('None: the job runs only when started by hand.')}</p>
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
            {t('Save scheduling')}
          </button>
        </div>
      ) : (
        <p class="hint">{t('Your role ({role}) may not change jobs.', { role: ctx.me.role })}</p>
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
        <StatusToggles value={statuses} onChange={setStatuses} statuses={RUN_STATUSES} label={t('Filter executions by status')} />
      </div>
      <RunTable
        runs={shown}
        caption={t('Latest executions')}
        onLog={onLog}
        empty={t('No executions match. Change the filters, or start one with Run now.')}
      />
    </div>
  );
}

const TABS = [
  ['info', msg('Information')],
  ['schedule', msg('Scheduling')],
  ['runs', msg('Latest executions')],
];

/** Delete a scheduled job: what happens to it and its runs, and a required reason. */
function DeleteDialog({ job, onClose, onDeleted }) {
  const [reason, setReason] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      await api(`/api/v1/jobs/${encodeURIComponent(job.id)}${query({ reason: reason.trim() })}`, { method: 'DELETE' });
      onDeleted();
    });
  };
  return (
    <Dialog title={t('Delete {id}', { id: job.id })} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>
          {t(
            'The scheduled job is deleted: it no longer runs on its schedule and cannot be run now. Its past runs stay in the run history under its id. A job with a run queued or running is not deleted: cancel the run or let it finish first.',
          )}
        </p>
        <div class="field">
          <label for="del-reason">{t('Reason (required, kept in the audit trail)')}</label>
          <textarea id="del-reason" name="reason" required rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        <FormActions
          error={error}
          busy={busy}
          disabled={busy || !reason.trim()}
          onClose={onClose}
          submit={t('Delete the job')}
          working={t('Deleting…')}
          danger
        />
      </form>
    </Dialog>
  );
}

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
    document.title = `${id} · ${t('Jobs')} · Opskernel`;
  }, [id]);
  if (error && !data)
    return (
      <section>
        <h1>{id}</h1>
        <Message error={error} />
        <Link href="/administration/jobs">{t('Back to the jobs')}</Link>
      </section>
    );
  if (!data) return <p class="loading">{t('Loading…')}</p>;
  const { job, runs, failures_30d: failures, terminated_30d: stopped = [] } = data;
  const refusal = runNowRefusal(ctx, [job]);
  // Only real failures, unless the runs terminated for a cause are asked for too.
  const perDay = failures.map((f, i) => f.failures + (withStopped ? stopped[i]?.terminated || 0 : 0));
  const total = perDay.reduce((a, n) => a + n, 0);
  const done = runs.filter((r) => r.phase === 'COMPLETED' && r.started_ms).reverse();
  const shortest = Math.min(...done.map((r) => r.duration_ms));
  const longest = Math.max(...done.map((r) => r.duration_ms));
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
            <Link href="/administration/jobs">{t('Jobs')}</Link> /
          </p>
          <h1 id="job-title">{job.id}</h1>
          <p class="sub">
            {job.description} <span class="hint">· {typeTitle(ctx, job.job_type)}</span>
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
            {t('Run now')}
          </button>
          {ctx.can('jobs.write') && (
            <button type="button" class="danger" onClick={() => setDialog({ kind: 'delete' })}>
              {t('Delete')}
            </button>
          )}
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
            title={withStopped ? t('Failed or stopped runs per day, last 30 days') : t('Failures per day, last 30 days')}
            label={
              withStopped
                ? tp(total, '{n} failed, cancelled, timed-out, stopped or recovered run in the last 30 days', '{n} failed, cancelled, timed-out, stopped or recovered runs in the last 30 days')
                : tp(total, '{n} failed run in the last 30 days', '{n} failed runs in the last 30 days')
            }
            data={[failures.map((f) => f.day_ms / 1000), perDay.map((n) => n || null)]}
            series={[{ label: t('Failures'), stroke: 'var(--chart-fail)', fill: 'var(--chart-fail-fill)' }]}
            bars
            yLabel={t('failures')}
          />
          <label class="check">
            <input type="checkbox" checked={withStopped} onChange={(e) => setWithStopped(e.currentTarget.checked)} />{' '}
            {t('Include cancelled, timed-out, stopped and recovered runs')}
          </label>
        </div>
        <Chart
          title={
            type?.target_duration_ms
              ? tp(done.length, 'Run duration, last completed run (target {target})', 'Run duration, last {n} completed runs (target {target})', {
                  target: duration(type.target_duration_ms),
                })
              : tp(done.length, 'Run duration, last completed run', 'Run duration, last {n} completed runs')
          }
          label={
            done.length
              ? t('Durations from {min} to {max}', { min: duration(shortest), max: duration(longest) })
              : t('No completed runs yet')
          }
          data={[done.map((r) => r.started_ms / 1000), done.map((r) => r.duration_ms / 1000)]}
          series={[{ label: t('Seconds'), stroke: 'var(--chart-line)', width: 2 }]}
          yLabel={t('seconds')}
        />
      </div>
      <div role="tablist" aria-label={t('Job')} class="tabs" onKeyDown={onKey}>
        {TABS.map(([tab_, label]) => (
          <button
            type="button"
            role="tab"
            id={`tab-${tab_}`}
            key={tab_}
            ref={(el) => (tabRefs.current[tab_] = el)}
            aria-selected={tab === tab_ ? 'true' : 'false'}
            aria-controls={`panel-${tab_}`}
            tabIndex={tab === tab_ ? 0 : -1}
            onClick={() => setTab(tab_)}
          >
            {tr(label)}
            {tab_ === 'runs' ? ` (${runs.length})` : ''}
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
      {dialog?.kind === 'delete' && (
        <DeleteDialog job={job} onClose={() => setDialog(null)} onDeleted={() => (setDialog(null), navigate('/administration/jobs'))} />
      )}
    </section>
  );
}
