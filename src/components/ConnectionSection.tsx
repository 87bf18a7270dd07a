import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { BackendRequest, getBackend, IBackendConfig } from '../api';
import { authorText, IdentityModel, identitySourceText } from '../identity';
import { PachlsModel } from '../model';
import { errorMessage } from '../state';
import { ActionButton, CancelButton, ErrorText, RadioChoice, Section, useSignalValue } from './common';

export interface IConnectionSectionProps {
  model: PachlsModel;
  trans: TranslationBundle;
  /** Who commits are recorded as. */
  identity: IdentityModel;
  /** Loads the backend configuration; defaults to the REST API. */
  loadBackend?: () => Promise<IBackendConfig>;
}

/** Backend kind and address, connected or not, FUSE or not; the switch form. */
export function ConnectionSection(props: IConnectionSectionProps): JSX.Element {
  const { model, trans } = props;
  const state = model.state;
  const health = state.health;
  const [editing, setEditing] = React.useState(false);

  const kind = health?.backend.kind ?? state.repos?.backend.kind ?? null;
  const addressText = health?.backend.address ?? state.repos?.backend.address ?? '';
  const connected = health ? health.backend.connected : null;
  const fuse = state.mounts ? state.mounts.fuse : health?.fuse.available ?? null;

  const kindText =
    kind === 'local'
      ? trans.__('Embedded store')
      : kind === 'pachyderm'
        ? trans.__('Pachyderm cluster')
        : trans.__('No backend');

  return (
    <Section
      id="connection"
      title={trans.__('Connection')}
      actions={
        <ActionButton
          label={trans.__('Backend settings')}
          text={editing ? trans.__('Close settings') : trans.__('Settings')}
          expanded={editing}
          onClick={() => setEditing(!editing)}
          className="jp-PachlsConnection-settingsToggle"
        />
      }
    >
      <div className="jp-PachlsConnection" data-kind={kind ?? ''}>
        <div className="jp-PachlsConnection-row">
          <span className="jp-PachlsConnection-kind">{kindText}</span>
          {addressText ? (
            <span className="jp-PachlsConnection-address" title={addressText}>
              {addressText}
            </span>
          ) : null}
        </div>
        <div className="jp-PachlsConnection-row">
          {connected === null ? (
            <span className="jp-PachlsConnection-status" data-connected="unknown">
              {state.healthError
                ? trans.__('Status unknown')
                : trans.__('Checking…')}
            </span>
          ) : (
            <span
              className="jp-PachlsConnection-status"
              data-connected={connected ? 'yes' : 'no'}
            >
              <span className="jp-PachlsDot" aria-hidden="true" />
              {connected ? trans.__('Connected') : trans.__('Not connected')}
            </span>
          )}
          {fuse !== null ? (
            <span
              className="jp-PachlsConnection-fuse"
              data-fuse={fuse ? 'yes' : 'no'}
              title={
                fuse
                  ? trans.__('Mounts are FUSE file systems.')
                  : health?.fuse.reason ??
                    trans.__('FUSE is not usable here: mounts are plain folders whose changes are scanned.')
              }
            >
              {fuse ? trans.__('FUSE') : trans.__('No FUSE')}
            </span>
          ) : null}
        </div>
        {health && !health.backend.connected && health.backend.error ? (
          <ErrorText message={health.backend.error} trans={trans} />
        ) : null}
        <ErrorText message={state.healthError} trans={trans} />
        <IdentityRow identity={props.identity} trans={trans} />
      </div>
      {editing ? (
        <BackendForm
          model={model}
          trans={trans}
          loadBackend={props.loadBackend ?? getBackend}
          onDone={() => setEditing(false)}
        />
      ) : null}
    </Section>
  );
}

/** "Commits by Name <email> (from git config) Change…", or a way to set one. */
function IdentityRow(props: { identity: IdentityModel; trans: TranslationBundle }): JSX.Element {
  const { identity, trans } = props;
  const state = useSignalValue(identity.changed, () => identity.state);
  const [error, setError] = React.useState<string | null>(null);
  const known = state.identity;
  const change = () => {
    setError(null);
    identity.ask(null).catch(reason => setError(errorMessage(reason)));
  };
  const source = known?.source ?? null;
  return (
    <>
      <div
        className="jp-PachlsConnection-row jp-PachlsIdentity"
        data-source={source ?? ''}
        data-required={known ? String(known.required) : ''}
      >
        {known === null ? (
          <span className="jp-PachlsIdentity-author" title={state.error ?? ''}>
            {state.error ? trans.__('Author unknown') : trans.__('Checking who commits…')}
          </span>
        ) : known.required ? (
          <span className="jp-PachlsIdentity-author jp-PachlsWarning">
            {trans.__('No name and email yet: commits are refused until you set them.')}
          </span>
        ) : (
          <span className="jp-PachlsIdentity-who">
            {trans.__('Commits by')}{' '}
            <span className="jp-PachlsIdentity-author" title={identitySourceText(trans, source)}>
              {authorText(known)}
            </span>{' '}
            <span className="jp-PachlsIdentity-source">({identitySourceText(trans, source)})</span>
          </span>
        )}
        {known ? (
          <ActionButton
            label={trans.__('Change who commits are recorded as')}
            text={known.required ? trans.__('Set…') : trans.__('Change…')}
            variant={known.required ? 'accept' : 'default'}
            onClick={change}
            className="jp-PachlsIdentity-change"
          />
        ) : null}
      </div>
      <ErrorText message={error} trans={trans} onDismiss={() => setError(null)} />
    </>
  );
}

