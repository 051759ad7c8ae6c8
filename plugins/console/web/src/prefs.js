// The operator's display preferences, kept in this browser: the language
// (by default the browser's, English when it offers neither), the time zone
// times are shown in (the browser's or UTC) and the colour theme (the
// system's, light or dark). A change is applied to the document at once and
// announced with the window event 'opk-prefs', on which the shell redraws.

const KEY = 'opk.console.prefs';

/** The languages the console speaks, each named in itself. */
export const LANGUAGES = [
  { id: 'en', name: 'English' },
  { id: 'sv', name: 'Svenska' },
];

/** The language of the browser's first preference the console speaks, else English. */
export function browserLanguage() {
  for (const l of navigator.languages?.length ? navigator.languages : [navigator.language || 'en']) {
    const base = String(l).toLowerCase().split('-')[0];
    if (LANGUAGES.some((x) => x.id === base)) return base;
  }
  return 'en';
}

/** The browser's own time zone (an IANA name). */
export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

function stored() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || '{}') || {};
  } catch {
    return {};
  }
}

const kept = stored();
/** The preferences in force: lang ('en', 'sv'), zone ('local', 'UTC'), theme ('system', 'light', 'dark'). */
export const prefs = {
  lang: LANGUAGES.some((x) => x.id === kept.lang) ? kept.lang : browserLanguage(),
  zone: kept.zone === 'UTC' ? 'UTC' : 'local',
  theme: ['light', 'dark'].includes(kept.theme) ? kept.theme : 'system',
};

const systemDark = window.matchMedia('(prefers-color-scheme: dark)');
/** The theme in force: the chosen one, or the system's ('light' or 'dark'). */
export const theme = () => (prefs.theme === 'system' ? (systemDark.matches ? 'dark' : 'light') : prefs.theme);

/** Sets the document's language and theme (data-theme) from `prefs`. */
export function applyPrefs() {
  const root = document.documentElement;
  root.lang = prefs.lang;
  root.setAttribute('data-theme', theme());
}
// A change of the system's scheme applies at once while the operator follows it.
systemDark.addEventListener('change', () => prefs.theme === 'system' && (applyPrefs(), window.dispatchEvent(new Event('opk-prefs'))));

/**
 * Changes the preference `name` to `value`, keeps it in this browser
 * (explicit choices only), applies it and announces it.
 */
export function setPref(name, value) {
  prefs[name] = value;
  const keep = stored();
  keep[name] = value;
  try {
    localStorage.setItem(KEY, JSON.stringify(keep));
  } catch { /* storage refused: the choice holds for this page only */ }
  applyPrefs();
  window.dispatchEvent(new Event('opk-prefs'));
}
