// The webhook failures inbox (/administration/webhook-failures), over the
// webhook-inbox plugin's API (/api/v1/webhook-failures): the failed and dead
// deliveries the caller may see, filtered by scope, endpoint, event kind,
// time range and whether someone handled them; bulk Replay and Mark handled
// for the selected rows; a drawer with a failure's attempt history; Suppress
// endpoint (with a reason) and the list of suppressions with Lift. The menu
// shows the open count (useWebhookFailureCounts in shell.jsx).
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { t, tp } from './i18n.js';
import { fromLocalInput, zoneName } from './format.js';
import { usePoll } from './jobs.jsx';
import { zone } from './alerts.jsx';
import { AttemptsTable, DeliveryState, KIND_NAMES } from './notifications.jsx';
import {
  CloseActions,
  Dialog,
  EmptyRow,
  FormActions,
  HiddenHead,
  Message,
  MorePager,
  NotAllowed,
  SuggestFilter,
  Table,
  shortTime,
  time,
  useAction,
  useCursorPages,
  useSession,
  useSettled,
  useWindowEvents,
} from './ui.jsx';
import { useFeatureNames } from './features.js';

const BASE = '/api/v1/webhook-failures';
const PAGE = 50;
/** The permissions the inbox's routes name. */
import { WEBHOOK_FAILURES_READ as READ } from './shell.jsx';
export { READ };
export const MANAGE = 'webhook_failures.manage';

/** Tells the menu's count and the page that failures changed here. */
const changed = () => window.dispatchEvent(new Event('opk-webhook-failures'));

/** A suppression's endpoint as its URL (the recipient), else its id. */
const urlOf = (s) => s.recipient || s.endpoint;

/** A datetime-local value (in the operator's zone) as ms since the epoch, or '' when empty or not a time. */
const msOf = (local) => {
  if (!local) return '';
  const ms = fromLocalInput(local);
  return Number.isNaN(ms) ? '' : ms;
};

/** Mark handled, with an optional note kept with them. */
function HandleDialog({ ids, onClose, onDone }) {
  const [note, setNote] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    const body = { ids };
    if (note.trim()) body.note = note.trim();
    run(async () => {
      await api(`${BASE}/handle`, { method: 'POST', body });
      onDone(tp(ids.length, 'One failure marked handled.', '{n} failures marked handled.'));
    });
  };
  return (
    <Dialog title={tp(ids.length, 'Mark one failure handled', 'Mark {n} failures handled')} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p>{t('A handled failure leaves the open list; it is kept, with who handled it and when, under Handled.')}</p>
        <div class="field">
          <label for="wf-note">{t('Note (optional)')}</label>
          <textarea id="wf-note" rows={2} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} onClose={onClose} submit={t('Mark handled')} />
      </form>
    </Dialog>
  );
}

/** Suppress an endpoint: no more deliveries to it until lifted or until a time. */
function SuppressDialog({ channel, endpoint, onClose, onDone }) {
  const [reason, setReason] = useState('');
  const [until, setUntil] = useState('');
  const { busy, error, setError, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    const body = { channel, endpoint };
    if (reason.trim()) body.reason = reason.trim();
    if (until) {
      const ms = msOf(until);
      if (ms === '') return setError(new Error(t('until: choose a date and time')));
      body.until_ms = ms;
    }
    run(async () => {
      await api(`${BASE}/suppressions`, { method: 'POST', body });
      onDone(t('{endpoint} suppressed.', { endpoint }));
    });
  };
  return (
    <Dialog title={t('Suppress endpoint')} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <p>
          {t('Nothing more is sent to')} <strong class="mono">{endpoint}</strong> ({channel}){' '}
          {t('while it is suppressed. Lift the suppression to send again.')}
        </p>
        <div class="field">
          <label for="wf-reason">{t('Reason (kept with the suppression and in the audit trail)')}</label>
          <textarea id="wf-reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="wf-until">{t('Until ({zone}; empty: until lifted)', { zone: zone() })}</label>
          <input id="wf-until" type="datetime-local" value={until} onInput={(e) => setUntil(e.currentTarget.value)} />
        </div>
        <FormActions error={error} busy={busy} onClose={onClose} submit={t('Suppress endpoint')} />
      </form>
    </Dialog>
  );
}

