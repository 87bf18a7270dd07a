import * as React from 'react';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';

import {
  diffCommits,
  IBranch,
  ICommit,
  IDiff,
  listCommits,
  moveBranchHead,
  PachlsApiError,
  requestAPI,
  seg
} from '../api';
import { address, firstLine, shortId } from '../format';
import { LabelChanges } from '../labeling/components/LabelChanges';
import { isLabelCommit } from '../labeling/state';
import { PachlsModel } from '../model';
import {
  countChanges,
  diffPair,
  errorMessage,
  historyReducer,
  initialHistory,
  timeline
} from '../state';
import { ActionButton, ChangeList, CommitId, ErrorText, TimeAgo } from './common';
import { DiffView, IDiffOf } from './DiffView';
import { DownloadButton } from './DownloadButton';
import { showExportLabelsDialog } from './ExportLabelsDialog';

/** ChangeList's `expand`: a clicked path opens its change between the two commits. */
function showChange(trans: TranslationBundle, diffOf: IDiffOf) {
  return (c: { path: string; change: 'added' | 'modified' | 'deleted' }) => (
    <DiffView trans={trans} diffOf={diffOf} path={c.path} change={c.change} />
  );
}

export interface IBranchMove {
  repo: string;
  branch: string;
  old_head: string | null;
  new_head: string;
  author: string;
  time: string | null;
  reason: string;
}

export interface IHistoryViewProps {
  model: PachlsModel;
  trans: TranslationBundle;
  repo: string;
  branch: string;
  /** Commit to highlight (e.g. a provenance link). */
  focus?: string | null;
  /** Only the commits that changed this file (its history). */
  path?: string | null;
  pageSize: number;
  showHistory: (repo: string, branch: string, commit?: string) => void;
}

/**
 * History of `repo@branch`, newest first, a page at a time; select two commits
 * to see what changed between them; roll the branch back to any commit.
 */
