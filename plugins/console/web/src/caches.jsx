// The caches (/administration/caches), over the cache-purge plugin's API
// (/api/v1/cache): the kernel cache's counters per plugin (entries, bytes,
// hits, misses, hit ratio, evictions, expirations) against its bound, and
// the Redis servers the plugin may purge. For roles with cache.purge, a
// purge by key or glob pattern of a Redis server's keys or of a plugin's
// kernel cache entries, with a required reason: count first with a dry
// run, and a pattern that matches every key ('*') needs its confirmation.
// A count that would take more than ten seconds at the throttle is offered
// as a run of the job type cache-purge instead (progress in Run history,
// cancellable; docs/job-types/cache-purge.md). The menu shows the page to
// roles with cache.read.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { t } from './i18n.js';
import { Dialog, EmptyRow, FormActions, HiddenHead, Link, Message, NotAllowed, Table, number, useAction, useSession } from './ui.jsx';
import { useFeatureNames } from './features.js';

const BASE = '/api/v1/cache';
/** The permissions the caches' routes name. */
import { CACHE_READ as READ } from './shell.jsx';
export { READ };
export const PURGE = 'cache.purge';

const n = (v) => number(Number(v || 0));
const one = { minimumFractionDigits: 1, maximumFractionDigits: 1 };
/** Bytes as "812 B", "12.3 KiB", "4.0 MiB" (the decimal sign as the language writes it). */
const bytes = (b) => (b < 1024 ? `${number(b)} B` : b < 1048576 ? `${number(b / 1024, one)} KiB` : `${number(b / 1048576, one)} MiB`);
/** True when glob `p` matches every key: nothing but '*'. */
const everything = (p) => p.length > 0 && /^\*+$/.test(p);

/** Purge (or count) a Redis server's keys or a plugin's kernel cache entries. */
function PurgeDialog({ target, rate, onClose, onDone }) {
  const ctx = useSession();
  const [runId, setRunId] = useState(null);
  const [pattern, setPattern] = useState('');
  const [reason, setReason] = useState('');
  const [confirm, setConfirm] = useState(false);
  const [counted, setCounted] = useState(null);
  const { busy, error, run } = useAction();
  const url = target.kind === 'redis' ? `${BASE}/redis/${encodeURIComponent(target.name)}/purge` : `${BASE}/kernel/purge`;
  const body = (dryRun) => ({
    ...(target.kind === 'kernel' ? { plugin: target.name } : {}),
    pattern,
    reason: reason.trim(),
    dry_run: dryRun,
    ...(everything(pattern) ? { confirm } : {}),
  });
  const count = () =>
    run(async () => {
      const r = await api(url, { method: 'POST', body: body(true) });
      setCounted(r.matched);
    });
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const r = await api(url, { method: 'POST', body: body(false) });
      onDone(
        target.kind === 'redis'
          ? t('{n} keys matching {pattern} removed from {target}.', { n: number(r.removed), pattern, target: target.label })
          : t('{n} entries matching {pattern} removed from {target}.', { n: number(r.removed), pattern, target: target.label }),
      );
    });
  };
  const needsConfirm = everything(pattern) && !confirm;
  // A purge that would take more than ten seconds at the throttle goes as a run.
  const large = target.kind === 'redis' && counted !== null && counted > rate * 10;
  const seconds = large ? Math.ceil(counted / rate) : 0;
  const asRun = () =>
    run(async () => {
      const params = { server: target.name, pattern, ...(everything(pattern) ? { confirm } : {}) };
      const r = await api('/api/v1/runs', { method: 'POST', body: { job_type: 'cache-purge', params, reason: reason.trim() } });
      setRunId(r.run_ids[0]);
    });
  return (
    <Dialog title={t('Purge {target}', { target: target.label })} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <p>
          {target.kind === 'redis'
            ? t('Keys are found with SCAN MATCH and removed with UNLINK in batches, at most the configured keys per second.')
            : t("The plugin's entries in the kernel's in-process cache.")}
        </p>
        <div class="field">
          <label for="cp-pattern">{t('Key or glob pattern (session:*, user:42, report:[0-9]*)')}</label>
          <input id="cp-pattern" spellcheck={false} value={pattern} onInput={(e) => (setPattern(e.currentTarget.value), setCounted(null))} />
        </div>
        <div class="field">
          <label for="cp-reason">{t('Reason (required; kept in the audit trail)')}</label>
          <textarea id="cp-reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        {everything(pattern) && (
          <div class="field">
            <label>
              <input type="checkbox" checked={confirm} onChange={(e) => setConfirm(e.currentTarget.checked)} /> {t('This pattern matches every key: purge them all')}
            </label>
          </div>
        )}
        <p data-testid="counted" aria-live="polite">
          {counted === null ? t('Count first to see how many match.') : t('{n} match now (dry run; nothing removed).', { n: number(counted) })}
        </p>
        {large && (
          <p data-testid="large">
            {t('At {rate} keys a second this takes about {s} s: purge it as a run, which shows its progress in Run history and can be cancelled.', {
              rate: number(rate),
              s: number(seconds),
            })}
          </p>
        )}
        {runId && (
          <p role="status" data-testid="run-started">
            {t('Run')} <Link href={`/administration/runs/${runId}`}>#{runId}</Link> {t('is purging the keys.')}
          </p>
        )}
        <div class="actions">
          <button type="button" disabled={busy || !pattern || !reason.trim()} onClick={count}>
            {t('Count (dry run)')}
          </button>
          {large && ctx.can('runs.start') && (
            <button type="button" disabled={busy || needsConfirm || runId !== null} onClick={asRun}>
              {t('Purge as a run')}
            </button>
          )}
        </div>
        <FormActions error={error} busy={busy} disabled={busy || !pattern || !reason.trim() || needsConfirm} onClose={onClose} submit={t('Purge')} danger />
      </form>
    </Dialog>
  );
}

