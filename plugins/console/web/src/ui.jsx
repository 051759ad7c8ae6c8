// Shared pieces: navigation, formatting, status icons, filters, tables and
// their paging, window events and polling, dialogs, the form a parameter
// schema generates, charts and the live log view.
import { createContext } from 'preact';
import { useContext, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { followLog } from './api.js';
import { axisTimes, clock, number, viewZone, zoneName } from './format.js';
import { msg, t, tr } from './i18n.js';

/** The signed-in caller ({me, can(permission), types, settings}). */
export const Session = createContext(null);
export const useSession = () => useContext(Session);

// --- Navigation -------------------------------------------------------------

/** Moves to a console path without reloading the page. */
export function navigate(path) {
  if (location.pathname + location.search !== path) history.pushState(null, '', path);
  window.dispatchEvent(new Event('opk-navigate'));
}

export function Link({ href, children, ...rest }) {
  return (
    <a
      href={href}
      {...rest}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}

// --- Formatting -------------------------------------------------------------

// Times (each with its zone), durations and numbers: see format.js.
export { clock, date, duration, isoTime, number, relative, shortTime, startsAt, time, viewZone, zoneName } from './format.js';

// --- Status -----------------------------------------------------------------

const STATUS_WORDS = {
  running: msg('Running'),
  normal: msg('Succeeded'),
  warning: msg('Succeeded with warnings'),
  error: msg('Failed'),
  cancelled: msg('Cancelled'),
  pending: msg('Queued'),
  never: msg('Never run'),
};
/** The run statuses; `label` is read in the operator's language each time. */
export const STATUSES = ['running', 'normal', 'warning', 'error', 'cancelled', 'pending'].map((id) => ({
  id,
  get label() {
    return tr(STATUS_WORDS[id]);
  },
}));
const KNOWN = new Set([...STATUSES.map((s) => s.id), 'never']);
/** A status's words in the operator's language (an unknown one as it is). */
export const statusLabel = (s) => (KNOWN.has(s) ? tr(STATUS_WORDS[s]) : s);

/**
 * The last-run icon: a blinking grey circle while running, a green tick,
 * an attention sign for warnings, a cross for a failure, a slashed circle
 * for a run someone cancelled, an hourglass while queued. Labelled for
 * screen readers.
 */
export function StatusIcon({ status, decorative }) {
  const glyph =
    { running: '●', normal: '✓', warning: '⚠', error: '✕', cancelled: '⊘', pending: '◷', never: '–', timed_out: '⌛', stopped: '■', recovered: '↺' }[status] || '?';
  if (decorative)
    return (
      <span class={`status status-${status}`} aria-hidden="true">
        {glyph}
      </span>
    );
  return (
    <span class={`status status-${status}`} role="img" aria-label={statusLabel(status)} title={statusLabel(status)}>
      {glyph}
    </span>
  );
}

/** Icon toggles for filtering by status (each a pressed/unpressed button). */
export function StatusToggles({ value, onChange, statuses = STATUSES, label = t('Filter by status') }) {
  return (
    <div class="toggles" role="group" aria-label={label}>
      {statuses.map((s) => {
        const on = value.includes(s.id);
        return (
          <button
            type="button"
            class={`toggle ${on ? 'on' : ''}`}
            aria-pressed={on ? 'true' : 'false'}
            title={on ? t('Hide: {what}', { what: s.label }) : t('Show: {what}', { what: s.label })}
            onClick={() => onChange(on ? value.filter((v) => v !== s.id) : [...value, s.id])}
          >
            <StatusIcon status={s.id} decorative />
            <span class="toggle-label">{s.label}</span>
          </button>
        );
      })}
    </div>
  );
}

/** A filter choosing one of `choices` (or all), each shown as `labelOf` gives it (else itself), its label read by screen readers only. */
export function ChoiceFilter({ id, label, all, choices, labelOf, value, onChange }) {
  return (
    <>
      <label class="visually-hidden" for={id}>
        {label}
      </label>
      <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">{all}</option>
        {choices.map((c) => (
          <option value={c}>{labelOf ? labelOf(c) : c}</option>
        ))}
      </select>
    </>
  );
}

/** A text filter (a search field), its label read by screen readers only. */
export function TextFilter({ id, label, placeholder, value, onInput }) {
  return (
    <>
      <label class="visually-hidden" for={id}>
        {label}
      </label>
      <input id={id} type="search" placeholder={placeholder} value={value} onInput={(e) => onInput(e.currentTarget.value)} />
    </>
  );
}

/**
 * A text filter that suggests `choices` (an <input> with a <datalist> named
 * `list`), its label read by screen readers only; other props go to the input.
 */
export function SuggestFilter({ id, label, list, choices, onInput, ...input }) {
  return (
    <>
      <label class="visually-hidden" for={id}>
        {label}
      </label>
      <input id={id} list={list} {...input} onInput={(e) => onInput(e.currentTarget.value)} />
      <datalist id={list}>
        {choices.map((c) => (
          <option value={c} />
        ))}
      </datalist>
    </>
  );
}

// --- Tables -----------------------------------------------------------------

/**
 * A scrolling table: `name` is its class, `caption` is read by screen readers
 * only, `columns` are its heads (a string is a plain column head, a node
 * stands as given, a false value is left out); `children` are its rows.
 */
export function Table({ name, caption, columns, children }) {
  return (
    <div class="table-wrap">
      <table class={name}>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>{columns.filter(Boolean).map((c) => (typeof c === 'string' ? <th scope="col">{c}</th> : c))}</tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** A column head read by screen readers only (over buttons or links). */
export const HiddenHead = ({ label }) => (
  <th scope="col">
    <span class="visually-hidden">{label}</span>
  </th>
);

/** The row saying that nothing matches, when `show`; spans `cols` columns. */
export function EmptyRow({ show, cols, children }) {
  if (!show) return null;
  return (
    <tr>
      <td colSpan={cols} class="empty">
        {children}
      </td>
    </tr>
  );
}

const NO_MORE = { items: [], next: undefined, error: null, busy: false };

/**
 * Keyset paging after a polled first page: `first` is that page ({[field]:
 * [...], next_cursor}), `fetchPage(cursor)` reads the next one. Returns
 * {items, next, more, loadMore, reset}: the first page and those read after
 * it (each id once), the cursor of the page to read next, the state of the
 * reading ({error, busy}), and what reads it or forgets the pages after the
 * first (also done whenever `key` changes).
 */
export function useCursorPages(key, first, field, fetchPage) {
  const [more, setMore] = useState(NO_MORE);
  const reset = () => setMore(NO_MORE);
  useEffect(reset, [key]);
  const seen = new Set();
  const items = [...(first?.[field] || []), ...more.items].filter((x) => !seen.has(x.id) && seen.add(x.id));
  const next = more.next !== undefined ? more.next : first?.next_cursor;
  const loadMore = async () => {
    setMore((m) => ({ ...m, busy: true, error: null }));
    try {
      const page = await fetchPage(next);
      setMore((m) => ({ items: [...m.items, ...page[field]], next: page.next_cursor, error: null, busy: false }));
    } catch (e) {
      setMore((m) => ({ ...m, busy: false, error: e }));
    }
  };
  return { items, next, more, loadMore, reset };
}

/** The error of reading more pages, and the More button while there are more. */
export function MorePager({ pages }) {
  const { more, next, loadMore } = pages;
  return (
    <>
      <Message error={more.error} />
      {next && (
        <div class="pager">
          <button type="button" disabled={more.busy} onClick={loadMore}>
            {more.busy ? t('Loading…') : t('More')}
          </button>
        </div>
      )}
    </>
  );
}

// --- Window events and polling ----------------------------------------------

/** Calls `fn` on each of the window events `names` while mounted (re-bound when `deps` change). */
export function useWindowEvents(names, fn, deps) {
  useEffect(() => {
    for (const n of names) window.addEventListener(n, fn);
    return () => {
      for (const n of names) window.removeEventListener(n, fn);
    };
  }, deps);
}

/**
 * `value` once it has stayed the same (as JSON) for `ms`: what a filter
 * typed into asks for, without a request per key stroke.
 */
export function useSettled(value, ms = 250) {
  const [settled, setSettled] = useState(value);
  const key = JSON.stringify(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [key]);
  return settled;
}

/** A counter that grows on each of the window events `names`: a dependency that reloads. */
export function useEventCount(names) {
  const [count, setCount] = useState(0);
  useWindowEvents(names, () => setCount((n) => n + 1), []);
  return count;
}

/**
 * Polls for the menu: calls `load(live)` now and then every poll_seconds
 * while its page is shown (`open`), else every 30 s (or poll_seconds if
 * slower), skipping while the tab is hidden; `live()` turns false once the
 * poll ends. No polling when `load` is null; restarts when `deps` change.
 */
export function useMenuPoll(ctx, open, load, deps) {
  useEffect(() => {
    if (!load) return undefined;
    let live = true;
    const alive = () => live;
    load(alive);
    const every = open ? ctx.settings.poll_seconds : Math.max(30, ctx.settings.poll_seconds);
    const t = setInterval(() => document.visibilityState === 'visible' && load(alive), every * 1000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, deps);
}

// --- Dialog -----------------------------------------------------------------

/**
 * A modal dialog (native <dialog>: focus stays inside, Escape closes it, and
 * returns to the control that opened it once closed);
 * `wide` for forms with more room, `drawer` for a panel along the right edge.
 */
export function Dialog({ title, onClose, children, wide, drawer }) {
  const ref = useRef();
  const id = useMemo(() => `dlg-${Math.random().toString(36).slice(2)}`, []);
  useEffect(() => {
    const d = ref.current;
    // The control that opened the dialog gets the focus back when it closes (if it is still there).
    const opener = document.activeElement;
    d.showModal();
    const close = (e) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener('cancel', close);
    return () => {
      d.removeEventListener('cancel', close);
      if (opener && opener !== document.body && opener.isConnected) setTimeout(() => opener.isConnected && opener.focus());
    };
  }, []);
  return (
    <dialog ref={ref} class={drawer ? 'drawer' : wide ? 'wide' : ''} aria-labelledby={id}>
      <header class="dialog-head">
        <h2 id={id}>{title}</h2>
        <button type="button" class="icon-button" aria-label={t('Close')} onClick={onClose}>
          ✕
        </button>
      </header>
      {children}
    </dialog>
  );
}

/** A page the caller's role may not see: its heading and what the role may not do. */
export function NotAllowed({ title, role, what }) {
  return (
    <section>
      <h1>{title}</h1>
      <p>{t('Your role ({role}) may not {what}.', { role, what })}</p>
    </section>
  );
}

/** An error or notice line; errors are announced. */
export function Message({ error, notice }) {
  if (error) return <p class="message error" role="alert">{String(error.message || error)}</p>;
  if (notice) return <p class="message notice" role="status">{notice}</p>;
  return null;
}

/**
 * A form's action: `run(fn)` awaits fn, busy meanwhile; an error it throws is
 * kept in `error` for the form to show.
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

/**
 * A form's error and its buttons: `back` (Cancel) closes, the primary submits,
 * saying `working` while busy; `disabled` defaults to `busy`, `danger` marks
 * a submit that deletes.
 */
export function FormActions({ error, busy, disabled = busy, back = t('Cancel'), onClose, submit, working = t('Working…'), danger }) {
  return (
    <>
      <Message error={error} />
      <div class="actions">
        <button type="button" onClick={onClose}>
          {back}
        </button>
        <button type="submit" class={danger ? 'primary danger' : 'primary'} disabled={disabled}>
          {busy ? working : submit}
        </button>
      </div>
    </>
  );
}

/** A drawer's or read-only dialog's only button, Close. */
export const CloseActions = ({ onClose }) => (
  <div class="actions">
    <button type="button" onClick={onClose}>
      {t('Close')}
    </button>
  </div>
);

/** The reason every operator action needs, and the dialog's buttons. */
export function ReasonAndActions({ id, reason, onReason, error, busy, submit, back = t('Cancel'), onClose }) {
  return (
    <>
      <div class="field">
        <label for={id}>{t('Reason (required, kept in the audit trail)')}</label>
        <textarea id={id} name="reason" required rows={2} value={reason} onInput={(e) => onReason(e.currentTarget.value)} />
      </div>
      <FormActions error={error} busy={busy} disabled={busy || !reason.trim()} back={back} onClose={onClose} submit={submit} working={submit} />
    </>
  );
}

// --- Parameter schema form --------------------------------------------------

/** The initial form values: the given parameters over the schema's defaults. */
export function formValues(schema, params) {
  const v = {};
  for (const [k, p] of Object.entries(schema?.properties || {})) {
    const given = params && k in params ? params[k] : p.default;
    v[k] = given === undefined ? (p.type === 'boolean' ? false : '') : given;
  }
  return v;
}

/** The parameters object from form values; empty fields are left out. */
export function formParams(schema, values, base = {}) {
  const out = { ...base };
  for (const [k, p] of Object.entries(schema?.properties || {})) {
    const v = values[k];
    if (p.type === 'boolean') {
      if (v || k in base || p.default !== undefined) out[k] = !!v;
    } else if (v === '' || v === undefined) {
      delete out[k];
    } else if (p.type === 'integer' || p.type === 'number') {
      out[k] = Number(v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** One labelled input per property of a JSON Schema object. */
export function SchemaFields({ schema, values, onChange, idPrefix }) {
  const props = Object.entries(schema?.properties || {});
  if (!props.length) return <p class="hint">{t('This job type takes no parameters.')}</p>;
  const required = new Set(schema.required || []);
  return (
    <fieldset class="params">
      <legend>{t('Parameters')}</legend>
      {props.map(([k, p]) => {
        const id = `${idPrefix}-${k}`;
        const set = (v) => onChange({ ...values, [k]: v });
        const hint = [p.description, p.minimum !== undefined && p.maximum !== undefined ? `${p.minimum}–${p.maximum}` : '']
          .filter(Boolean)
          .join(' · ');
        if (p.type === 'boolean')
          return (
            <div class="field check" key={k}>
              <input id={id} type="checkbox" name={k} checked={!!values[k]} onChange={(e) => set(e.currentTarget.checked)} />
              <label for={id}>
                {p.title || k} {hint && <span class="hint">{hint}</span>}
              </label>
            </div>
          );
        let input;
        if (Array.isArray(p.enum))
          input = (
            <select id={id} name={k} value={values[k]} onChange={(e) => set(e.currentTarget.value)}>
              <option value="">—</option>
              {p.enum.map((o) => (
                <option value={o}>{String(o)}</option>
              ))}
            </select>
          );
        else
          input = (
            <input
              id={id}
              name={k}
              type={p.type === 'integer' || p.type === 'number' ? 'number' : 'text'}
              min={p.minimum}
              max={p.maximum}
              step={p.type === 'integer' ? 1 : 'any'}
              maxLength={p.maxLength}
              required={required.has(k)}
              value={values[k]}
              onInput={(e) => set(e.currentTarget.value)}
            />
          );
        return (
          <div class="field" key={k}>
            <label for={id}>
              {p.title || k}
              {required.has(k) ? t(' (required)') : ''} {hint && <span class="hint">{hint}</span>}
            </label>
            {input}
          </div>
        );
      })}
    </fieldset>
  );
}

/** Parses a type's schema text; an empty or broken one is no schema. */
export function schemaOf(type) {
  try {
    const s = type?.params_schema;
    return typeof s === 'string' ? (s ? JSON.parse(s) : null) : s || null;
  } catch {
    return null;
  }
}

// --- Charts -----------------------------------------------------------------

/** A series colour given as var(--name): the theme's value of that variable now; any other as it is. */
function themed(colour) {
  const m = /^var\((--[\w-]+)\)$/.exec(colour || '');
  return m ? getComputedStyle(document.documentElement).getPropertyValue(m[1]).trim() : colour;
}

/** The colours a chart draws its axes and grid in: the theme's (CSS variables --chart-axis, --chart-grid). */
function chartColours() {
  const css = getComputedStyle(document.documentElement);
  return { axis: css.getPropertyValue('--chart-axis').trim() || '#555', grid: css.getPropertyValue('--chart-grid').trim() || '#eee' };
}

// uPlot is most of the bundle and only the job page draws charts: it is its own chunk, fetched on the first chart.
let uPlotLoading = null;
const loadUPlot = () => (uPlotLoading ||= import('uplot').then((m) => m.default));
/** Fetches the charts' code while the browser is idle, so a page with charts draws them at once. */
export const preloadCharts = () => (window.requestIdleCallback || setTimeout)(() => loadUPlot());

/**
 * A uPlot chart sized to its box; `label` describes it for screen readers.
 * Dates on its time axis are written in the operator's zone and language,
 * the numbers on its other axis in that language; it is drawn again when the
 * theme, language or zone changes.
 */
export function Chart({ title, label, data, series, bars, yLabel }) {
  const box = useRef();
  const scheme = useEventCount(['opk-prefs']);
  const key = JSON.stringify(data);
  useEffect(() => {
    const el = box.current;
    const c = chartColours();
    let u = null;
    let gone = false;
    const resize = () => u?.setSize({ width: Math.max(240, el.clientWidth), height: 170 });
    loadUPlot().then((uPlot) => {
      if (gone) return;
      u = new uPlot(
        {
          width: Math.max(240, el.clientWidth),
          height: 170,
          legend: { show: false },
          cursor: { points: { show: !bars } },
          scales: {
            // Bars: half a step of room at each end, so the first and last bars show whole.
            x: bars ? { time: true, range: (u, min, max) => [min - 43200, max + 43200] } : { time: true },
            y: { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.15)] },
          },
          axes: [
            { stroke: c.axis, grid: { stroke: c.grid }, ticks: { stroke: c.grid }, values: axisTimes },
            // Counts and amounts as the operator's language writes numbers (uPlot's own follow the browser's).
            { stroke: c.axis, grid: { stroke: c.grid }, ticks: { stroke: c.grid }, label: yLabel, size: 50, values: (u, splits) => splits.map((v) => number(v)) },
          ],
          series: [
            {},
            ...series.map((s) => ({
              ...s,
              stroke: themed(s.stroke),
              fill: themed(s.fill),
              paths: bars ? uPlot.paths.bars({ size: [0.7, 24] }) : undefined,
              points: { show: !bars, size: 5 },
            })),
          ],
        },
        data,
        el,
      );
    });
    window.addEventListener('resize', resize);
    return () => {
      gone = true;
      window.removeEventListener('resize', resize);
      u?.destroy();
    };
  }, [key, scheme]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={label} />
    </figure>
  );
}

// --- Live log ---------------------------------------------------------------

/**
 * A run's log, streamed while the run is in progress. Calls onEnd with the
 * completed run ({run, steps}).
 */
export function LogView({ runId, onEnd }) {
  const [lines, setLines] = useState([]);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  const box = useRef();
  const stick = useRef(true);
  useEffect(() => {
    setLines([]);
    setDone(false);
    setError(null);
    const ctl = new AbortController();
    let pending = [];
    let timer = 0;
    const push = () => {
      timer = 0;
      const add = pending;
      pending = [];
      setLines((old) => old.concat(add).slice(-5000));
    };
    followLog(runId, 0, {
      signal: ctl.signal,
      onLine: (l) => {
        pending.push(l);
        if (!timer) timer = setTimeout(push, 50);
      },
      onEnd: (r) => {
        if (timer) clearTimeout(timer);
        push();
        setDone(true);
        onEnd && onEnd(r);
      },
      onError: setError,
    });
    return () => {
      ctl.abort();
      if (timer) clearTimeout(timer);
    };
  }, [runId]);
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);
  return (
    <div class="log-wrap">
      <Message error={error} />
      <p class="log-zone">{t('Times in {zone}', { zone: zoneName(viewZone()) })}</p>
      <div
        class="log"
        ref={box}
        role="log"
        aria-live="polite"
        aria-label={t('Log of run {id}', { id: runId })}
        tabIndex={0}
        data-done={done ? 'true' : 'false'}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        <ol>
          {lines.map((l) => (
            <li key={l.seq} class={`lvl-${l.level}`}>
              <time dateTime={new Date(l.time_ms).toISOString()}>{clock(l.time_ms)}</time>
              <span class="lvl">{l.level}</span>
              {l.step && <span class="step">{l.step}</span>}
              <span class="msg">{l.message}</span>
            </li>
          ))}
          {!done && !error && <li class="waiting">{t('waiting for the run…')}</li>}
        </ol>
      </div>
    </div>
  );
}
