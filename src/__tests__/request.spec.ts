import { describe, expect, it } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';

import { clearReposCache, listRepos, PachlsApiError, query, requestAPI, seg } from '../api';

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

describe('listRepos', () => {
  it('sends the kept ETag back and reuses the answer on 304', async () => {
    clearReposCache();
    const seen: Array<string | null> = [];
    let calls = 0;
    const body = { backend: { kind: 'local', address: '/s' }, repos: [] };
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://127.0.0.1:8888/',
      fetch: (async (input: RequestInfo, init?: RequestInit) => {
        const request = new Request(input, init);
        seen.push(request.headers.get('If-None-Match'));
        calls += 1;
        if (calls === 1) {
          return new Response(JSON.stringify(body), { status: 200, headers: { ETag: '"t1"' } });
        }
        return new Response(null, { status: 304, headers: { ETag: '"t1"' } });
      }) as typeof fetch,
      Request: Request,
      Headers: Headers
    } as Partial<ServerConnection.ISettings>);
    const first = await listRepos(settings);
    const second = await listRepos(settings);
    expect(first).toEqual(body);
    expect(second).toBe(first);
    expect(seen).toEqual([null, '"t1"']);
    clearReposCache();
  });
});
