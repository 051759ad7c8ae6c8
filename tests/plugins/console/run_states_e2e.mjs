// Honest run states in the console end to end: the real kernel (admin-http,
// console, hello and the engine_jobs fixture) ends runs every way there is —
// a real failure, an operator's cancel with a reason, a timeout, a stop at
// the kernel's shutdown (SIGTERM) and a crash (SIGKILL, then a start that
// recovers the run) — and headless Chromium (Debian's /usr/bin/chromium
// through playwright-core) shows each distinctly: on its run page ("Cancelled
// by admin: …", "Timed out after 100 ms", "Stopped at shutdown", "Recovered
// after a crash", "Failed"), in the run history's icons and filters, and in
// Attention, which lists only the real failure unless asked to include the
// others; the overview's counts agree with the API's lists and follow a run
// completed meanwhile without a reload; two runs selected
// in the history are held, released, cancelled and retried in bulk with one
// reason, each audited on its own (a retry naming its new run); the history pages 55 queued runs with Next and
// Previous, and its address gives the same page. Screenshots go to --out.
//
//   node run_states_e2e.mjs --kernel BIN --plugins DIR --fixtures DIR --web DIR --out DIR
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as e2e from './e2e.mjs';
import { check, chromiumOf, folders, kernelFolder, launch, sleep, startKernel, step } from './e2e.mjs';

const [KERNEL, PLUGINS, FIXTURES, WEB, OUT] = folders(process.argv.slice(2), ['kernel', 'plugins', 'fixtures', 'web', 'out']);
const chromium = chromiumOf(WEB);

const dir = mkdtempSync(join(tmpdir(), 'opk-console-states-e2e-'));
mkdirSync(OUT, { recursive: true });
const { base, adminToken, conf } = await kernelFolder(
  dir,
  [...['admin-http.so', 'console.so', 'hello.so'].map((f) => join(PLUGINS, f)), join(FIXTURES, 'engine_jobs.so')],
  `[plugin.console]
poll_seconds = 1
`,
);
let k = startKernel(KERNEL, conf, base, adminToken);
const api = (...a) => k.api(...a);

let browser;
const problems = [];
const runIds = async (body) => (await api('POST', '/api/v1/runs', { reason: 'e2e', ...body })).run_ids[0];
async function waitFor(id, phases) {
  for (let i = 0; i < 400; i++) {
    const { run } = await api('GET', `/api/v1/runs/${id}`);
    if (phases.includes(run.phase)) return run;
    await sleep(50);
  }
  throw new Error(`run ${id} did not reach ${phases}`);
}

