import { ISignal, Signal } from '@lumino/signaling';

import {
  BackendRequest,
  commitMount,
  createMount,
  createRepo,
  deleteMount,
  discardMount,
  getHealth,
  IBackendConfig,
  ICommitResult,
  IHealth,
  IMountRequest,
  IMountsResponse,
  IMountStatus,
  IRepo,
  IReposResponse,
  listMounts,
  listRepos,
  PachlsApiError,
  putBackend,
  refreshMount
} from './api';
import { errorMessage } from './state';

/** What the panel shows; replaced (never mutated) on every change. */
export interface IPanelState {
  health: IHealth | null;
  healthError: string | null;
  repos: IReposResponse | null;
  reposError: string | null;
  mounts: IMountsResponse | null;
  mountsError: string | null;
  /** A refresh is running. */
  loading: boolean;
  /** When the last refresh finished (ms since epoch), 0 before. */
  refreshed: number;
}

/** The REST calls the model makes; tests pass fakes. */
export interface IPachlsApi {
  getHealth: typeof getHealth;
  listRepos: typeof listRepos;
  listMounts: typeof listMounts;
  createRepo: typeof createRepo;
  createMount: typeof createMount;
  deleteMount: typeof deleteMount;
  refreshMount: typeof refreshMount;
  commitMount: typeof commitMount;
  discardMount: typeof discardMount;
  putBackend: typeof putBackend;
}

export const restApi: IPachlsApi = {
  getHealth,
  listRepos,
  listMounts,
  createRepo,
  createMount,
  deleteMount,
  refreshMount,
  commitMount,
  discardMount,
  putBackend
};

type Settled<T> =
  | { status: 'fulfilled'; value: T }
  | { status: 'rejected'; reason: unknown };

function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    value => ({ status: 'fulfilled' as const, value }),
    reason => ({ status: 'rejected' as const, reason })
  );
}

export const initialPanelState: IPanelState = {
  health: null,
  healthError: null,
  repos: null,
  reposError: null,
  mounts: null,
  mountsError: null,
  loading: false,
  refreshed: 0
};

/**
 * State of the Pachyderm panel and the actions on it.
 *
 * One refresh is three requests in parallel (health, repos with their branches,
 * mounts), never one per repo. Polling runs only while the panel is visible
 * and the browser tab is not hidden; actions refresh what they change. Actions
 * throw a `PachlsApiError` for the caller to show where the action was taken.
 */
export class PachlsModel {
  constructor(
    options: { api?: IPachlsApi; interval?: number } = {}
  ) {
    this._api = options.api ?? restApi;
    this._interval = options.interval ?? 10000;
  }

  get state(): IPanelState {
    return this._state;
  }

  /** Emitted whenever `state` changes. */
  get changed(): ISignal<this, IPanelState> {
    return this._changed;
  }

  /** Emitted after an action changed a repo or branch (history views reload). */
  get reposChanged(): ISignal<this, string> {
    return this._reposChanged;
  }

  /** Polling interval in ms; 0 turns polling off. */
  get interval(): number {
    return this._interval;
  }
  set interval(value: number) {
    this._interval = Math.max(0, value);
    this._schedule();
  }

