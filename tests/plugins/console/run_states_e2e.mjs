// Honest run states in the console end to end: the real kernel (admin-http,
// console, hello and the engine_jobs fixture) ends runs every way there is —
// a real failure, an operator's cancel with a reason, a timeout, a stop at
// the kernel's shutdown (SIGTERM) and a crash (SIGKILL, then a start that
// recovers the run) — and headless Chromium (Debian's /usr/bin/chromium
// through playwright-core) shows each distinctly: on its run page ("Cancelled
// by admin: …", "Timed out after 100 ms", "Stopped at shutdown", "Recovered
// after a crash", "Failed"), in the run history's icons and filters, and in
// Attention, which lists only the real failure unless asked to include the
// others. Screenshots go to --out.
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
  for (const id of [cancelled, timedOut, stopped, crashed]) await failedList.getByRole('link', { name: `Run ${id}` }).waitFor();
  check((await failedList.innerText()).includes('Timed out after 100 ms'), 'the timeout is said as such');
  await e2e.shot(OUT, page, 's-attention');
  step('the run history shows each status apart, and filters by it');
  await page.goto(`${base}/administration/runs`);
  const icon = (id) => page.locator(`tr:has(a[href="/administration/runs/${id}"]) .status[role="img"]`);
  for (const [id, status] of [[failure, 'Failed'], [cancelled, 'Cancelled'], [timedOut, 'Timed out'], [stopped, 'Stopped at shutdown'], [crashed, 'Recovered']]) {
    await icon(id).waitFor();
    check((await icon(id).getAttribute('aria-label')) === status, `run ${id}'s icon says ${status}`);
  }
  await page.getByRole('group', { name: 'Filter runs by status' }).getByRole('button', { name: /Timed out/ }).click();
  await icon(timedOut).waitFor({ state: 'detached' });
  check((await icon(failure).count()) === 1, 'the other runs stay');
  await e2e.shot(OUT, page, 's-history');

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
  check(a11y.length === 0, `every control is labelled: ${a11y.join('; ')}`);
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
