// The operator console end to end: the real kernel with real plugins
// (admin-http, console, hello, the engine_jobs fixture and a broken plugin),
// driven in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) at 1366x768. Signs in, lists and filters jobs, runs one
// now with a reason and follows its live log to the end, is refused Run now
// for a manual_run=false type, cancels a long run, retries a failed one,
// sees the failure-trend chart drawn, previews and saves a schedule, reads
// the attention panel and the plugins page, and checks that a TenantUser sees
// only their tenant's jobs. Alerts: seeded through the API, listed with their
// counts, filtered, opened, acknowledged, refused a past silence and an empty
// close reason, closed with a reason and their history read; one created from
// the page; critical ones in the attention panel and the menu's count; a
// TenantUser sees their tenant's alerts only, with the actions disabled and
// why. The jobs list sorts by every column from the keyboard (aria-sort, the
// sort kept in the address) and shows the last run's duration; a job is
// created from the list, paused and resumed on its Scheduling tab and
// deleted from its page with a reason (refused while a run of it waits, its
// runs kept in the history). Screenshots of each page go to --out.
//
//   node console_e2e.mjs --kernel BIN --plugins DIR --fixtures DIR --web DIR --out DIR
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as e2e from './e2e.mjs';
import { check, chromiumOf, folders, kernelFolder, launch, startKernel, step } from './e2e.mjs';

const [KERNEL, PLUGINS, FIXTURES, WEB, OUT] = folders(process.argv.slice(2), ['kernel', 'plugins', 'fixtures', 'web', 'out']);
const chromium = chromiumOf(WEB);

// --- The kernel -----------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'opk-console-e2e-'));
mkdirSync(OUT, { recursive: true });
const { base, adminToken, conf } = await kernelFolder(
  dir,
  [
    ...['admin-http.so', 'console.so', 'hello.so'].map((f) => join(PLUGINS, f)),
    join(FIXTURES, 'engine_jobs.so'),
    join(FIXTURES, 'no_entry.so'), // refused: no entry symbol
  ],
  `[plugin.console]
queue_threshold = 1
poll_seconds = 2
[job.nightly-hello]
type = hello
planning = scheduled
cron = 30 2 * * *
time_zone = Europe/Stockholm
params = {"steps": 4, "step_ms": 250}
description = Greets every night
owner = platform-team
report_recipients = ops@example.com
[job.long-hello]
type = hello
planning = disabled
params = {"steps": 600, "step_ms": 100}
description = A long run, to be cancelled
[job.daily-rollup]
type = scheduled-only
planning = scheduled
cron = 0 3 * * *
description = Daily rollup; not safe to double-fire
[job.acme-report]
type = hello
planning = disabled
scope = tenant:acme
description = Acme's monthly report
[job.globex-report]
type = hello
planning = disabled
scope = tenant:globex
region = eu-north
description = Globex's monthly report
`,
);
const { cli, api, waitReady, stop } = startKernel(KERNEL, conf, base, adminToken);

// --- The browser ----------------------------------------------------------
let browser;
const problems = [];
// A refused request (a wrong token, a bad cron preview, a 404) logs a resource error the page shows: expected.
const newPage = () => e2e.newPage(browser, problems);
const shot = (page, name) => e2e.shot(OUT, page, name);
const signIn = (page, token) => e2e.signIn(page, base, token);

