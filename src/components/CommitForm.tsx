import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { ICommit } from '../api';
import { conflictPaths, errorMessage } from '../state';
import { CancelButton, ChangeList, CloseButton, Committed, ErrorText, ProgressLine } from './common';

type Phase =
  | { kind: 'edit' }
  | { kind: 'committing' }
  | { kind: 'done'; commit: ICommit }
  | { kind: 'conflict'; message: string; paths: string[] };

/** What a commit form shows and does; the mount commit and the label commit fill it in. */
export interface ICommitFormProps {
  trans: TranslationBundle;
  /** A class beside `jp-PachlsCommitForm`. */
  className?: string;
  /** The line above the message, e.g. "One commit on images@master". */
  target: string;
  /** Id of the message field. */
  messageId: string;
  placeholder: string;
  initialMessage?: string;
  /** The line above the changes ("Will be committed: ..."). */
  summary: React.ReactNode;
  /** The paths that will change; null while they load. */
  changes: Array<{ path: string; change: 'added' | 'modified' | 'deleted' }> | null;
  /** With it, each path has a checkbox: unticked paths are left out of the commit (they stay pending). */
  onTick?: (path: string, ticked: boolean) => void;
  unticked?: ReadonlySet<string>;
  loadError: string | null;
  emptyText: string;
  loadingText: string;
  progressText: string;
  submitText: string;
  /** False while there is nothing to commit. */
  canSubmit: boolean;
  /** Make the commit; a 409 with `details.paths` shows the conflict. */
  commit: (message: string) => Promise<ICommit>;
  /** The text of a failed commit (default: its message). */
  describeError?: (reason: unknown) => string;
  /** "Committed to %1:" with the branch filled in. */
  committedHeading: (commit: ICommit) => string;
  /** What a conflict means and what was kept. */
  conflictText: string;
  /** Buttons beside Close after a conflict. */
  conflictActions?: React.ReactNode;
  close: () => void;
  showHistory: (repo: string, branch: string, commit?: string) => void;
}

/** Message, what will be committed, progress, the new commit or the conflict. */
export function CommitForm(props: ICommitFormProps): JSX.Element {
  const { trans } = props;
  const [message, setMessage] = React.useState(props.initialMessage ?? '');
  const [touched, setTouched] = React.useState(false);
  const [phase, setPhase] = React.useState<Phase>({ kind: 'edit' });
  const [error, setError] = React.useState<string | null>(null);
  const messageRef = React.useRef<HTMLTextAreaElement>(null);
  const className = props.className ? `jp-PachlsCommitForm ${props.className}` : 'jp-PachlsCommitForm';

  React.useEffect(() => {
    messageRef.current?.focus();
  }, []);

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
      const commit = await props.commit(message.trim());
      setPhase({ kind: 'done', commit });
    } catch (reason) {
      const paths = conflictPaths(reason);
      if (paths && paths.length > 0) {
        setPhase({ kind: 'conflict', message: errorMessage(reason), paths });
      } else {
        setError((props.describeError ?? errorMessage)(reason));
        setPhase({ kind: 'edit' });
      }
    }
  };

  if (phase.kind === 'done') {
    return (
      <Committed
        heading={props.committedHeading(phase.commit)}
        commit={phase.commit}
        className={className}
        trans={trans}
        close={props.close}
        showHistory={props.showHistory}
      />
    );
  }

  if (phase.kind === 'conflict') {
    return (
      <div className={className} data-phase="conflict">
        <ErrorText message={phase.message} trans={trans} />
        <div>{props.conflictText}</div>
        <ul className="jp-PachlsConflicts" aria-label={trans.__('Conflicting paths')}>
          {phase.paths.map(p => (
            <li key={p} className="jp-PachlsConflict">
              {p}
            </li>
          ))}
        </ul>
        <div className="jp-PachlsDialog-buttons">
          {props.conflictActions}
          <CloseButton close={props.close} trans={trans} />
        </div>
      </div>
    );
  }

  const committing = phase.kind === 'committing';
  return (
    <form
      className={className}
      data-phase={phase.kind}
      noValidate
      onSubmit={e => {
        e.preventDefault();
        void submit();
      }}
    >
      <div className="jp-PachlsCommitForm-target">{props.target}</div>
      <label className="jp-PachlsCommitForm-label" htmlFor={props.messageId}>
        {trans.__('Message (required)')}
      </label>
      <textarea
        id={props.messageId}
        ref={messageRef}
        className="jp-PachlsInput jp-PachlsCommitForm-message"
        rows={3}
        required
        aria-required="true"
        aria-invalid={touched && empty}
        disabled={committing}
        value={message}
        placeholder={props.placeholder}
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
      <div className="jp-PachlsCommitForm-label">{props.summary}</div>
      <div className="jp-PachlsCommitForm-changes">
        <ErrorText message={props.loadError} trans={trans} />
        {props.changes ? (
          <ChangeList
            changes={props.changes}
            trans={trans}
            emptyText={props.emptyText}
            onTick={props.onTick}
            unticked={props.unticked}
          />
        ) : props.loadError ? null : (
          <div className="jp-PachlsEmpty">{props.loadingText}</div>
        )}
      </div>
      {committing ? (
        <ProgressLine label={trans.__('Committing')} text={props.progressText} />
      ) : null}
      <ErrorText message={error} trans={trans} />
      <div className="jp-PachlsDialog-buttons">
        <CancelButton cancel={props.close} disabled={committing} trans={trans} />
        <button
          type="submit"
          className="jp-PachlsButton jp-PachlsButton-accept jp-PachlsCommitForm-submit"
          disabled={committing || !props.canSubmit}
        >
          {props.submitText}
        </button>
      </div>
    </form>
  );
}
