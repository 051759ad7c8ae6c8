// The console's Workers page end to end on PostgreSQL: two real kernels on
// a fresh database of the tests' server (OPK_TEST_PG, started by the ctest
// fixture), the first with admin-http and the console, the second (node
// e2e-second, hello only) started beside it; driven in headless Chromium at
// 1366x768.
//
// The page lists both workers with their version, pools, plugins, heartbeat
// and status, as the API does; the second is drained from the page with a
// reason (Drain waits for one), reports drained, shows the reason and can no
// longer be drained; the drain is audited as worker.drain. A role reading
// jobs without runs.recover sees Drain disabled with why; a role without
// jobs.read has no menu entry and is told it may not see the page.
// Labels and sideways scrolling checked on the page and the dialog, axe-core
// on the dialog in light and dark mode, and the dialog fits a phone
// (390x844). By keyboard only: Workers reached from the menu, Tab through
// its table to Drain, the dialog cancelled, the focus back on Drain.
// Screenshots go to --out.
//
//   node workers_e2e.mjs --kernel BIN --plugins DIR --web DIR --out DIR
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { axeViolations } from './axe.mjs';
import * as e2e from './e2e.mjs';
import { check, sleep, step } from './e2e.mjs';
import { featurePageTest } from '../../support/admin_feature_e2e.mjs';

