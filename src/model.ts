import { ISignal, Signal } from '@lumino/signaling';

import {
  BackendRequest,
  commitMount,
  createMount,
  createRepo,
  deleteMount,
  discardMount,
  getPanel,
  IBackendConfig,
  ICommitResult,
  IHealth,
  IMountRequest,
  IMountsResponse,
  IMountStatus,
  IPartError,
  IRepo,
  IReposResponse,
  listMounts,
  putBackend,
  refreshMount,
  followMount
} from './api';
import { PollingModel } from './polling';
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
  getPanel: typeof getPanel;
  listMounts: typeof listMounts;
  createRepo: typeof createRepo;
  createMount: typeof createMount;
  deleteMount: typeof deleteMount;
  refreshMount: typeof refreshMount;
  followMount: typeof followMount;
  commitMount: typeof commitMount;
  discardMount: typeof discardMount;
  putBackend: typeof putBackend;
}

export const restApi: IPachlsApi = {
  getPanel,
  listMounts,
  createRepo,
  createMount,
  deleteMount,
  refreshMount,
  followMount,
  commitMount,
  discardMount,
  putBackend
};

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
 * One refresh is one request (`GET /panel`: health, repos with their branches,
 * mounts; 304 while nothing changed), never one per repo. Polling runs only while the panel is visible
 * and the browser tab is not hidden, and backs off while the server does not
 * answer; actions refresh what they change. Actions
 * throw a `PachlsApiError` for the caller to show where the action was taken.
 */
export class PachlsModel extends PollingModel<IPanelState> {
  constructor(
    options: { api?: IPachlsApi; interval?: number } = {}
  ) {
    super(initialPanelState, { name: 'pachls:panel', interval: options.interval ?? 10000 });
    this._api = options.api ?? restApi;
  }

  /** Emitted after an action changed a repo or branch (history views reload). */
  get reposChanged(): ISignal<this, string> {
    return this._reposChanged;
  }

  /** Mount with that name, if listed. */
  mount(name: string): IMountStatus | undefined {
    return this.state.mounts?.mounts.find(m => m.name === name);
  }

  /** Mounts of `repo@branch`. */
  mountsOf(repo: string, branch: string): IMountStatus[] {
    return (this.state.mounts?.mounts ?? []).filter(
      m => m.repo === repo && m.branch === branch && !m.commit
    );
  }

  /** Reload the mounts only. */
  async refreshMounts(): Promise<void> {
    try {
      const mounts = await this._api.listMounts();
      this.set({ mounts, mountsError: null });
    } catch (reason) {
      this.set({ mountsError: errorMessage(reason) });
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
    if (this.state.mounts) {
      this.set({
        mounts: {
          ...this.state.mounts,
          mounts: this.state.mounts.mounts.filter(m => m.name !== name)
        }
      });
    }
    void this.refreshMounts();
  }

  async refreshMount(name: string, overwrite: boolean | string[] = false): Promise<IMountStatus> {
    const status = await this._api.refreshMount(name, overwrite);
    this._upsertMount(status);
    return status;
  }

  /** Move a branch mount to its branch's head wherever it went, keeping or dropping its staged changes. */
  async followMount(
    name: string,
    pending: 'keep' | 'drop',
    overwrite: boolean | string[] = false
  ): Promise<IMountStatus> {
    const status = await this._api.followMount(name, pending, overwrite);
    this._upsertMount(status);
    return status;
  }

  /** Commit the staged changes of a mount: all, or those at `paths`. */
  async commit(name: string, message: string, paths?: string[]): Promise<ICommitResult> {
    const before = this.mount(name);
    if (before) {
      this._upsertMount({ ...before, state: 'committing' });
    }
    try {
      const result = await this._api.commitMount(name, message, undefined, paths);
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

  /** Reload health, repos and mounts (one request; each part may fail on its own). */
  protected async load(): Promise<void> {
    this.set({ loading: true });
    let patch: Partial<IPanelState>;
    try {
      const panel = await this._api.getPanel();
      const { repos: reposError, mounts: mountsError } = panel.errors;
      patch = {
        health: panel.health,
        healthError: null,
        reposError: reposError ? reposError.message : null,
        mountsError: mountsError ? mountsError.message : null
      };
      if (panel.repos) {
        patch.repos = panel.repos;
      }
      // Mounts that are not available (503) are not shown as they were.
      if (panel.mounts || isUnavailable(mountsError)) {
        patch.mounts = panel.mounts;
      }
    } catch (reason) {
      // The server did not answer: every part says so, and what was shown stays.
      this.rememberRetryAfter(reason);
      const message = errorMessage(reason);
      patch = { healthError: message, reposError: message, mountsError: message };
    }
    if (this.isDisposed) {
      return;
    }
    this.set({ ...patch, loading: false, refreshed: Date.now() });
  }

  private _upsertMount(status: IMountStatus): void {
    const current = this.state.mounts ?? { mount_dir: '', fuse: false, fuse_reason: '', mounts: [] };
    const others = current.mounts.filter(m => m.name !== status.name);
    const mounts = [...others, status].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
    this.set({ mounts: { ...current, mounts }, mountsError: null });
  }

  protected failure(): string | null {
    return this.state.healthError;
  }

  /** Becoming visible reloads unless a refresh just finished. */
  protected refreshOnShow(): boolean {
    return Date.now() - this.state.refreshed > 1000;
  }

  private _api: IPachlsApi;
  private _reposChanged = new Signal<this, string>(this);
}

function isUnavailable(error: IPartError | undefined): boolean {
  return error !== undefined && error.status === 503;
}
