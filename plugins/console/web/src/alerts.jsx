// The alerts list (/administration/alerts): counts by severity, filters
// (status, severity, area, source, text, scope node), sort, paging with the
// API's cursor, severity and status shown as icon and text, flapping and
// silenced markers; and the dialog that creates a custom alert. Also the
// pieces the alert page and the attention panel share.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { manifestText, msg, t, tr } from './i18n.js';
import { number, viewZone, zoneName } from './format.js';
import { usePoll } from './jobs.jsx';
import {
  ChoiceFilter,
  Dialog,
  EmptyRow,
  FormActions,
  Link,
  Message,
  MorePager,
  SuggestFilter,
  Table,
  TextFilter,
  navigate,
  shortTime,
  time,
  useAction,
  useCursorPages,
  useSettled,
  useSession,
} from './ui.jsx';

export const SEVERITIES = [
  { id: 'critical', word: msg('Critical'), glyph: '◆' },
  { id: 'warning', word: msg('Warning'), glyph: '▲' },
  { id: 'info', word: msg('Info'), glyph: 'i' },
];
export const ALERT_STATUSES = [
  { id: 'open', word: msg('Open'), glyph: '○' },
  { id: 'acknowledged', word: msg('Acknowledged'), glyph: '◑' },
  { id: 'escalated', word: msg('Escalated'), glyph: '⇧' },
  { id: 'closed', word: msg('Closed'), glyph: '●' },
];
const NOT_CLOSED = ['open', 'acknowledged', 'escalated'];
const SORTS = [
  ['-last_seen', msg('Last seen, newest first')],
  ['last_seen', msg('Last seen, oldest first')],
  ['-first_seen', msg('First seen, newest first')],
  ['first_seen', msg('First seen, oldest first')],
  ['-severity', msg('Most severe first')],
  ['severity', msg('Least severe first')],
];
const PAGE = 50;

/** The zone the console shows every time in (the operator's choice in the header), with its short name. */
export const zone = () => (viewZone() === zoneName() ? viewZone() : `${viewZone()}, ${zoneName()}`);

function Labelled({ kind, item, withText }) {
  const v = item || { id: 'unknown', word: msg('Unknown'), glyph: '?' };
  const label = v.word ? tr(v.word) : v.label;
  return (
    <span class={`sev ${kind}-${v.id}`}>
      <span class="sev-glyph" aria-hidden="true">
        {v.glyph}
      </span>
      {withText ? <span class="sev-text">{label}</span> : <span class="visually-hidden">{label}</span>}
    </span>
  );
}

/** A severity as icon and word (critical, warning, info); never colour alone. */
export const SeverityLabel = ({ severity }) => (
  <Labelled kind="severity" item={SEVERITIES.find((s) => s.id === severity) || { id: severity, label: severity, glyph: '?' }} withText />
);

/** An alert's status as icon and word. */
export const AlertStatusLabel = ({ status }) => (
  <Labelled kind="astatus" item={ALERT_STATUSES.find((s) => s.id === status) || { id: status, label: status, glyph: '?' }} withText />
);

/** The flapping, silenced and escalation-level markers of an alert. */
export function AlertMarkers({ alert }) {
  const silenced = alert.silenced_until_ms && alert.silenced_until_ms > Date.now() && alert.status !== 'closed';
  return (
    <>
      {alert.flapping && (
        <span class="marker marker-flapping" title={t('It closed and reopened several times within the flapping window')}>
          <span aria-hidden="true">↯ </span>{t('Flapping')}
        </span>
      )}
      {silenced && (
        <span class="marker marker-silenced" title={t('Silenced until {time}', { time: time(alert.silenced_until_ms) })}>
          <span aria-hidden="true">⊘ </span>
          {t('Silenced until {time}', { time: shortTime(alert.silenced_until_ms) })}
        </span>
      )}
      {alert.escalation_level > 0 && alert.status !== 'closed' && (
        <span class="marker marker-escalated" title={t('How many times it was escalated')}>
          {t('Level {n}', { n: alert.escalation_level })}
        </span>
      )}
    </>
  );
}

