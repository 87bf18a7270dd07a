/** Pure state logic of the panel and the history view, unit tested. */

import { TranslationBundle } from '@jupyterlab/translation';

import { IChange, ICommit, IFileChange, IMountStatus, IRepo, PachlsApiError } from './api';
import { repoKey, shortId } from './format';

/* ----------------------------------------------------------------------- */
/* Repo filter                                                              */
/* ----------------------------------------------------------------------- */

/** A repo that matches the filter, with the branches to show. */
export interface IFilteredRepo {
  key: string;
  repo: IRepo;
  /** True when the repo name matched (all its branches are shown). */
  nameMatched: boolean;
}

/**
 * Repos whose `project/name` or description, or one of whose branch names,
 * contains every whitespace-separated word of `filter` (case-insensitive).
 */
export function filterRepos(repos: IRepo[], filter: string): IFilteredRepo[] {
  const words = filter.toLowerCase().split(/\s+/).filter(w => w.length > 0);
  const out: IFilteredRepo[] = [];
  for (const repo of repos) {
    const key = repoKey(repo);
    if (words.length === 0) {
      out.push({ key, repo, nameMatched: true });
      continue;
    }
    const haystack = `${key} ${repo.description}`.toLowerCase();
    if (words.every(w => haystack.includes(w))) {
      out.push({ key, repo, nameMatched: true });
      continue;
    }
    const branches = repo.branches.filter(b => {
      const text = `${key}@${b.name}`.toLowerCase();
      return words.every(w => text.includes(w));
    });
    if (branches.length > 0) {
      out.push({ key, repo: { ...repo, branches }, nameMatched: false });
    }
  }
  return out;
}

/* ----------------------------------------------------------------------- */
/* History                                                                  */
/* ----------------------------------------------------------------------- */

export interface IHistoryState {
  commits: ICommit[];
  /** Cursor of the next page; null when the last page is loaded. */
  next: string | null;
  /** True once the first page arrived. */
  loaded: boolean;
  loading: boolean;
  error: string | null;
  /** Up to two selected commit ids, in the order they were selected. */
  selected: string[];
}

export const initialHistory: IHistoryState = {
  commits: [],
  next: null,
  loaded: false,
  loading: false,
  error: null,
  selected: []
};

export type HistoryAction =
  | { type: 'reset' }
  | { type: 'loading' }
  | { type: 'page'; commits: ICommit[]; next: string | null; append: boolean }
  | { type: 'error'; message: string }
  | { type: 'toggle'; id: string }
  | { type: 'clearSelection' };

/** Reducer of the history view. */
export function historyReducer(
  state: IHistoryState,
  action: HistoryAction
): IHistoryState {
  switch (action.type) {
    case 'reset':
      return initialHistory;
    case 'loading':
      return { ...state, loading: true, error: null };
    case 'page': {
      let commits: ICommit[];
      if (action.append) {
        const seen = new Set(state.commits.map(c => c.id));
        commits = state.commits.concat(action.commits.filter(c => !seen.has(c.id)));
      } else {
        commits = action.commits;
      }
      const ids = new Set(commits.map(c => c.id));
      return {
        ...state,
        commits,
        next: action.next,
        loaded: true,
        loading: false,
        error: null,
        selected: state.selected.filter(id => ids.has(id))
      };
    }
    case 'error':
      return { ...state, loading: false, error: action.message };
    case 'toggle': {
      if (state.selected.includes(action.id)) {
        return { ...state, selected: state.selected.filter(id => id !== action.id) };
      }
      // At most two: selecting a third drops the oldest selection.
      const selected = [...state.selected, action.id].slice(-2);
      return { ...state, selected };
    }
    case 'clearSelection':
      return { ...state, selected: [] };
    default:
      return state;
  }
}

/**
 * The two selected commits as `{from: older, to: newer}`, by their place in the
 * (newest first) history; null unless exactly two are selected and loaded.
 */
export function diffPair(
  commits: ICommit[],
  selected: string[]
): { from: ICommit; to: ICommit } | null {
  if (selected.length !== 2) {
    return null;
  }
  const a = commits.findIndex(c => c.id === selected[0]);
  const b = commits.findIndex(c => c.id === selected[1]);
  if (a === -1 || b === -1) {
    return null;
  }
  // Newest first: the larger index is the older commit.
  return a > b
    ? { from: commits[a], to: commits[b] }
    : { from: commits[b], to: commits[a] };
}

/* ----------------------------------------------------------------------- */
/* Changes                                                                  */
/* ----------------------------------------------------------------------- */

export interface IChangeCounts {
  added: number;
  modified: number;
  deleted: number;
  total: number;
}

/** Counts of added, modified and deleted paths. */
export function countChanges(
  changes: Array<IChange | IFileChange>
): IChangeCounts {
  const counts = { added: 0, modified: 0, deleted: 0, total: 0 };
  for (const c of changes) {
    counts[c.change] += 1;
    counts.total += 1;
  }
  return counts;
}

/** Changes grouped by kind, each group in path order. */
export function groupChanges<T extends { path: string; change: string }>(
  changes: T[]
): { added: T[]; modified: T[]; deleted: T[] } {
  const groups = { added: [] as T[], modified: [] as T[], deleted: [] as T[] };
  const sorted = [...changes].sort((x, y) =>
    x.path < y.path ? -1 : x.path > y.path ? 1 : 0
  );
  for (const c of sorted) {
    if (c.change === 'added' || c.change === 'modified' || c.change === 'deleted') {
      groups[c.change].push(c);
    }
  }
  return groups;
}

/* ----------------------------------------------------------------------- */
/* Errors                                                                   */
/* ----------------------------------------------------------------------- */