const server = process.env.OPK_TEST_PG;
if (!server) {
  console.error('OPK_TEST_PG is not set: run this test through ctest (its fixture starts the PostgreSQL server)');
  process.exit(1);
}
// A database of its own, dropped when the test ends (the plugin roles the
// store made for it go with the tests' throwaway server).
const database = `opk_e2e_workers_${process.pid}`;
const psql = (sql) => {
  const r = spawnSync('psql', [server, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr || r.error}`);
};
psql(`CREATE DATABASE ${database}`);
const conninfo = `${server} dbname=${database}`;
let second = null;
const secondDir = mkdtempSync(join(tmpdir(), 'opk-console-workers-second-'));
process.on('exit', () => {
  if (second && second.exitCode === null) second.kill('SIGKILL');
  rmSync(secondDir, { recursive: true, force: true });
  try {
    psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  } catch (e) {
    console.error(String(e));
  }
});
const store = `[store]
backend = postgresql
conninfo = ${conninfo}
[jobs]
lease_ms = 1500
`;

await featurePageTest(
  {
    title: 'console workers e2e',
    name: 'workers',
    plugins: ['hello.so'],
    // The tenant administrator reads jobs but may not drain; the tenant user may not read jobs.
    permissions: `platform_administrator = *
tenant_administrator = jobs.read
tenant_user = alerts.read
`,
    more: `${store}[plugin.console]
poll_seconds = 1
`,
  },
  async ({ adminToken, api, problems, newPage, shot, signIn, menu, audit, user, hierarchy }) => {
    const [KERNEL, PLUGINS] = e2e.folders(process.argv.slice(2), ['kernel', 'plugins']);
    step('a second kernel on the same database');
    mkdirSync(join(secondDir, 'plugins'));
    spawnSync('ln', ['-s', join(PLUGINS, 'hello.so'), join(secondDir, 'plugins', 'hello.so')]);
    const conf = join(secondDir, 'opskernel.conf');
    writeFileSync(
      conf,
      `[kernel]
data_dir = ${join(secondDir, 'data')}
plugins_dir = ${join(secondDir, 'plugins')}
node_name = e2e-second
[log]
level = warn
${store}`,
    );
    second = spawn(KERNEL, ['--config', conf, 'run'], { stdio: ['ignore', 'inherit', 'inherit'] });
    let workers = [];
    for (let i = 0; i < 200; i++) {
      workers = (await api('GET', '/api/v1/workers')).workers;
      if (workers.length === 2 && workers.every((w) => w.status === 'idle')) break;
      await sleep(50);
    }
    check(workers.length === 2, `two workers registered: ${JSON.stringify(workers)}`);
    const first = workers.find((w) => w.self);
    check(first && workers.some((w) => w.node === 'e2e-second'), `this kernel and e2e-second: ${JSON.stringify(workers)}`);
    hierarchy();
    const reader = user('tara', 'TenantAdministrator', 'tenant:acme');
    const nobody = user('uno', 'TenantUser', 'tenant:acme');
    const a11y = [];

    step('the menu has Workers; both are listed with version, pools, plugins, heartbeat and status');
    const page = await newPage();
    await signIn(page, adminToken);
    await menu(page).getByRole('link', { name: 'Workers' }).click();
    await page.waitForURL(/\/administration\/workers$/);
    const row = (node) => page.locator(`tr[data-worker="${node}"]`);
    await row('e2e-second').waitFor();
    const mine = await row(first.node).innerText();
    check(mine.includes('this kernel') && mine.includes(first.version) && mine.includes('default'), `this kernel's row: ${mine}`);
    check(['admin-http', 'console', 'hello'].every((p) => mine.includes(p)), `its plugins: ${mine}`);
    const other = await row('e2e-second').innerText();
    check(other.includes('Idle') && other.includes('hello') && !other.includes('console') && /ago|now/.test(other), `the second's row: ${other}`);
    a11y.push(...(await e2e.accessibilityProblems(page, 'the workers page', 'main .table-wrap')));
    await shot(page, 'w1-workers');

    step('by keyboard only: Workers from the menu, through its table to Drain, the dialog cancelled and the focus back; axe and a phone on the dialog');
    {
      const [WEB] = e2e.folders(process.argv.slice(2), ['web']);
      const kb = await newPage();
      await signIn(kb, adminToken);
      await kb.waitForTimeout(300);
      const tab = async (pred, what, max = 80, key = 'Tab') => {
        for (let i = 0; i < max; i++) {
          await kb.keyboard.press(key);
          if (await kb.evaluate(pred)) return;
        }
        throw new Error(`${key} never reached ${what}`);
      };
      await tab(() => document.activeElement.textContent.trim() === 'Workers' && !!document.activeElement.closest('nav'), "the menu's Workers");
      await kb.keyboard.press('Enter');
      await kb.waitForURL(/\/administration\/workers$/);
      await kb.locator('tr[data-worker="e2e-second"]').waitFor();
      await tab(() => document.activeElement.getAttribute('aria-label') === 'Drain e2e-second', 'Drain e2e-second in the table', 60);
      await kb.keyboard.press('Enter');
      await kb.getByRole('dialog').waitFor();
      check(await kb.evaluate(() => !!document.activeElement.closest('dialog')), 'the focus is in the Drain dialog');
      for (const scheme of ['light', 'dark']) {
        await kb.emulateMedia({ colorScheme: scheme });
        await kb.waitForFunction((s) => document.documentElement.dataset.theme === s, scheme);
        a11y.push(...(await axeViolations(kb, WEB, `${scheme} drain dialog`)));
      }
      a11y.push(...(await e2e.phoneFitProblems(kb, 'the drain dialog')));
      await tab(() => document.activeElement.textContent.trim() === 'Cancel' && !!document.activeElement.closest('dialog'), "the dialog's Cancel", 20);
      await kb.keyboard.press('Enter');
      await kb.getByRole('dialog').waitFor({ state: 'detached' });
      const back = () => document.activeElement.getAttribute('aria-label') === 'Drain e2e-second';
      for (let i = 0; i < 20 && !(await kb.evaluate(back)); i++) await kb.waitForTimeout(50);
      check(await kb.evaluate(back), `the focus is back on Drain e2e-second: ${await kb.evaluate(() => document.activeElement.outerHTML.slice(0, 200))}`);
      const after = (await api('GET', '/api/v1/workers')).workers.find((w) => w.node === 'e2e-second');
      check(after.status === 'idle', `cancelled, nothing drained: ${JSON.stringify(after)}`);
      await kb.context().close();
    }

    step('drain the second kernel with a reason: it reports drained, audited');
    await row('e2e-second').getByRole('button', { name: 'Drain e2e-second' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    check(await dlg.getByRole('button', { name: 'Drain', exact: true }).isDisabled(), 'Drain waits for a reason');
    a11y.push(...(await e2e.accessibilityProblems(page, 'the drain dialog')));
    await dlg.getByLabel(/^Reason/).fill('e2e: kernel upgrade');
    await dlg.getByRole('button', { name: 'Drain', exact: true }).click();
    await dlg.waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'e2e-second drains' }).waitFor();
    await page.locator('tr[data-worker="e2e-second"][data-worker-status="drained"]').waitFor();
    const drained = await row('e2e-second').innerText();
    check(drained.includes('Drained') && drained.includes('drain asked: e2e: kernel upgrade') && drained.includes('Already drained.'), `drained: ${drained}`);
    check(await row('e2e-second').getByRole('button', { name: 'Drain e2e-second' }).isDisabled(), 'a drained worker cannot be drained again');
    check((await row(first.node).getAttribute('data-worker-status')) === 'idle', 'this kernel still idle');
    const rows = await audit('worker.drain');
    check(rows.length === 1 && rows[0].reason === 'e2e: kernel upgrade' && rows[0].outcome === 'ok' && rows[0].target.includes('e2e-second'), `audited: ${JSON.stringify(rows)}`);
    await shot(page, 'w2-drained');

    step('a reader sees Drain disabled with why; a role without jobs.read has no menu entry');
    const readerPage = await newPage();
    await signIn(readerPage, reader);
    await menu(readerPage).getByRole('link', { name: 'Workers' }).click();
    await readerPage.locator(`tr[data-worker="${first.node}"]`).waitFor();
    check(await readerPage.getByRole('button', { name: `Drain ${first.node}` }).isDisabled(), 'Drain disabled for the reader');
    await readerPage.locator(`tr[data-worker="${first.node}"]`).getByText('(TenantAdministrator) may not drain workers').waitFor();
    const nobodyPage = await newPage();
    await signIn(nobodyPage, nobody);
    check((await menu(nobodyPage).getByRole('link', { name: 'Workers' }).count()) === 0, 'no Workers entry without jobs.read');
    await nobodyPage.goto(`${page.url()}`);
    await nobodyPage.getByText('may not see the workers').waitFor();

    check(a11y.length === 0, `accessibility: ${a11y.join('; ')}`);
    check(problems.length === 0, `no page errors: ${problems.join(' | ')}`);
    second.kill('SIGTERM');
    await new Promise((r) => (second.exitCode !== null ? r() : second.on('exit', r)));
  },
);
