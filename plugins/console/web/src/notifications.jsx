// Notifications (/administration/notifications): the groups of rules the
// caller may see, and a group (/administration/notifications/{id}) with its
// rules and their recent deliveries. Roles with notifications.manage create,
// rename and delete groups (with confirmation), and create, edit, enable,
// disable and delete rules; a template the server refuses is shown with its
// line and column beside the part that holds the error, and nothing is saved.
// Roles without it see no write buttons at all.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { msg, t, tp, tr } from './i18n.js';
import { usePoll } from './jobs.jsx';
import { zone } from './alerts.jsx';
import {
  CloseActions,
  Dialog,
  duration,
  EmptyRow,
  FormActions,
  HiddenHead,
  Link,
  Message,
  NotAllowed,
  Table,
  navigate,
  number,
  shortTime,
  time,
  useAction,
  useSession,
  useWindowEvents,
} from './ui.jsx';
import { useFeatureNames } from './features.js';

const BASE = '/api/v1/notifications';

/** The event kinds the kernel documents (docs/events.md), by family. */
export const EVENT_KINDS = [
  {
    family: msg('Runs'),
    kinds: [
      ['run.completed', msg('Completed')],
      ['run.warning', msg('Completed with warnings')],
      ['run.failed', msg('Failed')],
      ['run.cancelled', msg('Cancelled')],
      ['run.timed_out', msg('Timed out')],
      ['run.recovered', msg('Recovered after a stop')],
      ['run.over_target', msg('Over its target duration')],
      ['run.stale', msg('Stale')],
      ['run.*', msg('Every run event')],
    ],
  },
  {
    family: msg('Alerts'),
    kinds: [
      ['alert.opened', msg('Opened')],
      ['alert.updated', msg('Severity changed')],
      ['alert.escalated', msg('Escalated')],
      ['alert.acknowledged', msg('Acknowledged')],
      ['alert.silenced', msg('Silenced')],
      ['alert.closed', msg('Closed')],
      ['alert.*', msg('Every alert event')],
    ],
  },
  { family: msg('Everything'), kinds: [['*', msg('Every event, plugins’ too')]] },
];
const DOCUMENTED = new Set(EVENT_KINDS.flatMap((f) => f.kinds.map(([k]) => k)));
/** Every documented kind, for filters and lists of suggestions. */
export const KIND_NAMES = [...DOCUMENTED];

// A delivery's states, each with its word.
const DELIVERY_STATES = {
  pending: msg('Waiting'),
  sending: msg('Sending'),
  delivered: msg('Delivered'),
  failed: msg('Failed for good'),
  dead: msg('Out of attempts'),
  skipped: msg('Skipped (endpoint disabled)'),
  suppressed: msg('Held (endpoint suppressed)'),
};
// An attempt's outcome, each with its word.
const ATTEMPT_OUTCOMES = {
  delivered: msg('delivered'),
  failed: msg('failed'),
  refused: msg('refused'),
  gone: msg('gone (410)'),
  interrupted: msg('interrupted'),
};
const REPLAYABLE = new Set(['failed', 'dead', 'skipped']);
const PARTS = [
  ['subject', msg('Subject')],
  ['body', msg('Body (plain text)')],
  ['html_body', msg('HTML body (e-mail only)')],
];

/** Why this caller may not change notifications, or '' when they may. */
const mayManage = (ctx) => ctx.can('notifications.manage');

/** Comma- or line-separated text as a list of its non-empty items. */
const listOf = (text) =>
  text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);

/** Tells the pages showing notification data that it changed here. */
const changed = () => window.dispatchEvent(new Event('opk-notifications'));

/** Re-renders (through `reload`) when notification data changes elsewhere on the page. */
function useChanges(reload) {
  useWindowEvents(['opk-notifications'], reload, [reload]);
}

/**
 * The notification channels the kernel has loaded, from the plugins'
 * manifests (GET /api/v1/plugins, plugins.read); null when the caller may
 * not list the plugins.
 */
function useChannels() {
  const ctx = useSession();
  // undefined while they are read; null when they cannot be.
  const [channels, setChannels] = useState(ctx.can('plugins.read') ? undefined : null);
  useEffect(() => {
    if (!ctx.can('plugins.read')) return;
    api('/api/v1/plugins')
      .then((d) => {
        const ids = [];
        for (const p of d.plugins || [])
          if (p.manifest && !p.reason)
            for (const c of p.manifest.notification_channels || []) ids.push({ id: c.id || c, plugin: p.id, title: c.title || c.name || '' });
        setChannels(ids);
      })
      .catch(() => setChannels(null));
  }, []);
  return channels;
}

// --- Groups ------------------------------------------------------------------

