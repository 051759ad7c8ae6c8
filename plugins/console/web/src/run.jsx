// A run (/administration/runs/{id}): its live log while in progress, the
// progress bar, the result and steps; Cancel where the type has a cancel
// hook, Retry of a failed run with editable parameters, hold/release and
// recover.
import { useEffect, useState } from 'preact/hooks';
import { api, readLog } from './api.js';
import { msg, t, tr } from './i18n.js';
import { typeTitle } from './jobs.jsx';
import { triggerText } from './runs.jsx';
import { RunStatusIcon, TERMINATED, runStateText, runStatusLabel, terminationText } from './run_states.jsx';
import {
  Dialog,
  Link,
  LogView,
  Message,
  ReasonAndActions,
  SchemaFields,
  StatusIcon,
  duration,
  formParams,
  formValues,
  navigate,
  schemaOf,
  startsAt,
  time,
  useAction,
  useSession,
} from './ui.jsx';

const ACTION_TITLES = { hold: msg('Hold run'), release: msg('Release run'), recover: msg('Recover run') };
const ACTION_WORDS = {
  hold: msg('A held run stays queued until it is released.'),
  release: msg('The run goes back to the queue.'),
  recover: msg('The stale run is closed as recovered, not as a failure; its type can then be run again.'),
};

/** A step's title from its job type's manifest, or its id. */
const stepTitle = (type, id) => type?.steps?.find((s) => s.id === id)?.title || id;

/** An action on a run that needs a reason (cancel, hold, release, recover). */
function ReasonDialog({ run, action, title, explain, onClose, onDone }) {
  const [reason, setReason] = useState('');
  const { busy, error, run: act } = useAction();
  const submit = (e) => {
    e.preventDefault();
    act(async () => {
      await api(`/api/v1/runs/${run.id}/${action}`, { method: 'POST', body: { reason: reason.trim() } });
      onDone();
    });
  };
  return (
    <Dialog title={title} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>{explain}</p>
        <ReasonAndActions id="act-reason" reason={reason} onReason={setReason} error={error} busy={busy} onClose={onClose}
          submit={title} back={t('Back')} />
      </form>
    </Dialog>
  );
}

/** Retry of a failed run: the parameters (prefilled with the run's) and a reason. */
function RetryDialog({ run, onClose, onDone }) {
  const ctx = useSession();
  const schema = schemaOf(ctx.types.get(run.job_type));
  const [values, setValues] = useState(() => formValues(schema, run.params || {}));
  const [raw, setRaw] = useState(JSON.stringify(run.params || {}, null, 2));
  const [reason, setReason] = useState('');
  const { busy, error, setError, run: act } = useAction();
  const submit = (e) => {
    e.preventDefault();
    let params;
    try {
      params = schema ? formParams(schema, values, run.params || {}) : JSON.parse(raw || '{}');
    } catch (err) {
      return setError(new Error(t('params: not a JSON object ({error})', { error: err.message })));
    }
    act(async () => {
      const r = await api(`/api/v1/runs/${run.id}/retry`, { method: 'POST', body: { reason: reason.trim(), params } });
      onDone(r.new_run_id);
    });
  };
  return (
    <Dialog title={t('Retry run {id}', { id: run.id })} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>{t('A new run of {type} starts, linked to this one. Change the parameters if needed.', { type: typeTitle(ctx, run.job_type) })}</p>
        {schema ? (
          <SchemaFields schema={schema} values={values} onChange={setValues} idPrefix="rt" />
        ) : (
          <div class="field">
            <label for="rt-raw">{t('Parameters (JSON object)')}</label>
            <textarea id="rt-raw" class="mono" rows={4} value={raw} onInput={(e) => setRaw(e.currentTarget.value)} />
          </div>
        )}
        <ReasonAndActions id="rt-reason" reason={reason} onReason={setReason} error={error} busy={busy} onClose={onClose}
          submit={t('Retry')} back={t('Back')} />
      </form>
    </Dialog>
  );
}

