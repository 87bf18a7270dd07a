import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';

import { IReposResponse, listRepos, PachlsApiError } from '../api';
import { RepoList } from './RepoList';

export interface IPachydermPanelProps {
  trans: TranslationBundle;
  /** Loads the repos; defaults to the REST API. */
  load?: () => Promise<IReposResponse>;
}

interface IPanelError {
  code: string;
  message: string;
}

function toPanelError(reason: unknown): IPanelError {
  if (reason instanceof PachlsApiError) {
    return { code: reason.error, message: reason.message };
  }
  return { code: 'error', message: String(reason) };
}

/** The Pachyderm sidebar: backend kind, repos and branches, a refresh button. */
export function PachydermPanel(props: IPachydermPanelProps): JSX.Element {
  const { trans } = props;
  const load = props.load ?? listRepos;
  const [data, setData] = React.useState<IReposResponse | null>(null);
  const [error, setError] = React.useState<IPanelError | null>(null);
  const [loading, setLoading] = React.useState<boolean>(false);
  const generation = React.useRef(0);

  const refresh = React.useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const result = await load();
      if (mine === generation.current) {
        setData(result);
        setError(null);
      }
    } catch (reason) {
      if (mine === generation.current) {
        setError(toPanelError(reason));
      }
    } finally {
      if (mine === generation.current) {
        setLoading(false);
      }
    }
  }, [load]);

  React.useEffect(() => {
    void refresh();
  }, [refresh]);

  return (
    <div className="jp-PachlsPanel-body">
      <div className="jp-PachlsPanel-header">
        <h2 className="jp-PachlsPanel-title">{trans.__('Pachyderm')}</h2>
        <button
          className="jp-PachlsPanel-refresh jp-Button jp-mod-minimal"
          title={trans.__('Refresh')}
          aria-label={trans.__('Refresh')}
          disabled={loading}
          onClick={() => void refresh()}
        >
          <refreshIcon.react tag="span" elementSize="normal" />
        </button>
      </div>
      {data ? (
        <div className="jp-PachlsPanel-backend" data-kind={data.backend.kind}>
          {trans.__('Backend: %1', data.backend.kind ?? trans.__('unknown'))}
          {data.backend.address ? (
            <span
              className="jp-PachlsPanel-address"
              title={data.backend.address}
            >
              {data.backend.address}
            </span>
          ) : null}
        </div>
      ) : null}
      {error ? (
        <div
          className="jp-PachlsPanel-error"
          role="alert"
          data-error={error.code}
        >
          {error.message}
        </div>
      ) : null}
      {loading && !data ? (
        <div className="jp-PachlsPanel-loading">{trans.__('Loading…')}</div>
      ) : null}
      {data ? <RepoList repos={data.repos} trans={trans} /> : null}
    </div>
  );
}
