// Run history (/administration/runs): every run the caller may see, newest
// first, a page at a time (the API's cursors: Next for older runs, Previous
// for newer ones), filtered by the server by job, type, state, trigger and
// time range. The filters and the page are kept in the address, so a link
// gives the same view.
import { useEffect, useState } from 'preact/hooks';
import { api, query, readLog } from './api.js';
import { LogDialog, usePoll, useReadMarks } from './jobs.jsx';
import { RUN_STATUSES, RunStatusIcon, runStateText } from './run_states.jsx';
import { BulkRunActions } from './bulk_runs.jsx';
import { fromLocalInput, toLocalInput } from './format.js';
import { msg, t, tr } from './i18n.js';
import { Link, Message, duration, time, useSession, useSettled, useWindowEvents, zoneName } from './ui.jsx';

const LIMIT = 50;
// The address's filters, as the API names them.
const FILTERS = ['job_id', 'job_type', 'status', 'trigger', 'since_ms', 'until_ms'];

/** What started a run, in words. */
const TRIGGER_WORDS = {
  schedule: msg('Its schedule'),
  manual: msg('Run now'),
  retry: msg('A retry'),
  chain: msg('Another run (chained)'),
  recovery: msg('A recovery'),
};
export const triggerText = (trigger) => (TRIGGER_WORDS[trigger] ? tr(TRIGGER_WORDS[trigger]) : trigger);

/** The filters and the page cursor in the address. */
function fromAddress() {
  const q = new URLSearchParams(location.search);
  const v = {};
  for (const k of [...FILTERS, 'cursor']) v[k] = q.get(k) || '';
  return v;
}

/** Keeps `view` in the address (no new history entry for a filter). */
function toAddress(view, push) {
  const path = `${location.pathname}${query(view)}`;
  if (location.pathname + location.search !== path) history[push ? 'pushState' : 'replaceState'](null, '', path);
}

function Choice({ id, label, all, choices, value, onChange }) {
  return (
    <>
      <label class="visually-hidden" for={id}>
        {label}
      </label>
      <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">{all}</option>
        {choices.map(([v, words]) => (
          <option value={v}>{words}</option>
        ))}
      </select>
    </>
  );
}

function TimeBound({ id, label, value, onChange }) {
  return (
    <label class="time-bound" for={id}>
      {label}{' '}
      <input
        id={id}
        type="datetime-local"
        value={value ? toLocalInput(Number(value)) : ''}
        onChange={(e) => {
          const ms = fromLocalInput(e.currentTarget.value);
          onChange(Number.isNaN(ms) ? '' : String(ms));
        }}
      />
    </label>
  );
}

export function RunsPage() {
  const ctx = useSession();
  const [view, setView] = useState(fromAddress);
  const [job, setJob] = useState(view.job_id);
  const [log, setLog] = useState(0);
  const [selected, setSelected] = useState(new Set());
  const [notice, setNotice] = useState('');
  useEffect(() => {
    document.title = `${t('Run history')} · Opskernel`;
  }, []);
  // Back and forward in the browser show the view of that address.
  useWindowEvents(['popstate'], () => {
    const v = fromAddress();
    setView(v);
    setJob(v.job_id);
  }, []);
  // A filter changed: from the first page again.
  const filter = (k, value) => {
    const v = { ...view, [k]: value, cursor: '' };
    setView(v);
    setSelected(new Set());
    toAddress(v, false);
  };
  const settledJob = useSettled(job.trim(), 400);
  useEffect(() => {
    if (settledJob !== view.job_id) filter('job_id', settledJob);
  }, [settledJob]);
  const goTo = (cursor) => {
    const v = { ...view, cursor };
    setView(v);
    setSelected(new Set());
    toAddress(v, true);
  };
  const [data, error, reload] = usePoll(
    () => api(`/api/v1/runs${query({ ...view, limit: LIMIT })}`),
    ctx.settings.poll_seconds,
    [JSON.stringify(view)],
  );
  const runs = data?.items || [];
  const filtered = FILTERS.some((k) => view[k]);
  const zone = zoneName();
  return (
    <section aria-labelledby="runs-title">
      <div class="page-head">
        <h1 id="runs-title">{t('Run history')}</h1>
        <div class="tools" role="group" aria-label={t('Filter runs')}>
          <label class="visually-hidden" for="run-job">
            {t('Scheduled job (its id)')}
          </label>
          <input id="run-job" type="search" placeholder={t('Scheduled job id')} value={job} onInput={(e) => setJob(e.currentTarget.value)} />
          <Choice
            id="run-type"
            label={t('Job type')}
            all={t('Every type')}
            choices={[...ctx.types.keys()].sort().map((k) => [k, k])}
            value={view.job_type}
            onChange={(v) => filter('job_type', v)}
          />
          <Choice
            id="run-status"
            label={t('State')}
            all={t('Every state')}
            choices={[...RUN_STATUSES.map((s) => [s.id, s.label]), ['terminated', t('Terminated, for any cause')]]}
            value={view.status}
            onChange={(v) => filter('status', v)}
          />
          <Choice
            id="run-trigger"
            label={t('Started by what')}
            all={t('Every trigger')}
            choices={Object.keys(TRIGGER_WORDS).map((k) => [k, triggerText(k)])}
            value={view.trigger}
            onChange={(v) => filter('trigger', v)}
          />
          <TimeBound id="run-since" label={t('From ({zone})', { zone })} value={view.since_ms} onChange={(v) => filter('since_ms', v)} />
          <TimeBound id="run-until" label={t('Until ({zone})', { zone })} value={view.until_ms} onChange={(v) => filter('until_ms', v)} />
          {filtered && (
            <button
              type="button"
              onClick={() => {
                setJob('');
                const v = { cursor: '' };
                for (const k of FILTERS) v[k] = '';
                setView(v);
                toAddress(v, false);
              }}
            >
              {t('Clear filters')}
            </button>
          )}
        </div>
      </div>
      <Message error={error} notice={notice} />
      <BulkRunActions
        runs={runs}
        selected={selected}
        onClear={() => setSelected(new Set())}
        onDone={(m) => {
          setSelected(new Set());
          setNotice(m);
          reload();
        }}
      />
      <RunTable
        runs={runs}
        selected={selected}
        onSelect={(ids, on) => setSelected((old) => new Set(on ? [...old, ...ids] : [...old].filter((x) => !ids.includes(x))))}
        caption={t('Runs, newest first, {n} a page', { n: LIMIT })}
        showJob
        onLog={setLog}
        empty={
          data
            ? view.cursor
              ? t('No more runs match. Previous shows newer ones.')
              : filtered
                ? t('No run matches. Change the filters; Run now on a job starts one.')
                : t('No run yet. Run now on a job starts one.')
            : ''
        }
      />
      <nav class="pager" id="pager" aria-label={t('Pages of runs')}>
        <button type="button" disabled={!view.cursor} onClick={() => goTo('')}>
          {t('Newest')}
        </button>
        <button type="button" disabled={!data?.prev_cursor} onClick={() => goTo(data.prev_cursor)}>
          {t('Previous')}
        </button>
        <button type="button" disabled={!data?.next_cursor} onClick={() => goTo(data.next_cursor)}>
          {t('Next')}
        </button>
      </nav>
      {log > 0 && <LogDialog runId={log} onClose={() => setLog(0)} />}
    </section>
  );
}