/** Create a group, or change one's name, scope and description. */
function GroupDialog({ group, onClose, onSaved }) {
  const ctx = useSession();
  const editing = !!group;
  const [id, setId] = useState(group?.id || '');
  const [name, setName] = useState(group?.name || '');
  const [scope, setScope] = useState(group?.scope || ctx.me.scope);
  const [description, setDescription] = useState(group?.description || '');
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    const body = { name: name.trim(), scope: scope.trim(), description: description.trim() };
    run(async () => {
      const g = editing
        ? await api(`${BASE}/groups/${encodeURIComponent(group.id)}`, { method: 'PATCH', body })
        : await api(`${BASE}/groups`, { method: 'POST', body: { id: id.trim(), ...body } });
      changed();
      onSaved(g);
    });
  };
  return (
    <Dialog title={editing ? t('Rename group {id}', { id: group.id }) : t('Create a notification group')} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        {!editing && (
          <div class="field">
            <label for="ng-id">
              {t('Id (required)')} <span class="hint">{t("lower-case letters, digits, '.', '_' or '-'; cannot be changed later")}</span>
            </label>
            <input id="ng-id" required spellcheck={false} maxLength={64} value={id} onInput={(e) => setId(e.currentTarget.value)} />
          </div>
        )}
        <div class="field">
          <label for="ng-name">{t('Name (required)')}</label>
          <input id="ng-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ng-scope">
            {t('Scope')} <span class="hint">{t('the node that owns the group, at or under yours ({scope})', { scope: ctx.me.scope })}</span>
          </label>
          <input id="ng-scope" required spellcheck={false} value={scope} onInput={(e) => setScope(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ng-description">{t('Description')}</label>
          <textarea id="ng-description" rows={2} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </div>
        <FormActions
          error={error}
          busy={busy}
          disabled={busy || !name.trim() || !scope.trim() || (!editing && !id.trim())}
          onClose={onClose}
          submit={editing ? t('Save group') : t('Create group')}
          working={t('Saving…')}
        />
      </form>
    </Dialog>
  );
}

/** "Delete X?" with what it removes; the server's refusal (409) is shown in it. */
function ConfirmDialog({ title, children, confirm, onConfirm, onClose }) {
  const { busy, error, run } = useAction();
  return (
    <Dialog title={title} onClose={onClose}>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          run(onConfirm);
        }}
      >
        {children}
        <FormActions error={error} busy={busy} onClose={onClose} submit={confirm} danger />
      </form>
    </Dialog>
  );
}

export function NotificationsPage() {
  const ctx = useSession();
  const name = useFeatureNames(ctx)('notifications', t('Notifications'));
  const [dialog, setDialog] = useState(false);
  useEffect(() => {
    document.title = t('{page} · Opskernel', { page: name });
  }, [name]);
  const may = ctx.can('notifications.read');
  const [data, error, reload] = usePoll(() => (may ? api(`${BASE}/groups`) : Promise.resolve(null)), ctx.settings.poll_seconds, []);
  useChanges(reload);
  if (!may)
    return <NotAllowed title={t('Notifications')} role={ctx.me.role} what={t('see the notification groups')} />;
  const groups = data?.groups || [];
  return (
    <section aria-labelledby="notif-title">
      <div class="page-head">
        <div>
          <h1 id="notif-title">{name}</h1>
          <p class="sub">
            {t("Groups of rules that send the kernel's events as e-mails and webhooks, at or under {scope}. Times in {zone}.", {
              scope: ctx.me.scope,
              zone: zone(),
            })}
          </p>
        </div>
        {mayManage(ctx) && (
          <div class="tools">
            <button type="button" class="primary" onClick={() => setDialog(true)}>
              {t('Create group')}
            </button>
          </div>
        )}
      </div>
      <Message error={error} />
      <Table
        name="groups"
        caption={data ? t('Notification groups, {n} shown', { n: groups.length }) : t('Notification groups, loading')}
        columns={[t('Group'), t('Id'), t('Scope'), t('Description'), t('Changed')]}
      >
        {groups.map((g) => (
          <tr key={g.id} data-group-id={g.id}>
            <td>
              <Link href={`/administration/notifications/${encodeURIComponent(g.id)}`}>{g.name}</Link>
            </td>
            <td class="mono">{g.id}</td>
            <td>{g.scope}</td>
            <td class="desc" title={g.description}>
              {g.description || '—'}
            </td>
            <td title={time(g.updated_ms)}>{shortTime(g.updated_ms)}</td>
          </tr>
        ))}
        <EmptyRow show={data && !groups.length} cols={5}>
          {t('No notification groups yet. Create one with Create group, or ask an administrator.')}
        </EmptyRow>
      </Table>
      {dialog && (
        <GroupDialog
          onClose={() => setDialog(false)}
          onSaved={(g) => {
            setDialog(false);
            navigate(`/administration/notifications/${encodeURIComponent(g.id)}`);
          }}
        />
      )}
    </section>
  );
}

// --- Rules -------------------------------------------------------------------

