// The jobs list (/administration/jobs): scheduled jobs with their last run,
// status icons and the unread-log marker, filters, and Run now for the
// selected rows. Also the Run now dialog the drill-in reuses.
import { useEffect, useState } from 'preact/hooks';
import { api, query, readLog } from './api.js';
import { fromLocalInput, zoneName } from './format.js';
import {
  ChoiceFilter,
  Dialog,
  EmptyRow,
  Link,
  LogView,
  Message,
  ReasonAndActions,
  SchemaFields,
  StatusIcon,
  StatusToggles,
  STATUSES,
  TextFilter,
  formParams,
  formValues,
  navigate,
  schemaOf,
  shortTime,
  statusLabel,
  time,
  useAction,
  useEventCount,
  useSession,
} from './ui.jsx';
import { RUN_STATUSES, RunStatusIcon, runStatusLabel } from './run_states.jsx';

const ALL = [...RUN_STATUSES.map((s) => s.id), 'never'];
const TOGGLES = [...RUN_STATUSES, { id: 'never', label: 'Never run' }];
const PAGE = 50;

/** Polls `load` every `seconds` while the page is visible; returns [data, error, reload]. */
export function usePoll(load, seconds, deps) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const run = () =>
      load()
        .then((d) => live && (setData(d), setError(null)))
        .catch((e) => live && setError(e));
    run();
    const t = setInterval(() => document.visibilityState === 'visible' && run(), seconds * 1000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [...deps, tick]);
  return [data, error, () => setTick((t) => t + 1)];
}

/** Re-renders when a log is marked read (here or in another tab). */
export function useReadMarks() {
  useEventCount(['opk-read', 'storage']);
}

/** Why these jobs cannot be run now by this user, or '' when they can. */
export function runNowRefusal(ctx, jobs) {
  if (!ctx.can('runs.start')) return `Your role (${ctx.me.role}) may not start runs.`;
  if (!jobs.length) return 'Select the jobs to run.';
  const guarded = jobs.filter((j) => ctx.types.get(j.job_type)?.manual_run === false);
  if (guarded.length)
    return `${guarded.map((j) => j.id).join(', ')}: the job type does not allow manual runs (manual_run=false); it runs only on its schedule.`;
  const missing = jobs.filter((j) => !ctx.types.has(j.job_type));
  if (missing.length) return `${missing.map((j) => j.id).join(', ')}: no loaded plugin provides the job type.`;
  return '';
}

/** The log popup of a run, streamed live while it runs. */
export function LogDialog({ runId, onClose }) {
  const ctx = useSession();
  useEffect(() => readLog.mark(ctx.me.user_id, runId), [runId]);
  return (
    <Dialog title={`Log of run ${runId}`} onClose={onClose} wide>
      <LogView runId={runId} />
      <p>
        <Link href={`/administration/runs/${runId}`}>Open the run</Link>
      </p>
    </Dialog>
  );
}

/** Run now for one or more scheduled jobs: parameters, options and a required reason. */
export function RunNowDialog({ jobs, onClose, onStarted }) {
  const ctx = useSession();
  const single = jobs.length === 1 ? jobs[0] : null;
  const type = single ? ctx.types.get(single.job_type) : null;
  const schema = type ? schemaOf(type) : null;
  const [values, setValues] = useState(() => formValues(schema, single?.params || {}));
  const [reason, setReason] = useState('');
  const [tenant, setTenant] = useState('');
  const [dry, setDry] = useState(false);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const { busy, error, run } = useAction();
  const dryOk = jobs.every((j) => ctx.types.get(j.job_type)?.dry_run);
  const submit = (e) => {
    e.preventDefault();
    const common = { reason: reason.trim() };
    if (tenant.trim()) common.tenant = tenant.trim().replace(/^tenant:/, '');
    if (dry) common.dry_run = true;
    if (from) common.range_start_ms = fromLocalInput(from);
    if (to) common.range_end_ms = fromLocalInput(to);
    run(async () => {
      let answer;
      if (single) {
        const body = { ...common };
        if (schema) body.params = formParams(schema, values, single.params || {});
        answer = await api(`/api/v1/jobs/${encodeURIComponent(single.id)}/run`, { method: 'POST', body });
      } else {
        answer = await api('/api/v1/runs', { method: 'POST', body: { requests: jobs.map((j) => ({ ...common, job_id: j.id })) } });
      }
      onStarted(answer.run_ids);
    });
  };
  return (
    <Dialog title={single ? `Run ${single.id} now` : `Run ${jobs.length} jobs now`} onClose={onClose}>
      <form onSubmit={submit} class="form">
        {!single && <p>{jobs.map((j) => j.id).join(', ')} run with their stored parameters.</p>}
        {single && <SchemaFields schema={schema} values={values} onChange={setValues} idPrefix="rn" />}
        <fieldset>
          <legend>Options</legend>
          <div class="field">
            <label for="rn-tenant">
              Target tenant <span class="hint">optional; a tenant name such as acme</span>
            </label>
            <input id="rn-tenant" name="tenant" value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} />
          </div>
          <div class="field check">
            <input id="rn-dry" type="checkbox" disabled={!dryOk} checked={dry} onChange={(e) => setDry(e.currentTarget.checked)} />
            <label for="rn-dry">
              Dry run: report what would be done, change nothing
              {!dryOk && <span class="hint"> (not offered by this job type)</span>}
            </label>
          </div>
          <div class="field-row">
            <div class="field">
              <label for="rn-from">Time range from ({zoneName()})</label>
              <input id="rn-from" type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="rn-to">to ({zoneName()})</label>
              <input id="rn-to" type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
            </div>
          </div>
        </fieldset>
        <ReasonAndActions id="rn-reason" reason={reason} onReason={setReason} error={error} busy={busy} onClose={onClose}
          submit={busy ? 'Starting…' : 'Run now'} />
      </form>
    </Dialog>
  );
}

