// The jobs list (/administration/jobs): scheduled jobs with their last run,
// status icons and the unread-log marker, the last run's duration, filters,
// sorting by any column (kept in the address), Run now for the selected
// rows and New job (roles with jobs.write). Also the Run now dialog the
// drill-in reuses.
import { useEffect, useState } from 'preact/hooks';
import { api, query, readLog } from './api.js';
import { fromLocalInput, zoneName } from './format.js';
import { browserZone } from './prefs.js';
import { manifestText, msg, t, tr } from './i18n.js';
import {
  ChoiceFilter,
  Dialog,
  EmptyRow,
  FormActions,
  Link,
  LogView,
  Message,
  ReasonAndActions,
  SchemaFields,
  StatusToggles,
  TextFilter,
  duration,
  formParams,
  formValues,
  navigate,
  schemaOf,
  shortTime,
  time,
  useAction,
  useEventCount,
  useSession,
} from './ui.jsx';
import { RUN_STATUSES, RunStatusIcon, runStatusLabel } from './run_states.jsx';
import './jobs.css';

const ALL = [...RUN_STATUSES.map((s) => s.id), 'never'];
const TOGGLES = [
  ...RUN_STATUSES,
  {
    id: 'never',
    get label() {
      return t('Never run');
    },
  },
];
const PAGE = 50;

// What a job does now (the API's state).
const STATE_WORDS = {
  disabled: msg('Disabled'),
  running: msg('Running'),
  queued: msg('Queued'),
  manual: msg('Manual only'),
  idle: msg('Idle'),
};

/** A job type's title in the operator's language (from its manifest), or its id. */
export const typeTitle = (ctx, id) => manifestText(ctx.types.get(id), 'title') || id;

/** The sort in the address (?sort=&order=), or the default: by id, ascending. */
function sortFromAddress() {
  const q = new URLSearchParams(location.search);
  return { sort: q.get('sort') || 'id', order: q.get('order') === 'desc' ? 'desc' : 'asc' };
}

/**
 * A column head that sorts the list by `by`: a button (Enter or Space), the
 * column's aria-sort while it is the sort, and then an arrow saying which way
 * (the other heads stay narrow: the table is wide).
 */
function SortHead({ by, label, sort, onSort, className }) {
  const on = sort.sort === by;
  return (
    <th scope="col" class={className} aria-sort={on ? (sort.order === 'asc' ? 'ascending' : 'descending') : undefined}>
      <button type="button" class="sort" data-sort={by} onClick={() => onSort({ sort: by, order: on && sort.order === 'asc' ? 'desc' : 'asc' })}>
        {label}
        {on && (
          <span aria-hidden="true" class="sort-arrow">
            {sort.order === 'asc' ? '▲' : '▼'}
          </span>
        )}
      </button>
    </th>
  );
}

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
  if (!ctx.can('runs.start')) return t('Your role ({role}) may not start runs.', { role: ctx.me.role });
  if (!jobs.length) return t('Select the jobs to run.');
  const guarded = jobs.filter((j) => ctx.types.get(j.job_type)?.manual_run === false);
  if (guarded.length)
    return t('{jobs}: the job type does not allow manual runs (manual_run=false); it runs only on its schedule.', {
      jobs: guarded.map((j) => j.id).join(', '),
    });
  const missing = jobs.filter((j) => !ctx.types.has(j.job_type));
  if (missing.length) return t('{jobs}: no loaded plugin provides the job type.', { jobs: missing.map((j) => j.id).join(', ') });
  return '';
}

