import * as React from 'react';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { historyIcon, ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';

import { HistoryView } from '../components/HistoryView';
import { address } from '../format';
import { PachlsModel } from '../model';

/** The history view of one branch, in the main area. */
export class HistoryContent extends ReactWidget {
  constructor(
    private readonly _options: {
      model: PachlsModel;
      trans: TranslationBundle;
      repo: string;
      branch: string;
      /** only the commits that changed this file */
      path?: string | null;
      pageSize: number;
      showHistory: (repo: string, branch: string, commit?: string) => void;
    }
  ) {
    super();
    this.addClass('jp-PachlsHistoryContent');
  }

  get repo(): string {
    return this._options.repo;
  }

  get branch(): string {
    return this._options.branch;
  }

  /** The file whose history this is ('' for the whole branch). */
  get path(): string {
    return this._options.path ?? '';
  }

  /** Highlight a commit (and scroll to it). */
  focusCommit(id: string | null): void {
    this._focus = id;
    this._focusChanged.emit(id);
  }

  protected render(): JSX.Element {
    const o = this._options;
    return (
      <UseSignal signal={this._focusChanged} initialArgs={this._focus}>
        {(_, focus) => (
          <HistoryView
            model={o.model}
            trans={o.trans}
            repo={o.repo}
            branch={o.branch}
            pageSize={o.pageSize}
            path={o.path ?? null}
            focus={focus ?? null}
            showHistory={o.showHistory}
          />
        )}
      </UseSignal>
    );
  }

  private _focus: string | null = null;
  private _focusChanged = new Signal<this, string | null>(this);
}

/** Id of the history widget of `repo@branch` (or of one file on it). */
export function historyWidgetId(repo: string, branch: string, path?: string | null): string {
  const id = `jp-pachls-history-${encodeURIComponent(repo)}-${encodeURIComponent(branch)}`;
  return path ? `${id}-${encodeURIComponent(path)}` : id;
}

export function createHistoryWidget(
  options: ConstructorParameters<typeof HistoryContent>[0]
): MainAreaWidget<HistoryContent> {
  const content = new HistoryContent(options);
  const widget = new MainAreaWidget({ content });
  widget.id = historyWidgetId(options.repo, options.branch, options.path);
  const where = address(options.repo, options.branch);
  widget.title.label = options.path
    ? options.trans.__('History: %1 in %2', options.path.slice(options.path.lastIndexOf('/') + 1), where)
    : options.trans.__('History: %1', where);
  widget.title.caption = options.path ? `${where}:${options.path}` : where;
  widget.title.icon = historyIcon;
  widget.title.closable = true;
  widget.addClass('jp-PachlsHistoryWidget');
  return widget;
}
