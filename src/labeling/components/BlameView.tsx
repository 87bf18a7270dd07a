import * as React from 'react';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { TranslationBundle } from '@jupyterlab/translation';

import { CommitId, ErrorText, TimeAgo } from '../../components/common';
import { address, firstLine } from '../../format';
import { errorMessage } from '../../state';
import { getBlame, IBlame } from '../api';
import { changedBy, labeledBy } from '../state';

/** Every label commit that changed the label of one data file, newest first. */
export function BlameView(props: {
  trans: TranslationBundle;
  repo: string;
  /** branch or commit of the labels (not `ref`: React reserves that prop) */
  branch: string;
  path: string;
  load?: typeof getBlame;
  showHistory?: (repo: string, branch: string, commit?: string) => void;
}): JSX.Element {
  const { trans } = props;
  const [blame, setBlame] = React.useState<IBlame | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    (props.load ?? getBlame)(props.repo, props.branch, props.path)
      .then(setBlame)
      .catch(reason => setError(errorMessage(reason)));
  }, [props.repo, props.branch, props.path]);

  return (
    <div className="jp-PachlsBlame" data-path={props.path}>
      <div className="jp-PachlsBlame-target">
        {trans.__('Label history of %1 in %2', props.path, address(props.repo, props.branch))}
      </div>
      <ErrorText message={error} trans={trans} />
      {!blame && !error ? <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div> : null}
      {blame && blame.entries.length === 0 ? (
        <div className="jp-PachlsEmpty">{trans.__('No label commit has labeled this file yet.')}</div>
      ) : null}
      {blame && blame.entries.length > 0 ? (
        <table className="jp-PachlsBlame-table">
          <thead>
            <tr>
              <th>{trans.__('Commit')}</th>
              <th>{trans.__('Time')}</th>
              <th>{trans.__('Author')}</th>
              <th title={trans.__('Who created the annotations')}>{trans.__('Labeled by')}</th>
              <th title={trans.__('Who changed the label in this commit')}>{trans.__('Changed by')}</th>
              <th>{trans.__('Labels')}</th>
              <th>{trans.__('Message')}</th>
            </tr>
          </thead>
          <tbody>
            {blame.entries.map(e => (
              <tr key={e.commit} className="jp-PachlsBlame-entry" data-commit={e.commit} data-change={e.change}>
                <td>
                  {props.showHistory ? (
                    <button
                      type="button"
                      className="jp-PachlsLink"
                      title={trans.__('Show commit %1 in the history', e.commit)}
                      onClick={() => props.showHistory?.(props.repo, props.branch, e.commit)}
                    >
                      <CommitId id={e.commit} />
                    </button>
                  ) : (
                    <CommitId id={e.commit} />
                  )}
                </td>
                <td>
                  <TimeAgo iso={e.time} />
                </td>
                <td className="jp-PachlsBlame-author">{e.author}</td>
                <td className="jp-PachlsBlame-annotators">{labeledBy(e).join(', ')}</td>
                <td className="jp-PachlsBlame-changedBy">{changedBy(e).join(', ')}</td>
                <td className="jp-PachlsBlame-labels">
                  {e.change === 'deleted' ? trans.__('(label removed)') : e.labels.join(', ')}
                </td>
                <td title={e.message}>{firstLine(e.message)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}

/** "Who labeled this?" as a dialog. */
export async function showBlameDialog(options: {
  trans: TranslationBundle;
  repo: string;
  branch: string;
  path: string;
  /** the blame, when already read (else read from repo, branch and path) */
  load?: typeof getBlame;
  showHistory?: (repo: string, branch: string, commit?: string) => void;
}): Promise<void> {
  const { trans } = options;
  let dialog: Dialog<unknown> | null = null;
  const showHistory = options.showHistory
    ? (repo: string, branch: string, commit?: string) => {
        dialog?.reject();
        options.showHistory?.(repo, branch, commit);
      }
    : undefined;
  const body = ReactWidget.create(<BlameView {...options} showHistory={showHistory} />);
  body.addClass('jp-PachlsBlameDialog-body');
  dialog = new Dialog({
    title: trans.__('Who labeled %1?', options.path),
    body,
    buttons: [Dialog.okButton({ label: trans.__('Close') })],
    hasClose: true
  });
  dialog.addClass('jp-PachlsBlameDialog');
  await dialog.launch();
  dialog.dispose();
}

/** The end of Label Studio's log, as a dialog. */
export async function showLogDialog(trans: TranslationBundle, log: string): Promise<void> {
  const body = <pre className="jp-PachlsLog">{log || trans.__('(the log is empty)')}</pre>;
  await showDialog({
    title: trans.__('Label Studio log'),
    body,
    buttons: [Dialog.okButton({ label: trans.__('Close') })]
  });
}
