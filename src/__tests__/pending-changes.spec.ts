import { nullTranslator } from '@jupyterlab/translation';
import { describe, expect, it } from 'vitest';

import { IChanges, IMountStatus } from '../api';
import { PendingChanges } from '../pending';
import { deletedText, pendingDeletions } from '../state';

function mountStatus(patch: Partial<IMountStatus> = {}): IMountStatus {
  return {
    name: 'a',
    repo: 'a',
    branch: 'master',
    commit: null,
    base: '1'.repeat(32),
    mode: 'rw',
    presentation: 'no-fuse',
    state: 'mounted',
    message: '',
    behind: 0,
    pending: 1,
    mountpoint: '/root/pfs/a',
    ...patch
  };
}

/** A reader of each mount's changes whose answers the test gives, in any order. */
function answeredByTest() {
  const asked: Array<{ mount: string; answer: (changes: IChanges['changes']) => void }> = [];
  const read = (mount: string) =>
    new Promise<IChanges>(resolve => asked.push({ mount, answer: changes => resolve({ changes } as IChanges) }));
  return { asked, read };
}

const flush = () => new Promise(resolve => setTimeout(resolve, 0));

describe('pendingDeletions', () => {
  const changes = [
    { path: '/x.txt', change: 'deleted' as const },
    { path: '/notes.txt', change: 'added' as const },
    { path: '/cats/001.png', change: 'deleted' as const },
    { path: '/cats/small/002.png', change: 'deleted' as const },
    { path: '/gone/003.png', change: 'deleted' as const }
  ];

  it('puts a deletion on the listed folder holding it, else with the folder shown', () => {
    const found = pendingDeletions('/', ['notes.txt', 'cats'], changes);
    expect(found.here).toEqual(['x.txt', 'gone/003.png']);
    expect(Object.fromEntries(found.below)).toEqual({ cats: ['001.png', 'small/002.png'] });
  });

  it('looks inside the folder shown only', () => {
    const found = pendingDeletions('/cats', ['small'], changes);
    expect(found.here).toEqual(['001.png']);
    expect(Object.fromEntries(found.below)).toEqual({ small: ['002.png'] });
    expect(pendingDeletions('/dogs', [], changes).here).toEqual([]);
  });
});

describe('deletedText', () => {
  const trans = nullTranslator.load('jupyterlab_pachls');
  it('counts and names the deleted files, the first few only', () => {
    expect(deletedText(trans, ['x.txt'])).toBe('1 deleted: x.txt');
    expect(deletedText(trans, ['a', 'b', 'c'], 2)).toBe('3 deleted: a, b and 1 more');
  });
});

describe('PendingChanges', () => {
  it("never answers with another mount's changes while the new ones are read", async () => {
    const { asked, read } = answeredByTest();
    const pending = new PendingChanges(read);
    const a = mountStatus({ name: 'a' });
    const b = mountStatus({ name: 'b' });
    expect(pending.get(a)).toBeNull();
    asked[0].answer([{ path: '/same.txt', change: 'added' }]);
    await flush();
    expect(pending.get(a)).toEqual([{ path: '/same.txt', change: 'added' }]);
    // switching to b: nothing until b's answer, though a's are known
    expect(pending.get(b)).toBeNull();
    expect(asked.map(q => q.mount)).toEqual(['a', 'b']);
    asked[1].answer([{ path: '/same.txt', change: 'modified' }]);
    await flush();
    expect(pending.get(b)).toEqual([{ path: '/same.txt', change: 'modified' }]);
  });

  it('drops the changes of a base the mount left, keeps them while its count moves', async () => {
    const { asked, read } = answeredByTest();
    const pending = new PendingChanges(read);
    pending.get(mountStatus());
    asked[0].answer([{ path: '/one.txt', change: 'added' }]);
    await flush();
    // one more save: the known changes stay shown while they are read again
    expect(pending.get(mountStatus({ pending: 2 }))).toEqual([{ path: '/one.txt', change: 'added' }]);
    expect(asked).toHaveLength(2);
    // rolled back or followed: another base, nothing until read
    expect(pending.get(mountStatus({ base: '2'.repeat(32), pending: 2 }))).toBeNull();
    // the answer for the count the mount left arrives late: dropped
    asked[1].answer([{ path: '/stale.txt', change: 'added' }]);
    asked[2].answer([{ path: '/two.txt', change: 'added' }]);
    await flush();
    expect(pending.get(mountStatus({ base: '2'.repeat(32), pending: 2 }))).toEqual([{ path: '/two.txt', change: 'added' }]);
  });

  it('reads again after outdate (a save the count did not show), once per question', async () => {
    const { asked, read } = answeredByTest();
    const pending = new PendingChanges(read);
    const a = mountStatus();
    pending.get(a);
    pending.get(a);
    expect(asked).toHaveLength(1);
    asked[0].answer([]);
    await flush();
    pending.get(a);
    expect(asked).toHaveLength(1);
    pending.outdate();
    expect(pending.get(a)).toEqual([]);
    expect(asked).toHaveLength(2);
    expect(pending.get(mountStatus({ pending: 0 }))).toEqual([]);
  });

  it('keeps what it knew when a read fails, and asks again on the next get', async () => {
    const answers: Array<Promise<IChanges>> = [
      Promise.resolve({ changes: [{ path: '/one.txt', change: 'added' }] } as IChanges),
      Promise.reject(new Error('503: the mount is busy')),
      Promise.resolve({ changes: [{ path: '/two.txt', change: 'added' }] } as IChanges)
    ];
    answers[1].catch(() => undefined);
    let asked = 0;
    const pending = new PendingChanges(() => answers[asked++]);
    pending.get(mountStatus());
    await flush();
    // one more save, and its read fails: the known changes stay, not "nothing pending"
    pending.get(mountStatus({ pending: 2 }));
    await flush();
    expect(pending.get(mountStatus({ pending: 2 }))).toEqual([{ path: '/one.txt', change: 'added' }]);
    expect(asked).toBe(3);
    await flush();
    expect(pending.get(mountStatus({ pending: 2 }))).toEqual([{ path: '/two.txt', change: 'added' }]);
    expect(asked).toBe(3);
  });

  it('forgets the changes once nothing is pending (a discard), even if as many come back at the same base', async () => {
    const { asked, read } = answeredByTest();
    const pending = new PendingChanges(read);
    pending.get(mountStatus());
    asked[0].answer([{ path: '/a.txt', change: 'modified' }]);
    await flush();
    // discarded, then another file changed before any refresh of the listing: same base, same count
    expect(pending.get(mountStatus({ pending: 0 }))).toEqual([]);
    expect(pending.get(mountStatus())).toBeNull();
    expect(asked).toHaveLength(2);
    asked[1].answer([{ path: '/b.txt', change: 'modified' }]);
    await flush();
    expect(pending.get(mountStatus())).toEqual([{ path: '/b.txt', change: 'modified' }]);
  });
});
