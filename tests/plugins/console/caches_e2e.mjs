// The console's Caches page end to end: the real kernel with admin-http,
// console, cache-purge and the fixture cache_consumer (a plugin using the
// kernel cache), a real redis-server this test starts on 127.0.0.1 with its
// own port and folder, driven in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core) at 1366x768.
//
// A platform administrator sees the kernel cache's counters for the
// plugin as its calls made them and the Redis server; counts a pattern's
// keys with a dry run (nothing removed), purges them with a reason, and
// purges every key only once the match-all pattern is confirmed; purges
// the plugin's kernel cache entries; the audit trail has each. A role
// granted cache.read sees the page without a purge button; a role without
// it has no menu entry. The purge dialog fits a phone (390x844).
// Screenshots go to --out.
//
//   node caches_e2e.mjs --kernel BIN --plugins DIR --fixtures DIR --web DIR --out DIR
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as e2e from './e2e.mjs';
import { check, chromiumOf, folders, freePort, kernelFolder, launch, sleep, startKernel, step } from './e2e.mjs';

const args = process.argv.slice(2);
const [KERNEL, PLUGINS, FIXTURES, WEB, OUT] = folders(args, ['kernel', 'plugins', 'fixtures', 'web', 'out']);
const chromium = chromiumOf(WEB);

