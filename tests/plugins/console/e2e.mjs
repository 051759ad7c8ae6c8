// What the console's end-to-end tests share: their command-line options, the
// real kernel they start (its CLI, its API and waiting until it is ready),
// headless Chromium (Debian's /usr/bin/chromium through playwright-core) and
// its pages at 1366x768 with their errors collected, screenshots, signing
// in and the accessibility checks.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export const step = (what) => console.log(`-- ${what}`);
export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The folders given as --name DIR for each of `names`, resolved (a missing one throws). */
export function folders(args, names) {
  return names.map((n) => {
    const i = args.indexOf(`--${n}`);
    if (i < 0) throw new Error(`missing --${n}`);
    return resolve(args[i + 1]);
  });
}

const CHROMIUM = '/usr/bin/chromium';

/** playwright-core's chromium from the console's npm packages in `web`; exits when Chromium is missing. */
export function chromiumOf(web) {
  if (!existsSync(CHROMIUM)) {
    console.error(`${CHROMIUM} is missing: install Debian's chromium (dist/setup.sh test does)`);
    process.exit(1);
  }
  return createRequire(resolve(web, 'package.json'))('playwright-core').chromium;
}

/** Launches headless Chromium without what would reach out or need a sandbox. */
export function launch(chromium) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** A TCP port free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * Prepares a kernel in the folder `dir`: `plugins` (paths of .so files)
 * linked into dir/plugins, a free port, a bootstrap administrator token and
 * dir/opskernel.conf with the kernel, log and identity sections and then
 * `more` (further sections). Returns {base, adminToken, conf}.
 */
export async function kernelFolder(dir, plugins, more) {
  const pluginDir = join(dir, 'plugins');
  mkdirSync(pluginDir);
  for (const f of plugins) symlinkSync(f, join(pluginDir, basename(f)));
  const port = await freePort();
  const adminToken = `opk_e2e_${randomBytes(24).toString('hex')}`;
  writeFileSync(join(dir, 'admin.token'), `${adminToken}\n`);
  const conf = join(dir, 'opskernel.conf');
  writeFileSync(
    conf,
    `[kernel]
data_dir = ${join(dir, 'data')}
plugins_dir = ${pluginDir}
listen = 127.0.0.1:${port}
[log]
level = warn
[identity]
bootstrap_token_file = ${join(dir, 'admin.token')}
${more}`,
  );
  return { base: `http://127.0.0.1:${port}`, adminToken, conf };
}

/**
 * Runs the kernel `bin` with the configuration file `conf`, serving at
 * `base`. Returns {kernel, cli, call, api, waitReady, stop}: the child
 * process; the CLI on the same configuration (its output, trimmed; a failure
 * throws); a request as `token` (the administrator's by default) answering
 * {status, json}; the same throwing on a status of 300 or more and answering
 * the JSON; waiting up to 10 s for /readyz; and stopping the kernel (SIGTERM,
 * resolved once it has exited).
 */
export function startKernel(bin, conf, base, adminToken) {
  const kernel = spawn(bin, ['--config', conf, 'run'], { stdio: ['ignore', 'inherit', 'inherit'] });
  let exited = null;
  kernel.on('exit', (code, sig) => (exited = `${code ?? sig}`));
  const cli = (...a) => {
    const r = spawnSync(bin, ['--config', conf, ...a], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`opskernel ${a.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  async function call(method, path, body, token = adminToken) {
    const res = await fetch(base + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, json: res.status === 204 ? {} : await res.json() };
  }
  async function api(method, path, body, token = adminToken) {
    const r = await call(method, path, body, token);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.json.detail}`);
    return r.json;
  }
  async function waitReady() {
    for (let i = 0; i < 200; i++) {
      if (exited !== null) throw new Error(`the kernel exited (${exited})`);
      try {
        if ((await fetch(`${base}/readyz`)).ok) return;
      } catch { /* not listening yet */ }
      await sleep(50);
    }
    throw new Error('the kernel did not get ready in 10 s');
  }
  const stop = () => {
    kernel.kill('SIGTERM');
    return new Promise((r) => (exited !== null ? r() : kernel.on('exit', r)));
  };
  return { kernel, cli, call, api, waitReady, stop };
}

