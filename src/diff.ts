/** What a changed file's change looks like: its kind and, for text, its unified diff. */
import { structuredPatch } from 'diff';

export type ChangeKind = 'added' | 'modified' | 'deleted';

/** How a changed file is shown. */
export type DiffKind = 'image' | 'label' | 'text';

const IMAGE = /\.(png|jpe?g|gif|webp|bmp|svg)$/i;

/** Text diffs are computed in the browser: bigger files are named, not read. */
export const MAX_TEXT_BYTES = 1024 * 1024;

export function diffKind(path: string, labels = false): DiffKind {
  if (IMAGE.test(path)) {
    return 'image';
  }
  return labels && path.endsWith('.json') ? 'label' : 'text';
}

/** One line of a unified diff; `gap` stands for unchanged lines left out (its text is the hunk header). */
export interface IDiffLine {
  kind: 'same' | 'added' | 'deleted' | 'gap';
  old: number | null;
  new: number | null;
  text: string;
}

/** The unified diff of two texts, with `context` unchanged lines around each change. */
export function textDiffLines(before: string, after: string, context = 3): IDiffLine[] {
  const patch = structuredPatch('', '', before, after, '', '', { context });
  const lines: IDiffLine[] = [];
  for (const hunk of patch.hunks) {
    lines.push({
      kind: 'gap',
      old: null,
      new: null,
      text: `@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`
    });
    let oldLine = hunk.oldStart;
    let newLine = hunk.newStart;
    for (const line of hunk.lines) {
      const mark = line[0];
      const text = line.slice(1);
      if (mark === '+') {
        lines.push({ kind: 'added', old: null, new: newLine++, text });
      } else if (mark === '-') {
        lines.push({ kind: 'deleted', old: oldLine++, new: null, text });
      } else if (mark === ' ') {
        lines.push({ kind: 'same', old: oldLine++, new: newLine++, text });
      }
      // '\' (no newline at end of file) is left out
    }
  }
  return lines;
}
