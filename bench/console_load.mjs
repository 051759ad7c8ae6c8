// Console benchmark: the operator console in headless Chromium (Debian's
// /usr/bin/chromium) against a kernel whose store holds 1,000 scheduled jobs
// and 100,000 runs. Prints min/median/max of 3 for: the cold load of the
// sign-in page (every asset fetched), sign-in to the first page of 50 jobs
// drawn, the drill-in of one job with its two charts drawn, and a reload with
// the assets cached; plus the bytes sent for a cold load and the page's JS heap.
//
//   node bench/console_load.mjs [BUILD_DIR]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const build = resolve(process.argv[2] || join(root, 'build'));
const { chromium } = createRequire(join(root, 'plugins/console/web/package.json'))('playwright-core');

const dir = mkdtempSync(join(tmpdir(), 'opk-console-bench-'));
const seed = spawnSync(join(build, 'bench/opk_seed_store'), [join(dir, 'opskernel.db'), '1000', '100000'], { encoding: 'utf8' });
if (seed.status !== 0) throw new Error(`seeding failed: ${seed.stderr}`);
process.stdout.write(seed.stdout);
const token = `opk_bench_${randomBytes(24).toString('hex')}`;
writeFileSync(join(dir, 'admin.token'), `${token}\n`);
const port = await new Promise((ok) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => ok(p));
  });
});
writeFileSync(
  join(dir, 'bench.conf'),
  `[kernel]\ndata_dir = ${dir}\nplugins_dir = ${join(build, 'plugins')}\nlisten = 127.0.0.1:${port}\n[log]\nlevel = warn\n` +
    `[identity]\nbootstrap_token_file = ${join(dir, 'admin.token')}\n[plugin.admin-http]\nrate_per_user = 0\nrate_per_address = 0\n`,
);
const kernel = spawn(join(build, 'kernel/opskernel'), ['-c', join(dir, 'bench.conf'), 'run'], { stdio: 'inherit' });
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 200; i++) {
  try {
    if ((await fetch(`${base}/readyz`)).ok) break;
  } catch { /* starting */ }
  await new Promise((r) => setTimeout(r, 50));
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const figures = { cold: [], signIn: [], drill: [], warm: [], bytes: [], heap: [] };
try {
  for (let round = 0; round < 3; round++) {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    const page = await ctx.newPage();
    let bytes = 0;
    page.on('response', async (r) => {
      try {
        bytes += Number(r.headers()['content-length'] || (await r.body()).length);
      } catch { /* streamed */ }
    });
    // Times are taken inside the page by a MutationObserver installed before
    // the page's scripts (performance.now(): navigation start = 0), so the
    // harness's own round trips do not count.
    await page.addInitScript(() => {
      window.__marks = {};
      new MutationObserver(() => {
        const m = window.__marks;
        if (!m.form && document.getElementById('token')) m.form = performance.now();
        if (!m.rows && document.querySelectorAll('table.jobs tbody tr').length === 50) m.rows = performance.now();
        if (!m.charts && document.querySelectorAll('.chart canvas').length === 2) m.charts = performance.now();
      }).observe(document, { childList: true, subtree: true });
    });
    const mark = async (name) =>
      (await page.waitForFunction((n) => window.__marks[n], name, { polling: 10 })).jsonValue();
    await page.goto(`${base}/administration/jobs`);
    figures.cold.push(await mark('form'));
    figures.bytes.push(bytes);
    await page.getByLabel('API token').fill(token);
    const t0 = await page.evaluate(() => performance.now());
    await page.keyboard.press('Enter');
    figures.signIn.push((await mark('rows')) - t0);
    const t1 = await page.evaluate(() => performance.now());
    await page.locator('table.jobs tbody a').first().click();
    figures.drill.push((await mark('charts')) - t1);
    await page.goto(`${base}/administration/jobs`);
    figures.warm.push(await mark('rows'));
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Performance.enable');
    const { metrics } = await cdp.send('Performance.getMetrics');
    figures.heap.push(metrics.find((m) => m.name === 'JSHeapUsedSize').value / 1048576);
    await ctx.close();
  }
} finally {
  await browser.close();
  kernel.kill('SIGTERM');
  await new Promise((r) => kernel.on('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
const mmm = (a, unit, digits = 0) => {
  const s = [...a].sort((x, y) => x - y);
  return `min ${s[0].toFixed(digits)} / median ${s[1].toFixed(digits)} / max ${s[2].toFixed(digits)} ${unit}`;
};
console.log(`cold load of the sign-in page (every asset fetched): ${mmm(figures.cold, 'ms')}`);
console.log(`bytes sent for that load:                           ${mmm(figures.bytes.map((b) => b / 1024), 'KiB', 1)}`);
console.log(`sign-in to 50 of 1,000 jobs drawn:                  ${mmm(figures.signIn, 'ms')}`);
console.log(`job drill-in with both charts drawn:                ${mmm(figures.drill, 'ms')}`);
console.log(`reload of the jobs page, assets cached:             ${mmm(figures.warm, 'ms')}`);
console.log(`JS heap in use after those pages:                   ${mmm(figures.heap, 'MiB', 1)}`);
