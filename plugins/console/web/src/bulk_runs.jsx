// Bulk work on the run history's selected runs: retry, cancel, hold or
// release them with one reason, each run through its own API call, so each
// is checked and audited on its own (the audit trail has one row per run);
// the runs that could not be acted on are listed with the server's reason.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { t, tp } from './i18n.js';
import { Dialog, ReasonAndActions, useAction, useSession } from './ui.jsx';

// Each action: its API path, the permission it needs and the runs it applies to.
const ACTIONS = {
  retry: { path: 'retry', permission: 'runs.retry', fits: (r) => r.retryable ?? (r.phase === 'COMPLETED' && r.outcome === 'ERROR') },
  cancel: { path: 'cancel', permission: 'runs.cancel', fits: (r) => r.phase !== 'COMPLETED' },
  hold: { path: 'hold', permission: 'runs.hold', fits: (r) => r.phase === 'PENDING' && !r.hold },
  release: { path: 'release', permission: 'runs.hold', fits: (r) => r.phase === 'PENDING' && r.hold },
};
const LABELS = () => ({ retry: t('Retry'), cancel: t('Cancel runs'), hold: t('Hold'), release: t('Release') });

/**
 * The bar over the run history: how many runs are selected and the actions
 * the caller's role may take on them (an action that fits none of them is
 * disabled, saying why); `onDone(message)` after an action ran.
 */
export function BulkRunActions({ runs, selected, onClear, onDone }) {
  const ctx = useSession();
  const [action, setAction] = useState('');
  const chosen = runs.filter((r) => selected.has(r.id));
  const allowed = Object.keys(ACTIONS).filter((a) => ctx.can(ACTIONS[a].permission));
  if (!allowed.length) return null;
  const labels = LABELS();
  return (
    <div class="tools bulk" role="group" aria-label={t('Selected runs')}>
      <span data-testid="bulk-count">{tp(chosen.length, '{n} run selected', '{n} runs selected', { n: chosen.length })}</span>
      {allowed.map((a) => {
        const n = chosen.filter(ACTIONS[a].fits).length;
        return (
          <button type="button" disabled={!n} title={n ? undefined : t('None of the selected runs fits')} onClick={() => setAction(a)}>
            {labels[a]} {n > 0 && `(${n})`}
          </button>
        );
      })}
      {chosen.length > 0 && (
        <button type="button" onClick={onClear}>
          {t('Clear the selection')}
        </button>
      )}
      {action && (
        <BulkDialog
          action={action}
          runs={chosen.filter(ACTIONS[action].fits)}
          onClose={() => setAction('')}
          onDone={(msg) => {
            setAction('');
            onDone(msg);
          }}
        />
      )}
    </div>
  );
}

function BulkDialog({ action, runs, onClose, onDone }) {
  const [reason, setReason] = useState('');
  const [failed, setFailed] = useState([]);
  const act = useAction();
  const label = LABELS()[action];
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      const refused = [];
      // One call per run, in order: each is checked and audited on its own.
      for (const r of runs) {
        try {
          await api(`/api/v1/runs/${r.id}/${ACTIONS[action].path}`, { method: 'POST', body: { reason } });
        } catch (err) {
          refused.push({ id: r.id, message: err.message });
        }
      }
      if (refused.length) {
        setFailed(refused);
        throw new Error(t('{done} of {n} done; these were refused:', { done: runs.length - refused.length, n: runs.length }));
      }
      onDone(t('{action}: {n} runs done.', { action: label, n: runs.length }));
    });
  };
  return (
    <Dialog title={t('{action}: {n} runs', { action: label, n: runs.length })} onClose={onClose}>
      <form onSubmit={submit}>
        <p class="hint">{t('Each run is acted on and audited on its own, with this reason.')}</p>
        <ul class="attention-list" data-testid="bulk-failures">
          {failed.map((f) => (
            <li key={f.id}>
              {t('Run {id}', { id: f.id })}: {f.message}
            </li>
          ))}
        </ul>
        <ReasonAndActions id="bulk-reason" reason={reason} onReason={setReason} error={act.error} busy={act.busy} submit={label} onClose={onClose} />
      </form>
    </Dialog>
  );
}