/** A failure in a drawer: every field, the attempt history, and its actions. */
function FailureDrawer({ id, manage, onClose, onAction }) {
  const [d, setD] = useState(null);
  const [error, setError] = useState(null);
  const action = useAction();
  const load = () =>
    api(`${BASE}/${encodeURIComponent(id)}`)
      .then((x) => (setD(x.failure), setError(null)))
      .catch(setError);
  useEffect(() => {
    load();
  }, [id]);
  useWindowEvents(['opk-webhook-failures'], load, [id]);
  const replay = () =>
    action.run(async () => {
      await api(`${BASE}/replay`, { method: 'POST', body: { ids: [id] } });
      onAction({ notice: t('Replayed: the delivery goes again with the same id.') });
    });
  return (
    <Dialog title={t('Failure {id}', { id })} onClose={onClose} drawer>
      <Message error={error || action.error} />
      {!d && !error && <p class="loading">{t('Loading…')}</p>}
      {d && (
        <>
          <dl class="facts" data-testid="failure-facts">
            <dt>{t('State')}</dt>
            <dd>
              <DeliveryState state={d.state} />
            </dd>
            <dt>{t('Endpoint')}</dt>
            <dd class="mono">{d.recipient}</dd>
            <dt>{t('Channel')}</dt>
            <dd>{d.channel}</dd>
            <dt>{t('Event')}</dt>
            <dd>
              {d.event?.kind} · {d.event?.subject} · {t('seq {seq}', { seq: d.event?.seq })}
            </dd>
            <dt>{t('Scope')}</dt>
            <dd>{d.scope}</dd>
            <dt>{t('Rule')}</dt>
            <dd>
              {d.rule_id}
              {d.group_id ? ` ${t('(group {group})', { group: d.group_id })}` : ''}
            </dd>
            <dt>{t('Created')}</dt>
            <dd>{time(d.created_ms)}</dd>
            <dt>{t('Last change')}</dt>
            <dd>{time(d.updated_ms)}</dd>
            <dt>{t('Last code')}</dt>
            <dd>{d.last_code ?? '—'}</dd>
            <dt>{t('Last detail')}</dt>
            <dd>{d.last_detail || '—'}</dd>
            <dt>{t('Handled')}</dt>
            <dd data-testid="failure-handled">
              {d.handled_by
                ? `${t('{time} by {user}', { time: time(d.handled_ms), user: d.handled_by })}${d.handled_note ? `: ${d.handled_note}` : ''}`
                : t('No')}
            </dd>
          </dl>
          {manage && (
            <div class="tools">
              <button type="button" class="primary" disabled={action.busy} onClick={replay}>
                {t('Replay')}
              </button>
              <button type="button" disabled={!!d.handled_by} onClick={() => onAction({ dialog: { kind: 'handle', ids: [id] } })}>
                {t('Mark handled')}
              </button>
              <button
                type="button"
                onClick={() => onAction({ dialog: { kind: 'suppress', channel: d.channel, endpoint: d.recipient } })}
              >
                {t('Suppress endpoint')}
              </button>
            </div>
          )}
          <h3>{t('Attempts')}</h3>
          <AttemptsTable attempts={Array.isArray(d.attempts) ? d.attempts : []} />
        </>
      )}
      <CloseActions onClose={onClose} />
    </Dialog>
  );
}

