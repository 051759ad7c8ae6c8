// The workers (/administration/workers): the kernels sharing the store, over
// the jobs API (/api/v1/workers), each with its node name, version, pools,
// loaded plugins, how long ago it renewed its lease and its status (idle,
// busy, draining, drained, dead), read again every few seconds; for roles
// with runs.recover, Drain asks a worker, with a required reason (audited
// as worker.drain), to claim no new run, finish its runs and report
// drained. The menu shows the page to roles with jobs.read.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { msg, t, tr } from './i18n.js';
import { relative, time } from './format.js';
import { Dialog, EmptyRow, HiddenHead, Message, NotAllowed, ReasonAndActions, Table, useAction, useSession } from './ui.jsx';

const BASE = '/api/v1/workers';
/** The permissions the workers' routes name. */
import { WORKERS_READ as READ } from './shell.jsx';
export { READ };
export const DRAIN = 'runs.recover';

const STATUS_WORDS = {
  idle: msg('Idle (no run)'),
  busy: msg('Busy (runs in flight)'),
  draining: msg('Draining'),
  drained: msg('Drained'),
  dead: msg('Dead (its lease lapsed)'),
};
const statusText = (s) => (STATUS_WORDS[s] ? tr(STATUS_WORDS[s]) : s);
const MARKERS = { draining: 'marker-flapping', drained: 'marker-flapping', dead: 'marker-escalated' };

/** "a, b, c" from the API's comma-separated list; "—" when empty. */
const listText = (s) =>
  String(s || '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .join(', ') || '—';

/** Why `w` cannot be drained by the caller; '' when it can. */
function drainRefusal(ctx, w) {
  if (!ctx.can(DRAIN)) return t('Your role ({role}) may not drain workers.', { role: ctx.me.role });
  if (w.status === 'draining') return t('Already draining.');
  if (w.status === 'drained') return t('Already drained.');
  if (w.status === 'dead') return t('Dead: nothing to drain.');
  // No heartbeat: the kernel is alone on an SQLite store, which cannot drain.
  if (!(w.heartbeat_ms > 0)) return t('This kernel runs alone on its store: stop it instead of draining it.');
  return '';
}

/** Drain one worker: the reason, then the API's answer or refusal. */
function DrainDialog({ worker, onClose, onDone }) {
  const [reason, setReason] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      await api(`${BASE}/${encodeURIComponent(worker.node)}/drain`, { method: 'POST', body: { reason: reason.trim() } });
      onDone(t('{node} drains: it claims no new run and reports drained once its runs are done.', { node: worker.node }));
    });
  };
  return (
    <Dialog title={t('Drain {node}', { node: worker.node })} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <p>{t('The worker claims no new run; the runs it holds finish, its queued runs are left to the other workers, and it reports drained. Stop it for maintenance once it is drained.')}</p>
        <ReasonAndActions id="drain-reason" reason={reason} onReason={setReason} error={error} busy={busy} submit={t('Drain')} onClose={onClose} />
      </form>
    </Dialog>
  );
}

export function WorkersPage() {
  const ctx = useSession();
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const [draining, setDraining] = useState(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    document.title = t('{page} · Opskernel', { page: t('Workers') });
  }, []);
  useEffect(() => {
    if (!ctx.can(READ)) return;
    let live = true;
    const read = () =>
      api(BASE)
        .then((d) => live && (setData(d), setError(null)))
        .catch((e) => live && setError(e));
    read();
    const timer = setInterval(read, Math.max(1, ctx.settings.poll_seconds || 5) * 1000);
    return () => ((live = false), clearInterval(timer));
  }, [tick]);
  if (!ctx.can(READ)) return <NotAllowed title={t('Workers')} role={ctx.me.role} what={t('see the workers')} />;
  const rows = data?.workers || [];
  return (
    <section aria-labelledby="workers-title">
      <div class="page-head">
        <div>
          <h1 id="workers-title">{t('Workers')}</h1>
          <p class="sub">
            {t('The kernels sharing the store: each claims the runs of the job types its plugins bring. Drain a worker before maintenance: it claims no new run, finishes its runs, then reports drained.')}
          </p>
        </div>
      </div>
      <Message error={error} notice={notice} />
      <Table
        name="workers"
        caption={data ? t('Workers, {n} shown', { n: rows.length }) : t('Workers, loading')}
        columns={[t('Node'), t('Status'), t('Version'), t('Pools'), t('Plugins'), t('Heartbeat'), <HiddenHead label={t('Actions')} />]}
      >
        {rows.map((w) => {
          const refusal = drainRefusal(ctx, w);
          const why = `drain-why-${w.node}`;
          return (
            <tr key={w.node} data-worker={w.node} data-worker-status={w.status}>
              <td>
                <strong>{w.node}</strong>
                {w.self && <div class="hint">{t('this kernel')}</div>}
              </td>
              <td>
                <span class={`marker ${MARKERS[w.status] || ''}`}>{statusText(w.status)}</span>
                {w.drain_reason && <div class="hint">{t('drain asked: {reason}', { reason: w.drain_reason })}</div>}
                {w.self && w.in_flight > 0 && <div class="hint">{t('{n} running here', { n: w.in_flight })}</div>}
              </td>
              <td>{w.version || '—'}</td>
              <td>{listText(w.pools)}</td>
              <td>
                <div class="desc">{listText(w.plugins)}</div>
              </td>
              <td title={w.heartbeat_ms > 0 ? time(w.heartbeat_ms) : ''} data-testid="heartbeat">
                {w.heartbeat_ms > 0 ? relative(w.heartbeat_ms) : t('none: the only kernel on its store')}
              </td>
              <td>
                <button
                  type="button"
                  disabled={!!refusal}
                  aria-describedby={refusal ? why : undefined}
                  aria-label={t('Drain {node}', { node: w.node })}
                  onClick={() => (setNotice(''), setDraining(w))}
                >
                  {t('Drain')}
                </button>
                {refusal && (
                  <div class="hint" id={why}>
                    {refusal}
                  </div>
                )}
              </td>
            </tr>
          );
        })}
        <EmptyRow show={data && !rows.length} cols={7}>
          {t('No worker is registered.')}
        </EmptyRow>
      </Table>
      {draining && (
        <DrainDialog
          worker={draining}
          onClose={() => setDraining(null)}
          onDone={(text) => {
            setDraining(null);
            setNotice(text);
            setTick((n) => n + 1);
          }}
        />
      )}
    </section>
  );
}
