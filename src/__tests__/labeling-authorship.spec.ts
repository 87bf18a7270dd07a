import { describe, expect, it } from 'vitest';
import { nullTranslator } from '@jupyterlab/translation';

import { PachlsApiError } from '../api';
import { IResyncPreview, ISession } from '../labeling/api';
import { ILabelingApi, LabelingModel } from '../labeling/model';
import {
  changedBy,
  deleteSessionText,
  isLabelCommit,
  labelChangeText,
  labeledBy,
  loginToLabelStudio,
  pendingLabelsOf,
  previewOf,
  resyncButtonText,
  resyncChanges,
  resyncSummary,
  uncommittedWarning
} from '../labeling/state';

const trans = nullTranslator.load('jupyterlab_pachls');

function session(patch: Partial<ISession> = {}): ISession {
  return {
    id: 's1',
    title: 'images@master → labels@master',
    data_repo: 'images',
    data_branch: 'master',
    data_commit: 'c'.repeat(32),
    glob: '/**',
    labels_repo: 'labels',
    labels_branch: 'master',
    project_id: 7,
    data_mount: 'images_cccccccc',
    labels_mount: 'labels',
    data_key: 'image',
    created_by: 'ada',
    created: 1000,
    tasks: 30,
    ...patch
  };
}

function preview(patch: Partial<IResyncPreview> = {}): IResyncPreview {
  return {
    ref: 'master',
    commit: 'a'.repeat(32),
    restore: 30,
    unchanged: 27,
    overwrite: ['/cats/001.png', '/cats/002.png'],
    remove: ['/dogs/009.png'],
    uncommitted: ['/cats/002.png'],
    ...patch
  };
}

describe('who created and who changed a label', () => {
  it('reads the creators of a blame row or label change, old servers included', () => {
    expect(labeledBy({ annotators: ['a@x', 'b@x'] })).toEqual(['a@x', 'b@x']);
    expect(labeledBy({ annotator: 'a@x' })).toEqual(['a@x']);
    expect(labeledBy({})).toEqual([]);
  });

  it('reads who changed it', () => {
    expect(changedBy({ changed_by: ['b@x'] })).toEqual(['b@x']);
    expect(changedBy({})).toEqual([]);
  });

  it('writes a label change as before → after', () => {
    expect(labelChangeText({ before: ['cat'], after: ['bird'] })).toBe('cat → bird');
    expect(labelChangeText({ before: [], after: ['cat', 'dog'] })).toBe('∅ → cat, dog');
    expect(labelChangeText({ before: ['cat'], after: [] })).toBe('cat → ∅');
  });

  it('knows a label commit by its metadata', () => {
    expect(isLabelCommit({ 'pachls.labels': '{}', 'pachls.annotators': 'a' })).toBe(true);
    expect(isLabelCommit({ other: 'x' })).toBe(false);
    expect(isLabelCommit(undefined)).toBe(false);
  });
});

describe('resync preview', () => {
  it('lists what would be overwritten and removed', () => {
    expect(resyncChanges(preview())).toEqual([
      { path: '/cats/001.png', change: 'modified' },
      { path: '/cats/002.png', change: 'modified' },
      { path: '/dogs/009.png', change: 'deleted' }
    ]);
  });

  it('says what a resync restores, replaces and leaves alone', () => {
    expect(resyncSummary(trans, preview())).toBe(
      'Restores 30 annotations from the label files of master (aaaaaaaa); 2 files overwritten, 1 removed, 27 annotations unchanged.'
    );
  });

  it('calls out annotations never committed, and only then', () => {
    expect(uncommittedWarning(trans, preview())).toMatch(/^1 file has annotations that were never committed/);
    expect(uncommittedWarning(trans, preview({ uncommitted: ['/a', '/b'] }))).toMatch(/^2 files have/);
    expect(uncommittedWarning(trans, preview({ uncommitted: [] }))).toBe('');
  });

  it('names the damage on the confirm button', () => {
    expect(resyncButtonText(trans, preview())).toBe('Resync (overwrite 2, remove 1)');
    expect(resyncButtonText(trans, preview({ overwrite: [], remove: [], uncommitted: [] }))).toBe('Resync');
  });

  it('takes the preview a 409 confirmation_required carries', () => {
    const p = preview();
    const error = new PachlsApiError(409, {
      error: 'confirmation_required',
      message: 'confirm',
      details: { ...p }
    });
    expect(previewOf(error)).toEqual(p);
    expect(previewOf(new PachlsApiError(409, { error: 'conflict', message: 'x', details: { ...p } }))).toBeNull();
    expect(
      previewOf(new PachlsApiError(409, { error: 'confirmation_required', message: 'x', details: {} }))
    ).toBeNull();
  });
});

describe('deleting a session', () => {
  it('says what happens to the Label Studio project and to committed labels', () => {
    const keep = deleteSessionText(trans, session(), 'keep');
    expect(keep[1]).toBe(
      'Label Studio project 7 is kept with its tasks and annotations; you can still open it in Label Studio.'
    );
    expect(keep[2]).toBe('Labels already committed to labels@master stay as they are, with their history.');
    const remove = deleteSessionText(trans, session(), 'delete');
    expect(remove[1]).toBe('Label Studio project 7 is deleted with its tasks and every annotation in it.');
    expect(remove[2]).toBe(keep[2]);
  });

  it('reads the pending count of a 409 pending_labels', () => {
    const pending = new PachlsApiError(409, { error: 'pending_labels', message: 'x', details: { pending: 3 } });
    expect(pendingLabelsOf(pending)).toBe(3);
    expect(pendingLabelsOf(new PachlsApiError(409, { error: 'conflict', message: 'x', details: {} }))).toBeNull();
    expect(pendingLabelsOf(new Error('x'))).toBeNull();
  });
});

