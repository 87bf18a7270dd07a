import { describe, expect, it } from 'vitest';

import { ICommit } from '../api';
import { timeline } from '../state';

function commit(id: string, finished: string): ICommit {
  return {
    id: id.repeat(32),
    repo: 'images',
    branch: 'master',
    parent: null,
    message: id,
    author: 'ann',
    started: finished,
    finished,
    provenance: [],
    origin: 'USER',
    size_bytes: 0,
    n_files: 1
  } as ICommit;
}

const move = {
  repo: 'images',
  branch: 'master',
  old_head: 'b'.repeat(32),
  new_head: 'a'.repeat(32),
  author: 'ann',
  time: '2026-01-01T00:03:00Z',
  reason: 'rollback'
};

describe('timeline', () => {
  it('shows a rollback and the commit it left in place, newest first', () => {
    const a = commit('a', '2026-01-01T00:01:00Z');
    const b = commit('b', '2026-01-01T00:02:00Z');
    const c = commit('c', '2026-01-01T00:04:00Z'); // landed after the rollback, on a
    const items = timeline([c, a], [b], [move], false);
    expect(items.map(i => (i.kind === 'move' ? 'move' : `${i.kind}:${i.commit.message}`))).toEqual([
      'branch:c',
      'move',
      'left:b',
      'branch:a'
    ]);
  });

  it('keeps what is older than the loaded page for the next pages', () => {
    const a = commit('a', '2026-01-01T00:05:00Z');
    const old = commit('b', '2026-01-01T00:02:00Z');
    const items = timeline([a], [old], [{ ...move, time: '2026-01-01T00:01:00Z' }], true);
    expect(items.map(i => i.kind)).toEqual(['branch']);
  });
});
