// The console's shell: sign-in with an API token, the header with the
// caller's role and scope, navigation, and the client-side routes.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { api, session, setUnauthorizedHandler } from './api.js';
import { loadLanguage, t, tp } from './i18n.js';
import { LANGUAGES, applyPrefs, browserZone, prefs, setPref } from './prefs.js';
import { number, zoneName } from './format.js';
import { Link, Message, Session, navigate, preloadCharts, useSession } from './ui.jsx';
import { useFeatureNames } from './features.js';
import {
  CACHE_READ,
  FEATURE_FLAGS_READ,
  MAINTENANCE_READ,
  MIGRATIONS_READ,
  RATE_LIMITS_READ,
  WEBHOOK_FAILURES_READ,
  WORKERS_READ,
  MaintenanceBanner,
  useAttention,
  useWebhookFailureCounts,
} from './shell.jsx';

/**
 * The pages, each its own chunk fetched on its first visit (esbuild splits
 * at each import()), so the sign-in page and the shell load none of them:
 * [path pattern, the page's module, the page drawn from it and the match].
 * The first pattern the path matches wins; the jobs list is the fallback.
 */
const PAGES = [
  [/^\/administration\/jobs\/([^/]+)\/?$/, () => import('./job.jsx'), (p, m) => <p.JobPage id={decodeURIComponent(m[1])} />],
  [/^\/administration\/runs\/(\d+)\/?$/, () => import('./run.jsx'), (p, m) => <p.RunPage id={Number(m[1])} />],
  [/^\/administration\/runs\/?$/, () => import('./runs.jsx'), (p) => <p.RunsPage />],
  [/^\/administration\/overview/, () => import('./overview.jsx'), (p) => <p.OverviewPage />],
  [/^\/administration\/alerts\/(\d+)\/?$/, () => import('./alert.jsx'), (p, m) => <p.AlertPage id={Number(m[1])} />],
  [/^\/administration\/alerts\/?$/, () => import('./alerts.jsx'), (p) => <p.AlertsPage />],
  [/^\/administration\/attention/, () => import('./attention.jsx'), (p, m, attention) => <p.AttentionPage data={attention} />],
  [/^\/administration\/maintenance/, () => import('./maintenance.jsx'), (p) => <p.MaintenancePage />],
  [
    /^\/administration\/notifications\/([^/]+)\/?$/,
    () => import('./notifications.jsx'),
    (p, m) => <p.NotificationGroupPage id={decodeURIComponent(m[1])} />,
  ],
  [/^\/administration\/notifications\/?$/, () => import('./notifications.jsx'), (p) => <p.NotificationsPage />],
  [/^\/administration\/webhook-failures/, () => import('./webhook_failures.jsx'), (p) => <p.WebhookFailuresPage />],
  [/^\/administration\/feature-flags/, () => import('./feature_flags.jsx'), (p) => <p.FeatureFlagsPage />],
  [/^\/administration\/rate-limit-overrides/, () => import('./rate_limit_overrides.jsx'), (p) => <p.RateLimitOverridesPage />],
  [/^\/administration\/migrations/, () => import('./migrations.jsx'), (p) => <p.MigrationsPage />],
  [/^\/administration\/caches/, () => import('./caches.jsx'), (p) => <p.CachesPage />],
  [/^\/administration\/workers/, () => import('./workers.jsx'), (p) => <p.WorkersPage />],
  [/^\/administration\/plugins/, () => import('./plugins.jsx'), (p) => <p.PluginsPage />],
  [/^\/administration\/audit/, () => import('./audit.jsx'), (p) => <p.AuditPage />],
  [/^/, () => import('./jobs.jsx'), (p) => <p.JobsPage />],
];

/** The page for a path: its module's loader, the draw function and the path's match. */
function pageOf(path) {
  for (const [re, load, draw] of PAGES) {
    const m = path.match(re);
    if (m) return { load, draw, m };
  }
  return null;
}

/** Each page module once fetched (by its loader), and each fetch under way. */
const loadedPages = new Map();
const loadingPages = new Map();

/** Fetches a page's module once; a failed fetch may be tried again. */
function loadPage(load) {
  if (!loadingPages.has(load))
    loadingPages.set(
      load,
      load().then(
        (mod) => (loadedPages.set(load, mod), mod),
        (e) => {
          loadingPages.delete(load);
          throw e;
        },
      ),
    );
  return loadingPages.get(load);
}

