// A run (/administration/runs/{id}): its live log while in progress, the
// progress bar, the result and steps; Cancel where the type has a cancel
// hook, Retry of a failed run with editable parameters, hold/release and
// recover.
import { useEffect, useState } from 'preact/hooks';
import { api, readLog } from './api.js';
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
  statusLabel,
  startsAt,
  time,
  useAction,
  useSession,
} from './ui.jsx';

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
          submit={title} back="Back" />
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
      return setError(new Error(`params: not a JSON object (${err.message})`));
    }
    act(async () => {
      const r = await api(`/api/v1/runs/${run.id}/retry`, { method: 'POST', body: { reason: reason.trim(), params } });
      onDone(r.new_run_id);
    });
  };
  return (
    <Dialog title={`Retry run ${run.id}`} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>A new run of {run.job_type} starts, linked to this one. Change the parameters if needed.</p>
        {schema ? (
          <SchemaFields schema={schema} values={values} onChange={setValues} idPrefix="rt" />
        ) : (
          <div class="field">
            <label for="rt-raw">Parameters (JSON object)</label>
            <textarea id="rt-raw" class="mono" rows={4} value={raw} onInput={(e) => setRaw(e.currentTarget.value)} />
          </div>
        )}
        <ReasonAndActions id="rt-reason" reason={reason} onReason={setReason} error={error} busy={busy} onClose={onClose}
          submit="Retry" back="Back" />
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
    document.title = `Run ${id} · Opskernel`;
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
        <h1>Run {id}</h1>
        <Message error={error} />
      </section>
    );
  if (!data) return <p class="loading">Loading…</p>;
  const { run, steps } = data;
  const type = ctx.types.get(run.job_type);
  const running = run.phase === 'RUNNING';
  const pct = Math.max(0, Math.min(100, Math.round(run.progress || 0)));
  // A run that completed without failing or being cancelled is done, whatever
  // progress it reported.
  const finished = run.phase === 'COMPLETED' && run.status !== 'error' && !TERMINATED.has(run.status);
  const cancelWhy = !ctx.can('runs.cancel')
    ? `Your role (${ctx.me.role}) may not cancel runs.`
    : run.phase === 'COMPLETED'
      ? ''
      : !run.cancellable && running
        ? `${run.job_type} has no cancel hook: a running run cannot be stopped safely, so it is not cancelled.`
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
            <Link href="/administration/jobs">Jobs</Link> /{' '}
            {run.scheduled_job_id && (
              <>
                <Link href={`/administration/jobs/${encodeURIComponent(run.scheduled_job_id)}`}>{run.scheduled_job_id}</Link> /
              </>
            )}
          </p>
          <h1 id="run-title">
            <RunStatusIcon status={run.status} /> Run {run.id}{' '}
            <span class="sub" data-testid="run-status">
              {runStateText(run)}
              {run.terminated && !run.termination ? ' (terminated)' : ''}
              {run.stale ? ' (stale)' : ''}
              {run.hold ? ' (held)' : ''}
            </span>
          </h1>
          <p class="sub">
            {type?.title || run.job_type}
            {run.dry_run ? ' · dry run' : ''}
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
              Cancel run
            </button>
          )}
          {run.retryable && ctx.can('runs.retry') && (
            <button type="button" class="primary" onClick={() => setDialog('retry')}>
              Retry
            </button>
          )}
          {run.phase === 'PENDING' && ctx.can('runs.hold') && (
            <button type="button" onClick={() => setDialog(run.hold ? 'release' : 'hold')}>
              {run.hold ? 'Release' : 'Hold'}
            </button>
          )}
          {run.stale && ctx.can('runs.recover') && (
            <button type="button" onClick={() => setDialog('recover')}>
              Recover
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
        <label for="run-progress">Progress</label>
        <progress id="run-progress" max={100} value={finished ? 100 : pct}>
          {finished ? 100 : pct}%
        </progress>
        <span>
          {finished ? 'completed' : run.phase === 'COMPLETED' ? `stopped at ${pct}%` : `${pct}%`}{' '}
          {run.progress_message && `· ${run.progress_message}`}
        </span>
      </div>
      <div class="run-grid">
        <dl class="facts">
          <dt>Result</dt>
          <dd data-testid="run-summary">{run.summary || (run.phase === 'COMPLETED' ? runStatusLabel(run.status) : '—')}</dd>
          {run.cancelled_by && (
            <>
              <dt>Cancelled by</dt>
              <dd data-testid="run-cancelled-by">{run.cancelled_by}</dd>
            </>
          )}
          {run.termination && (
            <>
              <dt>Why it stopped</dt>
              <dd data-testid="run-termination">{terminationText(run)}</dd>
            </>
          )}
          <dt>Exit code</dt>
          <dd>{run.phase === 'COMPLETED' ? run.exit_code : '—'}</dd>
          <dt>Trigger</dt>
          <dd>{run.trigger}</dd>
          <dt>Started by</dt>
          <dd>{run.triggered_by ? `${run.triggered_by} (${run.role})` : '—'}</dd>
          <dt>Reason</dt>
          <dd>{run.reason || '—'}</dd>
          <dt>Tenant</dt>
          <dd>{run.target_tenant || '—'}</dd>
          <dt>Created</dt>
          <dd>{time(run.created_ms)}</dd>
          {!run.started_ms && run.scheduled_ms > Date.now() && (
            <>
              <dt>Starts</dt>
              <dd>{startsAt(run.scheduled_ms)}</dd>
            </>
          )}
          <dt>Started</dt>
          <dd>{time(run.started_ms)}</dd>
          <dt>Finished</dt>
          <dd>{time(run.finished_ms)}</dd>
          <dt>Duration</dt>
          <dd>
            {run.started_ms ? duration(run.duration_ms) : '—'}
            {run.over_target && <span class="flag"> over the target of {duration(run.target_duration_ms)}</span>}
          </dd>
          <dt>Parameters</dt>
          <dd>
            <code>{JSON.stringify(run.params)}</code>
          </dd>
          {run.parent_run_id ? (
            <>
              <dt>Retry of</dt>
              <dd>
                <Link href={`/administration/runs/${run.parent_run_id}`}>run {run.parent_run_id}</Link>
              </dd>
            </>
          ) : null}
        </dl>
        <div>
          <h2>Steps</h2>
          {steps.length ? (
            <ol class="steps">
              {steps.map((s) => (
                <li key={s.id}>
                  <StatusIcon status={s.end_ms ? (s.outcome || 'normal').toLowerCase() : 'running'} /> {s.id}{' '}
                  <span class="hint">
                    {s.end_ms ? duration(s.end_ms - s.start_ms) : 'running'} {s.summary && `· ${s.summary}`}
                  </span>
                </li>
              ))}
            </ol>
          ) : (
            <p class="hint">No steps recorded.</p>
          )}
        </div>
      </div>
      <h2>Log</h2>
      <LogView runId={id} onEnd={(r) => setData(r)} />
      {dialog === 'cancel' && (
        <ReasonDialog
          run={run}
          action="cancel"
          title="Cancel run"
          explain={
            run.phase === 'PENDING'
              ? 'The run has not started: it is cancelled at once.'
              : `${run.job_type} is asked to stop through its cancel hook; it stops at its next safe point.`
          }
          onClose={() => setDialog(null)}
          onDone={after('Cancel requested.')}
        />
      )}
      {(dialog === 'hold' || dialog === 'release' || dialog === 'recover') && (
        <ReasonDialog
          run={run}
          action={dialog}
          title={{ hold: 'Hold run', release: 'Release run', recover: 'Recover run' }[dialog]}
          explain={
            {
              hold: 'A held run stays queued until it is released.',
              release: 'The run goes back to the queue.',
              recover: 'The stale run is closed as failed; its type can then be run again.',
            }[dialog]
          }
          onClose={() => setDialog(null)}
          onDone={after('Done.')}
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
