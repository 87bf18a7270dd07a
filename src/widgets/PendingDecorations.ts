import { JupyterFrontEnd } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IStatusBar } from '@jupyterlab/statusbar';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IMountStatus, mountChanges } from '../api';
import { relativeToRoot } from '../format';
import { mountOfFile } from '../labeling/state';
import { PachlsModel } from '../model';
import { PendingChanges } from '../pending';
import { deletedText, pendingDeletions, pendingMarks } from '../state';

/** The mount's name and the path inside it of a server-root-relative path in the mounts' folder. */
function inMountDir(model: PachlsModel, path: string): { mount: string; path: string } | null {
  const mounts = model.state.mounts;
  const mountDir = mounts ? relativeToRoot(mounts.mount_dir, PageConfig.getOption('serverRoot')) : null;
  // a path at the mount's root has no "/" after the mount name: look at a child of it
  return mountDir === null ? null : mountOfFile(`${path.replace(/\/+$/, '')}/.`, mountDir);
}

/** The mount a server-root-relative path is in, and its path inside the mount. */
function locate(
  model: PachlsModel,
  path: string
): { mount: IMountStatus; path: string } | null {
  const found = inMountDir(model, path);
  if (!found) {
    return null;
  }
  const mount = model.state.mounts?.mounts.find(m => m.name === found.mount);
  if (!mount) {
    return null;
  }
  const inner = found.path.replace(/\/\.$/, '') || '/';
  return { mount, path: inner };
}

/** One reader of the pending changes per panel model, shared by the marks and the status bar item. */
const pendingChangesOf = new WeakMap<PachlsModel, PendingChanges>();
function pendingChanges(model: PachlsModel): PendingChanges {
  let found = pendingChangesOf.get(model);
  if (!found) {
    found = new PendingChanges(mountChanges);
    pendingChangesOf.set(model, found);
  }
  return found;
}

/**
 * A line above the file browser's listing naming the pending deletions of the
 * folder shown (the listing cannot show a deleted file); hidden when none.
 */
function deletedHereLine(browser: IDefaultFileBrowser): HTMLElement {
  const line = document.createElement('div');
  line.className = 'jp-PachlsDeletedHere';
  line.setAttribute('role', 'status');
  line.hidden = true;
  const listing = browser.node.querySelector('.jp-DirListing');
  listing?.parentElement?.insertBefore(line, listing);
  return line;
}

/**
 * Marks pending changes in the file browser (added, modified, a directory with
 * changes below) inside read-write mounts, as git-status marks do. Deleted
 * files, which the browser no longer lists, are named on the directory holding
 * them (its tooltip) and above the listing of their own directory.
 */
export function decoratePendingChanges(
  model: PachlsModel,
  browser: IDefaultFileBrowser,
  trans: TranslationBundle
): void {
  // the listing's rows (its own widget is not public): each shows its entry's name
  const content = () => browser.node.querySelector('.jp-DirListing-content') as HTMLElement | null;
  const nameOf = (node: Element) => node.querySelector('.jp-DirListing-itemText')?.textContent ?? '';
  const pending = pendingChanges(model);
  const deletedHere = deletedHereLine(browser);
  const titles = {
    added: trans.__('pending: added'),
    modified: trans.__('pending: modified'),
    below: trans.__('pending changes inside')
  };

  const apply = () => {
    const where = locate(model, browser.model.path);
    const nodes = Array.from(content()?.querySelectorAll('.jp-DirListing-item') ?? []);
    const names = nodes.map(nameOf);
    // only the changes read for the mount shown: none while they are being read
    const changes = (where && pending.get(where.mount)) ?? [];
    const marks = pendingMarks(where?.path ?? '/', names, changes);
    const deletions = pendingDeletions(where?.path ?? '/', names, changes);
    const here = deletions.here.length
      ? trans.__('Pending in this folder: %1', deletedText(trans, deletions.here))
      : '';
    if (deletedHere.textContent !== here) {
      deletedHere.textContent = here;
      deletedHere.hidden = !here;
    }
    nodes.forEach(node => {
      const name = nameOf(node);
      const mark = marks.get(name);
      const deleted = deletions.below.get(name);
      const description = [mark ? titles[mark] : '', deleted ? deletedText(trans, deleted) : '']
        .filter(Boolean)
        .join(': ');
      if (mark) {
        if (node.getAttribute('data-pachls-pending') !== mark) {
          node.setAttribute('data-pachls-pending', mark);
        }
        if (node.getAttribute('aria-description') !== description) {
          node.setAttribute('aria-description', description);
        }
      } else if (node.hasAttribute('data-pachls-pending')) {
        node.removeAttribute('data-pachls-pending');
        node.removeAttribute('aria-description');
      }
      tooltipLine(node as HTMLElement, deleted ? trans.__('Pending: %1', deletedText(trans, deleted)) : '');
    });
  };

  // The listing rebuilds its rows on each refresh of the directory (every few seconds) and on
  // sorting, and sets their tooltips afresh; mark them again after each.
  const observer = new MutationObserver(() => apply());
  const listed = content();
  if (listed) {
    observer.observe(listed, { childList: true, subtree: true, attributes: true, attributeFilter: ['title'] });
  }
  browser.model.refreshed.connect(() => {
    pending.outdate(); // a file saved or added: the pending set may have changed without a panel poll
    // the listing refreshes every 10 s and on each navigation: read the mounts only where marks show
    // (or while they are unknown), not for every folder a user browses outside the mounts
    if (!model.state.mounts || inMountDir(model, browser.model.path)) {
      void model.refreshMounts().then(apply);
    }
  });
  browser.model.pathChanged.connect(apply);
  model.changed.connect(apply);
  pending.changed.connect(apply);
  browser.disposed.connect(() => observer.disconnect());
}

