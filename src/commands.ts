import { InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { IMountsResponse, listMounts } from './api';
import { relativeToRoot } from './format';
import { mountOfFile } from './labeling/state';
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

/**
 * The file a command acts on (its `path` argument, else the file browser's
 * selection) as the mount it is in and its path inside that mount; throws
 * words for the user when there is none.
 */
export async function fileInMount(
  args: ReadonlyPartialJSONObject,
  fileBrowser: IDefaultFileBrowser | null,
  trans: TranslationBundle
): Promise<{ mount: string; path: string; mounts: IMountsResponse }> {
  const file = str(args, 'path') ?? fileBrowser?.selectedItems().next()?.value?.path ?? undefined;
  if (!file) {
    throw new Error(trans.__('Select a file in the file browser first.'));
  }
  const mounts = await listMounts();
  const mountDir = relativeToRoot(mounts.mount_dir, PageConfig.getOption('serverRoot'));
  if (mountDir === null) {
    throw new Error(trans.__('The mount dir %1 is outside the Jupyter root.', mounts.mount_dir));
  }
  const found = mountOfFile(file, mountDir);
  if (!found) {
    throw new Error(trans.__('%1 is not in a mount (the mounts are in %2).', file, mountDir || '/'));
  }
  return { ...found, mounts };
}
