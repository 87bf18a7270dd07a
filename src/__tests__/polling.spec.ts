import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { PachlsApiError } from '../api';
import { IPachlsApi, PachlsModel } from '../model';
import { pollUntil } from '../polling';

const down = () => Promise.reject(new PachlsApiError(0, { error: 'network_error', message: 'down', details: {} }));

function countingApi(healthy: () => boolean) {
  const calls: string[] = [];
  const api = {
    getPanel: async () => {
      calls.push('panel');
      if (!healthy()) {
        return down();
      }
      return {
        health: {
          backend: { kind: 'local', address: '/store', connected: true, error: null },
          store_dir: '/store',
          fuse: { available: false }
        },
        repos: { backend: { kind: 'local', address: '/store' }, repos: [] },
        mounts: { mount_dir: '/pfs', fuse: false, fuse_reason: '', mounts: [] },
        errors: {}
      };
    },
    listMounts: async () => (healthy() ? { mount_dir: '/pfs', fuse: false, fuse_reason: '', mounts: [] } : down())
  } as unknown as IPachlsApi;
  return { api, calls };
}

describe('polling', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('backs off while the server does not answer, and keeps the interval once it does', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5); // the backoff's jitter, made steady
    let healthy = false;
    const { api, calls } = countingApi(() => healthy);
    const model = new PachlsModel({ api, interval: 1000 });
    model.visible = true;
    await vi.advanceTimersByTimeAsync(30000);
    const whileDown = calls.length;
    expect(whileDown).toBeLessThan(15); // every second would be 31
    expect(model.state.healthError).toBe('down');
    healthy = true;
    await vi.advanceTimersByTimeAsync(60000); // the longest backoff, then healthy polls
    calls.length = 0;
    await vi.advanceTimersByTimeAsync(10000);
    expect(calls.length).toBe(10);
    model.dispose();
  });

  it("waits what a busy server's Retry-After asks before the next poll, then polls at the interval", async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const busy = () =>
      Promise.reject(
        new PachlsApiError(503, { error: 'unavailable', message: 'busy', details: { reason: 'busy' } }, 20)
      );
    let answers: 'busy' | 'ok' = 'busy';
    const { api, calls } = countingApi(() => answers === 'ok');
    const getPanel = api.getPanel.bind(api);
    api.getPanel = () => (answers === 'busy' ? (calls.push('panel'), busy()) : getPanel());
    const model = new PachlsModel({ api, interval: 1000 });
    model.visible = true; // loads at once (busy), then the first poll after one interval (busy)
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.length).toBe(2);
    expect(model.state.healthError).toBe('busy');
    await vi.advanceTimersByTimeAsync(19500); // the backoff alone would have polled 4 times by now
    expect(calls.length).toBe(2);
    await vi.advanceTimersByTimeAsync(600); // 20 s after the busy answer
    expect(calls.length).toBe(3);
    answers = 'ok';
    await vi.advanceTimersByTimeAsync(20000); // busy again: 20 s more, then healthy
    calls.length = 0;
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls.length).toBe(5);
    expect(model.state.healthError).toBeNull();
    model.dispose();
  });

  it('waits at most its longest backoff however long Retry-After asks', async () => {
    const { api, calls } = countingApi(() => false);
    api.getPanel = () => {
      calls.push('panel');
      return Promise.reject(
        new PachlsApiError(503, { error: 'unavailable', message: 'busy', details: {} }, 3600)
      );
    };
    const model = new PachlsModel({ api, interval: 1000 });
    model.visible = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.length).toBe(2);
    await vi.advanceTimersByTimeAsync(60000);
    expect(calls.length).toBe(3);
    model.dispose();
  });

  it('pollUntil runs its step every interval until it says done', async () => {
    let runs = 0;
    const done = pollUntil('test', 1500, async () => ++runs === 3);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(0);
    await vi.advanceTimersByTimeAsync(4000);
    await done;
    expect(runs).toBe(3);
    await vi.advanceTimersByTimeAsync(10000);
    expect(runs).toBe(3);
  });

  it('pollUntil stops at the first failure of its step', async () => {
    let runs = 0;
    const failed = pollUntil('test', 100, async () => {
      runs++;
      throw new Error('no');
    });
    const seen = failed.catch(reason => (reason as Error).message);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await seen).toBe('no');
    expect(runs).toBe(1);
  });
});
