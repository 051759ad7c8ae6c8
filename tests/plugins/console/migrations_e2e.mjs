// The console's Migrations page end to end: the real kernel with
// admin-http, console, migration-status and the fixture plugin "migrating"
// (tests/plugins/migration-status/migrating_plugin.cpp) set to a build
// whose version 3 fails, driven in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core) at 1366x768.
//
// A platform administrator sees the kernel current and the plugin failed
// with the database's error and versions 3 and 4 pending, as the API says;
// the plugin's row opens its applied migrations with their durations and
// its attempts, the failed one with its error; the state filter keeps the
// failed owner only. A role granted migrations.read sees the page; a role
// without it has no menu entry and is told it may not see the page.
// Screenshots go to --out.
//
//   node migrations_e2e.mjs --kernel BIN --plugins DIR --fixtures DIR --web DIR --out DIR
import * as e2e from './e2e.mjs';
import { check, step } from './e2e.mjs';
import { featurePageTest } from '../../support/admin_feature_e2e.mjs';

// The tenant administrator may read the migrations; the tenant user may not.
const test = {
  title: 'console migrations e2e',
  name: 'migrations',
  plugins: ['migration-status.so'],
  fixtures: ['migrating.so'],
  permissions: `platform_administrator = *
tenant_administrator = jobs.read, migrations.read
tenant_user = jobs.read
`,
  more: `[plugin.migrating]
versions = 4
fail = true
`,
};
const checks = async ({ base, adminToken, api, problems, newPage, shot, signIn, menu, user, hierarchy }) => {
  const row = (page, owner) => page.locator(`tr[data-owner="${owner}"]`);
  hierarchy();
  const reader = user('tara', 'TenantAdministrator', 'tenant:acme');
  const nobody = user('uno', 'TenantUser', 'tenant:acme');
  check(reader.startsWith('opk_') && nobody.startsWith('opk_'), 'users add printed tokens');
  const mine = (await api('GET', '/api/v1/migrations/migrating')).migrations;
  check(mine.state === 'failed' && mine.version === 2 && mine.pending.length === 2, `the API has it failed: ${JSON.stringify(mine)}`);
  const a11y = [];
  const page = await newPage();
  await signIn(page, adminToken);

  step('the menu has Migrations; the page shows the kernel current and the plugin failed');
  await menu(page).getByRole('link', { name: 'Migrations' }).click();
  await page.waitForURL(/\/administration\/migrations$/);
  await row(page, 'kernel').waitFor();
  check((await row(page, 'kernel').getAttribute('data-owner-state')) === 'current', 'the kernel is current');
  const failedRow = row(page, 'migrating');
  check((await failedRow.getAttribute('data-owner-state')) === 'failed', 'the plugin failed');
  const text = await failedRow.innerText();
  check(text.includes('Failed') && text.includes('2 of 4') && text.includes('3 (colour), 4 (colour index)'), `state, version and pending shown: ${text}`);
  check(text.includes('p_migrating_missing'), `the database's error shown: ${text}`);
  const last = await page.getByTestId('last-run').innerText();
  // The last run is whichever attempt came last (another plugin's migrations
  // may follow the failed one); the failed one is among the recent runs.
  const all = await api('GET', '/api/v1/migrations');
  const l = all.last_run;
  check(last.includes(`Last migration run: ${l.owner} version ${l.version} (${l.name}) ${l.outcome}`) && last.includes('1 failed'), `the last run: ${last}`);
  check(all.recent.some((a) => a.owner === 'migrating' && a.version === 3 && a.outcome === 'failed'), `the failed run is recent: ${JSON.stringify(all.recent)}`);
  a11y.push(...(await e2e.accessibilityProblems(page, 'the migrations page', 'main .table-wrap')));
  await shot(page, 'm1-owners');

  step("the plugin's migrations: applied with durations, the failed attempt with its error");
  await page.getByRole('button', { name: 'Migrations of migrating' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.locator('[data-owner-detail="migrating"]').waitFor();
  check((await dlg.locator('tr[data-migration-version]').count()) === 2, 'two applied');
  const applied = await dlg.locator('tr[data-migration-version="1"]').innerText();
  check(/items/.test(applied) && /\d ms|\d s/.test(applied), `the first with its duration: ${applied}`);
  check((await dlg.locator('tr[data-pending-version]').count()) === 2, 'two pending');
  check((await dlg.locator('tr[data-attempt-outcome="failed"]').count()) === 1, 'one failed attempt');
  check((await dlg.getByTestId('failure').innerText()).includes('was rolled back'), 'the failure says it was rolled back');
  a11y.push(...(await e2e.accessibilityProblems(page, "the owner's dialog", '[role="dialog"] .table-wrap')));
  await shot(page, 'm2-owner');
  await dlg.locator('.actions').getByRole('button', { name: 'Close' }).click();

  step('the state filter');
  await page.getByLabel('State').selectOption('failed');
  await row(page, 'kernel').waitFor({ state: 'detached' });
  await row(page, 'migrating').waitFor();
  await page.getByLabel('State').selectOption('pending');
  await page.getByText('No owner matches.').waitFor();

  step('a reader sees the page; a role without the permission has no entry');
  const tara = await newPage();
  await signIn(tara, reader);
  await menu(tara).getByRole('link', { name: 'Migrations' }).click();
  await row(tara, 'migrating').waitFor();
  await shot(tara, 'm3-reader');
  const uno = await newPage();
  await signIn(uno, nobody);
  await menu(uno).getByRole('link').first().waitFor();
  const entries = await menu(uno).getByRole('link').allInnerTexts();
  check(!entries.some((e) => e.startsWith('Migrations')), `no Migrations entry: ${entries}`);
  await uno.goto(`${base}/administration/migrations`);
  await uno.getByText('may not see the schema migrations', { exact: false }).waitFor();

  check(a11y.length === 0, `every control is labelled and nothing scrolls sideways: ${a11y.join('; ')}`);
  check(problems.length === 0, `no page errors: ${problems.join(' | ')}`);
};
await featurePageTest(test, checks);
