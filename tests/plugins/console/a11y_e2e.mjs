// The console for every operator, end to end in headless Chromium against a
// real kernel with every plugin that has a page: axe-core finds no violation
// (WCAG 2.1 A and AA and axe's best practices, contrast included) on any page
// or dialog, in light and in dark mode (each opened once, the system's
// scheme switched under it); a dialog gives focus back to the
// control that opened it; the pages are used by keyboard only; at 320 CSS px
// nothing but a wide table's own box scrolls sideways and dialogs fit a phone
// (390x844); a disabled action says why; a TenantUser's menu leads only to
// pages they may open. Times name their zone and follow the operator's
// choice (the browser's zone, given by Playwright's timezoneId, or UTC,
// kept), a job shows its own zone, a delayed start says when and how soon;
// dark mode chosen over the system's scheme is kept; the console speaks
// Swedish when the browser asks for it (the jobs, a job and a run included,
// job types titled from their manifests' translations), and the operator's
// choice is kept; the Delete dialog of a job and the New job dialog are
// checked like every other, and every dialog of the pages' table fits a
// phone (390x844). By keyboard only also: Attention's Mark all seen, the
// Overview's failures by job to a run, the run history's pager. Every list
// that can be empty says how to fill it; the Overview's open alerts by
// severity are what the alerts API lists; the run-now time range names its
// zone; an alert source (feature-flags-stale, raised by a flag overridden
// past stale_after) is named by its manifest's Swedish title on the alerts
// pages, and the plugins page names what plugins provide in Swedish; an
// admin feature's menu entry and page are named as its manifest translates
// it (maintenance-mode's), else by the console's Swedish.
//
//   node a11y_e2e.mjs --kernel BIN --plugins DIR --fixtures DIR --web DIR --out DIR
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { axeViolations } from './axe.mjs';
import * as e2e from './e2e.mjs';
import { check, chromiumOf, folders, kernelFolder, launch, startKernel, step } from './e2e.mjs';

const [KERNEL, PLUGINS, FIXTURES, WEB, OUT] = folders(process.argv.slice(2), ['kernel', 'plugins', 'fixtures', 'web', 'out']);
const chromium = chromiumOf(WEB);
const sv = (await import(pathToFileURL(join(WEB, 'src/i18n/sv.js')).href)).default;

const dir = mkdtempSync(join(tmpdir(), 'opk-console-a11y-e2e-'));
mkdirSync(OUT, { recursive: true });
const { base, adminToken, conf } = await kernelFolder(
  dir,
  [
    ...['admin-http.so', 'console.so', 'hello.so', 'notifications.so', 'channel-webhook.so', 'webhook-inbox.so',
        'feature-flags.so', 'rate-limit-overrides.so', 'maintenance-mode.so', 'migration-status.so', 'cache-purge.so'].map((f) => join(PLUGINS, f)),
    join(FIXTURES, 'engine_jobs.so'),
  ],
  `[permissions]
platform_administrator = *
tenant_user = jobs.read, alerts.read
[plugin.console]
poll_seconds = 2
[plugin.feature-flags]
stale_after = 1ms
[job.nightly-hello]
type = hello
planning = scheduled
cron = 30 2 * * *
time_zone = Europe/Stockholm
params = {"steps": 3, "step_ms": 50}
description = Greets every night
[job.long-hello]
type = hello
planning = disabled
params = {"steps": 600, "step_ms": 100}
description = A long run
[job.acme-report]
type = hello
planning = disabled
scope = tenant:acme
description = Acme's monthly report
${Array.from({ length: 55 }, (_, i) => `[job.zz-bulk-${String(i).padStart(2, '0')}]\ntype = hello\nplanning = disabled\ndescription = One of many, for the pager\n`).join('')}
${Array.from({ length: 1000 }, (_, i) => `[job.zzz-many-${String(i).padStart(4, '0')}]\ntype = hello\nplanning = disabled\n`).join('')}`,
);
const { cli, api, waitReady, stop } = startKernel(KERNEL, conf, base, adminToken);

let browser;
const problems = [];
const shot = (page, name) => e2e.shot(OUT, page, name);
const axe = (page, where) => axeViolations(page, WEB, where);

/** A page in a context of its own: `options` for the context (viewport, colorScheme, timezoneId, locale). */
async function newPage(options = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 }, ...options });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return page;
}

/** Signs in with `token` by keyboard: the token field has the focus when the page opens. */
async function signIn(page, token) {
  await page.goto(`${base}/administration/jobs`);
  await page.locator('#token').waitFor();
  check(await page.evaluate(() => document.activeElement?.id === 'token'), 'the sign-in field has the focus');
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.locator('header.top .who').waitFor();
}

/**
 * Disabled buttons outside dialogs and pagers that do not say why: each needs
 * aria-describedby naming an element there with text, or a title.
 */
