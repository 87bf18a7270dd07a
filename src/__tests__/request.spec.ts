import { describe, expect, it, vi } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';

import {
  clearPanelCache,
  getPanel,
  MAX_RETRY_AFTER_WAIT,
  PachlsApiError,
  query,
  requestAPI,
  retryAfterSeconds,
  seg
} from '../api';
import { errorMessage } from '../state';

type Call = { url: string; method: string; body: string; headers: Headers };

function settingsAnswering(
  status: number,
  body: string,
  calls: Call[] = [],
  statusText = ''
): ServerConnection.ISettings {
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input as RequestInfo, init);
    calls.push({
      url: request.url,
      method: request.method,
      body: await request.text(),
      headers: request.headers
    });
    return new Response(status === 204 ? null : body, {
      status,
      statusText,
      headers: { 'Content-Type': 'application/json' }
    });
  };
  return ServerConnection.makeSettings({
    baseUrl: 'http://127.0.0.1:8888/base/',
    wsUrl: 'ws://127.0.0.1:8888/base/',
    fetch: fetchImpl as typeof fetch,
    Request: Request,
    Headers: Headers,
    init: {}
  } as Partial<ServerConnection.ISettings>);
}

describe('requestAPI', () => {
  it('decodes JSON answers and builds the URL under pachls/api', async () => {
    const calls: Call[] = [];
    const settings = settingsAnswering(200, '{"repos": []}', calls);
    const data = await requestAPI<{ repos: unknown[] }>('repos', {}, settings);
    expect(data).toEqual({ repos: [] });
    expect(calls[0].url).toBe('http://127.0.0.1:8888/base/pachls/api/repos');
  });

  it('sends a body as JSON', async () => {
    const calls: Call[] = [];
    const settings = settingsAnswering(201, '{"name": "x"}', calls);
    await requestAPI('repos', { method: 'POST', body: { name: 'x' } }, settings);
    expect(calls[0].method).toBe('POST');
    expect(calls[0].body).toBe('{"name":"x"}');
    expect(calls[0].headers.get('Content-Type')).toBe('application/json');
  });

  it('returns undefined for 204 No Content', async () => {
    const settings = settingsAnswering(204, '');
    await expect(requestAPI('mounts/x', { method: 'DELETE' }, settings)).resolves.toBeUndefined();
  });

  it('throws the typed error the server answered', async () => {
    const settings = settingsAnswering(
      409,
      JSON.stringify({ error: 'conflict', message: 'Staged paths changed on the branch.', details: { paths: ['/a'] } })
    );
    const error = await requestAPI('mounts/x/commit', { method: 'POST', body: { message: 'm' } }, settings).catch(e => e);
    expect(error).toBeInstanceOf(PachlsApiError);
    expect(error.status).toBe(409);
    expect(error.error).toBe('conflict');
    expect(error.message).toBe('Staged paths changed on the branch.');
    expect(error.details).toEqual({ paths: ['/a'] });
  });

  it('wraps a non-JSON error page as http_error with its status', async () => {
    const settings = settingsAnswering(502, '<html>Bad gateway</html>', [], 'Bad Gateway');
    const error = await requestAPI('repos', {}, settings).catch(e => e);
    expect(error).toBeInstanceOf(PachlsApiError);
    expect(error.error).toBe('http_error');
    expect(error.status).toBe(502);
    expect(error.message).toContain('502');
    expect(String(error.details.body)).toContain('Bad gateway');
  });

  it('refuses a 200 answer that is not JSON', async () => {
    const settings = settingsAnswering(200, 'not json');
    const error = await requestAPI('repos', {}, settings).catch(e => e);
    expect(error.error).toBe('bad_response');
  });

  it('reports an unreachable server as network_error, status 0', async () => {
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://127.0.0.1:8888/',
      fetch: (async () => {
        throw new TypeError('Failed to fetch');
      }) as typeof fetch,
      Request: Request,
      Headers: Headers
    } as Partial<ServerConnection.ISettings>);
    const error = await requestAPI('repos', {}, settings).catch(e => e);
    expect(error).toBeInstanceOf(PachlsApiError);
    expect(error.status).toBe(0);
    expect(error.error).toBe('network_error');
    expect(error.message).toContain('Failed to fetch');
  });
});

describe('URL helpers', () => {
  it('encodes project/repo and branch^N as one segment', () => {
    expect(seg('vision/images')).toBe('vision%2Fimages');
    expect(seg('master^2')).toBe('master%5E2');
  });
  it('leaves out empty query values', () => {
    expect(query({ limit: 20, before: null, x: undefined, y: '' })).toBe('?limit=20');
    expect(query({ path: '/a b' })).toBe('?path=%2Fa%20b');
    expect(query({})).toBe('');
  });
});