/** The suppressed endpoints, each with Lift. */
function Suppressions({ manage, onNotice }) {
  const ctx = useSession();
  const [data, error, reload] = usePoll(() => api(`${BASE}/suppressions`), ctx.settings.poll_seconds, []);
  const action = useAction();
  useWindowEvents(['opk-webhook-failures'], reload, []);
  const items = data?.suppressions || [];
  const lift = (s) =>
    action.run(async () => {
      await api(`${BASE}/suppressions/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
      onNotice(t('Suppression of {endpoint} lifted.', { endpoint: urlOf(s) }));
      changed();
    });
  return (
    <section aria-labelledby="supp-title">
      <h2 id="supp-title">{t('Suppressed endpoints ({n})', { n: items.length })}</h2>
      <Message error={error || action.error} />
      <Table
        name="suppressions"
        caption={t('Suppressed endpoints')}
        columns={[t('Endpoint'), t('Channel'), t('Scope'), t('Reason'), t('Until'), t('By'), t('Since'), manage && <HiddenHead label={t('Actions')} />]}
      >
        {items.map((s) => (
          <tr key={s.id} data-suppression-id={s.id}>
            <td class="mono desc" title={urlOf(s)}>
              {urlOf(s)}
            </td>
            <td>{s.channel}</td>
            <td>{s.scope || '—'}</td>
            <td class="wrap">{s.reason || '—'}</td>
            <td>{s.until_ms ? time(s.until_ms) : t('until lifted')}</td>
            <td>{s.created_by || s.by || '—'}</td>
            <td>{s.created_ms ? shortTime(s.created_ms) : '—'}</td>
            {manage && (
              <td>
                <button type="button" aria-label={t('Lift the suppression of {endpoint}', { endpoint: urlOf(s) })} disabled={action.busy} onClick={() => lift(s)}>
                  {t('Lift')}
                </button>
              </td>
            )}
          </tr>
        ))}
        <EmptyRow show={data && !items.length} cols={manage ? 8 : 7}>
          {t('No endpoint is suppressed. Suppress one from a failure with Suppress endpoint.')}
        </EmptyRow>
      </Table>
    </section>
  );
}

export function WebhookFailuresPage() {
  const ctx = useSession();
  const name = useFeatureNames(ctx)('webhook-inbox', t('Webhook failures'));
  const manage = ctx.can(MANAGE);
  const [typed, setTyped] = useState({ scope: '', endpoint: '', event: '' });
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const [handled, setHandled] = useState('false');
  const [selected, setSelected] = useState(new Set());
  const [drawer, setDrawer] = useState(null);
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState('');
  const bulk = useAction();
  useEffect(() => {
    document.title = t('{page} · Opskernel', { page: name });
  }, [name]);
  const text = useSettled({ scope: typed.scope.trim(), endpoint: typed.endpoint.trim(), event: typed.event.trim() });
  const filter = { ...text, since_ms: msOf(since), until_ms: msOf(until), handled };
  const key = JSON.stringify(filter);
  useEffect(() => setSelected(new Set()), [key]);
  const may = ctx.can(READ);
  const [counts, , reloadCounts] = usePoll(() => (may ? api(`${BASE}/counts`) : Promise.resolve(null)), ctx.settings.poll_seconds, []);
  const [data, error, reload] = usePoll(
    () => (may ? api(`${BASE}${query({ ...filter, limit: PAGE })}`) : Promise.resolve(null)),
    ctx.settings.poll_seconds,
    [key],
  );
  // The first page is polled; the pages after it are read on request.
  const pages = useCursorPages(key, data, 'failures', (cursor) => api(`${BASE}${query({ ...filter, limit: PAGE, cursor })}`));
  useWindowEvents(['opk-webhook-failures'], () => (pages.reset(), reload(), reloadCounts()), [reload]);
  if (!may)
    return <NotAllowed title={t('Webhook failures')} role={ctx.me.role} what={t('see the webhook failures')} />;
  const { items } = pages;
  const chosen = items.filter((f) => selected.has(f.id)).map((f) => f.id);
  const allShown = items.length > 0 && items.every((f) => selected.has(f.id));
  const toggle = (id) => {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  };
  const finished = (what) => {
    setDialog(null);
    setSelected(new Set());
    setNotice(what);
    changed();
  };
  const replay = (ids) =>
    bulk.run(async () => {
      setNotice('');
      await api(`${BASE}/replay`, { method: 'POST', body: { ids } });
      finished(tp(ids.length, 'One delivery replayed: each goes again with its own id.', '{n} deliveries replayed: each goes again with its own id.'));
    });
  const scopes = [...new Set([ctx.me.scope, ...items.map((f) => f.scope)])].sort();
  const endpoints = [...new Set(items.map((f) => f.recipient))].sort();
  return (
    <section aria-labelledby="wf-title">
      <div class="page-head">
        <div>
          <h1 id="wf-title">{name}</h1>
          <p class="sub">
            {t('Deliveries that failed for good or ran out of attempts, at or under {scope}. Times in {zone}.', {
              scope: ctx.me.scope,
              zone: zone(),
            })}
          </p>
        </div>
        {manage && (
          <div class="tools">
            <button
              type="button"
              class="primary"
              disabled={!chosen.length || bulk.busy}
              title={chosen.length ? undefined : t('Select the failures first')}
              onClick={() => replay(chosen)}
            >
              {t('Replay')}
              {chosen.length ? ` (${chosen.length})` : ''}
            </button>
            <button
              type="button"
              disabled={!chosen.length || bulk.busy}
              title={chosen.length ? undefined : t('Select the failures first')}
              onClick={() => (setNotice(''), setDialog({ kind: 'handle', ids: chosen }))}
            >
              {t('Mark handled')}
              {chosen.length ? ` (${chosen.length})` : ''}
            </button>
          </div>
        )}
      </div>
      <p class="hint" data-testid="wf-counts">
        {counts
          ? t('{open} open · {handled} handled · {suppressed} endpoints suppressed', {
              open: counts.open,
              handled: counts.handled,
              suppressed: counts.suppressed_endpoints,
            })
          : t('Counting…')}
      </p>
      <div class="tools filters">
        <label class="visually-hidden" for="wf-handled">
          {t('Open or handled')}
        </label>
        <select id="wf-handled" value={handled} onChange={(e) => setHandled(e.currentTarget.value)}>
          <option value="false">{t('Open')}</option>
          <option value="true">{t('Handled')}</option>
          <option value="all">{t('Open and handled')}</option>
        </select>
        <SuggestFilter
          id="wf-scope"
          label={t('Tenant or scope node')}
          list="wf-scopes"
          choices={scopes}
          class="short"
          spellcheck={false}
          placeholder={t('Tenant or scope')}
          value={typed.scope}
          onInput={(v) => setTyped({ ...typed, scope: v })}
        />
        <SuggestFilter
          id="wf-endpoint"
          label={t('Endpoint')}
          list="wf-endpoints"
          choices={endpoints}
          spellcheck={false}
          placeholder={t('Endpoint URL')}
          value={typed.endpoint}
          onInput={(v) => setTyped({ ...typed, endpoint: v })}
        />
        <SuggestFilter
          id="wf-event"
          label={t('Event kind')}
          list="wf-kinds"
          choices={KIND_NAMES.filter((k) => !k.includes('*'))}
          class="short"
          spellcheck={false}
          placeholder={t('Event kind')}
          value={typed.event}
          onInput={(v) => setTyped({ ...typed, event: v })}
        />
        <label for="wf-since">{t('From ({zone})', { zone: zoneName() })}</label>
        <input id="wf-since" type="datetime-local" value={since} onInput={(e) => setSince(e.currentTarget.value)} />
        <label for="wf-until-filter">{t('to ({zone})', { zone: zoneName() })}</label>
        <input id="wf-until-filter" type="datetime-local" value={until} onInput={(e) => setUntil(e.currentTarget.value)} />
      </div>
      <Message error={error || bulk.error} notice={notice} />
      <Table
        name="failures"
        caption={data ? t('Webhook failures, newest first, {n} shown', { n: items.length }) : t('Webhook failures, loading')}
        columns={[
          manage && (
            <th scope="col" class="narrow">
              <input
                type="checkbox"
                aria-label={t('Select every failure shown')}
                checked={allShown}
                onChange={() => setSelected(allShown ? new Set() : new Set(items.map((f) => f.id)))}
              />
            </th>
          ),
          t('Last change'),
          t('State'),
          t('Event'),
          t('Endpoint'),
          t('Scope'),
          t('Attempts'),
          t('Last code'),
          t('Last detail'),
          t('Handled'),
          <HiddenHead label={t('Details')} />,
        ]}
      >
        {items.map((f) => (
          <tr key={f.id} data-failure-id={f.id} class={selected.has(f.id) ? 'selected' : ''}>
            {manage && (
              <td>
                <input type="checkbox" aria-label={t('Select failure {id}', { id: f.id })} checked={selected.has(f.id)} onChange={() => toggle(f.id)} />
              </td>
            )}
            <td title={time(f.updated_ms)}>{shortTime(f.updated_ms)}</td>
            <td>
              <DeliveryState state={f.state} />
            </td>
            <td>
              {f.event?.kind} <span class="hint">{f.event?.subject}</span>
            </td>
            <td class="mono desc" title={f.recipient}>
              {f.recipient}
            </td>
            <td>{f.scope}</td>
            <td>{typeof f.attempts === 'number' ? f.attempts : f.attempts?.length ?? '—'}</td>
            <td>{f.last_code ?? '—'}</td>
            <td class="desc" title={f.last_detail}>
              {f.last_detail || '—'}
            </td>
            <td>{f.handled_by ? t('by {user}', { user: f.handled_by }) : '—'}</td>
            <td>
              <button type="button" aria-label={t('Details of failure {id}', { id: f.id })} onClick={() => setDrawer(f.id)}>
                {t('Details')}
              </button>
            </td>
          </tr>
        ))}
        <EmptyRow show={data && !items.length} cols={manage ? 11 : 10}>
          {t('No webhook failures match. Change the filters, or show handled ones too.')}
        </EmptyRow>
      </Table>
      <MorePager pages={pages} />
      <Suppressions manage={manage} onNotice={setNotice} />
      {drawer && (
        <FailureDrawer
          id={drawer}
          manage={manage}
          onClose={() => setDrawer(null)}
          onAction={({ notice: n, dialog: d }) => {
            if (d) setDialog(d);
            if (n) (setNotice(n), changed());
          }}
        />
      )}
      {dialog?.kind === 'handle' && <HandleDialog ids={dialog.ids} onClose={() => setDialog(null)} onDone={finished} />}
      {dialog?.kind === 'suppress' && (
        <SuppressDialog channel={dialog.channel} endpoint={dialog.endpoint} onClose={() => setDialog(null)} onDone={finished} />
      )}
    </section>
  );
}
