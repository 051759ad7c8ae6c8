// The tenants' maintenance windows (/administration/maintenance), over the
// maintenance-mode plugin's API (/api/v1/maintenance): every window, ended
// ones included, with its tenant, mode, banner, start, end, state, who set
// it and why, filtered by state and tenant; for roles with
// maintenance.manage, put a tenant into read-only or offline maintenance now
// or for a scheduled window with a required reason, and end a window early
// (or call one off) with a reason. The menu shows the page to roles with
// maintenance.read. MaintenanceBanner (shell.jsx), in the console's header, shows a
// tenant's users the banner of their tenant's maintenance.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import './maintenance.css';
import { zone } from './alerts.jsx';
import { msg, t, tr } from './i18n.js';
import { Dialog, EmptyRow, FormActions, HiddenHead, Message, NotAllowed, Table, shortTime, time, useAction, useSession } from './ui.jsx';
import { useFeatureNames } from './features.js';

const BASE = '/api/v1/maintenance';
/** The permissions the windows' routes name. */
import { MAINTENANCE_READ as READ } from './shell.jsx';
export { READ };
export const MANAGE = 'maintenance.manage';

const MODES = () => ({ 'read-only': t('Read-only: writes refused'), offline: t('Offline: every request refused') });
/** A window's mode and state as words (the API's ids shown as they are if unknown). */
const MODE_WORDS = { 'read-only': msg('read-only'), offline: msg('offline') };
const STATE_WORDS = { active: msg('active'), scheduled: msg('scheduled'), completed: msg('completed'), ended: msg('ended') };
const wordOf = (words, id) => (words[id] ? tr(words[id]) : id);

/** A datetime-local input's value ("2026-01-01T14:00") as ms, or null. */
const fromLocal = (v) => (v ? new Date(v).getTime() : null);

