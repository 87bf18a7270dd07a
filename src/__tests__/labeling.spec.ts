import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { nullTranslator } from '@jupyterlab/translation';

import { ICommit, PachlsApiError } from '../api';
import { ILabelingStatus, IPending, ISession } from '../labeling/api';
import { ILabelingApi, LabelingModel } from '../labeling/model';
import {
  behindText,
  commitButtonText,
  CUSTOM_XML,
  initialSessionForm,
  isNothingToCommit,
  labelStudioText,
  LabelStudioStartingError,
  loginToLabelStudio,
  parseClasses,
  pendingChanges,
  projectUrl,
  readCookie,
  mountOfFile,
  sessionRequest,
  validateSessionForm
} from '../labeling/state';

const trans = nullTranslator.load('jupyterlab_pachls');

function session(patch: Partial<ISession> = {}): ISession {
  return {
    id: 'abc123',
    title: 'images@master → labels@master',
    data_repo: 'images',
    data_branch: 'master',
    data_commit: 'c'.repeat(32),
    glob: '/**',
    labels_repo: 'labels',
    labels_branch: 'master',
    project_id: 3,
    data_mount: 'images_cccccccc',
    labels_mount: 'labels',
    data_key: 'image',
    created_by: 'me',
    created: 1000,
    tasks: 12,
    ...patch
  };
}

function pending(patch: Partial<IPending> = {}): IPending {
  return {
    count: 0,
    added: [],
    modified: [],
    deleted: [],
    annotators: [],
    data_commits: [],
    ...patch
  };
}

describe('labels of the UI', () => {
  it('formats the commit button with the pending count', () => {
    expect(commitButtonText(trans, 1)).toBe('Commit labels (1 pending)');
    expect(commitButtonText(trans, 0)).toBe('Commit labels (0 pending)');
    expect(commitButtonText(trans, 12)).toBe('Commit labels (12 pending)');
    expect(commitButtonText(trans, null)).toBe('Commit labels');
  });

  it('lists pending label files with their change', () => {
    const changes = pendingChanges(
      pending({ count: 3, added: ['/a.png.json'], modified: ['/b.png.json'], deleted: ['/c.png.json'] })
    );
    expect(changes).toEqual([
      { path: '/a.png.json', change: 'added' },
      { path: '/b.png.json', change: 'modified' },
      { path: '/c.png.json', change: 'deleted' }
    ]);
  });

  it('describes Label Studio in every state', () => {
    const base = { mode: 'managed' as const, url: null, message: '', started_seconds: null, restarts: 0, log: null };
    expect(labelStudioText(trans, { ...base, state: 'running' })).toBe('Label Studio is running');
    expect(labelStudioText(trans, { ...base, state: 'starting', started_seconds: 41.6 })).toBe(
      'Label Studio is starting… 42 s'
    );
    expect(labelStudioText(trans, { ...base, state: 'failed', message: 'exit 1' })).toBe(
      'Label Studio failed: exit 1'
    );
    expect(labelStudioText(trans, { ...base, state: 'stopped' })).toMatch(/stopped/);
    expect(labelStudioText(trans, null)).toMatch(/not configured/);
  });

  it('says how far the data is behind', () => {
    expect(behindText(trans, 0)).toBe('');
    expect(behindText(trans, 1)).toBe('data 1 commit behind');
    expect(behindText(trans, 3)).toBe('data 3 commits behind');
  });

  it('builds the project URL under the proxy prefix', () => {
    expect(projectUrl('/user/me/', 7)).toBe('/user/me/pachls/labelstudio/projects/7/data');
    expect(projectUrl('/', 1)).toBe('/pachls/labelstudio/projects/1/data');
  });

  it('recognizes the server\'s "nothing to commit"', () => {
    const nothing = new PachlsApiError(400, {
      error: 'invalid_argument',
      message: 'nothing to commit: no annotation changed since the last label commit',
      details: {}
    });
    expect(isNothingToCommit(nothing)).toBe(true);
    expect(isNothingToCommit(new PachlsApiError(409, { error: 'conflict', message: 'x', details: {} }))).toBe(false);
  });
});