/**
 * Ends a row's tooltip (the listing's own: name, size, dates) with `line`, or
 * takes the line added before away when `line` is empty.
 */
function tooltipLine(node: HTMLElement, line: string): void {
  const before = node.getAttribute('data-pachls-tooltip');
  if (before === (line || null) && (!line || node.title.endsWith(`\n${line}`))) {
    return;
  }
  const own = before && node.title.endsWith(`\n${before}`) ? node.title.slice(0, -before.length - 1) : node.title;
  if (line) {
    node.setAttribute('data-pachls-tooltip', line);
    node.title = `${own}\n${line}`;
  } else {
    node.removeAttribute('data-pachls-tooltip');
    node.title = own;
  }
}

/** Status bar item: the pending count of the mount the current file belongs to. */
export class PendingStatus extends Widget {
  constructor(
    private readonly _model: PachlsModel,
    private readonly _trans: TranslationBundle,
    private readonly _openCommit: (name: string) => void
  ) {
    super();
    this.addClass('jp-PachlsPendingStatus');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.addEventListener('click', () => this._open());
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        this._open();
      }
    });
    _model.changed.connect(() => this.update());
    pendingChanges(_model).changed.connect(() => this.update());
  }

  /** The server-root-relative path of the current document (null: no document). */
  set path(value: string | null) {
    this._path = value;
    this.update();
  }

  get mount(): IMountStatus | null {
    return this._path === null ? null : locate(this._model, this._path.replace(/\/[^/]*$/, ''))?.mount ?? null;
  }

  protected onUpdateRequest(): void {
    const mount = this.mount;
    if (!mount || mount.mode !== 'rw') {
      this.node.textContent = '';
      this.node.removeAttribute('data-mount');
      this.node.title = '';
      this.hide();
      return;
    }
    this.show();
    this.node.setAttribute('data-mount', mount.name);
    this.node.setAttribute('data-pending', String(mount.pending));
    this.node.textContent = this._trans._n('%2: %1 pending', '%2: %1 pending', mount.pending, mount.name);
    // deleted files are listed nowhere else when their folder is gone or not shown
    const deleted = (pendingChanges(this._model).get(mount) ?? [])
      .filter(change => change.change === 'deleted')
      .map(change => change.path);
    this.node.title = [
      this._trans._n(
        '%1 pending change in mount %2: click to commit',
        '%1 pending changes in mount %2: click to commit',
        mount.pending,
        mount.name
      ),
      ...(deleted.length ? [deletedText(this._trans, deleted, 10)] : [])
    ].join('\n');
  }

  private _open(): void {
    const mount = this.mount;
    if (mount && mount.pending > 0) {
      this._openCommit(mount.name);
    }
  }

  private _path: string | null = null;
}

/** Add the status bar item; it follows the current document (and its renames and saves). */
export function addPendingStatus(
  app: JupyterFrontEnd,
  statusBar: IStatusBar,
  model: PachlsModel,
  trans: TranslationBundle,
  openCommit: (name: string) => void
): PendingStatus {
  const item = new PendingStatus(model, trans, openCommit);
  const watched = new WeakSet<object>();
  const follow = () => {
    const current = app.shell.currentWidget as
      | (Widget & { context?: { path: string; fileChanged?: { connect: (f: () => void) => void } } })
      | null;
    const context = current?.context;
    item.path = context ? context.path : null;
    if (context?.fileChanged && !watched.has(context)) {
      watched.add(context);
      context.fileChanged.connect(() => {
        item.path = context.path;
        void model.refreshMounts(); // a save may have made a change pending
      });
    }
  };
  const shell = app.shell as unknown as { currentChanged?: { connect: (f: () => void) => void } };
  shell.currentChanged?.connect(follow);
  follow();
  statusBar.registerStatusItem('jupyterlab-pachls:pending', {
    item,
    align: 'left',
    rank: 5
  });
  return item;
}
