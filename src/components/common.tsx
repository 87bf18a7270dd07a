import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { ISignal } from '@lumino/signaling';
import { ICommit } from '../api';
import { formatAbsoluteTime, formatRelativeTime, shortId } from '../format';

/**
 * The current value of a model, re-read on every emission of its `signal`.
 * React's external-store hook also catches an emission between the first
 * render and the subscription.
 */
export function useSignalValue<S, T>(signal: ISignal<S, unknown>, current: () => T): T {
  const subscribe = React.useCallback(
    (onChange: () => void) => {
      signal.connect(onChange);
      return () => {
        signal.disconnect(onChange);
      };
    },
    [signal]
  );
  return React.useSyncExternalStore(subscribe, current);
}

/** An error text shown where the action was taken. */
export function ErrorText(props: {
  message: string | null | undefined;
  onDismiss?: () => void;
  trans: TranslationBundle;
  className?: string;
}): JSX.Element | null {
  if (!props.message) {
    return null;
  }
  return (
    <div
      className={`jp-PachlsError ${props.className ?? ''}`}
      role="alert"
    >
      <span className="jp-PachlsError-text">{props.message}</span>
      {props.onDismiss ? (
        <button
          type="button"
          className="jp-PachlsError-dismiss"
          aria-label={props.trans.__('Dismiss this message')}
          title={props.trans.__('Dismiss')}
          onClick={props.onDismiss}
        >
          ×
        </button>
      ) : null}
    </div>
  );
}

/** The one way a dialog's last step is closed (focused, so Enter closes it). */
export function CloseButton(props: {
  close: () => void;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <button
      type="button"
      className="jp-PachlsButton jp-PachlsButton-accept"
      onClick={props.close}
      autoFocus
    >
      {props.trans.__('Close')}
    </button>
  );
}

/** Cancel, beside a dialog form's submit button. */
export function CancelButton(props: {
  cancel: () => void;
  disabled?: boolean;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <button
      type="button"
      className="jp-PachlsButton jp-PachlsButton-default"
      disabled={props.disabled}
      onClick={props.cancel}
    >
      {props.trans.__('Cancel')}
    </button>
  );
}

/** What a dialog is busy with, under an indeterminate progress bar. */
export function ProgressLine(props: { label: string; text: string }): JSX.Element {
  return (
    <div className="jp-PachlsCommitForm-progress" role="status">
      <progress className="jp-PachlsProgress" aria-label={props.label} />
      {props.text}
    </div>
  );
}

/** One radio button of a choice, with its label. */
export function RadioChoice<T extends string>(props: {
  name: string;
  value: T;
  selected: T;
  select: (value: T) => void;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <label className="jp-PachlsBackendForm-choice">
      <input
        type="radio"
        name={props.name}
        value={props.value}
        checked={props.selected === props.value}
        onChange={() => props.select(props.value)}
      />
      {props.children}
    </label>
  );
}

/** A small text or icon button with an accessible name. */
export function ActionButton(props: {
  label: string;
  title?: string;
  icon?: LabIcon;
  text?: string;
  onClick: () => void;
  disabled?: boolean;
  className?: string;
  variant?: 'default' | 'accept' | 'warn';
  pressed?: boolean;
  expanded?: boolean;
}): JSX.Element {
  const variant = props.variant ?? 'default';
  return (
    <button
      type="button"
      className={`jp-PachlsButton jp-PachlsButton-${variant} ${
        props.icon && !props.text ? 'jp-PachlsButton-icon' : ''
      } ${props.className ?? ''}`}
      aria-label={props.label}
      title={props.title ?? props.label}
      disabled={props.disabled}
      aria-pressed={props.pressed}
      aria-expanded={props.expanded}
      onClick={props.onClick}
    >
      {props.icon ? (
        <props.icon.react tag="span" elementSize="normal" className="jp-PachlsButton-svg" />
      ) : null}
      {props.text ? <span className="jp-PachlsButton-text">{props.text}</span> : null}
    </button>
  );
}

/** A commit id shown short, with the full id in its tooltip. */
export function CommitId(props: { id: string | null | undefined }): JSX.Element {
  return (
    <code className="jp-PachlsCommitId" title={props.id ?? ''}>
      {shortId(props.id)}
    </code>
  );
}

/** A relative time with the absolute time in its tooltip. */
export function TimeAgo(props: { iso: string | null | undefined }): JSX.Element | null {
  if (!props.iso) {
    return null;
  }
  return (
    <time
      className="jp-PachlsTime"
      dateTime={props.iso}
      title={formatAbsoluteTime(props.iso)}
    >
      {formatRelativeTime(props.iso)}
    </time>
  );
}