describe('new session form', () => {
  const valid = { ...initialSessionForm, data: 'images@master', classes: 'cat, dog' };

  it('accepts a complete form and builds the request', () => {
    expect(validateSessionForm(trans, valid)).toEqual({});
    expect(sessionRequest(valid)).toEqual({
      data: 'images@master',
      labels: 'labels@master',
      template: 'image-classification',
      classes: ['cat', 'dog']
    });
  });

  it('asks for a training format in each label commit only when one is chosen', () => {
    expect(sessionRequest({ ...valid, exportFormat: 'COCO' })).toMatchObject({ export_format: 'COCO' });
    expect(sessionRequest(valid)).not.toHaveProperty('export_format');
  });

  it('parses classes, dropping blanks', () => {
    expect(parseClasses(' cat,dog ,, bird ')).toEqual(['cat', 'dog', 'bird']);
    expect(parseClasses('')).toEqual([]);
  });

  it('names each wrong field', () => {
    const errors = validateSessionForm(trans, {
      ...initialSessionForm,
      data: 'images',
      labels: '',
      glob: 'cats/*.png',
      classes: 'cat, cat'
    });
    expect(Object.keys(errors).sort()).toEqual(['classes', 'data', 'glob', 'labels']);
    expect(errors.classes).toMatch(/once/);
    expect(validateSessionForm(trans, { ...valid, data: '' }).data).toMatch(/repo@branch/);
    expect(validateSessionForm(trans, { ...valid, classes: ' , ' }).classes).toMatch(/at least one/);
  });

  it('takes project/repo addresses and a glob', () => {
    const form = { ...valid, data: 'proj/images@dev', glob: ' /cats/*.png ' };
    expect(validateSessionForm(trans, form)).toEqual({});
    expect(sessionRequest(form)).toMatchObject({ data: 'proj/images@dev', glob: '/cats/*.png' });
  });

  it('custom XML needs XML, not classes; the server validates it', () => {
    const custom = { ...valid, template: CUSTOM_XML, classes: '', xml: '' };
    expect(validateSessionForm(trans, custom).xml).toBeTruthy();
    const xml = '<View><Text name="t" value="$text"/></View>';
    expect(validateSessionForm(trans, { ...custom, xml })).toEqual({});
    expect(sessionRequest({ ...custom, xml })).toEqual({
      data: 'images@master',
      labels: 'labels@master',
      xml
    });
  });
});

describe('automatic login to Label Studio', () => {
  type Call = { url: string; init?: RequestInit };

  function fakeFetch(answers: Array<Partial<Response>>) {
    const calls: Call[] = [];
    const fetch = async (url: string, init?: RequestInit) => {
      calls.push({ url, init });
      const answer = answers.shift() ?? { status: 500 };
      return { ok: (answer.status ?? 0) >= 200 && (answer.status ?? 0) < 300, statusText: '', type: 'basic', ...answer } as Response;
    };
    return { calls, fetch };
  }

  it('GETs the login page, then POSTs the form with the csrf token, without following the redirect', async () => {
    const { calls, fetch } = fakeFetch([{ status: 200 }, { status: 0, type: 'opaqueredirect' }]);
    let asked = 0;
    await loginToLabelStudio('/base/pachls/labelstudio', {
      fetch,
      cookie: name => (name === 'csrftoken' ? 'TOKEN' : null),
      credentials: async () => {
        asked++;
        return { email: 'admin@pachls.local', password: 's3cret&=' };
      }
    });
    expect(asked).toBe(1);
    expect(calls.map(c => [c.init?.method ?? 'GET', c.url])).toEqual([
      ['GET', '/base/pachls/labelstudio/user/login/'],
      ['POST', '/base/pachls/labelstudio/user/login/']
    ]);
    const post = calls[1].init as RequestInit;
    expect(post.redirect).toBe('manual');
    expect(post.credentials).toBe('same-origin');
    const form = new URLSearchParams(post.body as string);
    expect(Object.fromEntries(form)).toEqual({
      csrfmiddlewaretoken: 'TOKEN',
      email: 'admin@pachls.local',
      password: 's3cret&=',
      persist_session: 'on'
    });
    expect((post.headers as Record<string, string>)['Content-Type']).toBe(
      'application/x-www-form-urlencoded'
    );
  });

  it('reports a starting Label Studio (503) so the tab keeps waiting', async () => {
    const { fetch } = fakeFetch([{ status: 503 }]);
    await expect(
      loginToLabelStudio('/pachls/labelstudio', {
        fetch,
        cookie: () => 'T',
        credentials: async () => ({ email: 'e', password: 'p' })
      })
    ).rejects.toBeInstanceOf(LabelStudioStartingError);
  });

  it('fails clearly when the login is refused or the cookie is missing', async () => {
    const refused = fakeFetch([{ status: 200 }, { status: 200 }]);
    await expect(
      loginToLabelStudio('/p', {
        fetch: refused.fetch,
        cookie: () => 'T',
        credentials: async () => ({ email: 'e', password: 'p' })
      })
    ).rejects.toThrow(/refused/);
    const noCookie = fakeFetch([{ status: 200 }]);
    const credentials = vi.fn(async () => ({ email: 'e', password: 'p' }));
    await expect(
      loginToLabelStudio('/p', { fetch: noCookie.fetch, cookie: () => null, credentials })
    ).rejects.toThrow(/csrftoken/);
    // the credentials are not even fetched then
    expect(credentials).not.toHaveBeenCalled();
  });

  it('reads a cookie', () => {
    expect(readCookie('csrftoken', '_xsrf=a; csrftoken=b%3Dc; x=1')).toBe('b=c');
    expect(readCookie('nope', '_xsrf=a')).toBeNull();
  });
});

