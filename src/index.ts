import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  MainAreaWidget,
  showDialog,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { IMountStatus, MountMode, setIdentityRequiredHandler } from './api';
import { askRepoBranch, fileInMount, guardedBy, pickOne, str } from './commands';
import { showCommitDialog } from './components/CommitDialog';
import { identityDialog } from './components/IdentityDialog';
import { IMountActions } from './components/MountsSection';
import { address, relativeToRoot } from './format';
import { pachydermIcon } from './icons';
import { IdentityModel } from './identity';
import { activateLabeling } from './labeling/plugin';
import { PachlsModel } from './model';
import {
  createHistoryWidget,
  HistoryContent,
  historyWidgetId
} from './widgets/HistoryWidget';
import { PachydermSidebar } from './widgets/PachydermSidebar';
import { addPendingStatus, decoratePendingChanges } from './widgets/PendingDecorations';

export { PachlsModel } from './model';
export { IdentityModel } from './identity';
export { PachydermSidebar } from './widgets/PachydermSidebar';
export { LabelingModel } from './labeling/model';
export { LabelingCommandIDs } from './labeling/plugin';

/** Command ids. */
export namespace CommandIDs {
  export const openPanel = 'pachls:open-panel';
  export const mount = 'pachls:mount';
  export const unmount = 'pachls:unmount';
  export const commit = 'pachls:commit';
  export const showHistory = 'pachls:show-history';
  export const fileHistory = 'pachls:file-history';
  export const refresh = 'pachls:refresh';
}

