// The global feature flags (/administration/feature-flags), over the
// feature-flags plugin's API (/api/v1/feature-flags): every flag with its
// value now, default, override and its end, filtered by type, origin, state
// and text; for roles with feature_flags.manage, toggle a boolean or set a
// value with a required reason and an optional expiry, reset to the
// default, create an operator's flag and delete one. The menu shows the
// page to roles with feature_flags.read.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { t } from './i18n.js';
import { fromLocalInput } from './format.js';
import { zone } from './alerts.jsx';
import { Dialog, EmptyRow, FormActions, HiddenHead, Message, NotAllowed, Table, shortTime, time, useAction, useSession } from './ui.jsx';
import { useFeatureNames } from './features.js';

const BASE = '/api/v1/feature-flags';
/** The permissions the flags' routes name. */
import { FEATURE_FLAGS_READ as READ } from './shell.jsx';
export { READ };
export const MANAGE = 'feature_flags.manage';

/** A datetime-local value (in the operator's zone) as ms since the epoch, or '' when empty or not a time. */
const flagMsOf = (local) => {
  if (!local) return '';
  const ms = fromLocalInput(local);
  return Number.isNaN(ms) ? '' : ms;
};

/** A flag value as text: on/off for booleans, JSON for strings, else as is. */
export const shown = (type, v) => (type === 'boolean' ? (v ? t('on') : t('off')) : type === 'string' ? JSON.stringify(v) : String(v));

/** The value field of a flag's type: on/off, a number, or text. */
function ValueField({ id, label, type, value, onChange }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {type === 'boolean' ? (
        <select id={id} value={value ? 'on' : 'off'} onChange={(e) => onChange(e.currentTarget.value === 'on')}>
          <option value="on">{t('on')}</option>
          <option value="off">{t('off')}</option>
        </select>
      ) : (
        <input
          id={id}
          type={type === 'number' ? 'number' : 'text'}
          step="any"
          spellcheck={false}
          value={value}
          onInput={(e) => onChange(e.currentTarget.value)}
        />
      )}
    </div>
  );
}

/** A number field's text as a number, or the text itself for the server to refuse. */
const typed = (type, v) => (type === 'number' && v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v);

/** Set a flag's value (toggle a boolean), with a reason and an optional expiry. */
function SetDialog({ flag, onClose, onDone }) {
  const [value, setValue] = useState(flag.type === 'boolean' ? !flag.value : flag.value);
  const [reason, setReason] = useState('');
  const [until, setUntil] = useState('');
  const { busy, error, setError, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    const body = { value: typed(flag.type, value), reason: reason.trim() };
    if (until) {
      const ms = flagMsOf(until);
      if (ms === '') return setError(new Error(t('expires: choose a date and time')));
      body.expires_ms = ms;
    }
    run(async () => {
      await api(`${BASE}/${encodeURIComponent(flag.id)}`, { method: 'PATCH', body });
      onDone(
        body.expires_ms
          ? t('{flag} set to {value} until {time}.', { flag: flag.id, value: shown(flag.type, body.value), time: time(body.expires_ms) })
          : t('{flag} set to {value}.', { flag: flag.id, value: shown(flag.type, body.value) }),
      );
    });
  };
  return (
    <Dialog title={t('Set {flag}', { flag: flag.id })} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <p>
          {t('A global flag: the value applies to every tenant. Its default is')} <strong>{shown(flag.type, flag.default)}</strong>.
        </p>
        <ValueField id="ff-value" label={t('Value ({type})', { type: flag.type })} type={flag.type} value={value} onChange={setValue} />
        <div class="field">
          <label for="ff-reason">{t('Reason (required; kept in the audit trail)')}</label>
          <textarea id="ff-reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ff-until">{t('Expires ({zone}; empty: until reset)', { zone: zone() })}</label>
          <input id="ff-until" type="datetime-local" value={until} onInput={(e) => setUntil(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} disabled={busy || !reason.trim()} onClose={onClose} submit={t('Set value')} />
      </form>
    </Dialog>
  );
}

/** Reset (back to the default) or delete a flag, with a reason. */
function ReasonDialog({ flag, kind, onClose, onDone }) {
  const [reason, setReason] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const id = encodeURIComponent(flag.id);
      if (kind === 'reset') await api(`${BASE}/${id}/reset`, { method: 'POST', body: { reason: reason.trim() } });
      else await api(`${BASE}/${id}${query({ reason: reason.trim() })}`, { method: 'DELETE' });
      onDone(kind === 'reset' ? t('{flag} is back at its default.', { flag: flag.id }) : t('{flag} deleted.', { flag: flag.id }));
    });
  };
  return (
    <Dialog title={kind === 'reset' ? t('Reset {flag}', { flag: flag.id }) : t('Delete {flag}', { flag: flag.id })} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>
          {kind === 'reset'
            ? t('The override ends now: the flag is {value} (its default) for every tenant.', { value: shown(flag.type, flag.default) })
            : t('The flag is deleted for every tenant; a plugin asking for it gets its own fallback.')}
        </p>
        <div class="field">
          <label for="ff-reason">{t('Reason (required; kept in the audit trail)')}</label>
          <textarea id="ff-reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        <FormActions
          error={error}
          busy={busy}
          disabled={busy || !reason.trim()}
          onClose={onClose}
          submit={kind === 'reset' ? t('Reset') : t('Delete')}
          danger={kind === 'delete'}
        />
      </form>
    </Dialog>
  );
}

