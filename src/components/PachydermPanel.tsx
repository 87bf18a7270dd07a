import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';

import { IdentityModel } from '../identity';
import { PachlsModel } from '../model';
import { ActionButton, useSignalValue } from './common';
import { ConnectionSection } from './ConnectionSection';
import { IMountActions, MountsSection } from './MountsSection';
import { RepoTree } from './RepoTree';

export interface IPachydermPanelProps {
  model: PachlsModel;
  identity: IdentityModel;
  trans: TranslationBundle;
  actions: IMountActions;
}

/**
 * The Pachyderm sidebar: connection, mounts (with pending changes), repos and
 * branches. The "Labeling" section is a separate widget below this one.
 */
export function PachydermPanel(props: IPachydermPanelProps): JSX.Element {
  const { model, trans } = props;
  const state = useSignalValue(model.changed, () => model.state);
  return (
    <div className="jp-PachlsPanel-body" data-loading={state.loading ? 'true' : 'false'}>
      <div className="jp-PachlsPanel-header">
        <h2 className="jp-PachlsPanel-title">{trans.__('Pachyderm')}</h2>
        <ActionButton
          label={trans.__('Refresh repos and mounts')}
          icon={refreshIcon}
          disabled={state.loading}
          onClick={() => void model.refresh()}
          className="jp-PachlsPanel-refresh"
        />
      </div>
      <ConnectionSection model={model} identity={props.identity} trans={trans} />
      <MountsSection model={model} trans={trans} actions={props.actions} />
      <RepoTree model={model} trans={trans} actions={props.actions} />
    </div>
  );
}
