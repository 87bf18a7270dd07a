import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { CommitForm } from '../../components/CommitForm';
import { showFormDialog } from '../../components/FormDialog';
import { address } from '../../format';
import { errorMessage } from '../../state';
import { IPending, ISession } from '../api';
import { LabelingModel } from '../model';
import { changedBy, commitButtonText, isNothingToCommit, pendingChanges } from '../state';
import { ResyncForm } from './ResyncDialog';

export interface ILabelCommitFormProps {
  model: LabelingModel;
  trans: TranslationBundle;
  session: ISession;
  close: () => void;
  showHistory: (repo: string, branch: string, commit?: string) => void;
}

/**
 * The commit form of a labeling session: its pending label files as one
 * commit; after a conflict, a resync from the labels branch can be previewed.
 */
export function LabelCommitForm(props: ILabelCommitFormProps): JSX.Element {
  const { model, trans, session } = props;
  const [pending, setPending] = React.useState<IPending | null>(null);
  const [loadError, setLoadError] = React.useState<string | null>(null);
  /** Why a resync is offered, once the user asked for its preview. */
  const [resyncReason, setResyncReason] = React.useState<string | null>(null);

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
  }, [session.id]);

  const target = address(session.labels_repo, session.labels_branch);

  if (resyncReason !== null) {
    return (
      <ResyncForm model={model} trans={trans} session={session} reason={resyncReason} close={props.close} />
    );
  }

  const nothingToCommit = trans.__('Nothing to commit: no annotation changed since the last label commit.');
  return (
    <CommitForm
      trans={trans}
      className="jp-PachlsLabelCommitForm"
      target={trans.__(
        'One commit on %1, provenance %2',
        target,
        address(session.data_repo, session.data_commit.slice(0, 8))
      )}
      messageId="jp-pachls-label-commit-message"
      placeholder={trans.__('Which labeling round, what was labeled')}
      summary={
        <>
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
        </>
      }
      changes={pending ? pendingChanges(pending) : null}
      loadError={loadError}
      emptyText={nothingToCommit}
      loadingText={trans.__('Reading the annotations…')}
      progressText={trans.__('Writing label files and committing…')}
      submitText={commitButtonText(trans, pending ? pending.count : null)}
      canSubmit={pending === null || pending.count > 0}
      commit={message => model.commit(session.id, message)}
      describeError={reason => (isNothingToCommit(reason) ? nothingToCommit : errorMessage(reason))}
      committedHeading={commit => trans.__('Labels committed to %1:', address(commit.repo, commit.branch))}
      conflictText={trans.__(
        'Commits that landed on %1 meanwhile changed the same label files. Nothing was committed; every annotation is kept in Label Studio and the label files stay staged.',
        target
      )}
      conflictActions={
        <button
          type="button"
          className="jp-PachlsButton jp-PachlsButton-default jp-PachlsLabelCommitForm-resync"
          title={trans.__(
            'See what loading the label files of %1 into Label Studio would replace, then decide',
            target
          )}
          onClick={() =>
            setResyncReason(
              trans.__(
                'To keep what landed on %1, load its label files into Label Studio (your conflicting annotations are replaced):',
                target
              )
            )
          }
        >
          {trans.__('Preview a resync from %1…', target)}
        </button>
      }
      close={props.close}
      showHistory={props.showHistory}
    />
  );
}

/** Open the label commit dialog of a session; resolves when it is closed. */
export async function showLabelCommitDialog(
  options: Omit<ILabelCommitFormProps, 'close'>
): Promise<void> {
  await showFormDialog<void>({
    title: options.trans.__('Commit labels of %1', options.session.title),
    classes: ['jp-PachlsCommitDialog', 'jp-PachlsLabelCommitDialog'],
    focusNodeSelector: 'textarea',
    dismissed: undefined,
    render: done => <LabelCommitForm {...options} close={() => done()} />
  });
}