/** Fetches the page of a path (at sign-in, beside the calls the shell makes first); never fails. */
const preloadPage = (path) => loadPage(pageOf(path).load).catch(() => {});

/**
 * A page drawn from its module once fetched: until then a status saying it
 * is loading (read out by screen readers), and if the fetch fails the error
 * with a button to reload the console (a console updated since this one was
 * loaded has other chunks).
 */
function LazyPage({ page, attention }) {
  const [, loaded] = useState(0);
  const [error, setError] = useState(null);
  const mod = loadedPages.get(page.load);
  useEffect(() => {
    if (mod) return undefined;
    let live = true;
    setError(null);
    loadPage(page.load).then(
      () => live && loaded((n) => n + 1),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [page.load, mod]);
  if (mod) return page.draw(mod, page.m, attention);
  if (error)
    return (
      <>
        <Message error={new Error(t('This page could not be loaded: {detail}', { detail: error.message }))} />
        <button type="button" onClick={() => location.reload()}>
          {t('Reload the console')}
        </button>
      </>
    );
  return (
    <p class="loading" role="status">
      {t('Loading…')}
    </p>
  );
}

// The console's top-level paths; anything else goes to the jobs list.
const SECTIONS = /^\/administration\/(overview|jobs|runs|alerts|attention|notifications|webhook-failures|feature-flags|rate-limit-overrides|migrations|caches|maintenance|workers|plugins|audit)/;

function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    window.addEventListener('popstate', update);
    window.addEventListener('opk-navigate', update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener('opk-navigate', update);
    };
  }, []);
  return path;
}

function SignIn({ onSignedIn, reason }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(reason ? new Error(reason) : null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = t('{page} · Opskernel', { page: t('Sign in') });
  }, [prefs.lang]);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    preloadPage(location.pathname);
    try {
      const me = await api('/api/v1/me', { token: token.trim() });
      session.set(token.trim());
      onSignedIn(me);
    } catch (err) {
      setError(err.status === 401 ? new Error(t('The token was not accepted: {detail}', { detail: err.message })) : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="sign-in">
      <div class="sign-in-prefs">
        <Preferences />
      </div>
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">{t('Opskernel console')}</h1>
        <p>
          {t('Sign in with an API token. An administrator makes one with {command}.', { command: '\u0000' })
            .split('\u0000')
            .flatMap((part, i) => (i ? [<code>opskernel users token ID</code>, part] : [part]))}
        </p>
        <div class="field">
          <label for="token">{t('API token')}</label>
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            autoFocus
            required
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </div>
        <Message error={error} />
        <button type="submit" class="primary" disabled={busy || !token.trim()}>
          {busy ? t('Signing in…') : t('Sign in')}
        </button>
        <p class="hint">{t('The token stays in this browser tab only, and is forgotten when the tab closes.')}</p>
      </form>
    </main>
  );
}

/** The Alerts item's badge: critical alerts not closed and escalated alerts. */
function AlertsBadge({ counts }) {
  if (!counts) return null;
  const n = (counts.open_critical || 0) + (counts.escalated || 0);
  if (n <= 0) return null;
  return (
    <span
      class="badge"
      data-testid="alerts-badge"
      aria-label={t('{critical} critical alerts not closed and {escalated} escalated alerts', { critical: counts.open_critical, escalated: counts.escalated })}
    >
      {number(n)}
    </span>
  );
}

/** The Webhook failures item's badge: the failures nobody has handled yet. */
function WebhookFailuresBadge({ counts }) {
  if (!counts || !(counts.open > 0)) return null;
  return (
    <span class="badge" data-testid="webhook-failures-badge" aria-label={tp(counts.open, '{n} webhook failure not handled', '{n} webhook failures not handled')}>
      {number(counts.open)}
    </span>
  );
}

/**
 * The menu: each entry only for roles holding the permission its page
 * reads with (Attention for either runs or alerts); an admin feature's entry
 * named as its manifest translates it, else by the console's text.
 */