async function unexplainedDisabled(page, where) {
  const found = await page.evaluate(() =>
    [...document.querySelectorAll('main button:disabled')]
      .filter((b) => !b.closest('dialog, .pager'))
      .filter((b) => {
        const ids = (b.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
        const said = ids.length > 0 && ids.every((id) => document.getElementById(id)?.textContent.trim());
        return !said && !b.title;
      })
      .map((b) => b.textContent.trim() || b.getAttribute('aria-label')),
  );
  return found.map((f) => `${where}: the disabled button '${f}' does not say why`);
}

/** Whether the page body scrolls sideways at its viewport's width (tables scroll in their own box). */
const scrollsSideways = (page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);

/** Moves to a console path as a link in the page would (no reload), and waits for the page's heading. */
async function go(page, path) {
  await page.evaluate((p) => {
    if (location.pathname !== p) document.querySelectorAll('main h1').forEach((h) => (h.dataset.left = 'yes'));
    history.pushState(null, '', p);
    window.dispatchEvent(new Event('opk-navigate'));
  }, path);
  // The new page's heading (the one left behind is marked), once it has loaded.
  await page.waitForFunction(() => !document.querySelector('main .loading') && document.querySelector('main h1:not([data-left])'));
}

let failed = false;
try {
  await waitReady();
  cli('tenants', 'add', 'distributor:d1', '--parent', 'platform');
  cli('tenants', 'add', 'partner:p1', '--parent', 'distributor:d1');
  cli('tenants', 'add', 'tenant:acme', '--parent', 'partner:p1');
  cli('tenants', 'add', 'tenant:zeta', '--parent', 'partner:p1');
  const tinaToken = cli('users', 'add', 'tina', '--role', 'TenantUser', '--scope', 'tenant:acme').split('\n').pop();
  browser = await launch(chromium);

  // Something on every page: runs done and failed, an alert, a flag, an override, a rule.
  const done = (await api('POST', '/api/v1/jobs/nightly-hello/run', { reason: 'a11y: a run' })).run_ids[0];
  const failedRun = (await api('POST', '/api/v1/runs', { job_type: 'hello', reason: 'a11y: a failure', params: { steps: 1, step_ms: 0, fail: true } })).run_ids[0];
  await api('POST', '/api/v1/notifications/groups', { id: 'acme-ops', name: 'Acme operations', scope: 'tenant:acme', description: 'Who hears about Acme' });
  const alert = (await api('POST', '/api/v1/alerts', { severity: 'critical', title: 'Acme invoices overdue', message: 'two invoices', scope: 'tenant:acme', area: 'billing' })).alert;
  // A warning of a bundled alert source, which its manifest titles in Swedish: a flag held
  // overridden without an expiry for longer than stale_after (1 ms here), the source evaluated now.
  await api('POST', '/api/v1/feature-flags', { id: 'ops.kept', type: 'boolean', default: false, description: 'Kept on by hand', reason: 'a11y: on', value: true });
  // (The alert sources' jobs are defined once their plugins have started, which may follow readiness.)
  for (let i = 0; i < 100 && !(await api('GET', '/api/v1/jobs/alerts.feature-flags-stale').catch(() => null)); i++) await e2e.sleep(100);
  const evaluation = (await api('POST', '/api/v1/jobs/alerts.feature-flags-stale/run', { reason: 'a11y: evaluate' })).run_ids[0];
  // An info alert and a closed warning: the Overview counts the alerts not closed, by severity.
  await api('POST', '/api/v1/alerts', { severity: 'info', title: 'Acme quota at 80%', scope: 'tenant:acme' });
  const gone = (await api('POST', '/api/v1/alerts', { severity: 'warning', title: 'Acme disk was full', scope: 'tenant:acme' })).alert;
  await api('POST', `/api/v1/alerts/${gone.id}/close`, { reason: 'a11y: fixed' });
  // Something for each dialog: an override to end, a window to call off; and a group without rules.
  await api('POST', '/api/v1/rate-limit-overrides', { address: '203.0.113.7', limit: 500, reason: 'a11y: a partner', duration: '2h' });
  await api('POST', '/api/v1/maintenance', { tenant: 'tenant:zeta', mode: 'read-only', banner: 'Upgrade', reason: 'a11y: later', starts_ms: Date.now() + 86400000, duration: '2h' });
  await api('POST', '/api/v1/notifications/groups', { id: 'quiet-ops', name: 'Quiet operations', scope: 'platform', description: 'No rules yet' });
  for (const id of [done, evaluation])
    for (let i = 0; i < 100 && (await api('GET', `/api/v1/runs/${id}`)).run.phase !== 'COMPLETED'; i++) await e2e.sleep(100);
  const stale = (await api('GET', '/api/v1/alerts?source=feature-flags-stale')).alerts;
  check(stale.length === 1, `the stale override raised its alert: ${JSON.stringify(stale)}`);

  // Pages, and the buttons on each that open a dialog.
  const pages = [
    ['jobs', '/administration/jobs', [{ select: 'Select nightly-hello', button: /^Run now/ }, { button: /log of run/i }, { button: /^New job$/ }]],
    ['job', '/administration/jobs/nightly-hello', [{ button: /^Run now/ }, { button: /^Delete$/ }]],
    ['job scheduling', '/administration/jobs/nightly-hello', [], 'Scheduling'],
    ['job executions', '/administration/jobs/nightly-hello', [], 'Latest executions'],
    ['run history', '/administration/runs', [{ button: /log of run/i }, { select: `Select run ${failedRun}`, button: /^Retry \(1\)$/ }]],
    ['run', `/administration/runs/${done}`, []],
    ['failed run', `/administration/runs/${failedRun}`, [{ button: /^Retry/ }]],
    ['alerts', '/administration/alerts', [{ button: /^New alert|^Create/ }]],
    ['alert', `/administration/alerts/${alert.id}`, [{ button: /^Acknowledge/ }, { button: /^Silence/ }, { button: /^Close/ }]],
    ['attention', '/administration/attention', []],
    ['overview', '/administration/overview', []],
    ['notifications', '/administration/notifications', [{ button: /^Create group/ }]],
    ['notification group', '/administration/notifications/acme-ops', [{ button: /^Add rule/ }]],
    ['webhook failures', '/administration/webhook-failures', []],
    ['feature flags', '/administration/feature-flags',
      [{ button: /^New flag|^Create/ }, { button: /^Turn off ops\.kept$/ }, { button: /^Delete ops\.kept$/ }]],
    ['rate-limit overrides', '/administration/rate-limit-overrides', [{ button: /^New override|^Create|^Add/ }, { button: /^End now: override for / }]],
    ['workers', '/administration/workers', []],
    ['maintenance', '/administration/maintenance', [{ button: /^Start maintenance/ }, { button: /^Call off: maintenance of tenant:zeta$/ }]],
    ['migrations', '/administration/migrations', [{ button: /^Migrations of / }]],
    ['caches', '/administration/caches', []],
    ['plugins', '/administration/plugins', []],
    ['audit', '/administration/audit', []],
  ];

  const found = [];
  // One pass: each page and each dialog is opened once and axe-checked in light and then in dark mode,
  // the system's scheme switched under it (the console follows prefers-color-scheme while it is kept).
  step('axe on every page and dialog, in light and dark mode');
  {
    const page = await newPage({ colorScheme: 'light' });
    /** Switches the system's scheme to `scheme` and waits for the console to follow it. */
    const scheme = async (to) => {
      await page.emulateMedia({ colorScheme: to });
      await page.waitForFunction((x) => document.documentElement.getAttribute('data-theme') === x, to);
    };
    /** axe in light mode, then in dark mode, then back to light; `where` names the page or dialog. */
    const axeBoth = async (where, shotName) => {
      found.push(...(await axe(page, `light ${where}`)));
      if (shotName) await shot(page, `light-${shotName}`);
      await scheme('dark');
      found.push(...(await axe(page, `dark ${where}`)));
      if (shotName) await shot(page, `dark-${shotName}`);
      await scheme('light');
    };
    await page.goto(`${base}/administration/jobs`);
    await page.locator('#token').waitFor();
    await axeBoth('sign-in');
    await signIn(page, adminToken);
    check((await page.getAttribute('html', 'data-theme')) === 'light', "the page follows the system's light scheme");
    await scheme('dark');
    check((await page.getAttribute('html', 'data-theme')) === 'dark', "the page follows the system's scheme once it turns dark");
    await scheme('light');
    for (const [name, path, dialogs, tab] of pages) {
      await go(page, path);
      await page.locator('main h1').first().waitFor();
      await page.waitForLoadState('networkidle');
      if (tab) {
        await page.getByRole('tab', { name: tab }).click();
        await page.waitForTimeout(400);
      }
      await axeBoth(name, name.replace(/ /g, '-'));
      found.push(...(await unexplainedDisabled(page, name)));
      for (const d of dialogs) {
        if (d.select) await page.getByRole('checkbox', { name: d.select }).check();
        const opener = page.getByRole('button', { name: d.button }).first();
        if (!(await opener.count())) {
          found.push(`${name}: no button ${d.button}`);
          continue;
        }
        if (await opener.isDisabled()) {
          found.push(`${name}: ${d.button} is disabled`);
          continue;
        }
        await opener.evaluate((el) => (el.dataset.opener = 'yes'));
        await opener.focus();
        await page.keyboard.press('Enter');
        await page.getByRole('dialog').waitFor();
        await page.waitForTimeout(200);
        await axeBoth(`${name} dialog ${d.button}`);
        await shot(page, `${name.replace(/ /g, '-')}-dialog`);
        found.push(...(await e2e.phoneFitProblems(page, `${name} dialog ${d.button}`)));
        await page.keyboard.press('Escape');
        await page.getByRole('dialog').waitFor({ state: 'detached' });
        let back = false;
        for (let i = 0; i < 20 && !(back = await page.evaluate(() => document.activeElement?.dataset.opener === 'yes')); i++)
          await page.waitForTimeout(50);
        await page.evaluate(() => document.querySelectorAll('[data-opener]').forEach((el) => delete el.dataset.opener));
        if (!back) found.push(`${name}: focus did not return to ${d.button} after the dialog closed`);
        if (d.select) await page.getByRole('checkbox', { name: d.select }).uncheck();
      }
    }
    await page.context().close();
  }
  check(!found.length, `axe and focus:\n  ${found.join('\n  ')}`);

  step('keyboard only: skip links, a job selected and run now with a reason, the menu, the pager');
  {
    const page = await newPage();
    await signIn(page, adminToken);
    await page.getByRole('link', { name: 'acme-report' }).waitFor();
    // The jobs page's text filter settles 250 ms after it opens (and sets the page back to the first).
    await page.waitForTimeout(500);
    const tab = async (pred, what, max = 80, key = 'Tab') => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press(key);
        if (await page.evaluate(pred)) return;
      }
      throw new Error(`${key} never reached ${what}`);
    };
    // The page has the focus after a move; the skip links are before the header.
    await tab(() => document.activeElement.textContent === 'Skip to the pager', 'the skip link to the pager', 40, 'Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    check((await page.evaluate(() => document.activeElement.textContent)) === 'Skip to content', 'Skip to content comes first');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    check((await page.evaluate(() => document.activeElement.closest('.pager') !== null && document.activeElement.textContent)) === 'Next',
      'the skip link puts the focus on the pager');
    await page.keyboard.press('Enter');
    await page.getByText(/^51–100 of [\d,]+$/).waitFor();
    // Past the first page the skip link leads to Previous, the pager's first button.
    await page.locator('main').focus();
    await tab(() => document.activeElement.textContent === 'Skip to the pager', 'the skip link to the pager', 40, 'Shift+Tab');
    await page.keyboard.press('Enter');
    check((await page.evaluate(() => document.activeElement.textContent)) === 'Previous', 'the skip link puts the focus on Previous');
    await page.keyboard.press('Enter');
    await page.getByText(/^1–50 of [\d,]+$/).waitFor();
    await tab(() => document.activeElement.textContent === 'Skip to content', 'the skip link', 200, 'Shift+Tab');
    await page.keyboard.press('Enter');
    check(await page.evaluate(() => document.activeElement.id === 'main'), 'Skip to content puts the focus on the page');
    await tab(() => document.activeElement.getAttribute('aria-label') === 'Select nightly-hello', 'the checkbox of nightly-hello');
    await page.keyboard.press('Space');
    await tab(() => document.activeElement.textContent.startsWith('Run now'), 'Run now', 200);
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await tab(() => document.activeElement.name === 'reason', 'the reason field');
    await page.keyboard.type('a11y: by keyboard');
    await tab(() => document.activeElement.type === 'submit', 'the dialog\'s Run now');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/administration\/runs\/\d+$/);
    await page.locator('.log[data-done="true"]').waitFor();
    await tab(() => document.activeElement.textContent === 'Run history', 'the menu\'s Run history', 80, 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/administration\/runs$/);
    await page.getByRole('heading', { name: 'Run history' }).waitFor();
    await page.context().close();
  }

  step('keyboard only: Attention\'s Mark all seen, the Overview to a failed run, the run history\'s pager');
  {
    // A failure nobody has seen yet (the failed run's page was seen above).
    const fresh = (await api('POST', '/api/v1/runs', { job_type: 'hello', reason: 'a11y: fails again', params: { steps: 1, step_ms: 0, fail: true } })).run_ids[0];
    for (let i = 0; i < 100 && (await api('GET', `/api/v1/runs/${fresh}`)).run.phase !== 'COMPLETED'; i++) await e2e.sleep(100);
    const page = await newPage();
    await signIn(page, adminToken);
    await page.getByRole('link', { name: 'acme-report' }).waitFor();
    await page.waitForTimeout(500);
    const tab = async (pred, what, max = 80, key = 'Tab') => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press(key);
        if (await page.evaluate(pred)) return;
      }
      throw new Error(`${key} never reached ${what}`);
    };
    await tab(() => document.activeElement.textContent.trim().startsWith('Attention'), "the menu's Attention", 80, 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/administration\/attention$/);
    await page.locator('main').focus();
    await tab(() => /^Mark all failures of .+ seen$/.test(document.activeElement.getAttribute('aria-label') || ''), 'Mark all seen', 150);
    const mark = await page.evaluate(() => document.activeElement.getAttribute('aria-label'));
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: mark, exact: true }).waitFor({ state: 'detached' });
    await tab(() => document.activeElement.textContent.trim() === 'Overview', "the menu's Overview", 80, 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/administration\/overview$/);
    await page.getByRole('heading', { name: 'Failures in the last 24 hours, by job' }).waitFor();
    await page.locator('[data-testid^="failures-"] a').first().waitFor();
    await page.locator('main').focus();
    await tab(() => /^Run \d+$/.test(document.activeElement.textContent) && !!document.activeElement.closest('[data-testid^="failures-"]'),
      'the last failed run of a job', 120);
    const failed = await page.evaluate(() => document.activeElement.textContent.replace('Run ', ''));
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`/administration/runs/${failed}$`));
    // More runs than a page holds.
    const more = (await api('POST', '/api/v1/runs', {
      requests: Array.from({ length: 50 }, () => ({ job_type: 'hello', reason: 'a11y: a page of runs', params: { steps: 1, step_ms: 0 } })),
    })).run_ids;
    for (let i = 0; i < 100 && (await api('GET', `/api/v1/runs/${more.at(-1)}`)).run.phase !== 'COMPLETED'; i++) await e2e.sleep(100);
    await tab(() => document.activeElement.textContent.trim() === 'Run history', "the menu's Run history", 80, 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/administration\/runs$/);
    await page.getByRole('heading', { name: 'Run history' }).waitFor();
    await page.locator('.pager').waitFor();
    await page.locator('main').focus();
    await tab(() => document.activeElement.textContent === 'Skip to the pager', 'the skip link to the pager', 40, 'Shift+Tab');
    await page.keyboard.press('Enter');
    // On the first page Newest and Previous are disabled: the skip link leads to Next.
    check((await page.evaluate(() => document.activeElement.closest('.pager') !== null && document.activeElement.textContent)) === 'Next',
      'the skip link puts the focus on the run history\'s Next');
    const first = await page.locator('table tbody tr').first().innerText();
    await page.keyboard.press('Enter');
    await page.waitForFunction((f) => document.querySelector('table tbody tr')?.innerText !== f, first);
    check(/cursor=/.test(page.url()), `Next by keyboard pages the run history: ${page.url()}`);
    await page.context().close();
  }

  step('reflow: at 320 CSS px only tables scroll sideways, in their own box, also on a page narrowed once drawn (dialogs fit 390x844: checked with axe above)');
  {
    const page = await newPage({ viewport: { width: 320, height: 640 } });
    await signIn(page, adminToken);
    const wide = [];
    for (const [name, path, , tab] of pages) {
      await go(page, path);
      await page.locator('main h1').first().waitFor();
      await page.waitForLoadState('networkidle');
      if (tab) await page.getByRole('tab', { name: tab }).click();
      if (await scrollsSideways(page)) wide.push(`${name} (${await page.evaluate(() => document.documentElement.scrollWidth)} px)`);
    }
    await shot(page, 'reflow-320-audit');
    check(!wide.length, `at 320 px the page scrolls sideways: ${wide.join(', ')}`);
    // A page drawn wide and then narrowed (a phone turned, the page zoomed): the job's charts follow.
    await page.setViewportSize({ width: 1366, height: 768 });
    await go(page, '/administration/jobs/nightly-hello');
    await page.locator('.chart canvas').first().waitFor();
    await page.setViewportSize({ width: 320, height: 640 });
    for (let i = 0; i < 20 && (await scrollsSideways(page)); i++) await page.waitForTimeout(50);
    check(!(await scrollsSideways(page)), `the job page narrowed to 320 px scrolls sideways: ${await page.evaluate(() => document.documentElement.scrollWidth)} px`);
    await page.context().close();
  }

  step('empty lists say how to fill them, on every page with a list that can be empty');
  {
    const page = await newPage();
    await signIn(page, adminToken);
    await page.getByLabel('Filter jobs by text').fill('no-such-job-anywhere');
    await page.locator('td.empty').filter({ hasText: 'No scheduled jobs match' }).waitFor();
    const jobs = await page.locator('td.empty').innerText();
    check(/\[job\.ID\]/.test(jobs) && /admin API/.test(jobs), `the empty jobs list says how jobs are added: ${jobs}`);
    await go(page, '/administration/runs');
    await page.getByLabel('Scheduled job (its id)').fill('no-such-run-anywhere');
    await page.locator('td.empty').filter({ hasText: 'No run matches' }).waitFor();
    const runs = await page.locator('td.empty').innerText();
    check(/Run now/.test(runs), `the empty run history says how to start a run: ${runs}`);
    // Every other list that can be empty: emptied by a filter where it has rows, each empty row saying how to fill it.
    const empties = [
      ['/administration/alerts', () => page.fill('#alert-q', 'no-such-alert-anywhere'), [/Change the filters/]],
      ['/administration/feature-flags', () => page.fill('#ff-filter-text', 'no-such-flag-anywhere'), [/create a flag/]],
      ['/administration/rate-limit-overrides', () => page.selectOption('#rlo-filter-kind', 'tenant'), [/create an override/]],
      ['/administration/maintenance', () => page.selectOption('#mnt-filter-state', 'ended'), [/Start maintenance/]],
      ['/administration/migrations', () => page.selectOption('#mig-filter-state', 'failed'), [/Every state/]],
      ['/administration/caches', null, [/opk\.cache/, /\[plugin\.cache-purge\] servers/]],
      ['/administration/webhook-failures', null, [/Suppress endpoint/, /Change the filters/]],
      ['/administration/notifications/quiet-ops', null, [/Add rule/, /add a rule/]],
      ['/administration/audit', () => page.fill('#audit-actor', 'no-such-actor-anywhere'), [/Change the filters/]],
    ];
    for (const [path, empty, says] of empties) {
      await go(page, path);
      if (empty) await empty();
      await page.waitForFunction((n) => document.querySelectorAll('td.empty').length === n, says.length);
      const texts = await page.locator('td.empty').allInnerTexts();
      for (const re of says) check(texts.some((x) => re.test(x)), `${path}: an empty list says how to fill it (${re}): ${texts.join(' | ')}`);
    }
    step("the Overview's open alerts by severity are what the alerts API lists");
    await go(page, '/administration/overview');
    const listed = {};
    for (const sev of ['critical', 'warning', 'info'])
      listed[sev] = (await api('GET', `/api/v1/alerts?status=open,acknowledged,escalated&severity=${sev}&limit=500`)).alerts.length;
    // The closed warning is not among them.
    check(listed.critical >= 1 && listed.warning >= 1 && listed.info >= 1, `an alert of each severity is open: ${JSON.stringify(listed)}`);
    for (const [sev, n] of Object.entries(listed)) {
      const tile = (await page.getByTestId(`overview-alerts-${sev}`).locator('.tile-value').innerText()).trim();
      check(tile === String(n), `the Overview's ${sev} alerts: ${tile}, the API lists ${n}`);
    }
    await page.context().close();
  }

  step("a TenantUser's menu leads only to pages they may open");
  {
    const page = await newPage();
    await signIn(page, tinaToken);
    const links = await page.locator('nav a').evaluateAll((as) => as.map((a) => [a.textContent.trim(), a.getAttribute('href')]));
    // Her role reads jobs and alerts only: none of the pages that need another permission is offered.
    check(
      links.length >= 2 && !links.some(([, h]) => /audit|plugins|notifications|feature-flags|rate-limit|webhook-failures/.test(h)),
      `tina's menu: ${JSON.stringify(links)}`,
    );
    for (const [label, href] of links) {
      await go(page, href);
      await page.locator('main h1').first().waitFor();
      await page.waitForLoadState('networkidle');
      // Not a page saying the role may not read it, nor the API's refusal.
      const text = await page.locator('main').innerText();
      check(!/may not (read|see|list|open)|forbidden|not permitted/i.test(text) && !(await page.locator('main [role=alert]').count()),
        `${label} (${href}) opens for tina: ${text.slice(0, 300)}`);
    }
    await page.context().close();
  }

  step('time zones: each time names its zone; the operator switches to UTC and it is kept; a job shows its own zone');
  {
    const page = await newPage({ timezoneId: 'America/New_York', locale: 'en-US' });
    await signIn(page, adminToken);
    await go(page, '/administration/jobs/nightly-hello');
    const facts = page.locator('dl.facts');
    await facts.waitFor();
    const created = async () => (await facts.locator('dt:text-is("Created") + dd').innerText()).trim();
    check(/ (EST|EDT|GMT-[45])$/.test(await created()), `Created in the browser's zone, named: ${await created()}`);
    check((await facts.locator('dt:text-is("Schedule zone") + dd').innerText()) === 'Europe/Stockholm', 'the job shows its own zone');
    const next = await facts.locator('dt:text-is("Next run") + dd').innerText();
    check(/(CET|CEST|GMT\+[12]) · .* (EST|EDT|GMT-[45]) · in /.test(next), `the next run in the job's zone, the operator's and how soon: ${next}`);
    await page.getByRole('tab', { name: 'Scheduling' }).click();
    const fire = page.locator('ol.fire li').first();
    await fire.waitFor();
    check(/(CET|CEST|GMT\+[12]) · .* UTC$/.test(await fire.innerText()), `a fire time in the job's zone and UTC: ${await fire.innerText()}`);
    await page.getByRole('button', { name: /^Run now/ }).click();
    // The run-now time range says its zone: the operator's.
    await page.getByLabel(/^Time range from \((EST|EDT|GMT-[45])\)$/).waitFor();
    await page.getByLabel(/^to \((EST|EDT|GMT-[45])\)$/).waitFor();
    await page.keyboard.press('Escape');
    await page.selectOption('#pref-zone', 'UTC');
    await page.getByRole('tab', { name: 'Information' }).click();
    check(/ UTC$/.test(await created()), `Created in UTC once chosen: ${await created()}`);
    await page.getByRole('button', { name: /^Run now/ }).click();
    await page.getByLabel('Time range from (UTC)', { exact: true }).waitFor();
    await page.getByLabel('to (UTC)', { exact: true }).waitFor();
    await page.keyboard.press('Escape');
    await page.reload();
    await facts.waitFor();
    check(/ UTC$/.test(await created()) && (await page.inputValue('#pref-zone')) === 'UTC', 'the choice of UTC is kept');
    // A run that starts later says when, and how soon.
    const later = (await api('POST', '/api/v1/runs', { job_type: 'hello', reason: 'a11y: later', start_at_ms: Date.now() + 2 * 3600000 + 60000 })).run_ids[0];
    await go(page, `/administration/runs/${later}`);
    const starts = page.locator('dt:text-is("Starts") + dd');
    await starts.waitFor();
    check(/^starts .* UTC, in 2 (hours|hr\.?)$/.test(await starts.innerText()), `a delayed start: ${await starts.innerText()}`);
    await page.context().close();
  }

  step('dark mode: chosen in the header over the system\'s light scheme, and kept');
  {
    const page = await newPage({ colorScheme: 'light' });
    await signIn(page, adminToken);
    check((await page.getAttribute('html', 'data-theme')) === 'light', 'light by the system');
    await page.selectOption('#pref-theme', 'dark');
    check((await page.getAttribute('html', 'data-theme')) === 'dark', 'dark once chosen');
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor || getComputedStyle(document.documentElement).backgroundColor);
    await page.reload();
    await page.locator('header.top .who').waitFor();
    check((await page.getAttribute('html', 'data-theme')) === 'dark', 'dark is kept');
    const v = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--bg').trim());
    check(v === '#12161b', `the dark background is in force: ${v} ${await bg()}`);
    check(!(await axe(page, 'dark chosen jobs')).length, 'axe finds nothing in the chosen dark mode');
    await page.context().close();
  }

  step('Swedish: from the browser\'s language, switched in the header and kept; dates as Swedish writes them');
  {
    const page = await newPage({ locale: 'sv-SE', timezoneId: 'Europe/Stockholm' });
    await page.goto(`${base}/administration/jobs`);
    await page.getByRole('heading', { name: 'Opskernels konsol' }).waitFor();
    check((await page.getAttribute('html', 'lang')) === 'sv', 'the page says it is Swedish');
    await page.getByLabel('API-token').fill(adminToken);
    await page.getByRole('button', { name: 'Logga in' }).click();
    await page.getByRole('link', { name: 'Körhistorik' }).waitFor();
    const nav = await page.locator('header.top').innerText();
    for (const en of ['Run history', 'Sign out', 'Language', 'Time zone', 'Theme', 'Alerts'])
      check(!nav.includes(en), `the Swedish header has no '${en}': ${nav}`);
    // An admin feature's entry named as its manifest translates it (maintenance-mode: Underhållsläge), the
    // others by the console's Swedish.
    await page.locator('nav').getByRole('link', { name: 'Underhållsläge', exact: true }).waitFor();
    check((await page.locator('nav').getByRole('link', { name: 'Funktionsflaggor', exact: true }).count()) === 1, 'Feature flags in Swedish');
    await page.getByTestId('job-type').first().waitFor();
    check((await page.getByTestId('job-type').first().innerText()).startsWith('Hej'), 'the jobs list titles hello in Swedish');
    // Counts as each language writes them: the jobs list's pager over more than a thousand jobs.
    const count = await page.locator('main .pager span').innerText();
    check(/^1–50 av 1[\u00a0\u202f]\d{3}$/.test(count), `the count of jobs as Swedish writes it: ${JSON.stringify(count)}`);
    await page.selectOption('#pref-lang', 'en');
    await page.locator('main .pager span').getByText(/^1–50 of 1,\d{3}$/).waitFor();
    await page.selectOption('#pref-lang', 'sv');
    await page.getByRole('link', { name: 'Körhistorik' }).waitFor();
    await go(page, '/administration/jobs/nightly-hello');
    const created = (await page.locator('dl.facts dt:text-is("Skapad") + dd').innerText()).trim();
    check((await page.getByTestId('job-type-info').innerText()).startsWith('Hej'), 'the job type\'s title from its manifest, in Swedish');
    check(/^\d{1,2} [a-zåäö]{3}\.? \d{4} \d\d:\d\d:\d\d (CET|CEST|GMT\+[12])$/.test(created), `a date as Swedish writes it: ${created}`);
    // The translated pages show none of the console's English texts (those Swedish writes otherwise).
    const english = Object.entries(sv)
      .filter(([en, s]) => typeof s === 'string' && s !== en && en.includes(' ') && !/[{}]/.test(en))
      .map(([en]) => en);
    for (const path of ['/administration/jobs', '/administration/jobs/nightly-hello', `/administration/runs/${done}`,
                        '/administration/alerts', `/administration/alerts/${alert.id}`, '/administration/audit', '/administration/plugins',
                        '/administration/rate-limit-overrides', '/administration/feature-flags',
                        '/administration/webhook-failures', '/administration/notifications', '/administration/notifications/acme-ops',
                        '/administration/runs', '/administration/attention', '/administration/overview', '/administration/workers',
                        '/administration/migrations', '/administration/caches', '/administration/maintenance']) {
      await go(page, path);
      await page.waitForLoadState('networkidle');
      // The page's own words, not the data in its tables (plugins' manifests, alert titles).
      const text = await page.evaluate(() => {
        const copy = document.body.cloneNode(true);
        copy.querySelectorAll('td, pre, noscript').forEach((td) => td.remove());
        return copy.textContent;
      });
      const left = english.filter((en) => text.includes(en));
      check(!left.length, `${path} in Swedish shows English: ${left.join(' | ')}`);
      // Words the check above cannot see (one word each): column heads and a filter's choices.
      if (path === '/administration/webhook-failures') {
        const heads = (await page.locator('table.suppressions th').allInnerTexts()).map((h) => h.trim()).slice(0, 7);
        const want = ['Endpoint', 'Channel', 'Scope', 'Reason', 'Until', 'By', 'Since'].map((en) => sv[en]);
        check(JSON.stringify(heads) === JSON.stringify(want), `the suppressed endpoints' column heads in Swedish: ${heads.join(', ')}`);
      }
      if (path === '/administration/maintenance') {
        const zeta = page.locator('tr[data-window-tenant="tenant:zeta"]');
        const said = `${await zeta.locator('td').nth(1).innerText()} | ${await zeta.getByTestId('window').innerText()}`;
        check(said.startsWith(`${sv['read-only']} | ${sv.scheduled}: `), `a window's mode and state in Swedish: ${said}`);
      }
      if (path === `/administration/alerts/${alert.id}`) {
        const first = await page.locator('table.history tbody tr td:nth-child(2)').first().innerText();
        check(first === sv.raised, `the alert's history in Swedish: ${first}`);
      }
      if (path === '/administration/alerts') {
        const choices = (await page.locator('#alert-severity option').allInnerTexts()).slice(1);
        const want = ['Critical', 'Warning', 'Info'].map((en) => sv[en]);
        check(JSON.stringify(choices) === JSON.stringify(want), `the severity filter's choices in Swedish: ${choices.join(', ')}`);
      }
      check(!(await axe(page, `Swedish ${path}`)).length, `axe finds nothing on ${path} in Swedish`);
    }
    // Alert sources and features by their manifests' Swedish titles, the id beside where it differs.
    const staleSv = 'Funktionsflagga länge åsidosatt utan slut';
    await go(page, '/administration/maintenance');
    await page.getByRole('heading', { name: 'Underhållsläge', exact: true }).waitFor();
    await go(page, `/administration/alerts/${stale[0].id}`);
    check((await page.getByTestId('alert-source').innerText()) === staleSv, `the alert's source in Swedish: ${await page.getByTestId('alert-source').innerText()}`);
    await go(page, '/administration/plugins');
    for (const named of ['hello (Hej)', `feature-flags-stale (${staleSv})`, 'feature-flags (Funktionsflaggor)'])
      await page.locator('main ul.provides li', { hasText: named }).first().waitFor();
    await go(page, '/administration/alerts');
    await page.getByRole('heading', { name: 'Larm', exact: true }).waitFor();
    const staleRow = page.locator(`tr[data-alert-id="${stale[0].id}"]`);
    check((await staleRow.getByTestId('alert-source').innerText()) === staleSv && (await staleRow.innerText()).includes('feature-flags-stale'),
      `the alerts list names the source in Swedish, its id beside: ${await staleRow.innerText()}`);
    // The source filter names it so too (its choices come with the counts, read on their own).
    await page.locator('#alert-source option', { hasText: staleSv }).waitFor({ state: 'attached' });
    await page.selectOption('#pref-lang', 'en');
    await page.getByRole('link', { name: 'Run history' }).waitFor();
    await page.getByRole('heading', { name: 'Alerts', exact: true }).waitFor();
    check((await page.getAttribute('html', 'lang')) === 'en', 'English once chosen');
    await staleRow.getByTestId('alert-source').filter({ hasText: 'Feature flag overridden for long without an expiry' }).waitFor();
    await page.locator('nav').getByRole('link', { name: 'Maintenance', exact: true }).waitFor();
    await page.reload();
    await page.getByRole('link', { name: 'Run history' }).waitFor();
    await page.selectOption('#pref-lang', 'sv');
    await page.getByRole('link', { name: 'Körhistorik' }).waitFor();
    await page.context().close();
  }
} catch (e) {
  failed = true;
  await e2e.reportFailure('console a11y e2e', e, problems, browser, OUT);
} finally {
  if (browser) await browser.close();
  await stop();
  rmSync(dir, { recursive: true, force: true });
}
if (failed) process.exit(1);
if (problems.length) {
  console.error(`page problems: ${problems.join(' | ')}`);
  process.exit(1);
}
console.log(`console a11y e2e: all checks passed; screenshots in ${OUT}`);
