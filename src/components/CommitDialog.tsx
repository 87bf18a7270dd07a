import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { IChanges, mountChanges } from '../api';
import { address } from '../format';
import { PachlsModel } from '../model';
import { countChanges, errorMessage } from '../state';
import { CommitForm } from './CommitForm';
import { showFormDialog } from './FormDialog';

export interface IMountCommitFormProps {
  model: PachlsModel;
  trans: TranslationBundle;
  name: string;
  initialMessage?: string;
  close: () => void;
  showHistory: (repo: string, branch: string, commit?: string) => void;
  loadChanges?: (name: string) => Promise<IChanges>;
}

/** The commit form of a read-write mount: its staged changes as one commit. */
export function MountCommitForm(props: IMountCommitFormProps): JSX.Element {
  const { model, trans, name } = props;
  const [changes, setChanges] = React.useState<IChanges | null>(null);
  const [loadError, setLoadError] = React.useState<string | null>(null);
  // paths the user unticked: left out of this commit, still pending after it
  const [unticked, setUnticked] = React.useState<ReadonlySet<string>>(new Set());
  const mount = model.mount(name);

  React.useEffect(() => {
    (props.loadChanges ?? mountChanges)(name)
      .then(setChanges)
      .catch(reason => setLoadError(errorMessage(reason)));
  }, [name]);

  const chosen = changes ? changes.changes.filter(c => !unticked.has(c.path)) : null;
  const partial = chosen !== null && changes !== null && chosen.length < changes.changes.length;
  const count = chosen ? countChanges(chosen) : null;
  const tick = (path: string, ticked: boolean) => {
    const next = new Set(unticked);
    if (ticked) {
      next.delete(path);
    } else {
      next.add(path);
    }
    setUnticked(next);
  };
  const target = mount ? address(mount.repo, mount.branch ?? mount.commit) : name;

  return (
    <CommitForm
      trans={trans}
      target={trans.__('One commit on %1', target)}
      messageId="jp-pachls-commit-message"
      placeholder={trans.__('What changed, and why')}
      initialMessage={props.initialMessage}
      summary={
        count
          ? partial
            ? trans.__(
                'Will be committed: %1 added, %2 modified, %3 deleted (%4 unticked stay pending)',
                count.added,
                count.modified,
                count.deleted,
                unticked.size
              )
            : trans.__(
                'Will be committed: %1 added, %2 modified, %3 deleted',
                count.added,
                count.modified,
                count.deleted
              )
          : trans.__('Will be committed:')
      }
      changes={changes ? changes.changes : null}
      onTick={tick}
      unticked={unticked}
      loadError={loadError}
      emptyText={trans.__('Nothing is staged.')}
      loadingText={trans.__('Loading…')}
      progressText={trans.__('Committing…')}
      submitText={
        count ? trans._n('Commit %1 change', 'Commit %1 changes', count.total) : trans.__('Commit')
      }
      canSubmit={chosen === null || chosen.length > 0}
      // the listed paths, ticked or not all: a file written while the dialog is open is not one the
      // user saw, so it stays pending (null: the list never loaded, the commit takes what is staged)
      commit={async message =>
        (await model.commit(name, message, chosen ? chosen.map(c => c.path) : undefined)).commit
      }
      committedHeading={commit => trans.__('Committed to %1:', address(commit.repo, commit.branch))}
      conflictText={trans.__(
        'Commits that landed on the branch since this mount was made changed the same paths. Nothing was committed; your changes are kept in the mount.'
      )}
      close={props.close}
      showHistory={props.showHistory}
    />
  );
}

/** Open the commit dialog of mount `name`; resolves when it is closed. */
export async function showCommitDialog(
  options: Omit<IMountCommitFormProps, 'close'>
): Promise<void> {
  await showFormDialog<void>({
    title: options.trans.__('Commit mount %1', options.name),
    classes: ['jp-PachlsCommitDialog'],
    focusNodeSelector: 'textarea',
    dismissed: undefined,
    render: done => <MountCommitForm {...options} close={() => done()} />
  });
}