/** A rule's form values from a rule as the API shows it (or a new rule's). */
function ruleForm(rule, channels) {
  const events = rule?.events || ['run.failed'];
  const f = rule?.filter || {};
  const t = rule?.template || {};
  return {
    name: rule?.name || '',
    events: events.filter((k) => DOCUMENTED.has(k)),
    otherEvents: events.filter((k) => !DOCUMENTED.has(k)).join(', '),
    jobTypes: (f.job_types || []).join(', '),
    scheduledJobs: (f.scheduled_jobs || []).join(', '),
    alertSources: (f.alert_sources || []).join(', '),
    minSeverity: f.min_severity || '',
    scope: f.scope || '',
    channel: rule?.channel || (channels && channels.length ? channels[0].id : 'email'),
    recipients: (rule?.recipients || [{ to: '' }]).map((r) => {
      const x = typeof r === 'string' ? { to: r } : r;
      const secrets = (x.options?.secrets || []).join(', ');
      return { to: x.to, options: x.options, secrets, shownSecrets: secrets };
    }),
    subject: t.subject || '',
    body: t.body || '',
    html_body: t.html_body || '',
    locale: rule?.locale || 'en',
    enabled: rule ? rule.enabled : true,
  };
}

/** The API's rule body from the form's values. */
function ruleBody(v) {
  const filter = {};
  const put = (k, list) => list.length && (filter[k] = list);
  put('job_types', listOf(v.jobTypes));
  put('scheduled_jobs', listOf(v.scheduledJobs));
  put('alert_sources', listOf(v.alertSources));
  if (v.minSeverity) filter.min_severity = v.minSeverity;
  if (v.scope.trim()) filter.scope = v.scope.trim();
  const template = {};
  for (const [k] of PARTS) if (v[k]) template[k] = v[k];
  const recipients = v.recipients
    .filter((r) => r.to.trim())
    .map((r) => {
      const to = r.to.trim();
      if (v.channel !== 'webhook') return to;
      // Secrets are shown masked; sent back unchanged, the stored ones stay.
      if (r.options && r.secrets === r.shownSecrets) return { to, options: r.options };
      const secrets = listOf(r.secrets);
      return secrets.length ? { to, options: { ...(r.options || {}), secrets } } : to;
    });
  return {
    name: v.name.trim(),
    events: [...v.events, ...listOf(v.otherEvents)],
    filter,
    channel: v.channel,
    recipients,
    template,
    locale: v.locale,
    enabled: v.enabled,
  };
}

/** "template.body" or "body" -> "body". */
const partOf = (field) => String(field || '').replace(/^template\./, '');

/** Where a template error is: "Line 3, column 14: unknown tag 'endfo'". */
const located = (e) => `${e.line ? t('Line {line}, column {column}: ', { line: e.line, column: e.column }) : ''}${e.message}`;

/** The event kinds, as checkboxes by family, and other kinds or patterns as text. */
function EventKinds({ value, other, onChange, onOther }) {
  return (
    <fieldset class="kinds">
      <legend>{t('Event kinds (at least one)')}</legend>
      {EVENT_KINDS.map((f) => (
        <div class="kind-family" role="group" aria-label={tr(f.family)} key={f.family}>
          <span class="kind-family-name" aria-hidden="true">
            {tr(f.family)}
          </span>
          {f.kinds.map(([k, label]) => {
            const id = `nr-kind-${k.replace(/[^a-z_]/g, '-')}`;
            return (
              <div class="field check" key={k}>
                <input
                  id={id}
                  type="checkbox"
                  checked={value.includes(k)}
                  onChange={(e) => onChange(e.currentTarget.checked ? [...value, k] : value.filter((x) => x !== k))}
                />
                <label for={id}>
                  {tr(label)} <code class="hint">{k}</code>
                </label>
              </div>
            );
          })}
        </div>
      ))}
      <div class="field">
        <label for="nr-other-kinds">
          {t('Other kinds or patterns')} <span class="hint">{t('comma-separated, such as plugin.database-backup.*')}</span>
        </label>
        <input id="nr-other-kinds" spellcheck={false} value={other} onInput={(e) => onOther(e.currentTarget.value)} />
      </div>
    </fieldset>
  );
}