async function runJobNow(page, jobId, { reason, fill } = {}) {
  await page.goto(`${base}/administration/jobs/${jobId}`);
  await page.getByRole('button', { name: 'Run now' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.waitFor();
  if (fill) await fill(dlg);
  await dlg.getByLabel(/^Reason/).fill(reason);
  await dlg.getByRole('button', { name: 'Run now' }).click();
  await page.waitForURL(/\/administration\/runs\/\d+$/);
  return Number(page.url().split('/').pop());
}
const runStatus = (page) => page.getByTestId('run-status');

const accessibilityProblems = (page, where) => e2e.accessibilityProblems(page, where);

let failed = false;
let tinaToken = '';
try {
  await waitReady();
  // The hierarchy and a TenantUser, added with the CLI while the kernel runs
  // (the first start made the platform administrator from the token file).
  cli('tenants', 'add', 'distributor:d1', '--parent', 'platform');
  cli('tenants', 'add', 'partner:p1', '--parent', 'distributor:d1');
  cli('tenants', 'add', 'tenant:acme', '--parent', 'partner:p1');
  cli('tenants', 'add', 'tenant:globex', '--parent', 'partner:p1');
  tinaToken = cli('users', 'add', 'tina', '--role', 'TenantUser', '--scope', 'tenant:acme').split('\n').pop();
  check(tinaToken.startsWith('opk_'), `users add printed a token (got '${tinaToken}')`);
  browser = await launch(chromium);
  // Runs that feed the attention panel: one over its target (hello's is 5 s),
  // one failure nobody has looked at, two runs waiting for a later start.
  const slow = await api('POST', '/api/v1/runs', { job_type: 'hello', reason: 'e2e: over target', params: { steps: 11, step_ms: 500 } });
  const unseen = await api('POST', '/api/v1/runs', { job_type: 'hello', reason: 'e2e: unseen failure', params: { steps: 1, step_ms: 0, fail: true } });
  const later = Date.now() + 3600000;
  await api('POST', '/api/v1/runs', { requests: [1, 2].map(() => ({ job_type: 'hello', reason: 'e2e: later', start_at_ms: later })) });

  // Alerts, raised by the platform administrator: a critical one and an info
  // one at acme, a warning at globex (which acme's users must not see).
  const alert = async (severity, title, scope, extra = {}) =>
    (await api('POST', '/api/v1/alerts', { severity, title, message: `${title} (e2e)`, scope, area: 'billing', ...extra })).alert;
  const acmeCritical = await alert('critical', 'Acme invoices overdue', 'tenant:acme', { details: { invoices: ['inv-7', 'inv-9'] } });
  const acmeInfo = await alert('info', 'Acme license renews soon', 'tenant:acme', { area: 'licensing' });
  const globexWarning = await alert('warning', 'Globex usage missing', 'tenant:globex');
  check(acmeCritical.status === 'open' && acmeCritical.custom === true, `a created alert is open and custom: ${JSON.stringify(acmeCritical)}`);

  const page = await newPage();

  step('sign-in: a wrong token is refused with the reason; the right one shows role and scope');
  await page.goto(`${base}/administration/jobs`);
  await page.getByRole('heading', { name: 'Opskernel console' }).waitFor();
  await shot(page, '01-sign-in');
  await page.getByLabel('API token').fill('opk_not-a-real-token-at-all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  await signIn(page, adminToken);
  const who = await page.locator('header.top .who').innerText();
  check(who.includes('admin') && who.includes('PlatformAdministrator') && who.includes('platform'), `header shows the caller: ${who}`);

  step('jobs: the list with its columns, icons and filters');
  await page.getByRole('link', { name: 'nightly-hello' }).waitFor();
  for (const id of ['acme-report', 'globex-report', 'daily-rollup', 'long-hello'])
    await page.getByRole('link', { name: id, exact: true }).waitFor();
  const head = await page.locator('table.jobs thead').innerText();
  for (const col of ['Job', 'Type', 'Enabled', 'Status', 'Last run', 'Next run', 'Description', 'Owner', 'Tenant'])
    check(head.includes(col), `jobs table has column ${col}`);
  await page.getByLabel('Filter jobs by text').fill('globex');
  await page.waitForFunction(() => {
    const r = document.querySelectorAll('table.jobs tbody tr');
    return r.length === 1 && r[0].textContent.includes('globex-report');
  });
  await page.getByLabel('Filter jobs by text').fill('');
  await page.getByRole('link', { name: 'nightly-hello' }).waitFor();
  // Only the named job left in the table.
  const onlyRow = (id) =>
    page.waitForFunction((j) => {
      const r = document.querySelectorAll('table.jobs tbody tr');
      return r.length === 1 && r[0].textContent.includes(j);
    }, id);
  await page.getByLabel('Region').selectOption('eu-north');
  await onlyRow('globex-report');
  await page.getByLabel('Region').selectOption('');
  await page.getByRole('link', { name: 'nightly-hello' }).waitFor();
  await page.getByLabel('Tenant or scope').selectOption('tenant:acme');
  await onlyRow('acme-report');
  await page.getByLabel('Tenant or scope').selectOption('');
  await page.getByRole('link', { name: 'nightly-hello' }).waitFor();

  step('run now: refused for manual_run=false, with the reason');
  await page.getByLabel('Select daily-rollup').check();
  check(await page.getByRole('button', { name: /^Run now/ }).isDisabled(), 'Run now is disabled for daily-rollup');
  await page.getByText('manual_run=false').waitFor();
  await page.getByLabel('Select daily-rollup').uncheck();

  step('keyboard only: tab to a row, select it, open Run now, close it with Escape');
  await page.evaluate(() => document.getElementById('main').focus()); // where the skip link leads
  let tabs = 0;
  while ((await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))) !== 'Select nightly-hello') {
    await page.keyboard.press('Tab');
    check(++tabs < 60, 'the row checkbox is reachable with Tab');
  }
  await page.keyboard.press('Space');
  check(await page.getByLabel('Select nightly-hello').isChecked(), 'Space selects the row');
  while ((await page.evaluate(() => document.activeElement?.textContent)) !== 'Run now') {
    await page.keyboard.press('Shift+Tab');
    check(++tabs < 120, 'Run now is reachable with Shift+Tab');
  }
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  await page.getByLabel('Select nightly-hello').uncheck();

  step('run now with a reason, from the list; the live log streams until the run completes');
  const a11y = await accessibilityProblems(page, 'jobs');
  await page.getByLabel('Select nightly-hello').check();
  await page.getByRole('button', { name: /^Run now/ }).click();
  let dlg = page.getByRole('dialog');
  a11y.push(...(await accessibilityProblems(page, 'run-now dialog')));
  await dlg.getByLabel(/^steps/).fill('8');
  await dlg.getByLabel(/^step_ms/).fill('500');
  check(await dlg.getByRole('button', { name: 'Run now' }).isDisabled(), 'Run now waits for a reason');
  await shot(page, '02-run-now-dialog');
  await dlg.getByLabel(/^Reason/).fill('e2e: check after upgrade');
  await dlg.getByRole('button', { name: 'Run now' }).click();
  await page.waitForURL(/\/administration\/runs\/\d+$/);
  const runId = Number(page.url().split('/').pop());
  const log = page.getByRole('log');
  await log.getByText('step 1 of 8').waitFor();
  check((await log.getByText('step 8 of 8').count()) === 0, 'the log is read while the run is in progress');
  // The page reads the run's state every second: the log may reach it first.
  await runStatus(page).filter({ hasText: 'Running' }).waitFor({ timeout: 3000 });
  await shot(page, '03-run-live');
  await log.getByText('step 8 of 8').waitFor();
  await page.locator('.log[data-done="true"]').waitFor();
  await runStatus(page).filter({ hasText: 'Succeeded' }).waitFor();
  check((await page.getByTestId('run-summary').innerText()).includes('counted to 8'), 'the result is shown');
  check((await page.locator('#run-progress').getAttribute('value')) === '100', 'progress is full');
  const stored = await api('GET', `/api/v1/runs/${runId}`);
  check(stored.run.reason === 'e2e: check after upgrade' && stored.run.params.steps === 8, 'the run has the reason and parameters');
  await shot(page, '04-run-done');
  a11y.push(...(await accessibilityProblems(page, 'run')));

  step('cancel a long run through its cancel hook');
  const longId = await runJobNow(page, 'long-hello', { reason: 'e2e: to cancel' });
  await page.getByRole('log').getByText('step 2 of 600').waitFor();
  await page.getByRole('button', { name: 'Cancel run' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Reason/).fill('e2e: enough');
  await dlg.getByRole('button', { name: 'Cancel run' }).click();
  await page.getByRole('log').getByText(/cancelled at step/).waitFor();
  await runStatus(page).filter({ hasText: 'Cancelled' }).waitFor();
  const cancelled = (await api('GET', `/api/v1/runs/${longId}`)).run;
  check(cancelled.phase === 'COMPLETED' && cancelled.status === 'cancelled', 'the cancelled run completed as cancelled');
  check(cancelled.cancelled_by === 'admin', `cancelled by: ${cancelled.cancelled_by}`);
  await page.getByTestId('run-cancelled-by').filter({ hasText: 'admin' }).waitFor();
  check((await page.getByTestId('run-summary').innerText()).includes('e2e: enough'), 'the run page shows why it was cancelled');
  // The button goes once the page has reloaded the completed run.
  await page.getByRole('button', { name: 'Cancel run' }).waitFor({ state: 'detached' });
  await shot(page, '05-run-cancelled');
  // The job's failures chart counts no failure, unless asked to count the cancelled run too.
  await page.goto(`${base}/administration/jobs/long-hello`);
  await page.getByRole('img', { name: '0 failed runs in the last 30 days', exact: true }).waitFor();
  await page.getByLabel('Include cancelled, timed-out, stopped and recovered runs').check();
  await page.getByRole('img', { name: '1 failed, cancelled, timed-out, stopped or recovered run in the last 30 days', exact: true }).waitFor();
  await page.locator('figcaption', { hasText: 'Failed or stopped runs per day, last 30 days' }).waitFor();

  step('a running run whose type has no cancel hook cannot be cancelled, and says why');
  const hookless = await api('POST', '/api/v1/runs', { job_type: 'slow-job', reason: 'e2e: no hook', params: { ms: 3000 } });
  await page.goto(`${base}/administration/runs/${hookless.run_ids[0]}`);
  await runStatus(page).filter({ hasText: 'Running' }).waitFor();
  check(await page.getByRole('button', { name: 'Cancel run' }).isDisabled(), 'Cancel is disabled without a hook');
  await page.getByText('slow-job has no cancel hook').waitFor();

  step('retry a failed run with changed parameters');
  const failId = await runJobNow(page, 'nightly-hello', {
    reason: 'e2e: make it fail',
    fill: async (d) => {
      await d.getByLabel(/^steps/).fill('1');
      await d.getByLabel(/^fail/).check();
    },
  });
  await runStatus(page).filter({ hasText: 'Failed' }).waitFor();
  await page.getByRole('button', { name: 'Retry' }).click();
  dlg = page.getByRole('dialog');
  check(await dlg.getByLabel(/^fail/).isChecked(), 'retry starts from the failed run\'s parameters');
  await dlg.getByLabel(/^fail/).uncheck();
  await dlg.getByLabel(/^Reason/).fill('e2e: transient, try again');
  await dlg.getByRole('button', { name: 'Retry' }).click();
  await page.waitForURL((u) => !u.pathname.endsWith(`/runs/${failId}`));
  await runStatus(page).filter({ hasText: 'Succeeded' }).waitFor();
  await page.getByRole('link', { name: `run ${failId}` }).waitFor();
  const retried = await api('GET', `/api/v1/runs/${page.url().split('/').pop()}`);
  check(retried.run.parent_run_id === failId && retried.run.trigger === 'retry', 'the retry is linked to the failed run');

  step('drill-in: the failure-trend and duration charts are drawn; executions list the runs');
  await page.goto(`${base}/administration/jobs/nightly-hello`);
  const trend = page.getByRole('img', { name: /failed run.* in the last 30 days/ });
  await trend.waitFor();
  check((await trend.getAttribute('aria-label')).startsWith('1 failed run'), `trend label: ${await trend.getAttribute('aria-label')}`);
  check((await page.locator('.chart canvas').count()) === 2, 'two charts are drawn');
  const painted = await page.locator('.chart canvas').first().evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let red = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i + 1] < 90 && d[i + 2] < 90) red++;
    return red;
  });
  check(painted > 20, `the failure bar is painted (${painted} red pixels)`);
  const info = await page.getByRole('tabpanel').innerText();
  check(info.includes('Greets every night') && info.includes('cannot be changed'), 'information shows the read-only description');
  check((await page.getByLabel(/^Recipients/).inputValue()) === 'ops@example.com', 'recipients are shown');
  await page.getByLabel(/^Recipients/).fill('ops@example.com, oncall@example.com');
  await page.getByRole('button', { name: 'Save recipients' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  check((await api('GET', '/api/v1/jobs/nightly-hello')).job.report_recipients.length === 2, 'recipients are saved');
  await shot(page, '06-job-drill-in');
  a11y.push(...(await accessibilityProblems(page, 'job information')));
  await page.getByRole('tab', { name: /Latest executions/ }).click();
  const execs = await page.getByRole('tabpanel').innerText();
  check(execs.includes(`#${runId}`) && execs.includes(`#${failId}`) && execs.includes('admin'), 'executions list runs and who started them');
  await shot(page, '07-job-executions');

  step('scheduling: the next five fire times are previewed; a bad expression is named; weekly days and times save');
  await page.getByRole('tab', { name: 'Scheduling' }).click();
  await page.waitForFunction(() => document.querySelectorAll('ol.fire li').length === 5);
  await page.getByLabel('Cron expression', { exact: true }).check();
  await page.locator('#cron').fill('61 2 * * *');
  await page.getByRole('alert').filter({ hasText: 'minute' }).waitFor();
  await page.getByLabel('Days and times', { exact: true }).check();
  for (const d of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']) await page.getByLabel(d, { exact: true }).uncheck();
  await page.getByLabel('Sat', { exact: true }).check();
  await page.getByLabel(/^Times/).fill('06:15, 18:45');
  await page.waitForFunction(() => document.querySelectorAll('ol.fire li').length === 5);
  await shot(page, '08-job-scheduling');
  a11y.push(...(await accessibilityProblems(page, 'job scheduling')));
  await page.getByRole('button', { name: 'Save scheduling' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  const saved = (await api('GET', '/api/v1/jobs/nightly-hello')).job;
  check(saved.cron === '15 6 * * 6;45 18 * * 6' && saved.planning === 'scheduled', `saved cron: ${saved.cron}`);
  const fires = (await api('GET', '/api/v1/jobs/nightly-hello')).next_fire_ms;
  check(fires.every((ms) => new Date(ms).toLocaleString('en-US', { timeZone: 'Europe/Stockholm', weekday: 'short' }) === 'Sat'), 'fires on Saturdays');

  step('attention: over target, queues over the threshold, unseen failures');
  await api('GET', `/api/v1/runs/${slow.run_ids[0]}`); // exists
  for (let i = 0; i < 100 && !(await api('GET', `/api/v1/runs/${slow.run_ids[0]}`)).run.over_target; i++)
    await new Promise((r) => setTimeout(r, 200));
  await page.getByRole('link', { name: /^Attention/ }).click();
  await page.getByRole('heading', { name: /Over their target duration \([1-9]/ }).waitFor({ timeout: 20000 });
  await page.getByRole('heading', { name: /Queues over 1 \(1\)/ }).waitFor();
  await page.getByText('(delayed)').waitFor();
  const unseenLink = page.getByRole('link', { name: `Run ${unseen.run_ids[0]}`, exact: true });
  await unseenLink.waitFor();
  check((await page.getByRole('link', { name: `Run ${longId}`, exact: true }).count()) === 0, 'a cancelled run is not a failure to look at');
  check((await page.getByRole('link', { name: /^Attention/ }).locator('.badge').count()) === 1, 'the navigation shows a count');
  await page.getByRole('heading', { name: 'Critical alerts, not closed (1)' }).waitFor();
  await page.locator('.attention').getByRole('link', { name: 'Acme invoices overdue' }).waitFor();
  await page.getByRole('heading', { name: 'Escalated alerts (0)' }).waitFor();
  const alertsBadge = page.getByTestId('alerts-badge');
  check((await alertsBadge.innerText()) === '1', `the Alerts menu counts one critical alert: ${await alertsBadge.innerText()}`);
  check(
    (await alertsBadge.getAttribute('aria-label')) === '1 critical alerts not closed and 0 escalated alerts',
    `the Alerts count is labelled: ${await alertsBadge.getAttribute('aria-label')}`,
  );
  await shot(page, '09-attention');
  a11y.push(...(await accessibilityProblems(page, 'attention')));
  await unseenLink.click();
  await page.waitForURL(new RegExp(`/runs/${unseen.run_ids[0]}$`));
  await page.getByRole('link', { name: /^Attention/ }).click();
  await page.getByRole('heading', { name: /Failed, not yet looked at/ }).waitFor();
  await page.waitForFunction(
    (id) => ![...document.querySelectorAll('.attention a')].some((a) => a.textContent === `Run ${id}`),
    unseen.run_ids[0],
  );

  step('attention groups failures by job; seen marks are kept on the server, the same in another browser');
  check((await api('GET', '/api/v1/console/seen')).runs.includes(unseen.run_ids[0]), 'the read run is stored for its user');
  const twice = (await api('POST', '/api/v1/runs', {
    requests: [1, 2].map(() => ({ job_type: 'hello', reason: 'e2e: failing twice', params: { steps: 1, step_ms: 0, fail: true } })),
  })).run_ids;
  const group = page.getByTestId('attention-group-type:hello');
  await group.getByText('2 failures').waitFor();
  check((await group.innerText()).includes(`Run ${Math.max(...twice)}`), 'the group names its last failure');
  await group.locator('summary').click();
  await group.getByRole('link', { name: `Run ${Math.min(...twice)}`, exact: true }).waitFor();
  a11y.push(...(await accessibilityProblems(page, 'attention, a group opened')));
  await group.getByRole('button', { name: 'Mark all failures of hello seen' }).click();
  await group.waitFor({ state: 'detached' });
  check((await api('GET', '/api/v1/console/seen')).jobs['type:hello'] === Math.max(...twice), 'the mark is stored on the server');
  {
    const other = await newPage(); // another browser: nothing shared but the user
    await signIn(other, adminToken);
    await other.getByRole('link', { name: /^Attention/ }).click();
    // The failures the server says this user has not seen: the count shown once the marks are read.
    const marks = await api('GET', '/api/v1/console/seen');
    const notSeen = (await api('GET', '/api/v1/runs?status=error&limit=1000')).items.filter(
      (r) => !marks.runs.includes(r.id) && r.id > (marks.jobs[r.scheduled_job_id || `type:${r.job_type}`] || 0),
    ).length;
    await other.getByRole('heading', { name: `Failed, not yet looked at (${notSeen})` }).waitFor();
    check((await other.getByTestId('attention-group-type:hello').count()) === 0, 'another browser shows the failures seen');
    await other.context().close();
  }

  step('run history: every run the caller may see, filtered by state and job');
  await page.getByRole('link', { name: 'Run history' }).click();
  await page.getByRole('link', { name: `#${runId}`, exact: true }).waitFor();
  await page.getByRole('link', { name: `#${longId}`, exact: true }).waitFor();
  await page.getByLabel('State', { exact: true }).selectOption('cancelled');
  await page.waitForFunction((id) => ![...document.querySelectorAll('table.runs a')].some((a) => a.textContent === `#${id}`), runId);
  check((await page.getByRole('link', { name: `#${longId}`, exact: true }).count()) === 1, 'cancelled runs stay');
  check(page.url().includes('status=cancelled'), `the filter is in the address: ${page.url()}`);
  await page.getByLabel('Scheduled job (its id)').fill('long-hello');
  await page.waitForFunction(() => document.querySelectorAll('table.runs tbody tr').length === 1);
  await shot(page, '10-run-history');
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.getByRole('link', { name: `#${runId}`, exact: true }).waitFor();

  step('jobs list: status icons, the unread-log marker and status toggles');
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  const marker = page.getByRole('button', { name: /^Unread log of run \d+ of long-hello$/ });
  await page.getByRole('button', { name: /log of run \d+ of long-hello$/i }).waitFor();
  check((await page.getByRole('button', { name: /^Log of run \d+ of long-hello$/ }).count()) === 1, 'a read log has no unread marker');
  check((await marker.count()) === 0, 'the long-hello log was read on its run page');
  const ackId = (await api('POST', '/api/v1/jobs/acme-report/run', { reason: 'e2e: unread', params: { steps: 1, step_ms: 0 } })).run_ids[0];
  const unread = page.getByRole('button', { name: `Unread log of run ${ackId} of acme-report` });
  await unread.waitFor();
  await page.locator('tr', { has: page.getByRole('link', { name: 'long-hello' }) }).getByRole('img', { name: 'Cancelled' }).waitFor();
  await shot(page, '11-jobs');
  a11y.push(...(await accessibilityProblems(page, 'jobs with runs')));
  await unread.click();
  await page.getByRole('dialog').getByRole('log').getByText(/hello, acme!|hello, world!/).waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('button', { name: `Log of run ${ackId} of acme-report` }).waitFor();
  await page.getByRole('button', { name: 'Cancelled', exact: true, pressed: true }).click(); // toggle cancelled runs off
  await page.waitForFunction(() => ![...document.querySelectorAll('table.jobs a')].some((a) => a.textContent === 'long-hello'));
  check((await page.getByRole('link', { name: 'nightly-hello' }).count()) === 1, 'other statuses stay');
  await page.getByRole('button', { name: 'Cancelled', exact: true, pressed: false }).click();
  await page.getByRole('link', { name: 'long-hello' }).waitFor();

  step('jobs list: sorted by every column by keyboard, the sort in the address; the last run\'s duration');
  {
    const sortable = await page.locator('table.jobs thead th button.sort').evaluateAll((bs) => bs.map((b) => b.dataset.sort));
    check(sortable.length === 12, `every data column sorts: ${sortable.join(', ')}`);
    const byDuration = page.locator('table.jobs thead th', { has: page.locator('button[data-sort="duration"]') });
    check((await byDuration.innerText()).includes("Last run's duration"), 'the duration column says which duration');
    check((await page.locator('table.jobs thead th[aria-sort]').count()) === 1, 'one column is the sort');
    await byDuration.locator('button').focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('th[aria-sort] button')?.dataset.sort === 'duration');
    check((await byDuration.getAttribute('aria-sort')) === 'ascending', 'ascending first');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => document.querySelector('th[aria-sort]')?.getAttribute('aria-sort') === 'descending');
    await page.waitForURL(/\/administration\/jobs\?sort=duration&order=desc$/); // the sort is in the address
    // The rows in the API's order (read again while a poll may still bring a finished run's duration).
    const shown = async () => (await page.locator('table.jobs tbody tr td:nth-child(4)').allInnerTexts()).join(',');
    let expected = '';
    for (let i = 0; i < 30; i++) {
      expected = (await api('GET', '/api/v1/jobs?sort=duration&order=desc')).items.map((j) => j.id).join(',');
      if ((await shown()) === expected) break;
      await e2e.sleep(200);
    }
    check((await shown()) === expected, `rows in the API's order: ${await shown()} vs ${expected}`);
    const top = (await api('GET', '/api/v1/jobs?sort=duration&order=desc')).items[0];
    check(top.last_run && top.last_run.duration_ms > 0, `the longest last run has a duration: ${JSON.stringify(top.last_run)}`);
    const cell = await page.getByTestId('job-duration').first().innerText();
    check(/\d/.test(cell) && cell !== '—', `the duration is shown: ${cell}`);
    await page.reload();
    await page.waitForFunction(() => document.querySelector('th[aria-sort] button')?.dataset.sort === 'duration');
    check((await byDuration.getAttribute('aria-sort')) === 'descending', 'the sort is kept over a reload');
    for (const by of sortable) {
      const r = await api('GET', `/api/v1/jobs?sort=${by}&order=desc`);
      check(r.items.length > 0, `the API sorts by ${by}`);
    }
    await page.locator('button[data-sort="id"]').click();
    await page.waitForFunction(() => document.querySelector('th[aria-sort] button')?.dataset.sort === 'id');
    await page.waitForURL(/\/administration\/jobs$/); // the default sort leaves the address bare
    a11y.push(...(await accessibilityProblems(page, 'jobs sorted')));
  }

  step('alerts: counts by severity, icons with words, filters by severity, source, scope and text');
  await page.getByRole('navigation').getByRole('link', { name: /^Alerts/ }).click();
  await page.waitForURL(/\/administration\/alerts$/);
  const alertRows = () => page.locator('table.alerts tbody tr[data-alert-id]');
  const onlyAlert = (title) =>
    page.waitForFunction((t) => {
      const r = document.querySelectorAll('table.alerts tbody tr[data-alert-id]');
      return r.length === 1 && r[0].textContent.includes(t);
    }, title);
  await page.getByRole('link', { name: 'Globex usage missing' }).waitFor();
  check((await alertRows().count()) === 3, `three alerts listed: ${await alertRows().count()}`);
  for (const [sev, n] of [['critical', '1'], ['warning', '1'], ['info', '1']])
    check((await page.getByTestId(`count-${sev}`).innerText()) === n, `${sev} count is ${n}`);
  const criticalRow = page.locator(`tr[data-alert-id="${acmeCritical.id}"]`);
  check((await criticalRow.innerText()).includes('Critical') && (await criticalRow.innerText()).includes('Open'), 'severity and status are words too');
  check((await page.locator('table.alerts thead').innerText()).includes('Last seen'), 'the table shows when last seen');
  await page.getByText(/Times in /).first().waitFor();
  await page.getByLabel('Severity', { exact: true }).selectOption('critical');
  await onlyAlert('Acme invoices overdue');
  await page.getByLabel('Severity', { exact: true }).selectOption('');
  await page.getByRole('link', { name: 'Globex usage missing' }).waitFor();
  await page.getByLabel(/^Scope node/).fill('tenant:globex');
  await onlyAlert('Globex usage missing');
  await page.getByLabel(/^Scope node/).fill('');
  await page.getByLabel('Filter alerts by text in title or message').fill('license');
  await onlyAlert('Acme license renews soon');
  await page.getByLabel('Filter alerts by text in title or message').fill('');
  await page.getByLabel('Sort').selectOption('-severity');
  await page.waitForFunction(
    (id) => document.querySelector('table.alerts tbody tr[data-alert-id]')?.getAttribute('data-alert-id') === String(id),
    acmeCritical.id,
  );
  await shot(page, '12c-alerts');
  a11y.push(...(await accessibilityProblems(page, 'alerts')));

  step('alerts: create a custom alert from the page; a scope that is no node is refused with the API\'s reason');
  await page.getByRole('button', { name: 'Create alert' }).click();
  dlg = page.getByRole('dialog');
  a11y.push(...(await accessibilityProblems(page, 'create alert dialog')));
  await dlg.getByLabel('Severity').selectOption('warning');
  await dlg.getByLabel(/^Title/).fill('Acme payment gateway slow');
  await dlg.getByLabel('Message').fill('Card payments take 20 s');
  await dlg.getByLabel(/^Scope/).fill('tenant:nowhere');
  await dlg.getByRole('button', { name: 'Create alert' }).click();
  await dlg.getByRole('alert').filter({ hasText: /scope/ }).waitFor();
  await dlg.getByLabel(/^Scope/).fill('tenant:acme');
  await dlg.getByRole('button', { name: 'Create alert' }).click();
  await page.waitForURL(/\/administration\/alerts\/\d+$/);
  const createdId = Number(page.url().split('/').pop());
  await page.getByRole('heading', { name: /Acme payment gateway slow/ }).waitFor();
  const created = (await api('GET', `/api/v1/alerts/${createdId}`)).alert;
  check(created.scope === 'tenant:acme' && created.severity === 'warning' && created.source === 'custom', `created: ${JSON.stringify(created)}`);

  step('alert: silence until a time (an hour ahead by default), marked silenced; unsilence');
  await page.getByRole('button', { name: 'Silence', exact: true }).click();
  dlg = page.getByRole('dialog');
  const until = await dlg.getByLabel(/^Silence until/).inputValue();
  check(/^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(until), `the picker holds a date and time: ${until}`);
  await dlg.getByLabel(/^Reason/).fill('e2e: the provider is on it');
  await dlg.getByRole('button', { name: 'Silence', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Silenced.' }).waitFor();
  await page.locator('.marker-silenced').waitFor();
  const silencedUntil = (await api('GET', `/api/v1/alerts/${createdId}`)).alert.silenced_until_ms;
  check(Math.abs(silencedUntil - new Date(until).getTime()) < 1000, `silenced until the picked time: ${silencedUntil}`);
  await page.getByRole('button', { name: 'Unsilence', exact: true }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByRole('button', { name: 'Unsilence', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Silence ended.' }).waitFor();
  await page.locator('.marker-silenced').waitFor({ state: 'detached' });
  check((await api('GET', `/api/v1/alerts/${createdId}`)).alert.silenced_until_ms === null, 'the silence ended');

  step('alert: every field and the details; acknowledge; a past silence and an empty close reason are refused; close with a reason');
  await page.goto(`${base}/administration/alerts/${acmeCritical.id}`);
  await page.getByRole('heading', { name: /Acme invoices overdue/ }).waitFor();
  check((await page.getByTestId('alert-details').innerText()).includes('inv-9'), 'the details are shown');
  check((await page.getByTestId('alert-message').innerText()) === 'Acme invoices overdue (e2e)', 'the message is shown');
  check(await page.getByRole('button', { name: 'Unsilence', exact: true }).isDisabled(), 'Unsilence waits for a silence');
  await shot(page, '12d-alert');
  a11y.push(...(await accessibilityProblems(page, 'alert')));
  await page.getByRole('button', { name: 'Acknowledge', exact: true }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Reason/).fill('e2e: looking at the invoices');
  await dlg.getByRole('button', { name: 'Acknowledge' }).click();
  await page.getByRole('status').filter({ hasText: 'Acknowledged.' }).waitFor();
  await page.getByTestId('alert-status').filter({ hasText: 'Acknowledged' }).waitFor();
  check((await page.getByTestId('alert-acknowledged').innerText()).includes('by admin'), 'who acknowledged it');
  check(await page.getByRole('button', { name: 'Acknowledge', exact: true }).isDisabled(), 'an acknowledged alert is not acknowledged again');
  await page.getByText('Already acknowledged by admin').waitFor();
  await page.getByRole('button', { name: 'Silence', exact: true }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Silence until/).fill('2020-01-01T10:00');
  await dlg.getByRole('button', { name: 'Silence' }).click();
  await dlg.getByRole('alert').filter({ hasText: /until_ms/ }).waitFor();
  await dlg.getByRole('button', { name: 'Back' }).click();
  await page.getByRole('button', { name: 'Close alert' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByText(/Reason \(required/).waitFor();
  await dlg.getByRole('button', { name: 'Close alert' }).click();
  await dlg.getByRole('alert').filter({ hasText: /reason: required/ }).waitFor();
  check((await api('GET', `/api/v1/alerts/${acmeCritical.id}`)).alert.status === 'acknowledged', 'an empty reason closes nothing');
  const refusedClose = await fetch(`${base}/api/v1/alerts/${acmeCritical.id}/close`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ reason: '' }),
  });
  const refusedWhy = await refusedClose.json();
  check(refusedClose.status === 422 && /reason/.test(refusedWhy.detail), `the API refuses an empty reason: ${refusedClose.status} ${refusedWhy.detail}`);
  await shot(page, '12e-alert-close-refused');
  await dlg.getByLabel(/^Reason/).fill('e2e: invoices paid');
  await dlg.getByRole('button', { name: 'Close alert' }).click();
  await page.getByRole('status').filter({ hasText: 'Closed.' }).waitFor();
  await page.getByTestId('alert-status').filter({ hasText: 'Closed' }).waitFor();
  check((await page.getByTestId('alert-closed').innerText()).includes('e2e: invoices paid'), 'the close reason is shown');
  for (const b of ['Acknowledge', 'Close alert', 'Silence', 'Unsilence'])
    check(await page.getByRole('button', { name: b, exact: true }).isDisabled(), `${b} is disabled on a closed alert`);
  await page.getByText('The alert is closed').waitFor();
  await page.getByTestId('alerts-badge').waitFor({ state: 'detached' }); // no critical alert left open
  await page.locator('table.history tbody tr').nth(2).waitFor();
  const events = await page.locator('table.history tbody tr td:nth-child(2)').allInnerTexts();
  check(JSON.stringify(events) === JSON.stringify(['raised', 'acknowledged', 'closed']), `history, oldest first: ${events}`);
  check((await page.locator('table.history').innerText()).includes('e2e: looking at the invoices'), 'the history keeps the reasons');
  await shot(page, '12f-alert-closed');
  a11y.push(...(await accessibilityProblems(page, 'closed alert')));

  step('alerts: closed ones shown on request; more pages read with the cursor');
  await page.getByRole('navigation').getByRole('link', { name: /^Alerts/ }).click();
  await page.getByRole('link', { name: 'Globex usage missing' }).waitFor();
  check((await page.getByRole('link', { name: 'Acme invoices overdue' }).count()) === 0, 'closed alerts are not listed by default');
  await page.getByRole('button', { name: 'Closed', exact: true, pressed: false }).click();
  await page.getByRole('link', { name: 'Acme invoices overdue' }).waitFor();
  for (let i = 1; i <= 55; i++) await alert('info', `Bulk alert ${i}`, 'tenant:globex', { area: 'bulk' }); // one connection at a time
  await page.getByLabel('Area', { exact: true }).fill('bulk');
  await page.waitForFunction(() => document.querySelectorAll('table.alerts tbody tr[data-alert-id]').length === 50);
  await page.getByRole('button', { name: 'More' }).click();
  await page.waitForFunction(() => document.querySelectorAll('table.alerts tbody tr[data-alert-id]').length === 55);
  await page.getByRole('button', { name: 'More' }).waitFor({ state: 'detached' });
  const bulk = await page.locator('table.alerts tbody tr[data-alert-id]').evaluateAll((rows) => rows.map((r) => r.dataset.alertId));
  check(new Set(bulk).size === 55, 'each alert is listed once across the pages');

  // Each page's code is a chunk fetched on its first visit; one no longer served (the kernel
  // upgraded since the tab opened) is said so, with a reload that fetches the console anew.
  step('a page whose code is gone says so and offers to reload; the reload shows it');
  const chunks = [];
  await page.route('**/administration/assets/chunk-*.js', (r) => (chunks.push(r.request().url()), r.fulfill({ status: 404, body: 'gone' })));
  await page.getByRole('link', { name: 'Plugins' }).click();
  await page.getByRole('alert').filter({ hasText: 'This page could not be loaded' }).waitFor();
  check(chunks.length > 0, 'the Plugins page is fetched on its first visit');
  await page.unroute('**/administration/assets/chunk-*.js');
  await page.getByRole('button', { name: 'Reload the console' }).click();
  await page.getByRole('heading', { name: /Loaded \(4\)/ }).waitFor();

  step('plugins: loaded with manifests, refused with the reason');
  await page.getByRole('link', { name: 'Plugins' }).click();
  await page.getByRole('heading', { name: /Loaded \(4\)/ }).waitFor();
  const plugins = await page.locator('main').innerText();
  for (const p of ['admin-http', 'console', 'hello', 'engine-jobs']) check(plugins.includes(p), `plugin ${p} listed`);
  check(plugins.includes('no_entry.so') && /entry/i.test(plugins.split('Refused')[1] || ''), 'the refused plugin and its reason');
  await shot(page, '12-plugins');
  a11y.push(...(await accessibilityProblems(page, 'plugins')));

  // The Workers page on SQLite (draining is tested on PostgreSQL by workers_e2e.mjs).
  step('workers: this kernel alone on its SQLite store, with its plugins; Drain disabled, saying why');
  await page.getByRole('link', { name: 'Workers' }).click();
  const self = page.locator('tr[data-worker]');
  await self.first().waitFor();
  check((await self.count()) === 1, 'one worker');
  const selfRow = await self.innerText();
  check(selfRow.includes('this kernel') && selfRow.includes('hello') && selfRow.includes('the only kernel on its store'), `this kernel: ${selfRow}`);
  check(await self.getByRole('button', { name: /^Drain / }).isDisabled(), 'Drain is disabled on SQLite');
  await self.getByText('runs alone on its store').waitFor();
  a11y.push(...(await accessibilityProblems(page, 'workers')));

  step('audit: every action with who, why and the outcome; filtered by action');
  await page.getByRole('link', { name: 'Audit' }).click();
  await page.getByRole('cell', { name: 'e2e: check after upgrade' }).waitFor();
  await page.getByLabel('Action').selectOption('cancel');
  await page.getByRole('cell', { name: 'e2e: enough' }).waitFor();
  await page.waitForFunction(() => ![...document.querySelectorAll('table.audit td')].some((td) => td.textContent === 'run-now'));
  await shot(page, '12b-audit');
  a11y.push(...(await accessibilityProblems(page, 'audit')));
  check(a11y.length === 0, `every control is labelled and nothing scrolls sideways: ${a11y.join('; ')}`);

  step('create a job from the jobs list (a bad id named by the server), pause and resume it on its Scheduling tab');
  {
    await page.goto(`${base}/administration/jobs`);
    await page.getByRole('button', { name: 'New job', exact: true }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByRole('heading', { name: 'New scheduled job' }).waitFor();
    check(await dlg.getByRole('button', { name: 'Create job' }).isDisabled(), 'Create waits for an id');
    await dlg.getByLabel('Job type', { exact: true }).selectOption('hello');
    await dlg.getByLabel(/^Description/).fill('To be deleted');
    await dlg.getByLabel(/^Scheduled: a cron expression/).check();
    await dlg.getByLabel(/^Cron expression/).fill('30 18 1 1 *');
    await dlg.getByLabel('Time zone', { exact: true }).fill('Europe/Stockholm');
    await dlg.getByLabel(/^Id/).fill('Retired Hello');
    await dlg.getByRole('button', { name: 'Create job' }).click();
    await dlg.getByRole('alert').filter({ hasText: 'is not a valid id' }).waitFor();
    a11y.push(...(await accessibilityProblems(page, 'new job dialog')));
    await dlg.getByLabel(/^Id/).fill('retired-hello');
    await dlg.getByRole('button', { name: 'Create job' }).click();
    await page.waitForURL(/\/administration\/jobs\/retired-hello$/);
    const made = (await api('GET', '/api/v1/jobs/retired-hello')).job;
    check(made.job_type === 'hello' && made.planning === 'scheduled' && made.cron === '30 18 1 1 *' && made.time_zone === 'Europe/Stockholm' &&
      made.enabled === true && made.description === 'To be deleted', `the job is created as filled in: ${JSON.stringify(made)}`);
    const created = (await api('GET', '/api/v1/audit?action=job.create')).items.filter((a) => a.target === 'retired-hello');
    check(created.length === 1 && created[0].outcome === 'ok', `one audited create (${created.length}), the refused id made none stored`);
    await page.getByRole('tab', { name: 'Scheduling' }).click();
    for (const on of [false, true]) {
      const box = page.getByLabel('Enabled', { exact: true });
      await (on ? box.check() : box.uncheck());
      await page.getByRole('button', { name: 'Save scheduling' }).click();
      let job;
      for (let i = 0; i < 100 && (job = (await api('GET', '/api/v1/jobs/retired-hello')).job).enabled !== on; i++) await page.waitForTimeout(50);
      check(job.enabled === on && job.cron === '30 18 1 1 *', `${on ? 'resumed' : 'paused'}: enabled ${job.enabled}`);
    }
    const changes = (await api('GET', '/api/v1/audit?action=job.update')).items.filter((a) => a.target === 'retired-hello');
    check(changes.length === 2, `the pause and the resume are audited: ${changes.length}`);
  }

  step('delete a job from its page: a reason asked, refused while a run waits, focus back on Escape; gone, its runs kept');
  {
    const ran = (await api('POST', '/api/v1/jobs/retired-hello/run', { reason: 'e2e: before delete', params: { steps: 1, step_ms: 0 } })).run_ids[0];
    const waiting = (await api('POST', '/api/v1/jobs/retired-hello/run', { reason: 'e2e: waits', start_at_ms: Date.now() + 3600000 })).run_ids[0];
    await page.goto(`${base}/administration/jobs/retired-hello`);
    const del = page.getByRole('button', { name: 'Delete', exact: true });
    await del.click();
    let dlg = page.getByRole('dialog');
    await dlg.getByRole('heading', { name: 'Delete retired-hello' }).waitFor();
    check(await dlg.getByRole('button', { name: 'Delete the job' }).isDisabled(), 'Delete waits for a reason');
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'detached' });
    await page.waitForFunction(() => document.activeElement?.textContent === 'Delete');
    await del.click();
    dlg = page.getByRole('dialog');
    await dlg.getByLabel(/^Reason/).fill('e2e: retired');
    await dlg.getByRole('button', { name: 'Delete the job' }).click();
    await dlg.getByRole('alert').filter({ hasText: `run ${waiting} pending or running` }).waitFor();
    await shot(page, '12c-delete-refused');
    await api('POST', `/api/v1/runs/${waiting}/cancel`, { reason: 'e2e: let it be deleted' });
    await dlg.getByRole('button', { name: 'Delete the job' }).click();
    await page.waitForURL(/\/administration\/jobs$/);
    await page.getByRole('link', { name: 'nightly-hello' }).waitFor();
    check((await page.getByRole('link', { name: 'retired-hello' }).count()) === 0, 'the job is gone from the list');
    const kept = (await api('GET', '/api/v1/runs?job_id=retired-hello')).items.map((r) => r.id).sort();
    check(JSON.stringify(kept) === JSON.stringify([ran, waiting].sort()), `its runs stay: ${kept}`);
    await page.goto(`${base}/administration/runs/${ran}`);
    await page.getByRole('link', { name: 'retired-hello' }).waitFor();
    const row = (await api('GET', '/api/v1/audit?action=job.delete')).items.find((a) => a.outcome === 'ok');
    check(row && row.reason === 'e2e: retired' && row.target === 'retired-hello' && row.params.description === 'To be deleted',
      `the delete is audited with the job as it was: ${JSON.stringify(row)}`);
  }

  step('a TenantUser sees only their tenant\'s jobs, and may not run them');
  const tina = await newPage();
  await signIn(tina, tinaToken);
  await tina.getByRole('link', { name: 'acme-report' }).waitFor();
  const tinaJobs = await tina.locator('table.jobs tbody').innerText();
  for (const other of ['globex-report', 'nightly-hello', 'daily-rollup', 'long-hello'])
    check(!tinaJobs.includes(other), `TenantUser does not see ${other}`);
  check((await tina.locator('header.top .who').innerText()).includes('TenantUser'), 'role shown');
  await tina.getByLabel('Select acme-report').check();
  check(await tina.getByRole('button', { name: /^Run now/ }).isDisabled(), 'TenantUser may not run now');
  await tina.getByText('may not start runs').waitFor();
  await tina.goto(`${base}/administration/jobs/acme-report`);
  await tina.getByRole('heading', { name: 'acme-report' }).waitFor();
  check((await tina.getByRole('button', { name: 'Delete', exact: true }).count()) === 0, 'a TenantUser is not offered Delete');
  await shot(tina, '13-tenant-user-jobs');
  await tina.goto(`${base}/administration/jobs/globex-report`);
  await tina.getByRole('alert').filter({ hasText: /no scheduled job|not found/i }).waitFor();
  await tina.goto(`${base}/administration/alerts`);
  await tina.getByRole('link', { name: 'Acme license renews soon' }).waitFor();
  await tina.getByRole('link', { name: 'Acme payment gateway slow' }).waitFor();
  check((await tina.getByRole('link', { name: 'Globex usage missing' }).count()) === 0, 'TenantUser does not see globex\'s alert');
  check(await tina.getByRole('button', { name: 'Create alert' }).isDisabled(), 'TenantUser may not create alerts');
  await tina.getByText('may not create alerts').waitFor();
  await tina.getByRole('link', { name: 'Acme license renews soon' }).click();
  await tina.waitForURL(new RegExp(`/alerts/${acmeInfo.id}$`));
  await tina.getByRole('heading', { name: /Acme license renews soon/ }).waitFor();
  for (const b of ['Acknowledge', 'Close alert', 'Silence', 'Unsilence'])
    check(await tina.getByRole('button', { name: b, exact: true }).isDisabled(), `${b} is disabled for a TenantUser`);
  await tina.getByText('(TenantUser) may not manage alerts').waitFor();
  await shot(tina, '13b-tenant-user-alert');
  await tina.goto(`${base}/administration/alerts/${globexWarning.id}`);
  await tina.getByRole('alert').filter({ hasText: /not found|no alert/i }).waitFor();
  check((await tina.getByRole('heading', { name: /Globex usage missing/ }).count()) === 0, 'globex\'s alert is not shown');
  await tina.goto(`${base}/administration/plugins`);
  await tina.getByText('may not see the plugins').waitFor();
  await tina.goto(`${base}/administration/audit`);
  await tina.getByText('may not read the audit trail').waitFor();
  await tina.goto(`${base}/administration/workers`);
  await tina.getByText('(TenantUser) may not drain workers').waitFor();

  check(problems.length === 0, `no page errors: ${problems.join(' | ')}`);
  console.log(`console e2e: all checks passed; screenshots in ${OUT}`);
} catch (e) {
  failed = true;
  await e2e.reportFailure('console e2e', e, problems, browser, OUT);
} finally {
  if (browser) await browser.close().catch(() => {});
  await stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