/** A titled, separated part of the panel. */
export function Section(props: {
  id: string;
  title: string;
  actions?: React.ReactNode;
  children?: React.ReactNode;
}): JSX.Element {
  const headingId = `jp-pachls-section-${props.id}`;
  return (
    <section
      className="jp-PachlsSection"
      data-section={props.id}
      aria-labelledby={headingId}
    >
      <div className="jp-PachlsSection-header">
        <h3 className="jp-PachlsSection-title" id={headingId}>
          {props.title}
        </h3>
        {props.actions ? (
          <div className="jp-PachlsSection-actions">{props.actions}</div>
        ) : null}
      </div>
      <div className="jp-PachlsSection-body">{props.children}</div>
    </section>
  );
}

/** Added / modified / deleted paths, grouped. */
export function ChangeList(props: {
  changes: Array<{ path: string; change: 'added' | 'modified' | 'deleted' }>;
  trans: TranslationBundle;
  emptyText?: string;
  limit?: number;
  /** what a path opens below it when clicked (the change itself); without it paths are plain text */
  expand?: (change: { path: string; change: 'added' | 'modified' | 'deleted' }) => JSX.Element;
  /** with it, a checkbox per path (ticked unless in `unticked`): a commit of the ticked ones only */
  onTick?: (path: string, ticked: boolean) => void;
  unticked?: ReadonlySet<string>;
}): JSX.Element {
  const { trans, expand, onTick } = props;
  const [limit, setLimit] = React.useState(props.limit ?? 200);
  const [open, setOpen] = React.useState<Set<string>>(new Set());
  const toggle = (path: string) => {
    const next = new Set(open);
    if (!next.delete(path)) {
      next.add(path);
    }
    setOpen(next);
  };
  if (props.changes.length === 0) {
    return (
      <div className="jp-PachlsChanges-empty">
        {props.emptyText ?? trans.__('No changes.')}
      </div>
    );
  }
  const sorted = [...props.changes].sort((a, b) =>
    a.change === b.change
      ? a.path < b.path
        ? -1
        : 1
      : ORDER[a.change] - ORDER[b.change]
  );
  const labels = {
    added: trans.__('added'),
    modified: trans.__('modified'),
    deleted: trans.__('deleted')
  };
  const marks = { added: 'A', modified: 'M', deleted: 'D' };
  return (
    <>
      <ul className="jp-PachlsChanges" aria-label={trans.__('Changed paths')}>
        {sorted.slice(0, limit).map(c => (
          <li
            key={`${c.change}:${c.path}`}
            className={`jp-PachlsChange jp-PachlsChange-${c.change}`}
            data-change={c.change}
            data-path={c.path}
          >
            {onTick ? (
              <input
                type="checkbox"
                className="jp-PachlsChange-tick"
                checked={!props.unticked?.has(c.path)}
                aria-label={trans.__('Commit %1', c.path)}
                onChange={e => onTick(c.path, e.target.checked)}
              />
            ) : null}
            <span className="jp-PachlsChange-mark" title={labels[c.change]} aria-label={labels[c.change]}>
              {marks[c.change]}
            </span>
            {expand ? (
              <button
                type="button"
                className="jp-PachlsLink jp-PachlsChange-path"
                title={c.path}
                aria-expanded={open.has(c.path)}
                aria-label={trans.__('Show the change of %1', c.path)}
                onClick={() => toggle(c.path)}
              >
                {c.path}
              </button>
            ) : (
              <span className="jp-PachlsChange-path" title={c.path}>
                {c.path}
              </span>
            )}
            {expand && open.has(c.path) ? expand(c) : null}
          </li>
        ))}
      </ul>
      {sorted.length > limit ? (
        <ActionButton
          label={trans.__('Show %1 more paths', sorted.length - limit)}
          text={trans.__('Show %1 more', sorted.length - limit)}
          onClick={() => setLimit(limit + 500)}
        />
      ) : null}
    </>
  );
}

const ORDER = { added: 0, modified: 1, deleted: 2 };


export interface ICommittedProps {
  /** What landed, e.g. "Committed to %1:" (translated, with the branch address filled in). */
  heading: string;
  commit: ICommit;
  className: string;
  trans: TranslationBundle;
  close: () => void;
  showHistory: (repo: string, branch: string, commit?: string) => void;
}

/** The end of a commit dialog: the new commit id, its message, "Show in history" and "Close". */
export function Committed(props: ICommittedProps): JSX.Element {
  const { commit, trans } = props;
  return (
    <div className={props.className} data-phase="done">
      <div className="jp-PachlsNotice" role="status">
        {props.heading}{' '}
        <code className="jp-PachlsCommitForm-newId" title={commit.id}>
          {commit.id}
        </code>
      </div>
      <div className="jp-PachlsCommitForm-summary">{commit.message}</div>
      <div className="jp-PachlsDialog-buttons">
        {commit.branch ? (
          <button
            type="button"
            className="jp-PachlsButton jp-PachlsButton-default"
            onClick={() => {
              props.showHistory(commit.repo, commit.branch as string, commit.id);
              props.close();
            }}
          >
            {trans.__('Show in history')}
          </button>
        ) : null}
        <CloseButton close={props.close} trans={trans} />
      </div>
    </div>
  );
}
