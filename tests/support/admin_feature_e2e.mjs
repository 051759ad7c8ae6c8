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
//   node <test>.mjs --kernel BIN --plugins DIR [--fixtures DIR] --web DIR --out DIR
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as e2e from '../plugins/console/e2e.mjs';

/**
 * Runs `body` against a kernel over admin-http, console and `plugins` (file
 * names in --plugins) and `fixtures` (file names in --fixtures, which is then
 * required) with `permissions` (the lines of its [permissions] section) and
 * `more` (further sections), the kernel ready and Chromium launched. `body` gets {OUT, base,
 * adminToken, cli, call, api, problems, browser, newPage, shot, signIn, menu,
 * audit, user, hierarchy}: the screenshots' folder; the kernel's address, the
 * administrator's token and startKernel's calls; the page problems (page and
 * console errors) and the browser; a new page, a screenshot, signing in
 * with a token, a page's Console menu; the audit rows of an action through
 * the API; a user added through the CLI (its token); and the hierarchy the
 * tests share, distributor:d1 > partner:p1 > tenant:acme, added through the
 * CLI. On success it
 * prints that all checks of `title` passed; a failure is reported with the
 * pages' problems and screenshots. Exits the process: 0 when `body` ended,
 * 1 when it threw.
 */
export async function featurePageTest({ title, name, plugins, fixtures = [], permissions, more = '' }, body) {
  const args = process.argv.slice(2);
  const [KERNEL, PLUGINS, WEB, OUT] = e2e.folders(args, ['kernel', 'plugins', 'web', 'out']);
  const [FIXTURES] = fixtures.length > 0 ? e2e.folders(args, ['fixtures']) : [''];
  const chromium = e2e.chromiumOf(WEB);
  const dir = mkdtempSync(join(tmpdir(), `opk-console-${name}-e2e-`));
  mkdirSync(OUT, { recursive: true });
  const { base, adminToken, conf } = await e2e.kernelFolder(
    dir,
    [
      ...['admin-http.so', 'console.so', ...plugins].map((f) => join(PLUGINS, f)),
      ...fixtures.map((f) => join(FIXTURES, f)),
    ],
    `[permissions]\n${permissions}${more}`,
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
    hierarchy: () => {
      kernel.cli('tenants', 'add', 'distributor:d1', '--parent', 'platform');
      kernel.cli('tenants', 'add', 'partner:p1', '--parent', 'distributor:d1');
      kernel.cli('tenants', 'add', 'tenant:acme', '--parent', 'partner:p1');
    },
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
