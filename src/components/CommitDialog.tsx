import * as React from 'react';
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';

import { IChanges, ICommitResult, mountChanges } from '../api';
import { address } from '../format';
import { PachlsModel } from '../model';
import { conflictPaths, countChanges, errorMessage } from '../state';
import { ChangeList, CloseButton, Committed, ErrorText } from './common';

type Phase =
  | { kind: 'edit' }
  | { kind: 'committing' }
  | { kind: 'done'; result: ICommitResult }
  | { kind: 'conflict'; message: string; paths: string[] };

export interface ICommitFormProps {
  model: PachlsModel;
  trans: TranslationBundle;
  name: string;
  initialMessage?: string;
  close: () => void;
  showHistory: (repo: string, branch: string, commit?: string) => void;
  loadChanges?: (name: string) => Promise<IChanges>;
}

/** Message, what will be committed, progress, result or conflict. */
export function CommitForm(props: ICommitFormProps): JSX.Element {
  const { model, trans, name } = props;
  const [changes, setChanges] = React.useState<IChanges | null>(null);
  const [loadError, setLoadError] = React.useState<string | null>(null);
  const [message, setMessage] = React.useState(props.initialMessage ?? '');
  const [touched, setTouched] = React.useState(false);
  const [phase, setPhase] = React.useState<Phase>({ kind: 'edit' });
  const [error, setError] = React.useState<string | null>(null);
  const messageRef = React.useRef<HTMLTextAreaElement>(null);
  const mount = model.mount(name);

  React.useEffect(() => {
    (props.loadChanges ?? mountChanges)(name)
      .then(setChanges)
      .catch(reason => setLoadError(errorMessage(reason)));
    messageRef.current?.focus();
  }, [name]);

  const count = changes ? countChanges(changes.changes) : null;
  const empty = !message.trim();

  const submit = async () => {
    setTouched(true);
    if (empty) {
      messageRef.current?.focus();
      return;
    }
    setError(null);
    setPhase({ kind: 'committing' });
    try {
      const result = await model.commit(name, message.trim());
      setPhase({ kind: 'done', result });
    } catch (reason) {
      const paths = conflictPaths(reason);
      if (paths && paths.length > 0) {
        setPhase({ kind: 'conflict', message: errorMessage(reason), paths });
      } else {
        setError(errorMessage(reason));
        setPhase({ kind: 'edit' });
      }
    }
  };

  const target = mount ? address(mount.repo, mount.branch ?? mount.commit) : name;

  if (phase.kind === 'done') {
    const commit = phase.result.commit;
    return (
      <Committed
        heading={trans.__('Committed to %1:', address(commit.repo, commit.branch))}
        commit={commit}
        className="jp-PachlsCommitForm"
        trans={trans}
        close={props.close}
        showHistory={props.showHistory}
      />
    );
  }

  if (phase.kind === 'conflict') {
    return (
      <div className="jp-PachlsCommitForm" data-phase="conflict">
        <ErrorText message={phase.message} trans={trans} />
        <div>
          {trans.__(
            'Commits that landed on the branch since this mount was made changed the same paths. Nothing was committed; your changes are kept in the mount.'
          )}
        </div>
        <ul className="jp-PachlsConflicts" aria-label={trans.__('Conflicting paths')}>
          {phase.paths.map(p => (
            <li key={p} className="jp-PachlsConflict">
              {p}
            </li>
          ))}
        </ul>
        <div className="jp-PachlsDialog-buttons">
          <CloseButton close={props.close} trans={trans} />
        </div>
      </div>
    );
  }

  const committing = phase.kind === 'committing';
  return (
    <form
      className="jp-PachlsCommitForm"
      data-phase={phase.kind}
      noValidate
      onSubmit={e => {
        e.preventDefault();
        void submit();
      }}
    >
      <div className="jp-PachlsCommitForm-target">
        {trans.__('One commit on %1', target)}
      </div>
      <label className="jp-PachlsCommitForm-label" htmlFor="jp-pachls-commit-message">
        {trans.__('Message (required)')}
      </label>
      <textarea
        id="jp-pachls-commit-message"
        ref={messageRef}
        className="jp-PachlsInput jp-PachlsCommitForm-message"
        rows={3}
        required
        aria-required="true"
        aria-invalid={touched && empty}
        disabled={committing}
        value={message}
        placeholder={trans.__('What changed, and why')}
        onChange={e => setMessage(e.target.value)}
        onKeyDown={e => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            void submit();
          }
        }}
      />
      {touched && empty ? (
        <div className="jp-PachlsFieldError" role="alert">
          {trans.__('A commit message is required.')}
        </div>
      ) : null}
      <div className="jp-PachlsCommitForm-label">
        {count
          ? trans.__(
              'Will be committed: %1 added, %2 modified, %3 deleted',
              count.added,
              count.modified,
              count.deleted
            )
          : trans.__('Will be committed:')}
      </div>
      <div className="jp-PachlsCommitForm-changes">
        <ErrorText message={loadError} trans={trans} />
        {changes ? (
          <ChangeList
            changes={changes.changes}
            trans={trans}
            emptyText={trans.__('Nothing is staged.')}
          />
        ) : loadError ? null : (
          <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div>
        )}
      </div>
      {committing ? (
        <div className="jp-PachlsCommitForm-progress" role="status">
          <progress className="jp-PachlsProgress" aria-label={trans.__('Committing')} />
          {trans.__('Committing…')}
        </div>
      ) : null}
      <ErrorText message={error} trans={trans} />
      <div className="jp-PachlsDialog-buttons">
        <button
          type="button"
          className="jp-PachlsButton jp-PachlsButton-default"
          onClick={props.close}
          disabled={committing}
        >
          {trans.__('Cancel')}
        </button>
        <button
          type="submit"
          className="jp-PachlsButton jp-PachlsButton-accept jp-PachlsCommitForm-submit"
          disabled={committing || (changes !== null && changes.changes.length === 0)}
        >
          {count
            ? trans._n('Commit %1 change', 'Commit %1 changes', count.total)
            : trans.__('Commit')}
        </button>
      </div>
    </form>
  );
}

/** Open the commit dialog of mount `name`; resolves when it is closed. */
export async function showCommitDialog(
  options: Omit<ICommitFormProps, 'close'>
): Promise<void> {
  const { trans } = options;
  let dialog: Dialog<unknown> | null = null;
  const close = () => dialog?.reject();
  const body = ReactWidget.create(<CommitForm {...options} close={close} />);
  body.addClass('jp-PachlsCommitDialog-body');
  dialog = new Dialog({
    title: trans.__('Commit %1', options.name),
    body,
    buttons: [],
    hasClose: true,
    focusNodeSelector: 'textarea'
  });
  dialog.addClass('jp-PachlsCommitDialog');
  await dialog.launch();
  dialog.dispose();
}