export function RunPage({ id }) {
  const ctx = useSession();
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState('');
  const load = () =>
    api(`/api/v1/runs/${id}`)
      .then((d) => (setData(d), setError(null)))
      .catch(setError);
  useEffect(() => {
    setData(null);
    setNotice('');
    load();
    readLog.mark(ctx.me.user_id, id);
    document.title = `${t('Run {id}', { id })} · Opskernel`;
  }, [id]);
  const phase = data?.run.phase;
  useEffect(() => {
    if (!phase || phase === 'COMPLETED') return;
    const t = setInterval(load, 1000); // progress and state; the log streams on its own
    return () => clearInterval(t);
  }, [id, phase]);
  if (error && !data)
    return (
      <section>
        <h1>{t('Run {id}', { id })}</h1>
        <Message error={error} />
      </section>
    );
  if (!data) return <p class="loading">{t('Loading…')}</p>;
  const { run, steps } = data;
  const type = ctx.types.get(run.job_type);
  const running = run.phase === 'RUNNING';
  const pct = Math.max(0, Math.min(100, Math.round(run.progress || 0)));
  // A run that completed without failing or being cancelled is done, whatever
  // progress it reported.
  const finished = run.phase === 'COMPLETED' && run.status !== 'error' && !TERMINATED.has(run.status);
  const typeName = typeTitle(ctx, run.job_type);
  const cancelWhy = !ctx.can('runs.cancel')
    ? t('Your role ({role}) may not cancel runs.', { role: ctx.me.role })
    : run.phase === 'COMPLETED'
      ? ''
      : !run.cancellable && running
        ? t('{type} has no cancel hook: a running run cannot be stopped safely, so it is not cancelled.', { type: typeName })
        : '';
  const after = (msg) => () => {
    setDialog(null);
    setNotice(msg);
    load();
  };
  return (
    <section aria-labelledby="run-title">
      <div class="page-head">
        <div>
          <p class="crumbs">
            <Link href="/administration/jobs">{t('Jobs')}</Link> /{' '}
            {run.scheduled_job_id && (
              <>
                <Link href={`/administration/jobs/${encodeURIComponent(run.scheduled_job_id)}`}>{run.scheduled_job_id}</Link> /
              </>
            )}
          </p>
          <h1 id="run-title">
            <RunStatusIcon status={run.status} /> {t('Run {id}', { id: run.id })}{' '}
            <span class="sub" data-testid="run-status">
              {runStateText(run)}
              {run.terminated && !run.termination ? ` ${t('(terminated)')}` : ''}
              {run.stale ? ` ${t('(stale)')}` : ''}
              {run.hold ? ` ${t('(held)')}` : ''}
            </span>
          </h1>
          <p class="sub">
            {typeName}
            {run.dry_run ? ` · ${t('dry run')}` : ''}
          </p>
        </div>
        <div class="tools">
          {run.phase !== 'COMPLETED' && ctx.can('runs.cancel') && (
            <button
              type="button"
              disabled={!run.cancellable}
              aria-describedby={cancelWhy ? 'cancel-why' : undefined}
              onClick={() => setDialog('cancel')}
            >
              {t('Cancel run')}
            </button>
          )}
          {run.retryable && ctx.can('runs.retry') && (
            <button type="button" class="primary" onClick={() => setDialog('retry')}>
              {t('Retry')}
            </button>
          )}
          {run.phase === 'PENDING' && ctx.can('runs.hold') && (
            <button type="button" onClick={() => setDialog(run.hold ? 'release' : 'hold')}>
              {run.hold ? t('Release') : t('Hold')}
            </button>
          )}
          {run.stale && ctx.can('runs.recover') && (
            <button type="button" onClick={() => setDialog('recover')}>
              {t('Recover')}
            </button>
          )}
        </div>
      </div>
      {cancelWhy && run.phase !== 'COMPLETED' && (
        <p id="cancel-why" class="message notice">
          {cancelWhy}
        </p>
      )}
      <Message error={error} notice={notice} />
      <div class="progress-row">
        <label for="run-progress">{t('Progress')}</label>
        <progress id="run-progress" max={100} value={finished ? 100 : pct}>
          {finished ? 100 : pct}%
        </progress>
        <span>
          {finished ? t('completed') : run.phase === 'COMPLETED' ? t('stopped at {pct}%', { pct }) : `${pct}%`}{' '}
          {run.progress_message && `· ${run.progress_message}`}
        </span>
      </div>
      <div class="run-grid">
        <dl class="facts">
          <dt>{t('Result')}</dt>
          <dd data-testid="run-summary">{run.summary || (run.phase === 'COMPLETED' ? runStatusLabel(run.status) : '—')}</dd>
          {run.cancelled_by && (
            <>
              <dt>{t('Cancelled by')}</dt>
              <dd data-testid="run-cancelled-by">{run.cancelled_by}</dd>
            </>
          )}
          {run.termination && (
            <>
              <dt>{t('Why it stopped')}</dt>
              <dd data-testid="run-termination">{terminationText(run)}</dd>
            </>
          )}
          <dt>{t('Exit code')}</dt>
          <dd>{run.phase === 'COMPLETED' ? run.exit_code : '—'}</dd>
          <dt>{t('Trigger')}</dt>
          <dd>{triggerText(run.trigger)}</dd>
          <dt>{t('Started by')}</dt>
          <dd>{run.triggered_by ? `${run.triggered_by} (${run.role})` : '—'}</dd>
          <dt>{t('Reason')}</dt>
          <dd>{run.reason || '—'}</dd>
          <dt>{t('Tenant')}</dt>
          <dd>{run.target_tenant || '—'}</dd>
          <dt>{t('Created')}</dt>
          <dd>{time(run.created_ms)}</dd>
          {!run.started_ms && run.scheduled_ms > Date.now() && (
            <>
              <dt>{t('Starts')}</dt>
              <dd>{startsAt(run.scheduled_ms)}</dd>
            </>
          )}
          <dt>{t('Started')}</dt>
          <dd>{time(run.started_ms)}</dd>
          <dt>{t('Finished')}</dt>
          <dd>{time(run.finished_ms)}</dd>
          <dt>{t('Duration')}</dt>
          <dd>
            {run.started_ms ? duration(run.duration_ms) : '—'}
            {run.over_target && <span class="flag"> {t('over the target of {target}', { target: duration(run.target_duration_ms) })}</span>}
          </dd>
          <dt>{t('Parameters')}</dt>
          <dd>
            <code>{JSON.stringify(run.params)}</code>
          </dd>
          {run.parent_run_id ? (
            <>
              <dt>{t('Retry of')}</dt>
              <dd>
                <Link href={`/administration/runs/${run.parent_run_id}`}>{t('run {id}', { id: run.parent_run_id })}</Link>
              </dd>
            </>
          ) : null}
        </dl>
        <div>
          <h2>{t('Steps')}</h2>
          {steps.length ? (
            <ol class="steps">
              {steps.map((s) => (
                <li key={s.id}>
                  <StatusIcon status={s.end_ms ? (s.outcome || 'normal').toLowerCase() : 'running'} /> {stepTitle(type, s.id)}{' '}
                  <span class="hint">
                    {s.end_ms ? duration(s.end_ms - s.start_ms) : t('running')} {s.summary && `· ${s.summary}`}
                  </span>
                </li>
              ))}
            </ol>
          ) : (
            <p class="hint">{t('No steps recorded.')}</p>
          )}
        </div>
      </div>
      <h2>{t('Log')}</h2>
      <LogView runId={id} onEnd={(r) => setData(r)} />
      {dialog === 'cancel' && (
        <ReasonDialog
          run={run}
          action="cancel"
          title={t('Cancel run')}
          explain={
            run.phase === 'PENDING'
              ? t('The run has not started: it is cancelled at once.')
              : t('{type} is asked to stop through its cancel hook; it stops at its next safe point.', { type: typeName })
          }
          onClose={() => setDialog(null)}
          onDone={after(t('Cancel requested.'))}
        />
      )}
      {(dialog === 'hold' || dialog === 'release' || dialog === 'recover') && (
        <ReasonDialog
          run={run}
          action={dialog}
          title={tr(ACTION_TITLES[dialog])}
          explain={tr(ACTION_WORDS[dialog])}
          onClose={() => setDialog(null)}
          onDone={after(t('Done.'))}
        />
      )}
      {dialog === 'retry' && (
        <RetryDialog
          run={run}
          onClose={() => setDialog(null)}
          onDone={(newId) => {
            setDialog(null);
            navigate(`/administration/runs/${newId}`);
          }}
        />
      )}
    </section>
  );
}
