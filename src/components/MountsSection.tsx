import * as React from 'react';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { folderIcon, refreshIcon } from '@jupyterlab/ui-components';

import { IChanges, IMountStatus, mountChanges, PachlsApiError } from '../api';
import { address, shortId } from '../format';
import { PachlsModel } from '../model';
import { errorMessage, mountBehindText } from '../state';
import { ActionButton, ChangeList, CommitId, ErrorText, Section } from './common';

/** What the mounts section asks the application to do. */
export interface IMountActions {
  /** Open the mount's folder in the file browser. */
  openFolder(mount: IMountStatus): Promise<void>;
  /** Open the commit dialog of a mount. */
  commit(name: string): Promise<void>;
  /** Ask, then drop the staged changes; false when the user cancelled. */
  discard(mount: IMountStatus): Promise<boolean>;
  /** Ask (when changes are staged), then unmount; false when cancelled. */
  unmount(mount: IMountStatus): Promise<boolean>;
  /** Open the history of a branch. */
  showHistory(repo: string, branch: string): Promise<void>;
}

export function MountsSection(props: {
  model: PachlsModel;
  trans: TranslationBundle;
  actions: IMountActions;
}): JSX.Element {
  const { model, trans } = props;
  const state = model.state;
  const mounts = state.mounts?.mounts ?? [];
  return (
    <Section id="mounts" title={trans.__('Mounts')}>
      <ErrorText message={state.mountsError} trans={trans} />
      {state.mounts ? (
        mounts.length === 0 ? (
          <div className="jp-PachlsEmpty">
            {trans.__('Nothing mounted. Mount a branch from the repos below.')}
          </div>
        ) : (
          <ul className="jp-PachlsMountList" aria-label={trans.__('Mounts')}>
            {mounts.map(m => (
              <MountCard
                key={m.name}
                mount={m}
                model={model}
                trans={trans}
                actions={props.actions}
              />
            ))}
          </ul>
        )
      ) : null}
    </Section>
  );
}

function stateText(trans: TranslationBundle, state: IMountStatus['state']): string {
  switch (state) {
    case 'mounting':
      return trans.__('mounting');
    case 'mounted':
      return trans.__('mounted');
    case 'committing':
      return trans.__('committing');
    case 'error':
      return trans.__('error');
    case 'unmounted':
      return trans.__('unmounted');
    default:
      return state;
  }
}

/**
 * Move a mount (a refresh or a follow). When the branch changed paths where the
 * mount holds local files its ignore rules keep out of commits (never pending,
 * so never committed: a checkpoint, a `.pachlsignore`d file), the server names
 * them (409 `would_overwrite`) and changes nothing: list them and ask.
 * "Overwrite" moves again allowing exactly the files shown (when the branch
 * moved meanwhile and put others in the way, the server refuses again and they
 * are asked about); "Cancel" leaves all as is.
 */
async function moveAskingBeforeOverwrite(
  trans: TranslationBundle,
  mount: IMountStatus,
  move: (overwrite: boolean | string[]) => Promise<unknown>
): Promise<void> {
  let overwrite: boolean | string[] = false;
  for (;;) {
    try {
      await move(overwrite);
      return;
    } catch (reason) {
      if (!(reason instanceof PachlsApiError && reason.error === 'would_overwrite')) {
        throw reason;
      }
      const paths = Array.isArray(reason.details.paths) ? (reason.details.paths as string[]) : [];
      const count = typeof reason.details.count === 'number' ? reason.details.count : paths.length;
      const result = await showDialog({
        title: trans.__('Overwrite ignored files in %1?', mount.name),
        body: (
          <div className="jp-PachlsOverwrite">
            <p>
              {trans._n(
                '%2@%3 changed %1 path where %4 holds a local file its ignore rules keep out of commits (never pending, never committed). Overwrite replaces it with the branch\'s version; Cancel leaves the mount as it is.',
                '%2@%3 changed %1 paths where %4 holds local files its ignore rules keep out of commits (never pending, never committed). Overwrite replaces them with the branch\'s version; Cancel leaves the mount as it is.',
                count,
                mount.repo,
                mount.branch ?? '',
                mount.name
              )}
            </p>
            <ul className="jp-PachlsOverwrite-paths" aria-label={trans.__('Local files to overwrite')}>
              {paths.map(path => (
                <li key={path} title={path}>
                  {path}
                </li>
              ))}
            </ul>
            {count > paths.length ? (
              <p>{trans.__('and %1 more', count - paths.length)}</p>
            ) : null}
          </div>
        ),
        buttons: [
          Dialog.cancelButton({ label: trans.__('Cancel') }),
          Dialog.warnButton({ label: trans.__('Overwrite') })
        ]
      });
      if (!result.button.accept) {
        return;
      }
      // the server names at most 100: agreeing to "and N more" is agreeing to all
      overwrite = count > paths.length ? true : paths;
    }
  }
}