/** Create an operator's flag. */
function CreateDialog({ onClose, onDone }) {
  const [f, setF] = useState({ id: '', type: 'boolean', default: false, description: '', owner: '', reason: '' });
  const { busy, error, run } = useAction();
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const submit = (e) => {
    e.preventDefault();
    const body = {
      id: f.id.trim(),
      type: f.type,
      default: typed(f.type, f.default),
      description: f.description.trim(),
      reason: f.reason.trim(),
    };
    if (f.owner.trim()) body.owner = f.owner.trim();
    run(async () => {
      await api(BASE, { method: 'POST', body });
      onDone(t('{id} created.', { id: body.id }));
    });
  };
  return (
    <Dialog title={t('Create flag')} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <div class="field">
          <label for="ff-id">{t('Id (a-z 0-9 . _ -)')}</label>
          <input id="ff-id" spellcheck={false} value={f.id} onInput={(e) => set('id')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ff-type">{t('Type (fixed once created)')}</label>
          <select
            id="ff-type"
            value={f.type}
            onChange={(e) => {
              const type = e.currentTarget.value;
              setF({ ...f, type, default: type === 'boolean' ? false : '' });
            }}
          >
            <option value="boolean">{t('boolean')}</option>
            <option value="string">{t('string')}</option>
            <option value="number">{t('number')}</option>
          </select>
        </div>
        <ValueField id="ff-default" label={t('Default')} type={f.type} value={f.default} onChange={set('default')} />
        <div class="field">
          <label for="ff-description">{t('Description')}</label>
          <input id="ff-description" value={f.description} onInput={(e) => set('description')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ff-owner">{t('Owner (optional; default you)')}</label>
          <input id="ff-owner" value={f.owner} onInput={(e) => set('owner')(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ff-create-reason">{t('Reason (required; kept in the audit trail)')}</label>
          <textarea id="ff-create-reason" rows={2} value={f.reason} onInput={(e) => set('reason')(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} onClose={onClose} submit={t('Create flag')} />
      </form>
    </Dialog>
  );
}

export function FeatureFlagsPage() {
  const ctx = useSession();
  const name = useFeatureNames(ctx)('feature-flags', t('Feature flags'));
  const manage = ctx.can(MANAGE);
  const [filters, setFilters] = useState({ type: '', origin: '', state: '', text: '' });
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
  if (!ctx.can(READ)) return <NotAllowed title={t('Feature flags')} role={ctx.me.role} what={t('see the feature flags')} />;
  const flags = data?.flags || [];
  const done = (what) => {
    setDialog(null);
    setNotice(what);
    setBump(bump + 1);
  };
  const filter = (k) => (e) => setFilters({ ...filters, [k]: e.currentTarget.value });
  return (
    <section aria-labelledby="ff-title">
      <div class="page-head">
        <div>
          <h1 id="ff-title">{name}</h1>
          <p class="sub">{t('Global flags: a change applies to every tenant at once. Times in {zone}.', { zone: zone() })}</p>
        </div>
        {manage && (
          <div class="tools">
            <button type="button" class="primary" onClick={() => (setNotice(''), setDialog({ kind: 'create' }))}>
              {t('Create flag')}
            </button>
          </div>
        )}
      </div>
      <div class="tools filters">
        <label class="visually-hidden" for="ff-filter-type">
          {t('Type')}
        </label>
        <select id="ff-filter-type" value={filters.type} onChange={filter('type')}>
          <option value="">{t('Every type')}</option>
          <option value="boolean">{t('boolean')}</option>
          <option value="string">{t('string')}</option>
          <option value="number">{t('number')}</option>
        </select>
        <label class="visually-hidden" for="ff-filter-origin">
          {t('Origin')}
        </label>
        <select id="ff-filter-origin" value={filters.origin} onChange={filter('origin')}>
          <option value="">{t('Plugins\' and operators\'')}</option>
          <option value="plugin">{t('Declared by plugins')}</option>
          <option value="operator">{t('Created by operators')}</option>
        </select>
        <label class="visually-hidden" for="ff-filter-state">
          {t('State')}
        </label>
        <select id="ff-filter-state" value={filters.state} onChange={filter('state')}>
          <option value="">{t('Overridden or not')}</option>
          <option value="overridden">{t('Overridden')}</option>
          <option value="default">{t('At the default')}</option>
        </select>
        <label class="visually-hidden" for="ff-filter-text">
          {t('Id or description')}
        </label>
        <input id="ff-filter-text" type="search" placeholder={t('Id or description')} value={filters.text} onInput={filter('text')} />
      </div>
      <Message error={error} notice={notice} />
      <Table
        name="flags"
        caption={data ? t('Feature flags by id, {n} shown', { n: flags.length }) : t('Feature flags, loading')}
        columns={[t('Flag'), t('Type'), t('Value now'), t('Default'), t('Override ends'), t('Origin'), t('Last change'), manage && <HiddenHead label={t('Actions')} />]}
      >
        {flags.map((f) => (
          <tr key={f.id} data-flag-id={f.id}>
            <td>
              <span class="mono">{f.id}</span>
              <div class="hint desc" title={f.description}>
                {f.description}
              </div>
            </td>
            <td>{f.type}</td>
            <td data-testid="flag-value">
              <strong>{shown(f.type, f.value)}</strong>
              {f.overridden && <span class="hint"> {t('(overridden)')}</span>}
            </td>
            <td>{shown(f.type, f.default)}</td>
            <td title={f.expires_ms ? time(f.expires_ms) : undefined}>{f.overridden ? (f.expires_ms ? shortTime(f.expires_ms) : t('until reset')) : '—'}</td>
            <td>
              {f.origin === 'plugin' ? t('plugin {plugin}', { plugin: f.plugin }) : t('operator')}
              <div class="hint">{t('owner {owner}', { owner: f.owner })}</div>
            </td>
            <td title={time(f.updated_ms)}>
              {t('{time} by {user}', { time: shortTime(f.updated_ms), user: f.updated_by })}
              <div class="hint desc" title={f.reason}>
                {f.reason}
              </div>
            </td>
            {manage && (
              <td class="actions">
                <button
                  type="button"
                  aria-label={
                    f.type === 'boolean'
                      ? f.value
                        ? t('Turn off {flag}', { flag: f.id })
                        : t('Turn on {flag}', { flag: f.id })
                      : t('Set value of {flag}', { flag: f.id })
                  }
                  onClick={() => (setNotice(''), setDialog({ kind: 'set', flag: f }))}
                >
                  {f.type === 'boolean' ? (f.value ? t('Turn off') : t('Turn on')) : t('Set value')}
                </button>
                {f.override && (
                  <button type="button" aria-label={t('Reset {flag}', { flag: f.id })} onClick={() => (setNotice(''), setDialog({ kind: 'reset', flag: f }))}>
                    {t('Reset')}
                  </button>
                )}
                {f.origin === 'operator' && (
                  <button type="button" class="danger" aria-label={t('Delete {flag}', { flag: f.id })} onClick={() => (setNotice(''), setDialog({ kind: 'delete', flag: f }))}>
                    {t('Delete')}
                  </button>
                )}
              </td>
            )}
          </tr>
        ))}
        <EmptyRow show={data && !flags.length} cols={manage ? 8 : 7}>
          {t('No feature flags match. Change the filters, or create a flag.')}
        </EmptyRow>
      </Table>
      {dialog?.kind === 'set' && <SetDialog flag={dialog.flag} onClose={() => setDialog(null)} onDone={done} />}
      {(dialog?.kind === 'reset' || dialog?.kind === 'delete') && (
        <ReasonDialog flag={dialog.flag} kind={dialog.kind} onClose={() => setDialog(null)} onDone={done} />
      )}
      {dialog?.kind === 'create' && <CreateDialog onClose={() => setDialog(null)} onDone={done} />}
    </section>
  );
}