  /** Whether the panel is visible (polling runs only then). */
  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (value === this._visible) {
      return;
    }
    this._visible = value;
    if (value && Date.now() - this._state.refreshed > 1000) {
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

  /** Mount with that name, if listed. */
  mount(name: string): IMountStatus | undefined {
    return this._state.mounts?.mounts.find(m => m.name === name);
  }

  /** Mounts of `repo@branch`. */
  mountsOf(repo: string, branch: string): IMountStatus[] {
    return (this._state.mounts?.mounts ?? []).filter(
      m => m.repo === repo && m.branch === branch && !m.commit
    );
  }

  /** Reload health, repos and mounts (one request each). */
  refresh(): Promise<void> {
    if (this._pending) {
      this._again = true;
      return this._pending;
    }
    this._pending = this._refresh().finally(() => {
      this._pending = null;
      if (this._again && !this._disposed) {
        this._again = false;
        void this.refresh();
      }
    });
    return this._pending;
  }

  /** Reload the mounts only. */
  async refreshMounts(): Promise<void> {
    try {
      const mounts = await this._api.listMounts();
      this._set({ mounts, mountsError: null });
    } catch (reason) {
      this._set({ mountsError: errorMessage(reason) });
    }
  }

  async createRepo(name: string, description = ''): Promise<IRepo> {
    const repo = await this._api.createRepo(name, description);
    await this.refresh();
    this._reposChanged.emit(repo.name);
    return repo;
  }

  async mountBranch(request: IMountRequest): Promise<IMountStatus> {
    const status = await this._api.createMount(request);
    this._upsertMount(status);
    void this.refreshMounts();
    return status;
  }

  async unmount(name: string, discard = false): Promise<void> {
    await this._api.deleteMount(name, discard);
    if (this._state.mounts) {
      this._set({
        mounts: {
          ...this._state.mounts,
          mounts: this._state.mounts.mounts.filter(m => m.name !== name)
        }
      });
    }
    void this.refreshMounts();
  }

  async refreshMount(name: string): Promise<IMountStatus> {
    const status = await this._api.refreshMount(name);
    this._upsertMount(status);
    return status;
  }

  async commit(name: string, message: string): Promise<ICommitResult> {
    const before = this.mount(name);
    if (before) {
      this._upsertMount({ ...before, state: 'committing' });
    }
    try {
      const result = await this._api.commitMount(name, message);
      this._upsertMount(result.mount);
      this._reposChanged.emit(result.commit.repo);
      void this.refresh();
      return result;
    } catch (reason) {
      void this.refreshMounts();
      throw reason;
    }
  }

  async discard(name: string): Promise<IMountStatus> {
    const status = await this._api.discardMount(name);
    this._upsertMount(status);
    return status;
  }

  async setBackend(request: BackendRequest): Promise<IBackendConfig> {
    const config = await this._api.putBackend(request);
    await this.refresh();
    this._reposChanged.emit('');
    return config;
  }

  /** Tell open views that a branch of `repo` moved (after a rollback). */
  notifyRepoChanged(repo: string): void {
    this._reposChanged.emit(repo);
    void this.refresh();
  }

  private async _refresh(): Promise<void> {
    this._set({ loading: true });
    const [health, repos, mounts] = await Promise.all([
      settle(this._api.getHealth()),
      settle(this._api.listRepos()),
      settle(this._api.listMounts())
    ]);
    if (this._disposed) {
      return;
    }
    const patch: Partial<IPanelState> = { loading: false, refreshed: Date.now() };
    if (health.status === 'fulfilled') {
      patch.health = health.value;
      patch.healthError = null;
    } else {
      patch.healthError = errorMessage(health.reason);
    }
    if (repos.status === 'fulfilled') {
      patch.repos = repos.value;
      patch.reposError = null;
    } else {
      patch.reposError = errorMessage(repos.reason);
    }
    if (mounts.status === 'fulfilled') {
      patch.mounts = mounts.value;
      patch.mountsError = null;
    } else {
      patch.mountsError = errorMessage(mounts.reason);
      if (
        mounts.reason instanceof PachlsApiError &&
        mounts.reason.status === 503
      ) {
        patch.mounts = null;
      }
    }
    this._set(patch);
  }

  private _upsertMount(status: IMountStatus): void {
    const current = this._state.mounts ?? { mount_dir: '', fuse: false, fuse_reason: '', mounts: [] };
    const others = current.mounts.filter(m => m.name !== status.name);
    const mounts = [...others, status].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
    this._set({ mounts: { ...current, mounts }, mountsError: null });
  }

  private _set(patch: Partial<IPanelState>): void {
    if (this._disposed) {
      return;
    }
    this._state = { ...this._state, ...patch };
    this._changed.emit(this._state);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _schedule(): void {
    this._clearTimer();
    if (this._disposed || !this._visible || this._interval <= 0) {
      return;
    }
    this._timer = setInterval(() => {
      if (typeof document !== 'undefined' && document.hidden) {
        return;
      }
      void this.refresh();
    }, this._interval);
  }

  private _api: IPachlsApi;
  private _interval: number;
  private _visible = false;
  private _disposed = false;
  private _timer: ReturnType<typeof setInterval> | null = null;
  private _pending: Promise<void> | null = null;
  private _again = false;
  private _state: IPanelState = initialPanelState;
  private _changed = new Signal<this, IPanelState>(this);
  private _reposChanged = new Signal<this, string>(this);
}