const PLUGIN_ID = 'jupyterlab-pachls:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Label versioned data (Pachyderm semantics) with Label Studio in JupyterLab.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ITranslator,
    ISettingRegistry,
    IDefaultFileBrowser,
    IStatusBar
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null,
    settingRegistry: ISettingRegistry | null,
    fileBrowser: IDefaultFileBrowser | null,
    statusBar: IStatusBar | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_pachls');
    const { commands, shell } = app;
    const model = new PachlsModel();
    // Every route that writes history may answer 409 identity_required: ask once, then retry.
    const identity = new IdentityModel({ ask: identityDialog(trans) });
    setIdentityRequiredHandler(identity.handleIdentityRequired);
    void app.restored.then(() => identity.checkOnStart());
    let historyPageSize = 20;

    const tracker = new WidgetTracker<MainAreaWidget<HistoryContent>>({
      namespace: 'pachls-history'
    });

    const showHistory = async (repo: string, branch: string, commit?: string) => {
      await commands.execute(CommandIDs.showHistory, {
        repo,
        branch,
        ...(commit ? { commit } : {})
      });
    };

    const actions: IMountActions = {
      openFolder: async (mount: IMountStatus) => {
        const serverRoot = PageConfig.getOption('serverRoot');
        const path = relativeToRoot(mount.mountpoint, serverRoot);
        if (path === null) {
          throw new Error(
            trans.__(
              'The folder %1 is outside the Jupyter root %2, so the file browser cannot show it.',
              mount.mountpoint,
              serverRoot || '?'
            )
          );
        }
        await commands.execute('filebrowser:go-to-path', { path: `/${path}` });
      },
      commit: async (name: string) => {
        await commands.execute(CommandIDs.commit, { name });
      },
      discard: async (mount: IMountStatus) => {
        const result = await showDialog({
          title: trans.__('Discard changes in %1?', mount.name),
          body: trans._n(
            'Drop %1 pending change of %2? Files in the mount go back to commit %3. This cannot be undone.',
            'Drop %1 pending changes of %2? Files in the mount go back to commit %3. This cannot be undone.',
            mount.pending,
            address(mount.repo, mount.branch),
            (mount.base ?? '').slice(0, 8)
          ),
          buttons: [
            Dialog.cancelButton({ label: trans.__('Cancel') }),
            Dialog.warnButton({ label: trans.__('Discard') })
          ]
        });
        if (!result.button.accept) {
          return false;
        }
        await model.discard(mount.name);
        return true;
      },
      unmount: async (mount: IMountStatus) => {
        let discard = false;
        if (mount.mode === 'rw' && mount.pending > 0) {
          const result = await showDialog({
            title: trans.__('Unmount %1?', mount.name),
            body: trans._n(
              '%1 has %2 pending change. Keep it for a later mount of the same branch, or discard it?',
              '%1 has %2 pending changes. Keep them for a later mount of the same branch, or discard them?',
              mount.pending,
              mount.name
            ),
            buttons: [
              Dialog.cancelButton({ label: trans.__('Cancel') }),
              Dialog.warnButton({ label: trans.__('Discard and unmount'), actions: ['discard'] }),
              Dialog.okButton({ label: trans.__('Keep changes and unmount') })
            ]
          });
          if (!result.button.accept) {
            return false;
          }
          discard = result.button.actions.includes('discard');
        }
        await model.unmount(mount.name, discard);
        return true;
      },
      showHistory: (repo: string, branch: string) => showHistory(repo, branch)
    };

    const sidebar = new PachydermSidebar(model, identity, trans, actions);
    shell.add(sidebar, 'left', { rank: 300 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
      void restorer.restore(tracker, {
        command: CommandIDs.showHistory,
        args: w => ({ repo: w.content.repo, branch: w.content.branch, path: w.content.path }),
        name: w => `${w.content.repo}@${w.content.branch}${w.content.path ? `:${w.content.path}` : ''}`
      });
    }

    const labeling = activateLabeling({
      app,
      sidebar,
      panel: model,
      trans,
      restorer,
      palette,
      fileBrowser,
      showHistory
    });

    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            const seconds = settings.get('refreshInterval').composite as number;
            model.interval = Math.max(0, Number(seconds) || 0) * 1000;
            labeling.interval = model.interval;
            historyPageSize = Math.max(
              1,
              Math.min(1000, Number(settings.get('historyPageSize').composite) || 20)
            );
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => console.warn('jupyterlab-pachls: settings not loaded', reason));
    }

    const guarded = guardedBy(trans.__('Pachyderm'));

    const pickMount = async (
      label: string,
      filter: (m: IMountStatus) => boolean
    ): Promise<string | undefined> => {
      await model.refreshMounts();
      const names = (model.state.mounts?.mounts ?? []).filter(filter).map(m => m.name);
      return pickOne(label, names, {
        empty: model.state.mountsError ?? trans.__('No mount to choose from.')
      });
    };

    commands.addCommand(CommandIDs.openPanel, {
      label: trans.__('Open the Pachyderm Panel'),
      caption: trans.__('Show versioned repos, mounts and pending changes'),
      icon: pachydermIcon,
      execute: () => {
        shell.activateById(sidebar.id);
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: trans.__('Refresh Pachyderm Repos and Mounts'),
      execute: () => model.refresh()
    });

    commands.addCommand(CommandIDs.mount, {
      label: args =>
        str(args, 'repo')
          ? trans.__(
              'Mount %1 %2',
              address(str(args, 'repo') as string, str(args, 'ref') ?? str(args, 'branch') ?? 'master'),
              args.mode === 'rw' ? trans.__('read-write') : trans.__('read-only')
            )
          : trans.__('Mount a Pachyderm Branch…'),
      caption: trans.__('Mount repo@branch as a folder (args: repo, branch or ref, mode ro|rw, name)'),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            repo: { type: 'string', description: trans.__('repo or project/repo') },
            branch: { type: 'string', description: trans.__('branch (default master)') },
            ref: { type: 'string', description: trans.__('a commit id or branch^N (read-only)') },
            mode: { type: 'string', enum: ['ro', 'rw'] },
            name: { type: 'string', description: trans.__('mount name') }
          }
        }
      },
      execute: guarded(async args => {
        let repo = str(args, 'repo');
        let branch = str(args, 'branch');
        const ref = str(args, 'ref');
        let mode = (str(args, 'mode') as MountMode | undefined) ?? undefined;
        if (!repo) {
          const asked = await askRepoBranch(trans.__('Mount repo@branch'));
          if (!asked) {
            return;
          }
          ({ repo, branch } = asked);
          const choice = await InputDialog.getItem({
            title: trans.__('Mode'),
            items: [trans.__('read-only'), trans.__('read-write')]
          });
          if (!choice.button.accept) {
            return;
          }
          mode = choice.value === trans.__('read-write') ? 'rw' : 'ro';
        }
        const status = await model.mountBranch({
          repo,
          ...(ref ? { ref } : { branch: branch ?? 'master' }),
          mode: mode ?? 'ro',
          ...(str(args, 'name') ? { name: str(args, 'name') } : {})
        });
        shell.activateById(sidebar.id);
        return status;
      })
    });

    commands.addCommand(CommandIDs.unmount, {
      label: args =>
        str(args, 'name')
          ? trans.__('Unmount %1', str(args, 'name') as string)
          : trans.__('Unmount a Pachyderm Mount…'),
      caption: trans.__('Unmount (args: name, discard)'),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            discard: { type: 'boolean', description: trans.__('drop staged changes') }
          }
        }
      },
      execute: guarded(async args => {
        const name = str(args, 'name') ?? (await pickMount(trans.__('Unmount'), () => true));
        if (!name) {
          return;
        }
        if (typeof args.discard === 'boolean') {
          await model.unmount(name, args.discard);
          return;
        }
        await model.refreshMounts();
        const mount = model.mount(name);
        if (!mount) {
          await model.unmount(name, false);
          return;
        }
        await actions.unmount(mount);
      })
    });

    commands.addCommand(CommandIDs.commit, {
      label: args =>
        str(args, 'name')
          ? trans.__('Commit Pending Changes of %1…', str(args, 'name') as string)
          : trans.__('Commit Pending Changes of a Mount…'),
      caption: trans.__('Open the commit dialog (args: name, message)'),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            name: { type: 'string', description: trans.__('read-write mount') },
            message: { type: 'string', description: trans.__('prefilled message') }
          }
        }
      },
      execute: guarded(async args => {
        const name =
          str(args, 'name') ??
          (await pickMount(trans.__('Commit which mount?'), m => m.mode === 'rw' && m.pending > 0));
        if (!name) {
          return;
        }
        await showCommitDialog({
          model,
          trans,
          name,
          initialMessage: str(args, 'message'),
          showHistory: (repo, branch, commit) => void showHistory(repo, branch, commit)
        });
      })
    });

    commands.addCommand(CommandIDs.showHistory, {
      label: args =>
        str(args, 'repo')
          ? trans.__('Show History of %1', address(str(args, 'repo') as string, str(args, 'branch') ?? 'master'))
          : trans.__('Show History of a Pachyderm Branch…'),
      caption: trans.__('Commits of repo@branch, newest first (args: repo, branch, commit)'),
      icon: args => (args.isPalette ? undefined : pachydermIcon),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            repo: { type: 'string' },
            branch: { type: 'string', description: trans.__('default master') },
            commit: { type: 'string', description: trans.__('commit to highlight') },
            path: { type: 'string', description: trans.__('only the commits that changed this file') }
          }
        }
      },
      execute: guarded(async args => {
        let repo = str(args, 'repo');
        let branch = str(args, 'branch') ?? 'master';
        if (!repo) {
          const asked = await askRepoBranch(trans.__('History of repo@branch'));
          if (!asked) {
            return;
          }
          ({ repo, branch } = asked);
        }
        const path = str(args, 'path') ?? null;
        const id = historyWidgetId(repo, branch, path);
        let widget = tracker.find(w => w.id === id);
        if (!widget) {
          widget = createHistoryWidget({
            model,
            trans,
            repo,
            branch,
            path,
            pageSize: historyPageSize,
            showHistory: (r, b, c) => void showHistory(r, b, c)
          });
          void tracker.add(widget);
          shell.add(widget, 'main');
        }
        if (!widget.isAttached) {
          // a tab the restorer re-created from saved state while the restored layout left it out
          // (closed before the layout was saved) is tracked but in no area: activating it shows nothing
          shell.add(widget, 'main');
        }
        widget.content.focusCommit(str(args, 'commit') ?? null);
        shell.activateById(widget.id);
        return widget;
      })
    });

    commands.addCommand(CommandIDs.fileHistory, {
      label: trans.__('History of This File'),
      caption: trans.__('The commits that changed a file of a mount (args: path below the Jupyter root)'),
      icon: args => (args.isPalette ? undefined : pachydermIcon),
      isVisible: () => fileBrowser !== null,
      describedBy: {
        args: {
          type: 'object',
          properties: { path: { type: 'string', description: trans.__('file path below the Jupyter root') } }
        }
      },
      execute: guarded(async args => {
        const found = await fileInMount(args, fileBrowser, trans);
        const mount = found.mounts.mounts.find(m => m.name === found.mount);
        if (!mount) {
          throw new Error(trans.__('%1 is no longer mounted.', found.mount));
        }
        if (!mount.branch) {
          throw new Error(trans.__('%1 shows a commit, not a branch: it has no history to follow.', mount.name));
        }
        return commands.execute(CommandIDs.showHistory, {
          repo: mount.repo,
          branch: mount.branch,
          path: found.path
        });
      })
    });
    app.contextMenu.addItem({
      command: CommandIDs.fileHistory,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 59
    });

    // pending changes of read-write mounts: marks in the file browser, a count in the status bar
    if (fileBrowser) {
      decoratePendingChanges(model, fileBrowser, trans);
    }
    if (statusBar) {
      addPendingStatus(app, statusBar, model, trans, name => {
        void commands.execute(CommandIDs.commit, { name });
      });
    }

    if (palette) {
      const category = trans.__('Pachyderm');
      for (const command of [
        CommandIDs.openPanel,
        CommandIDs.refresh,
        CommandIDs.mount,
        CommandIDs.unmount,
        CommandIDs.commit,
        CommandIDs.showHistory
      ]) {
        palette.addItem({ command, category });
      }
    }
  }
};

export default plugin;
