import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  addIcon,
  caretDownIcon,
  caretRightIcon,
  fileUploadIcon,
  historyIcon
} from '@jupyterlab/ui-components';

import { IBranch, IMountRequest, IMountStatus, IRepo } from '../api';
import { IUploadFile, droppedFiles } from '../api/imports';
import { address, firstLine } from '../format';
import { PachlsModel } from '../model';
import { errorMessage, filterRepos } from '../state';
import { ActionButton, CancelButton, ErrorText, Section, TimeAgo } from './common';
import { showImportDialog } from './ImportDialog';

/** Repos rendered at once; more on demand (the filter narrows the rest). */
export const REPO_PAGE = 100;
/** Up to this many repos, all are expanded by default. */
const EXPAND_ALL_BELOW = 25;

export interface IRepoActions {
  showHistory(repo: string, branch: string): Promise<void>;
}

export function RepoTree(props: {
  model: PachlsModel;
  trans: TranslationBundle;
  actions: IRepoActions;
}): JSX.Element {
  const { model, trans } = props;
  const state = model.state;
  const repos = state.repos?.repos ?? null;
  const [filter, setFilter] = React.useState('');
  const deferredFilter = React.useDeferredValue(filter);
  const [limit, setLimit] = React.useState(REPO_PAGE);
  const [creating, setCreating] = React.useState(false);
  // Repos whose expansion the user toggled away from the default.
  const [toggled, setToggled] = React.useState<Set<string>>(new Set());

  const filtered = React.useMemo(
    () => (repos ? filterRepos(repos, deferredFilter) : []),
    [repos, deferredFilter]
  );
  React.useEffect(() => setLimit(REPO_PAGE), [deferredFilter]);

  const defaultExpanded =
    (repos?.length ?? 0) <= EXPAND_ALL_BELOW || deferredFilter.trim() !== '';
  const isExpanded = (key: string) => defaultExpanded !== toggled.has(key);
  const toggle = (key: string) => {
    const next = new Set(toggled);
    if (next.has(key)) {
      next.delete(key);
    } else {
      next.add(key);
    }
    setToggled(next);
  };

  const mountsByBranch = React.useMemo(() => {
    const map = new Map<string, IMountStatus[]>();
    for (const m of state.mounts?.mounts ?? []) {
      if (m.branch && !m.commit) {
        const key = `${m.repo}@${m.branch}`;
        map.set(key, [...(map.get(key) ?? []), m]);
      }
    }
    return map;
  }, [state.mounts]);

  return (
    <Section
      id="repos"
      title={trans.__('Repos')}
      actions={
        <ActionButton
          label={trans.__('Create a repo')}
          icon={addIcon}
          text={trans.__('New repo')}
          expanded={creating}
          onClick={() => setCreating(!creating)}
          className="jp-PachlsRepos-new"
        />
      }
    >
      {creating ? (
        <CreateRepoForm
          model={model}
          trans={trans}
          onDone={() => setCreating(false)}
        />
      ) : null}
      <div className="jp-PachlsFilter">
        <input
          type="search"
          className="jp-PachlsInput jp-PachlsFilter-input"
          placeholder={trans.__('Filter')}
          title={trans.__('Filter repos and branches')}
          aria-label={trans.__('Filter repos and branches')}
          value={filter}
          onChange={e => setFilter(e.target.value)}
        />
        {repos ? (
          <span className="jp-PachlsFilter-count" aria-live="polite">
            {filter
              ? trans.__('%1 of %2', filtered.length, repos.length)
              : trans._n('%1 repo', '%1 repos', repos.length)}
          </span>
        ) : null}
      </div>
      <ErrorText message={state.reposError} trans={trans} />
      {repos === null ? (
        state.reposError ? null : (
          <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div>
        )
      ) : repos.length === 0 ? (
        <div className="jp-PachlsEmpty">
          {trans.__('No repos yet. Create one with “New repo”.')}
        </div>
      ) : filtered.length === 0 ? (
        <div className="jp-PachlsEmpty">{trans.__('No repo matches the filter.')}</div>
      ) : (
        <ul className="jp-PachlsRepoList" aria-label={trans.__('Repos')}>
          {filtered.slice(0, limit).map(({ key, repo }) => (
            <RepoItem
              key={key}
              repoKey={key}
              repo={repo}
              expanded={isExpanded(key)}
              onToggle={() => toggle(key)}
              model={model}
              trans={trans}
              actions={props.actions}
              mountsByBranch={mountsByBranch}
            />
          ))}
        </ul>
      )}
      {filtered.length > limit ? (
        <div className="jp-PachlsMore">
          <ActionButton
            label={trans.__('Show %1 more repos', Math.min(REPO_PAGE, filtered.length - limit))}
            text={trans.__('Show more (%1 not shown)', filtered.length - limit)}
            onClick={() => setLimit(limit + REPO_PAGE)}
          />
        </div>
      ) : null}
    </Section>
  );
}