/** The recipients: one row each; a webhook's signing secrets beside its URL. */
function Recipients({ channel, value, onChange }) {
  const webhook = channel === 'webhook';
  const set = (i, patch) => onChange(value.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset>
      <legend>{t('Recipients (at least one)')}</legend>
      <p class="hint">
        {webhook
          ? t('Each an https URL; signing secrets (whsec_…, two during a rotation) are stored and never shown again.')
          : channel === 'email'
            ? t('Each a bare e-mail address, such as ops@example.com.')
            : t('Each an address the channel accepts.')}
      </p>
      {value.map((r, i) => (
        <div class="field-row recipient" key={i}>
          <div class="field grow">
            <label for={`nr-to-${i}`}>{webhook ? t('URL {n}', { n: i + 1 }) : t('Recipient {n}', { n: i + 1 })}</label>
            <input id={`nr-to-${i}`} spellcheck={false} value={r.to} onInput={(e) => set(i, { to: e.currentTarget.value })} />
          </div>
          {webhook && (
            <div class="field grow">
              <label for={`nr-secrets-${i}`}>{t('Signing secrets for recipient {n}', { n: i + 1 })}</label>
              <input
                id={`nr-secrets-${i}`}
                spellcheck={false}
                autocomplete="off"
                placeholder={t('whsec_…')}
                value={r.secrets}
                onInput={(e) => set(i, { secrets: e.currentTarget.value })}
              />
            </div>
          )}
          <button
            type="button"
            class="icon-button"
            aria-label={t('Remove recipient {n}', { n: i + 1 })}
            title={t('Remove')}
            disabled={value.length === 1}
            onClick={() => onChange(value.filter((_, j) => j !== i))}
          >
            ✕
          </button>
        </div>
      ))}
      <button type="button" onClick={() => onChange([...value, { to: '', secrets: '', shownSecrets: '' }])}>
        {t('Add recipient')}
      </button>
    </fieldset>
  );
}

