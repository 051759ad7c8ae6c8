// The store's schema migrations (/administration/migrations), over the
// migration-status plugin's API (/api/v1/migrations): the kernel's and each
// plugin's version, what is pending, a failed migration with the
// database's error (its tables were left as they were), and the last
// migration run; filtered by state. An owner's row opens its applied
// migrations with when and how long each took, and every attempt. Read
// only. The menu shows the page to roles with migrations.read.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { CloseActions, Dialog, EmptyRow, Message, NotAllowed, Table, shortTime, time, useSession } from './ui.jsx';

const BASE = '/api/v1/migrations';
/** The permission the migrations' routes name. */
export const READ = 'migrations.read';

const STATES = {
  current: 'Current',
  pending: 'Pending',
  failed: 'Failed',
  unknown: 'Not declared here',
};

/** A duration in ms as "0.42 ms", "12 ms", "3.1 s"; "not recorded" for null. */
const took = (ms) => {
  if (ms === null || ms === undefined) return 'not recorded';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
};

const versionText = (o) => (o.latest === null || o.latest === undefined || o.latest === o.version ? `${o.version}` : `${o.version} of ${o.latest}`);

/** One owner's migrations: applied (when, how long), pending, attempts. */
function OwnerDialog({ owner, onClose }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api(`${BASE}/${encodeURIComponent(owner)}`)
      .then((d) => setData(d.migrations))
      .catch(setError);
  }, [owner]);
  return (
    <Dialog title={`Migrations of ${owner}`} onClose={onClose} wide>
      <Message error={error} />
      {data && (
        <div data-owner-detail={owner}>
          <p>
            Version {versionText(data)}, {STATES[data.state].toLowerCase()}
            {data.declared_ms ? `; declared by this kernel ${shortTime(data.declared_ms)}` : '; nothing declared by this kernel'}.
          </p>
          {data.failure && (
            <p class="field-error" data-testid="failure">
              Version {data.failure.version} ({data.failure.name}) failed {time(data.failure.started_ms)} and was rolled back: {data.failure.error}
            </p>
          )}
          <Table name="applied" caption={`Applied migrations of ${owner}`} columns={['Version', 'Name', 'Applied', 'Took']}>
            {data.applied.map((m) => (
              <tr key={m.version} data-migration-version={m.version}>
                <td>{m.version}</td>
                <td>{m.name}</td>
                <td title={time(m.applied_ms)}>{shortTime(m.applied_ms)}</td>
                <td>{took(m.duration_ms)}</td>
              </tr>
            ))}
            <EmptyRow show={!data.applied.length} cols={4}>
              Nothing applied.
            </EmptyRow>
          </Table>
          {data.pending.length > 0 && (
            <Table name="pending" caption={`Pending migrations of ${owner}`} columns={['Version', 'Name']}>
              {data.pending.map((m) => (
                <tr key={m.version} data-pending-version={m.version}>
                  <td>{m.version}</td>
                  <td>{m.name}</td>
                </tr>
              ))}
            </Table>
          )}
          <Table name="attempts" caption={`Attempts to migrate ${owner}, newest first`} columns={['Version', 'Started', 'Took', 'Outcome']}>
            {data.attempts.map((a, i) => (
              <tr key={i} data-attempt-outcome={a.outcome}>
                <td>
                  {a.version} <span class="hint">{a.name}</span>
                </td>
                <td title={time(a.started_ms)}>{shortTime(a.started_ms)}</td>
                <td>{took(a.duration_ms)}</td>
                <td>{a.outcome === 'failed' ? `failed: ${a.error}` : 'applied'}</td>
              </tr>
            ))}
            <EmptyRow show={!data.attempts.length} cols={4}>
              No attempt recorded.
            </EmptyRow>
          </Table>
        </div>
      )}
      <CloseActions onClose={onClose} />
    </Dialog>
  );
}

export function MigrationsPage() {
  const ctx = useSession();
  const [state, setState] = useState('');
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(null);
  useEffect(() => {
    document.title = 'Migrations · Opskernel';
  }, []);
  useEffect(() => {
    if (!ctx.can(READ)) return;
    let live = true;
    api(`${BASE}${query({ state })}`)
      .then((d) => live && (setData(d), setError(null)))
      .catch((e) => live && setError(e));
    return () => (live = false);
  }, [state]);
  if (!ctx.can(READ)) return <NotAllowed title="Migrations" role={ctx.me.role} what="see the schema migrations" />;
  const rows = data?.owners || [];
  const last = data?.last_run;
  const counts = data?.counts || {};
  return (
    <section aria-labelledby="mig-title">
      <div class="page-head">
        <div>
          <h1 id="mig-title">Migrations</h1>
          <p class="sub">
            The store's schema ({data?.dialect || '…'}): the kernel's and each plugin's migrations. A migration runs in one transaction; one that fails leaves its tables as they
            were.
          </p>
        </div>
      </div>
      <p data-testid="last-run">
        {last
          ? `Last migration run: ${last.owner} version ${last.version} (${last.name}) ${last.outcome} ${time(last.started_ms)}, took ${took(last.duration_ms)}.`
          : 'No migration run recorded.'}{' '}
        {data && `${counts.current || 0} current, ${counts.pending || 0} pending, ${counts.failed || 0} failed, ${counts.unknown || 0} not declared here.`}
      </p>
      <div class="tools filters">
        <label class="visually-hidden" for="mig-filter-state">
          State
        </label>
        <select id="mig-filter-state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="">Every state</option>
          <option value="failed">Failed</option>
          <option value="pending">Pending</option>
          <option value="current">Current</option>
          <option value="unknown">Not declared here</option>
        </select>
      </div>
      <Message error={error} />
      <Table
        name="migrations"
        caption={`Schema migrations by owner, the kernel first, ${data ? `${rows.length} shown` : 'loading'}`}
        columns={['Owner', 'State', 'Version', 'Pending', 'Last applied', 'Failure']}
      >
        {rows.map((o) => (
          <tr key={o.owner} data-owner={o.owner} data-owner-state={o.state}>
            <td>
              <button type="button" aria-label={`Migrations of ${o.owner}`} onClick={() => setOpen(o.owner)}>
                {o.owner}
              </button>
              <div class="hint">{o.kind}</div>
            </td>
            <td>
              <span class={`marker ${o.state === 'failed' ? 'marker-escalated' : o.state === 'pending' ? 'marker-flapping' : ''}`}>{STATES[o.state] || o.state}</span>
            </td>
            <td>{versionText(o)}</td>
            <td>{o.pending.length ? o.pending.map((m) => `${m.version} (${m.name})`).join(', ') : '—'}</td>
            <td title={o.last_applied_ms ? time(o.last_applied_ms) : ''}>{o.last_applied_ms ? shortTime(o.last_applied_ms) : '—'}</td>
            <td>
              {o.failure ? (
                <div class="desc" title={o.failure.error}>
                  Version {o.failure.version}: {o.failure.error}
                </div>
              ) : (
                '—'
              )}
            </td>
          </tr>
        ))}
        <EmptyRow show={data && !rows.length} cols={6}>
          No owner matches.
        </EmptyRow>
      </Table>
      {open && <OwnerDialog owner={open} onClose={() => setOpen(null)} />}
    </section>
  );
}
