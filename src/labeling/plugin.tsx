import * as React from 'react';
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  MainAreaWidget,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { fileInMount, guardedBy, pickOne, str } from '../commands';
import { PachlsModel } from '../model';
import { errorMessage } from '../state';
import { PachydermSidebar } from '../widgets/PachydermSidebar';
import { onVisibilityChange } from '../widgets/visibility';
import { getBlameInMount, getLabelStudioLog, ISession, labeledPaths } from './api';
import { showBlameDialog, showLogDialog } from './components/BlameView';
import { showDeleteSessionDialog } from './components/DeleteSessionDialog';
import { showResyncDialog } from './components/ResyncDialog';
import { showLabelCommitDialog } from './components/LabelCommitDialog';
import { ILabelingActions, LabelingSection } from './components/LabelingSection';
import { labelingIcon } from './icons';
import { LabelingModel } from './model';
import { parseClasses } from './state';
import { createLabelingWidget, LabelingContent, labelingWidgetId } from './widget';

export namespace LabelingCommandIDs {
  export const newSession = 'pachls:new-labeling-session';
  export const open = 'pachls:open-labeling';
  export const commit = 'pachls:commit-labels';
  export const whoLabeled = 'pachls:who-labeled';
  export const resync = 'pachls:resync-labels';
  export const deleteSession = 'pachls:delete-labeling-session';
}

export interface ILabelingOptions {
  app: JupyterFrontEnd;
  sidebar: PachydermSidebar;
  panel: PachlsModel;
  trans: TranslationBundle;
  restorer: ILayoutRestorer | null;
  palette: ICommandPalette | null;
  fileBrowser: IDefaultFileBrowser | null;
  showHistory: (repo: string, branch: string, commit?: string) => Promise<void>;
}

/** The `args` of a command on one session. */
const SESSION_ARGS = {
  args: { type: 'object', properties: { sessionId: { type: 'string' } } }
};

