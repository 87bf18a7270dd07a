import { ISignal, Signal } from '@lumino/signaling';

import { ICommit } from '../api';
import { PollingModel, settle } from '../polling';
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

/**
 * State of the Labeling section and the labeling tabs: Label Studio's
 * status, the sessions, how far their data is behind, their pending labels.
 *
 * Polls only while the Labeling section is visible or a session is being
 * created; faster (Label Studio's status only) while Label Studio starts.
 */
export class LabelingModel extends PollingModel<ILabelingState> {
  constructor(options: { api?: ILabelingApi; interval?: number; startingInterval?: number } = {}) {
    super(initialLabelingState, { name: 'pachls:labeling', interval: options.interval ?? 10000 });
    this._api = options.api ?? labelingRestApi;
    this._startingInterval = options.startingInterval ?? 2000;
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
    return this.state.status?.label_studio ?? null;
  }

  get sessions(): ISession[] {
    return this.state.status?.sessions ?? [];
  }

  session(id: string): ISession | undefined {
    return this.sessions.find(s => s.id === id);
  }

  /** Reload the status only (cheap; used while Label Studio starts). */
  async refreshStatus(): Promise<ILabelingStatus | null> {
    try {
      const status = await this._api.getLabeling();
      this.set({ status, error: null });
      this.schedule();
      return status;
    } catch (reason) {
      this.set({ error: errorMessage(reason) });
      return null;
    }
  }

  /** Start Label Studio now. */
  async startLabelStudio(): Promise<ILabelStudioStatus> {
    const ls = await this._api.startLabelStudio();
    this._setLabelStudio(ls);
    this.schedule();
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
    this.schedule();
    try {
      const session = await this._api.createSession(request);
      const sessions = [session, ...this.sessions.filter(s => s.id !== session.id)];
      if (this.state.status) {
        this.set({ status: { ...this.state.status, sessions } });
      }
      void this.refresh();
      return session;
    } finally {
      this._creating = false;
      this.schedule();
    }
  }

  /** Reload the pending labels of one session. */
  async refreshPending(id: string): Promise<IPending | null> {
    try {
      const pending = await this._api.getPending(id);
      this.set({
        pending: { ...this.state.pending, [id]: pending },
        pendingErrors: without(this.state.pendingErrors, id)
      });
      return pending;
    } catch (reason) {
      this.set({ pendingErrors: { ...this.state.pendingErrors, [id]: errorMessage(reason) } });
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
    if (this.state.status) {
      this.set({
        status: {
          ...this.state.status,
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
    if (this.state.status) {
      this.set({
        status: { ...this.state.status, sessions: this.sessions.filter(s => s.id !== id) },
        data: without(this.state.data, id),
        pending: without(this.state.pending, id),
        pendingErrors: without(this.state.pendingErrors, id)
      });
    }
    this._sessionDeleted.emit(id);
    void this.refresh();
    return result;
  }

  /** Reload status and sessions, then each session's data status and pending labels. */
  protected async load(): Promise<void> {
    this.set({ loading: true });
    const status = await settle(this._api.getLabeling());
    if (this.isDisposed) {
      return;
    }
    if (!status.ok) {
      this.rememberRetryAfter(status.reason);
      this.set({ loading: false, error: errorMessage(status.reason) });
      return;
    }
    this.set({ status: status.value, error: null });
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
    if (this.isDisposed) {
      return;
    }
    const data: { [id: string]: IDataStatus } = {};
    const pending = { ...this.state.pending };
    const pendingErrors = { ...this.state.pendingErrors };
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
    this.set({ loading: false, data, pending, pendingErrors });
  }

  private _setLabelStudio(ls: ILabelStudioStatus): void {
    const status = this.state.status ?? { label_studio: null, templates: [], sessions: [] };
    this.set({ status: { ...status, label_studio: ls } });
  }

  protected failure(): string | null {
    return this.state.error;
  }

  /** Polls while shown (or a session is being created): every `interval`, faster while Label Studio starts. */
  protected pollDelay(): number {
    if (!(this.visible || this._creating)) {
      return 0;
    }
    return this._starting() ? this._startingInterval : this.interval;
  }

  /** While Label Studio starts only its status is polled (cheap). */
  protected async pollOnce(): Promise<void> {
    if (!this._starting()) {
      return super.pollOnce();
    }
    if ((await this.refreshStatus()) === null) {
      throw new Error(this.state.error ?? 'no status');
    }
  }

  private _starting(): boolean {
    return this.labelStudio?.state === 'starting' || this._creating;
  }

  private _api: ILabelingApi;
  private _startingInterval: number;
  private _creating = false;
  private _committed = new Signal<this, ICommit>(this);
  private _newSessionRequested = new Signal<this, void>(this);
  private _sessionDeleted = new Signal<this, string>(this);
}

function without<T>(map: { [key: string]: T }, key: string): { [key: string]: T } {
  const copy = { ...map };
  delete copy[key];
  return copy;
}
