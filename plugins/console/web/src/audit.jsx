// The audit trail (/administration/audit): who did what, when, why and with
// what outcome, newest first, filtered by actor and action.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { msg, t, tr } from './i18n.js';
import { usePoll } from './jobs.jsx';
import { ChoiceFilter, EmptyRow, Message, NotAllowed, Table, TextFilter, time, useSession, useSettled } from './ui.jsx';

// The actions the trail can be filtered by, each with its words (the trail names the id).
const ACTIONS = {
  'run-now': msg('Run now'),
  cancel: msg('Cancel'),
  retry: msg('Retry'),
  hold: msg('Hold'),
  release: msg('Release'),
  recover: msg('Recover'),
  'job.create': msg('Create a job'),
  'job.update': msg('Change a job'),
};

export function AuditPage() {
  const ctx = useSession();
  const [typed, setTyped] = useState('');
  const [action, setAction] = useState('');
  useEffect(() => {
    document.title = t('{page} · Opskernel', { page: t('Audit') });
  }, []);
  const actor = useSettled(typed.trim(), 300);
  const [data, error] = usePoll(
    () => (ctx.can('audit.read') ? api(`/api/v1/audit${query({ actor, action, limit: 200 })}`) : Promise.resolve({ items: [] })),
    ctx.settings.poll_seconds,
    [actor, action],
  );
  if (!ctx.can('audit.read'))
    return <NotAllowed title={t('Audit')} role={ctx.me.role} what={t('read the audit trail')} />;
  const items = data?.items || [];
  return (
    <section aria-labelledby="audit-title">
      <div class="page-head">
        <h1 id="audit-title">{t('Audit')}</h1>
        <div class="tools">
          <ChoiceFilter id="audit-action" label={t('Action')} all={t('All actions')} choices={Object.keys(ACTIONS)} labelOf={(id) => `${tr(ACTIONS[id])} (${id})`} value={action} onChange={setAction} />
          <TextFilter
            id="audit-actor"
            label={t('Actor (exact user id)')}
            placeholder={t('Actor (user id)')}
            value={typed}
            onInput={setTyped}
          />
        </div>
      </div>
      <Message error={error} />
      <Table
        name="audit"
        caption={t('The newest 200 audit rows')}
        columns={[t('Time'), t('Actor'), t('Role'), t('Action'), t('Target'), t('Reason'), t('Outcome'), t('Source')]}
      >
        {items.map((a) => (
          <tr key={a.id} class={(a.outcome || '').startsWith('refused') ? 'refused' : ''}>
            <td>{time(a.time_ms)}</td>
            <td>{a.actor}</td>
            <td>{a.role}</td>
            <td>{a.action}</td>
            <td class="desc" title={a.target}>
              {a.target}
            </td>
            <td class="desc" title={a.reason}>
              {a.reason}
            </td>
            <td class="desc" title={a.outcome}>
              {a.outcome}
            </td>
            <td>{a.source}</td>
          </tr>
        ))}
        <EmptyRow show={data && !items.length} cols={8}>
          {t('No audit rows match. Change the filters.')}
        </EmptyRow>
      </Table>
    </section>
  );
}