const dir = mkdtempSync(join(tmpdir(), 'opk-console-caches-e2e-'));
mkdirSync(OUT, { recursive: true });
const redisPort = await freePort();
mkdirSync(join(dir, 'redis'));
const redis = spawn('redis-server', ['--port', `${redisPort}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', join(dir, 'redis')], {
  stdio: 'ignore',
});
const rcli = (...a) => {
  const r = spawnSync('redis-cli', ['-p', `${redisPort}`, ...a], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-cli ${a.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};
// The tenant administrator may read the caches; the tenant user may not.
const { base, adminToken, conf } = await kernelFolder(
  dir,
  [...['admin-http.so', 'console.so', 'cache-purge.so'].map((f) => join(PLUGINS, f)), join(FIXTURES, 'cache_consumer.so')],
  `[permissions]
platform_administrator = *
tenant_administrator = jobs.read, cache.read
tenant_user = jobs.read
[plugin.cache-purge]
servers = sessions
sessions_port = ${redisPort}
keys_per_second = 1000
batch = 200
`,
);
const { cli, api, call, waitReady, stop } = startKernel(KERNEL, conf, base, adminToken);

let browser;
const problems = [];
const newPage = () => e2e.newPage(browser, problems);
const shot = (page, name) => e2e.shot(OUT, page, name);
const signIn = (page, token) => e2e.signIn(page, base, token);
const menu = (page) => page.getByRole('navigation', { name: 'Console' });
const plugin = (page) => page.locator('tr[data-cache-plugin="cache-consumer"]');
const audit = async (action) => (await api('GET', `/api/v1/audit?action=${action}&limit=100`)).items;

let failed = false;
try {
  // redis-server may not listen yet: a refused PING is retried, not an error.
  const pong = () => spawnSync('redis-cli', ['-p', `${redisPort}`, 'PING'], { encoding: 'utf8' }).stdout?.trim() === 'PONG';
  for (let i = 0; i < 100 && !pong(); i++) await sleep(50);
  if (!pong()) throw new Error(`redis-server did not answer PING on port ${redisPort} within 5 s`);
  rcli('MSET', 'session:1', 'a', 'session:2', 'b', 'session:3', 'c', 'user:1', 'x');
  await waitReady();
  cli('tenants', 'add', 'distributor:d1', '--parent', 'platform');
  cli('tenants', 'add', 'partner:p1', '--parent', 'distributor:d1');
  cli('tenants', 'add', 'tenant:acme', '--parent', 'partner:p1');
  const reader = cli('users', 'add', 'tara', '--role', 'TenantAdministrator', '--scope', 'tenant:acme').split('\n').pop();
  const nobody = cli('users', 'add', 'uno', '--role', 'TenantUser', '--scope', 'tenant:acme').split('\n').pop();
  for (const k of ['k1', 'k2', 'k3']) await api('PUT', `/api/v1/cache-consumer/${k}`, 'v');
  check((await call('GET', '/api/v1/cache-consumer/k1')).status === 200, 'a hit');
  check((await call('GET', '/api/v1/cache-consumer/none')).status === 404, 'a miss');
  browser = await launch(chromium);
  const a11y = [];
  const page = await newPage();
  await signIn(page, adminToken);

  step("the menu has Caches; the kernel cache's counters and the Redis server");
  await menu(page).getByRole('link', { name: 'Caches' }).click();
  await page.waitForURL(/\/administration\/caches$/);
  await plugin(page).waitFor();
  check((await plugin(page).getByTestId('entries').innerText()) === '3', 'three entries');
  check((await plugin(page).getByTestId('hits').innerText()) === '1' && (await plugin(page).getByTestId('misses').innerText()) === '1', 'a hit and a miss');
  await page.locator('tr[data-redis-server="sessions"]').waitFor();
  a11y.push(...(await e2e.accessibilityProblems(page, 'the caches page', 'main .table-wrap')));
  await shot(page, 'c1-caches');

  step('count a pattern with a dry run, then purge it with a reason');
  await page.getByRole('button', { name: 'Purge keys of Redis server sessions' }).click();
  let dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Key or glob pattern/).fill('session:*');
  check(await dlg.getByRole('button', { name: 'Purge', exact: true }).isDisabled(), 'no reason, no purge');
  await dlg.getByLabel(/^Reason/).fill('stale sessions after the release');
  await dlg.getByRole('button', { name: 'Count (dry run)' }).click();
  await dlg.getByTestId('counted').filter({ hasText: '3 match now' }).waitFor();
  check(rcli('DBSIZE') === '4', 'the dry run removed nothing');
  a11y.push(...(await e2e.accessibilityProblems(page, 'the purge dialog', 'main .table-wrap')));
  a11y.push(...(await e2e.phoneFitProblems(page, 'the purge dialog, counted', dlg)));
  await dlg.getByRole('button', { name: 'Purge', exact: true }).click();
  await page.getByRole('status').filter({ hasText: '3 keys matching session:* removed from Redis server sessions.' }).waitFor();
  check(rcli('DBSIZE') === '1', 'the sessions are gone, user:1 is not');
  const counted = await audit('cache.count');
  const purged = await audit('cache.purge');
  check(counted.length === 1 && purged.length === 1 && purged[0].reason === 'stale sessions after the release', `audited: ${JSON.stringify(purged)}`);
  await shot(page, 'c2-purged');

  step('every key only once confirmed');
  await page.getByRole('button', { name: 'Purge keys of Redis server sessions' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Key or glob pattern/).fill('*');
  await dlg.getByLabel(/^Reason/).fill('flush the test server');
  check(await dlg.getByRole('button', { name: 'Purge', exact: true }).isDisabled(), 'not without the confirmation');
  await dlg.getByLabel(/matches every key/).check();
  await dlg.getByRole('button', { name: 'Purge', exact: true }).click();
  await page.getByRole('status').filter({ hasText: '1 keys matching * removed' }).waitFor();
  check(rcli('DBSIZE') === '0', 'every key gone');

  step("purge the plugin's kernel cache entries");
  await page.getByRole('button', { name: 'Purge kernel cache entries of cache-consumer' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Key or glob pattern/).fill('k*');
  await dlg.getByLabel(/^Reason/).fill('drop the test entries');
  await dlg.getByRole('button', { name: 'Purge', exact: true }).click();
  await page.getByRole('status').filter({ hasText: "3 entries matching k* removed from cache-consumer's kernel cache entries." }).waitFor();
  await plugin(page).getByTestId('entries').filter({ hasText: /^0$/ }).waitFor();
  await shot(page, 'c3-kernel-purged');

  step('a large purge is offered as a run: its progress in the run, cancelled between batches');
  rcli('EVAL', "for i = 1, 12000 do redis.call('SET', 'bulk:' .. i, 'x') end", '0');
  check(rcli('DBSIZE') === '12000', 'twelve thousand keys');
  await page.getByRole('button', { name: 'Purge keys of Redis server sessions' }).click();
  dlg = page.getByRole('dialog');
  await dlg.getByLabel(/^Key or glob pattern/).fill('bulk:*');
  await dlg.getByLabel(/^Reason/).fill('drop the bulk keys');
  await dlg.getByRole('button', { name: 'Count (dry run)' }).click();
  await dlg.getByTestId('counted').filter({ hasText: '12,000 match now' }).waitFor();
  await dlg.getByTestId('large').filter({ hasText: 'about 12 s' }).waitFor();
  a11y.push(...(await e2e.accessibilityProblems(page, 'the large purge', 'main .table-wrap')));
  await dlg.getByRole('button', { name: 'Purge as a run' }).click();
  await dlg.getByTestId('run-started').waitFor();
  const runId = Number((await dlg.getByTestId('run-started').innerText()).match(/#(\d+)/)[1]);
  let seen = null;
  for (let i = 0; i < 200; i++) {
    seen = (await api('GET', `/api/v1/runs/${runId}`)).run || (await api('GET', `/api/v1/runs/${runId}`));
    if (seen.progress > 0) break;
    await sleep(50);
  }
  check(seen.job_type === 'cache-purge' && seen.progress > 0 && seen.progress < 100, `the run shows its progress: ${JSON.stringify(seen)}`);
  await api('POST', `/api/v1/runs/${runId}/cancel`, { reason: 'enough for now' });
  for (let i = 0; i < 200; i++) {
    seen = (await api('GET', `/api/v1/runs/${runId}`)).run || (await api('GET', `/api/v1/runs/${runId}`));
    if (seen.phase === 'COMPLETED' || seen.finished_ms > 0) break;
    await sleep(50);
  }
  const left = Number(rcli('DBSIZE'));
  check(left > 0 && left < 12000, `cancelled between batches: ${left} keys left, ${JSON.stringify(seen)}`);
  await shot(page, 'c4-run');
  await dlg.getByRole('button', { name: 'Cancel' }).click();

  step('a reader sees the caches without a purge button; a role without the permission has no entry');
  const tara = await newPage();
  await signIn(tara, reader);
  await menu(tara).getByRole('link', { name: 'Caches' }).click();
  await plugin(tara).waitFor();
  check((await tara.getByRole('button', { name: /^Purge/ }).count()) === 0, 'the reader has no purge button');
  const uno = await newPage();
  await signIn(uno, nobody);
  await menu(uno).getByRole('link').first().waitFor();
  const entries = await menu(uno).getByRole('link').allInnerTexts();
  check(!entries.some((e) => e.startsWith('Caches')), `no Caches entry: ${entries}`);
  await uno.goto(`${base}/administration/caches`);
  await uno.getByText('may not see the caches', { exact: false }).waitFor();

  check(a11y.length === 0, `every control is labelled and nothing scrolls sideways: ${a11y.join('; ')}`);
  check(problems.length === 0, `no page errors: ${problems.join(' | ')}`);
  console.log(`console caches e2e: all checks passed; screenshots in ${OUT}`);
} catch (e) {
  failed = true;
  await e2e.reportFailure('console caches e2e', e, problems, browser, OUT);
} finally {
  if (browser) await browser.close().catch(() => {});
  await stop();
  redis.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
