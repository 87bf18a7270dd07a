import { ISignal, Signal } from '@lumino/signaling';

import { ICommit } from '../api';
import { errorMessage } from '../state';
import {
  commitLabels,
  createSession,
  deleteSession,
  getLabeling,
  getPending,
  getSession,
  IDataStatus,
  ILabelingStatus,
  ILabelStudioStatus,
  IDeleteSessionResult,
  importNewData,
  IPending,
  IResyncPreview,
  IResyncResult,
  ISession,
  ISessionRequest,
  previewResync,
  ProjectFate,
  resyncLabels,
  startLabelStudio
} from './api';

/** The labeling calls the model makes; tests pass fakes. */
export interface ILabelingApi {
  getLabeling: typeof getLabeling;
  startLabelStudio: typeof startLabelStudio;
  createSession: typeof createSession;
  getSession: typeof getSession;
  getPending: typeof getPending;
  commitLabels: typeof commitLabels;
  importNewData: typeof importNewData;
  previewResync: typeof previewResync;
  resyncLabels: typeof resyncLabels;
  deleteSession: typeof deleteSession;
}

export const labelingRestApi: ILabelingApi = {
  getLabeling,
  startLabelStudio,
  createSession,
  getSession,
  getPending,
  commitLabels,
  importNewData,
  previewResync,
  resyncLabels,
  deleteSession
};

export interface ILabelingState {
  /** Label Studio, templates and sessions (null before the first answer). */
  status: ILabelingStatus | null;
  /** Why the labeling status could not be read (e.g. 503: no mount support). */
  error: string | null;
  /** How far each session's data is behind its branch, by session id. */
  data: { [id: string]: IDataStatus };
  /** Pending label changes by session id. */
  pending: { [id: string]: IPending };
  /** Why the pending changes of a session could not be read. */
  pendingErrors: { [id: string]: string };
  loading: boolean;
}

export const initialLabelingState: ILabelingState = {
  status: null,
  error: null,
  data: {},
  pending: {},
  pendingErrors: {},
  loading: false
};

type Settled<T> = { ok: true; value: T } | { ok: false; reason: unknown };

function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    value => ({ ok: true as const, value }),
    reason => ({ ok: false as const, reason })
  );
}

/**
 * State of the Labeling section and the labeling tabs: Label Studio's
 * status, the sessions, how far their data is behind, their pending labels.
 *
 * Polls only while something that shows it is visible (`visible` of the
 * section, `watch` of a tab); faster while Label Studio is starting.
 */
export class LabelingModel {
  constructor(options: { api?: ILabelingApi; interval?: number; startingInterval?: number } = {}) {
    this._api = options.api ?? labelingRestApi;
    this._interval = options.interval ?? 10000;
    this._startingInterval = options.startingInterval ?? 2000;
  }

  get state(): ILabelingState {
    return this._state;
  }

  get changed(): ISignal<this, ILabelingState> {
    return this._changed;
  }

  /** Emitted after a label commit landed (repo of the labels). */
  get committed(): ISignal<this, ICommit> {
    return this._committed;
  }

  /** Emitted after a session was deleted (its id): its tab closes. */
  get sessionDeleted(): ISignal<this, string> {
    return this._sessionDeleted;
  }

  /** Emitted when the new-session form should be shown (palette command). */
  get newSessionRequested(): ISignal<this, void> {
    return this._newSessionRequested;
  }

  /** Ask the Labeling section to show its new-session form. */
  requestNewSession(): void {
    this._newSessionRequested.emit(undefined);
  }

  get labelStudio(): ILabelStudioStatus | null {
    return this._state.status?.label_studio ?? null;
  }

  get sessions(): ISession[] {
    return this._state.status?.sessions ?? [];
  }

  session(id: string): ISession | undefined {
    return this.sessions.find(s => s.id === id);
  }

  /** Polling interval in ms while Label Studio runs; 0 turns polling off. */
  get interval(): number {
    return this._interval;
  }
  set interval(value: number) {
    this._interval = Math.max(0, value);
    this._schedule();
  }