/** The Labeling section, the labeling tabs and their commands. */
export function activateLabeling(options: ILabelingOptions): LabelingModel {
  const { app, sidebar, panel, trans, restorer, palette, fileBrowser } = options;
  const { commands, shell } = app;
  const model = new LabelingModel();
  const baseUrl = PageConfig.getBaseUrl();
  const tracker = new WidgetTracker<MainAreaWidget<LabelingContent>>({
    namespace: 'pachls-labeling'
  });

  model.committed.connect((_, commit) => panel.notifyRepoChanged(commit.repo));
  model.sessionDeleted.connect((_, id) => {
    tracker.find(w => w.content.sessionId === id)?.dispose();
    void panel.refreshMounts();
  });

  const showHistory = (repo: string, branch: string, commit?: string) =>
    void options.showHistory(repo, branch, commit);

  const pickSession = async (title: string): Promise<ISession | undefined> => {
    await model.refresh();
    const sessions = model.sessions;
    const current = tracker.currentWidget?.content.sessionId;
    const items = sessions.map(s => `${s.title} (${s.id})`);
    const picked = await pickOne(title, items, {
      empty: model.state.error ?? trans.__('There is no labeling session yet.'),
      current: Math.max(0, sessions.findIndex(s => s.id === current))
    });
    return picked === undefined ? undefined : sessions[items.indexOf(picked)];
  };

  const findSession = async (id: string): Promise<ISession> => {
    let session = model.session(id);
    if (!session) {
      await model.refresh();
      session = model.session(id);
    }
    if (!session) {
      throw new Error(trans.__('There is no labeling session %1 on this server.', id));
    }
    return session;
  };

  /** The session a command acts on: its argument, the current tab's, or the one the user picks. */
  const targetSession = async (
    args: ReadonlyPartialJSONObject,
    question: string
  ): Promise<ISession | undefined> => {
    const id =
      str(args, 'sessionId') ??
      tracker.currentWidget?.content.sessionId ??
      (await pickSession(question))?.id;
    return id ? findSession(id) : undefined;
  };

  const showLog = async () => {
    const { log } = await getLabelStudioLog();
    await showLogDialog(trans, log);
  };

  const blame = async (session: ISession, path?: string) => {
    let target = path;
    if (!target) {
      // pick among the files that have labels; another path may still be typed
      const items = await labeledPaths(session.labels_repo, session.labels_branch).catch(() => []);
      const result = await InputDialog.getItem({
        title: trans.__('Who labeled which file of %1?', session.title),
        label: items.length
          ? trans.__('Labeled file (%1 in %2)', items.length, session.labels_repo)
          : trans.__('Data file path (no file has labels yet)'),
        items,
        editable: true,
        placeholder: trans.__('pick or type a path, e.g. /cats/001.png')
      });
      if (!result.button.accept || !result.value) {
        return;
      }
      target = result.value.trim();
      if (!target.startsWith('/')) {
        target = `/${target}`;
      }
    }
    await showBlameDialog({
      trans,
      repo: session.labels_repo,
      branch: session.labels_branch,
      path: target,
      showHistory
    });
  };

  const actions: ILabelingActions = {
    open: async id => {
      await commands.execute(LabelingCommandIDs.open, { sessionId: id });
    },
    commit: async id => {
      await commands.execute(LabelingCommandIDs.commit, { sessionId: id });
    },
    blame,
    showLog,
    resync: async id => {
      await commands.execute(LabelingCommandIDs.resync, { sessionId: id });
    },
    remove: async id => {
      await commands.execute(LabelingCommandIDs.deleteSession, { sessionId: id });
    }
  };

  const section = new LabelingSectionWidget(model, panel, trans, actions);
  sidebar.addLabelingWidget(section);

  if (restorer) {
    void restorer.restore(tracker, {
      command: LabelingCommandIDs.open,
      args: w => ({ sessionId: w.content.sessionId }),
      name: w => w.content.sessionId
    });
  }

  const guarded = guardedBy(trans.__('Labeling'));

  commands.addCommand(LabelingCommandIDs.newSession, {
    label: trans.__('New Labeling Session…'),
    caption: trans.__(
      'Label repo@branch in Label Studio (args: data, labels, glob, template, classes, xml)'
    ),
    icon: args => (args.isPalette ? undefined : labelingIcon),
    describedBy: {
      args: {
        type: 'object',
        properties: {
          data: { type: 'string', description: trans.__('data, e.g. images@master') },
          labels: { type: 'string', description: trans.__('label target (default labels@master)') },
          glob: { type: 'string', description: trans.__('path glob, e.g. /cats/*.png') },
          template: { type: 'string' },
          classes: { type: 'string', description: trans.__('comma-separated classes') },
          xml: { type: 'string', description: trans.__('custom Label Studio XML') }
        }
      }
    },
    execute: guarded(async args => {
      const data = str(args, 'data');
      if (!data) {
        // the form in the sidebar
        shell.activateById(sidebar.id);
        model.requestNewSession();
        return;
      }
      const xml = str(args, 'xml');
      const session = await model.createSession({
        data,
        labels: str(args, 'labels') ?? 'labels@master',
        ...(str(args, 'glob') ? { glob: str(args, 'glob') } : {}),
        ...(xml
          ? { xml }
          : {
              template: str(args, 'template') ?? 'image-classification',
              classes: parseClasses(str(args, 'classes') ?? '')
            })
      });
      await commands.execute(LabelingCommandIDs.open, { sessionId: session.id });
      return session;
    })
  });

  commands.addCommand(LabelingCommandIDs.open, {
    label: args =>
      str(args, 'sessionId')
        ? trans.__('Open Labeling Session %1', model.session(str(args, 'sessionId') as string)?.title ?? str(args, 'sessionId') as string)
        : trans.__('Open a Labeling Session…'),
    caption: trans.__('Label Studio for a session in a tab (args: sessionId)'),
    icon: args => (args.isPalette ? undefined : labelingIcon),
    describedBy: SESSION_ARGS,
    execute: guarded(async args => {
      const id = str(args, 'sessionId') ?? (await pickSession(trans.__('Open which session?')))?.id;
      if (!id) {
        return;
      }
      let widget = tracker.find(w => w.content.sessionId === id);
      if (!widget) {
        const title = model.session(id)?.title ?? id;
        widget = createLabelingWidget({
          model,
          trans,
          sessionId: id,
          baseUrl,
          title,
          showLog: () => void showLog().catch(reason => showErrorMessage(trans.__('Labeling'), errorMessage(reason))),
          commit: () => void commands.execute(LabelingCommandIDs.commit, { sessionId: id }),
          resync: () => void commands.execute(LabelingCommandIDs.resync, { sessionId: id }),
          remove: () => void commands.execute(LabelingCommandIDs.deleteSession, { sessionId: id })
        });
        widget.id = labelingWidgetId(id);
        void tracker.add(widget);
        shell.add(widget, 'main');
        const content = widget.content;
        void content.load().then(() => {
          const session = model.session(id);
          if (session && widget) {
            widget.title.label = trans.__('Label: %1', session.title);
            widget.title.caption = session.title;
          }
        });
      }
      if (!widget.isAttached) {
        // a tab the restorer re-created from saved state while the restored layout left it out
        // (closed before the layout was saved) is tracked but in no area: activating it shows nothing
        shell.add(widget, 'main');
      }
      shell.activateById(widget.id);
      return widget;
    })
  });

  commands.addCommand(LabelingCommandIDs.commit, {
    label: args => {
      const id = str(args, 'sessionId');
      if (!id) {
        return trans.__('Commit Labels of a Labeling Session…');
      }
      const pending = model.state.pending[id];
      return pending
        ? trans.__('Commit labels (%1 pending)', pending.count)
        : trans.__('Commit labels');
    },
    caption: trans.__('One label commit of the pending annotations (args: sessionId)'),
    describedBy: SESSION_ARGS,
    execute: guarded(async args => {
      const session = await targetSession(args, trans.__('Commit the labels of which session?'));
      if (!session) {
        return;
      }
      await showLabelCommitDialog({ model, trans, session, showHistory });
    })
  });

  commands.addCommand(LabelingCommandIDs.resync, {
    label: args =>
      str(args, 'sessionId')
        ? trans.__('Resync Labels…')
        : trans.__('Resync Labels of a Labeling Session…'),
    caption: trans.__(
      'Preview, then load the label files of a commit back into Label Studio (args: sessionId, ref)'
    ),
    describedBy: {
      args: {
        type: 'object',
        properties: {
          sessionId: { type: 'string' },
          ref: { type: 'string', description: trans.__('branch or commit of the labels repo') }
        }
      }
    },
    execute: guarded(async args => {
      const session = await targetSession(args, trans.__('Resync the labels of which session?'));
      if (!session) {
        return;
      }
      await showResyncDialog({ model, trans, session, initialRef: str(args, 'ref') });
    })
  });

  commands.addCommand(LabelingCommandIDs.deleteSession, {
    label: args =>
      str(args, 'sessionId')
        ? trans.__('Delete Labeling Session…')
        : trans.__('Delete a Labeling Session…'),
    caption: trans.__('Delete a session; its Label Studio project kept or deleted (args: sessionId)'),
    describedBy: SESSION_ARGS,
    execute: guarded(async args => {
      const session = await targetSession(args, trans.__('Delete which session?'));
      if (!session) {
        return;
      }
      return showDeleteSessionDialog({ model, trans, session });
    })
  });

  commands.addCommand(LabelingCommandIDs.whoLabeled, {
    label: trans.__('Who Labeled This?'),
    caption: trans.__('Label commits, annotators and labels of a data file (args: path)'),
    icon: args => (args.isPalette ? undefined : labelingIcon),
    isVisible: () => fileBrowser !== null,
    describedBy: {
      args: {
        type: 'object',
        properties: { path: { type: 'string', description: trans.__('file path below the Jupyter root') } }
      }
    },
    execute: guarded(async args => {
      const found = await fileInMount(args, fileBrowser, trans);
      // any mount of the labeled data: the server names the session and its labels branch
      const answer = await getBlameInMount(found.mount, found.path);
      await showBlameDialog({
        trans,
        repo: answer.repo,
        branch: answer.ref,
        path: found.path,
        load: () => Promise.resolve(answer),
        showHistory
      });
    })
  });

  app.contextMenu.addItem({
    command: LabelingCommandIDs.whoLabeled,
    selector: '.jp-DirListing-item[data-isdir="false"]',
    rank: 60
  });

  if (palette) {
    const category = trans.__('Pachyderm');
    for (const command of [
      LabelingCommandIDs.newSession,
      LabelingCommandIDs.open,
      LabelingCommandIDs.commit,
      LabelingCommandIDs.resync,
      LabelingCommandIDs.deleteSession
    ]) {
      palette.addItem({ command, category });
    }
  }

  return model;
}

/** The Labeling section in the sidebar; polling runs only while it is visible. */
export class LabelingSectionWidget extends ReactWidget {
  constructor(
    readonly model: LabelingModel,
    private readonly _panel: PachlsModel,
    private readonly _trans: TranslationBundle,
    private readonly _actions: ILabelingActions
  ) {
    super();
    this.addClass('jp-PachlsLabelingSection');
    onVisibilityChange(this, visible => (model.visible = visible));
  }

  protected render(): JSX.Element {
    return (
      <LabelingSection
        labeling={this.model}
        panel={this._panel}
        trans={this._trans}
        actions={this._actions}
      />
    );
  }
}
