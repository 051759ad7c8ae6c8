// The store's schema migrations (/administration/migrations), over the
// migration-status plugin's API (/api/v1/migrations): the kernel's and each
// plugin's version, what is pending, a failed migration with the
// database's error (its tables were left as they were), and the last
// migration run; filtered by state. An owner's row opens its applied
// migrations with when and how long each took, and every attempt. Read
// only. The menu shows the page to roles with migrations.read.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { msg, t, tr } from './i18n.js';
import { CloseActions, Dialog, EmptyRow, Message, NotAllowed, Table, number, shortTime, time, useSession } from './ui.jsx';
import { useFeatureNames } from './features.js';

const BASE = '/api/v1/migrations';
/** The permission the migrations' routes name. */
import { MIGRATIONS_READ as READ } from './shell.jsx';
export { READ };

const STATES = {
  current: msg('Current'),
  pending: msg('Pending'),
  failed: msg('Failed'),
  unknown: msg('Not declared here'),
};

/** A duration in ms as "0.42 ms", "12 ms", "3.1 s"; "not recorded" for null. */
const took = (ms) => {
  if (ms === null || ms === undefined) return t('not recorded');
  if (ms < 10) return t('{n} ms', { n: number(ms, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) });
  if (ms < 1000) return t('{n} ms', { n: number(Math.round(ms)) });
  return t('{n} s', { n: number(ms / 1000, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
};

const versionText = (o) =>
  o.latest === null || o.latest === undefined || o.latest === o.version ? `${o.version}` : t('{version} of {latest}', { version: o.version, latest: o.latest });
/** A state's words. */
const stateText = (state) => (STATES[state] ? tr(STATES[state]) : state);

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
    <Dialog title={t('Migrations of {owner}', { owner })} onClose={onClose} wide>
      <Message error={error} />
      {data && (
        <div data-owner-detail={owner}>
          <p>
            {data.declared_ms
              ? t('Version {version}, {state}; declared by this kernel {time}.', {
                  version: versionText(data),
                  state: stateText(data.state).toLowerCase(),
                  time: shortTime(data.declared_ms),
                })
              : t('Version {version}, {state}; nothing declared by this kernel.', { version: versionText(data), state: stateText(data.state).toLowerCase() })}
          </p>
          {data.failure && (
            <p class="field-error" data-testid="failure">
              {t('Version {version} ({name}) failed {time} and was rolled back: {error}', {
                version: data.failure.version,
                name: data.failure.name,
                time: time(data.failure.started_ms),
                error: data.failure.error,
              })}
            </p>
          )}
          <Table name="applied" caption={t('Applied migrations of {owner}', { owner })} columns={[t('Version'), t('Name'), t('Applied'), t('Took')]}>
            {data.applied.map((m) => (
              <tr key={m.version} data-migration-version={m.version}>
                <td>{m.version}</td>
                <td>{m.name}</td>
                <td title={time(m.applied_ms)}>{shortTime(m.applied_ms)}</td>
                <td>{took(m.duration_ms)}</td>
              </tr>
            ))}
            <EmptyRow show={!data.applied.length} cols={4}>
              {t('Nothing applied.')}
            </EmptyRow>
          </Table>
          {data.pending.length > 0 && (
            <Table name="pending" caption={t('Pending migrations of {owner}', { owner })} columns={[t('Version'), t('Name')]}>
              {data.pending.map((m) => (
                <tr key={m.version} data-pending-version={m.version}>
                  <td>{m.version}</td>
                  <td>{m.name}</td>
                </tr>
              ))}
            </Table>
          )}
          <Table name="attempts" caption={t('Attempts to migrate {owner}, newest first', { owner })} columns={[t('Version'), t('Started'), t('Took'), t('Outcome')]}>
            {data.attempts.map((a, i) => (
              <tr key={i} data-attempt-outcome={a.outcome}>
                <td>
                  {a.version} <span class="hint">{a.name}</span>
                </td>
                <td title={time(a.started_ms)}>{shortTime(a.started_ms)}</td>
                <td>{took(a.duration_ms)}</td>
                <td>{a.outcome === 'failed' ? t('failed: {error}', { error: a.error }) : t('applied')}</td>
              </tr>
            ))}
            <EmptyRow show={!data.attempts.length} cols={4}>
              {t('No attempt recorded.')}
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
  const name = useFeatureNames(ctx)('migration-status', t('Migrations'));
  const [state, setState] = useState('');
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(null);
  useEffect(() => {
    document.title = `${name} · Opskernel`;
  }, [name]);
  useEffect(() => {
    if (!ctx.can(READ)) return;
    let live = true;
    api(`${BASE}${query({ state })}`)
      .then((d) => live && (setData(d), setError(null)))
      .catch((e) => live && setError(e));
    return () => (live = false);
  }, [state]);
  if (!ctx.can(READ)) return <NotAllowed title={t('Migrations')} role={ctx.me.role} what={t('see the schema migrations')} />;
  const rows = data?.owners || [];
  const last = data?.last_run;
  const counts = data?.counts || {};
  return (
    <section aria-labelledby="mig-title">
      <div class="page-head">
        <div>
          <h1 id="mig-title">{name}</h1>
          <p class="sub">
            {t("The store's schema ({dialect}): the kernel's and each plugin's migrations. A migration runs in one transaction; one that fails leaves its tables as they were.", {
              dialect: data?.dialect || '…',
            })}
          </p>
        </div>
      </div>
      <p data-testid="last-run">
        {last
          ? t('Last migration run: {owner} version {version} ({name}) {outcome} {time}, took {took}.', {
              owner: last.owner,
              version: last.version,
              name: last.name,
              outcome: last.outcome === 'failed' ? t('failed') : t('applied'),
              time: time(last.started_ms),
              took: took(last.duration_ms),
            })
          : t('No migration run recorded.')}{' '}
        {data &&
          t('{current} current, {pending} pending, {failed} failed, {unknown} not declared here.', {
            current: number(counts.current || 0),
            pending: number(counts.pending || 0),
            failed: number(counts.failed || 0),
            unknown: number(counts.unknown || 0),
          })}
      </p>
      <div class="tools filters">
        <label class="visually-hidden" for="mig-filter-state">
          {t('State')}
        </label>
        <select id="mig-filter-state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="">{t('Every state')}</option>
          <option value="failed">{t('Failed')}</option>
          <option value="pending">{t('Pending')}</option>
          <option value="current">{t('Current')}</option>
          <option value="unknown">{t('Not declared here')}</option>
        </select>
      </div>
      <Message error={error} />
      <Table
        name="migrations"
        caption={data ? t('Schema migrations by owner, the kernel first, {n} shown', { n: number(rows.length) }) : t('Schema migrations by owner, the kernel first, loading')}
        columns={[t('Owner'), t('State'), t('Version'), t('Pending'), t('Last applied'), t('Failure')]}
      >
        {rows.map((o) => (
          <tr key={o.owner} data-owner={o.owner} data-owner-state={o.state}>
            <td>
              <button type="button" aria-label={t('Migrations of {owner}', { owner: o.owner })} onClick={() => setOpen(o.owner)}>
                {o.owner}
              </button>
              <div class="hint">{o.kind}</div>
            </td>
            <td>
              <span class={`marker ${o.state === 'failed' ? 'marker-escalated' : o.state === 'pending' ? 'marker-flapping' : ''}`}>{stateText(o.state)}</span>
            </td>
            <td>{versionText(o)}</td>
            <td>{o.pending.length ? o.pending.map((m) => `${m.version} (${m.name})`).join(', ') : '—'}</td>
            <td title={o.last_applied_ms ? time(o.last_applied_ms) : ''}>{o.last_applied_ms ? shortTime(o.last_applied_ms) : '—'}</td>
            <td>
              {o.failure ? (
                <div class="desc" title={o.failure.error}>
                  {t('Version {version}: {error}', { version: o.failure.version, error: o.failure.error })}
                </div>
              ) : (
                '—'
              )}
            </td>
          </tr>
        ))}
        <EmptyRow show={data && !rows.length} cols={6}>
          {t('No owner matches. Choose Every state.')}
        </EmptyRow>
      </Table>
      {open && <OwnerDialog owner={open} onClose={() => setOpen(null)} />}
    </section>
  );
}
