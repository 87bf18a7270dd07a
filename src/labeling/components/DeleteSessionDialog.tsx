import * as React from 'react';
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';

import { ErrorText } from '../../components/common';
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
        <label className="jp-PachlsBackendForm-choice">
          <input
            type="radio"
            name="pachls-delete-project"
            value="keep"
            checked={project === 'keep'}
            onChange={() => setProject('keep')}
          />
          {trans.__('Keep the project in Label Studio')}
        </label>
        <label className="jp-PachlsBackendForm-choice">
          <input
            type="radio"
            name="pachls-delete-project"
            value="delete"
            checked={project === 'delete'}
            onChange={() => setProject('delete')}
          />
          {trans.__('Delete the project and its annotations from Label Studio')}
        </label>
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
        <button
          type="button"
          className="jp-PachlsButton jp-PachlsButton-default"
          disabled={busy}
          onClick={() => props.done(null)}
        >
          {trans.__('Cancel')}
        </button>
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
  const { trans } = options;
  return new Promise(resolve => {
    let result: IDeleteSessionResult | null = null;
    let dialog: Dialog<unknown> | null = null;
    const done = (answer: IDeleteSessionResult | null) => {
      result = answer;
      dialog?.reject();
    };
    const body = ReactWidget.create(<DeleteSessionForm {...options} done={done} />);
    body.addClass('jp-PachlsDeleteSessionDialog-body');
    dialog = new Dialog({
      title: trans.__('Delete labeling session %1?', options.session.title),
      body,
      buttons: [],
      hasClose: true
    });
    dialog.addClass('jp-PachlsDeleteSessionDialog');
    void dialog.launch().then(() => {
      dialog?.dispose();
      resolve(result);
    });
  });
}