describe('mountOfFile', () => {
  it('maps a file below the mount dir to its mount and its path inside it', () => {
    expect(mountOfFile('pfs/images/cats/001.png', 'pfs')).toEqual({ mount: 'images', path: '/cats/001.png' });
    expect(mountOfFile('/images_cccccccc/dogs/a.png', '')).toEqual({
      mount: 'images_cccccccc',
      path: '/dogs/a.png'
    });
  });

  it('ignores files elsewhere and the mount folders themselves', () => {
    expect(mountOfFile('notes/a.png', 'pfs')).toBeNull();
    expect(mountOfFile('pfsx/other/a.png', 'pfs')).toBeNull();
    expect(mountOfFile('pfs/images_cccccccc', 'pfs')).toBeNull();
  });
});

describe('LabelingModel', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function fakeApi(state: 'starting' | 'running' = 'running') {
    const calls: string[] = [];
    let ls = state;
    const status = (): ILabelingStatus => ({
      label_studio: { mode: 'managed', state: ls, url: null, message: '', started_seconds: 1, restarts: 0, log: null },
      templates: [{ name: 'image-classification', title: 'Image classification', data_key: 'image' }],
      sessions: [session()]
    });
    const api: ILabelingApi = {
      getLabeling: async () => {
        calls.push('labeling');
        return status();
      },
      startLabelStudio: async () => {
        calls.push('start');
        return status().label_studio!;
      },
      createSession: async request => {
        calls.push(`create ${request.data}`);
        return session({ id: 'new1' });
      },
      getSession: async id => {
        calls.push(`session ${id}`);
        return { ...session({ id }), data_status: { behind: 2, head: 'h', data_commit: 'c' } };
      },
      getPending: async id => {
        calls.push(`pending ${id}`);
        return pending({ count: 1, added: ['/cats/001.png.json'] });
      },
      commitLabels: async (id, message) => {
        calls.push(`commit ${id} ${message}`);
        return { id: 'f'.repeat(32), repo: 'labels', branch: 'master' } as ICommit;
      },
      importNewData: async id => {
        calls.push(`import ${id}`);
        return session({ id });
      }
    };
    return { api, calls, setState: (s: 'starting' | 'running') => (ls = s) };
  }

  it('loads sessions with data status and pending labels', async () => {
    const { api, calls } = fakeApi();
    const model = new LabelingModel({ api });
    await model.refresh();
    expect(calls.sort()).toEqual(['labeling', 'pending abc123', 'session abc123']);
    expect(model.state.data.abc123.behind).toBe(2);
    expect(model.state.pending.abc123.count).toBe(1);
    model.dispose();
  });

  it('does not ask for pending labels while Label Studio starts', async () => {
    const { api, calls } = fakeApi('starting');
    const model = new LabelingModel({ api });
    await model.refresh();
    expect(calls).not.toContain('pending abc123');
    model.dispose();
  });

  it('polls only while visible, faster while Label Studio starts', async () => {
    const { api, calls, setState } = fakeApi('starting');
    const model = new LabelingModel({ api, interval: 10000, startingInterval: 1000 });
    await vi.advanceTimersByTimeAsync(30000);
    expect(calls).toEqual([]);
    model.visible = true;
    await vi.advanceTimersByTimeAsync(10);
    const first = calls.length;
    await vi.advanceTimersByTimeAsync(3000);
    expect(calls.filter(c => c === 'labeling').length).toBeGreaterThanOrEqual(3);
    setState('running');
    await vi.advanceTimersByTimeAsync(1000);
    const running = calls.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls.length).toBe(running);
    model.visible = false;
    const hidden = calls.length;
    await vi.advanceTimersByTimeAsync(60000);
    expect(calls.length).toBe(hidden);
    expect(first).toBeGreaterThan(0);
    model.dispose();
  });

  it('starts Label Studio before creating a session', async () => {
    const { api, calls } = fakeApi();
    const model = new LabelingModel({ api });
    await model.refresh();
    calls.length = 0;
    const created = await model.createSession({ data: 'images@master', labels: 'labels@master' });
    expect(created.id).toBe('new1');
    expect(calls.slice(0, 2)).toEqual(['start', 'create images@master']);
    model.dispose();
  });

  it('commits, announces the commit and reloads the pending count', async () => {
    const { api, calls } = fakeApi();
    const model = new LabelingModel({ api });
    const seen: string[] = [];
    model.committed.connect((_, c) => seen.push(c.repo));
    const commit = await model.commit('abc123', 'round 1');
    expect(commit.repo).toBe('labels');
    expect(seen).toEqual(['labels']);
    expect(calls).toEqual(['commit abc123 round 1', 'pending abc123']);
    model.dispose();
  });

  it('keeps the pending error of a session', async () => {
    const { api } = fakeApi();
    api.getPending = async () => {
      throw new PachlsApiError(503, { error: 'unavailable', message: 'Label Studio is down', details: {} });
    };
    const model = new LabelingModel({ api });
    expect(await model.refreshPending('abc123')).toBeNull();
    expect(model.state.pendingErrors.abc123).toBe('Label Studio is down');
    model.dispose();
  });
});

