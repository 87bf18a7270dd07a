import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { PachydermPanel } from '../components/PachydermPanel';
import { IMountActions } from '../components/MountsSection';
import { pachydermIcon } from '../icons';
import { IdentityModel } from '../identity';
import { PachlsModel } from '../model';
import { onVisibilityChange } from './visibility';

/** DOM id of the sidebar; also the key the layout restorer stores. */
export const PACHYDERM_SIDEBAR_ID = 'jp-pachls-sidebar';

/**
 * The left sidebar: the Pachyderm panel (connection, mounts, repos), then a
 * separate area that the labeling part fills (`labelingArea`).
 *
 * Polling of the model runs only while this widget is visible.
 */
export class PachydermSidebar extends Panel {
  constructor(
    readonly model: PachlsModel,
    identity: IdentityModel,
    trans: TranslationBundle,
    actions: IMountActions
  ) {
    super();
    this.id = PACHYDERM_SIDEBAR_ID;
    this.addClass('jp-PachlsPanel');
    this.title.icon = pachydermIcon;
    this.title.caption = trans.__('Pachyderm');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Pachyderm'));

    const main = ReactWidget.create(
      <PachydermPanel model={model} identity={identity} trans={trans} actions={actions} />
    );
    main.addClass('jp-PachlsPanel-main');
    this.addWidget(main);

    this.labelingArea = new Panel();
    this.labelingArea.id = 'jp-pachls-labeling-area';
    this.labelingArea.addClass('jp-PachlsLabelingArea');
    this.labelingArea.node.dataset.section = 'labeling';
    this.addWidget(this.labelingArea);

    onVisibilityChange(this, visible => (model.visible = visible));
  }

  /**
   * Where the "Labeling" section goes: add widgets here
   * (`sidebar.labelingArea.addWidget(w)`). Empty and invisible until then.
   */
  readonly labelingArea: Panel;

  /** Add a widget to the labeling area. */
  addLabelingWidget(widget: Widget): void {
    this.labelingArea.addWidget(widget);
  }
}
