// Console benchmark: the operator console in headless Chromium (Debian's
// /usr/bin/chromium) against a kernel whose store holds 1,000 scheduled jobs
// and 100,000 runs. Prints min/median/max of 3 for: the cold load of the
// sign-in page (every asset fetched), sign-in to the first page of 50 jobs
// drawn, the drill-in of one job with its two charts drawn, and a reload with
// the assets cached; plus the bytes sent for a cold load, the bytes sent from
// sign-in to the jobs drawn, and the page's JS heap (after a collection).
//
//   node bench/console_load.mjs [BUILD_DIR ...]
//
// With several build directories (each with kernel/opskernel, plugins/ and
// bench/opk_seed_store; e.g. an older build's console plugin beside this
// build's), each runs its own kernel on a copy of one seeded store and the
// rounds alternate between them, so their figures are taken in the same minutes.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const builds = (process.argv.length > 2 ? process.argv.slice(2) : [join(root, 'build')]).map((b) => resolve(b));
const { chromium } = createRequire(join(root, 'plugins/console/web/package.json'))('playwright-core');

const dir = mkdtempSync(join(tmpdir(), 'opk-console-bench-'));
const seed = spawnSync(join(builds[0], 'bench/opk_seed_store'), [join(dir, 'seeded.db'), '1000', '100000'], { encoding: 'utf8' });
if (seed.status !== 0) throw new Error(`seeding failed: ${seed.stderr}`);
process.stdout.write(seed.stdout);
const token = `opk_bench_${randomBytes(24).toString('hex')}`;
writeFileSync(join(dir, 'admin.token'), `${token}\n`);
const freePort = () =>
  new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => ok(p));
    });
  });

/** A kernel of `build` on its own copy of the seeded store; resolves once it is ready. */
async function startKernel(build, i) {
  const data = join(dir, `kernel-${i}`);
  mkdirSync(data);
  copyFileSync(join(dir, 'seeded.db'), join(data, 'opskernel.db'));
  const port = await freePort();
  writeFileSync(
    join(data, 'bench.conf'),
    `[kernel]\ndata_dir = ${data}\nplugins_dir = ${join(build, 'plugins')}\nlisten = 127.0.0.1:${port}\n[log]\nlevel = warn\n` +
      `[identity]\nbootstrap_token_file = ${join(dir, 'admin.token')}\n[plugin.admin-http]\nrate_per_user = 0\nrate_per_address = 0\n`,
  );
  const process_ = spawn(join(build, 'kernel/opskernel'), ['-c', join(data, 'bench.conf'), 'run'], { stdio: 'inherit' });
  const base = `http://127.0.0.1:${port}`;
  for (let n = 0; n < 200; n++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { build, base, process: process_ };
}
const kernels = [];
for (const [i, b] of builds.entries()) kernels.push(await startKernel(b, i));

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const figures = kernels.map(() => ({ cold: [], bytes: [], signIn: [], signInBytes: [], drill: [], warm: [], heap: [] }));

/** One round against one kernel: a fresh browser context, so nothing is cached at first. */
async function round({ base }, f) {
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
  f.cold.push(await mark('form'));
  // Whatever the page still fetches on its own once the form is drawn counts too.
  await page.waitForLoadState('networkidle');
  f.bytes.push(bytes);
  await page.getByLabel('API token').fill(token);
  const before = bytes;
  const t0 = await page.evaluate(() => performance.now());
  await page.keyboard.press('Enter');
  f.signIn.push((await mark('rows')) - t0);
  f.signInBytes.push(bytes - before);
  const t1 = await page.evaluate(() => performance.now());
  await page.locator('table.jobs tbody a').first().click();
  f.drill.push((await mark('charts')) - t1);
  await page.goto(`${base}/administration/jobs`);
  f.warm.push(await mark('rows'));
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Performance.enable');
  // What the pages keep, not the garbage a collection has yet to take: the
  // figure otherwise moves by a megabyte with the collector's timing.
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics } = await cdp.send('Performance.getMetrics');
  f.heap.push(metrics.find((m) => m.name === 'JSHeapUsedSize').value / 1048576);
  await ctx.close();
}

try {
  for (let n = 0; n < 3; n++) for (const [i, k] of kernels.entries()) await round(k, figures[i]);
} finally {
  await browser.close();
  for (const k of kernels) {
    k.process.kill('SIGTERM');
    await new Promise((r) => k.process.on('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
}
const mmm = (a, unit, digits = 0) => {
  const s = [...a].sort((x, y) => x - y);
  return `min ${s[0].toFixed(digits)} / median ${s[1].toFixed(digits)} / max ${s[2].toFixed(digits)} ${unit}`;
};
for (const [i, f] of figures.entries()) {
  if (kernels.length > 1) console.log(`\n${kernels[i].build}:`);
  console.log(`cold load of the sign-in page (every asset fetched): ${mmm(f.cold, 'ms')}`);
  console.log(`bytes sent for that load:                           ${mmm(f.bytes.map((b) => b / 1024), 'KiB', 1)}`);
  console.log(`sign-in to 50 of 1,000 jobs drawn:                  ${mmm(f.signIn, 'ms')}`);
  console.log(`bytes sent from sign-in to those jobs drawn:        ${mmm(f.signInBytes.map((b) => b / 1024), 'KiB', 1)}`);
  console.log(`job drill-in with both charts drawn:                ${mmm(f.drill, 'ms')}`);
  console.log(`reload of the jobs page, assets cached:             ${mmm(f.warm, 'ms')}`);
  console.log(`JS heap in use after those pages:                   ${mmm(f.heap, 'MiB', 1)}`);
}