export function CachesPage() {
  const ctx = useSession();
  const name = useFeatureNames(ctx)('cache-purge', t('Caches'));
  const purge = ctx.can(PURGE);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const [dialog, setDialog] = useState(null);
  const [bump, setBump] = useState(0);
  useEffect(() => {
    document.title = `${name} · Opskernel`;
  }, [name]);
  useEffect(() => {
    if (!ctx.can(READ)) return;
    let live = true;
    api(BASE)
      .then((d) => live && (setData(d), setError(null)))
      .catch((e) => live && setError(e));
    return () => (live = false);
  }, [bump]);
  if (!ctx.can(READ)) return <NotAllowed title={t('Caches')} role={ctx.me.role} what={t('see the caches')} />;
  const kernel = data?.kernel;
  const spaces = kernel?.namespaces || [];
  const redis = data?.redis || [];
  const done = (what) => {
    setDialog(null);
    setNotice(what);
    setBump(bump + 1);
  };
  const open = (target) => () => (setNotice(''), setDialog(target));
  return (
    <section aria-labelledby="caches-title">
      <div class="page-head">
        <div>
          <h1 id="caches-title">{name}</h1>
          <p class="sub">{t("The kernel's in-process cache per plugin and the platform's Redis caches. Every purge and count is audited.")}</p>
        </div>
        <div class="tools">
          <button type="button" onClick={() => setBump(bump + 1)}>
            {t('Refresh')}
          </button>
        </div>
      </div>
      <Message error={error} notice={notice} />
      <h2>{t('Kernel cache')}</h2>
      <p data-testid="kernel-bound">
        {kernel
          ? t('{used} of {max} used; an entry may take at most {entry}.', { used: bytes(kernel.bytes), max: bytes(kernel.max_bytes), entry: bytes(kernel.max_entry_bytes) })
          : data
            ? t('Not available.')
            : t('Loading…')}
      </p>
      <Table
        name="kernel-cache"
        caption={t("The kernel cache's counters per plugin")}
        columns={[t('Plugin'), t('Entries'), t('Bytes'), t('Hits'), t('Misses'), t('Hit ratio'), t('Evictions'), t('Expirations'), purge && <HiddenHead label={t('Actions')} />]}
      >
        {spaces.map((s) => (
          <tr key={s.plugin} data-cache-plugin={s.plugin}>
            <td class="mono">{s.plugin}</td>
            <td data-testid="entries">{n(s.entries)}</td>
            <td>{bytes(s.bytes)}</td>
            <td data-testid="hits">{n(s.hits)}</td>
            <td data-testid="misses">{n(s.misses)}</td>
            <td>{s.hits + s.misses ? number(s.hits / (s.hits + s.misses), { style: 'percent' }) : '—'}</td>
            <td>{n(s.evictions)}</td>
            <td>{n(s.expirations)}</td>
            {purge && (
              <td class="actions">
                <button type="button" class="danger" aria-label={t('Purge kernel cache entries of {plugin}', { plugin: s.plugin })} onClick={open({ kind: 'kernel', name: s.plugin, label: t("{plugin}'s kernel cache entries", { plugin: s.plugin }) })}>
                  {t('Purge…')}
                </button>
              </td>
            )}
          </tr>
        ))}
        <EmptyRow show={data && !spaces.length} cols={purge ? 9 : 8}>
          {t("No plugin has cached anything. A plugin's cache space is listed here once it stores an entry in the kernel's cache (opk.cache).")}
        </EmptyRow>
      </Table>
      <h2>{t('Redis')}</h2>
      <p>{data ? t('Purges remove at most {rate} keys per second, {batch} per batch.', { rate: n(data.keys_per_second), batch: n(data.batch) }) : ''}</p>
      <Table name="redis" caption={t('The Redis servers that may be purged')} columns={[t('Server'), t('Address'), t('Database'), purge && <HiddenHead label={t('Actions')} />]}>
        {redis.map((r) => (
          <tr key={r.name} data-redis-server={r.name}>
            <td class="mono">{r.name}</td>
            <td class="mono">
              {r.address}:{r.port}
            </td>
            <td>{r.db}</td>
            {purge && (
              <td class="actions">
                <button type="button" class="danger" aria-label={t('Purge keys of Redis server {name}', { name: r.name })} onClick={open({ kind: 'redis', name: r.name, label: t('Redis server {name}', { name: r.name }) })}>
                  {t('Purge…')}
                </button>
              </td>
            )}
          </tr>
        ))}
        <EmptyRow show={data && !redis.length} cols={purge ? 4 : 3}>
          {t('No Redis server is configured ([plugin.cache-purge] servers).')}
        </EmptyRow>
      </Table>
      {dialog && <PurgeDialog target={dialog} rate={data?.keys_per_second || 10000} onClose={() => setDialog(null)} onDone={done} />}
    </section>
  );
}