/** Tells the menu's counts and the attention panel that alerts changed here. */
export const alertsChanged = () => window.dispatchEvent(new Event('opk-alerts'));

/** What the alert is about: "subscription sub-42". */
export const relatedOf = (a) => (a.related_type ? `${a.related_type} ${a.related_id}` : '—');

/**
 * An alert source's title from its manifest in the operator's language (the
 * sources are listed with the job types, GET /api/v1/job-types), 'Custom' for
 * the alerts operators create, else its id.
 */
export function sourceTitle(ctx, id) {
  if (id === 'custom') return t('Custom');
  return manifestText(ctx.types.get(id), 'title') || id;
}

/** An alert source's title with its id under it when they differ, its description as the hover text. */
export function SourceName({ ctx, id }) {
  const title = sourceTitle(ctx, id);
  return (
    <span class="source-name" title={manifestText(ctx.types.get(id), 'description') || undefined}>
      <span data-testid="alert-source">{title}</span>
      {title !== id && id !== 'custom' && <span class="hint mono"> {id}</span>}
    </span>
  );
}

/** Polls the caller's alert counts (GET /api/v1/alerts/counts). */
export function useAlertCounts(seconds, deps = []) {
  return usePoll(() => api('/api/v1/alerts/counts'), seconds, deps);
}

/** Why this caller may not create alerts, or '' when they may. */
export function createRefusal(ctx) {
  return ctx.can('alerts.create') ? '' : t('Your role ({role}) may not create alerts.', { role: ctx.me.role });
}

