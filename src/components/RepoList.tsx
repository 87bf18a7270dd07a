import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { IBranch, IRepo } from '../api';

/** Length of the commit id prefix shown in the panel. */
export const SHORT_ID_LENGTH = 8;

export interface IRepoListProps {
  repos: IRepo[];
  trans: TranslationBundle;
}

function repoKey(repo: IRepo): string {
  return repo.project && repo.project !== 'default'
    ? `${repo.project}/${repo.name}`
    : repo.name;
}

function BranchRow(props: {
  branch: IBranch;
  trans: TranslationBundle;
}): JSX.Element {
  const { branch, trans } = props;
  const head = branch.head;
  return (
    <li className="jp-PachlsBranch" data-branch={branch.name}>
      <span className="jp-PachlsBranch-name">{branch.name}</span>
      {head ? (
        <span
          className="jp-PachlsBranch-head"
          title={
            head.message
              ? trans.__('%1: %2', head.id, head.message)
              : head.id
          }
        >
          {head.id.slice(0, SHORT_ID_LENGTH)}
        </span>
      ) : (
        <span className="jp-PachlsBranch-head jp-PachlsBranch-empty">
          {trans.__('no commits')}
        </span>
      )}
    </li>
  );
}

/** The repos of the store, each with its branches and their head commits. */
export function RepoList(props: IRepoListProps): JSX.Element {
  const { repos, trans } = props;
  if (repos.length === 0) {
    return (
      <div className="jp-PachlsPanel-empty">
        {trans.__('No repos yet.')}
      </div>
    );
  }
  return (
    <ul className="jp-PachlsRepoList">
      {repos.map(repo => (
        <li
          key={repoKey(repo)}
          className="jp-PachlsRepo"
          data-repo={repoKey(repo)}
        >
          <div className="jp-PachlsRepo-header" title={repo.description}>
            <span className="jp-PachlsRepo-name">{repoKey(repo)}</span>
            {repo.description ? (
              <span className="jp-PachlsRepo-description">
                {repo.description}
              </span>
            ) : null}
          </div>
          {repo.branches.length > 0 ? (
            <ul className="jp-PachlsBranchList">
              {repo.branches.map(branch => (
                <BranchRow key={branch.name} branch={branch} trans={trans} />
              ))}
            </ul>
          ) : (
            <div className="jp-PachlsRepo-nobranch">
              {trans.__('No branches.')}
            </div>
          )}
        </li>
      ))}
    </ul>
  );
}
