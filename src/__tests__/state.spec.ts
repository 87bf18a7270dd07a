import { describe, expect, it } from 'vitest';
import { nullTranslator } from '@jupyterlab/translation';

import { ICommit, IRepo, PachlsApiError } from '../api';
import {
  conflictPaths,
  countChanges,
  defaultMountName,
  diffPair,
  errorMessage,
  filterRepos,
  groupChanges,
  historyReducer,
  initialHistory,
  mountBehindText
} from '../state';

function repo(name: string, branches: string[], project = 'default', description = ''): IRepo {
  return {
    name,
    project,
    description,
    created: null,
    size_bytes: 0,
    branches: branches.map(b => ({ repo: name, name: b, head: null }))
  };
}

function commit(id: string): ICommit {
  return {
    id,
    repo: 'r',
    branch: 'master',
    parent: null,
    message: id,
    author: 'a',
    started: null,
    finished: null,
    provenance: [],
    origin: 'USER',
    size_bytes: 0,
    n_files: 0
  };
}

describe('filterRepos', () => {
  const repos = [
    repo('images', ['master', 'dev']),
    repo('labels', ['master'], 'default', 'Labels of the cats'),
    repo('audio', ['staging'], 'sound')
  ];

  it('returns everything for an empty filter', () => {
    expect(filterRepos(repos, '  ').map(r => r.key)).toEqual(['images', 'labels', 'sound/audio']);
  });
  it('matches names, projects and descriptions case-insensitively', () => {
    expect(filterRepos(repos, 'IMA').map(r => r.key)).toEqual(['images']);
    expect(filterRepos(repos, 'sound').map(r => r.key)).toEqual(['sound/audio']);
    expect(filterRepos(repos, 'cats').map(r => r.key)).toEqual(['labels']);
  });
  it('narrows to matching branches when only a branch matches', () => {
    const found = filterRepos(repos, 'dev');
    expect(found).toHaveLength(1);
    expect(found[0].nameMatched).toBe(false);
    expect(found[0].repo.branches.map(b => b.name)).toEqual(['dev']);
    expect(filterRepos(repos, 'images@dev')[0].repo.branches.map(b => b.name)).toEqual(['dev']);
  });
  it('requires every word', () => {
    expect(filterRepos(repos, 'images staging')).toEqual([]);
    expect(filterRepos(repos, 'audio staging').map(r => r.key)).toEqual(['sound/audio']);
  });
  it('filters 1,000 repos quickly', () => {
    const many = Array.from({ length: 1000 }, (_, i) => repo(`repo-${i}`, ['master', `feature-${i}`]));
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      filterRepos(many, `feature-${i}9`);
    }
    expect(Date.now() - t0).toBeLessThan(500);
    expect(filterRepos(many, 'repo-99').map(r => r.key)).toEqual([
      'repo-99', ...Array.from({ length: 10 }, (_, i) => `repo-99${i}`)
    ]);
  });
});

describe('historyReducer', () => {
  it('loads, appends without duplicates and records the cursor', () => {
    let s = historyReducer(initialHistory, { type: 'loading' });
    expect(s.loading).toBe(true);
    s = historyReducer(s, { type: 'page', commits: [commit('c3'), commit('c2')], next: 'c2', append: false });
    expect(s.loaded).toBe(true);
    expect(s.loading).toBe(false);
    expect(s.next).toBe('c2');
    s = historyReducer(s, { type: 'page', commits: [commit('c2'), commit('c1')], next: null, append: true });
    expect(s.commits.map(c => c.id)).toEqual(['c3', 'c2', 'c1']);
    expect(s.next).toBeNull();
  });
  it('keeps at most two selected commits, dropping the oldest choice', () => {
    let s = historyReducer(initialHistory, {
      type: 'page', commits: [commit('c3'), commit('c2'), commit('c1')], next: null, append: false
    });
    s = historyReducer(s, { type: 'toggle', id: 'c1' });
    s = historyReducer(s, { type: 'toggle', id: 'c2' });
    s = historyReducer(s, { type: 'toggle', id: 'c3' });
    expect(s.selected).toEqual(['c2', 'c3']);
    s = historyReducer(s, { type: 'toggle', id: 'c3' });
    expect(s.selected).toEqual(['c2']);
    s = historyReducer(s, { type: 'clearSelection' });
    expect(s.selected).toEqual([]);
  });
  it('drops selections of commits no longer listed after a reload', () => {
    let s = historyReducer(initialHistory, {
      type: 'page', commits: [commit('c2'), commit('c1')], next: null, append: false
    });
    s = historyReducer(s, { type: 'toggle', id: 'c2' });
    s = historyReducer(s, { type: 'toggle', id: 'c1' });
    s = historyReducer(s, { type: 'page', commits: [commit('c1')], next: null, append: false });
    expect(s.selected).toEqual(['c1']);
  });
  it('keeps the commits on error', () => {
    let s = historyReducer(initialHistory, { type: 'page', commits: [commit('c1')], next: null, append: false });
    s = historyReducer(s, { type: 'error', message: 'boom' });
    expect(s.error).toBe('boom');
    expect(s.commits).toHaveLength(1);
    expect(historyReducer(s, { type: 'reset' })).toBe(initialHistory);
  });
});

