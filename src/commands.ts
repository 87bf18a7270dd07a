import { InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { errorMessage } from './state';

/** A non-empty string argument of a command, else undefined. */
export function str(args: ReadonlyPartialJSONObject, key: string): string | undefined {
  const value = args[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Wraps a command's `execute`: a failure is shown as a dialog titled `title`. */
export function guardedBy(title: string) {
  return (fn: (args: ReadonlyPartialJSONObject) => Promise<unknown>) =>
    async (args: ReadonlyPartialJSONObject): Promise<unknown> => {
      try {
        return await fn(args);
      } catch (reason) {
        await showErrorMessage(title, errorMessage(reason));
        return undefined;
      }
    };
}

/** Ask for `repo@branch` (branch default master); undefined when cancelled. */
export async function askRepoBranch(
  title: string
): Promise<{ repo: string; branch: string } | undefined> {
  const text = await InputDialog.getText({ title, placeholder: 'images@master' });
  if (!text.button.accept || !text.value) {
    return undefined;
  }
  const [repo, branch] = text.value.trim().split('@');
  return { repo, branch: branch || 'master' };
}

/** Let the user pick one of `items` (the only one without asking); undefined when cancelled. */
export async function pickOne(
  title: string,
  items: string[],
  options: { empty: string; current?: number }
): Promise<string | undefined> {
  if (items.length === 0) {
    throw new Error(options.empty);
  }
  if (items.length === 1) {
    return items[0];
  }
  const result = await InputDialog.getItem({ title, items, current: options.current });
  return result.button.accept && result.value ? result.value : undefined;
}
