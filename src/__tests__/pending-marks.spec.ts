import { describe, expect, it } from 'vitest';

import { pendingMarks } from '../state';

describe('pendingMarks', () => {
  const changes = [
    { path: '/notes.txt', change: 'added' as const },
    { path: '/README.md', change: 'modified' as const },
    { path: '/cats/001.png', change: 'deleted' as const },
    { path: '/dogs/new/1.png', change: 'added' as const }
  ];

  it('marks files by their change and directories holding changes, deleted files included', () => {
    const marks = pendingMarks('/', ['notes.txt', 'README.md', 'cats', 'dogs', 'other'], changes);
    expect(Object.fromEntries(marks)).toEqual({
      'notes.txt': 'added',
      'README.md': 'modified',
      cats: 'below',
      dogs: 'below'
    });
  });

  it('looks inside the directory shown only', () => {
    expect(Object.fromEntries(pendingMarks('/dogs', ['new', 'old'], changes))).toEqual({ new: 'below' });
    expect(pendingMarks('/dogs/new', ['1.png'], changes).get('1.png')).toBe('added');
    expect(pendingMarks('/cat', ['001.png'], changes).size).toBe(0);
  });
});