describe('diffPair', () => {
  const commits = [commit('c3'), commit('c2'), commit('c1')];
  it('orders the pair older → newer whatever the selection order', () => {
    expect(diffPair(commits, ['c3', 'c1'])).toEqual({ from: commits[2], to: commits[0] });
    expect(diffPair(commits, ['c1', 'c3'])).toEqual({ from: commits[2], to: commits[0] });
  });
  it('needs exactly two loaded commits', () => {
    expect(diffPair(commits, ['c1'])).toBeNull();
    expect(diffPair(commits, ['c1', 'zz'])).toBeNull();
  });
});

describe('changes', () => {
  const changes = [
    { path: '/b', change: 'added' as const, size: 1, old_size: null },
    { path: '/a', change: 'added' as const, size: 1, old_size: null },
    { path: '/c', change: 'deleted' as const, size: 0, old_size: 3 },
    { path: '/d', change: 'modified' as const, size: 2, old_size: 1 }
  ];
  it('counts by kind', () => {
    expect(countChanges(changes)).toEqual({ added: 2, modified: 1, deleted: 1, total: 4 });
    expect(countChanges([])).toEqual({ added: 0, modified: 0, deleted: 0, total: 0 });
  });
  it('groups by kind in path order', () => {
    const g = groupChanges(changes);
    expect(g.added.map(c => c.path)).toEqual(['/a', '/b']);
    expect(g.modified.map(c => c.path)).toEqual(['/d']);
    expect(g.deleted.map(c => c.path)).toEqual(['/c']);
  });
});

describe('errors', () => {
  it('reads conflicting paths of a 409 conflict only', () => {
    const conflict = new PachlsApiError(409, {
      error: 'conflict',
      message: 'staged paths changed',
      details: { paths: ['/a.json', 3, '/b.json'] }
    });
    expect(conflictPaths(conflict)).toEqual(['/a.json', '/b.json']);
    expect(conflictPaths(new PachlsApiError(409, { error: 'conflict', message: 'nothing staged', details: {} }))).toBeNull();
    expect(conflictPaths(new PachlsApiError(404, { error: 'not_found', message: 'x', details: { paths: [] } }))).toBeNull();
    expect(conflictPaths(new Error('x'))).toBeNull();
  });
  it('turns anything into words', () => {
    expect(errorMessage(new PachlsApiError(400, { error: 'invalid_name', message: 'bad name', details: {} }))).toBe('bad name');
    expect(errorMessage(new Error('plain'))).toBe('plain');
    expect(errorMessage('text')).toBe('text');
  });
  it('derives mount names like the server', () => {
    expect(defaultMountName('images', 'master')).toBe('images');
    expect(defaultMountName('images', 'dev')).toBe('images_dev');
    expect(defaultMountName('proj/images', 'dev')).toBe('images_dev');
  });
});

describe('mountBehindText', () => {
  const trans = nullTranslator.load('jupyterlab_pachls');

  it('words a mount behind its branch, up to date, or below a rolled-back branch', () => {
    expect(mountBehindText(trans, { behind: 0, diverged: false })).toBe('up to date');
    expect(mountBehindText(trans, { behind: 1 })).toBe('1 commit behind');
    expect(mountBehindText(trans, { behind: 3, diverged: false })).toBe('3 commits behind');
    expect(mountBehindText(trans, { behind: 0, diverged: true, head: 'ab12cd34'.repeat(4) })).toBe(
      'branch was rolled back to ab12cd34'
    );
    expect(mountBehindText(trans, { behind: 0, diverged: true })).toBe('branch was moved off this commit');
    // never "up to date" for a base the branch left, whatever behind says
    expect(mountBehindText(trans, { behind: -1, diverged: true, head: null })).not.toBe('up to date');
  });
});
