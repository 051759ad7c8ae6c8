// The console's words in English and Swedish. A page writes every text it
// shows in English through t(text, values), which gives the text in the
// operator's language: i18n/sv.js maps each English text to its Swedish
// (loaded only when Swedish is chosen); English is the fallback. A text may
// hold {name} placeholders filled from `values`. tp(n, one, other, values)
// chooses a text by a count under the language's plural rules (Swedish's
// catalog holds {one, other} under the English `other`). msg(text) marks a
// text kept for later (a label in a table) that tr() translates when shown.
// The texts are found in the sources by tests/plugins/console/i18n_check.mjs,
// which fails on a text without Swedish or a Swedish text no page uses: so
// t(), tp() and msg() take string literals only.
import { prefs } from './prefs.js';

const catalogs = {};
const loaders = { sv: () => import('./i18n/sv.js') };

/** Loads the catalog of `lang` if it is not loaded yet; resolves once it can be used. */
export async function loadLanguage(lang) {
  if (catalogs[lang] || !loaders[lang]) return;
  catalogs[lang] = (await loaders[lang]()).default;
}

/** The locale tag dates and numbers are written in: the browser's own variant of the language if it has one. */
export function locale() {
  const lang = prefs.lang;
  const own = (navigator.languages || []).find((l) => String(l).toLowerCase().split('-')[0] === lang && l.includes('-'));
  return own || { en: 'en-GB', sv: 'sv-SE' }[lang] || lang;
}

/**
 * The placeholders that hold a count or an amount: a number given for one of
 * these is written as the language writes numbers (1,058 or 1 058). Others
 * (an id, a version, a line) are written as they are.
 */
const AMOUNTS = new Set(['n', 'count', 'total', 'from', 'to', 'done', 'open', 'handled', 'suppressed', 'pending', 'failed',
  'unknown', 'current', 'critical', 'escalated', 'threshold', 'rate', 'batch', 'limit', 'left', 'used', 'max', 'min', 'pct',
  'h', 'd', 's']);
let numbers = null;
/** A number as the operator's language writes it (format.js number() without its options). */
const amount = (n) => (numbers?.lang === prefs.lang ? numbers : (numbers = { lang: prefs.lang, f: new Intl.NumberFormat(locale()) })).f.format(n);

const fill = (text, values) =>
  values
    ? text.replace(/\{(\w+)\}/g, (m, k) => {
        const v = values[k];
        if (v === undefined || v === null) return m;
        return typeof v === 'number' && AMOUNTS.has(k) ? amount(v) : String(v);
      })
    : text;

/** `text` (English) in the operator's language, its {placeholders} filled from `values`. */
export function t(text, values) {
  const own = catalogs[prefs.lang]?.[text];
  return fill(typeof own === 'string' ? own : text, values);
}

const rules = {};
/** The text for the count `n` ({n} in it is filled, as are `values`): `one` or `other` in English, as the language's rules say else. */
export function tp(n, one, other, values) {
  const all = { n, ...values };
  const own = catalogs[prefs.lang]?.[other];
  if (own && typeof own === 'object') {
    const form = (rules[prefs.lang] ||= new Intl.PluralRules(prefs.lang)).select(Number(n));
    return fill(own[form] ?? own.other, all);
  }
  return fill(Number(n) === 1 ? one : other, all);
}

/** t() of a text kept in a variable, marked where it is written with msg(). */
export const tr = (marked, values) => t(marked, values);

/** Marks `text` for translation where it is kept to be shown later through t(); returns it as it is. */
export const msg = (text) => text;

/**
 * A manifest's text `field` ('title' or 'description') of `item` (a job type,
 * alert source or feature with an optional translations array of {lang,
 * title, description}) in the operator's language, else as the manifest
 * gives it.
 */
export function manifestText(item, field) {
  if (!item) return '';
  const lang = prefs.lang;
  const tr = (item.translations || []).find((x) => x[field] && String(x.lang).toLowerCase().split('-')[0] === lang);
  return tr ? tr[field] : item[field] || '';
}
