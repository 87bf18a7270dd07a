import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { pachydermIcon } from './icons';
import { PachydermSidebar } from './widgets/PachydermSidebar';

/** Command ids. */
export namespace CommandIDs {
  export const openPanel = 'pachls:open-panel';
}

const PLUGIN_ID = 'jupyterlab-pachls:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Label versioned data (Pachyderm semantics) with Label Studio in JupyterLab.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_pachls');

    const sidebar = new PachydermSidebar(trans);
    app.shell.add(sidebar, 'left', { rank: 300 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }

    app.commands.addCommand(CommandIDs.openPanel, {
      label: trans.__('Open the Pachyderm Panel'),
      caption: trans.__('Show versioned repos and their branches'),
      icon: pachydermIcon,
      execute: () => {
        app.shell.activateById(sidebar.id);
      }
    });
    if (palette) {
      palette.addItem({
        command: CommandIDs.openPanel,
        category: trans.__('Pachyderm')
      });
    }
  }
};

export default plugin;
