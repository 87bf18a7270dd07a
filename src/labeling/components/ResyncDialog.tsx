import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { PachlsApiError } from '../../api';
import { CancelButton, CloseButton, ErrorText, ProgressLine } from '../../components/common';
import { showFormDialog } from '../../components/FormDialog';
import { address } from '../../format';
import { errorMessage } from '../../state';
import { IResyncPreview, IResyncResult, ISession } from '../api';
import { LabelingModel } from '../model';
import {
  previewOf,
  resyncButtonText,
  resyncChanges,
  resyncSummary,
  uncommittedWarning
} from '../state';

type Phase =
  | { kind: 'ref' }
  | { kind: 'previewing' }
  | { kind: 'preview'; preview: IResyncPreview }
  | { kind: 'resyncing'; preview: IResyncPreview }
  | { kind: 'done'; result: IResyncResult; preview: IResyncPreview };

export interface IResyncFormProps {
  model: LabelingModel;
  trans: TranslationBundle;
  session: ISession;
  /** Branch or commit of the labels repo to load (default: the session's labels branch). */
  initialRef?: string;
  /** Why the resync is offered (e.g. the label commit conflict). */
  reason?: string;
  close: () => void;
}

/**
 * Resync in two steps: preview what loading the label files of `ref` into
 * Label Studio would restore, overwrite and remove (uncommitted annotations
 * called out), then, on confirm only, the resync of exactly that commit.
 */
