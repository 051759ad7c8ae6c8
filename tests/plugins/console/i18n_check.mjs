// The console's two languages, checked in its sources (no browser): every
// English text a page passes to t(), tp() or msg() has its Swedish in
// src/i18n/sv.js, every Swedish text there is still used, a text with a
// count has both Swedish forms, both keep the same {placeholders}, and the
// three functions get string literals only (else this check could not see
// the text). Also fails on text written straight into the markup of every
// src/*.jsx, or into a label-like attribute there, or as a table's column
// head, or a list of the console's own ids shown as the choices of a filter
// or a select (ids, not words), without t(), but for the
// files given with --untranslated (pages not translated yet, named in the
// output), so a new page is checked without being listed. A file listed
// there that passes fails the check too: take it off the list.
//
//   node i18n_check.mjs --web DIR [--untranslated a.jsx,b.jsx]
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const web = resolve(args[args.indexOf('--web') + 1]);
const src = join(web, 'src');
const sv = (await import(pathToFileURL(join(src, 'i18n/sv.js')).href)).default;

const problems = [];
const used = new Map(); // English text -> 'file:line' of its first use
const plural = new Set();
const literal = String.raw`'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"`;
const text = (lit) => Function(`"use strict"; return (${lit});`)();
const lineOf = (s, i) => s.slice(0, i).split('\n').length;