/**
 * A new page at 1366x768 in its own context of `browser`, its page errors
 * and console errors pushed to `problems`. A resource error for a 4xx answer
 * is the page showing a refusal, so expected.
 */
export async function newPage(browser, problems) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return page;
}

/** Saves a full-page screenshot of `page` as OUT/name.png. */
export const shot = (out, page, name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });

/** Signs in at `base` with `token`, by keyboard only. */
export async function signIn(page, base, token) {
  await page.goto(`${base}/administration/jobs`);
  await page.getByLabel('API token').fill(token);
  await page.keyboard.press('Enter');
  await page.locator('header.top .who').waitFor();
}

/**
 * Form controls without a label and buttons or links without a name, whether
 * the page scrolls sideways at 1366 px, and tables (`tables` selects them)
 * cut off: what a screen-reader or laptop user would trip over; each
 * prefixed with `where`.
 */
export async function accessibilityProblems(page, where, tables = '.table-wrap') {
  const found = await page.evaluate((tables) => {
    const out = [];
    const named = (el) =>
      (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.title;
    for (const el of document.querySelectorAll('input, select, textarea'))
      if (el.type !== 'hidden' && !named(el)) out.push(`unlabelled ${el.tagName.toLowerCase()}#${el.id || el.name}`);
    for (const el of document.querySelectorAll('button, a[href]'))
      if (!el.textContent.trim() && !el.getAttribute('aria-label')) out.push(`nameless ${el.tagName.toLowerCase()}`);
    if (document.documentElement.scrollWidth > window.innerWidth) out.push(`scrolls sideways (${document.documentElement.scrollWidth} px)`);
    for (const t of document.querySelectorAll(tables))
      if (t.scrollWidth > t.clientWidth + 1) out.push(`a table is cut off (${t.scrollWidth} px in ${t.clientWidth})`);
    return out;
  }, tables);
  return found.map((f) => `${where}: ${f}`);
}

/**
 * Problems of the dialog open on `page` (`dialog`, by default the last one
 * opened) on a phone (390x844 CSS px): it must lie wholly inside the
 * viewport, and nothing in it but a wide table's own box may reach past it
 * (the page behind it is checked for reflow on its own). The page is set to
 * that size and back to the size it had.
 */
export async function phoneFitProblems(page, where, dialog = page.getByRole('dialog').last()) {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    const box = await dialog.boundingBox();
    const out = [];
    if (!box || box.x < 0 || box.y < 0 || box.x + box.width > 390 || box.y + box.height > 844)
      out.push(`${where}: the dialog does not fit 390x844: ${JSON.stringify(box)}`);
    const wide = await dialog.evaluate((d) => {
      const inside = [...d.querySelectorAll('*')].filter((el) => !el.closest('.table-wrap, pre, .log'));
      const right = d.getBoundingClientRect().right;
      return inside
        .filter((el) => el.getBoundingClientRect().right > right + 1)
        .map((el) => `${el.id || el.className || el.tagName} (to ${Math.round(el.getBoundingClientRect().right)} px of ${Math.round(right)})`);
    });
    if (wide.length) out.push(`${where}: wider than the dialog at 390 px: ${wide.slice(0, 5).join(', ')}`);
    return out;
  } finally {
    await page.setViewportSize(size);
  }
}

/**
 * Says that the test `name` failed with `e`, and why pages complained
 * (`problems`), and screenshots every page open in `browser` (if launched)
 * into `out` as failure-N.png, as far as it can.
 */
export async function reportFailure(name, e, problems, browser, out) {
  console.error(`${name} FAILED: ${e.stack || e}`);
  if (problems.length) console.error(`page problems: ${problems.join(' | ')}`);
  try {
    const pages = browser ? browser.contexts().flatMap((c) => c.pages()) : [];
    for (const [i, p] of pages.entries()) await shot(out, p, `failure-${i}`);
  } catch { /* best effort */ }
}
