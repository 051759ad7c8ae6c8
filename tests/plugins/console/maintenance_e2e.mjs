// The console's Maintenance page and banner end to end: the real kernel with
// admin-http, console and maintenance-mode, driven in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core) at 1366x768.
//
// A platform administrator puts a tenant into read-only maintenance from the
// page (the button waits for a reason; a window ending before it starts and
// an unknown tenant are refused with the server's reason in the dialog,
// nothing stored); the tenant's user sees the banner in the console and its
// writes are refused with 503 while its reads are served; another tenant's
// user sees no banner; the administrator ends the window early with a
// reason and the banner goes. A tenant put offline cannot use the console:
// signing in shows the banner. The API and the audit trail agree at each
// step. A role without maintenance.read has no menu entry. Screenshots go
// to --out.
//
//   node maintenance_e2e.mjs --kernel BIN --plugins DIR --web DIR --out DIR
import * as e2e from './e2e.mjs';
import { check, step } from './e2e.mjs';
import { featurePageTest } from '../../support/admin_feature_e2e.mjs';

const test = {
  title: 'console maintenance e2e',
  name: 'mnt',
  plugins: ['maintenance-mode.so'],
  permissions: `platform_administrator = *
tenant_administrator = jobs.read, alerts.read, alerts.create
tenant_user = jobs.read
`,
};
const checks = async (t) => {
  const { base, adminToken, cli, api, problems, newPage, shot, signIn, menu, audit, user, hierarchy } = t;
  const row = (page, tenant) => page.locator(`tr[data-window-tenant="${tenant}"]`);
  const BASE = '/api/v1/maintenance';
  // A request with `token`: its status and problem.
  const as = async (token, method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json().catch(() => ({})) };
  };
  hierarchy();
  cli('tenants', 'add', 'tenant:other', '--parent', 'partner:p1');
  const tara = user('tara', 'TenantAdministrator', 'tenant:acme');
  const otto = user('otto', 'TenantAdministrator', 'tenant:other');
  check(tara.startsWith('opk_') && otto.startsWith('opk_'), 'users add printed tokens');
  const a11y = [];
  const page = await newPage();
  await signIn(page, adminToken);

  step('the menu has Maintenance; start a window from the page, bad input refused naming the field');
  await menu(page).getByRole('link', { name: 'Maintenance' }).click();
  await page.waitForURL(/\/administration\/maintenance$/);
  await page.getByText('No maintenance windows match.').waitFor();
  await page.getByRole('button', { name: 'Start maintenance' }).click();
  let dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Tenant/).fill('tenant:nope');
  await dlg.getByLabel(/^Mode/).selectOption('read-only');
  await dlg.getByLabel(/^Banner/).fill('Ledger upgrade, back at 15:00');
  check(await dlg.getByRole('button', { name: 'Start maintenance' }).isDisabled(), 'no reason, no window');
  await dlg.getByLabel(/^Reason/).fill('CHG-812 ledger upgrade');
  a11y.push(...(await e2e.accessibilityProblems(page, 'the start dialog', 'main .table-wrap')));
  await dlg.getByRole('button', { name: 'Start maintenance' }).click();
  await dlg.getByRole('alert').filter({ hasText: "tenant: no tenant 'tenant:nope'" }).waitFor();
  await dlg.getByLabel(/^Tenant/).fill('tenant:acme');
  await dlg.getByLabel(/^Starts/).fill('2031-06-01T12:00');
  await dlg.getByLabel(/^Ends/).fill('2031-06-01T11:00');
  await dlg.getByRole('button', { name: 'Start maintenance' }).click();
  await dlg.getByRole('alert').filter({ hasText: 'ends_ms: the window ends before it starts' }).waitFor();
  check((await api('GET', `${BASE}?state=`)).windows.length === 0, 'nothing stored by the refusals');
  await dlg.getByLabel(/^Starts/).fill('');
  await dlg.getByLabel(/^Ends/).fill('');
  await dlg.getByRole('button', { name: 'Start maintenance' }).click();
  await page.getByRole('status').filter({ hasText: 'tenant:acme: read-only now.' }).waitFor();
  await row(page, 'tenant:acme').waitFor();
  const made = (await api('GET', `${BASE}?tenant=tenant:acme`)).windows[0];
  check(made.mode === 'read-only' && made.state === 'active' && made.reason === 'CHG-812 ledger upgrade', `stored: ${JSON.stringify(made)}`);
  check((await audit('maintenance.create')).length === 1, 'the start is audited');
  a11y.push(...(await e2e.accessibilityProblems(page, 'the maintenance page', 'main .table-wrap')));
  await shot(page, 'm1-started');

  step("the tenant's user sees the banner; its writes are refused, its reads served; another tenant is unaffected");
  const acme = await newPage();
  await signIn(acme, tara);
  await acme.getByTestId('maintenance-banner').filter({ hasText: 'Ledger upgrade, back at 15:00' }).waitFor();
  check((await acme.getByTestId('maintenance-banner').innerText()).startsWith('Read-only for maintenance'), 'read-only');
  check((await as(tara, 'GET', '/api/v1/jobs')).status === 200, 'a read is served');
  const refused = await as(tara, 'POST', '/api/v1/alerts', {});
  check(refused.status === 503 && refused.body.maintenance?.banner === 'Ledger upgrade, back at 15:00', `a write is refused: ${JSON.stringify(refused)}`);
  a11y.push(...(await e2e.accessibilityProblems(acme, "the tenant's page with the banner", 'main .table-wrap')));
  await shot(acme, 'm2-banner');
  const other = await newPage();
  await signIn(other, otto);
  await menu(other).getByRole('link').first().waitFor();
  await other.waitForTimeout(500);
  check((await other.getByTestId('maintenance-banner').count()) === 0, 'no banner for another tenant');
  check((await as(otto, 'POST', '/api/v1/alerts', {})).status === 422, "another tenant's write reaches its route");
  const entries = await menu(other).getByRole('link').allInnerTexts();
  check(!entries.some((e) => e.startsWith('Maintenance')), `no Maintenance entry without maintenance.read: ${entries}`);

  step('end it early with a reason: the banner goes');
  await page.getByRole('button', { name: 'End now: maintenance of tenant:acme' }).click();
  dlg = page.getByRole('dialog');
  check(await dlg.getByRole('button', { name: 'End maintenance' }).isDisabled(), 'no reason, no end');
  await dlg.getByLabel(/^Reason/).fill('upgrade done early');
  await dlg.getByRole('button', { name: 'End maintenance' }).click();
  await page.getByRole('status').filter({ hasText: 'The maintenance of tenant:acme has ended.' }).waitFor();
  await row(page, 'tenant:acme').waitFor({ state: 'detached' });
  check((await api('GET', `${BASE}/${made.id}`)).window.state === 'ended', 'ended in the store');
  const ended = await audit('maintenance.end');
  check(ended.length === 1 && ended[0].reason === 'upgrade done early', `the end is audited with its reason: ${JSON.stringify(ended)}`);
  check((await as(tara, 'POST', '/api/v1/alerts', {})).status === 422, 'the tenant writes again');
  await acme.reload();
  await menu(acme).getByRole('link').first().waitFor();
  await acme.waitForTimeout(500);
  check((await acme.getByTestId('maintenance-banner').count()) === 0, 'the banner is gone');
  await page.getByLabel('State').selectOption('ended');
  await row(page, 'tenant:acme').waitFor();
  check((await row(page, 'tenant:acme').getByTestId('window').innerText()).startsWith('ended'), 'listed as ended');
  await shot(page, 'm3-ended');

  step('offline: signing in shows the banner');
  await api('POST', BASE, { tenant: 'tenant:acme', mode: 'offline', banner: 'Moving data centres', reason: 'CHG-900', duration: '1h' });
  const off = await newPage();
  await off.goto(`${base}/administration/jobs`);
  await off.getByLabel('API token').fill(tara);
  await off.keyboard.press('Enter');
  await off.getByText('tenant:acme is offline for maintenance: Moving data centres', { exact: false }).waitFor();
  await shot(off, 'm4-offline');

  check(a11y.length === 0, `every control is labelled and nothing scrolls sideways: ${a11y.join('; ')}`);
  check(problems.length === 0 || problems.every((p) => p.includes('503')), `no page errors: ${problems.join(' | ')}`);
};
await featurePageTest(test, checks);