function settingsWith(answer: (call: number, request: Request) => Response): ServerConnection.ISettings {
  let calls = 0;
  return ServerConnection.makeSettings({
    baseUrl: 'http://127.0.0.1:8888/',
    fetch: (async (input: RequestInfo, init?: RequestInit) => answer(++calls, new Request(input, init))) as typeof fetch,
    Request: Request,
    Headers: Headers
  } as Partial<ServerConnection.ISettings>);
}

describe('getPanel', () => {
  it('asks GET /panel with the kept ETag and reuses the answer on 304', async () => {
    clearPanelCache();
    const seen: Array<[string, string | null]> = [];
    const body = {
      health: { backend: { kind: 'local', address: '/s', connected: true, error: null }, store_dir: '/s', fuse: { available: false } },
      repos: { backend: { kind: 'local', address: '/s' }, repos: [] },
      mounts: null,
      errors: { mounts: { status: 503, error: 'unavailable', message: 'no mounts', details: {} } }
    };
    const settings = settingsWith((call, request) => {
      seen.push([new URL(request.url).pathname, request.headers.get('If-None-Match')]);
      return call === 1
        ? new Response(JSON.stringify(body), { status: 200, headers: { ETag: '"p1"' } })
        : new Response(null, { status: 304, headers: { ETag: '"p1"' } });
    });
    const first = await getPanel(settings);
    const second = await getPanel(settings);
    expect(first).toEqual(body);
    expect(second).toBe(first);
    expect(seen).toEqual([['/pachls/api/panel', null], ['/pachls/api/panel', '"p1"']]);
    clearPanelCache();
  });
});

describe('Retry-After', () => {
  const busy = {
    error: 'unavailable',
    message: 'the server is busy; try again in a moment',
    details: { reason: 'busy' }
  };

  it('is waited out once: a busy 503 is sent again after Retry-After seconds', async () => {
    vi.useFakeTimers();
    try {
      const sent: number[] = [];
      const settings = settingsWith(call => {
        sent.push(Date.now());
        return call === 1
          ? new Response(JSON.stringify(busy), { status: 503, headers: { 'Retry-After': '5' } })
          : new Response('{"id": "c1"}', { status: 200 });
      });
      const answer = requestAPI('mounts/x/commit', { method: 'POST', body: { message: 'm' } }, settings);
      await vi.advanceTimersByTimeAsync(4999);
      expect(sent.length).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      await expect(answer).resolves.toEqual({ id: 'c1' });
      expect(sent.length).toBe(2);
      expect(sent[1] - sent[0]).toBe(5000);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a second busy 503 is thrown, its message without a countdown that would go stale', async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      const settings = settingsWith(() => {
        calls += 1;
        return new Response(JSON.stringify(busy), { status: 503, headers: { 'Retry-After': '5' } });
      });
      const answer = requestAPI('mounts/x/commit', { method: 'POST', body: {} }, settings).catch(e => e);
      await vi.advanceTimersByTimeAsync(5000);
      const error = await answer;
      expect(calls).toBe(2);
      expect(error).toBeInstanceOf(PachlsApiError);
      expect(error.status).toBe(503);
      expect(error.retryAfter).toBe(5);
      expect(errorMessage(error)).toBe('the server is busy; try again in a moment');
    } finally {
      vi.useRealTimers();
    }
  });

  it('longer than MAX_RETRY_AFTER_WAIT is not waited for: thrown at once', async () => {
    let calls = 0;
    const settings = settingsWith(() => {
      calls += 1;
      return new Response(JSON.stringify(busy), {
        status: 503,
        headers: { 'Retry-After': String(MAX_RETRY_AFTER_WAIT + 1) }
      });
    });
    const error = await requestAPI('mounts/x/commit', { method: 'POST', body: {} }, settings).catch(e => e);
    expect(calls).toBe(1);
    expect(error.retryAfter).toBe(MAX_RETRY_AFTER_WAIT + 1);
  });

  it('is null without the header (not sent again), and the message is the server\'s', async () => {
    let calls = 0;
    const settings = settingsWith(() => {
      calls += 1;
      return new Response(JSON.stringify({ error: 'unavailable', message: 'down', details: {} }), { status: 503 });
    });
    const error = await requestAPI('repos', {}, settings).catch(e => e);
    expect(calls).toBe(1);
    expect(error.retryAfter).toBeNull();
    expect(errorMessage(error)).toBe('down');
  });

  it('reads delay-seconds and HTTP dates', () => {
    const now = Date.parse('Sat, 28 Nov 2026 06:00:00 GMT');
    expect(retryAfterSeconds('7', now)).toBe(7);
    expect(retryAfterSeconds('Sat, 28 Nov 2026 06:00:30 GMT', now)).toBe(30);
    expect(retryAfterSeconds('Sat, 28 Nov 2026 05:00:00 GMT', now)).toBe(0);
    expect(retryAfterSeconds('soon', now)).toBeNull();
    expect(retryAfterSeconds(null, now)).toBeNull();
  });
});
