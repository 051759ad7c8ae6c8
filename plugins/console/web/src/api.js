// The admin API as the console uses it: bearer token from the tab's session
// storage, problem+json errors turned into ApiError, and the live log's
// Server-Sent Events read through fetch (EventSource cannot send a header).

const TOKEN_KEY = 'opk.console.token';

/**
 * An answer other than 2xx: the HTTP status, the problem's detail, and the
 * whole problem document (its extra members, such as a template's errors).
 */
export class ApiError extends Error {
  constructor(status, title, detail, problem = {}) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.problem = problem;
  }
}

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let onUnauthorized = () => {};
/** Called when a request is answered 401 (token expired or revoked). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  const t = session.token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

async function fail(res) {
  let title = res.statusText, detail = '', problem = {};
  try {
    const p = await res.json();
    title = p.title || title;
    detail = p.detail || '';
    if (p && typeof p === 'object') problem = p;
  } catch { /* not problem+json */ }
  if (res.status === 401) onUnauthorized(detail);
  throw new ApiError(res.status, title, detail, problem);
}

/** Calls the API; resolves with the parsed JSON answer. */
export async function api(path, { method = 'GET', body, token } = {}) {
  const h = headers(body !== undefined ? { 'Content-Type': 'application/json' } : {});
  if (token) h.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { method, headers: h, body: body !== undefined ? JSON.stringify(body) : undefined });
  if (!res.ok) await fail(res);
  return res.status === 204 ? {} : res.json();
}

/** A query string of the defined, non-empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Follows a run's log: calls onLine(line) for each line after `since`, and
 * onEnd({run, steps}) once the run has completed. Reconnects after a drop,
 * resuming after the last line seen. Stops when `signal` aborts.
 */
export async function followLog(runId, since, { onLine, onEnd, onError, signal }) {
  let last = since;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const res = await fetch(`/api/v1/runs/${runId}/events${query({ since: last || undefined })}`, {
        headers: headers({ Accept: 'text/event-stream' }),
        signal,
      });
      if (!res.ok) await fail(res);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message', data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (event === 'log') {
            const l = JSON.parse(data);
            last = l.seq;
            onLine(l);
          } else if (event === 'end') {
            onEnd(JSON.parse(data));
            return;
          }
        }
      }
      attempt = 0;
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && e.status !== 503) {
        onError(e);
        return;
      }
      if (attempt >= 5) {
        onError(e);
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 1000 * Math.min(attempt + 1, 5)));
  }
}

/**
 * What this user has seen, kept on the server (the console plugin's
 * /api/v1/console/seen) so that every browser they sign in from shows the
 * same: the runs whose logs they read, and per job ("<job id>", or
 * "type:<job type>" for ad-hoc runs) the newest failed run they marked seen
 * with every one before it. Read once per sign-in and kept here; the window
 * event 'opk-read' says it changed. Marks this browser kept before are moved
 * to the server once.
 */
export const readLog = {
  user: '',
  runs: new Set(),
  jobs: {},
  loaded: false,
  tried: 0,
  key: (user) => `opk.console.read.${user}`,
  load(user) {
    if (this.user !== user) Object.assign(this, { user, runs: new Set(), jobs: {}, loaded: false, tried: 0 });
    if (this.loaded || Date.now() - this.tried < 10000) return;
    this.tried = Date.now();
    api('/api/v1/console/seen')
      .then(async (d) => {
        if (this.user !== user) return;
        for (const id of d.runs) this.runs.add(id);
        this.jobs = { ...d.jobs, ...this.jobs };
        this.loaded = true;
        let old = [];
        try {
          old = JSON.parse(localStorage.getItem(this.key(user)) || '[]').filter((id) => Number.isInteger(id) && id > 0);
        } catch { /* nothing kept */ }
        if (old.length) {
          for (const id of old) this.runs.add(id);
          await api('/api/v1/console/seen', { method: 'POST', body: { runs: old.slice(-1000) } });
          localStorage.removeItem(this.key(user));
        }
        window.dispatchEvent(new Event('opk-read'));
      })
      .catch(() => {});
  },
  /** The ids of the runs whose logs `user` read. */
  all(user) {
    this.load(user);
    return this.runs;
  },
  has(user, runId) {
    return this.all(user).has(runId);
  },
  /** Marks the log of `runId` read by `user`. */
  mark(user, runId) {
    if (this.has(user, runId)) return;
    this.runs.add(runId);
    window.dispatchEvent(new Event('opk-read'));
    api('/api/v1/console/seen', { method: 'POST', body: { runs: [runId] } }).catch(() => {});
  },
  /** The newest failed run of `job` (a job key) that `user` marked seen with those before it; 0: none. */
  seenUpTo(user, job) {
    this.load(user);
    return this.jobs[job] || 0;
  },
  /** Marks every failure of `job` up to run `upTo` seen by `user`; resolves once stored. */
  async markJob(user, job, upTo) {
    this.load(user);
    this.jobs = { ...this.jobs, [job]: Math.max(this.jobs[job] || 0, upTo) };
    window.dispatchEvent(new Event('opk-read'));
    await api('/api/v1/console/seen', { method: 'POST', body: { jobs: { [job]: upTo } } });
  },
};