export function JobsPage() {
  const ctx = useSession();
  useReadMarks();
  const [statuses, setStatuses] = useState(ALL);
  const [text, setText] = useState('');
  const [typed, setTyped] = useState('');
  const [offset, setOffset] = useState(0);
  const [region, setRegion] = useState('');
  const [tenant, setTenant] = useState('');
  const [selected, setSelected] = useState(new Map());
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState('');
  useEffect(() => {
    document.title = 'Jobs · Opskernel';
  }, []);
  useEffect(() => {
    const t = setTimeout(() => (setText(typed), setOffset(0)), 250);
    return () => clearTimeout(t);
  }, [typed]);
  const filtered = statuses.length !== ALL.length;
  const [data, error, reload] = usePoll(
    () =>
      filtered && !statuses.length
        ? Promise.resolve({ total: 0, items: [] })
        : api(`/api/v1/jobs${query({ status: filtered ? statuses.join(',') : '', text, region, tenant, offset, limit: PAGE })}`),
    ctx.settings.poll_seconds,
    [statuses.join(','), text, region, tenant, offset],
  );
  const items = data?.items || [];
  const chosen = [...selected.values()];
  const refusal = runNowRefusal(ctx, chosen);
  const allOnPage = items.length > 0 && items.every((j) => selected.has(j.id));
  const toggle = (j) => {
    const next = new Map(selected);
    if (next.has(j.id)) next.delete(j.id);
    else next.set(j.id, j);
    setSelected(next);
  };
  const read = readLog.all(ctx.me.user_id);
  return (
    <section aria-labelledby="jobs-title">
      <div class="page-head">
        <h1 id="jobs-title">Scheduled jobs</h1>
        <div class="tools">
          <StatusToggles value={statuses} statuses={TOGGLES} onChange={(v) => (setStatuses(v), setOffset(0))} />
          <ChoiceFilter
            id="job-region"
            label="Region"
            all="All regions"
            choices={data?.regions || []}
            value={region}
            onChange={(v) => (setRegion(v), setOffset(0))}
          />
          <ChoiceFilter
            id="job-tenant"
            label="Tenant or scope"
            all="All tenants"
            choices={data?.scopes || []}
            value={tenant}
            onChange={(v) => (setTenant(v), setOffset(0))}
          />
          <TextFilter
            id="job-filter"
            label="Filter jobs by text"
            placeholder="Filter by id, type or description"
            value={typed}
            onInput={setTyped}
          />
          <button
            type="button"
            class="primary"
            disabled={!!refusal}
            aria-describedby={refusal ? 'run-now-why' : undefined}
            onClick={() => setDialog({ kind: 'run', jobs: chosen })}
          >
            Run now{chosen.length > 1 ? ` (${chosen.length})` : ''}
          </button>
        </div>
      </div>
      {refusal && (
        <p id="run-now-why" class={chosen.length > 0 ? 'message notice' : 'hint'}>
          {refusal}
        </p>
      )}
      <Message error={error} notice={notice} />
      <div class="table-wrap">
        <table class="jobs">
          <caption class="visually-hidden">
            Scheduled jobs, {data ? `${data.total} in all` : 'loading'}
          </caption>
          <thead>
            <tr>
              <th scope="col" class="narrow">
                <input
                  type="checkbox"
                  aria-label="Select every job on this page"
                  checked={allOnPage}
                  onChange={() => {
                    const next = new Map(selected);
                    for (const j of items) allOnPage ? next.delete(j.id) : next.set(j.id, j);
                    setSelected(next);
                  }}
                />
              </th>
              <th scope="col" class="narrow">
                <span class="visually-hidden">Last status</span>
                <span aria-hidden="true">Last</span>
              </th>
              <th scope="col" class="narrow">
                Log
              </th>
              <th scope="col">Job</th>
              <th scope="col">Type</th>
              <th scope="col">Enabled</th>
              <th scope="col">Status</th>
              <th scope="col">Last run</th>
              <th scope="col">Next run</th>
              <th scope="col">Description</th>
              <th scope="col">Owner</th>
              <th scope="col">Tenant</th>
              <th scope="col">Region</th>
            </tr>
          </thead>
          <tbody>
            {items.map((j) => {
              const last = j.last_run;
              const st = last ? last.status : 'never';
              const unread = last && !read.has(last.id);
              const current = !j.enabled
                ? 'Disabled'
                : st === 'running'
                  ? 'Running'
                  : st === 'pending'
                    ? 'Queued'
                    : j.planning === 'disabled'
                      ? 'Manual only'
                      : 'Idle';
              return (
                <tr key={j.id} class={selected.has(j.id) ? 'selected' : ''}>
                  <td>
                    <input type="checkbox" aria-label={`Select ${j.id}`} checked={selected.has(j.id)} onChange={() => toggle(j)} />
                  </td>
                  <td>
                    <RunStatusIcon status={st} />
                  </td>
                  <td>
                    {last ? (
                      <button
                        type="button"
                        class={`log-marker ${unread ? 'unread' : 'read'}`}
                        aria-label={`${unread ? 'Unread log' : 'Log'} of run ${last.id} of ${j.id}`}
                        title={unread ? 'Unread log: open it' : 'Open the log'}
                        onClick={() => setDialog({ kind: 'log', runId: last.id })}
                      >
                        ☰
                      </button>
                    ) : (
                      <span class="hint">—</span>
                    )}
                  </td>
                  <td>
                    <Link href={`/administration/jobs/${encodeURIComponent(j.id)}`}>{j.id}</Link>
                  </td>
                  <td>{j.job_type}</td>
                  <td>{j.enabled ? 'Yes' : 'No'}</td>
                  <td title={`Planning: ${j.planning}`}>{current}</td>
                  <td>
                    {last ? (
                      <Link
                        href={`/administration/runs/${last.id}`}
                        title={`${runStatusLabel(st)}, ${time(last.finished_ms || last.created_ms)}`}
                      >
                        {shortTime(last.finished_ms || last.created_ms)}
                      </Link>
                    ) : (
                      'never'
                    )}
                  </td>
                  <td title={time(j.next_run_ms)}>{j.enabled && j.planning !== 'disabled' ? shortTime(j.next_run_ms) : '—'}</td>
                  <td class="desc" title={j.description}>
                    {j.description}
                  </td>
                  <td title={j.owner ? '' : 'The job type\'s owner'}>{j.owner || ctx.types.get(j.job_type)?.owner || '—'}</td>
                  <td>{j.scope}</td>
                  <td>{j.region || '—'}</td>
                </tr>
              );
            })}
            <EmptyRow show={data && !items.length} cols={13}>
              No scheduled jobs match. Change the filters; jobs are added as [job.ID] sections of the configuration or through
              the admin API.
            </EmptyRow>
          </tbody>
        </table>
      </div>
      {data && data.total > PAGE && (
        <div class="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            Previous
          </button>
          <span>
            {offset + 1}–{Math.min(offset + PAGE, data.total)} of {data.total}
          </span>
          <button type="button" disabled={offset + PAGE >= data.total} onClick={() => setOffset(offset + PAGE)}>
            Next
          </button>
        </div>
      )}
      {dialog?.kind === 'run' && (
        <RunNowDialog
          jobs={dialog.jobs}
          onClose={() => setDialog(null)}
          onStarted={(ids) => {
            setDialog(null);
            setSelected(new Map());
            reload();
            if (ids.length === 1) navigate(`/administration/runs/${ids[0]}`);
            else setNotice(`Started runs ${ids.join(', ')}.`);
          }}
        />
      )}
      {dialog?.kind === 'log' && <LogDialog runId={dialog.runId} onClose={() => (setDialog(null), reload())} />}
    </section>
  );
}
