import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { IMountStatus, PachlsApiError } from '../api';
import { IPachlsApi, PachlsModel } from '../model';

function mountStatus(patch: Partial<IMountStatus> = {}): IMountStatus {
  return {
    name: 'images',
    repo: 'images',
    branch: 'master',
    commit: null,
    base: 'a'.repeat(32),
    mode: 'rw',
    presentation: 'no-fuse',
    state: 'mounted',
    message: '',
    behind: 0,
    pending: 0,
    mountpoint: '/root/pfs/images',
    ...patch
  };
}

function fakeApi(overrides: Partial<IPachlsApi> = {}) {
  const calls: string[] = [];
  let mounts: IMountStatus[] = [];
  const api: IPachlsApi = {
    getPanel: async () => {
      calls.push('panel');
      return {
        health: {
          backend: { kind: 'local', address: '/store', connected: true, error: null },
          store_dir: '/store',
          fuse: { available: false }
        },
        repos: { backend: { kind: 'local', address: '/store' }, repos: [] },
        mounts: { mount_dir: '/root/pfs', fuse: false, fuse_reason: '', mounts },
        errors: {}
      };
    },
    listMounts: async () => {
      calls.push('mounts');
      return { mount_dir: '/root/pfs', fuse: false, fuse_reason: '', mounts };
    },
    createRepo: async name => {
      calls.push(`create ${name}`);
      return { name, project: 'default', description: '', created: null, size_bytes: 0, branches: [] };
    },
    createMount: async request => {
      calls.push(`mount ${request.repo}@${request.branch} ${request.mode}`);
      const status = mountStatus({ repo: request.repo, name: request.repo, mode: request.mode ?? 'ro' });
      mounts = [...mounts, status];
      return status;
    },
    deleteMount: async name => {
      calls.push(`unmount ${name}`);
      mounts = mounts.filter(m => m.name !== name);
    },
    refreshMount: async name => mountStatus({ name }),
    followMount: async name => mountStatus({ name }),
    commitMount: async (name, message) => {
      calls.push(`commit ${name} ${message}`);
      mounts = mounts.map(m => (m.name === name ? { ...m, pending: 0, base: 'c'.repeat(32) } : m));
      return {
        commit: {
          id: 'c'.repeat(32), repo: 'images', branch: 'master', parent: null, message, author: 'me',
          started: null, finished: null, provenance: [], origin: 'USER', size_bytes: 0, n_files: 1
        },
        mount: mountStatus({ name, pending: 0, base: 'c'.repeat(32) })
      };
    },
    discardMount: async name => mountStatus({ name, pending: 0 }),
    putBackend: async () => {
      throw new Error('not used');
    },
    ...overrides
  };
  return { api, calls };
}