/** Create a rule in `group`, or edit `rule`. */
function RuleDialog({ group, rule, onClose, onSaved }) {
  const ctx = useSession();
  const channels = useChannels();
  const [v, setV] = useState(() => ruleForm(rule, null));
  const [templateErrors, setTemplateErrors] = useState([]);
  const [checked, setChecked] = useState('');
  const { busy, error, setError, run } = useAction();
  const set = (patch) => setV((old) => ({ ...old, ...patch }));
  useEffect(() => {
    // A new rule takes the first channel the kernel lists, once known.
    if (!rule && channels && channels.length && !channels.some((c) => c.id === v.channel)) set({ channel: channels[0].id });
  }, [channels]);
  const refused = (err) => {
    const list = err?.problem?.errors;
    if (Array.isArray(list) && list.length) {
      setTemplateErrors(list.map((e) => ({ ...e, part: partOf(e.field) })));
      setError(new Error(t('Not saved: the template has errors, shown beside each part.')));
    } else {
      setTemplateErrors([]);
      setError(err);
    }
  };
  const submit = (e) => {
    e.preventDefault();
    setChecked('');
    run(async () => {
      try {
        const body = ruleBody(v);
        const saved = rule
          ? await api(`${BASE}/rules/${encodeURIComponent(rule.id)}`, { method: 'PUT', body })
          : await api(`${BASE}/groups/${encodeURIComponent(group.id)}/rules`, { method: 'POST', body });
        setTemplateErrors([]);
        changed();
        onSaved(saved);
      } catch (err) {
        refused(err);
      }
    });
  };
  const check = () => {
    setChecked('');
    run(async () => {
      try {
        await api(`${BASE}/templates/check`, { method: 'POST', body: { subject: v.subject, body: v.body, html_body: v.html_body } });
        setTemplateErrors([]);
        setChecked(t('The template parses.'));
      } catch (err) {
        refused(err);
      }
    });
  };
  const known = (channels || []).map((c) => c.id);
  const channelChoices = [...new Set([...known, ...(v.channel && !known.includes(v.channel) ? [v.channel] : [])])];
  const types = [...ctx.types.keys()].sort();
  return (
    <Dialog title={rule ? t('Edit rule {rule}', { rule: rule.name || rule.id }) : t('Add a rule to {group}', { group: group.name })} onClose={onClose} wide>
      <form class="form" onSubmit={submit} noValidate>
        <div class="field-row">
          <div class="field grow">
            <label for="nr-name">{t('Name')}</label>
            <input id="nr-name" value={v.name} onInput={(e) => set({ name: e.currentTarget.value })} />
          </div>
          <div class="field">
            <label for="nr-channel">{t('Channel')}</label>
            {channels !== null ? (
              <select id="nr-channel" value={v.channel} onChange={(e) => set({ channel: e.currentTarget.value })}>
                {channelChoices.map((c) => (
                  <option value={c}>{c}</option>
                ))}
              </select>
            ) : (
              <>
                <input
                  id="nr-channel"
                  list="nr-channels"
                  spellcheck={false}
                  value={v.channel}
                  onInput={(e) => set({ channel: e.currentTarget.value.trim() })}
                />
                <datalist id="nr-channels">
                  <option value="email" />
                  <option value="webhook" />
                </datalist>
              </>
            )}
          </div>
          <div class="field">
            <label for="nr-locale">{t('Language of the default templates')}</label>
            <select id="nr-locale" value={v.locale} onChange={(e) => set({ locale: e.currentTarget.value })}>
              <option value="en">{t('English (en)')}</option>
              <option value="sv">{t('Swedish (sv)')}</option>
            </select>
          </div>
        </div>
        {channels && !channels.length && (
          <p class="message notice">{t('The kernel has no notification channel loaded: a rule cannot be saved until one is.')}</p>
        )}
        <EventKinds value={v.events} other={v.otherEvents} onChange={(events) => set({ events })} onOther={(otherEvents) => set({ otherEvents })} />
        <fieldset>
          <legend>{t('Filter (each one that is set must hold)')}</legend>
          <div class="params">
            <div class="field">
              <label for="nr-job-types">
                {t('Job types')} <span class="hint">{t('comma-separated')}</span>
              </label>
              <input id="nr-job-types" list="nr-types" spellcheck={false} value={v.jobTypes} onInput={(e) => set({ jobTypes: e.currentTarget.value })} />
              <datalist id="nr-types">
                {types.map((t) => (
                  <option value={t} />
                ))}
              </datalist>
            </div>
            <div class="field">
              <label for="nr-scheduled-jobs">
                {t('Scheduled jobs')} <span class="hint">{t('comma-separated ids')}</span>
              </label>
              <input id="nr-scheduled-jobs" spellcheck={false} value={v.scheduledJobs} onInput={(e) => set({ scheduledJobs: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for="nr-sources">
                {t('Alert sources')} <span class="hint">{t('comma-separated')}</span>
              </label>
              <input id="nr-sources" spellcheck={false} value={v.alertSources} onInput={(e) => set({ alertSources: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for="nr-severity">{t('Alerts at least this severe')}</label>
              <select id="nr-severity" value={v.minSeverity} onChange={(e) => set({ minSeverity: e.currentTarget.value })}>
                <option value="">{t('Any severity')}</option>
                <option value="info">{t('Info')}</option>
                <option value="warning">{t('Warning')}</option>
                <option value="critical">{t('Critical')}</option>
              </select>
            </div>
            <div class="field">
              <label for="nr-scope">
                {t('Scope node')} <span class="hint">{t("events at or under it; inside the group's ({scope}), which is the default", { scope: group.scope })}</span>
              </label>
              <input id="nr-scope" spellcheck={false} placeholder={group.scope} value={v.scope} onInput={(e) => set({ scope: e.currentTarget.value })} />
            </div>
          </div>
        </fieldset>
        <Recipients channel={v.channel} value={v.recipients} onChange={(recipients) => set({ recipients })} />
        <fieldset>
          <legend>{t("Template (Liquid; a part left empty uses the event kind's default)")}</legend>
          {PARTS.map(([k, label]) => {
            const errs = templateErrors.filter((e) => e.part === k);
            const id = `nr-${k}`;
            const input = {
              id,
              value: v[k],
              spellcheck: false,
              'aria-invalid': errs.length ? 'true' : undefined,
              'aria-describedby': errs.length ? `${id}-error` : undefined,
              onInput: (e) => set({ [k]: e.currentTarget.value }),
            };
            return (
              <div class="field" key={k}>
                <label for={id}>{tr(label)}</label>
                {k === 'subject' ? <input {...input} /> : <textarea class="template" rows={k === 'body' ? 6 : 4} {...input} />}
                {errs.length > 0 && (
                  <p id={`${id}-error`} class="field-error" data-testid={`template-error-${k}`}>
                    {errs.map(located).join('; ')}
                  </p>
                )}
              </div>
            );
          })}
          <div class="tools">
            <button type="button" disabled={busy} onClick={check}>
              {t('Check template')}
            </button>
            {checked && (
              <span class="hint" role="status">
                {checked}
              </span>
            )}
          </div>
        </fieldset>
        <div class="field check">
          <input id="nr-enabled" type="checkbox" checked={v.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} />
          <label for="nr-enabled">{t('Enabled: a disabled rule is kept but sends nothing')}</label>
        </div>
        <FormActions error={error} busy={busy} onClose={onClose} submit={rule ? t('Save rule') : t('Add rule')} working={t('Saving…')} />
      </form>
    </Dialog>
  );
}

/** What a rule's filter holds, in a few words. */
function filterText(f = {}) {
  const parts = [];
  if (f.job_types?.length) parts.push(t('job types {list}', { list: f.job_types.join(', ') }));
  if (f.scheduled_jobs?.length) parts.push(t('jobs {list}', { list: f.scheduled_jobs.join(', ') }));
  if (f.alert_sources?.length) parts.push(t('sources {list}', { list: f.alert_sources.join(', ') }));
  if (f.min_severity) parts.push(t('{severity} or worse', { severity: f.min_severity }));
  if (f.scope) parts.push(t('under {scope}', { scope: f.scope }));
  return parts.join('; ') || '—';
}

function RulesTable({ rules, manage, onEdit, onDelete, onToggle, busyId }) {
  return (
    <Table
      name="rules"
      caption={t('Rules of the group')}
      columns={[t('Rule'), t('Events'), t('Filter'), t('Channel'), t('Recipients'), t('Language'), t('Enabled'), manage && <HiddenHead label={t('Actions')} />]}
    >
      {rules.map((r) => {
        const label = r.name || r.id;
        return (
          <tr key={r.id} data-rule-id={r.id}>
            <td>
              <strong>{label}</strong>
              {r.name && <div class="hint mono">{r.id}</div>}
            </td>
            <td class="wrap">{r.events.join(', ')}</td>
            <td class="wrap">{filterText(r.filter)}</td>
            <td>{r.channel}</td>
            <td class="wrap">{r.recipients.map((x) => (typeof x === 'string' ? x : x.to)).join(', ')}</td>
            <td>{r.locale}</td>
            <td>{r.enabled ? t('Yes') : t('No')}</td>
            {manage && (
              <td>
                <div class="row-actions">
                <button type="button" aria-label={t('Edit {rule}', { rule: label })} onClick={() => onEdit(r)}>
                  {t('Edit')}
                </button>
                <button type="button" aria-label={r.enabled ? t('Disable {rule}', { rule: label }) : t('Enable {rule}', { rule: label })} disabled={busyId === r.id} onClick={() => onToggle(r)}>
                  {r.enabled ? t('Disable') : t('Enable')}
                </button>
                <button type="button" aria-label={t('Delete {rule}', { rule: label })} onClick={() => onDelete(r)}>
                  {t('Delete')}
                </button>
                </div>
              </td>
            )}
          </tr>
        );
      })}
      <EmptyRow show={!rules.length} cols={manage ? 8 : 7}>
        {t('No rules: this group sends nothing yet. Add one with Add rule, or ask an administrator.')}
      </EmptyRow>
    </Table>
  );
}

// --- Deliveries --------------------------------------------------------------

/** A delivery's state as a word, with the states that need an operator marked. */
export function DeliveryState({ state }) {
  const bad = state === 'failed' || state === 'dead';
  return <span class={`dstate dstate-${state}`}>{bad ? <span aria-hidden="true">✕ </span> : null}{DELIVERY_STATES[state] ? tr(DELIVERY_STATES[state]) : state}</span>;
}

/** A delivery's every attempt (time, outcome, code, latency, detail). */
export function AttemptsTable({ attempts }) {
  if (!attempts?.length) return <p class="hint">{t('No attempt yet.')}</p>;
  return (
    <Table name="attempts" caption={t('Attempts, oldest first')} columns={['#', t('Time'), t('Outcome'), t('Code'), t('Latency'), t('Detail')]}>
      {attempts.map((a) => (
        <tr key={a.attempt}>
          <td>{a.attempt}</td>
          <td>{time(a.time_ms)}</td>
          <td>{ATTEMPT_OUTCOMES[a.outcome] ? tr(ATTEMPT_OUTCOMES[a.outcome]) : a.outcome}</td>
          <td>{a.code || '—'}</td>
          <td>{a.latency_ms !== undefined && a.latency_ms !== null ? duration(a.latency_ms) : '—'}</td>
          <td class="wrap">{a.detail || '—'}</td>
        </tr>
      ))}
    </Table>
  );
}

/** One delivery with its message and attempts; Replay where it may go again. */
function DeliveryDialog({ id, onClose }) {
  const ctx = useSession();
  const [d, setD] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const action = useAction();
  const load = () =>
    api(`${BASE}/deliveries/${encodeURIComponent(id)}`)
      .then((x) => (setD(x), setError(null)))
      .catch(setError);
  useEffect(() => {
    load();
  }, [id]);
  const replay = () =>
    action.run(async () => {
      await api(`${BASE}/deliveries/${encodeURIComponent(id)}/replay`, { method: 'POST' });
      setNotice(t('Sent again: the delivery is pending with the same id.'));
      changed();
      await load();
    });
  return (
    <Dialog title={t('Delivery {id}', { id })} onClose={onClose} drawer>
      <Message error={error || action.error} notice={notice} />
      {!d && !error && <p class="loading">{t('Loading…')}</p>}
      {d && (
        <>
          <dl class="facts">
            <dt>{t('State')}</dt>
            <dd>
              <DeliveryState state={d.state} />
            </dd>
            <dt>{t('Event')}</dt>
            <dd>
              {d.event.kind} · {d.event.subject} · {t('seq {seq}', { seq: d.event.seq })}
            </dd>
            <dt>{t('Rule')}</dt>
            <dd>{d.rule_id}</dd>
            <dt>{t('Channel')}</dt>
            <dd>{d.channel}</dd>
            <dt>{t('Recipient')}</dt>
            <dd>{d.recipient}</dd>
            <dt>{t('Scope')}</dt>
            <dd>{d.scope}</dd>
            <dt>{t('Created')}</dt>
            <dd>{time(d.created_ms)}</dd>
            <dt>{t('Last code')}</dt>
            <dd>{d.last_code ?? '—'}</dd>
            <dt>{t('Last detail')}</dt>
            <dd>{d.last_detail || '—'}</dd>
            {d.next_attempt_ms && (
              <>
                <dt>{t('Next attempt')}</dt>
                <dd>{time(d.next_attempt_ms)}</dd>
              </>
            )}
            {d.render_error && (
              <>
                <dt>{t('Template error')}</dt>
                <dd>
                  {d.render_error} {t('(the default template was sent)')}
                </dd>
              </>
            )}
          </dl>
          {mayManage(ctx) && REPLAYABLE.has(d.state) && (
            <div class="tools">
              <button type="button" class="primary" disabled={action.busy} onClick={replay}>
                {t('Replay')}
              </button>
            </div>
          )}
          <h3>{t('Attempts')}</h3>
          <AttemptsTable attempts={Array.isArray(d.attempts) ? d.attempts : []} />
          {d.message && (d.message.subject || d.message.body) && (
            <>
              <h3>{t('Message')}</h3>
              {d.message.subject && <p>{d.message.subject}</p>}
              {d.message.body && <pre class="details">{d.message.body}</pre>}
            </>
          )}
        </>
      )}
      <CloseActions onClose={onClose} />
    </Dialog>
  );
}

/**
 * The recent deliveries of a group's rules (each rule's newest, merged) or of
 * one rule, with a state filter.
 */
function Deliveries({ rules }) {
  const ctx = useSession();
  const [rule, setRule] = useState('');
  const [state, setState] = useState('');
  const [open, setOpen] = useState(null);
  const ids = rules.map((r) => r.id).join(',');
  const [data, error, reload] = usePoll(
    async () => {
      const chosen = rule ? [rule] : rules.map((r) => r.id);
      const pages = await Promise.all(chosen.map((id) => api(`${BASE}/deliveries${query({ rule: id, state, limit: 50 })}`)));
      return pages
        .flatMap((p) => p.deliveries)
        .sort((a, b) => b.created_ms - a.created_ms)
        .slice(0, 50);
    },
    ctx.settings.poll_seconds,
    [rule, state, ids],
  );
  useChanges(reload);
  const names = new Map(rules.map((r) => [r.id, r.name || r.id]));
  const items = data || [];
  return (
    <section aria-labelledby="deliveries-title">
      <div class="page-head">
        <h2 id="deliveries-title">{t('Recent deliveries')}</h2>
        <div class="tools">
          <label class="visually-hidden" for="dl-rule">
            {t('Deliveries of')}
          </label>
          <select id="dl-rule" value={rule} onChange={(e) => setRule(e.currentTarget.value)}>
            <option value="">{t('Every rule of the group')}</option>
            {rules.map((r) => (
              <option value={r.id}>{r.name || r.id}</option>
            ))}
          </select>
          <label class="visually-hidden" for="dl-state">
            {t('Delivery state')}
          </label>
          <select id="dl-state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">{t('Every state')}</option>
            {Object.keys(DELIVERY_STATES).map((s) => (
              <option value={s}>{tr(DELIVERY_STATES[s])}</option>
            ))}
          </select>
        </div>
      </div>
      <Message error={error} />
      <Table
        name="deliveries"
        caption={t('Deliveries, newest first')}
        columns={[
          t('Created'),
          t('Rule'),
          t('Event'),
          t('Channel'),
          t('Recipient'),
          t('State'),
          t('Attempts'),
          t('Last code'),
          t('Last detail'),
          <HiddenHead label={t('Details')} />,
        ]}
      >
        {items.map((d) => (
          <tr key={d.id} data-delivery-id={d.id}>
            <td title={time(d.created_ms)}>{shortTime(d.created_ms)}</td>
            <td>{names.get(d.rule_id) || d.rule_id}</td>
            <td>
              {d.event.kind} <span class="hint">{d.event.subject}</span>
            </td>
            <td>{d.channel}</td>
            <td class="desc" title={d.recipient}>
              {d.recipient}
            </td>
            <td>
              <DeliveryState state={d.state} />
            </td>
            <td>{number(d.attempts)}</td>
            <td>{d.last_code ?? '—'}</td>
            <td class="desc" title={d.last_detail}>
              {d.last_detail || '—'}
            </td>
            <td>
              <button type="button" aria-label={t('Details of delivery {id}', { id: d.id })} onClick={() => setOpen(d.id)}>
                {t('Details')}
              </button>
            </td>
          </tr>
        ))}
        <EmptyRow show={data && !items.length} cols={10}>
          {rules.length ? t('No deliveries match. Choose another rule or state.') : t('No rules, so no deliveries: add a rule to this group.')}
        </EmptyRow>
      </Table>
      {open && <DeliveryDialog id={open} onClose={() => setOpen(null)} />}
    </section>
  );
}

// --- A group -----------------------------------------------------------------

export function NotificationGroupPage({ id }) {
  const ctx = useSession();
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState('');
  const [toggling, setToggling] = useState('');
  const [toggleError, setToggleError] = useState(null);
  const [data, error, reload] = usePoll(() => api(`${BASE}/groups/${encodeURIComponent(id)}`), ctx.settings.poll_seconds, [id]);
  useChanges(reload);
  useEffect(() => {
    document.title = `${data ? data.name : id} · ${t('Notifications')} · Opskernel`;
  }, [id, data?.name]);
  const crumbs = (
    <p class="crumbs">
      <Link href="/administration/notifications">{t('Notifications')}</Link> /
    </p>
  );
  if (error && !data)
    return (
      <section>
        {crumbs}
        <h1>{t('Group {id}', { id })}</h1>
        <Message error={error} />
      </section>
    );
  if (!data) return <p class="loading">{t('Loading…')}</p>;
  const manage = mayManage(ctx);
  const rules = data.rules || [];
  const toggle = async (r) => {
    setToggling(r.id);
    setToggleError(null);
    try {
      await api(`${BASE}/rules/${encodeURIComponent(r.id)}`, { method: 'PUT', body: { ...r, enabled: !r.enabled } });
      setNotice(r.enabled ? t('{rule} disabled.', { rule: r.name || r.id }) : t('{rule} enabled.', { rule: r.name || r.id }));
      changed();
    } catch (e) {
      setToggleError(e);
    } finally {
      setToggling('');
    }
  };
  const done = (what) => () => (setDialog(null), setNotice(what), reload());
  return (
    <section aria-labelledby="group-title">
      <div class="page-head">
        <div>
          {crumbs}
          <h1 id="group-title">{data.name}</h1>
          <p class="sub">
            {t('Group')} <span class="mono">{data.id}</span> · {t('scope {scope} · times in {zone}', { scope: data.scope, zone: zone() })}
          </p>
        </div>
        {manage && (
          <div class="tools">
            <button type="button" onClick={() => (setNotice(''), setDialog({ kind: 'group' }))}>
              {t('Rename')}
            </button>
            <button type="button" onClick={() => (setNotice(''), setDialog({ kind: 'delete-group' }))}>
              {t('Delete group')}
            </button>
          </div>
        )}
      </div>
      {data.description && <p>{data.description}</p>}
      <Message error={toggleError} notice={notice} />
      <div class="page-head">
        <h2>{t('Rules ({n})', { n: rules.length })}</h2>
        {manage && (
          <div class="tools">
            <button type="button" class="primary" onClick={() => (setNotice(''), setDialog({ kind: 'rule' }))}>
              {t('Add rule')}
            </button>
          </div>
        )}
      </div>
      <RulesTable
        rules={rules}
        manage={manage}
        busyId={toggling}
        onEdit={(r) => (setNotice(''), setDialog({ kind: 'rule', rule: r }))}
        onDelete={(r) => (setNotice(''), setDialog({ kind: 'delete-rule', rule: r }))}
        onToggle={toggle}
      />
      <Deliveries rules={rules} />
      {dialog?.kind === 'group' && <GroupDialog group={data} onClose={() => setDialog(null)} onSaved={done(t('Saved.'))} />}
      {dialog?.kind === 'rule' && (
        <RuleDialog
          group={data}
          rule={dialog.rule}
          onClose={() => setDialog(null)}
          onSaved={done(dialog.rule ? t('Rule saved.') : t('Rule added.'))}
        />
      )}
      {dialog?.kind === 'delete-group' && (
        <ConfirmDialog
          title={t('Delete group {group}?', { group: data.name })}
          confirm={t('Delete group')}
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            await api(`${BASE}/groups/${encodeURIComponent(data.id)}`, { method: 'DELETE' });
            changed();
            navigate('/administration/notifications');
          }}
        >
          <p>
            {t('The group')} <strong>{data.name}</strong> ({data.id}){' '}
            {t('is deleted for good. A group that still has rules, or that a scheduled job sends its runs to, cannot be deleted: delete its rules or move the jobs first.')}
          </p>
        </ConfirmDialog>
      )}
      {dialog?.kind === 'delete-rule' && (
        <ConfirmDialog
          title={t('Delete rule {rule}?', { rule: dialog.rule.name || dialog.rule.id })}
          confirm={t('Delete rule')}
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            await api(`${BASE}/rules/${encodeURIComponent(dialog.rule.id)}`, { method: 'DELETE' });
            changed();
            done(t('Rule deleted.'))();
          }}
        >
          <p>
            {t('The rule sends nothing more once deleted; its past deliveries stay in the outbox. To pause it instead, disable it.')}
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}
