// Run history (/administration/runs): the newest runs of every job and
// ad-hoc run the caller may see, filtered by status and text.
import { useEffect, useState } from 'preact/hooks';
import { api, query, readLog } from './api.js';
import { LogDialog, usePoll, useReadMarks } from './jobs.jsx';
import { RUN_STATUSES, RunStatusIcon, runStateText } from './run_states.jsx';
import { BulkRunActions } from './bulk_runs.jsx';
import {
  Link,
  Message,
  StatusIcon,
  StatusToggles,
  STATUSES,
  TextFilter,
  duration,
  statusLabel,
  time,
  useSession,
} from './ui.jsx';

const LIMIT = 200;

export function RunsPage() {
  const ctx = useSession();
  const [statuses, setStatuses] = useState(RUN_STATUSES.map((s) => s.id));
  const [text, setText] = useState('');
  const [log, setLog] = useState(0);
  const [selected, setSelected] = useState(new Set());
  const [notice, setNotice] = useState('');
  useEffect(() => {
    document.title = 'Run history · Opskernel';
  }, []);
  const [data, error, reload] = usePoll(() => api(`/api/v1/runs${query({ limit: LIMIT })}`), ctx.settings.poll_seconds, []);
  const needle = text.trim().toLowerCase();
  const runs = (data?.items || []).filter(
    (r) =>
      statuses.includes(r.status) &&
      (!needle ||
        [r.scheduled_job_id, r.job_type, r.triggered_by, r.target_tenant, r.reason, r.summary, String(r.id)].some((v) =>
          (v || '').toLowerCase().includes(needle),
        )),
  );
  return (
    <section aria-labelledby="runs-title">
      <div class="page-head">
        <h1 id="runs-title">Run history</h1>
        <div class="tools">
          <StatusToggles value={statuses} onChange={setStatuses} statuses={RUN_STATUSES} label="Filter runs by status" />
          <TextFilter
            id="run-filter"
            label="Filter runs by text"
            placeholder="Filter by job, type, user, tenant"
            value={text}
            onInput={setText}
          />
        </div>
      </div>
      <Message error={error} notice={notice} />
      <BulkRunActions
        runs={runs}
        selected={selected}
        onClear={() => setSelected(new Set())}
        onDone={(msg) => {
          setSelected(new Set());
          setNotice(msg);
          reload();
        }}
      />
      <RunTable
        runs={runs}
        selected={selected}
        onSelect={(ids, on) => setSelected((old) => new Set(on ? [...old, ...ids] : [...old].filter((x) => !ids.includes(x))))}
        caption={`The newest ${LIMIT} runs`}
        showJob
        onLog={setLog}
        empty={data ? 'No runs match. Change the filters; Run now on a job starts one.' : ''} />
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
  const columns = ['Status', 'Run', 'Log', ...(showJob ? ['Job', 'Type'] : []), 'Trigger', 'Started', 'Duration', 'Exit code',
                   'Started by', 'Tenant', 'Result'];
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
                  aria-label="Select every run shown"
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
                    aria-label={`Select run ${r.id}`}
                    checked={selected.has(r.id)}
                    onChange={(e) => onSelect([r.id], e.currentTarget.checked)}
                  />
                </td>
              )}
              <td>
                <RunStatusIcon status={r.status} />
                {r.over_target && (
                  <span class="flag" title="Ran longer than its target duration">
                    slow
                  </span>
                )}
                {r.stale && <span class="flag">stale</span>}
              </td>
              <td>
                <Link href={`/administration/runs/${r.id}`}>#{r.id}</Link>
              </td>
              <td>
                <button
                  type="button"
                  class={`log-marker ${read.has(r.id) ? 'read' : 'unread'}`}
                  aria-label={`${read.has(r.id) ? 'Log' : 'Unread log'} of run ${r.id}`}
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
                    <span class="hint">ad hoc</span>
                  )}
                </td>
              )}
              {showJob && <td>{r.job_type}</td>}
              <td>{r.trigger}</td>
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