/** The log popup of a run, streamed live while it runs. */
export function LogDialog({ runId, onClose }) {
  const ctx = useSession();
  useEffect(() => readLog.mark(ctx.me.user_id, runId), [runId]);
  return (
    <Dialog title={t('Log of run {id}', { id: runId })} onClose={onClose} wide>
      <LogView runId={runId} />
      <p>
        <Link href={`/administration/runs/${runId}`}>{t('Open the run')}</Link>
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
    <Dialog title={single ? t('Run {id} now', { id: single.id }) : t('Run {n} jobs now', { n: jobs.length })} onClose={onClose}>
      <form onSubmit={submit} class="form">
        {!single && <p>{t('{jobs} run with their stored parameters.', { jobs: jobs.map((j) => j.id).join(', ') })}</p>}
        {single && <SchemaFields schema={schema} values={values} onChange={setValues} idPrefix="rn" />}
        <fieldset>
          <legend>{t('Options')}</legend>
          <div class="field">
            <label for="rn-tenant">
              {t('Target tenant')} <span class="hint">{t('optional; a tenant name such as acme')}</span>
            </label>
            <input id="rn-tenant" name="tenant" value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} />
          </div>
          <div class="field check">
            <input id="rn-dry" type="checkbox" disabled={!dryOk} checked={dry} onChange={(e) => setDry(e.currentTarget.checked)} />
            <label for="rn-dry">
              {t('Dry run: report what would be done, change nothing')}
              {!dryOk && <span class="hint"> {t('(not offered by this job type)')}</span>}
            </label>
          </div>
          <div class="field-row">
            <div class="field">
              <label for="rn-from">{t('Time range from ({zone})', { zone: zoneName() })}</label>
              <input id="rn-from" type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="rn-to">{t('to ({zone})', { zone: zoneName() })}</label>
              <input id="rn-to" type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
            </div>
          </div>
        </fieldset>
        <ReasonAndActions id="rn-reason" reason={reason} onReason={setReason} error={error} busy={busy} onClose={onClose}
          submit={busy ? t('Starting…') : t('Run now')} />
      </form>
    </Dialog>
  );
}

/**
 * A new scheduled job (POST /api/v1/jobs): its id, job type with that type's
 * parameters, description, planning (the type's own schedule, a cron
 * expression or by hand only), time zone and whether it is enabled.
 * `onCreated(job)` gets the job the server stored.
 */
