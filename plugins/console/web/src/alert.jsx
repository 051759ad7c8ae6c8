// An alert (/administration/alerts/{id}): every field, its details, its
// history oldest first and the earlier records of the same chain; acknowledge,
// close (with a reason), silence until a time and unsilence, each disabled
// with the reason when the caller may not or the alert is closed.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { msg, t, tr } from './i18n.js';
import { fromLocalInput, number, toLocalInput } from './format.js';
import { AlertMarkers, AlertStatusLabel, SeverityLabel, SourceName, alertsChanged, relatedOf, sourceTitle, zone } from './alerts.jsx';
import { Dialog, FormActions, Link, Message, time, useAction, useSession } from './ui.jsx';

/** What happened to an alert, by the kind its history names (shown as it is if unknown). */
const EVENT_WORDS = {
  raised: msg('raised'),
  updated: msg('updated'),
  escalated: msg('escalated'),
  acknowledged: msg('acknowledged'),
  silenced: msg('silenced'),
  closed: msg('closed'),
  reopened_as: msg('reopened as a new alert'),
};

/** Why this caller may not act on the alert, or '' when they may. */
function manageRefusal(ctx, alert) {
  if (!ctx.can('alerts.manage')) return t('Your role ({role}) may not manage alerts.', { role: ctx.me.role });
  if (alert.status === 'closed') return t('The alert is closed; a closed alert is final. A recurrence opens a new alert.');
  return '';
}


const TITLES = {
  acknowledge: msg('Acknowledge'),
  close: msg('Close alert'),
  silence: msg('Silence'),
  unsilence: msg('Unsilence'),
};

/** The dialog of one action: its reason (required to close), and the time for silence. */
function ActionDialog({ alert, action, onClose, onDone }) {
  const [reason, setReason] = useState('');
  const [until, setUntil] = useState(() => toLocalInput(Date.now() + 3600000));
  const { busy, error, setError, run } = useAction();
  const required = action === 'close';
  const submit = (e) => {
    e.preventDefault();
    const body = {};
    if (reason.trim()) body.reason = reason.trim();
    if (required && !body.reason) return setError(new Error(t('reason: required; say why the alert is closed')));
    if (action === 'silence') {
      const ms = fromLocalInput(until);
      if (!until || Number.isNaN(ms)) return setError(new Error(t('until: choose a date and time')));
      body.until_ms = ms;
    }
    run(async () => {
      const r = await api(`/api/v1/alerts/${alert.id}/${action}`, { method: 'POST', body });
      onDone(r.alert);
    });
  };
  const explain = {
    acknowledge: msg('Acknowledging says someone is on it. The alert stays until its source clears it or someone closes it.'),
    close: msg('Closing is final: the alert is kept with your reason, and a recurrence opens a new alert linked to this one.'),
    silence: msg('A silenced alert stays listed, marked silenced, and sends no notifications until the time you choose.'),
    unsilence: msg('The silence ends now.'),
  }[action];
  return (
    <Dialog title={`${tr(TITLES[action])}: ${alert.title}`} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <p>{tr(explain)}</p>
        {action === 'silence' && (
          <div class="field">
            <label for="al-until">{t('Silence until ({zone})', { zone: zone() })}</label>
            <input id="al-until" type="datetime-local" required value={until} onInput={(e) => setUntil(e.currentTarget.value)} />
          </div>
        )}
        {action !== 'unsilence' && (
          <div class="field">
            <label for="al-reason">
              {required ? t('Reason (required: a closed alert says why it was closed; kept in the audit trail)') : t('Reason (optional, kept in the audit trail)')}
            </label>
            <textarea id="al-reason" name="reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </div>
        )}
        <FormActions error={error} busy={busy} back={t('Back')} onClose={onClose} submit={tr(TITLES[action])} />
      </form>
    </Dialog>
  );
}

