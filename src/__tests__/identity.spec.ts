import { afterEach, describe, expect, it, vi } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator } from '@jupyterlab/translation';

import { IIdentity, PachlsApiError, requestAPI, setIdentityRequiredHandler } from '../api';
import {
  AskIdentity,
  authorText,
  IdentityModel,
  identitySourceText,
  validateIdentity
} from '../identity';

const trans = nullTranslator.load('jupyterlab_pachls');

type Call = { method: string; url: string; body: string };

/** A server that answers each request with the next of `answers` (status, JSON body). */
function server(answers: Array<[number, unknown]>, calls: Call[]): ServerConnection.ISettings {
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input as RequestInfo, init);
    calls.push({ method: request.method, url: request.url, body: await request.text() });
    const [status, body] = answers.shift() ?? [500, { error: 'internal', message: 'no answer left', details: {} }];
    return new Response(JSON.stringify(body), {
      status,
      headers: { 'Content-Type': 'application/json' }
    });
  };
  return ServerConnection.makeSettings({
    baseUrl: 'http://127.0.0.1:8888/',
    wsUrl: 'ws://127.0.0.1:8888/',
    fetch: fetchImpl as typeof fetch,
    Request: Request,
    Headers: Headers,
    init: {}
  } as Partial<ServerConnection.ISettings>);
}

const identityRequired = {
  error: 'identity_required',
  message: 'Set a name and email before committing.',
  details: {}
};

function identity(patch: Partial<IIdentity> = {}): IIdentity {
  return { name: 'Ada', email: 'ada@example.org', source: 'configured', required: false, ...patch };
}

describe('a 409 identity_required on any route', () => {
  afterEach(() => setIdentityRequiredHandler(null));

  it('asks once, then sends the same request again', async () => {
    const calls: Call[] = [];
    const settings = server(
      [
        [409, identityRequired],
        [201, { id: 'c1' }]
      ],
      calls
    );
    const handler = vi.fn(async () => true);
    setIdentityRequiredHandler(handler);
    const body = { message: 'round 1' };
    const answer = await requestAPI<{ id: string }>(
      'labeling/sessions/s1/commit',
      { method: 'POST', body },
      settings
    );
    expect(answer).toEqual({ id: 'c1' });
    expect(handler).toHaveBeenCalledTimes(1);
    const error = (handler.mock.calls[0] as unknown[])[0] as PachlsApiError;
    expect(error.error).toBe('identity_required');
    expect(calls.map(c => `${c.method} ${c.body}`)).toEqual([
      'POST {"message":"round 1"}',
      'POST {"message":"round 1"}'
    ]);
  });

  it('throws the 409 when the user declines, without sending again', async () => {
    const calls: Call[] = [];
    const settings = server([[409, identityRequired]], calls);
    setIdentityRequiredHandler(async () => false);
    await expect(
      requestAPI('mounts/m/commit', { method: 'POST', body: { message: 'x' } }, settings)
    ).rejects.toMatchObject({ status: 409, error: 'identity_required' });
    expect(calls).toHaveLength(1);
  });

  it('retries only once: a second refusal reaches the caller', async () => {
    const calls: Call[] = [];
    const settings = server(
      [
        [409, identityRequired],
        [409, identityRequired]
      ],
      calls
    );
    const handler = vi.fn(async () => true);
    setIdentityRequiredHandler(handler);
    await expect(requestAPI('x', { method: 'PUT', body: {} }, settings)).rejects.toMatchObject({
      error: 'identity_required'
    });
    expect(handler).toHaveBeenCalledTimes(1);
    expect(calls).toHaveLength(2);
  });

  it('leaves every other error alone', async () => {
    const calls: Call[] = [];
    const settings = server([[409, { error: 'conflict', message: 'moved', details: {} }]], calls);
    const handler = vi.fn(async () => true);
    setIdentityRequiredHandler(handler);
    await expect(requestAPI('x', {}, settings)).rejects.toMatchObject({ error: 'conflict' });
    expect(handler).not.toHaveBeenCalled();
  });
});