export function HistoryView(props: IHistoryViewProps): JSX.Element {
  const { model, trans, repo, branch, pageSize } = props;
  const path = props.path ?? null;
  const [state, dispatch] = React.useReducer(historyReducer, initialHistory);
  const [moves, setMoves] = React.useState<IBranchMove[]>([]);
  const [head, setHead] = React.useState<string | null>(null);
  const [diff, setDiff] = React.useState<IDiff | null>(null);
  const [diffError, setDiffError] = React.useState<string | null>(null);
  const [rowError, setRowError] = React.useState<{ id: string; message: string } | null>(null);
  // commits that head moves took out of the branch (a rollback's undone commits), shown in place
  const [left, setLeft] = React.useState<ICommit[]>([]);
  // what the last move from here did; shown while the head is still there (a later commit ends it)
  const [notice, setNotice] = React.useState<{ text: string; head: string } | null>(null);
  const generation = React.useRef(0);

  const loadFirst = React.useCallback(async () => {
    const mine = ++generation.current;
    dispatch({ type: 'loading' });
    try {
      const [page, branchInfo, moveList] = await Promise.all([
        listCommits(repo, branch, { limit: pageSize, path }),
        requestAPI<IBranch>(`repos/${seg(repo)}/branches/${seg(branch)}`),
        requestAPI<{ moves: IBranchMove[]; left: ICommit[] }>(
          `repos/${seg(repo)}/branches/${seg(branch)}/moves`
        ).catch(() => ({ moves: [] as IBranchMove[], left: [] as ICommit[] }))
      ]);
      if (mine !== generation.current) {
        return;
      }
      setHead(branchInfo.head?.id ?? null);
      setMoves(moveList.moves);
      setLeft(moveList.left);
      dispatch({ type: 'page', commits: page.commits, next: page.next, append: false });
    } catch (reason) {
      if (mine === generation.current) {
        dispatch({ type: 'error', message: errorMessage(reason) });
      }
    }
  }, [repo, branch, pageSize, path]);

  const loadMore = async () => {
    if (!state.next) {
      return;
    }
    const mine = generation.current;
    dispatch({ type: 'loading' });
    try {
      const page = await listCommits(repo, branch, { limit: pageSize, before: state.next, path });
      if (mine === generation.current) {
        dispatch({ type: 'page', commits: page.commits, next: page.next, append: true });
      }
    } catch (reason) {
      dispatch({ type: 'error', message: errorMessage(reason) });
    }
  };

  React.useEffect(() => {
    void loadFirst();
  }, [loadFirst]);

  // Reload when a commit or rollback elsewhere changed this repo.
  React.useEffect(() => {
    const slot = (_: PachlsModel, changed: string) => {
      if (!changed || changed === repo) {
        void loadFirst();
      }
    };
    model.reposChanged.connect(slot);
    return () => {
      model.reposChanged.disconnect(slot);
    };
  }, [model, repo, loadFirst]);

  const pair = diffPair(state.commits, state.selected);
  const pairKey = pair ? `${pair.from.id}..${pair.to.id}` : '';
  React.useEffect(() => {
    setDiff(null);
    setDiffError(null);
    if (!pair) {
      return;
    }
    let live = true;
    diffCommits(repo, pair.to.id, pair.from.id)
      .then(d => live && setDiff(d))
      .catch(reason => live && setDiffError(errorMessage(reason)));
    return () => {
      live = false;
    };
  }, [pairKey, repo]);

  /** Move the branch's head onto `commit`: back (a rollback) or forward onto a commit a move left. */
  const moveHere = async (commit: ICommit, forward: boolean) => {
    setRowError(null);
    setNotice(null);
    const result = await showDialog({
      title: forward
        ? trans.__('Move %1 forward?', address(repo, branch))
        : trans.__('Roll back %1?', address(repo, branch)),
      body: trans.__(
        'Move the head of %1 from %2 to %3 (“%4”)? The move is recorded and no commit is lost: you can move the branch again from the history.',
        address(repo, branch),
        shortId(head),
        shortId(commit.id),
        firstLine(commit.message)
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        forward
          ? Dialog.okButton({ label: trans.__('Move the branch') })
          : Dialog.warnButton({ label: trans.__('Roll back') })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      // recorded with the move and shown on its row: a move forward is no rollback
      await moveBranchHead(repo, branch, commit.id, head, forward ? 'move forward' : 'rollback');
      setNotice({
        text: trans.__('%1 now points at %2.', address(repo, branch), shortId(commit.id)),
        head: commit.id
      });
      dispatch({ type: 'clearSelection' });
      model.notifyRepoChanged(repo);
    } catch (reason) {
      let message = errorMessage(reason);
      if (reason instanceof PachlsApiError && reason.error === 'conflict') {
        message = trans.__('The branch moved meanwhile; reload the history and try again. (%1)', message);
      }
      setRowError({ id: commit.id, message });
    }
  };

  return (
    <div className="jp-PachlsHistory" data-repo={repo} data-branch={branch} data-path={path ?? undefined}>
      <div className="jp-PachlsHistory-header">
        <h2 className="jp-PachlsHistory-title">
          {path
            ? trans.__('History of %1 in %2', path, address(repo, branch))
            : trans.__('History of %1', address(repo, branch))}
        </h2>
        <ActionButton
          label={trans.__('Reload the history')}
          icon={refreshIcon}
          disabled={state.loading}
          onClick={() => void loadFirst()}
          className="jp-PachlsHistory-reload"
        />
      </div>
      <div className="jp-PachlsHistory-hint">
        {state.selected.length < 2
          ? trans.__('Select two commits to compare them.')
          : trans.__('Comparing two commits; select another to change the pair.')}
      </div>
      {notice && notice.head === head ? (
        <div className="jp-PachlsNotice" role="status">
          {notice.text}
        </div>
      ) : null}
      <ErrorText message={state.error} trans={trans} />
      {pair ? (
        <div className="jp-PachlsDiff" aria-label={trans.__('Differences')}>
          <div className="jp-PachlsDiff-title">
            {trans.__('Changes from')} <CommitId id={pair.from.id} /> {trans.__('to')}{' '}
            <CommitId id={pair.to.id} />
            {diff ? (
              <span className="jp-PachlsDiff-counts">
                {(() => {
                  const c = countChanges(diff.changes);
                  return trans.__('%1 added, %2 modified, %3 deleted', c.added, c.modified, c.deleted);
                })()}
              </span>
            ) : null}
            <ActionButton
              label={trans.__('Clear the selection')}
              text={trans.__('Clear')}
              onClick={() => dispatch({ type: 'clearSelection' })}
            />
          </div>
          <ErrorText message={diffError} trans={trans} />
          {diff ? (
            <ChangeList
              changes={diff.changes}
              trans={trans}
              expand={showChange(trans, {
                repo,
                from: pair.from.id,
                to: pair.to.id,
                labels: isLabelCommit(pair.to.metadata)
              })}
              emptyText={trans.__('The two commits hold the same files.')}
            />
          ) : diffError ? null : (
            <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div>
          )}
        </div>
      ) : null}
      {state.loaded && state.commits.length === 0 ? (
        <div className="jp-PachlsEmpty">{trans.__('No commits on this branch yet.')}</div>
      ) : null}
      <ol className="jp-PachlsCommitList" aria-label={trans.__('Commits, newest first')}>
        {timeline(state.commits, path ? [] : left, path ? [] : moves, state.next !== null).map(item =>
          item.kind === 'move' ? (
            <MoveRow key={`move-${item.index}`} move={item.move} trans={trans} />
          ) : (
            <CommitRow
              key={item.commit.id}
              commit={item.commit}
              isHead={item.commit.id === head}
              left={item.kind === 'left'}
              focused={item.commit.id === props.focus}
              selected={state.selected.includes(item.commit.id)}
              onToggle={() => dispatch({ type: 'toggle', id: item.commit.id })}
              onMove={() => void moveHere(item.commit, item.kind === 'left')}
              error={rowError && rowError.id === item.commit.id ? rowError.message : null}
              onDismissError={() => setRowError(null)}
              repo={repo}
              path={path}
              trans={trans}
              showHistory={props.showHistory}
            />
          )
        )}
      </ol>
      {state.next ? (
        <div className="jp-PachlsMore">
          <ActionButton
            label={trans.__('Load older commits')}
            text={state.loading ? trans.__('Loading…') : trans.__('Load more')}
            disabled={state.loading}
            onClick={() => void loadMore()}
            className="jp-PachlsHistory-more"
          />
        </div>
      ) : null}
    </div>
  );
}

function MoveRow(props: { move: IBranchMove; trans: TranslationBundle }): JSX.Element {
  const { move, trans } = props;
  return (
    <li className="jp-PachlsMove" data-old-head={move.old_head ?? ''} data-new-head={move.new_head}>
      {trans.__('head moved %1 → %2', shortId(move.old_head) || '∅', shortId(move.new_head))}{' '}
      <span className="jp-PachlsMove-reason">{move.reason}</span>{' '}
      <span className="jp-PachlsMove-author">{move.author}</span> <TimeAgo iso={move.time} />
    </li>
  );
}

function CommitRow(props: {
  commit: ICommit;
  isHead: boolean;
  /** taken out of the branch by a head move (not in its history now) */
  left: boolean;
  focused: boolean;
  selected: boolean;
  onToggle: () => void;
  onMove: () => void;
  error: string | null;
  onDismissError: () => void;
  repo: string;
  /** the path a file's history follows (its download), else null (the whole repo) */
  path: string | null;
  trans: TranslationBundle;
  showHistory: (repo: string, branch: string, commit?: string) => void;
}): JSX.Element {
  const { commit, trans } = props;
  const [files, setFiles] = React.useState<IDiff | null>(null);
  const [filesError, setFilesError] = React.useState<string | null>(null);
  const [open, setOpen] = React.useState(false);
  const [labelsOpen, setLabelsOpen] = React.useState(false);
  const labelCommit = isLabelCommit(commit.metadata);
  const ref = React.useRef<HTMLLIElement>(null);

  React.useEffect(() => {
    if (props.focused) {
      ref.current?.scrollIntoView({ block: 'nearest' });
    }
  }, [props.focused]);

  const toggleFiles = async () => {
    const next = !open;
    setOpen(next);
    if (next && !files) {
      try {
        setFiles(await diffCommits(props.repo, commit.id));
      } catch (reason) {
        setFilesError(errorMessage(reason));
      }
    }
  };
  const changed = files ? countChanges(files.changes).total : null;

  return (
    <li
      ref={ref}
      className={`jp-PachlsCommit ${props.selected ? 'jp-mod-selected' : ''} ${
        props.focused ? 'jp-mod-focused' : ''
      }`}
      data-commit={commit.id}
      data-head={props.isHead ? 'true' : 'false'}
      data-left={props.left ? 'true' : 'false'}
    >
      <div className="jp-PachlsCommit-row">
        <input
          type="checkbox"
          className="jp-PachlsCommit-select"
          checked={props.selected}
          onChange={props.onToggle}
          aria-label={trans.__('Select commit %1 for comparison', shortId(commit.id))}
        />
        <CommitId id={commit.id} />
        {props.isHead ? <span className="jp-PachlsBadge jp-PachlsBadge-head">{trans.__('head')}</span> : null}
        {props.left ? (
          <span
            className="jp-PachlsBadge jp-PachlsBadge-left"
            title={trans.__('A head move took this commit out of the branch; it is kept, and the branch can move back onto it.')}
          >
            {trans.__('not on the branch')}
          </span>
        ) : null}
        <span className="jp-PachlsCommit-message" title={commit.message}>
          {firstLine(commit.message) || trans.__('(no message)')}
        </span>
      </div>
      <div className="jp-PachlsCommit-meta">
        <span className="jp-PachlsCommit-author">{commit.author || trans.__('unknown author')}</span>
        <TimeAgo iso={commit.finished ?? commit.started} />
        <button
          type="button"
          className="jp-PachlsLink jp-PachlsCommit-files"
          aria-expanded={open}
          aria-label={trans.__('Files changed by commit %1', shortId(commit.id))}
          title={trans._n('%1 file in this commit', '%1 files in this commit', commit.n_files)}
          onClick={() => void toggleFiles()}
        >
          {/* the count of changed files once known; the commit's file total is a different number */}
          {changed !== null
            ? trans._n('%1 file changed', '%1 files changed', changed)
            : trans.__('files changed')}
        </button>
        {labelCommit ? (
          <button
            type="button"
            className="jp-PachlsLink jp-PachlsCommit-labelChanges"
            aria-expanded={labelsOpen}
            aria-label={trans.__('Label changes of commit %1', shortId(commit.id))}
            onClick={() => setLabelsOpen(!labelsOpen)}
          >
            {trans.__('label changes')}
          </button>
        ) : null}
        {labelCommit ? (
          <button
            type="button"
            className="jp-PachlsLink jp-PachlsCommit-exportLabels"
            aria-label={trans.__('Export the labels of commit %1', shortId(commit.id))}
            onClick={() => void showExportLabelsDialog(props.repo, commit.id, trans)}
          >
            {trans.__('Export labels…')}
          </button>
        ) : null}
        {commit.provenance.length > 0 ? (
          <span className="jp-PachlsCommit-provenance">
            {trans.__('made against')}{' '}
            {commit.provenance.map(p => (
              <button
                key={`${p.repo}@${p.commit}`}
                type="button"
                className="jp-PachlsLink jp-PachlsProvenance"
                title={address(p.repo, p.commit)}
                aria-label={trans.__('Show %1 in the history of %2', shortId(p.commit), address(p.repo, p.branch ?? 'master'))}
                onClick={() => props.showHistory(p.repo, p.branch ?? 'master', p.commit)}
              >
                {address(p.repo, shortId(p.commit))}
              </button>
            ))}
          </span>
        ) : null}
        <DownloadButton repo={props.repo} commit={commit.id} path={props.path ?? '/'} trans={trans} />
        {!props.isHead ? (
          <ActionButton
            label={
              props.left
                ? trans.__('Move the branch forward to commit %1', shortId(commit.id))
                : trans.__('Roll back to commit %1', shortId(commit.id))
            }
            text={trans.__('Move the branch here')}
            variant={props.left ? undefined : 'warn'}
            onClick={props.onMove}
            className="jp-PachlsCommit-move"
          />
        ) : null}
      </div>
      {open ? (
        <div className="jp-PachlsCommit-changes">
          <ErrorText message={filesError} trans={trans} />
          {files ? (
            <ChangeList
              changes={files.changes}
              trans={trans}
              emptyText={trans.__('No file changed.')}
              expand={showChange(trans, {
                repo: props.repo,
                from: commit.parent,
                to: commit.id,
                labels: labelCommit
              })}
            />
          ) : filesError ? null : (
            <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div>
          )}
        </div>
      ) : null}
      {labelsOpen ? (
        <div className="jp-PachlsCommit-labels">
          <LabelChanges trans={trans} repo={props.repo} commit={commit.id} parent={commit.parent} />
        </div>
      ) : null}
      <ErrorText message={props.error} trans={trans} onDismiss={props.onDismissError} />
    </li>
  );
}