function History({ events }) {
  if (!events.length) return <p class="hint">{t('No events recorded.')}</p>;
  return (
    <div class="table-wrap">
      <table class="history">
        <caption class="visually-hidden">{t('History, oldest first')}</caption>
        <thead>
          <tr>
            <th scope="col">{t('Time')}</th>
            <th scope="col">{t('Event')}</th>
            <th scope="col">{t('By')}</th>
            <th scope="col">{t('Reason')}</th>
            <th scope="col">{t('Details')}</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e, i) => (
            <tr key={i}>
              <td>{time(e.time_ms)}</td>
              <td>{EVENT_WORDS[e.kind] ? tr(EVENT_WORDS[e.kind]) : e.kind}</td>
              <td>{e.actor || '—'}</td>
              <td class="wrap">{e.reason || '—'}</td>
              <td class="wrap">
                {e.details && Object.keys(e.details).length ? <code>{JSON.stringify(e.details)}</code> : '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function AlertPage({ id }) {
  const ctx = useSession();
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState('');
  const load = () =>
    api(`/api/v1/alerts/${id}`)
      .then((d) => (setData(d), setError(null)))
      .catch(setError);
  useEffect(() => {
    setData(null);
    setNotice('');
    setDialog(null);
    load();
    const t = setInterval(() => document.visibilityState === 'visible' && load(), ctx.settings.poll_seconds * 1000);
    return () => clearInterval(t);
  }, [id]);
  useEffect(() => {
    document.title = `${data ? data.alert.title : t('Alert {id}', { id })} · ${t('Alerts')} · Opskernel`;
  }, [id, data?.alert.title]);
  if (error && !data)
    return (
      <section>
        <p class="crumbs">
          <Link href="/administration/alerts">{t('Alerts')}</Link> /
        </p>
        <h1>{t('Alert {id}', { id })}</h1>
        <Message error={error} />
      </section>
    );
  if (!data) return <p class="loading">{t('Loading…')}</p>;
  const { alert: a, history, previous } = data;
  const refusal = manageRefusal(ctx, a);
  const silenced = a.silenced_until_ms && a.silenced_until_ms > Date.now();
  const ackWhy = refusal || (a.acknowledged_by ? t('Already acknowledged by {user}.', { user: a.acknowledged_by }) : '');
  const unsilenceWhy = refusal || (silenced ? '' : t('The alert is not silenced.'));
  const button = (action, why, primary) => (
    <button
      type="button"
      class={primary ? 'primary' : ''}
      disabled={!!why}
      title={why || undefined}
      aria-describedby={!why ? undefined : why === refusal ? 'alert-actions-why' : `why-${action}`}
      onClick={() => (setNotice(''), setDialog(action))}
    >
      {tr(TITLES[action])}
    </button>
  );
  const done = (what) => (alert) => {
    setDialog(null);
    setData((d) => ({ ...d, alert }));
    setNotice(what);
    alertsChanged();
    load();
  };
  return (
    <section aria-labelledby="alert-title">
      <div class="page-head">
        <div>
          <p class="crumbs">
            <Link href="/administration/alerts">{t('Alerts')}</Link> /
          </p>
          <h1 id="alert-title">
            <SeverityLabel severity={a.severity} /> {a.title}
          </h1>
          <p class="sub">
            <span data-testid="alert-status">
              <AlertStatusLabel status={a.status} />
              {a.acknowledged_by && a.status !== 'acknowledged' ? ` · ${t('acknowledged by {user}', { user: a.acknowledged_by })}` : ''}
            </span>{' '}
            <AlertMarkers alert={a} /> <span class="hint">· {t('alert {id} · times in {zone}', { id: a.id, zone: zone() })}</span>
          </p>
        </div>
        <div class="tools">
          {button('acknowledge', ackWhy, true)}
          {button('close', refusal)}
          {button('silence', refusal)}
          {button('unsilence', unsilenceWhy)}
        </div>
      </div>
      {refusal ? (
        <p id="alert-actions-why" class="message notice">
          {refusal}
        </p>
      ) : (
        <>
          {ackWhy && (
            <p id="why-acknowledge" class="hint">
              {t('Acknowledge')}: {ackWhy}
            </p>
          )}
          {unsilenceWhy && (
            <p id="why-unsilence" class="hint">
              {t('Unsilence')}: {unsilenceWhy}
            </p>
          )}
        </>
      )}
      <Message error={error} notice={notice} />
      <div class="run-grid">
        <dl class="facts">
          <dt>{t('Message')}</dt>
          <dd data-testid="alert-message">{a.message || '—'}</dd>
          <dt>{t('Severity')}</dt>
          <dd>
            <SeverityLabel severity={a.severity} />
          </dd>
          <dt>{t('Status')}</dt>
          <dd>
            <AlertStatusLabel status={a.status} />
            {a.escalation_level > 0 ? ` ${t('(escalation level {n})', { n: a.escalation_level })}` : ''}
          </dd>
          <dt>{t('Source')}</dt>
          <dd>
            <SourceName ctx={ctx} id={a.source} />
            {a.type && a.type !== a.source ? ` · ${t('type {type}', { type: a.type })}` : ''}
            {a.custom ? ` · ${t('created by hand')}` : ''}
          </dd>
          <dt>{t('Area')}</dt>
          <dd>{a.area || '—'}</dd>
          <dt>{t('About')}</dt>
          <dd>{relatedOf(a)}</dd>
          <dt>{t('Scope')}</dt>
          <dd>
            {a.scope}
            {a.platform_only ? ` · ${t('platform administrators only')}` : ''}
          </dd>
          <dt>{t('First seen')}</dt>
          <dd>{time(a.first_seen_ms)}</dd>
          <dt>{t('Last seen')}</dt>
          <dd>{time(a.last_seen_ms)}</dd>
          <dt>{t('Occurrences')}</dt>
          <dd>{number(a.occurrences)}</dd>
          <dt>{t('Acknowledged')}</dt>
          <dd data-testid="alert-acknowledged">{a.acknowledged_by ? t('{time} by {user}', { time: time(a.acknowledged_ms), user: a.acknowledged_by }) : '—'}</dd>
          <dt>{t('Silenced until')}</dt>
          <dd>{a.silenced_until_ms ? `${time(a.silenced_until_ms)}${silenced ? '' : t(' (over)')}` : '—'}</dd>
          <dt>{t('Closed')}</dt>
          <dd data-testid="alert-closed">
            {a.closed_ms ? `${t('{time} by {user}', { time: time(a.closed_ms), user: a.closed_by })} (${a.close_kind})${a.close_reason ? `: ${a.close_reason}` : ''}` : '—'}
          </dd>
          <dt>{t('Flapping')}</dt>
          <dd>{a.flapping ? t('Yes: it closed and reopened several times within the flapping window') : t('No')}</dd>
          <dt>{t('Recurs')}</dt>
          <dd>
            {a.previous_id ? <Link href={`/administration/alerts/${a.previous_id}`}>{t('alert {id}', { id: a.previous_id })}</Link> : '—'}
          </dd>
        </dl>
        <div>
          <h2>{t('Details')}</h2>
          <pre class="details" data-testid="alert-details">
            {JSON.stringify(a.details || {}, null, 2)}
          </pre>
          <h2>{t('Earlier alerts of this chain')}</h2>
          {previous.length ? (
            <ul class="attention-list" aria-label={t('Earlier alerts, newest first')}>
              {previous.map((p) => (
                <li key={p}>
                  <Link href={`/administration/alerts/${p}`}>{t('alert {id}', { id: p })}</Link>
                </li>
              ))}
            </ul>
          ) : (
            <p class="hint">{t('None: this is the first alert about {what} from {source}.', { what: relatedOf(a), source: sourceTitle(ctx, a.source) })}</p>
          )}
        </div>
      </div>
      <h2>{t('History')}</h2>
      <History events={history} />
      {dialog && (
        <ActionDialog
          alert={a}
          action={dialog}
          onClose={() => setDialog(null)}
          onDone={done(
            { acknowledge: t('Acknowledged.'), close: t('Closed.'), silence: t('Silenced.'), unsilence: t('Silence ended.') }[dialog],
          )}
        />
      )}
    </section>
  );
}
