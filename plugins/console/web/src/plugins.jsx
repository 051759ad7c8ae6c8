// The plugins page (/administration/plugins): loaded plugins with their
// manifests, refused ones with the reason.
import { useEffect } from 'preact/hooks';
import { api } from './api.js';
import { manifestText, t } from './i18n.js';
import { usePoll } from './jobs.jsx';
import { Message, NotAllowed, useSession } from './ui.jsx';

/** A job type, alert source or feature by its id, with its title in the operator's language from the manifest's translations. */
const providedName = (x) => {
  if (!x.id) return x;
  const title = manifestText(x, 'title');
  return title && title !== x.id ? `${x.id} (${title})` : x.id;
};

function Provides({ m }) {
  const groups = [
    [t('Job types'), m.job_types],
    [t('Alert sources'), m.alert_sources],
    [t('Admin features'), m.admin_features],
    [t('Notification channels'), m.notification_channels],
  ].filter(([, list]) => Array.isArray(list) && list.length);
  if (!groups.length) return <span class="hint">—</span>;
  return (
    <ul class="provides">
      {groups.map(([label, list]) => (
        <li key={label}>
          {label}: {list.map(providedName).join(', ')}
        </li>
      ))}
    </ul>
  );
}

export function PluginsPage() {
  const ctx = useSession();
  useEffect(() => {
    document.title = t('{page} · Opskernel', { page: t('Plugins') });
  }, []);
  const [data, error] = usePoll(() => api('/api/v1/plugins'), 30, []);
  if (!ctx.can('plugins.read'))
    return <NotAllowed title={t('Plugins')} role={ctx.me.role} what={t('see the plugins')} />;
  const plugins = data?.plugins || [];
  const refused = plugins.filter((p) => !p.manifest || p.reason);
  const loaded = plugins.filter((p) => !refused.includes(p));
  return (
    <section aria-labelledby="plugins-title">
      <h1 id="plugins-title">{t('Plugins')}</h1>
      <Message error={error} />
      <h2>{t('Loaded ({n})', { n: loaded.length })}</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{t('Plugin')}</th>
              <th scope="col">{t('State')}</th>
              <th scope="col">{t('Version')}</th>
              <th scope="col">{t('Vendor')}</th>
              <th scope="col">{t('Provides')}</th>
              <th scope="col">{t('File')}</th>
              <th scope="col">{t('Manifest')}</th>
            </tr>
          </thead>
          <tbody>
            {loaded.map((p) => (
              <tr key={p.id}>
                <td>
                  <strong>{p.manifest.name || p.id}</strong>
                  <div class="hint">{p.id}</div>
                  <div>{p.manifest.description}</div>
                </td>
                <td>{p.state}</td>
                <td>{p.version}</td>
                <td>{p.manifest.vendor}</td>
                <td>
                  <Provides m={p.manifest} />
                </td>
                <td class="mono">{p.file}</td>
                <td>
                  <details>
                    <summary>{t('Show')}</summary>
                    <pre>{JSON.stringify(p.manifest, null, 2)}</pre>
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>{t('Refused or disabled ({n})', { n: refused.length })}</h2>
      {refused.length ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t('Plugin')}</th>
                <th scope="col">{t('State')}</th>
                <th scope="col">{t('File')}</th>
                <th scope="col">{t('Reason')}</th>
              </tr>
            </thead>
            <tbody>
              {refused.map((p) => (
                <tr key={p.file} class="refused">
                  <td>{p.id || '—'}</td>
                  <td>{p.state}</td>
                  <td class="mono">{p.file}</td>
                  <td>{p.reason || t('disabled in the configuration')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="hint">{t('Every plugin found was loaded.')}</p>
      )}
    </section>
  );
}