export function NewJobDialog({ onClose, onCreated }) {
  const ctx = useSession();
  const types = [...ctx.types.values()].sort((a, b) => manifestText(a, 'title').localeCompare(manifestText(b, 'title')));
  const [id, setId] = useState('');
  const [typeId, setTypeId] = useState(types[0]?.id || '');
  const type = ctx.types.get(typeId);
  const schema = type ? schemaOf(type) : null;
  const [values, setValues] = useState(() => formValues(schema, {}));
  const [description, setDescription] = useState('');
  const [planning, setPlanning] = useState('automatic');
  const [cron, setCron] = useState('');
  const [zone, setZone] = useState(browserZone);
  const [enabled, setEnabled] = useState(true);
  const { busy, error, run } = useAction();
  const chooseType = (next) => {
    setTypeId(next);
    const s = ctx.types.get(next) ? schemaOf(ctx.types.get(next)) : null;
    setValues(formValues(s, {}));
  };
  const submit = (e) => {
    e.preventDefault();
    const body = { id: id.trim(), job_type: typeId, planning, time_zone: zone.trim(), enabled };
    if (description.trim()) body.description = description.trim();
    if (planning === 'scheduled') body.cron = cron.trim();
    if (schema) body.params = formParams(schema, values, {});
    run(async () => onCreated((await api('/api/v1/jobs', { method: 'POST', body })).job));
  };
  return (
    <Dialog title={t('New scheduled job')} onClose={onClose}>
      <form onSubmit={submit} class="form">
        <div class="field">
          <label for="nj-id">
            {t('Id')} <span class="hint">{t('lower-case letters, digits, dots, dashes and underscores, such as nightly-usage')}</span>
          </label>
          <input id="nj-id" name="id" required value={id} onInput={(e) => setId(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="nj-type">{t('Job type')}</label>
          <select id="nj-type" value={typeId} onChange={(e) => chooseType(e.currentTarget.value)}>
            {types.map((x) => (
              <option value={x.id} key={x.id}>
                {manifestText(x, 'title') || x.id}
              </option>
            ))}
          </select>
          {type && manifestText(type, 'description') && <p class="hint">{manifestText(type, 'description')}</p>}
        </div>
        <div class="field">
          <label for="nj-description">
            {t('Description')} <span class="hint">{t('optional')}</span>
          </label>
          <input id="nj-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </div>
        <SchemaFields key={typeId} schema={schema} values={values} onChange={setValues} idPrefix="nj" />
        <fieldset>
          <legend>{t('Planning')}</legend>
          {[
            ['automatic', t("Automatic: the job type's own schedule ({schedule})", { schedule: type?.default_schedule || t('none') })],
            ['scheduled', t('Scheduled: a cron expression')],
            ['disabled', t('Disabled: runs only when started by hand')],
          ].map(([v, label]) => (
            <div class="field check" key={v}>
              <input id={`nj-pl-${v}`} type="radio" name="nj-planning" value={v} checked={planning === v} onChange={() => setPlanning(v)} />
              <label for={`nj-pl-${v}`}>{label}</label>
            </div>
          ))}
          {planning === 'scheduled' && (
            <div class="field indent">
              <label for="nj-cron">
                {t('Cron expression')}{' '}
                <span class="hint">{t('minute hour day-of-month month day-of-week; several separated by ;')}</span>
              </label>
              <input id="nj-cron" class="mono" required value={cron} onInput={(e) => setCron(e.currentTarget.value)} />
            </div>
          )}
          <div class="field">
            <label for="nj-zone">{t('Time zone')}</label>
            <input id="nj-zone" value={zone} onInput={(e) => setZone(e.currentTarget.value)} />
          </div>
          <div class="field check">
            <input id="nj-enabled" type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
            <label for="nj-enabled">{t('Enabled')}</label>
          </div>
        </fieldset>
        <FormActions error={error} busy={busy} disabled={busy || !id.trim() || !typeId} onClose={onClose} submit={t('Create job')}
          working={t('Creating…')} />
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
  const [sort, setSort] = useState(sortFromAddress);
  const [selected, setSelected] = useState(new Map());
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState('');
  useEffect(() => {
    document.title = `${t('Jobs')} · Opskernel`;
  }, []);
  useEffect(() => {
    const t = setTimeout(() => (setText(typed), setOffset(0)), 250);
    return () => clearTimeout(t);
  }, [typed]);
  // The sort is kept in the address (no new history entry), so a link or a reload keeps it.
  useEffect(() => {
    const q = new URLSearchParams(location.search);
    if (sort.sort === 'id' && sort.order === 'asc') q.delete('sort'), q.delete('order');
    else q.set('sort', sort.sort), q.set('order', sort.order);
    const path = `${location.pathname}${q.toString() ? `?${q}` : ''}`;
    if (location.pathname + location.search !== path) history.replaceState(null, '', path);
  }, [sort.sort, sort.order]);
  const onSort = (next) => (setSort(next), setOffset(0));
  const filtered = statuses.length !== ALL.length;
  const [data, error, reload] = usePoll(
    () =>
      filtered && !statuses.length
        ? Promise.resolve({ total: 0, items: [] })
        : api(
            `/api/v1/jobs${query({
              status: filtered ? statuses.join(',') : '',
              text,
              region,
              tenant,
              sort: sort.sort,
              order: sort.order,
              offset,
              limit: PAGE,
            })}`,
          ),
    ctx.settings.poll_seconds,
    [statuses.join(','), text, region, tenant, sort.sort, sort.order, offset],
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
  const head = (by, label, className) => <SortHead by={by} label={label} sort={sort} onSort={onSort} className={className} />;
  return (
    <section aria-labelledby="jobs-title">
      <div class="page-head">
        <h1 id="jobs-title">{t('Scheduled jobs')}</h1>
        <div class="tools">
          <StatusToggles value={statuses} statuses={TOGGLES} onChange={(v) => (setStatuses(v), setOffset(0))} />
          <ChoiceFilter
            id="job-region"
            label={t('Region')}
            all={t('All regions')}
            choices={data?.regions || []}
            value={region}
            onChange={(v) => (setRegion(v), setOffset(0))}
          />
          <ChoiceFilter
            id="job-tenant"
            label={t('Tenant or scope')}
            all={t('All tenants')}
            choices={data?.scopes || []}
            value={tenant}
            onChange={(v) => (setTenant(v), setOffset(0))}
          />
          <TextFilter
            id="job-filter"
            label={t('Filter jobs by text')}
            placeholder={t('Filter by id, type or description')}
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
            {chosen.length > 1 ? t('Run now ({n})', { n: chosen.length }) : t('Run now')}
          </button>
          {ctx.can('jobs.write') && (
            <button type="button" onClick={() => setDialog({ kind: 'new' })}>
              {t('New job')}
            </button>
          )}
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
            {data ? t('Scheduled jobs, {n} in all', { n: data.total }) : t('Scheduled jobs, loading')}
          </caption>
          <thead>
            <tr>
              <th scope="col" class="narrow">
                <input
                  type="checkbox"
                  aria-label={t('Select every job on this page')}
                  checked={allOnPage}
                  onChange={() => {
                    const next = new Map(selected);
                    for (const j of items) allOnPage ? next.delete(j.id) : next.set(j.id, j);
                    setSelected(next);
                  }}
                />
              </th>
              {head(
                'status',
                <>
                  <span class="visually-hidden">{t('Last status')}</span>
                  <span aria-hidden="true">{t('Last')}</span>
                </>,
                'narrow',
              )}
              <th scope="col" class="narrow">
                {t('Log')}
              </th>
              {head('id', t('Job'))}
              {head('type', t('Type'))}
              {head('enabled', t('Enabled'))}
              {head('state', t('Status'))}
              {head('last_run', t('Last run'))}
              {head('duration', t("Last run's duration"), 'wrap')}
              {head('next_run', t('Next run'))}
              {head('description', t('Description'))}
              {head('owner', t('Owner'))}
              {head('scope', t('Tenant'))}
              {head('region', t('Region'))}
            </tr>
          </thead>
          <tbody>
            {items.map((j) => {
              const last = j.last_run;
              const st = last ? last.status : 'never';
              const unread = last && !read.has(last.id);
              const type = ctx.types.get(j.job_type);
              const title = typeTitle(ctx, j.job_type);
              return (
                <tr key={j.id} class={selected.has(j.id) ? 'selected' : ''}>
                  <td>
                    <input type="checkbox" aria-label={t('Select {id}', { id: j.id })} checked={selected.has(j.id)} onChange={() => toggle(j)} />
                  </td>
                  <td>
                    <RunStatusIcon status={st} />
                  </td>
                  <td>
                    {last ? (
                      <button
                        type="button"
                        class={`log-marker ${unread ? 'unread' : 'read'}`}
                        aria-label={
                          unread ? t('Unread log of run {run} of {job}', { run: last.id, job: j.id }) : t('Log of run {run} of {job}', { run: last.id, job: j.id })
                        }
                        title={unread ? t('Unread log: open it') : t('Open the log')}
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
                  <td title={[j.job_type, manifestText(type, 'description')].filter(Boolean).join(': ')} data-testid="job-type">
                    {title}
                  </td>
                  <td>{j.enabled ? t('Yes') : t('No')}</td>
                  <td title={t('Planning: {planning}', { planning: j.planning })}>{STATE_WORDS[j.state] ? tr(STATE_WORDS[j.state]) : j.state}</td>
                  <td>
                    {last ? (
                      <Link
                        href={`/administration/runs/${last.id}`}
                        title={`${runStatusLabel(st)}, ${time(last.finished_ms || last.created_ms)}`}
                      >
                        {shortTime(last.finished_ms || last.created_ms)}
                      </Link>
                    ) : (
                      t('never')
                    )}
                  </td>
                  <td data-testid="job-duration">{last && last.duration_ms ? duration(last.duration_ms) : '—'}</td>
                  <td title={time(j.next_run_ms)}>{j.enabled && j.planning !== 'disabled' ? shortTime(j.next_run_ms) : '—'}</td>
                  <td class="desc" title={j.description}>
                    {j.description}
                  </td>
                  <td title={j.owner ? '' : t("The job type's owner")}>{j.owner || type?.owner || '—'}</td>
                  <td>{j.scope}</td>
                  <td>{j.region || '—'}</td>
                </tr>
              );
            })}
            <EmptyRow show={data && !items.length} cols={14}>
              {t(
                'No scheduled jobs match. Change the filters; jobs are added as [job.ID] sections of the configuration or through the admin API.',
              )}
            </EmptyRow>
          </tbody>
        </table>
      </div>
      {data && data.total > PAGE && (
        <div class="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            {t('Previous')}
          </button>
          <span>{t('{from}–{to} of {total}', { from: offset + 1, to: Math.min(offset + PAGE, data.total), total: data.total })}</span>
          <button type="button" disabled={offset + PAGE >= data.total} onClick={() => setOffset(offset + PAGE)}>
            {t('Next')}
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
            else setNotice(t('Started runs {ids}.', { ids: ids.join(', ') }));
          }}
        />
      )}
      {dialog?.kind === 'new' && (
        <NewJobDialog onClose={() => setDialog(null)} onCreated={(job) => (setDialog(null), navigate(`/administration/jobs/${encodeURIComponent(job.id)}`))} />
      )}
      {dialog?.kind === 'log' && <LogDialog runId={dialog.runId} onClose={() => (setDialog(null), reload())} />}
    </section>
  );
}
