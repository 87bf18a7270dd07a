import { ISignal, Signal } from '@lumino/signaling';

import { IChange, IChanges, IMountStatus } from './api';

/**
 * The pending changes of read-write mounts, read once per mount state and
 * shared by the file browser's marks and the status bar item.
 *
 * `get` answers with the changes read for that mount at its current base:
 * never another mount's (a view switching mounts shows no marks until the
 * new answer, rather than the previous mount's), never those of a base the
 * mount left (a rollback or a follow), never those read before nothing was
 * pending (a commit or a discard: as many changes at the same base later are
 * other changes). Changes read at the same base while the pending count
 * moved are still shown while the new ones are read (marks do not blink on
 * every save).
 */
export class PendingChanges {
  constructor(private readonly _readChanges: (mount: string) => Promise<IChanges>) {}

  /** Emitted when an answer arrived. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The changes of `mount`, or null while they are being read; reads them when outdated. */
  get(mount: IMountStatus): IChange[] | null {
    if (mount.mode !== 'rw' || mount.pending === 0) {
      // nothing to remember: the next changes, even as many at the same base, are others
      this._read.delete(mount.name);
      this._reading.delete(mount.name);
      return [];
    }
    const key = `${mount.base}|${mount.pending}`;
    const read = this._read.get(mount.name);
    if (!read || read.key !== key || read.outdated) {
      this._readAgain(mount.name, key);
    }
    return read && read.base === mount.base ? read.changes : null;
  }

  /** Files changed without the mount's count telling (a save): read again on the next `get`. */
  outdate(): void {
    this._read.forEach(read => (read.outdated = true));
  }

  private _readAgain(name: string, key: string): void {
    if (this._reading.get(name) === key) {
      return;
    }
    this._reading.set(name, key);
    void this._readChanges(name).then(
      found => {
        // an answer overtaken by a newer question about the same mount is dropped
        if (this._reading.get(name) !== key) {
          return;
        }
        this._reading.delete(name);
        this._read.set(name, { key, base: key.split('|')[0], changes: found.changes, outdated: false });
        this._changed.emit();
      },
      () => {
        // not read (the server busy, the mount following its branch): what was known stays, and
        // the next `get` asks again (nothing is emitted, so no retry loop of its own)
        if (this._reading.get(name) === key) {
          this._reading.delete(name);
        }
      }
    );
  }

  private _read = new Map<string, { key: string; base: string; changes: IChange[]; outdated: boolean }>();
  private _reading = new Map<string, string>();
  private _changed = new Signal<this, void>(this);
}
