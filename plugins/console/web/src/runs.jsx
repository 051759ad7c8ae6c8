// Run history (/administration/runs): the newest runs of every job and
// ad-hoc run the caller may see, filtered by status and text.
import { useEffect, useState } from 'preact/hooks';
import { api, query, readLog } from './api.js';
import { LogDialog, usePoll, useReadMarks } from './jobs.jsx';
import { Link, Message, StatusIcon, StatusToggles, STATUSES, duration, time, useSession } from './ui.jsx';

const LIMIT = 200;

export function RunsPage() {
  const ctx = useSession();
  useReadMarks();
  const [statuses, setStatuses] = useState(STATUSES.map((s) => s.id));
  const [text, setText] = useState('');
  const [log, setLog] = useState(0);
  useEffect(() => {
    document.title = 'Run history · Opskernel';
  }, []);
  const [data, error] = usePoll(() => api(`/api/v1/runs${query({ limit: LIMIT })}`), ctx.settings.poll_seconds, []);
  const needle = text.trim().toLowerCase();
  const runs = (data?.items || []).filter(
    (r) =>
      statuses.includes(r.status) &&
      (!needle ||
        [r.scheduled_job_id, r.job_type, r.triggered_by, r.target_tenant, r.reason, r.summary, String(r.id)].some((v) =>
          (v || '').toLowerCase().includes(needle),
        )),
  );
  const read = readLog.all(ctx.me.user_id);
  return (
    <section aria-labelledby="runs-title">
      <div class="page-head">
        <h1 id="runs-title">Run history</h1>
        <div class="tools">
          <StatusToggles value={statuses} onChange={setStatuses} label="Filter runs by status" />
          <label class="visually-hidden" for="run-filter">
            Filter runs by text
          </label>
          <input
            id="run-filter"
            type="search"
            placeholder="Filter by job, type, user, tenant"
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
          />
        </div>
      </div>
      <Message error={error} />
      <div class="table-wrap">
        <table class="runs">
          <caption class="visually-hidden">The newest {LIMIT} runs</caption>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Run</th>
              <th scope="col">Log</th>
              <th scope="col">Job</th>
              <th scope="col">Type</th>
              <th scope="col">Trigger</th>
              <th scope="col">Started</th>
              <th scope="col">Duration</th>
              <th scope="col">Exit code</th>
              <th scope="col">Started by</th>
              <th scope="col">Tenant</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.id}>
                <td>
                  <StatusIcon status={r.status} />
                  {r.over_target && <span class="flag">slow</span>}
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
                    onClick={() => setLog(r.id)}
                  >
                    ☰
                  </button>
                </td>
                <td>
                  {r.scheduled_job_id ? (
                    <Link href={`/administration/jobs/${encodeURIComponent(r.scheduled_job_id)}`}>{r.scheduled_job_id}</Link>
                  ) : (
                    <span class="hint">ad hoc</span>
                  )}
                </td>
                <td>{r.job_type}</td>
                <td>{r.trigger}</td>
                <td>{time(r.started_ms || r.created_ms)}</td>
                <td>{r.started_ms ? duration(r.duration_ms) : '—'}</td>
                <td>{r.phase === 'COMPLETED' ? r.exit_code : '—'}</td>
                <td>{r.triggered_by || '—'}</td>
                <td>{r.target_tenant || '—'}</td>
                <td class="desc" title={r.summary}>
                  {r.summary}
                </td>
              </tr>
            ))}
            {data && !runs.length && (
              <tr>
                <td colSpan={12} class="empty">
                  No runs match.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {log > 0 && <LogDialog runId={log} onClose={() => setLog(0)} />}
    </section>
  );
}