function Nav({ path, attention, alertCounts, webhookCounts }) {
  const ctx = useSession();
  const feature = useFeatureNames(ctx);
  const item = (href, label, extra, permission) =>
    [permission].flat().some((p) => ctx.can(p)) && (
      <li>
        <Link href={href} aria-current={path === href || path.startsWith(`${href}/`) ? 'page' : undefined}>
          {label}
          {extra}
        </Link>
      </li>
    );
  return (
    <nav aria-label={t('Console')}>
      <ul>
        {item('/administration/overview', t('Overview'), null, 'jobs.read')}
        {item('/administration/jobs', t('Jobs'), null, 'jobs.read')}
        {item('/administration/runs', t('Run history'), null, 'jobs.read')}
        {item('/administration/alerts', t('Alerts'), <AlertsBadge counts={alertCounts} />, 'alerts.read')}
        {item(
          '/administration/attention',
          t('Attention'),
          attention > 0 && (
            <span class="badge" aria-label={tp(attention, '{n} item needs attention', '{n} items need attention')}>
              {number(attention)}
            </span>
          ),
          ['jobs.read', 'alerts.read'],
        )}
        {item('/administration/notifications', feature('notifications', t('Notifications')), null, 'notifications.read')}
        {item('/administration/maintenance', feature('maintenance-mode', t('Maintenance')), null, MAINTENANCE_READ)}
        {item(
          '/administration/webhook-failures',
          feature('webhook-inbox', t('Webhook failures')),
          <WebhookFailuresBadge counts={webhookCounts} />,
          WEBHOOK_FAILURES_READ,
        )}
        {item('/administration/feature-flags', feature('feature-flags', t('Feature flags')), null, FEATURE_FLAGS_READ)}
        {item('/administration/rate-limit-overrides', feature('rate-limit-overrides', t('Rate-limit overrides')), null, RATE_LIMITS_READ)}
        {item('/administration/migrations', feature('migration-status', t('Migrations')), null, MIGRATIONS_READ)}
        {item('/administration/caches', feature('cache-purge', t('Caches')), null, CACHE_READ)}
        {item('/administration/workers', t('Workers'), null, WORKERS_READ)}
        {item('/administration/audit', t('Audit'), null, 'audit.read')}
        {item('/administration/plugins', t('Plugins'), null, 'plugins.read')}
      </ul>
    </nav>
  );
}

/**
 * The display preferences in the header: language, the time zone times are
 * shown in (the browser's or UTC) and the theme, each kept in this browser.
 */
