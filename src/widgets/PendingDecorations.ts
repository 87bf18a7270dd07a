import { JupyterFrontEnd } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IStatusBar } from '@jupyterlab/statusbar';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IChange, IMountStatus, mountChanges } from '../api';
import { relativeToRoot } from '../format';
import { mountOfFile } from '../labeling/state';
import { PachlsModel } from '../model';
import { PendingMark, pendingMarks } from '../state';

/** The mount a server-root-relative path is in, and its path inside the mount. */
function locate(
  model: PachlsModel,
  path: string
): { mount: IMountStatus; path: string } | null {
  const mounts = model.state.mounts;
  if (!mounts) {
    return null;
  }
  const mountDir = relativeToRoot(mounts.mount_dir, PageConfig.getOption('serverRoot'));
  if (mountDir === null) {
    return null;
  }
  // a path at the mount's root has no "/" after the mount name: look at a child of it
  const found = mountOfFile(`${path.replace(/\/+$/, '')}/.`, mountDir);
  if (!found) {
    return null;
  }
  const mount = mounts.mounts.find(m => m.name === found.mount);
  if (!mount) {
    return null;
  }
  const inner = found.path.replace(/\/\.$/, '') || '/';
  return { mount, path: inner };
}

/**
 * Marks pending changes in the file browser (added, modified, a directory with
 * changes below) inside read-write mounts, as git-status marks do.
 */
export function decoratePendingChanges(
  model: PachlsModel,
  browser: IDefaultFileBrowser,
  trans: TranslationBundle
): void {
  // the listing's rows (its own widget is not public): each shows its entry's name
  const content = () => browser.node.querySelector('.jp-DirListing-content') as HTMLElement | null;
  const nameOf = (node: Element) => node.querySelector('.jp-DirListing-itemText')?.textContent ?? '';
  let changes: IChange[] = [];
  let changesOf = ''; // mount name, base and pending count the changes were read for
  let loading: Promise<void> | null = null;

  const apply = () => {
    const where = locate(model, browser.model.path);
    const nodes = Array.from(content()?.querySelectorAll('.jp-DirListing-item') ?? []);
    const marks =
      where && where.mount.mode === 'rw'
        ? pendingMarks(where.path, nodes.map(nameOf), changes)
        : new Map<string, PendingMark>();
    const titles = {
      added: trans.__('pending: added'),
      modified: trans.__('pending: modified'),
      below: trans.__('pending changes inside')
    };
    nodes.forEach(node => {
      const mark = marks.get(nameOf(node));
      if (mark) {
        if (node.getAttribute('data-pachls-pending') !== mark) {
          node.setAttribute('data-pachls-pending', mark);
        }
        node.setAttribute('aria-description', titles[mark]);
      } else if (node.hasAttribute('data-pachls-pending')) {
        node.removeAttribute('data-pachls-pending');
        node.removeAttribute('aria-description');
      }
    });
  };

  const load = () => {
    const where = locate(model, browser.model.path);
    const mount = where?.mount;
    if (!mount || mount.mode !== 'rw' || mount.pending === 0) {
      changes = [];
      changesOf = '';
      apply();
      return;
    }
    const key = `${mount.name}|${mount.base}|${mount.pending}|${browser.model.path}`;
    if (key === changesOf || loading) {
      apply();
      return;
    }
    loading = mountChanges(mount.name)
      .then(found => {
        changes = found.changes;
        changesOf = key;
      })
      .catch(() => {
        changes = [];
      })
      .finally(() => {
        loading = null;
        apply();
      });
  };

  // The listing rebuilds its rows on each refresh of the directory (every few seconds) and on
  // sorting; mark them again after each (a row's title changes with the item it shows).
  const observer = new MutationObserver(() => apply());
  const listed = content();
  if (listed) {
    observer.observe(listed, { childList: true, subtree: true, attributes: true, attributeFilter: ['title'] });
  }
  browser.model.refreshed.connect(() => {
    changesOf = ''; // a file saved or added: the pending set may have changed without a panel poll
    void model.refreshMounts().then(load);
  });
  browser.model.pathChanged.connect(load);
  model.changed.connect(load);
  browser.disposed.connect(() => observer.disconnect());
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
    this.node.title = this._trans._n(
      '%1 pending change in mount %2: click to commit',
      '%1 pending changes in mount %2: click to commit',
      mount.pending,
      mount.name
    );
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
