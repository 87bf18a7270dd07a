import * as React from 'react';
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';

import { ICommit } from '../../api';
import {
  ChangeList,
  CloseButton,
  Committed,
  ErrorText
} from '../../components/common';
import { address } from '../../format';
import { conflictPaths, errorMessage } from '../../state';
import { IPending, ISession } from '../api';
import { LabelingModel } from '../model';
import { changedBy, commitButtonText, isNothingToCommit, pendingChanges } from '../state';
import { ResyncForm } from './ResyncDialog';

type Phase =
  | { kind: 'edit' }
  | { kind: 'committing' }
  | { kind: 'done'; commit: ICommit }
  | { kind: 'conflict'; message: string; paths: string[] }
  | { kind: 'resync'; reason: string };

export interface ILabelCommitFormProps {
  model: LabelingModel;
  trans: TranslationBundle;
  session: ISession;
  close: () => void;
  showHistory: (repo: string, branch: string, commit?: string) => void;
}

/** Message, the label files that will change, progress, the new commit or the conflict. */
export function LabelCommitForm(props: ILabelCommitFormProps): JSX.Element {
  const { model, trans, session } = props;
  const [pending, setPending] = React.useState<IPending | null>(null);
  const [loadError, setLoadError] = React.useState<string | null>(null);
  const [message, setMessage] = React.useState('');
  const [touched, setTouched] = React.useState(false);
  const [phase, setPhase] = React.useState<Phase>({ kind: 'edit' });
  const [error, setError] = React.useState<string | null>(null);
  const messageRef = React.useRef<HTMLTextAreaElement>(null);

  React.useEffect(() => {
    model
      .refreshPending(session.id)
      .then(p => {
        if (p) {
          setPending(p);
        } else {
          setLoadError(model.state.pendingErrors[session.id] ?? trans.__('Cannot read the pending labels.'));
        }
      })
      .catch(reason => setLoadError(errorMessage(reason)));
    messageRef.current?.focus();
  }, [session.id]);

  const empty = !message.trim();
  const nothing = pending !== null && pending.count === 0;

  const submit = async () => {
    setTouched(true);
    if (empty) {
      messageRef.current?.focus();
      return;
    }
    setError(null);
    setPhase({ kind: 'committing' });
    try {
      const commit = await model.commit(session.id, message.trim());
      setPhase({ kind: 'done', commit });
    } catch (reason) {
      const paths = conflictPaths(reason);
      if (paths && paths.length > 0) {
        setPhase({ kind: 'conflict', message: errorMessage(reason), paths });
      } else {
        setError(
          isNothingToCommit(reason)
            ? trans.__('Nothing to commit: no annotation changed since the last label commit.')
            : errorMessage(reason)
        );
        setPhase({ kind: 'edit' });
      }
    }
  };

  const target = address(session.labels_repo, session.labels_branch);

  if (phase.kind === 'done') {
    const commit = phase.commit;
    return (
      <Committed
        heading={trans.__('Labels committed to %1:', address(commit.repo, commit.branch))}
        commit={commit}
        className="jp-PachlsCommitForm jp-PachlsLabelCommitForm"
        trans={trans}
        close={props.close}
        showHistory={props.showHistory}
      />
    );
  }

  if (phase.kind === 'resync') {
    return (
      <ResyncForm
        model={model}
        trans={trans}
        session={session}
        reason={phase.reason}
        close={props.close}
      />
    );
  }

  if (phase.kind === 'conflict') {
    return (
      <div className="jp-PachlsCommitForm jp-PachlsLabelCommitForm" data-phase="conflict">
        <ErrorText message={phase.message} trans={trans} />
        <div>
          {trans.__(
            'Commits that landed on %1 meanwhile changed the same label files. Nothing was committed; every annotation is kept in Label Studio and the label files stay staged.',
            target
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
          <button
            type="button"
            className="jp-PachlsButton jp-PachlsButton-default jp-PachlsLabelCommitForm-resync"
            title={trans.__(
              'See what loading the label files of %1 into Label Studio would replace, then decide',
              target
            )}
            onClick={() =>
              setPhase({
                kind: 'resync',
                reason: trans.__(
                  'To keep what landed on %1, load its label files into Label Studio (your conflicting annotations are replaced):',
                  target
                )
              })
            }
          >
            {trans.__('Preview a resync from %1…', target)}
          </button>
          <CloseButton close={props.close} trans={trans} />
        </div>
      </div>
    );
  }

  const committing = phase.kind === 'committing';
  const changes = pending ? pendingChanges(pending) : [];
  return (
    <form
      className="jp-PachlsCommitForm jp-PachlsLabelCommitForm"
      data-phase={phase.kind}
      noValidate
      onSubmit={e => {
        e.preventDefault();
        void submit();
      }}
    >
      <div className="jp-PachlsCommitForm-target">
        {trans.__('One commit on %1, provenance %2', target, address(session.data_repo, session.data_commit.slice(0, 8)))}
      </div>
      <label className="jp-PachlsCommitForm-label" htmlFor="jp-pachls-label-commit-message">
        {trans.__('Message (required)')}
      </label>
      <textarea
        id="jp-pachls-label-commit-message"
        ref={messageRef}
        className="jp-PachlsInput jp-PachlsCommitForm-message"
        rows={3}
        required
        aria-required="true"
        aria-invalid={touched && empty}
        disabled={committing}
        value={message}
        placeholder={trans.__('Which labeling round, what was labeled')}
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
        {pending
          ? trans.__(
              'Label files: %1 added, %2 modified, %3 deleted',
              pending.added.length,
              pending.modified.length,
              pending.deleted.length
            )
          : trans.__('Label files:')}
        {pending && pending.annotators.length
          ? ` — ${trans.__('labeled by: %1', pending.annotators.join(', '))}`
          : ''}
        {pending && changedBy(pending).length
          ? ` — ${trans.__('changed by: %1', changedBy(pending).join(', '))}`
          : ''}
      </div>
      <div className="jp-PachlsCommitForm-changes">
        <ErrorText message={loadError} trans={trans} />
        {pending ? (
          <ChangeList
            changes={changes}
            trans={trans}
            emptyText={trans.__(
              'Nothing to commit: no annotation changed since the last label commit.'
            )}
          />
        ) : loadError ? null : (
          <div className="jp-PachlsEmpty">{trans.__('Reading the annotations…')}</div>
        )}
      </div>
      {committing ? (
        <div className="jp-PachlsCommitForm-progress" role="status">
          <progress className="jp-PachlsProgress" aria-label={trans.__('Committing')} />
          {trans.__('Writing label files and committing…')}
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
          disabled={committing || nothing}
        >
          {commitButtonText(trans, pending ? pending.count : null)}
        </button>
      </div>
    </form>
  );
}

/** Open the label commit dialog of a session; resolves when it is closed. */
export async function showLabelCommitDialog(
  options: Omit<ILabelCommitFormProps, 'close'>
): Promise<void> {
  const { trans } = options;
  let dialog: Dialog<unknown> | null = null;
  const close = () => dialog?.reject();
  const body = ReactWidget.create(<LabelCommitForm {...options} close={close} />);
  body.addClass('jp-PachlsCommitDialog-body');
  dialog = new Dialog({
    title: trans.__('Commit labels of %1', options.session.title),
    body,
    buttons: [],
    hasClose: true,
    focusNodeSelector: 'textarea'
  });
  dialog.addClass('jp-PachlsCommitDialog');
  dialog.addClass('jp-PachlsLabelCommitDialog');
  await dialog.launch();
  dialog.dispose();
}