const files = readdirSync(src).filter((f) => /\.(js|jsx)$/.test(f) && f !== 'i18n.js');
for (const f of files) {
  const s = readFileSync(join(src, f), 'utf8');
  for (const m of s.matchAll(/(?<![\w$.])(t|msg|tp)\(/g)) {
    const at = `${f}:${lineOf(s, m.index)}`;
    const rest = s.slice(m.index + m[0].length);
    if (m[1] === 'tp') {
      const a = new RegExp(String.raw`^\s*[^,]+,\s*(${literal})\s*,\s*(${literal})`).exec(rest);
      if (!a) {
        problems.push(`${at}: tp() without two string literals`);
        continue;
      }
      if (!used.has(text(a[2]))) used.set(text(a[2]), at);
      plural.add(text(a[2]));
      continue;
    }
    const a = new RegExp(String.raw`^\s*(${literal})\s*[,)]`).exec(rest);
    if (!a) {
      problems.push(`${at}: ${m[1]}() without a string literal`);
      continue;
    }
    if (!used.has(text(a[1]))) used.set(text(a[1]), at);
  }
}

const holes = (x) => [...String(x).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
for (const [en, at] of used) {
  if (!(en in sv)) {
    problems.push(`${at}: no Swedish for '${en}'`);
    continue;
  }
  const s = sv[en];
  if (plural.has(en)) {
    if (!s || typeof s !== 'object' || !s.one || !s.other) problems.push(`${at}: '${en}' has a count: its Swedish needs {one, other}`);
    continue;
  }
  if (typeof s !== 'string' || !s.trim()) problems.push(`${at}: the Swedish of '${en}' is empty`);
  else if (holes(s) !== holes(en)) problems.push(`${at}: '${en}' and its Swedish '${s}' fill different {placeholders}`);
}
for (const en of Object.keys(sv)) if (!used.has(en)) problems.push(`i18n/sv.js: '${en}' is used by no page`);

// Text written into markup without t(): a JSX text node with a word in it, or
// a label-like attribute given a literal.
const UNTRANSLATED = new Set(
  (args.includes('--untranslated') ? args[args.indexOf('--untranslated') + 1] : '').split(',').filter(Boolean),
);
for (const f of UNTRANSLATED) if (!files.includes(f)) problems.push(`--untranslated: no file ${f}`);
const blank = (x) => x.replace(/[^\n]/g, ' ');
const KEPT = new Set(['Opskernel', 'UTC']); // names, the same in every language
// The problems of file `f`'s markup.
const markupProblems = (f) => {
  const found = [];
  const raw = readFileSync(join(src, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, blank).replace(/^\s*\/\/.*$/gm, blank);
  // The texts given to t(), tp() and msg() are not markup.
  const s = raw.replace(/(?<![\w$.])(t|tp|msg)\(([^()]|\([^()]*\))*\)/g, blank);
  for (const m of s.matchAll(/[>}]([^<>{}]*[A-Za-z]{2}[^<>{}]*)[<{]/g)) {
    // Code between two JSX elements or expressions is not text; nor is what <code> holds.
    if (/[;:?]|=\s*$|\$\s*$|`|===|\b(return|else|if|const|let|function|export|import|case|try|catch|finally)\b|=>|&&|\|\||\(\s*$|^\s*\)|['"`]\s*[,)]|^\s*,|,\s*$|^\)|\.\w+\(/.test(m[1]) || s.slice(m.index - 5, m.index + 1) === '<code>') continue;
    if (KEPT.has(m[1].trim())) continue;
    found.push(`${f}:${lineOf(s, m.index)}: text without t(): '${m[1].trim()}'`);
  }
  for (const m of raw.matchAll(/\b(aria-label|title|placeholder|label|alt)="([^"]*[A-Za-z][^"]*)"/g))
    found.push(`${f}:${lineOf(s, m.index)}: ${m[1]} without t(): '${m[2]}'`);
  // A text child closed by its element's end tag is text, whatever it holds
  // (the test above leaves out texts with code-like characters: ';', ':', '?').
  for (const m of s.matchAll(/(?<![=\-\s])>([^<>{}]*[A-Za-z]{2}[^<>{}]*)<\//g)) {
    if (KEPT.has(m[1].trim()) || s.slice(m.index - 5, m.index + 1) === '<code>') continue;
    const at = `${f}:${lineOf(s, m.index)}: text without t(): '${m[1].trim()}'`;
    if (!found.includes(at)) found.push(at);
  }
  // A table's column heads given as literals (Table writes each string as a <th>).
  for (const m of s.matchAll(/\bcolumns=\{\[([^\]]*)\]/g))
    for (const h of m[1].matchAll(new RegExp(String.raw`(?:^|,)\s*(${literal})\s*(?=,|$)`, 'g')))
      if (/[A-Za-z]/.test(text(h[1]))) found.push(`${f}:${lineOf(s, m.index)}: column head without t(): ${h[1]}`);
  // A sentence built in a template literal (`${id} created.`) instead of t()'s {placeholders}.
  for (const m of s.matchAll(/(?<=[(,=]\s*)`((?:[^`$\\]|\\.|\$(?!\{)|\$\{[^{}`]*\})*)`(?=\s*[),;])/g)) {
    const words = m[1].replace(/\$\{[^}]*\}/g, ' ');
    if (/[A-Za-z]{3,}[^`]*[.!]\s*$/.test(words) && !/^[/.]/.test(m[1]))
      found.push(`${f}:${lineOf(s, m.index)}: a sentence without t(): \`${m[1]}\``);
  }
  // A choice list shown by its ids: a ChoiceFilter of one of the console's own
  // lists (an UPPER_CASE constant) with no labelOf, or an <option> whose label
  // is the very id it sends, from such a list.
  for (const m of s.matchAll(/<ChoiceFilter\b(?:(?!\/>)[\s\S])*?choices=\{([A-Z][A-Z_]+)\b[\s\S]*?\/>/g))
    if (!/\blabelOf=/.test(m[0])) found.push(`${f}:${lineOf(s, m.index)}: the choices of ${m[1]} shown by their ids: give labelOf`);
  for (const m of s.matchAll(/\b([A-Z][A-Z_]+)\.map\(\(?(\w+)\)?\s*=>\s*\(?\s*<option value=\{\2\}>\{\2\}<\/option>/g))
    found.push(`${f}:${lineOf(s, m.index)}: the options of ${m[1]} shown by their ids`);
  return found;
};
for (const f of files.filter((f) => f.endsWith('.jsx'))) {
  const found = markupProblems(f);
  if (!UNTRANSLATED.has(f)) problems.push(...found);
  else if (!found.length) problems.push(`--untranslated: ${f} writes no text without t(): take it off the list`);
}

console.log(`${used.size} texts in ${files.length} files, ${Object.keys(sv).length} in Swedish`);
if (UNTRANSLATED.size) console.log(`not translated yet (text without t() allowed): ${[...UNTRANSLATED].join(', ')}`);
if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`${problems.length} problems`);
  process.exit(1);
}
console.log('every text has its Swedish');