/**
 * Follow the branch of a mount its branch left (rolled back below it): ask
 * whether to keep or drop the pending changes when there are some.
 */
async function followBranch(
  model: PachlsModel,
  trans: TranslationBundle,
  mount: IMountStatus
): Promise<void> {
  let pending: 'keep' | 'drop' = 'keep';
  if (mount.mode === 'rw' && mount.pending > 0) {
    const where = address(mount.repo, mount.branch);
    const result = await showDialog({
      title: trans.__('Follow %1?', where),
      body: trans._n(
        'Move %2 to the head of %3 (%4). Its %1 pending change can stay pending on top of it (your file wins over what the branch did to it), or be dropped.',
        'Move %2 to the head of %3 (%4). Its %1 pending changes can stay pending on top of it (your files win over what the branch did to them), or be dropped.',
        mount.pending,
        mount.name,
        where,
        shortId(mount.head)
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.warnButton({ label: trans.__('Drop my changes'), actions: ['drop'] }),
        Dialog.okButton({ label: trans.__('Keep my changes'), actions: ['keep'] })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    pending = result.button.actions.includes('drop') ? 'drop' : 'keep';
  }
  await moveAskingBeforeOverwrite(trans, mount, overwrite =>
    model.followMount(mount.name, pending, overwrite)
  );
}

function MountCard(props: {
  mount: IMountStatus;
  model: PachlsModel;
  trans: TranslationBundle;
  actions: IMountActions;
}): JSX.Element {
  const { mount, model, trans, actions } = props;
  const [busy, setBusy] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [changes, setChanges] = React.useState<IChanges | null>(null);
  const [showChanges, setShowChanges] = React.useState(false);
  const [changesError, setChangesError] = React.useState<string | null>(null);

  const run = async (what: string, action: () => Promise<unknown>) => {
    setBusy(what);
    setError(null);
    try {
      await action();
    } catch (reason) {
      setError(errorMessage(reason));
    } finally {
      setBusy(null);
    }
  };

  const loadChanges = React.useCallback(async () => {
    setChangesError(null);
    try {
      setChanges(await mountChanges(mount.name));
    } catch (reason) {
      setChangesError(errorMessage(reason));
    }
  }, [mount.name]);

  // Keep an open changes view in step with the pending count.
  React.useEffect(() => {
    if (showChanges) {
      void loadChanges();
    }
  }, [showChanges, mount.pending, mount.base, loadChanges]);

  const ref = mount.commit ?? mount.branch;
  const rw = mount.mode === 'rw';
  const label = address(mount.repo, mount.commit ? shortId(mount.commit) : mount.branch);
  return (
    <li
      className="jp-PachlsMount"
      data-mount={mount.name}
      data-state={mount.state}
      data-mode={mount.mode}
      aria-label={trans.__('Mount %1', mount.name)}
    >
      <div className="jp-PachlsMount-header">
        <span className="jp-PachlsMount-name" title={mount.mountpoint}>
          {mount.name}
        </span>
        <span
          className={`jp-PachlsBadge jp-PachlsBadge-${mount.mode}`}
          title={rw ? trans.__('read-write') : trans.__('read-only')}
        >
          {rw ? trans.__('read-write') : trans.__('read-only')}
        </span>
        <span className={`jp-PachlsBadge jp-PachlsMount-state jp-PachlsState-${mount.state}`}>
          {stateText(trans, mount.state)}
        </span>
      </div>
      <div className="jp-PachlsMount-detail">
        <span className="jp-PachlsMount-ref" title={address(mount.repo, ref)}>
          {label}
        </span>
        <span className="jp-PachlsMount-base">
          {trans.__('at')} <CommitId id={mount.base} />
        </span>
        {mount.base === null ? (
          <span className="jp-PachlsMount-nobase">{trans.__('(empty branch)')}</span>
        ) : null}
      </div>
      <div className="jp-PachlsMount-detail">
        {mount.commit ? (
          <span className="jp-PachlsMount-behind">{trans.__('fixed commit')}</span>
        ) : (
          <span
            className="jp-PachlsMount-behind"
            data-behind={mount.behind}
            data-diverged={mount.diverged ? 'true' : 'false'}
          >
            {mountBehindText(trans, mount)}
          </span>
        )}
        {mount.diverged ? (
          <ActionButton
            label={trans.__('Follow the branch of %1 where it was moved', mount.name)}
            text={busy === 'follow' ? trans.__('Following…') : trans.__('Follow the branch')}
            variant="accept"
            disabled={busy !== null}
            onClick={() => run('follow', () => followBranch(model, trans, mount))}
            className="jp-PachlsMount-follow"
          />
        ) : !mount.commit ? (
          <ActionButton
            label={trans.__('Update %1 to the branch head', mount.name)}
            title={trans.__('Move the mount to the branch head')}
            icon={refreshIcon}
            disabled={busy !== null}
            onClick={() =>
              run('refresh', () =>
                moveAskingBeforeOverwrite(trans, mount, overwrite =>
                  model.refreshMount(mount.name, overwrite)
                )
              )
            }
            className="jp-PachlsMount-refresh"
          />
        ) : null}
        {rw ? (
          <button
            type="button"
            className="jp-PachlsMount-pending jp-PachlsLink"
            data-pending={mount.pending}
            aria-expanded={showChanges}
            aria-label={trans._n(
              '%1 pending change in %2: show',
              '%1 pending changes in %2: show',
              mount.pending,
              mount.name
            )}
            onClick={() => setShowChanges(!showChanges)}
          >
            {trans._n('%1 pending', '%1 pending', mount.pending)}
          </button>
        ) : null}
      </div>
      {mount.state === 'error' && mount.message ? (
        <ErrorText message={mount.message} trans={trans} />
      ) : null}
      {showChanges && rw ? (
        <div className="jp-PachlsMount-changes">
          <ErrorText message={changesError} trans={trans} />
          {changes ? (
            <>
              <ChangeList
                changes={changes.changes}
                trans={trans}
                emptyText={trans.__('No pending changes.')}
              />
              {changes.unsupported.length > 0 ? (
                <div className="jp-PachlsWarning">
                  {trans.__(
                    'Not committable (not regular files): %1',
                    changes.unsupported.join(', ')
                  )}
                </div>
              ) : null}
            </>
          ) : changesError ? null : (
            <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div>
          )}
        </div>
      ) : null}
      <div className="jp-PachlsMount-actions">
        <ActionButton
          label={trans.__('Open the folder of %1 in the file browser', mount.name)}
          icon={folderIcon}
          text={trans.__('Open')}
          onClick={() => run('open', () => actions.openFolder(mount))}
        />
        {rw ? (
          <>
            <ActionButton
              label={trans.__('Commit the pending changes of %1', mount.name)}
              text={trans.__('Commit')}
              variant="accept"
              disabled={busy !== null || mount.pending === 0 || mount.state === 'committing'}
              onClick={() => run('commit', () => actions.commit(mount.name))}
              className="jp-PachlsMount-commit"
            />
            <ActionButton
              label={trans.__('Discard the pending changes of %1', mount.name)}
              text={trans.__('Discard')}
              variant="warn"
              disabled={busy !== null || mount.pending === 0}
              onClick={() => run('discard', () => actions.discard(mount))}
              className="jp-PachlsMount-discard"
            />
          </>
        ) : null}
        {mount.branch ? (
          <ActionButton
            label={trans.__('Show the history of %1', address(mount.repo, mount.branch))}
            text={trans.__('History')}
            onClick={() => run('history', () => actions.showHistory(mount.repo, mount.branch as string))}
          />
        ) : null}
        <ActionButton
          label={trans.__('Unmount %1', mount.name)}
          text={busy === 'unmount' ? trans.__('Unmounting…') : trans.__('Unmount')}
          disabled={busy !== null}
          onClick={() => run('unmount', () => actions.unmount(mount))}
          className="jp-PachlsMount-unmount"
        />
      </div>
      <ErrorText message={error} trans={trans} onDismiss={() => setError(null)} />
    </li>
  );
}