const RepoItem = React.memo(function RepoItem(props: {
  repoKey: string;
  repo: IRepo;
  expanded: boolean;
  onToggle: () => void;
  model: PachlsModel;
  trans: TranslationBundle;
  actions: IRepoActions;
  mountsByBranch: Map<string, IMountStatus[]>;
}): JSX.Element {
  const { repo, repoKey, trans } = props;
  // A repo without branches can still be mounted read-write at master: the
  // first commit creates the branch.
  const branches: IBranch[] =
    repo.branches.length > 0
      ? repo.branches
      : [{ repo: repoKey, name: 'master', head: null }];
  return (
    <li className="jp-PachlsRepo" data-repo={repoKey}>
      <div className="jp-PachlsRepo-header">
        <button
          type="button"
          className="jp-PachlsRepo-toggle"
          aria-expanded={props.expanded}
          aria-label={trans.__('Repo %1', repoKey)}
          title={repo.description || repoKey}
          onClick={props.onToggle}
        >
          {props.expanded ? (
            <caretDownIcon.react tag="span" elementSize="small" />
          ) : (
            <caretRightIcon.react tag="span" elementSize="small" />
          )}
          <span className="jp-PachlsRepo-name" title={repoKey}>
            {repoKey}
          </span>
        </button>
        {repo.description ? (
          <span className="jp-PachlsRepo-description" title={repo.description}>
            {repo.description}
          </span>
        ) : null}
      </div>
      {props.expanded ? (
        <ul className="jp-PachlsBranchList" aria-label={trans.__('Branches of %1', repoKey)}>
          {branches.map(branch => (
            <BranchRow
              key={branch.name}
              repoKey={repoKey}
              branch={branch}
              model={props.model}
              trans={trans}
              actions={props.actions}
              mounts={props.mountsByBranch.get(`${repoKey}@${branch.name}`) ?? []}
            />
          ))}
        </ul>
      ) : null}
    </li>
  );
});

