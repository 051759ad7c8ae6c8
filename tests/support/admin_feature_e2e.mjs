// admin_feature_e2e.mjs -- the set-up the admin-feature pages' end-to-end
// tests share (tests/plugins/console/*_e2e.mjs of feature-flags,
// rate-limit-overrides, maintenance-mode, ...), on the console tests'
// helpers (tests/plugins/console/e2e.mjs): the command line's folders, a
// kernel with admin-http, console and the feature's plugins and a
// [permissions] section, Chromium launched once the kernel is ready, and
// the end: the browser closed, the kernel stopped, its folder removed, the
// process's exit status. A test is its body:
//
//   await featurePageTest(
//     { title: 'console feature flags e2e', name: 'flags', plugins: ['feature-flags.so'],
//       permissions: 'platform_administrator = *\ntenant_user = jobs.read\n' },
//     async ({ api, cli, newPage, signIn, adminToken, check }) => { ... },
//   );
//
//   node <test>.mjs --kernel BIN --plugins DIR --web DIR --out DIR
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as e2e from '../plugins/console/e2e.mjs';

/**
 * Runs `body` against a kernel over admin-http, console and `plugins` (file
 * names in --plugins) with `permissions` (the lines of its [permissions]
 * section), the kernel ready and Chromium launched. `body` gets {OUT, base,
 * adminToken, cli, call, api, problems, browser, newPage, shot, signIn, menu,
 * audit, user}: the screenshots' folder; the kernel's address, the
 * administrator's token and startKernel's calls; the page problems (page and
 * console errors) and the browser; a new page, a screenshot, signing in
 * with a token, a page's Console menu; the audit rows of an action through
 * the API; and a user added through the CLI (its token). On success it
 * prints that all checks of `title` passed; a failure is reported with the
 * pages' problems and screenshots. Exits the process: 0 when `body` ended,
 * 1 when it threw.
 */
export async function featurePageTest({ title, name, plugins, permissions }, body) {
  const [KERNEL, PLUGINS, WEB, OUT] = e2e.folders(process.argv.slice(2), ['kernel', 'plugins', 'web', 'out']);
  const chromium = e2e.chromiumOf(WEB);
  const dir = mkdtempSync(join(tmpdir(), `opk-console-${name}-e2e-`));
  mkdirSync(OUT, { recursive: true });
  const { base, adminToken, conf } = await e2e.kernelFolder(
    dir,
    ['admin-http.so', 'console.so', ...plugins].map((f) => join(PLUGINS, f)),
    `[permissions]\n${permissions}`,
  );
  const kernel = e2e.startKernel(KERNEL, conf, base, adminToken);
  const t = {
    OUT,
    base,
    adminToken,
    ...kernel,
    problems: [],
    browser: null,
    newPage: () => e2e.newPage(t.browser, t.problems),
    shot: (page, shotName) => e2e.shot(OUT, page, shotName),
    signIn: (page, token) => e2e.signIn(page, base, token),
    menu: (page) => page.getByRole('navigation', { name: 'Console' }),
    audit: async (action) => (await kernel.api('GET', `/api/v1/audit?action=${action}&limit=100`)).items,
    user: (user, role, scope) => kernel.cli('users', 'add', user, '--role', role, '--scope', scope).split('\n').pop(),
  };
  let failed = false;
  try {
    await kernel.waitReady();
    t.browser = await e2e.launch(chromium);
    await body(t);
    console.log(`${title}: all checks passed; screenshots in ${OUT}`);
  } catch (e) {
    failed = true;
    await e2e.reportFailure(title, e, t.problems, t.browser, OUT);
  } finally {
    if (t.browser) await t.browser.close().catch(() => {});
    await kernel.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