describe('Label Studio restarting under a label commit', () => {
  const restarting = new PachlsApiError(503, {
    error: 'unavailable',
    message:
      'Label Studio stopped unexpectedly (exit code -9) and is restarting. Nothing was lost: acknowledged annotations are in its database. Try again in a few seconds.',
    details: { label_studio: 'restarting' }
  });

  it('shows what happens, keeps the pending labels reachable and lets the commit be retried', async () => {
    let down = true;
    const api = {
      getPending: async () => {
        if (down) {
          throw restarting;
        }
        return pending({ count: 2, added: ['/cats/001.png.json', '/cats/002.png.json'] });
      },
      commitLabels: async () => {
        if (down) {
          throw restarting;
        }
        return { id: 'f'.repeat(32), repo: 'labels', branch: 'master' } as ICommit;
      }
    } as unknown as ILabelingApi;
    const model = new LabelingModel({ api });
    const failed = await model.commit('abc123', 'round 1').catch(reason => reason);
    expect(failed).toBe(restarting); // the dialog shows its message and stays open for a retry
    await Promise.resolve();
    await Promise.resolve();
    expect(model.state.pendingErrors.abc123).toContain('is restarting');
    down = false;
    const commit = await model.commit('abc123', 'round 1');
    expect(commit.repo).toBe('labels');
    await model.refreshPending('abc123');
    expect(model.state.pendingErrors.abc123).toBeUndefined();
    expect(model.state.pending.abc123.count).toBe(2);
    model.dispose();
  });
});
