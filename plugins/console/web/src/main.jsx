// The console's shell: sign-in with an API token, the header with the
// caller's role and scope, navigation, and the client-side routes.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { api, session, setUnauthorizedHandler } from './api.js';
import { Link, Message, Session, navigate, useSession } from './ui.jsx';
import { JobsPage } from './jobs.jsx';
import { JobPage } from './job.jsx';
import { RunPage } from './run.jsx';
import { RunsPage } from './runs.jsx';
import { AttentionPage, useAttention } from './attention.jsx';
import { PluginsPage } from './plugins.jsx';
import { AuditPage } from './audit.jsx';
import { AlertsPage } from './alerts.jsx';
import { AlertPage } from './alert.jsx';
import { NotificationGroupPage, NotificationsPage } from './notifications.jsx';
import { READ as WEBHOOK_FAILURES_READ, WebhookFailuresPage, useWebhookFailureCounts } from './webhook_failures.jsx';
import { READ as FEATURE_FLAGS_READ, FeatureFlagsPage } from './feature_flags.jsx';
import { READ as RATE_LIMITS_READ, RateLimitOverridesPage } from './rate_limit_overrides.jsx';

// The console's top-level paths; anything else goes to the jobs list.
const SECTIONS = /^\/administration\/(jobs|runs|alerts|attention|notifications|webhook-failures|feature-flags|rate-limit-overrides|plugins|audit)/;

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
    document.title = 'Sign in · Opskernel';
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await api('/api/v1/me', { token: token.trim() });
      session.set(token.trim());
      onSignedIn(me);
    } catch (err) {
      setError(err.status === 401 ? new Error(`The token was not accepted: ${err.message}`) : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="sign-in">
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Opskernel console</h1>
        <p>Sign in with an API token. An administrator makes one with <code>opskernel users token ID</code>.</p>
        <div class="field">
          <label for="token">API token</label>
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            required
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </div>
        <Message error={error} />
        <button type="submit" class="primary" disabled={busy || !token.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="hint">The token stays in this browser tab only, and is forgotten when the tab closes.</p>
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
      aria-label={`${counts.open_critical} critical alerts not closed and ${counts.escalated} escalated alerts`}
    >
      {n}
    </span>
  );
}

/** The Webhook failures item's badge: the failures nobody has handled yet. */
function WebhookFailuresBadge({ counts }) {
  if (!counts || !(counts.open > 0)) return null;
  return (
    <span class="badge" data-testid="webhook-failures-badge" aria-label={`${counts.open} webhook failures not handled`}>
      {counts.open}
    </span>
  );
}

/**
 * The menu: each entry only for roles holding the permission its page
 * reads with (Attention for either runs or alerts).
 */
function Nav({ path, attention, alertCounts, webhookCounts }) {
  const ctx = useSession();
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
    <nav aria-label="Console">
      <ul>
        {item('/administration/jobs', 'Jobs', null, 'jobs.read')}
        {item('/administration/runs', 'Run history', null, 'jobs.read')}
        {item('/administration/alerts', 'Alerts', <AlertsBadge counts={alertCounts} />, 'alerts.read')}
        {item(
          '/administration/attention',
          'Attention',
          attention > 0 && (
            <span class="badge" aria-label={`${attention} items need attention`}>
              {attention}
            </span>
          ),
          ['jobs.read', 'alerts.read'],
        )}
        {item('/administration/notifications', 'Notifications', null, 'notifications.read')}
        {item(
          '/administration/webhook-failures',
          'Webhook failures',
          <WebhookFailuresBadge counts={webhookCounts} />,
          WEBHOOK_FAILURES_READ,
        )}
        {item('/administration/feature-flags', 'Feature flags', null, FEATURE_FLAGS_READ)}
        {item('/administration/rate-limit-overrides', 'Rate-limit overrides', null, RATE_LIMITS_READ)}
        {item('/administration/audit', 'Audit', null, 'audit.read')}
        {item('/administration/plugins', 'Plugins', null, 'plugins.read')}
      </ul>
    </nav>
  );
}

function Shell({ ctx, onSignOut }) {
  const path = usePath();
  const attention = useAttention(ctx, path.startsWith('/administration/attention'));
  const webhookCounts = useWebhookFailureCounts(ctx, path.startsWith('/administration/webhook-failures'));
  let page;
  let m;
  if ((m = path.match(/^\/administration\/jobs\/([^/]+)\/?$/))) page = <JobPage id={decodeURIComponent(m[1])} />;
  else if ((m = path.match(/^\/administration\/runs\/(\d+)\/?$/))) page = <RunPage id={Number(m[1])} />;
  else if (/^\/administration\/runs\/?$/.test(path)) page = <RunsPage />;
  else if ((m = path.match(/^\/administration\/alerts\/(\d+)\/?$/))) page = <AlertPage id={Number(m[1])} />;
  else if (/^\/administration\/alerts\/?$/.test(path)) page = <AlertsPage />;
  else if (path.startsWith('/administration/attention')) page = <AttentionPage data={attention} />;
  else if ((m = path.match(/^\/administration\/notifications\/([^/]+)\/?$/)))
    page = <NotificationGroupPage id={decodeURIComponent(m[1])} />;
  else if (/^\/administration\/notifications\/?$/.test(path)) page = <NotificationsPage />;
  else if (path.startsWith('/administration/webhook-failures')) page = <WebhookFailuresPage />;
  else if (path.startsWith('/administration/feature-flags')) page = <FeatureFlagsPage />;
  else if (path.startsWith('/administration/rate-limit-overrides')) page = <RateLimitOverridesPage />;
  else if (path.startsWith('/administration/plugins')) page = <PluginsPage />;
  else if (path.startsWith('/administration/audit')) page = <AuditPage />;
  else page = <JobsPage />;
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
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Opskernel</span>
        <Nav path={path} attention={attention.count} alertCounts={attention.alertCounts} webhookCounts={webhookCounts} />
        <div class="who" aria-label="Signed in as">
          <span class="user">{ctx.me.user_id}</span>
          <span class="role">{ctx.me.role}</span>
          <span class="scope" title="Scope: you see and act only at or under this node">
            {ctx.me.scope}
          </span>
          <button type="button" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </Session.Provider>
  );
}

function App() {
  const [ctx, setCtx] = useState(null);
  const [reason, setReason] = useState('');
  const [loading, setLoading] = useState(!!session.token());
  const load = async (me) => {
    const [types, settings] = await Promise.all([
      api('/api/v1/job-types').catch(() => ({ types: [] })),
      fetch('/administration/settings.json').then((r) => r.json()).catch(() => ({})),
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
      setReason(`Signed out: ${detail || 'the token is no longer accepted'}`);
    });
    if (session.token())
      api('/api/v1/me')
        .then(load)
        .catch(() => {
          session.clear();
          setLoading(false);
        });
  }, []);
  if (loading) return <p class="loading">Loading…</p>;
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

render(<App />, document.getElementById('app'));