/**
 * Runs as a table: status (with slow and stale flags), run, log marker,
 * [job and type,] trigger, start, duration, exit code, who, tenant, result.
 */
export function RunTable({ runs, caption, showJob, onLog, empty, selected, onSelect }) {
  const ctx = useSession();
  useReadMarks();
  const read = readLog.all(ctx.me.user_id);
  const columns = [t('Status'), t('Run'), t('Log'), ...(showJob ? [t('Job'), t('Type')] : []), t('Trigger'), t('Started'),
                   t('Duration'), t('Exit code'), t('Started by'), t('Tenant'), t('Result')];
  return (
    <div class="table-wrap">
      <table class="runs">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {onSelect && (
              <th scope="col">
                <input
                  type="checkbox"
                  aria-label={t('Select every run shown')}
                  checked={runs.length > 0 && runs.every((r) => selected.has(r.id))}
                  onChange={(e) => onSelect(runs.map((r) => r.id), e.currentTarget.checked)}
                />
              </th>
            )}
            {columns.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={r.id} class={selected?.has(r.id) ? 'selected' : ''}>
              {onSelect && (
                <td>
                  <input
                    type="checkbox"
                    aria-label={t('Select run {id}', { id: r.id })}
                    checked={selected.has(r.id)}
                    onChange={(e) => onSelect([r.id], e.currentTarget.checked)}
                  />
                </td>
              )}
              <td>
                <RunStatusIcon status={r.status} />
                {r.over_target && (
                  <span class="flag" title={t('Ran longer than its target duration')}>
                    {t('slow')}
                  </span>
                )}
                {r.stale && <span class="flag">{t('stale')}</span>}
              </td>
              <td>
                <Link href={`/administration/runs/${r.id}`}>#{r.id}</Link>
              </td>
              <td>
                <button
                  type="button"
                  class={`log-marker ${read.has(r.id) ? 'read' : 'unread'}`}
                  aria-label={read.has(r.id) ? t('Log of run {id}', { id: r.id }) : t('Unread log of run {id}', { id: r.id })}
                  onClick={() => onLog(r.id)}
                >
                  ☰
                </button>
              </td>
              {showJob && (
                <td>
                  {r.scheduled_job_id ? (
                    <Link href={`/administration/jobs/${encodeURIComponent(r.scheduled_job_id)}`}>{r.scheduled_job_id}</Link>
                  ) : (
                    <span class="hint">{t('ad hoc')}</span>
                  )}
                </td>
              )}
              {showJob && <td>{r.job_type}</td>}
              <td>{triggerText(r.trigger)}</td>
              <td>{time(r.started_ms || r.created_ms)}</td>
              <td>{r.started_ms ? duration(r.duration_ms) : '—'}</td>
              <td>{r.phase === 'COMPLETED' ? r.exit_code : '—'}</td>
              <td>{r.triggered_by || '—'}</td>
              <td>{r.target_tenant || '—'}</td>
              <td class="desc" title={r.summary}>
                {r.termination ? runStateText(r) : r.summary || runStateText(r)}
              </td>
            </tr>
          ))}
          {empty && !runs.length && (
            <tr>
              <td colSpan={columns.length + (onSelect ? 1 : 0)} class="empty">
                {empty}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
