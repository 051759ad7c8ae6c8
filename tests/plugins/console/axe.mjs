// axe-core (the console's npm development package) in a page of the console:
// the violations of WCAG 2.1 A and AA and of axe's best practices, as lines
// naming the rule, its impact, what to fix and where.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

let source = '';

/**
 * The axe violations on `page` now (an open dialog included), each prefixed
 * with `where`; `web` is the console's web folder (its node_modules has
 * axe-core). Injected through the DevTools protocol, so the page's content
 * security policy stays as served.
 */
export async function axeViolations(page, web, where) {
  if (!source) source = readFileSync(createRequire(resolve(web, 'package.json')).resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(source);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}${n.failureSummary ? ` [${n.failureSummary.replace(/\s+/g, ' ').slice(0, 160)}]` : ''}`),
    }));
  });
  return found.map((v) => `${where}: ${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 4).join(' | ')}${v.nodes.length > 4 ? ` (+${v.nodes.length - 4})` : ''}`);
}