/** A custom alert: severity, title, message, the node it concerns and an area. */
function CreateDialog({ scopes, onClose }) {
  const ctx = useSession();
  const [severity, setSeverity] = useState('warning');
  const [title, setTitle] = useState('');
  const [message, setMessage] = useState('');
  const [scope, setScope] = useState(ctx.me.scope);
  const [area, setArea] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    const body = { severity, title: title.trim(), message: message.trim(), scope: scope.trim() };
    if (area.trim()) body.area = area.trim();
    run(async () => {
      const r = await api('/api/v1/alerts', { method: 'POST', body });
      alertsChanged();
      navigate(`/administration/alerts/${r.alert.id}`);
    });
  };
  return (
    <Dialog title={t('Create an alert')} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <p class="hint">{t('A custom alert, raised by you, stays open until someone closes it with a reason.')}</p>
        <div class="field-row">
          <div class="field">
            <label for="ca-severity">{t('Severity')}</label>
            <select id="ca-severity" value={severity} onChange={(e) => setSeverity(e.currentTarget.value)}>
              {SEVERITIES.map((s) => (
                <option value={s.id}>{tr(s.word)}</option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="ca-area">
              {t('Area')} <span class="hint">{t('optional, such as billing')}</span>
            </label>
            <input id="ca-area" value={area} onInput={(e) => setArea(e.currentTarget.value)} />
          </div>
        </div>
        <div class="field">
          <label for="ca-title">{t('Title (required)')}</label>
          <input id="ca-title" required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ca-message">{t('Message')}</label>
          <textarea id="ca-message" rows={3} value={message} onInput={(e) => setMessage(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ca-scope">
            {t('Scope')} <span class="hint">the node it concerns, at or under yours ({ctx.me.scope}), such as tenant:acme</span>
          </label>
          <input id="ca-scope" list="ca-scopes" required spellcheck={false} value={scope} onInput={(e) => setScope(e.currentTarget.value)} />
          <datalist id="ca-scopes">
            {scopes.map((s) => (
              <option value={s} />
            ))}
          </datalist>
        </div>
        <FormActions
          error={error}
          busy={busy}
          disabled={busy || !title.trim() || !scope.trim()}
          onClose={onClose}
          submit={t('Create alert')}
          working={t('Creating…')}
        />
      </form>
    </Dialog>
  );
}

/** The counts at the top: one button per severity, pressing it filters by it. */
function SeverityCounts({ counts, value, onChange }) {
  const by = counts?.by_severity || {};
  return (
    <div class="sev-counts" role="group" aria-label={t('Alerts not closed, by severity')}>
      {SEVERITIES.map((s) => (
        <button
          type="button"
          class={`sev-count severity-${s.id} ${value === s.id ? 'on' : ''}`}
          aria-pressed={value === s.id ? 'true' : 'false'}
          title={value === s.id ? t('Show every severity') : t('Show only {severity} alerts', { severity: tr(s.word).toLowerCase() })}
          onClick={() => onChange(value === s.id ? '' : s.id)}
        >
          <span class="sev-glyph" aria-hidden="true">
            {s.glyph}
          </span>{' '}
          {tr(s.word)} <strong data-testid={`count-${s.id}`}>{counts ? by[s.id] || 0 : '…'}</strong>
        </button>
      ))}
      {counts && (
        <span class="hint">
          {t('{critical} critical not closed · {escalated} escalated', { critical: counts.open_critical, escalated: counts.escalated })}
        </span>
      )}
    </div>
  );
}

/** Toggles for the statuses shown (each a pressed/unpressed button with its icon and word). */
function AlertStatusToggles({ value, onChange }) {
  return (
    <div class="toggles" role="group" aria-label={t('Filter alerts by status')}>
      {ALERT_STATUSES.map((s) => {
        const on = value.includes(s.id);
        return (
          <button
            type="button"
            class={`toggle ${on ? 'on' : ''}`}
            aria-pressed={on ? 'true' : 'false'}
            title={on ? t('Hide: {what}', { what: tr(s.word) }) : t('Show: {what}', { what: tr(s.word) })}
            onClick={() => onChange(on ? value.filter((v) => v !== s.id) : [...value, s.id])}
          >
            <span class={`astatus-${s.id}`} aria-hidden="true">
              {s.glyph}
            </span>{' '}
            {tr(s.word)}
          </button>
        );
      })}
    </div>
  );
}

export function AlertsPage() {
  const ctx = useSession();
  const [statuses, setStatuses] = useState(NOT_CLOSED);
  const [severity, setSeverity] = useState('');
  const [source, setSource] = useState('');
  const [sort, setSort] = useState('-last_seen');
  const [typed, setTyped] = useState({ q: '', area: '', scope: '' });
  const [dialog, setDialog] = useState(false);
  useEffect(() => {
    document.title = t('{page} · Opskernel', { page: t('Alerts') });
  }, []);
  const text = useSettled({ q: typed.q.trim(), area: typed.area.trim(), scope: typed.scope.trim() });
  const filter = { status: statuses.join(','), severity, source, sort, ...text };
  const key = JSON.stringify(filter);
  const [counts] = useAlertCounts(ctx.settings.poll_seconds);
  // The first page is polled; the pages after it are read on request.
  const [data, error] = usePoll(
    () => (statuses.length ? api(`/api/v1/alerts${query({ ...filter, limit: PAGE })}`) : Promise.resolve({ alerts: [], next_cursor: null })),
    ctx.settings.poll_seconds,
    [key],
  );
  const pages = useCursorPages(key, data, 'alerts', (cursor) => api(`/api/v1/alerts${query({ ...filter, limit: PAGE, cursor })}`));
  const { items } = pages;
  const sources = [...new Set([...Object.keys(counts?.by_source || {}), 'custom', ...(source ? [source] : [])])].sort();
  const scopes = [...new Set([ctx.me.scope, ...items.map((a) => a.scope)])].sort();
  const areas = [...new Set(items.map((a) => a.area).filter(Boolean))].sort();
  const refusal = createRefusal(ctx);
  return (
    <section aria-labelledby="alerts-title">
      <div class="page-head">
        <div>
          <h1 id="alerts-title">{t('Alerts')}</h1>
          <p class="sub">
            {t('What needs an operator, at or under {scope}. Times in {zone}.', { scope: ctx.me.scope, zone: zone() })}
          </p>
        </div>
        <div class="tools">
          <button
            type="button"
            class="primary"
            disabled={!!refusal}
            aria-describedby={refusal ? 'create-why' : undefined}
            onClick={() => setDialog(true)}
          >
            {t('Create alert')}
          </button>
        </div>
      </div>
      {refusal && (
        <p id="create-why" class="hint">
          {refusal}
        </p>
      )}
      <SeverityCounts counts={counts} value={severity} onChange={setSeverity} />
      <div class="tools filters">
        <AlertStatusToggles value={statuses} onChange={setStatuses} />
        <ChoiceFilter
          id="alert-severity"
          label={t('Severity')}
          all={t('All severities')}
          choices={SEVERITIES.map((s) => s.id)}
          labelOf={(id) => tr(SEVERITIES.find((s) => s.id === id).word)}
          value={severity}
          onChange={setSeverity}
        />
        <ChoiceFilter
          id="alert-source"
          label={t('Source')}
          all={t('All sources')}
          choices={sources}
          labelOf={(id) => sourceTitle(ctx, id)}
          value={source}
          onChange={setSource}
        />
        <SuggestFilter
          id="alert-area"
          label={t('Area')}
          list="alert-areas"
          choices={areas}
          class="short"
          placeholder={t('Area')}
          value={typed.area}
          onInput={(v) => setTyped({ ...typed, area: v })}
        />
        <SuggestFilter
          id="alert-scope"
          label={t('Scope node (alerts at or under it)')}
          list="alert-scopes"
          choices={scopes}
          class="short"
          spellcheck={false}
          placeholder={t('Scope node')}
          title={t('A node such as tenant:acme: the alerts at or under it')}
          value={typed.scope}
          onInput={(v) => setTyped({ ...typed, scope: v })}
        />
        <TextFilter
          id="alert-q"
          label={t('Filter alerts by text in title or message')}
          placeholder={t('Text in title or message')}
          value={typed.q}
          onInput={(v) => setTyped({ ...typed, q: v })}
        />
        <label class="visually-hidden" for="alert-sort">
          {t('Sort')}
        </label>
        <select id="alert-sort" value={sort} onChange={(e) => setSort(e.currentTarget.value)}>
          {SORTS.map(([v, label]) => (
            <option value={v}>{tr(label)}</option>
          ))}
        </select>
      </div>
      <Message error={error} />
      <Table
        name="alerts"
        caption={data ? t('Alerts, {n} shown', { n: items.length }) : t('Alerts, loading')}
        columns={[
          t('Severity'),
          t('Status'),
          t('Alert'),
          t('Source'),
          t('Area'),
          t('About'),
          t('Scope'),
          t('Last seen'),
          t('First seen'),
          <th scope="col" title={t('Occurrences')}>
            {t('Seen')}
          </th>,
        ]}
      >
        {items.map((a) => (
          <tr key={a.id} data-alert-id={a.id}>
            <td>
              <SeverityLabel severity={a.severity} />
            </td>
            <td>
              <AlertStatusLabel status={a.status} />
            </td>
            <td class="alert-title">
              <Link href={`/administration/alerts/${a.id}`} title={a.message || a.title}>
                {a.title}
              </Link>
              <AlertMarkers alert={a} />
            </td>
            <td>
              <SourceName ctx={ctx} id={a.source} />
            </td>
            <td>{a.area || '—'}</td>
            <td class="desc" title={relatedOf(a)}>
              {relatedOf(a)}
            </td>
            <td class="desc" title={a.scope}>
              {a.scope}
            </td>
            <td title={time(a.last_seen_ms)}>{shortTime(a.last_seen_ms)}</td>
            <td title={time(a.first_seen_ms)}>{shortTime(a.first_seen_ms)}</td>
            <td>{number(a.occurrences)}</td>
          </tr>
        ))}
        <EmptyRow show={data && !items.length} cols={10}>
          {t('No alerts match. Change the filters, or show closed alerts too.')}
        </EmptyRow>
      </Table>
      <MorePager pages={pages} />
      {dialog && <CreateDialog scopes={scopes} onClose={() => setDialog(false)} />}
    </section>
  );
}