function BackendForm(props: {
  model: PachlsModel;
  trans: TranslationBundle;
  loadBackend: () => Promise<IBackendConfig>;
  onDone: () => void;
}): JSX.Element {
  const { trans } = props;
  const [config, setConfig] = React.useState<IBackendConfig | null>(null);
  const [kind, setKind] = React.useState<'local' | 'pachyderm'>('local');
  const [address, setAddress] = React.useState('');
  const [token, setToken] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [done, setDone] = React.useState<string | null>(null);

  React.useEffect(() => {
    let live = true;
    props
      .loadBackend()
      .then(value => {
        if (!live) {
          return;
        }
        setConfig(value);
        setKind(value.kind === 'pachyderm' ? 'pachyderm' : 'local');
        setAddress(value.pachd_address ?? '');
      })
      .catch(reason => live && setError(errorMessage(reason)));
    return () => {
      live = false;
    };
  }, []);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    const request: BackendRequest =
      kind === 'local'
        ? { kind: 'local' }
        : {
            kind: 'pachyderm',
            ...(address.trim() ? { pachd_address: address.trim() } : {}),
            ...(token ? { auth_token: token } : {})
          };
    try {
      const result = await props.model.setBackend(request);
      setConfig(result);
      setToken('');
      setDone(
        result.kind === 'pachyderm'
          ? trans.__('Now using the Pachyderm cluster %1.', result.address ?? '')
          : trans.__('Now using the embedded store.')
      );
    } catch (reason) {
      setError(errorMessage(reason));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="jp-PachlsBackendForm"
      aria-label={trans.__('Backend settings')}
      onSubmit={submit}
    >
      <fieldset disabled={busy}>
        <legend>{trans.__('Where versioned data lives')}</legend>
        <RadioChoice name="pachls-backend-kind" value="local" selected={kind} select={setKind}>
          {trans.__('Embedded store (this machine)')}
        </RadioChoice>
        {config ? (
          <div className="jp-PachlsBackendForm-hint" title={config.store_dir}>
            {config.store_dir}
          </div>
        ) : null}
        <RadioChoice name="pachls-backend-kind" value="pachyderm" selected={kind} select={setKind}>
          {trans.__('Pachyderm cluster')}
        </RadioChoice>
        {kind === 'pachyderm' ? (
          <div className="jp-PachlsBackendForm-cluster">
            <label>
              {trans.__('pachd address')}
              <input
                type="text"
                className="jp-PachlsInput"
                placeholder="grpc://localhost:30650"
                value={address}
                onChange={e => setAddress(e.target.value)}
              />
            </label>
            <div className="jp-PachlsBackendForm-hint">
              {trans.__('Empty: the active pachctl context (~/.pachyderm/config.json).')}
            </div>
            <label>
              {trans.__('Auth token (optional)')}
              <input
                type="password"
                className="jp-PachlsInput"
                autoComplete="off"
                placeholder={
                  config?.auth_token_set
                    ? trans.__('a token is set; type to replace it')
                    : ''
                }
                value={token}
                onChange={e => setToken(e.target.value)}
              />
            </label>
          </div>
        ) : null}
        <div className="jp-PachlsBackendForm-buttons">
          <button type="submit" className="jp-PachlsButton jp-PachlsButton-accept">
            {busy ? trans.__('Connecting…') : trans.__('Apply')}
          </button>
          <CancelButton cancel={props.onDone} trans={trans} />
        </div>
      </fieldset>
      {busy ? <progress className="jp-PachlsProgress" aria-label={trans.__('Connecting')} /> : null}
      <ErrorText message={error} trans={trans} />
      {done ? (
        <div className="jp-PachlsNotice" role="status">
          {done}
        </div>
      ) : null}
      {config ? (
        <div className="jp-PachlsBackendForm-hint">
          {trans.__('The choice is saved in %1. Switching is refused while mounts exist.', config.saved_in)}
        </div>
      ) : null}
    </form>
  );
}
