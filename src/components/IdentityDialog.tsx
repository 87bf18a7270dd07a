import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { IIdentity } from '../api';
import { AskIdentity, authorText, IdentityFormErrors, validateIdentity } from '../identity';
import { errorMessage } from '../state';
import { CancelButton, ErrorText } from './common';
import { showFormDialog } from './FormDialog';

export interface IIdentityFormProps {
  trans: TranslationBundle;
  current: IIdentity | null;
  reason: string | null;
  save: (name: string, email: string) => Promise<IIdentity>;
  /** Called with the saved identity, or null when cancelled. */
  done: (identity: IIdentity | null) => void;
}

/** Name and email that commits, rollbacks and label rounds are recorded with. */
export function IdentityForm(props: IIdentityFormProps): JSX.Element {
  const { trans, current } = props;
  const [name, setName] = React.useState(current?.name ?? '');
  const [email, setEmail] = React.useState(current?.email ?? '');
  const [errors, setErrors] = React.useState<IdentityFormErrors>({});
  const [touched, setTouched] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [serverError, setServerError] = React.useState<string | null>(null);

  const submit = async () => {
    setTouched(true);
    const found = validateIdentity(trans, name, email);
    setErrors(found);
    if (found.name || found.email) {
      return;
    }
    setBusy(true);
    setServerError(null);
    try {
      props.done(await props.save(name.trim(), email.trim()));
    } catch (reason) {
      setServerError(errorMessage(reason));
      setBusy(false);
    }
  };

  // Jupyter's login names the person: only the email is theirs to give.
  const fromJupyter = current?.source === 'jupyter';
  const preview = authorText({ name: name.trim(), email: email.trim() });
  return (
    <form
      className="jp-PachlsForm jp-PachlsIdentityForm"
      aria-label={trans.__('Who commits are recorded as')}
      noValidate
      onSubmit={e => {
        e.preventDefault();
        void submit();
      }}
    >
      {props.reason ? (
        <div className="jp-PachlsIdentityForm-reason" role="status">
          {props.reason}
        </div>
      ) : null}
      <div className="jp-PachlsIdentityForm-hint">
        {trans.__(
          'Commits, rollbacks and label rounds are written into the history with this name and email, for good. Nothing is committed under a made-up name.'
        )}
      </div>
      <label className="jp-PachlsForm-label">
        {trans.__('Name')}
        <input
          className="jp-PachlsInput jp-PachlsIdentityForm-name"
          value={name}
          autoFocus={!fromJupyter}
          readOnly={fromJupyter}
          title={fromJupyter ? trans.__('Your name comes from your Jupyter login.') : undefined}
          disabled={busy}
          aria-invalid={!!errors.name}
          placeholder={trans.__('Ada Lovelace')}
          onChange={e => {
            setName(e.target.value);
            if (touched) {
              setErrors(validateIdentity(trans, e.target.value, email));
            }
          }}
        />
      </label>
      {errors.name ? (
        <div className="jp-PachlsFieldError" role="alert">
          {errors.name}
        </div>
      ) : null}
      <label className="jp-PachlsForm-label">
        {trans.__('Email')}
        <input
          type="email"
          className="jp-PachlsInput jp-PachlsIdentityForm-email"
          value={email}
          autoFocus={fromJupyter}
          disabled={busy}
          aria-invalid={!!errors.email}
          placeholder="ada@example.org"
          onChange={e => {
            setEmail(e.target.value);
            if (touched) {
              setErrors(validateIdentity(trans, name, e.target.value));
            }
          }}
        />
      </label>
      {errors.email ? (
        <div className="jp-PachlsFieldError" role="alert">
          {errors.email}
        </div>
      ) : null}
      {preview ? (
        <div className="jp-PachlsIdentityForm-preview">
          {trans.__('Commits will read: %1', preview)}
        </div>
      ) : null}
      <ErrorText message={serverError} trans={trans} />
      <div className="jp-PachlsDialog-buttons">
        <CancelButton cancel={() => props.done(null)} disabled={busy} trans={trans} />
        <button
          type="submit"
          className="jp-PachlsButton jp-PachlsButton-accept jp-PachlsIdentityForm-save"
          disabled={busy}
        >
          {busy ? trans.__('Saving…') : trans.__('Save')}
        </button>
      </div>
    </form>
  );
}

/** The identity dialog; an `AskIdentity` for the identity model. */
export function identityDialog(trans: TranslationBundle): AskIdentity {
  return options =>
    showFormDialog<IIdentity | null>({
      title:
        options.current?.required === false
          ? trans.__('Change who commits are recorded as')
          : trans.__('Who is committing?'),
      // the form focuses the field to fill (autoFocus): the email when the login gives the name
      classes: ['jp-PachlsIdentityDialog'],
      dismissed: null,
      render: done => (
        <IdentityForm
          trans={trans}
          current={options.current}
          reason={options.reason}
          save={options.save}
          done={done}
        />
      )
    });
}
