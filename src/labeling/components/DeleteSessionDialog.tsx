import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { CancelButton, ErrorText, RadioChoice } from '../../components/common';
import { showFormDialog } from '../../components/FormDialog';
import { errorMessage } from '../../state';
import { IDeleteSessionResult, ISession, ProjectFate } from '../api';
import { LabelingModel } from '../model';
import { deleteSessionText, pendingLabelsOf } from '../state';

export interface IDeleteSessionFormProps {
  model: LabelingModel;
  trans: TranslationBundle;
  session: ISession;
  /** Called with the server's answer, or null when cancelled. */
  done: (result: IDeleteSessionResult | null) => void;
}

/**
 * What deleting a session does (the Label Studio project kept or deleted, the
 * user's choice; committed labels stay), then the delete. Labels not yet
 * committed stop it (409 `pending_labels`) until the user deletes anyway.
 */
export function DeleteSessionForm(props: IDeleteSessionFormProps): JSX.Element {
  const { model, trans, session } = props;
  const [project, setProject] = React.useState<ProjectFate>('keep');
  const [busy, setBusy] = React.useState(false);
  const [pending, setPending] = React.useState<number | null>(null);
  const [error, setError] = React.useState<string | null>(null);

  const remove = async (force: boolean) => {
    setBusy(true);
    setError(null);
    try {
      props.done(await model.deleteSession(session.id, { project, force }));
    } catch (reason) {
      const count = pendingLabelsOf(reason);
      if (count !== null) {
        setPending(count);
      } else {
        setError(errorMessage(reason));
      }
      setBusy(false);
    }
  };

  const lines = deleteSessionText(trans, session, project);
  return (
    <form
      className="jp-PachlsForm jp-PachlsDeleteSession"
      aria-label={trans.__('Delete labeling session')}
      data-pending={pending ?? ''}
      noValidate
      onSubmit={e => {
        e.preventDefault();
        void remove(pending !== null);
      }}
    >
      <fieldset disabled={busy} className="jp-PachlsDeleteSession-project">
        <legend>{trans.__('Label Studio project %1', session.project_id)}</legend>
        <RadioChoice name="pachls-delete-project" value="keep" selected={project} select={setProject}>
          {trans.__('Keep the project in Label Studio')}
        </RadioChoice>
        <RadioChoice name="pachls-delete-project" value="delete" selected={project} select={setProject}>
          {trans.__('Delete the project and its annotations from Label Studio')}
        </RadioChoice>
      </fieldset>
      <ul className="jp-PachlsDeleteSession-what" aria-label={trans.__('What happens')}>
        {lines.map(line => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      {pending !== null ? (
        <div className="jp-PachlsWarning jp-PachlsDeleteSession-pending" role="alert">
          {trans._n(
            '%1 label change of this session is not committed. Commit it first to keep it in history; deleting anyway leaves it out of the history for good.',
            '%1 label changes of this session are not committed. Commit them first to keep them in history; deleting anyway leaves them out of the history for good.',
            pending
          )}
        </div>
      ) : null}
      <ErrorText message={error} trans={trans} />
      <div className="jp-PachlsDialog-buttons">
        <CancelButton cancel={() => props.done(null)} disabled={busy} trans={trans} />
        <button
          type="submit"
          className="jp-PachlsButton jp-PachlsButton-warn jp-PachlsDeleteSession-confirm"
          disabled={busy}
        >
          {busy
            ? trans.__('Deleting…')
            : pending !== null
              ? trans.__('Delete anyway')
              : trans.__('Delete session')}
        </button>
      </div>
    </form>
  );
}

/** Ask, then delete a session; resolves with the answer, or null when cancelled. */
export function showDeleteSessionDialog(
  options: Omit<IDeleteSessionFormProps, 'done'>
): Promise<IDeleteSessionResult | null> {
  return showFormDialog<IDeleteSessionResult | null>({
    title: options.trans.__('Delete labeling session %1?', options.session.title),
    classes: ['jp-PachlsDeleteSessionDialog'],
    dismissed: null,
    render: done => <DeleteSessionForm {...options} done={done} />
  });
}
