// The admin features' names in the operator's language as their plugins'
// manifests translate them (GET /api/v1/plugins, read once per language for
// roles with plugins.read): the menu and the features' pages show a
// manifest's translation where it has one for the language, else the
// console's own text. English reads nothing: the console's texts are the
// names.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { prefs } from './prefs.js';

let asked = null; // { lang, titles: Promise<{feature id: title}> }

function readTitles(ctx) {
  const lang = prefs.lang;
  if (lang === 'en' || !ctx.can('plugins.read')) return Promise.resolve({});
  if (asked?.lang !== lang) {
    const titles = api('/api/v1/plugins')
      .then((d) => {
        const out = {};
        for (const p of d.plugins || [])
          for (const f of p.manifest?.admin_features || []) {
            const tr = (f.translations || []).find((x) => x.title && String(x.lang).toLowerCase().split('-')[0] === lang);
            if (tr) out[f.id] = tr.title;
          }
        return out;
      })
      .catch(() => ({}));
    asked = { lang, titles };
  }
  return asked.titles;
}

/**
 * The names of the admin features for the caller `ctx`: a function of a
 * feature's id (its manifest's id, such as 'maintenance-mode') and the
 * console's text for it, giving the manifest's translation for the
 * operator's language when it has one, else that text.
 */
export function useFeatureNames(ctx) {
  const [titles, setTitles] = useState({ lang: '', of: {} });
  const lang = prefs.lang;
  useEffect(() => {
    let live = true;
    readTitles(ctx).then((of) => live && setTitles({ lang, of }));
    return () => {
      live = false;
    };
  }, [lang]);
  return (id, fallback) => (titles.lang === lang && titles.of[id]) || fallback;
}