describe('PachlsModel', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('refreshes with one request for health, repos and mounts', async () => {
    const { api, calls } = fakeApi();
    const model = new PachlsModel({ api });
    const seen: boolean[] = [];
    model.changed.connect((_, s) => seen.push(s.loading));
    await model.refresh();
    expect(calls).toEqual(['panel']);
    expect(model.state.repos?.repos).toEqual([]);
    expect(model.state.health?.backend.connected).toBe(true);
    expect(model.state.mounts?.mounts).toEqual([]);
    expect(model.state.loading).toBe(false);
    expect(seen[0]).toBe(true);
  });

  it('keeps each part\'s error apart', async () => {
    const { api } = fakeApi();
    const model = new PachlsModel({ api });
    await model.refresh();
    const answer = await api.getPanel();
    const unavailable = { status: 503, error: 'unavailable', message: 'Mounts are not available.', details: {} };
    model['_api'] = {
      ...api,
      getPanel: async () => ({ ...answer, mounts: null, errors: { mounts: unavailable } })
    };
    await model.refresh();
    expect(model.state.mountsError).toBe('Mounts are not available.');
    expect(model.state.mounts).toBeNull();
    expect(model.state.reposError).toBeNull();
    expect(model.state.repos).not.toBeNull();
    expect(model.state.healthError).toBeNull();

    // Repos failing leaves the last repos shown, with the error beside them.
    const internal = { status: 500, error: 'internal', message: 'Internal server error.', details: {} };
    model['_api'] = { ...api, getPanel: async () => ({ ...answer, repos: null, errors: { repos: internal } }) };
    await model.refresh();
    expect(model.state.reposError).toBe('Internal server error.');
    expect(model.state.repos?.repos).toEqual([]);
    expect(model.state.mountsError).toBeNull();
  });

  it('keeps what it showed when the server does not answer', async () => {
    const { api } = fakeApi();
    const model = new PachlsModel({ api });
    await model.refresh();
    model['_api'] = {
      ...api,
      getPanel: async () => {
        throw new PachlsApiError(0, { error: 'network_error', message: 'down', details: {} });
      }
    };
    await model.refresh();
    expect(model.state.healthError).toBe('down');
    expect(model.state.reposError).toBe('down');
    expect(model.state.mountsError).toBe('down');
    expect(model.state.repos?.repos).toEqual([]);
    expect(model.state.mounts?.mounts).toEqual([]);
  });

  it('coalesces overlapping refreshes into at most one more', async () => {
    const { api, calls } = fakeApi();
    const model = new PachlsModel({ api });
    const a = model.refresh();
    const b = model.refresh();
    const c = model.refresh();
    await Promise.all([a, b, c]);
    await vi.runAllTimersAsync();
    expect(calls.filter(c => c === 'panel')).toHaveLength(2);
  });

  it('polls only while visible', async () => {
    const { api, calls } = fakeApi();
    const model = new PachlsModel({ api, interval: 1000 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toEqual([]);
    model.visible = true; // refreshes at once, then every second
    await vi.advanceTimersByTimeAsync(3100);
    const whileVisible = calls.filter(c => c === 'panel').length;
    expect(whileVisible).toBe(4);
    model.visible = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls.filter(c => c === 'panel').length).toBe(whileVisible);
    model.interval = 0;
    model.visible = true;
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls.filter(c => c === 'panel').length).toBe(whileVisible + 1);
    model.dispose();
  });

  it('shows a new mount at once and a commit\'s result', async () => {
    const { api, calls } = fakeApi();
    const model = new PachlsModel({ api });
    await model.mountBranch({ repo: 'images', branch: 'master', mode: 'rw' });
    await vi.runAllTimersAsync();
    expect(model.mount('images')?.mode).toBe('rw');
    const changedRepos: string[] = [];
    model.reposChanged.connect((_, repo) => changedRepos.push(repo));
    const result = await model.commit('images', 'first labels');
    expect(result.commit.message).toBe('first labels');
    expect(model.mount('images')?.base).toBe('c'.repeat(32));
    expect(changedRepos).toEqual(['images']);
    await model.unmount('images');
    await vi.runAllTimersAsync();
    expect(model.mount('images')).toBeUndefined();
    expect(calls).toContain('unmount images');
  });

  it('passes a failed commit on and leaves the mount listed', async () => {
    const conflict = new PachlsApiError(409, {
      error: 'conflict', message: 'Conflicting paths.', details: { paths: ['/a'] }
    });
    const { api } = fakeApi({
      commitMount: async () => {
        throw conflict;
      },
      listMounts: async () => ({ mount_dir: '/root/pfs', fuse: false, fuse_reason: '', mounts: [mountStatus({ pending: 1 })] })
    });
    const model = new PachlsModel({ api });
    await model.refreshMounts();
    await expect(model.commit('images', 'm')).rejects.toBe(conflict);
    await vi.runAllTimersAsync();
    expect(model.mount('images')?.pending).toBe(1);
    expect(model.mount('images')?.state).toBe('mounted');
  });
});
