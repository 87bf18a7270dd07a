import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';

import { PachydermPanel } from '../components/PachydermPanel';
import { pachydermIcon } from '../icons';

/** DOM id of the sidebar; also the key the layout restorer stores. */
export const PACHYDERM_SIDEBAR_ID = 'jp-pachls-sidebar';

/** The left sidebar widget hosting the Pachyderm panel. */
export class PachydermSidebar extends ReactWidget {
  constructor(private readonly _trans: TranslationBundle) {
    super();
    this.id = PACHYDERM_SIDEBAR_ID;
    this.addClass('jp-PachlsPanel');
    this.title.icon = pachydermIcon;
    this.title.caption = _trans.__('Pachyderm');
  }

  protected render(): JSX.Element {
    return <PachydermPanel trans={this._trans} />;
  }
}