let failed = false;
const a11yOverview = [];
try {
  await k.waitReady();
  step('end runs every way: a failure, a cancel, a timeout, a shutdown and a crash');
  const failure = await runIds({ job_type: 'hello', params: { steps: 1, step_ms: 0, fail: true } });
  const cancelled = await runIds({ job_type: 'hello', params: { steps: 600, step_ms: 100 } });
  await waitFor(cancelled, ['RUNNING']);
  await api('POST', `/api/v1/runs/${cancelled}/cancel`, { reason: 'wrong tenant' });
  const timedOut = await runIds({ job_type: 'timeout-job', params: { ms: 60000 } });
  const stopped = await runIds({ job_type: 'slow-job', params: { ms: 60000 } });
  for (const id of [failure, cancelled, timedOut]) await waitFor(id, ['COMPLETED']);
  await waitFor(stopped, ['RUNNING']);
  await k.stop(); // SIGTERM: the kernel stops the run
  k = startKernel(KERNEL, conf, base, adminToken);
  await k.waitReady();
  const crashed = await runIds({ job_type: 'slow-job', params: { ms: 60000 } });
  await waitFor(crashed, ['RUNNING']);
  k.kernel.kill('SIGKILL');
  await new Promise((r) => (k.kernel.exitCode !== null || k.kernel.signalCode !== null ? r() : k.kernel.on('exit', r)));
  k = startKernel(KERNEL, conf, base, adminToken);
  await k.waitReady();
  const expected = {
    [failure]: ['error', 'Failed'],
    [cancelled]: ['cancelled', 'Cancelled by admin: wrong tenant'],
    [timedOut]: ['timed_out', 'Timed out after 100 ms'],
    [stopped]: ['stopped', 'Stopped at shutdown'],
    [crashed]: ['recovered', 'Recovered after a crash'],
  };
  for (const [id, [status]] of Object.entries(expected)) {
    const { run } = await api('GET', `/api/v1/runs/${id}`);
    check(run.status === status, `run ${id} is ${status} in the API: ${JSON.stringify(run)}`);
  }

  browser = await launch(chromium);
  const page = await e2e.newPage(browser, problems);
  await e2e.signIn(page, base, adminToken);

  step('Attention lists only the real failure, unless asked for the others');
  await page.goto(`${base}/administration/attention`);
  const failedList = page.locator('section[aria-labelledby="att-failed"]');
  await failedList.getByRole('link', { name: `Run ${failure}` }).waitFor();
  for (const id of [cancelled, timedOut, stopped, crashed])
    check((await failedList.getByRole('link', { name: `Run ${id}` }).count()) === 0, `run ${id} is not a failure`);
  await failedList.getByLabel('Include cancelled, timed-out, stopped and recovered runs').check();
  // Grouped by job (here by type): slow-job's two runs under one head, each group's runs behind its disclosure.
  await failedList.getByTestId('attention-group-type:slow-job').getByText('2 failures').waitFor();
  for (const summary of await failedList.locator('summary').all()) await summary.click();
  for (const id of [cancelled, timedOut, stopped, crashed]) await failedList.getByRole('link', { name: `Run ${id}` }).first().waitFor();
  check((await failedList.innerText()).includes('Timed out after 100 ms'), 'the timeout is said as such');
  await e2e.shot(OUT, page, 's-attention');
  step('the overview counts what the API lists: runs now, the last 24 hours by state, failures by job, the queues');
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Overview' }).click();
  await page.waitForURL(/\/administration\/overview$/);
  const tile = async (id) => (await page.getByTestId(`overview-${id}`).locator('.tile-value').innerText()).trim();
  await page.getByTestId('overview-running').waitFor();
  const listed = async (q) => (await api('GET', `/api/v1/runs?limit=1000&${q}`)).items;
  const day = await listed(`since_ms=${Date.now() - 86400000}`);
  for (const status of ['normal', 'warning', 'error', 'cancelled', 'timed_out', 'stopped', 'recovered']) {
    const want = day.filter((r) => r.phase === 'COMPLETED' && r.status === status).length;
    check((await tile(`day-${status}`)) === String(want), `the last 24 hours' ${status}: ${await tile(`day-${status}`)} shown, ${want} listed`);
  }
  check((await tile('day-error')) === '1' && (await tile('day-recovered')) === '1', 'one failure and one recovered run');
  for (const [id, q] of [['running', 'status=running'], ['pending', 'status=pending']]) {
    const want = (await listed(q)).length;
    check((await tile(id)) === String(want), `${id}: ${await tile(id)} shown, ${want} listed`);
  }
  check((await page.getByTestId('failures-hello').innerText()).includes('1'), 'the failure grouped under its type');
  await page.getByTestId('queue-default').waitFor();
  check((await page.locator('[data-testid^="failures-"]').count()) === 1, 'only real failures are grouped');
  await e2e.shot(OUT, page, 's-overview');
  a11yOverview.push(...(await e2e.accessibilityProblems(page, 'overview')));
  // Refreshed live: a run that completes meanwhile is counted without a reload (poll_seconds = 1).
  {
    const before = Number(await tile('day-normal'));
    const { run_ids: [more] } = await api('POST', '/api/v1/runs', { job_type: 'hello', reason: 'e2e: one more', params: { steps: 1, step_ms: 0 } });
    for (let i = 0; i < 100 && (await api('GET', `/api/v1/runs/${more}`)).run.phase !== 'COMPLETED'; i++) await sleep(50);
    await page.waitForFunction((n) => document.querySelector('[data-testid="overview-day-normal"] .tile-value')?.textContent.trim() === String(n),
      before + 1, { timeout: 10000 });
  }

  step('the run history shows each status apart, and filters by it');
  await page.goto(`${base}/administration/runs`);
  const icon = (id) => page.locator(`tr:has(a[href="/administration/runs/${id}"]) .status[role="img"]`);
  for (const [id, status] of [[failure, 'Failed'], [cancelled, 'Cancelled'], [timedOut, 'Timed out'], [stopped, 'Stopped at shutdown'], [crashed, 'Recovered']]) {
    await icon(id).waitFor();
    check((await icon(id).getAttribute('aria-label')) === status, `run ${id}'s icon says ${status}`);
  }
  await page.getByLabel('State', { exact: true }).selectOption('timed_out');
  await icon(failure).waitFor({ state: 'detached' });
  check((await icon(timedOut).count()) === 1, 'the timed-out run stays');
  await page.getByLabel('State', { exact: true }).selectOption('terminated');
  for (const id of [cancelled, timedOut, stopped, crashed]) await icon(id).waitFor();
  check((await icon(failure).count()) === 0, 'a failure is not terminated');
  await e2e.shot(OUT, page, 's-history');

  step('bulk hold, release and cancel of selected runs: one reason, one audit row per run');
  const later = Date.now() + 3600000;
  const { run_ids: waiting } = await api('POST', '/api/v1/runs', {
    requests: [1, 2].map(() => ({ job_type: 'hello', reason: 'e2e: later', start_at_ms: later })),
  });
  await page.goto(`${base}/administration/runs`);
  const bulk = async (button, reason) => {
    for (const id of waiting) await page.getByLabel(`Select run ${id}`).check();
    check((await page.getByTestId('bulk-count').innerText()).startsWith('2 runs selected'), 'two runs selected');
    await page.getByRole('group', { name: 'Selected runs' }).getByRole('button', { name: button }).click();
    const dlg = page.getByRole('dialog');
    check(await dlg.getByRole('button', { name: button }).isDisabled(), 'no reason, no action');
    await dlg.getByLabel(/^Reason/).fill(reason);
    await dlg.getByRole('button', { name: button }).click();
    await dlg.waitFor({ state: 'detached' });
    const rows = (await api('GET', `/api/v1/audit?limit=100`)).items.filter((a) => a.reason === reason);
    check(rows.length === 2 && waiting.every((id) => rows.some((a) => a.target === `run ${id}` && /^ok(: run \d+)?$/.test(a.outcome))),
      `one audit row per run for '${reason}': ${JSON.stringify(rows)}`);
  };
  await bulk(/^Hold/, 'e2e: hold both');
  for (const id of waiting) check((await api('GET', `/api/v1/runs/${id}`)).run.hold === true, `run ${id} held`);
  await bulk(/^Release/, 'e2e: release both');
  for (const id of waiting) check((await api('GET', `/api/v1/runs/${id}`)).run.hold === false, `run ${id} released`);
  await bulk(/^Cancel runs/, 'e2e: cancel both');
  for (const id of waiting) check((await api('GET', `/api/v1/runs/${id}`)).run.status === 'cancelled', `run ${id} cancelled`);
  a11yOverview.push(...(await e2e.accessibilityProblems(page, 'run history with a selection')));
  await e2e.shot(OUT, page, 's-bulk');

  step('the run history pages with Next and Previous, its filters and page in the address');
  {
    const { run_ids: queued } = await api('POST', '/api/v1/runs', {
      requests: Array.from({ length: 55 }, () => ({ job_type: 'hello', reason: 'e2e: paging', start_at_ms: later + 86400000 })),
    });
    check(queued.length === 55, `55 runs queued: ${queued.length}`);
    await page.goto(`${base}/administration/runs?status=pending`);
    const rows = page.locator('table.runs tbody tr:has(a[href^="/administration/runs/"])');
    const pager = page.getByRole('navigation', { name: 'Pages of runs' });
    await page.getByRole('link', { name: `#${queued[54]}`, exact: true }).waitFor();
    check((await rows.count()) === 50, `the first page shows 50 runs: ${await rows.count()}`);
    check(await pager.getByRole('button', { name: 'Previous' }).isDisabled(), 'no page before the first');
    await pager.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('link', { name: `#${queued[0]}`, exact: true }).waitFor();
    check((await rows.count()) === 5, `the second page shows the other 5: ${await rows.count()}`);
    check(await pager.getByRole('button', { name: 'Next' }).isDisabled(), 'no page after the last');
    const link = page.url();
    check(/cursor=/.test(link) && /status=pending/.test(link), `the page and filter are in the address: ${link}`);
    await page.goto(link); // a link gives the same view
    await page.getByRole('link', { name: `#${queued[0]}`, exact: true }).waitFor();
    check((await rows.count()) === 5 && (await page.getByLabel('State', { exact: true }).inputValue()) === 'pending', 'the link gives the same page');
    await pager.getByRole('button', { name: 'Previous' }).click();
    await page.getByRole('link', { name: `#${queued[54]}`, exact: true }).waitFor();
    check((await rows.count()) === 50, `Previous shows the first page again: ${await rows.count()}`);
    await page.getByLabel('Started by what').selectOption('retry');
    await page.locator('td.empty').filter({ hasText: 'No run matches' }).waitFor();
    a11yOverview.push(...(await e2e.accessibilityProblems(page, 'run history filtered')));
    await e2e.shot(OUT, page, 's-history-pages');
  }

  step('bulk retry of the selected failed runs: one reason, one audit row and one new run each');
  {
    await page.goto(`${base}/administration/runs?status=cancelled`);
    for (const id of waiting) await page.getByLabel(`Select run ${id}`).waitFor();
    await bulk(/^Retry/, 'e2e: retry both');
    const retries = (await api('GET', '/api/v1/runs?trigger=retry&limit=100')).items;
    check(retries.length === 2, `two runs started by the retry: ${retries.length}`);
    for (const id of waiting) {
      const again = retries.filter((r) => (r.parent_run_id ?? (r.parent && r.parent.id)) === id);
      check(again.length === 1, `run ${id} retried once: ${JSON.stringify(retries.map((r) => [r.id, r.parent_run_id]))}`);
    }
  }

  step('each run page says how the run ended');
  for (const [id, [status, words]] of Object.entries(expected)) {
    await page.goto(`${base}/administration/runs/${id}`);
    const said = (await page.getByTestId('run-status').innerText()).trim();
    check(said.startsWith(words), `run ${id} reads '${said}', not '${words}'`);
    check(!said.includes('terminated'), `run ${id} is not called terminated: '${said}'`);
    if (status !== 'error') check((await page.getByTestId('run-termination').innerText()).startsWith(words), `run ${id} says why it stopped`);
    await e2e.shot(OUT, page, `s-run-${status}`);
  }

  const a11y = await e2e.accessibilityProblems(page, 'attention');
  check(a11y.length === 0 && a11yOverview.length === 0, `every control is labelled: ${[...a11y, ...a11yOverview].join('; ')}`);
  check(problems.length === 0, `no page errors: ${problems.join(' | ')}`);
  console.log(`console run states e2e: all checks passed; screenshots in ${OUT}`);
} catch (e) {
  failed = true;
  await e2e.reportFailure('console run states e2e', e, problems, browser, OUT);
} finally {
  if (browser) await browser.close().catch(() => {});
  await k.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