  /** Whether the Labeling section is visible. */
  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (value === this._visible) {
      return;
    }
    this._visible = value;
    if (value) {
      void this.refresh();
    }
    this._schedule();
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._clearTimer();
    Signal.clearData(this);
  }

  /** Reload status and sessions, then each session's data status and pending labels. */
  refresh(): Promise<void> {
    if (this._refreshing) {
      this._again = true;
      return this._refreshing;
    }
    this._refreshing = this._refresh().finally(() => {
      this._refreshing = null;
      this._schedule();
      if (this._again && !this._disposed) {
        this._again = false;
        void this.refresh();
      }
    });
    return this._refreshing;
  }

  /** Reload the status only (cheap; used while Label Studio starts). */
  async refreshStatus(): Promise<ILabelingStatus | null> {
    try {
      const status = await this._api.getLabeling();
      this._set({ status, error: null });
      this._schedule();
      return status;
    } catch (reason) {
      this._set({ error: errorMessage(reason) });
      return null;
    }
  }

  /** Start Label Studio now. */
  async startLabelStudio(): Promise<ILabelStudioStatus> {
    const ls = await this._api.startLabelStudio();
    this._setLabelStudio(ls);
    this._schedule();
    return ls;
  }

  /**
   * Create (or reopen) a session. Label Studio is started first, so the status
   * line shows its progress while the (possibly long) request runs.
   */
  async createSession(request: ISessionRequest): Promise<ISession> {
    try {
      await this.startLabelStudio();
    } catch {
      // the create request reports the real problem
    }
    this._creating = true;
    this._schedule();
    try {
      const session = await this._api.createSession(request);
      const sessions = [session, ...this.sessions.filter(s => s.id !== session.id)];
      if (this._state.status) {
        this._set({ status: { ...this._state.status, sessions } });
      }
      void this.refresh();
      return session;
    } finally {
      this._creating = false;
      this._schedule();
    }
  }

  /** Reload the pending labels of one session. */
  async refreshPending(id: string): Promise<IPending | null> {
    try {
      const pending = await this._api.getPending(id);
      this._set({
        pending: { ...this._state.pending, [id]: pending },
        pendingErrors: without(this._state.pendingErrors, id)
      });
      return pending;
    } catch (reason) {
      this._set({ pendingErrors: { ...this._state.pendingErrors, [id]: errorMessage(reason) } });
      return null;
    }
  }

  /** ONE label commit of the session's pending labels. */
  async commit(id: string, message: string): Promise<ICommit> {
    try {
      const commit = await this._api.commitLabels(id, message);
      this._committed.emit(commit);
      return commit;
    } finally {
      void this.refreshPending(id);
    }
  }

  /** Import the files of the data branch head (pins the session to it). */
  async importNewData(id: string): Promise<ISession> {
    const session = await this._api.importNewData(id);
    if (this._state.status) {
      this._set({
        status: {
          ...this._state.status,
          sessions: this.sessions.map(s => (s.id === id ? session : s))
        }
      });
    }
    await this.refresh();
    return session;
  }

  /** What a resync of the session from `ref` would do; nothing is changed. */
  previewResync(id: string, ref: string): Promise<IResyncPreview> {
    return this._api.previewResync(id, ref.trim());
  }

  /**
   * Resync the session from the commit a preview showed (the user confirmed
   * it); refused with 409 `conflict` when `ref` moved since the preview.
   */
  async resync(id: string, preview: IResyncPreview): Promise<IResyncResult> {
    try {
      return await this._api.resyncLabels(id, preview.ref, preview.commit);
    } finally {
      void this.refreshPending(id);
    }
  }

  /**
   * Delete a session (the Label Studio project kept or deleted); 409
   * `pending_labels` when labels are not committed, unless `force`.
   */
  async deleteSession(
    id: string,
    options: { project: ProjectFate; force?: boolean }
  ): Promise<IDeleteSessionResult> {
    const result = await this._api.deleteSession(id, options);
    if (this._state.status) {
      this._set({
        status: { ...this._state.status, sessions: this.sessions.filter(s => s.id !== id) },
        data: without(this._state.data, id),
        pending: without(this._state.pending, id),
        pendingErrors: without(this._state.pendingErrors, id)
      });
    }
    this._sessionDeleted.emit(id);
    void this.refresh();
    return result;
  }

  private async _refresh(): Promise<void> {
    this._set({ loading: true });
    const status = await settle(this._api.getLabeling());
    if (this._disposed) {
      return;
    }
    if (!status.ok) {
      this._set({ loading: false, error: errorMessage(status.reason) });
      return;
    }
    this._set({ status: status.value, error: null });
    const sessions = status.value.sessions;
    const running = status.value.label_studio?.state === 'running';
    const [details, pendings] = await Promise.all([
      Promise.all(sessions.map(s => settle(this._api.getSession(s.id)))),
      Promise.all(
        sessions.map(s =>
          running ? settle(this._api.getPending(s.id)) : Promise.resolve(null)
        )
      )
    ]);
    if (this._disposed) {
      return;
    }
    const data: { [id: string]: IDataStatus } = {};
    const pending = { ...this._state.pending };
    const pendingErrors = { ...this._state.pendingErrors };
    sessions.forEach((s, i) => {
      const detail = details[i];
      if (detail.ok) {
        data[s.id] = detail.value.data_status;
      }
      const p = pendings[i];
      if (p && p.ok) {
        pending[s.id] = p.value;
        delete pendingErrors[s.id];
      } else if (p && !p.ok) {
        pendingErrors[s.id] = errorMessage(p.reason);
      }
    });
    this._set({ loading: false, data, pending, pendingErrors });
  }

  private _setLabelStudio(ls: ILabelStudioStatus): void {
    const status = this._state.status ?? { label_studio: null, templates: [], sessions: [] };
    this._set({ status: { ...status, label_studio: ls } });
  }

  private _set(patch: Partial<ILabelingState>): void {
    if (this._disposed) {
      return;
    }
    this._state = { ...this._state, ...patch };
    this._changed.emit(this._state);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /** Next poll: soon while Label Studio starts (or a session is being created), else `interval`. */
  private _schedule(): void {
    this._clearTimer();
    if (this._disposed || !(this._visible || this._creating)) {
      return;
    }
    const starting = this.labelStudio?.state === 'starting' || this._creating;
    const delay = starting ? this._startingInterval : this._interval;
    if (delay <= 0) {
      return;
    }
    this._timer = setTimeout(() => {
      this._timer = null;
      if (typeof document !== 'undefined' && document.hidden) {
        this._schedule();
        return;
      }
      if (starting) {
        void this.refreshStatus();
      } else {
        void this.refresh();
      }
    }, delay);
  }

  private _api: ILabelingApi;
  private _interval: number;
  private _startingInterval: number;
  private _visible = false;
  private _creating = false;
  private _disposed = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _refreshing: Promise<void> | null = null;
  private _again = false;
  private _state: ILabelingState = initialLabelingState;
  private _changed = new Signal<this, ILabelingState>(this);
  private _committed = new Signal<this, ICommit>(this);
  private _newSessionRequested = new Signal<this, void>(this);
  private _sessionDeleted = new Signal<this, string>(this);
}

function without<T>(map: { [key: string]: T }, key: string): { [key: string]: T } {
  const copy = { ...map };
  delete copy[key];
  return copy;
}
