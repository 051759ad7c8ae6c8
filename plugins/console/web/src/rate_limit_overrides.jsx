// The admin API's rate-limit overrides (/administration/rate-limit-overrides),
// over the rate-limit-overrides plugin's API (/api/v1/rate-limit-overrides):
// every override, ended ones included, with its target, limit, who set it,
// when, its reason and the time left, filtered by state and kind; for roles
// with rate_limits.manage, create one with a required reason and expiry
// (at most the plugin's max_duration ahead) and end one early with a
// reason. The menu shows the page to roles with rate_limits.read.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { msg, t, tr } from './i18n.js';
import { number } from './format.js';
import { zone } from './alerts.jsx';
import { Dialog, EmptyRow, FormActions, HiddenHead, Message, NotAllowed, Table, shortTime, time, useAction, useSession } from './ui.jsx';
import { useFeatureNames } from './features.js';

const BASE = '/api/v1/rate-limit-overrides';
/** The permissions the overrides' routes name. */
import { RATE_LIMITS_READ as READ } from './shell.jsx';
export { READ };
export const MANAGE = 'rate_limits.manage';

/** A span of ms as "2 d 3 h", "3 h 20 min", "12 min", "40 s". */
export const left = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return t('{d} d {h} h', { d, h });
  if (h) return t('{h} h {min} min', { h, min: m });
  if (m) return t('{min} min', { min: m });
  return t('{n} s', { n: s });
};

/** A limit as shown: "unlimited" or "N / min". */
const limitText = (l) => (l === 'unlimited' ? t('unlimited') : t('{n} / min', { n: number(Number(l)) }));

/** An override's state in words. */
const STATE_WORDS = { active: msg('active'), expired: msg('expired'), removed: msg('removed') };
const stateText = (s) => (STATE_WORDS[s] ? tr(STATE_WORDS[s]) : s);

/** Create an override: address or tenant, limit, reason, duration. */
function CreateDialog({ maxMs, onClose, onDone }) {
  const [f, setF] = useState({ kind: 'address', target: '', unlimited: true, perMinute: '', duration: '2h', reason: '' });
  const { busy, error, run } = useAction();
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const submit = (e) => {
    e.preventDefault();
    const body = {
      [f.kind]: f.target.trim(),
      limit: f.unlimited ? 'unlimited' : f.perMinute === '' || Number.isNaN(Number(f.perMinute)) ? f.perMinute : Number(f.perMinute),
      reason: f.reason.trim(),
      duration: f.duration.trim(),
    };
    run(async () => {
      const o = (await api(BASE, { method: 'POST', body })).override;
      onDone(t('{target}: {limit} until {time}.', { target: o.target, limit: limitText(o.limit), time: time(o.expires_ms) }));
    });
  };
  return (
    <Dialog title={t('Create override')} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <p>{t('The admin API\'s limits for an address or block, or for a tenant\'s users, until the override ends (at most {max} ahead).', { max: left(maxMs) })}</p>
        <div class="field">
          <label for="rlo-kind">{t('For')}</label>
          <select id="rlo-kind" value={f.kind} onChange={(e) => set('kind')(e.currentTarget.value)}>
            <option value="address">{t('An IP address or CIDR block')}</option>
            <option value="tenant">{t('A tenant\'s users (a hierarchy node)')}</option>
          </select>
        </div>
        <div class="field">
          <label for="rlo-target">{f.kind === 'address' ? t('Address or block (192.0.2.7, 10.0.0.0/8, 2001:db8::/32)') : t('Node (tenant:acme)')}</label>
          <input id="rlo-target" spellcheck={false} value={f.target} onInput={(e) => set('target')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="rlo-limit">{t('Limit')}</label>
          <select id="rlo-limit" value={f.unlimited ? 'unlimited' : 'raise'} onChange={(e) => set('unlimited')(e.currentTarget.value === 'unlimited')}>
            <option value="unlimited">{t('Lift it: no limit')}</option>
            <option value="raise">{t('Raise it to a number of requests per minute')}</option>
          </select>
        </div>
        {!f.unlimited && (
          <div class="field">
            <label for="rlo-per-minute">{t('Requests per minute')}</label>
            <input id="rlo-per-minute" type="number" min="1" value={f.perMinute} onInput={(e) => set('perMinute')(e.currentTarget.value)} />
          </div>
        )}
        <div class="field">
          <label for="rlo-duration">{t('Ends after (90m, 2h, 3d; required)')}</label>
          <input id="rlo-duration" spellcheck={false} value={f.duration} onInput={(e) => set('duration')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="rlo-reason">{t('Reason (required; kept in the audit trail)')}</label>
          <textarea id="rlo-reason" rows={2} value={f.reason} onInput={(e) => set('reason')(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} disabled={busy || !f.reason.trim()} onClose={onClose} submit={t('Create override')} />
      </form>
    </Dialog>
  );
}

/** End an override early, with a reason. */
function EndDialog({ o, onClose, onDone }) {
  const [reason, setReason] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      await api(`${BASE}/${encodeURIComponent(o.id)}${query({ reason: reason.trim() })}`, { method: 'DELETE' });
      onDone(t('The override for {target} has ended.', { target: o.target }));
    });
  };
  return (
    <Dialog title={t('End the override for {target}', { target: o.target })} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>{t('Its {limit} ends now; the configured limit applies again.', { limit: limitText(o.limit) })}</p>
        <div class="field">
          <label for="rlo-end-reason">{t('Reason (required; kept in the audit trail)')}</label>
          <textarea id="rlo-end-reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} disabled={busy || !reason.trim()} onClose={onClose} submit={t('End override')} danger />
      </form>
    </Dialog>
  );
}

