// The admin API's rate-limit overrides (/administration/rate-limit-overrides),
// over the rate-limit-overrides plugin's API (/api/v1/rate-limit-overrides):
// every override, ended ones included, with its target, limit, who set it,
// when, its reason and the time left, filtered by state and kind; for roles
// with rate_limits.manage, create one with a required reason and expiry
// (at most the plugin's max_duration ahead) and end one early with a
// reason. The menu shows the page to roles with rate_limits.read.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { zone } from './alerts.jsx';
import { Dialog, EmptyRow, FormActions, HiddenHead, Message, NotAllowed, Table, shortTime, time, useAction, useSession } from './ui.jsx';

const BASE = '/api/v1/rate-limit-overrides';
/** The permissions the overrides' routes name. */
export const READ = 'rate_limits.read';
export const MANAGE = 'rate_limits.manage';

/** A span of ms as "2 d 3 h", "3 h 20 min", "12 min", "40 s". */
export const left = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min`;
  return `${s} s`;
};

/** A limit as shown: "unlimited" or "N / min". */
const limitText = (l) => (l === 'unlimited' ? 'unlimited' : `${Number(l).toLocaleString('en')} / min`);

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
      onDone(`${o.target}: ${limitText(o.limit)} until ${time(o.expires_ms)}.`);
    });
  };
  return (
    <Dialog title="Create override" onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <p>The admin API's limits for an address or block, or for a tenant's users, until the override ends (at most {left(maxMs)} ahead).</p>
        <div class="field">
          <label for="rlo-kind">For</label>
          <select id="rlo-kind" value={f.kind} onChange={(e) => set('kind')(e.currentTarget.value)}>
            <option value="address">An IP address or CIDR block</option>
            <option value="tenant">A tenant's users (a hierarchy node)</option>
          </select>
        </div>
        <div class="field">
          <label for="rlo-target">{f.kind === 'address' ? 'Address or block (192.0.2.7, 10.0.0.0/8, 2001:db8::/32)' : 'Node (tenant:acme)'}</label>
          <input id="rlo-target" spellcheck={false} value={f.target} onInput={(e) => set('target')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="rlo-limit">Limit</label>
          <select id="rlo-limit" value={f.unlimited ? 'unlimited' : 'raise'} onChange={(e) => set('unlimited')(e.currentTarget.value === 'unlimited')}>
            <option value="unlimited">Lift it: no limit</option>
            <option value="raise">Raise it to a number of requests per minute</option>
          </select>
        </div>
        {!f.unlimited && (
          <div class="field">
            <label for="rlo-per-minute">Requests per minute</label>
            <input id="rlo-per-minute" type="number" min="1" value={f.perMinute} onInput={(e) => set('perMinute')(e.currentTarget.value)} />
          </div>
        )}
        <div class="field">
          <label for="rlo-duration">Ends after (90m, 2h, 3d; required)</label>
          <input id="rlo-duration" spellcheck={false} value={f.duration} onInput={(e) => set('duration')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="rlo-reason">Reason (required; kept in the audit trail)</label>
          <textarea id="rlo-reason" rows={2} value={f.reason} onInput={(e) => set('reason')(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} disabled={busy || !f.reason.trim()} onClose={onClose} submit="Create override" />
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
      onDone(`The override for ${o.target} has ended.`);
    });
  };
  return (
    <Dialog title={`End the override for ${o.target}`} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>Its {limitText(o.limit)} ends now; the configured limit applies again.</p>
        <div class="field">
          <label for="rlo-end-reason">Reason (required; kept in the audit trail)</label>
          <textarea id="rlo-end-reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} disabled={busy || !reason.trim()} onClose={onClose} submit="End override" danger />
      </form>
    </Dialog>
  );
}

export function RateLimitOverridesPage() {
  const ctx = useSession();
  const manage = ctx.can(MANAGE);
  const [filters, setFilters] = useState({ state: 'active', kind: '' });
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const [dialog, setDialog] = useState(null);
  const [bump, setBump] = useState(0);
  useEffect(() => {
    document.title = 'Rate-limit overrides · Opskernel';
  }, []);
  useEffect(() => {
    if (!ctx.can(READ)) return;
    let live = true;
    api(`${BASE}${query(filters)}`)
      .then((d) => live && (setData(d), setError(null)))
      .catch((e) => live && setError(e));
    return () => (live = false);
  }, [filters, bump]);
  if (!ctx.can(READ)) return <NotAllowed title="Rate-limit overrides" role={ctx.me.role} what="see the rate-limit overrides" />;
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
          <h1 id="rlo-title">Rate-limit overrides</h1>
          <p class="sub">The admin API's limits lifted or raised for a while; each ends by itself. Times in {zone()}.</p>
        </div>
        {manage && (
          <div class="tools">
            <button type="button" class="primary" onClick={() => (setNotice(''), setDialog({ kind: 'create' }))}>
              Create override
            </button>
          </div>
        )}
      </div>
      <div class="tools filters">
        <label class="visually-hidden" for="rlo-filter-state">
          State
        </label>
        <select id="rlo-filter-state" value={filters.state} onChange={filter('state')}>
          <option value="active">Active</option>
          <option value="ended">Ended (expired or removed)</option>
          <option value="">Every state</option>
        </select>
        <label class="visually-hidden" for="rlo-filter-kind">
          Kind
        </label>
        <select id="rlo-filter-kind" value={filters.kind} onChange={filter('kind')}>
          <option value="">Addresses and tenants</option>
          <option value="address">Addresses and blocks</option>
          <option value="tenant">Tenants</option>
        </select>
      </div>
      <Message error={error} notice={notice} />
      <Table
        name="overrides"
        caption={`Rate-limit overrides, newest first, ${data ? `${rows.length} shown` : 'loading'}`}
        columns={['For', 'Limit', 'Time left', 'Set by', 'Reason', manage && <HiddenHead label="Actions" />]}
      >
        {rows.map((o) => (
          <tr key={o.id} data-override-target={o.target} data-override-state={o.state}>
            <td>
              <span class="mono">{o.target}</span>
              <div class="hint">{o.kind === 'address' ? 'address' : "tenant's users"}</div>
            </td>
            <td>{limitText(o.limit)}</td>
            <td data-testid="time-left" title={`ends ${time(o.ends_ms)}`}>
              {o.state === 'active' ? `${left(o.expires_ms - now)} (until ${shortTime(o.expires_ms)})` : `${o.state} ${shortTime(o.ends_ms)}`}
              {o.state === 'removed' && <div class="hint">by {o.removed_by}: {o.removed_reason}</div>}
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
                  <button type="button" class="danger" aria-label={`End override for ${o.target}`} onClick={() => (setNotice(''), setDialog({ kind: 'end', o }))}>
                    End now
                  </button>
                )}
              </td>
            )}
          </tr>
        ))}
        <EmptyRow show={data && !rows.length} cols={manage ? 6 : 5}>
          No overrides match.
        </EmptyRow>
      </Table>
      {dialog?.kind === 'create' && <CreateDialog maxMs={data?.max_duration_ms || 7 * 86400000} onClose={() => setDialog(null)} onDone={done} />}
      {dialog?.kind === 'end' && <EndDialog o={dialog.o} onClose={() => setDialog(null)} onDone={done} />}
    </section>
  );
}
