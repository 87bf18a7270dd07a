import { describe, expect, it } from 'vitest';

import { diffKind, textDiffLines } from '../diff';

describe('diffKind', () => {
  it('shows images side by side, label files as annotations, the rest as text', () => {
    expect(diffKind('/cats/001.PNG')).toBe('image');
    expect(diffKind('/a/b.jpeg', true)).toBe('image');
    expect(diffKind('/cats/001.png.json', true)).toBe('label');
    expect(diffKind('/cats/001.png.json', false)).toBe('text');
    expect(diffKind('/notes.txt', true)).toBe('text');
  });
});

describe('textDiffLines', () => {
  it('numbers old and new lines and marks what changed', () => {
    const lines = textDiffLines('a\nb\nc\n', 'a\nB\nc\nd\n');
    expect(lines[0]).toEqual({ kind: 'gap', old: null, new: null, text: '@@ -1,3 +1,4 @@' });
    expect(lines.slice(1)).toEqual([
      { kind: 'same', old: 1, new: 1, text: 'a' },
      { kind: 'deleted', old: 2, new: null, text: 'b' },
      { kind: 'added', old: null, new: 2, text: 'B' },
      { kind: 'same', old: 3, new: 3, text: 'c' },
      { kind: 'added', old: null, new: 4, text: 'd' }
    ]);
  });

  it('keeps only the context around changes, one gap line per hunk', () => {
    const before = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    const after = before.replace('line 5\n', 'five\n').replace('line 35\n', 'thirty-five\n');
    const lines = textDiffLines(before, after, 1);
    expect(lines.filter(l => l.kind === 'gap').map(l => l.text)).toEqual([
      '@@ -4,3 +4,3 @@',
      '@@ -34,3 +34,3 @@'
    ]);
    expect(lines.filter(l => l.kind === 'same')).toHaveLength(4);
  });

  it('is empty for equal texts, all added for a new file', () => {
    expect(textDiffLines('x\n', 'x\n')).toEqual([]);
    const added = textDiffLines('', 'one\ntwo\n');
    expect(added.filter(l => l.kind === 'added').map(l => l.new)).toEqual([1, 2]);
  });
});