describe('IdentityModel', () => {
  function fakeApi(known: IIdentity) {
    const calls: string[] = [];
    let current = known;
    return {
      calls,
      api: {
        getIdentity: async () => {
          calls.push('get');
          return current;
        },
        putIdentity: async (name: string, email: string) => {
          calls.push(`put ${name} ${email}`);
          current = identity({ name, email, source: 'configured', required: false });
          return current;
        }
      }
    };
  }

  it('asks on start only when no identity is known, prefilled with what the server knows', async () => {
    const none = identity({ name: null, email: null, source: null, required: true });
    const { api, calls } = fakeApi(none);
    const ask = vi.fn<AskIdentity>(async ({ save }) => save('Ada', 'ada@example.org'));
    const model = new IdentityModel({ api, ask });
    await model.checkOnStart();
    expect(ask).toHaveBeenCalledTimes(1);
    expect(ask.mock.calls[0][0].current).toEqual(none);
    expect(ask.mock.calls[0][0].reason).toBeNull();
    expect(calls).toEqual(['get', 'put Ada ada@example.org']);
    expect(model.identity?.name).toBe('Ada');

    const known = fakeApi(identity({ source: 'git' }));
    const ask2 = vi.fn<AskIdentity>(async () => null);
    await new IdentityModel({ api: known.api, ask: ask2 }).checkOnStart();
    expect(ask2).not.toHaveBeenCalled();
  });

  it('shows one dialog for every request refused at the same time', async () => {
    const { api } = fakeApi(identity({ name: null, email: null, source: null, required: true }));
    let finish: (value: IIdentity | null) => void = () => undefined;
    const ask = vi.fn<AskIdentity>(
      ({ save }) =>
        new Promise(resolve => {
          finish = () => void save('Bo', 'bo@example.org').then(resolve);
        })
    );
    const model = new IdentityModel({ api, ask });
    const error = new PachlsApiError(409, identityRequired);
    const first = model.handleIdentityRequired(error);
    const second = model.handleIdentityRequired(error);
    await vi.waitFor(() => expect(ask).toHaveBeenCalledTimes(1));
    finish(null);
    await expect(Promise.all([first, second])).resolves.toEqual([true, true]);
    expect(ask).toHaveBeenCalledTimes(1);
    expect(ask.mock.calls[0][0].reason).toBe('Set a name and email before committing.');
  });

  it('does not ask when another tab set the identity meanwhile', async () => {
    const { api } = fakeApi(identity());
    const ask = vi.fn<AskIdentity>(async () => null);
    const model = new IdentityModel({ api, ask });
    await expect(
      model.handleIdentityRequired(new PachlsApiError(409, identityRequired))
    ).resolves.toBe(true);
    expect(ask).not.toHaveBeenCalled();
  });

  it('reports a closed dialog as declined', async () => {
    const { api, calls } = fakeApi(identity({ name: null, email: null, source: null, required: true }));
    const model = new IdentityModel({ api, ask: async () => null });
    await expect(
      model.handleIdentityRequired(new PachlsApiError(409, identityRequired))
    ).resolves.toBe(false);
    expect(calls).toEqual(['get']);
  });

  it('keeps the server refusal of a save for the dialog to show', async () => {
    const api = {
      getIdentity: async () => identity(),
      putIdentity: async () => {
        throw new PachlsApiError(400, { error: 'invalid_argument', message: 'bad email', details: {} });
      }
    };
    const model = new IdentityModel({ api, ask: async () => null });
    await expect(model.save('A', 'a')).rejects.toMatchObject({ message: 'bad email' });
  });
});

describe('identity formatting and validation', () => {
  it('writes the author as git does', () => {
    expect(authorText({ name: 'Ada Lovelace', email: 'ada@example.org' })).toBe(
      'Ada Lovelace <ada@example.org>'
    );
    expect(authorText({ name: 'Ada', email: null })).toBe('Ada');
    expect(authorText({ name: null, email: 'x@y' })).toBe('');
    expect(authorText(null)).toBe('');
  });

  it('says where the identity comes from', () => {
    expect(identitySourceText(trans, 'jupyter')).toBe('from your Jupyter login');
    expect(identitySourceText(trans, 'git')).toBe('from git config');
    expect(identitySourceText(trans, 'configured')).toBe('set for this server');
    expect(identitySourceText(trans, null)).toBe('');
  });

  it('accepts a name and an email with one @', () => {
    expect(validateIdentity(trans, ' Ada Lovelace ', 'ada@example.org')).toEqual({});
  });

  it('refuses empty names, control characters and bad emails per field', () => {
    expect(Object.keys(validateIdentity(trans, '  ', 'ada@example.org'))).toEqual(['name']);
    expect(validateIdentity(trans, 'A\u0000da', 'ada@example.org').name).toMatch(/control/);
    expect(validateIdentity(trans, 'Ada\nEvil', 'ada@example.org').name).toMatch(/control/);
    expect(validateIdentity(trans, 'Ada <x>', 'ada@example.org').name).toBeDefined();
    expect(validateIdentity(trans, 'Ada', '').email).toBe('Give an email address.');
    expect(validateIdentity(trans, 'Ada', 'ada.example.org').email).toMatch(/one @/);
    expect(validateIdentity(trans, 'Ada', 'a@b@c').email).toMatch(/one @/);
    expect(validateIdentity(trans, 'Ada', '@example.org').email).toMatch(/one @/);
    expect(validateIdentity(trans, 'Ada', 'ada @x.org').email).toMatch(/spaces/);
  });
});