function BranchRow(props: {
  repoKey: string;
  branch: IBranch;
  model: PachlsModel;
  trans: TranslationBundle;
  actions: IRepoActions;
  mounts: IMountStatus[];
}): JSX.Element {
  const { repoKey, branch, model, trans } = props;
  const head = branch.head;
  const [busy, setBusy] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const where = address(repoKey, branch.name);

  const mount = async (mode: 'ro' | 'rw') => {
    setBusy(mode);
    setError(null);
    try {
      const request: IMountRequest = { repo: repoKey, branch: branch.name, mode };
      await model.mountBranch(request);
    } catch (reason) {
      setError(errorMessage(reason));
    } finally {
      setBusy(null);
    }
  };
  const mountedRo = props.mounts.some(m => m.mode === 'ro');
  const mountedRw = props.mounts.some(m => m.mode === 'rw');
  const [dropping, setDropping] = React.useState(false);

  // "Import folder…" (files = null) and files dropped on the row: one commit each
  const importInto = async (files: IUploadFile[] | null) => {
    setError(null);
    const result = await showImportDialog({ repo: repoKey, branch: branch.name, files, trans });
    if (result !== null) {
      await model.refresh();
    }
  };
  const onDrop = (event: React.DragEvent) => {
    event.preventDefault();
    setDropping(false);
    droppedFiles(event.dataTransfer)
      .then(files =>
        files.length > 0 ? importInto(files) : setError(trans.__('Nothing to import in what was dropped.'))
      )
      .catch(reason => setError(errorMessage(reason)));
  };

  return (
    <li
      className={`jp-PachlsBranch ${dropping ? 'jp-mod-dropTarget' : ''}`}
      data-branch={branch.name}
      title={dropping ? trans.__('Drop to import into %1 (one commit)', where) : undefined}
      onDragOver={event => {
        if (event.dataTransfer.types.includes('Files')) {
          event.preventDefault();
          event.dataTransfer.dropEffect = 'copy';
          setDropping(true);
        }
      }}
      onDragLeave={() => setDropping(false)}
      onDrop={onDrop}
    >
      <div className="jp-PachlsBranch-row">
        <span className="jp-PachlsBranch-name" title={branch.name}>
          {branch.name}
        </span>
        {head ? (
          <span className="jp-PachlsBranch-head" title={head.message ? `${head.id}: ${head.message}` : head.id}>
            {head.id.slice(0, 8)}
          </span>
        ) : (
          <span className="jp-PachlsBranch-head jp-PachlsBranch-empty">
            {trans.__('no commits')}
          </span>
        )}
        <span className="jp-PachlsBranch-actions">
          <ActionButton
            label={trans.__('Show the history of %1', where)}
            icon={historyIcon}
            disabled={!head}
            onClick={() => {
              setError(null);
              props.actions
                .showHistory(repoKey, branch.name)
                .catch(reason => setError(errorMessage(reason)));
            }}
            className="jp-PachlsBranch-history"
          />
          <ActionButton
            label={trans.__('Import a folder into %1', where)}
            title={trans.__('Import folder… into %1 (or drop files on this row)', where)}
            icon={fileUploadIcon}
            onClick={() => void importInto(null).catch(reason => setError(errorMessage(reason)))}
            className="jp-PachlsBranch-import"
          />
          <ActionButton
            label={trans.__('Mount %1 read-only', where)}
            text={busy === 'ro' ? '…' : trans.__('RO')}
            title={mountedRo ? trans.__('%1 is mounted read-only', where) : trans.__('Mount %1 read-only', where)}
            pressed={mountedRo}
            disabled={busy !== null || !head}
            onClick={() => void mount('ro')}
            className="jp-PachlsBranch-mountRo"
          />
          <ActionButton
            label={trans.__('Mount %1 read-write', where)}
            text={busy === 'rw' ? '…' : trans.__('RW')}
            title={mountedRw ? trans.__('%1 is mounted read-write', where) : trans.__('Mount %1 read-write', where)}
            pressed={mountedRw}
            disabled={busy !== null}
            onClick={() => void mount('rw')}
            className="jp-PachlsBranch-mountRw"
          />
        </span>
      </div>
      {head ? (
        <div className="jp-PachlsBranch-meta">
          <TimeAgo iso={head.finished ?? head.started} />
          {head.message ? (
            <span className="jp-PachlsBranch-message" title={head.message}>
              {firstLine(head.message)}
            </span>
          ) : null}
        </div>
      ) : null}
      <ErrorText message={error} trans={trans} onDismiss={() => setError(null)} />
    </li>
  );
}

function CreateRepoForm(props: {
  model: PachlsModel;
  trans: TranslationBundle;
  onDone: () => void;
}): JSX.Element {
  const { trans } = props;
  const [name, setName] = React.useState('');
  const [description, setDescription] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const nameRef = React.useRef<HTMLInputElement>(null);
  React.useEffect(() => nameRef.current?.focus(), []);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!name.trim()) {
      setError(trans.__('A repo needs a name.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await props.model.createRepo(name.trim(), description.trim());
      props.onDone();
    } catch (reason) {
      setError(errorMessage(reason));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="jp-PachlsCreateRepo"
      aria-label={trans.__('Create a repo')}
      onSubmit={submit}
      onKeyDown={e => {
        if (e.key === 'Escape') {
          props.onDone();
        }
      }}
    >
      <label>
        {trans.__('Name')}
        <input
          ref={nameRef}
          type="text"
          className="jp-PachlsInput jp-PachlsCreateRepo-name"
          placeholder={trans.__('e.g. images or project/images')}
          value={name}
          required
          onChange={e => setName(e.target.value)}
        />
      </label>
      <label>
        {trans.__('Description (optional)')}
        <input
          type="text"
          className="jp-PachlsInput jp-PachlsCreateRepo-description"
          value={description}
          onChange={e => setDescription(e.target.value)}
        />
      </label>
      <div className="jp-PachlsForm-buttons">
        <button type="submit" className="jp-PachlsButton jp-PachlsButton-accept" disabled={busy}>
          {busy ? trans.__('Creating…') : trans.__('Create')}
        </button>
        <CancelButton cancel={props.onDone} trans={trans} />
      </div>
      <ErrorText message={error} trans={trans} />
    </form>
  );
}