export function RateLimitOverridesPage() {
  const ctx = useSession();
  const name = useFeatureNames(ctx)('rate-limit-overrides', t('Rate-limit overrides'));
  const manage = ctx.can(MANAGE);
  const [filters, setFilters] = useState({ state: 'active', kind: '' });
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const [dialog, setDialog] = useState(null);
  const [bump, setBump] = useState(0);
  useEffect(() => {
    document.title = t('{page} · Opskernel', { page: name });
  }, [name]);
  useEffect(() => {
    if (!ctx.can(READ)) return;
    let live = true;
    api(`${BASE}${query(filters)}`)
      .then((d) => live && (setData(d), setError(null)))
      .catch((e) => live && setError(e));
    return () => (live = false);
  }, [filters, bump]);
  if (!ctx.can(READ)) return <NotAllowed title={t('Rate-limit overrides')} role={ctx.me.role} what={t('see the rate-limit overrides')} />;
  const rows = data?.overrides || [];
  const now = data?.now_ms || Date.now();
  const done = (what) => {
    setDialog(null);
    setNotice(what);
    setBump(bump + 1);
  };
  const filter = (k) => (e) => setFilters({ ...filters, [k]: e.currentTarget.value });
  return (
    <section aria-labelledby="rlo-title">
      <div class="page-head">
        <div>
          <h1 id="rlo-title">{name}</h1>
          <p class="sub">{t('The admin API\'s limits lifted or raised for a while; each ends by itself. Times in {zone}.', { zone: zone() })}</p>
        </div>
        {manage && (
          <div class="tools">
            <button type="button" class="primary" onClick={() => (setNotice(''), setDialog({ kind: 'create' }))}>
              {t('Create override')}
            </button>
          </div>
        )}
      </div>
      <div class="tools filters">
        <label class="visually-hidden" for="rlo-filter-state">
          {t('State')}
        </label>
        <select id="rlo-filter-state" value={filters.state} onChange={filter('state')}>
          <option value="active">{t('Active')}</option>
          <option value="ended">{t('Ended (expired or removed)')}</option>
          <option value="">{t('Every state')}</option>
        </select>
        <label class="visually-hidden" for="rlo-filter-kind">
          {t('Kind')}
        </label>
        <select id="rlo-filter-kind" value={filters.kind} onChange={filter('kind')}>
          <option value="">{t('Addresses and tenants')}</option>
          <option value="address">{t('Addresses and blocks')}</option>
          <option value="tenant">{t('Tenants')}</option>
        </select>
      </div>
      <Message error={error} notice={notice} />
      <Table
        name="overrides"
        caption={data ? t('Rate-limit overrides, newest first, {n} shown', { n: rows.length }) : t('Rate-limit overrides, loading')}
        columns={[t('For'), t('Limit'), t('Time left'), t('Set by'), t('Reason'), manage && <HiddenHead label={t('Actions')} />]}
      >
        {rows.map((o) => (
          <tr key={o.id} data-override-target={o.target} data-override-state={o.state}>
            <td>
              <span class="mono">{o.target}</span>
              <div class="hint">{o.kind === 'address' ? t('address') : t('tenant\'s users')}</div>
            </td>
            <td>{limitText(o.limit)}</td>
            <td data-testid="time-left" title={t('ends {time}', { time: time(o.ends_ms) })}>
              {o.state === 'active'
                ? t('{left} (until {time})', { left: left(o.expires_ms - now), time: shortTime(o.expires_ms) })
                : `${stateText(o.state)} ${shortTime(o.ends_ms)}`}
              {o.state === 'removed' && <div class="hint">{t('by {user}: {reason}', { user: o.removed_by, reason: o.removed_reason })}</div>}
            </td>
            <td title={time(o.created_ms)}>
              {o.created_by}
              <div class="hint">{shortTime(o.created_ms)}</div>
            </td>
            <td>
              <div class="desc" title={o.reason}>
                {o.reason}
              </div>
            </td>
            {manage && (
              <td class="actions">
                {o.state === 'active' && (
                  <button type="button" class="danger" aria-label={t('{action}: override for {target}', { action: t('End now'), target: o.target })} onClick={() => (setNotice(''), setDialog({ kind: 'end', o }))}>
                    {t('End now')}
                  </button>
                )}
              </td>
            )}
          </tr>
        ))}
        <EmptyRow show={data && !rows.length} cols={manage ? 6 : 5}>
          {t('No overrides match. Change the filters, or create an override.')}
        </EmptyRow>
      </Table>
      {dialog?.kind === 'create' && <CreateDialog maxMs={data?.max_duration_ms || 7 * 86400000} onClose={() => setDialog(null)} onDone={done} />}
      {dialog?.kind === 'end' && <EndDialog o={dialog.o} onClose={() => setDialog(null)} onDone={done} />}
    </section>
  );
}