/** Put a tenant into maintenance: tenant, mode, banner, start, end, reason. */
function CreateDialog({ maxBanner, onClose, onDone }) {
  const [f, setF] = useState({ tenant: '', mode: 'read-only', banner: '', starts: '', ends: '', reason: '' });
  const { busy, error, run } = useAction();
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const submit = (e) => {
    e.preventDefault();
    const body = { tenant: f.tenant.trim(), mode: f.mode, banner: f.banner.trim(), reason: f.reason.trim() };
    if (fromLocal(f.starts) !== null) body.starts_ms = fromLocal(f.starts);
    if (fromLocal(f.ends) !== null) body.ends_ms = fromLocal(f.ends);
    run(async () => {
      const w = (await api(BASE, { method: 'POST', body })).window;
      const when = w.state === 'scheduled' ? t('from {time}', { time: time(w.starts_ms) }) : t('now');
      const until = w.ends_ms ? t('until {time}', { time: time(w.ends_ms) }) : '';
      onDone(t('{tenant}: {mode} {when}{until}.', { tenant: w.tenant, mode: wordOf(MODE_WORDS, w.mode), when, until: until && ` ${until}` }));
    });
  };
  return (
    <Dialog title={t('Put a tenant into maintenance')} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <p>{t("Its users' requests are refused while the window lasts (PlatformAdministrators excepted), and its scheduled runs are skipped and recorded.")}</p>
        <div class="field">
          <label for="mnt-tenant">{t('Tenant ({example})', { example: 'tenant:acme' })}</label>
          <input id="mnt-tenant" spellcheck={false} value={f.tenant} onInput={(e) => set('tenant')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="mnt-mode">{t('Mode')}</label>
          <select id="mnt-mode" value={f.mode} onChange={(e) => set('mode')(e.currentTarget.value)}>
            {Object.entries(MODES()).map(([v, text]) => (
              <option value={v}>{text}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="mnt-banner">{t('Banner its users see (at most {n} bytes)', { n: maxBanner })}</label>
          <textarea id="mnt-banner" rows={2} value={f.banner} onInput={(e) => set('banner')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="mnt-starts">{t('Starts (empty: now; in {zone})', { zone: zone() })}</label>
          <input id="mnt-starts" type="datetime-local" value={f.starts} onInput={(e) => set('starts')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="mnt-ends">{t('Ends (empty: until ended by hand)')}</label>
          <input id="mnt-ends" type="datetime-local" value={f.ends} onInput={(e) => set('ends')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="mnt-reason">{t('Reason (required; kept in the audit trail)')}</label>
          <textarea id="mnt-reason" rows={2} value={f.reason} onInput={(e) => set('reason')(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} disabled={busy || !f.reason.trim()} onClose={onClose} submit={t('Start maintenance')} />
      </form>
    </Dialog>
  );
}

/** End a window early (or call off one not begun), with a reason. */
function EndDialog({ w, onClose, onDone }) {
  const [reason, setReason] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      await api(`${BASE}/${encodeURIComponent(w.id)}${query({ reason: reason.trim() })}`, { method: 'DELETE' });
      onDone(t('The maintenance of {tenant} has ended.', { tenant: w.tenant }));
    });
  };
  return (
    <Dialog title={t('End the maintenance of {tenant}', { tenant: w.tenant })} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>{w.state === 'scheduled' ? t('The window is called off before it begins.') : t('Its users are served again at once.')}</p>
        <div class="field">
          <label for="mnt-end-reason">{t('Reason (required; kept in the audit trail)')}</label>
          <textarea id="mnt-end-reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} disabled={busy || !reason.trim()} onClose={onClose} submit={t('End maintenance')} danger />
      </form>
    </Dialog>
  );
}

export function MaintenancePage() {
  const ctx = useSession();
  const name = useFeatureNames(ctx)('maintenance-mode', t('Maintenance'));
  const manage = ctx.can(MANAGE);
  const [filters, setFilters] = useState({ state: 'live', tenant: '' });
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const [dialog, setDialog] = useState(null);
  const [bump, setBump] = useState(0);
  useEffect(() => {
    document.title = `${name} · Opskernel`;
  }, [name]);
  useEffect(() => {
    if (!ctx.can(READ)) return;
    let live = true;
    api(`${BASE}${query({ ...filters, tenant: filters.tenant.trim() })}`)
      .then((d) => live && (setData(d), setError(null)))
      .catch((e) => live && setError(e));
    return () => (live = false);
  }, [filters, bump]);
  if (!ctx.can(READ)) return <NotAllowed title={t('Maintenance')} role={ctx.me.role} what={t("see the tenants' maintenance windows")} />;
  const rows = data?.windows || [];
  const done = (what) => {
    setDialog(null);
    setNotice(what);
    setBump(bump + 1);
  };
  const filter = (k) => (e) => setFilters({ ...filters, [k]: e.currentTarget.value });
  return (
    <section aria-labelledby="mnt-title">
      <div class="page-head">
        <div>
          <h1 id="mnt-title">{name}</h1>
          <p class="sub">{t('Tenants in read-only or offline maintenance, now or scheduled; each window begins and ends by itself. Times in {zone}.', { zone: zone() })}</p>
        </div>
        {manage && (
          <div class="tools">
            <button type="button" class="primary" onClick={() => (setNotice(''), setDialog({ kind: 'create' }))}>
              {t('Start maintenance')}
            </button>
          </div>
        )}
      </div>
      <div class="tools filters">
        <label class="visually-hidden" for="mnt-filter-state">
          {t('State')}
        </label>
        <select id="mnt-filter-state" value={filters.state} onChange={filter('state')}>
          <option value="live">{t('Active or scheduled')}</option>
          <option value="active">{t('Active')}</option>
          <option value="scheduled">{t('Scheduled')}</option>
          <option value="completed">{t('Completed')}</option>
          <option value="ended">{t('Ended early')}</option>
          <option value="">{t('Every state')}</option>
        </select>
        <label class="visually-hidden" for="mnt-filter-tenant">
          {t('Tenant')}
        </label>
        <input id="mnt-filter-tenant" placeholder={t('Tenant ({example})', { example: 'tenant:acme' })} spellcheck={false} value={filters.tenant} onChange={filter('tenant')} />
      </div>
      <Message error={error} notice={notice} />
      <Table
        name="maintenance"
        caption={data ? t('Maintenance windows, latest start first, {n} shown', { n: rows.length }) : t('Maintenance windows, latest start first, loading')}
        columns={[t('Tenant'), t('Mode'), t('Window'), t('Banner'), t('Set by'), t('Reason'), manage && <HiddenHead label={t('Actions')} />]}
      >
        {rows.map((w) => (
          <tr key={w.id} data-window-tenant={w.tenant} data-window-state={w.state}>
            <td class="mono">{w.tenant}</td>
            <td>{wordOf(MODE_WORDS, w.mode)}</td>
            <td data-testid="window">
              {t('{state}: {start} to {end}', { state: wordOf(STATE_WORDS, w.state), start: shortTime(w.starts_ms), end: w.ends_ms ? shortTime(w.ends_ms) : t('until ended') })}
              {w.state === 'ended' && (
                <div class="hint">
                  {t('by {who} {time}: {reason}', { who: w.ended_by, time: shortTime(w.ended_ms), reason: w.ended_reason })}
                </div>
              )}
            </td>
            <td>
              <div class="desc" title={w.banner}>
                {w.banner}
              </div>
            </td>
            <td title={time(w.created_ms)}>
              {w.created_by}
              <div class="hint">{shortTime(w.created_ms)}</div>
            </td>
            <td>
              <div class="desc" title={w.reason}>
                {w.reason}
              </div>
            </td>
            {manage && (
              <td class="actions">
                {(w.state === 'active' || w.state === 'scheduled') && (
                  <button type="button" class="danger" aria-label={t('{action}: maintenance of {tenant}', { action: w.state === 'scheduled' ? t('Call off') : t('End now'), tenant: w.tenant })} onClick={() => (setNotice(''), setDialog({ kind: 'end', w }))}>
                    {w.state === 'scheduled' ? t('Call off') : t('End now')}
                  </button>
                )}
              </td>
            )}
          </tr>
        ))}
        <EmptyRow show={data && !rows.length} cols={manage ? 7 : 6}>
          {t('No maintenance windows match. Change the filters, or start one with Start maintenance.')}
        </EmptyRow>
      </Table>
      {dialog?.kind === 'create' && <CreateDialog maxBanner={data?.max_banner || 500} onClose={() => setDialog(null)} onDone={done} />}
      {dialog?.kind === 'end' && <EndDialog w={dialog.w} onClose={() => setDialog(null)} onDone={done} />}
    </section>
  );
}