export function ResyncForm(props: IResyncFormProps): JSX.Element {
  const { model, trans, session } = props;
  const [ref, setRef] = React.useState(props.initialRef ?? session.labels_branch);
  const [phase, setPhase] = React.useState<Phase>({ kind: 'ref' });
  const [error, setError] = React.useState<string | null>(null);
  const [notice, setNotice] = React.useState<string | null>(null);

  const preview = async (note: string | null = null) => {
    if (!ref.trim()) {
      setError(trans.__('Name a branch or commit of %1.', session.labels_repo));
      return;
    }
    setError(null);
    setNotice(note);
    setPhase({ kind: 'previewing' });
    try {
      setPhase({ kind: 'preview', preview: await model.previewResync(session.id, ref) });
    } catch (reason) {
      setError(
        reason instanceof PachlsApiError && reason.error === 'not_found'
          ? trans.__('%1 has no branch or commit %2. Nothing was changed.', session.labels_repo, ref.trim())
          : errorMessage(reason)
      );
      setPhase({ kind: 'ref' });
    }
  };

  React.useEffect(() => {
    // the labels branch is the usual answer: show its preview right away
    void preview();
  }, []);

  const confirm = async (shown: IResyncPreview) => {
    setError(null);
    setNotice(null);
    setPhase({ kind: 'resyncing', preview: shown });
    try {
      const result = await model.resync(session.id, shown);
      setPhase({ kind: 'done', result, preview: shown });
    } catch (reason) {
      const fresh = previewOf(reason);
      if (fresh) {
        setNotice(trans.__('The annotations changed since the preview; check it again.'));
        setPhase({ kind: 'preview', preview: fresh });
      } else if (reason instanceof PachlsApiError && reason.error === 'conflict') {
        void preview(
          trans.__('%1 moved since the preview; here is what a resync from its new head would do.', shown.ref)
        );
      } else {
        setError(errorMessage(reason));
        setPhase({ kind: 'preview', preview: shown });
      }
    }
  };

  if (phase.kind === 'done') {
    return (
      <div className="jp-PachlsResyncForm" data-phase="done">
        <div className="jp-PachlsNotice" role="status">
          {trans.__(
            'Label Studio now holds the labels of %1: %2 annotations restored, %3 removed.',
            `${phase.preview.ref} (${phase.result.commit.slice(0, 8)})`,
            phase.result.restored,
            phase.result.removed
          )}
        </div>
        <div className="jp-PachlsDialog-buttons">
          <CloseButton close={props.close} trans={trans} />
        </div>
      </div>
    );
  }

  const busy = phase.kind === 'previewing' || phase.kind === 'resyncing';
  const shown = phase.kind === 'preview' || phase.kind === 'resyncing' ? phase.preview : null;
  const warning = shown ? uncommittedWarning(trans, shown) : '';
  return (
    <form
      className="jp-PachlsResyncForm"
      data-phase={phase.kind}
      aria-label={trans.__('Resync labels into Label Studio')}
      noValidate
      onSubmit={e => {
        e.preventDefault();
        void preview();
      }}
    >
      {props.reason ? <div className="jp-PachlsResyncForm-reason">{props.reason}</div> : null}
      <div className="jp-PachlsResyncForm-what">
        {trans.__(
          'Replace the annotations of Label Studio project %1 by the label files of a commit of %2. Nothing changes until you confirm.',
          session.project_id,
          session.labels_repo
        )}
      </div>
      <label className="jp-PachlsForm-label">
        {trans.__('Branch or commit of %1', session.labels_repo)}
        <span className="jp-PachlsResyncForm-refRow">
          <input
            className="jp-PachlsInput jp-PachlsResyncForm-ref"
            value={ref}
            disabled={busy}
            onChange={e => {
              setRef(e.target.value);
              if (phase.kind === 'preview') {
                setPhase({ kind: 'ref' });
              }
            }}
          />
          <button
            type="submit"
            className="jp-PachlsButton jp-PachlsButton-default jp-PachlsResyncForm-preview"
            disabled={busy}
          >
            {trans.__('Preview')}
          </button>
        </span>
      </label>
      {notice ? (
        <div className="jp-PachlsNotice" role="status">
          {notice}
        </div>
      ) : null}
      {phase.kind === 'previewing' ? (
        <div className="jp-PachlsEmpty" role="status">
          {trans.__('Comparing Label Studio with the label files…')}
        </div>
      ) : null}
      {shown ? (
        <div className="jp-PachlsResyncPreview" data-commit={shown.commit}>
          <div className="jp-PachlsResyncPreview-summary">{resyncSummary(trans, shown)}</div>
          {warning ? (
            <div className="jp-PachlsWarning jp-PachlsResyncPreview-uncommitted" role="alert">
              <div>{warning}</div>
              <ul aria-label={trans.__('Annotations never committed')}>
                {shown.uncommitted.map(p => (
                  <li key={p} className="jp-PachlsResyncPreview-lost" data-path={p}>
                    {p}
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
          <div className="jp-PachlsCommitForm-label">
            {trans.__('Current Label Studio annotations that would be replaced (M) or removed (D):')}
          </div>
          <div className="jp-PachlsCommitForm-changes">
            <ResyncPaths preview={shown} trans={trans} />
          </div>
        </div>
      ) : null}
      {phase.kind === 'resyncing' ? (
        <ProgressLine label={trans.__('Resyncing')} text={trans.__('Loading the label files into Label Studio…')} />
      ) : null}
      <ErrorText message={error} trans={trans} />
      <div className="jp-PachlsDialog-buttons">
        <CancelButton cancel={props.close} disabled={phase.kind === 'resyncing'} trans={trans} />
        <button
          type="button"
          className={`jp-PachlsButton ${
            warning ? 'jp-PachlsButton-warn' : 'jp-PachlsButton-accept'
          } jp-PachlsResyncForm-confirm`}
          disabled={busy || !shown || phase.kind !== 'preview'}
          onClick={() => shown && void confirm(shown)}
        >
          {shown ? resyncButtonText(trans, shown) : trans.__('Resync')}
        </button>
      </div>
      <div className="jp-PachlsResyncForm-target">
        {trans.__('Label files from %1', address(session.labels_repo, ref.trim() || session.labels_branch))}
      </div>
    </form>
  );
}

/** The paths a resync would overwrite (M) or remove (D); never-committed ones marked. */
function ResyncPaths(props: { preview: IResyncPreview; trans: TranslationBundle }): JSX.Element {
  const { preview, trans } = props;
  const changes = resyncChanges(preview);
  if (changes.length === 0) {
    return (
      <div className="jp-PachlsChanges-empty">
        {trans.__('None: the resync only restores annotations.')}
      </div>
    );
  }
  const uncommitted = new Set(preview.uncommitted);
  return (
    <ul className="jp-PachlsChanges" aria-label={trans.__('Annotations replaced or removed')}>
      {changes.map(c => (
        <li
          key={`${c.change}:${c.path}`}
          className={`jp-PachlsChange jp-PachlsChange-${c.change}`}
          data-change={c.change}
          data-path={c.path}
          data-uncommitted={uncommitted.has(c.path) ? 'true' : 'false'}
        >
          <span
            className="jp-PachlsChange-mark"
            title={c.change === 'modified' ? trans.__('overwritten') : trans.__('removed')}
          >
            {c.change === 'modified' ? 'M' : 'D'}
          </span>
          <span className="jp-PachlsChange-path" title={c.path}>
            {c.path}
          </span>
          {uncommitted.has(c.path) ? (
            <span className="jp-PachlsBadge jp-PachlsBadge-uncommitted">
              {trans.__('never committed')}
            </span>
          ) : null}
        </li>
      ))}
    </ul>
  );
}

/** Open the resync dialog of a session; resolves when it is closed. */
export async function showResyncDialog(options: Omit<IResyncFormProps, 'close'>): Promise<void> {
  await showFormDialog<void>({
    title: options.trans.__('Resync labels of %1', options.session.title),
    classes: ['jp-PachlsResyncDialog'],
    dismissed: undefined,
    render: done => <ResyncForm {...options} close={() => done()} />
  });
}