function Preferences() {
  const choose = (id, label, value, choices, onChange) => (
    <span class="pref">
      <label for={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {choices.map(([v, text]) => (
          <option value={v}>{text}</option>
        ))}
      </select>
    </span>
  );
  return (
    <div class="prefs" role="group" aria-label={t('Display')}>
      {choose('pref-lang', t('Language'), prefs.lang, LANGUAGES.map((l) => [l.id, l.name]), async (v) => {
        await loadLanguage(v);
        setPref('lang', v);
      })}
      {choose(
        'pref-zone',
        t('Time zone'),
        prefs.zone,
        [
          ['local', t('Browser ({zone})', { zone: zoneName(browserZone()) === browserZone() ? browserZone() : `${browserZone()}, ${zoneName(browserZone())}` })],
          ['UTC', 'UTC'],
        ],
        (v) => setPref('zone', v),
      )}
      {choose(
        'pref-theme',
        t('Theme'),
        prefs.theme,
        [
          ['system', t('As the system')],
          ['light', t('Light')],
          ['dark', t('Dark')],
        ],
        (v) => setPref('theme', v),
      )}
    </div>
  );
}

function Shell({ ctx, onSignOut }) {
  const path = usePath();
  const hasPager = usePageWatch(path);
  useEffect(preloadCharts, []);
  const attention = useAttention(ctx, path.startsWith('/administration/attention'));
  const webhookCounts = useWebhookFailureCounts(ctx, path.startsWith('/administration/webhook-failures'));
  const page = pageOf(path);
  useEffect(() => {
    if (!SECTIONS.test(path)) {
      history.replaceState(null, '', '/administration/jobs');
      window.dispatchEvent(new Event('opk-navigate'));
    }
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [path]);
  return (
    <Session.Provider value={ctx}>
      <a class="skip" href="#main">
        {t('Skip to content')}
      </a>
      <SkipToPager show={hasPager} />
      <header class="top">
        <span class="brand">Opskernel</span>
        <Nav path={path} attention={attention.count} alertCounts={attention.alertCounts} webhookCounts={webhookCounts} />
        <Preferences />
        <div class="who" role="group" aria-label={t('Signed in as')}>
          <span class="user">{ctx.me.user_id}</span>
          <span class="role">{ctx.me.role}</span>
          <span class="scope" title={t('Scope: you see and act only at or under this node')}>
            {ctx.me.scope}
          </span>
          <button type="button" onClick={onSignOut}>
            {t('Sign out')}
          </button>
        </div>
      </header>
      <MaintenanceBanner />
      <main id="main" tabIndex={-1}>
        <LazyPage page={page} attention={attention} />
      </main>
    </Session.Provider>
  );
}

/**
 * Watches the page as it changes: whether it has a pager (the element with
 * class "pager", made the skip link's focusable target #pager), and makes each table box that
 * scrolls (a .table-wrap whose table is wider or taller) a focusable region
 * named by its table's caption, so a keyboard can scroll it.
 */
function usePageWatch(path) {
  const [hasPager, setHasPager] = useState(false);
  useEffect(() => {
    let frame = 0;
    const look = () => {
      frame = 0;
      const pager = document.querySelector('main .pager');
      if (pager && !pager.id) pager.id = 'pager';
      if (pager && !pager.hasAttribute('tabindex')) pager.setAttribute('tabindex', '-1');
      setHasPager(!!pager);
      for (const box of document.querySelectorAll('.table-wrap')) {
        const wide = box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight;
        if (wide && !box.hasAttribute('tabindex')) {
          box.setAttribute('tabindex', '0');
          box.setAttribute('role', 'region');
          box.setAttribute('aria-label', box.querySelector('caption')?.textContent.trim() || t('Table'));
        } else if (!wide && box.getAttribute('role') === 'region') {
          for (const a of ['tabindex', 'role', 'aria-label']) box.removeAttribute(a);
        }
      }
    };
    const soon = () => frame || (frame = requestAnimationFrame(look));
    soon();
    // Right after the page changed (a layout the browser would do before painting anyway).
    const seen = new MutationObserver(look);
    seen.observe(document.getElementById('app'), { childList: true, subtree: true });
    window.addEventListener('resize', soon);
    return () => {
      seen.disconnect();
      window.removeEventListener('resize', soon);
      cancelAnimationFrame(frame);
    };
  }, [path]);
  return hasPager;
}

/** A second skip link, to the page's pager, shown only while the page has one. */
function SkipToPager({ show }) {
  if (!show) return null;
  return (
    <a
      class="skip"
      href="#pager"
      onClick={(e) => {
        e.preventDefault();
        const pager = document.querySelector('main .pager');
        (pager?.querySelector('button:not(:disabled), a') || pager)?.focus();
      }}
    >
      {t('Skip to the pager')}
    </a>
  );
}

function App() {
  const [, redraw] = useState(0);
  useEffect(() => {
    const again = () => redraw((n) => n + 1);
    window.addEventListener('opk-prefs', again);
    return () => window.removeEventListener('opk-prefs', again);
  }, []);
  const [ctx, setCtx] = useState(null);
  const [reason, setReason] = useState('');
  const [loading, setLoading] = useState(!!session.token());
  const load = async (me) => {
    const [types, settings] = await Promise.all([
      api('/api/v1/job-types').catch(() => ({ types: [] })),
      fetch('/administration/settings.json').then((r) => r.json()).catch(() => ({})),
      // The first page's code too, so the shell draws it at once rather than saying it is loading.
      preloadPage(location.pathname),
    ]);
    setCtx({
      me,
      can: (p) => (me.permissions || []).includes(p),
      types: new Map(types.types.map((t) => [t.id, t])),
      settings: { queue_threshold: 50, poll_seconds: 5, failed_lookback_days: 7, over_target_lookback_hours: 24, ...settings },
    });
    setLoading(false);
    if (!SECTIONS.test(location.pathname)) navigate('/administration/jobs');
  };
  useEffect(() => {
    setUnauthorizedHandler((detail) => {
      session.clear();
      setCtx(null);
      setReason(t('Signed out: {detail}', { detail: detail || t('the token is no longer accepted') }));
    });
    if (session.token()) preloadPage(location.pathname);
    if (session.token())
      api('/api/v1/me')
        .then(load)
        .catch(() => {
          session.clear();
          setLoading(false);
        });
  }, []);
  if (loading) return <p class="loading">{t('Loading…')}</p>;
  if (!ctx) return <SignIn reason={reason} onSignedIn={(me) => load(me)} />;
  return (
    <Shell
      ctx={ctx}
      onSignOut={() => {
        session.clear();
        setReason('');
        setCtx(null);
        history.pushState(null, '', '/administration/sign-in');
      }}
    />
  );
}

applyPrefs();
loadLanguage(prefs.lang)
  .catch(() => setPref('lang', 'en'))
  .then(() => render(<App />, document.getElementById('app')));
