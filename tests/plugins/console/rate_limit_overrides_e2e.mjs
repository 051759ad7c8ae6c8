// The console's Rate-limit overrides page end to end: the real kernel with
// admin-http, console and rate-limit-overrides, driven in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core) at 1366x768.
//
// A platform administrator sees an override made through the API with its
// time left, creates one from the page (the button waits for a reason; a
// block with host bits set and an expiry beyond max_duration are refused
// with the server's reason in the dialog, nothing stored), and ends one
// early with a reason: the API and the audit trail agree at each step, and
// the ended override is listed under "Ended". A role granted
// rate_limits.read sees the overrides without a write button; a role
// without it has no menu entry and is told it may not see the page.
// Screenshots go to --out.
//
//   node rate_limit_overrides_e2e.mjs --kernel BIN --plugins DIR --web DIR --out DIR
import * as e2e from './e2e.mjs';
import { check, step } from './e2e.mjs';
import { featurePageTest } from '../../support/admin_feature_e2e.mjs';

// The tenant administrator may read the overrides; the tenant user may not.
const test = {
  title: 'console rate-limit overrides e2e',
  name: 'rlo',
  plugins: ['rate-limit-overrides.so'],
  permissions: `platform_administrator = *
tenant_administrator = jobs.read, rate_limits.read
tenant_user = jobs.read
`,
};
const checks = async ({ base, adminToken, api, problems, newPage, shot, signIn, menu, audit, user, hierarchy }) => {
  const row = (page, target) => page.locator(`tr[data-override-target="${target}"]`);
  const BASE = '/api/v1/rate-limit-overrides';
  hierarchy();
  const reader = user('tara', 'TenantAdministrator', 'tenant:acme');
  const nobody = user('uno', 'TenantUser', 'tenant:acme');
  check(reader.startsWith('opk_') && nobody.startsWith('opk_'), 'users add printed tokens');
  await api('POST', BASE, { tenant: 'tenant:acme', limit: 'unlimited', reason: 'import for acme', duration: '2d' });
  const a11y = [];
  const page = await newPage();
  await signIn(page, adminToken);

  step('the menu has Rate-limit overrides; the page lists the active ones with their time left');
  await menu(page).getByRole('link', { name: 'Rate-limit overrides' }).click();
  await page.waitForURL(/\/administration\/rate-limit-overrides$/);
  await row(page, 'tenant:acme').waitFor();
  const acmeLeft = await row(page, 'tenant:acme').getByTestId('time-left').innerText();
  check(/^(1 d 23 h|2 d 0 h) \(until /.test(acmeLeft), `two days left: ${acmeLeft}`);
  check((await row(page, 'tenant:acme').innerText()).includes('unlimited'), 'the limit is shown');

  step('create one from the page: a reason is required, bad input is refused naming the field');
  await page.getByRole('button', { name: 'Create override' }).click();
  let dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Address or block/).fill('203.0.113.1/24');
  await dlg.getByLabel(/^Limit/).selectOption('raise');
  await dlg.getByLabel(/^Requests per minute/).fill('5000');
  await dlg.getByLabel(/^Ends after/).fill('3h');
  check(await dlg.getByRole('button', { name: 'Create override' }).isDisabled(), 'no reason, no override');
  await dlg.getByLabel(/^Reason/).fill('CHG-812 backfill');
  a11y.push(...(await e2e.accessibilityProblems(page, 'the create dialog', 'main .table-wrap')));
  await dlg.getByRole('button', { name: 'Create override' }).click();
  await dlg.getByRole('alert').filter({ hasText: "address: '203.0.113.1/24' has bits set past its prefix; the block is 203.0.113.0/24" }).waitFor();
  await dlg.getByLabel(/^Address or block/).fill('203.0.113.0/24');
  await dlg.getByLabel(/^Ends after/).fill('8d');
  await dlg.getByRole('button', { name: 'Create override' }).click();
  await dlg.getByRole('alert').filter({ hasText: 'duration: 8d is too long; at most 7d ahead (max_duration)' }).waitFor();
  check((await api('GET', BASE)).overrides.length === 1, 'nothing stored by the refusals');
  await dlg.getByLabel(/^Ends after/).fill('3h');
  await dlg.getByRole('button', { name: 'Create override' }).click();
  await page.getByRole('status').filter({ hasText: '203.0.113.0/24: 5,000 / min until' }).waitFor();
  await row(page, '203.0.113.0/24').waitFor();
  const made = (await api('GET', `${BASE}?target=203.0.113.0/24`)).overrides[0];
  check(made.limit === 5000 && made.state === 'active' && made.reason === 'CHG-812 backfill', `stored: ${JSON.stringify(made)}`);
  check(Math.abs(made.expires_ms - made.created_ms - 3 * 3600000) < 1000, 'ends three hours after its creation');
  check((await row(page, '203.0.113.0/24').getByTestId('time-left').innerText()).startsWith('2 h 59 min') ||
        (await row(page, '203.0.113.0/24').getByTestId('time-left').innerText()).startsWith('3 h 0 min'), 'three hours left');
  a11y.push(...(await e2e.accessibilityProblems(page, 'the overrides page', 'main .table-wrap')));
  await shot(page, 'r1-created');

  step('end it early with a reason');
  await page.getByRole('button', { name: 'End now: override for 203.0.113.0/24' }).click();
  dlg = page.getByRole('dialog');
  check(await dlg.getByRole('button', { name: 'End override' }).isDisabled(), 'no reason, no end');
  await dlg.getByLabel(/^Reason/).fill('backfill done');
  await dlg.getByRole('button', { name: 'End override' }).click();
  await page.getByRole('status').filter({ hasText: 'The override for 203.0.113.0/24 has ended.' }).waitFor();
  await row(page, '203.0.113.0/24').waitFor({ state: 'detached' });
  check((await api('GET', `${BASE}/${made.id}`)).override.state === 'removed', 'removed in the store');
  const ended = await audit('rate_limits.delete');
  check(ended.length === 1 && ended[0].reason === 'backfill done', `the end is audited with its reason: ${JSON.stringify(ended)}`);
  await page.getByLabel('State').selectOption('ended');
  await row(page, '203.0.113.0/24').waitFor();
  check((await row(page, '203.0.113.0/24').getByTestId('time-left').innerText()).startsWith('removed'), 'listed as removed');
  check((await row(page, 'tenant:acme').count()) === 0, 'an active one is not among the ended');
  await shot(page, 'r2-ended');

  step('a reader sees the overrides without a write button; a role without the permission has no entry');
  const tara = await newPage();
  await signIn(tara, reader);
  await menu(tara).getByRole('link', { name: 'Rate-limit overrides' }).click();
  await row(tara, 'tenant:acme').waitFor();
  for (const b of [/^Create override/, /^End override/])
    check((await tara.getByRole('button', { name: b }).count()) === 0, `the reader has no ${b} button`);
  a11y.push(...(await e2e.accessibilityProblems(tara, "the reader's page", 'main .table-wrap')));
  await shot(tara, 'r3-reader');
  const uno = await newPage();
  await signIn(uno, nobody);
  await menu(uno).getByRole('link').first().waitFor();
  const entries = await menu(uno).getByRole('link').allInnerTexts();
  check(!entries.some((e) => e.startsWith('Rate-limit overrides')), `no Rate-limit overrides entry: ${entries}`);
  await uno.goto(`${base}/administration/rate-limit-overrides`);
  await uno.getByText('may not see the rate-limit overrides', { exact: false }).waitFor();

  check(a11y.length === 0, `every control is labelled and nothing scrolls sideways: ${a11y.join('; ')}`);
  check(problems.length === 0, `no page errors: ${problems.join(' | ')}`);
};
await featurePageTest(test, checks);