describe('LabelingModel: resync and delete', () => {
  function fakeApi(deleteAnswers: Array<() => unknown>) {
    const calls: string[] = [];
    const api = {
      getLabeling: async () => {
        calls.push('labeling');
        return { label_studio: null, templates: [], sessions: [session(), session({ id: 's2' })] };
      },
      getSession: async (id: string) => ({
        ...session({ id }),
        data_status: { behind: 0, head: null, data_commit: 'c' }
      }),
      getPending: async (id: string) => {
        calls.push(`pending ${id}`);
        return { count: 0, added: [], modified: [], deleted: [], annotators: [], data_commits: [] };
      },
      previewResync: async (id: string, ref: string) => {
        calls.push(`preview ${id} ${ref}`);
        return preview({ ref });
      },
      resyncLabels: async (id: string, ref: string, commit: string) => {
        calls.push(`resync ${id} ${ref} ${commit}`);
        return { restored: 30, removed: 1, commit };
      },
      deleteSession: async (id: string, options: { project: string; force?: boolean }) => {
        calls.push(`delete ${id} ${options.project} ${options.force ?? false}`);
        const answer = deleteAnswers.shift();
        return answer ? answer() : { deleted: id, project: 'kept', project_id: 7 };
      }
    } as unknown as ILabelingApi;
    return { api, calls };
  }

  it('previews a trimmed ref and resyncs exactly the previewed commit', async () => {
    const { api, calls } = fakeApi([]);
    const model = new LabelingModel({ api });
    const shown = await model.previewResync('s1', ' master ');
    const result = await model.resync('s1', shown);
    expect(result).toEqual({ restored: 30, removed: 1, commit: 'a'.repeat(32) });
    expect(calls.slice(0, 2)).toEqual(['preview s1 master', `resync s1 master ${'a'.repeat(32)}`]);
    // the pending count is read again after a resync
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(calls).toContain('pending s1');
    model.dispose();
  });

  it('drops a deleted session and tells its tab', async () => {
    const { api, calls } = fakeApi([]);
    const model = new LabelingModel({ api, interval: 0 });
    await model.refresh();
    const deleted: string[] = [];
    model.sessionDeleted.connect((_, id) => deleted.push(id));
    const seen: string[][] = [];
    model.changed.connect((_, state) => seen.push((state.status?.sessions ?? []).map(s => s.id)));
    const result = await model.deleteSession('s1', { project: 'delete' });
    expect(result.deleted).toBe('s1');
    expect(calls).toContain('delete s1 delete false');
    expect(seen[0]).toEqual(['s2']);
    expect(deleted).toEqual(['s1']);
    model.dispose();
  });

  it('keeps the session when labels are pending, and deletes it when forced', async () => {
    const refusal = new PachlsApiError(409, {
      error: 'pending_labels',
      message: '2 label changes are not committed',
      details: { pending: 2 }
    });
    const { api, calls } = fakeApi([
      () => {
        throw refusal;
      }
    ]);
    const model = new LabelingModel({ api, interval: 0 });
    await model.refresh();
    const deleted: string[] = [];
    model.sessionDeleted.connect((_, id) => deleted.push(id));
    const failure = await model.deleteSession('s1', { project: 'keep' }).catch(e => e);
    expect(pendingLabelsOf(failure)).toBe(2);
    expect(model.session('s1')).toBeDefined();
    expect(deleted).toEqual([]);
    await model.deleteSession('s1', { project: 'keep', force: true });
    expect(calls.filter(c => c.startsWith('delete'))).toEqual(['delete s1 keep false', 'delete s1 keep true']);
    expect(model.session('s1')).toBeUndefined();
    expect(deleted).toEqual(['s1']);
    model.dispose();
  });
});

describe('logging the tab into Label Studio as the current Jupyter user', () => {
  type Answer = { status: number; redirected?: boolean; type?: string; json?: unknown };

  function fakeFetch(answers: Answer[]) {
    const calls: string[] = [];
    const fetch = async (url: string, init?: RequestInit) => {
      calls.push(`${init?.method ?? 'GET'} ${url}`);
      const a = answers.shift() ?? { status: 500 };
      return {
        ok: a.status >= 200 && a.status < 300,
        status: a.status,
        statusText: '',
        redirected: a.redirected ?? false,
        type: a.type ?? 'basic',
        json: async () => a.json
      } as unknown as Response;
    };
    return { calls, fetch };
  }

  const bob = { email: 'bob@localhost', password: 'p' };

  it('leaves a browser already logged in as the same user alone', async () => {
    const { calls, fetch } = fakeFetch([
      { status: 200, redirected: true },
      { status: 200, json: { id: 2, email: 'Bob@localhost' } }
    ]);
    await loginToLabelStudio('/p', { fetch, cookie: () => 'T', credentials: async () => bob });
    expect(calls).toEqual(['GET /p/user/login/', 'GET /p/api/current-user/whoami']);
  });

  it("logs out an earlier user's session, then logs in as the current one", async () => {
    const { calls, fetch } = fakeFetch([
      { status: 200, redirected: true },
      { status: 200, json: { id: 1, email: 'alice@localhost' } },
      { status: 0, type: 'opaqueredirect' },
      { status: 200 },
      { status: 0, type: 'opaqueredirect' }
    ]);
    let asked = 0;
    await loginToLabelStudio('/p', {
      fetch,
      cookie: () => 'T',
      credentials: async () => {
        asked++;
        return bob;
      }
    });
    expect(calls).toEqual([
      'GET /p/user/login/',
      'GET /p/api/current-user/whoami',
      'GET /p/logout',
      'GET /p/user/login/',
      'POST /p/user/login/'
    ]);
    expect(asked).toBe(1);
  });
});
