// The console's Feature flags page end to end: the real kernel with
// admin-http, console and feature-flags, driven in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core) at 1366x768.
//
// A platform administrator creates a boolean flag from the page, turns it
// on with a reason (the button waits for one), sets a string flag with an
// expiry, resets it, and deletes the boolean one; the API and the audit
// trail agree at each step, and a value of the wrong type is refused with
// the server's reason in the dialog. A role granted feature_flags.read
// sees the flags without a write button; a role without it has no menu
// entry and is told it may not see the page. Screenshots go to --out.
//
//   node feature_flags_e2e.mjs --kernel BIN --plugins DIR --web DIR --out DIR
import * as e2e from './e2e.mjs';
import { check, step } from './e2e.mjs';
import { featurePageTest } from '../../support/admin_feature_e2e.mjs';

// The tenant administrator may read the flags; the tenant user may not.
const test = {
  title: 'console feature flags e2e',
  name: 'flags',
  plugins: ['feature-flags.so'],
  permissions: `platform_administrator = *
tenant_administrator = jobs.read, feature_flags.read
tenant_user = jobs.read
`,
};
const checks = async ({ base, adminToken, api, problems, newPage, shot, signIn, menu, audit, user, hierarchy }) => {
  const row = (page, id) => page.locator(`tr[data-flag-id="${id}"]`);
  hierarchy();
  const reader = user('tara', 'TenantAdministrator', 'tenant:acme');
  const nobody = user('uno', 'TenantUser', 'tenant:acme');
  check(reader.startsWith('opk_') && nobody.startsWith('opk_'), 'users add printed tokens');
  await api('POST', '/api/v1/feature-flags', {
    id: 'ui.theme',
    type: 'string',
    default: 'light',
    description: 'The console theme',
    reason: 'e2e',
  });
  const a11y = [];
  const page = await newPage();
  await signIn(page, adminToken);

  step('the menu has Feature flags; the page lists the flags');
  await menu(page).getByRole('link', { name: 'Feature flags' }).click();
  await page.waitForURL(/\/administration\/feature-flags$/);
  await row(page, 'ui.theme').waitFor();
  check((await row(page, 'ui.theme').getByTestId('flag-value').innerText()).includes('"light"'), 'the string at its default');

  step('create a boolean flag from the page');
  await page.getByRole('button', { name: 'Create flag' }).click();
  let dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Id/).fill('checkout.new-flow');
  await dlg.getByLabel(/^Type/).selectOption('boolean');
  await dlg.getByLabel(/^Description/).fill('The new checkout flow');
  await dlg.getByLabel(/^Reason/).fill('prepare the rollout');
  await dlg.getByRole('button', { name: 'Create flag' }).click();
  await page.getByRole('status').filter({ hasText: 'checkout.new-flow created.' }).waitFor();
  await row(page, 'checkout.new-flow').waitFor();
  check((await api('GET', '/api/v1/feature-flags/checkout.new-flow')).flag.value === false, 'created off');
  a11y.push(...(await e2e.accessibilityProblems(page, 'the flags page', 'main .table-wrap')));
  await shot(page, 'f1-created');

  step('turn it on: the reason is required');
  await page.getByRole('button', { name: 'Turn on checkout.new-flow' }).click();
  dlg = page.getByRole('dialog');
  check(await dlg.getByRole('button', { name: 'Set value' }).isDisabled(), 'no reason, no change');
  await dlg.getByLabel(/^Reason/).fill('roll out to everyone');
  a11y.push(...(await e2e.accessibilityProblems(page, 'the set dialog', 'main .table-wrap')));
  await dlg.getByRole('button', { name: 'Set value' }).click();
  await page.getByRole('status').filter({ hasText: 'checkout.new-flow set to on.' }).waitFor();
  await row(page, 'checkout.new-flow').getByTestId('flag-value').filter({ hasText: /^on/ }).waitFor();
  check((await api('GET', '/api/v1/feature-flags/checkout.new-flow')).flag.value === true, 'stored on');
  const updates = await audit('feature_flags.update');
  check(updates.length === 1 && updates[0].reason === 'roll out to everyone', `audited with the reason: ${JSON.stringify(updates)}`);
  await shot(page, 'f2-on');

  step('set the string with an expiry; a wrong type is refused naming the field');
  await page.getByRole('button', { name: 'Set value of ui.theme' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Value/).fill('dark');
  await dlg.getByLabel(/^Reason/).fill('try dark for a day');
  const tomorrow = new Date(Date.now() + 86400000);
  const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await dlg.getByLabel(/^Expires/).fill(local);
  await dlg.getByRole('button', { name: 'Set value' }).click();
  await page.getByRole('status').filter({ hasText: 'ui.theme set to "dark" until' }).waitFor();
  const theme = (await api('GET', '/api/v1/feature-flags/ui.theme')).flag;
  check(theme.value === 'dark' && theme.expires_ms > Date.now(), `overridden until tomorrow: ${JSON.stringify(theme)}`);
  await row(page, 'ui.theme').getByTestId('flag-value').filter({ hasText: '"dark" (overridden)' }).waitFor();
  await shot(page, 'f3-expiring');
  await api('POST', '/api/v1/feature-flags', { id: 'ui.rows', type: 'number', default: 50, description: 'Rows', reason: 'e2e' });
  await page.reload();
  await page.getByRole('button', { name: 'Set value of ui.rows' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Value/).fill('');
  await dlg.getByLabel(/^Reason/).fill('empty');
  await dlg.getByRole('button', { name: 'Set value' }).click();
  await dlg.getByRole('alert').filter({ hasText: 'value: the flag is a number, not a string' }).waitFor();
  check((await api('GET', '/api/v1/feature-flags/ui.rows')).flag.revision === 1, 'nothing changed');
  await dlg.getByRole('button', { name: 'Cancel' }).click();

  step('reset the string, delete the boolean');
  await page.getByRole('button', { name: 'Reset ui.theme' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Reason/).fill('back to light');
  await dlg.getByRole('button', { name: 'Reset' }).click();
  await page.getByRole('status').filter({ hasText: 'ui.theme is back at its default.' }).waitFor();
  check((await api('GET', '/api/v1/feature-flags/ui.theme')).flag.overridden === false, 'reset');
  await page.getByRole('button', { name: 'Delete checkout.new-flow' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Reason/).fill('rolled out for good');
  await dlg.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('status').filter({ hasText: 'checkout.new-flow deleted.' }).waitFor();
  await row(page, 'checkout.new-flow').waitFor({ state: 'detached' });
  const deleted = await audit('feature_flags.delete');
  check(deleted.length === 1 && deleted[0].reason === 'rolled out for good', 'the delete is audited with its reason');
  await shot(page, 'f4-reset-deleted');

  step('filters: overridden only, then by text');
  await page.getByLabel('State').selectOption('overridden');
  await page.getByText('No feature flags match.').waitFor();
  await page.getByLabel('State').selectOption('');
  await page.getByLabel('Id or description').fill('rows');
  await row(page, 'ui.rows').waitFor();
  await row(page, 'ui.theme').waitFor({ state: 'detached' });

  step('a reader sees the flags without a write button; a role without the permission has no entry');
  const tara = await newPage();
  await signIn(tara, reader);
  await menu(tara).getByRole('link', { name: 'Feature flags' }).click();
  await row(tara, 'ui.theme').waitFor();
  for (const b of [/^Create flag/, /^Turn /, /^Set value/, /^Reset /, /^Delete /])
    check((await tara.getByRole('button', { name: b }).count()) === 0, `the reader has no ${b} button`);
  a11y.push(...(await e2e.accessibilityProblems(tara, "the reader's page", 'main .table-wrap')));
  await shot(tara, 'f5-reader');
  const uno = await newPage();
  await signIn(uno, nobody);
  await menu(uno).getByRole('link').first().waitFor();
  const entries = await menu(uno).getByRole('link').allInnerTexts();
  check(!entries.some((e) => e.startsWith('Feature flags')), `no Feature flags entry: ${entries}`);
  await uno.goto(`${base}/administration/feature-flags`);
  await uno.getByText('may not see the feature flags', { exact: false }).waitFor();

  check(a11y.length === 0, `every control is labelled and nothing scrolls sideways: ${a11y.join('; ')}`);
  check(problems.length === 0, `no page errors: ${problems.join(' | ')}`);
};
await featurePageTest(test, checks);