/** The text to show for any failure. */
export function errorMessage(reason: unknown): string {
  if (reason instanceof Error) {
    return reason.message;
  }
  return String(reason);
}

/** The conflicting paths a 409 `conflict` answer names in `details.paths`. */
export function conflictPaths(reason: unknown): string[] | null {
  if (!(reason instanceof PachlsApiError) || reason.error !== 'conflict') {
    return null;
  }
  const paths = reason.details.paths;
  if (!Array.isArray(paths)) {
    return null;
  }
  return paths.filter((p): p is string => typeof p === 'string');
}

/** A mount name as the server derives it: `<repo>` for master, else `<repo>_<branch>`. */
export function defaultMountName(repo: string, branch: string): string {
  const base = repo.includes('/') ? repo.slice(repo.lastIndexOf('/') + 1) : repo;
  return branch === 'master' ? base : `${base}_${branch}`;
}

/** "up to date", "N commits behind", or that the branch was rolled back below the mount. */
export function mountBehindText(
  trans: TranslationBundle,
  mount: Pick<IMountStatus, 'behind' | 'diverged' | 'head'>
): string {
  if (mount.diverged || mount.behind < 0) {
    return mount.head
      ? trans.__('branch was rolled back to %1', shortId(mount.head))
      : trans.__('branch was moved off this commit');
  }
  return mount.behind > 0
    ? trans._n('%1 commit behind', '%1 commits behind', mount.behind)
    : trans.__('up to date');
}

/** One row of a branch's history: a commit on it, a commit a head move left, or the move. */
export type TimelineItem<M> =
  | { kind: 'branch' | 'left'; commit: ICommit }
  | { kind: 'move'; move: M; index: number };

function when(iso: string | null | undefined): number {
  return iso ? Date.parse(iso) : 0;
}

/**
 * The branch's commits, the commits head moves left and the moves themselves,
 * newest first, each where it happened. While older pages are not loaded,
 * what is older than the last loaded commit waits for them.
 */
export function timeline<M extends { time: string | null }>(
  commits: ICommit[],
  left: ICommit[],
  moves: M[],
  more: boolean
): Array<TimelineItem<M>> {
  const items: Array<TimelineItem<M> & { at: number }> = [
    ...commits.map(c => ({ kind: 'branch' as const, commit: c, at: when(c.finished ?? c.started) })),
    ...left.map(c => ({ kind: 'left' as const, commit: c, at: when(c.finished ?? c.started) })),
    ...moves.map((m, index) => ({ kind: 'move' as const, move: m, index, at: when(m.time) }))
  ];
  const oldest = commits.length ? when(commits[commits.length - 1].finished) : 0;
  // a stable sort keeps the branch's own order among commits finished in the same millisecond
  return items.filter(i => i.kind === 'branch' || !more || i.at >= oldest).sort((a, b) => b.at - a.at);
}

/** What a file browser entry of a read-write mount shows: its own change, or changes below it. */
export type PendingMark = 'added' | 'modified' | 'below';

/**
 * The mark of each entry `name` of directory `dir` (a repo path of the mount):
 * a file's own change, or `below` for a directory holding changes (deleted
 * files included, which the browser no longer lists).
 */
export function pendingMarks(
  dir: string,
  names: string[],
  changes: Array<Pick<IChange, 'path' | 'change'>>
): Map<string, PendingMark> {
  const prefix = dir === '/' ? '/' : `${dir}/`;
  const marks = new Map<string, PendingMark>();
  const wanted = new Set(names);
  for (const change of changes) {
    if (!change.path.startsWith(prefix)) {
      continue;
    }
    const rest = change.path.slice(prefix.length);
    const slash = rest.indexOf('/');
    const name = slash < 0 ? rest : rest.slice(0, slash);
    if (!wanted.has(name)) {
      continue;
    }
    if (slash >= 0) {
      marks.set(name, 'below');
    } else if (change.change !== 'deleted') {
      marks.set(name, change.change);
    }
  }
  return marks;
}

/** The deleted files a listing of a directory cannot show. */
export interface IPendingDeletions {
  /** Deleted files of the directory, or below an entry it no longer lists (paths relative to it). */
  here: string[];
  /** Per listed directory: the deleted files below it (paths relative to that directory). */
  below: Map<string, string[]>;
}

/**
 * Where the pending deletions under directory `dir` (a repo path of the mount)
 * are to be shown in its listing of `names`: on a listed directory holding
 * them, or with the directory itself when nothing listed holds them.
 */
export function pendingDeletions(
  dir: string,
  names: string[],
  changes: Array<Pick<IChange, 'path' | 'change'>>
): IPendingDeletions {
  const prefix = dir === '/' ? '/' : `${dir}/`;
  const listed = new Set(names);
  const found: IPendingDeletions = { here: [], below: new Map() };
  for (const change of changes) {
    if (change.change !== 'deleted' || !change.path.startsWith(prefix)) {
      continue;
    }
    const rest = change.path.slice(prefix.length);
    const slash = rest.indexOf('/');
    const name = rest.slice(0, slash);
    if (slash < 0 || !listed.has(name)) {
      found.here.push(rest);
    } else {
      found.below.set(name, [...(found.below.get(name) ?? []), rest.slice(slash + 1)]);
    }
  }
  return found;
}

/** `1 deleted: a.txt`, `7 deleted: a, b, c, d, e and 2 more`: at most `max` paths named. */
export function deletedText(trans: TranslationBundle, paths: string[], max = 5): string {
  const named = paths.slice(0, max).join(', ');
  const text = trans._n('%1 deleted: %2', '%1 deleted: %2', paths.length, named);
  return paths.length > max ? trans.__('%1 and %2 more', text, paths.length - max) : text;
}
