import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

import { api, commitInDialog, openPanel, shot, test } from './helpers';

/**
 * Nothing stale, nothing by accident: Jupyter's checkpoint of a new file is
 * never pending, the commit dialog leaves unticked paths pending, the file
 * browser and the status bar show what is pending, a mount whose branch was
 * rolled back says so and follows it in one action (keeping the pending
 * change), History shows the rollback in place and moves the branch forward
 * again, a read-only mount follows its branch, and no stale notice stays.
 */
test.use({ autoGoto: false });

/** Root-relative path of a mount's folder. */
async function folderOf(page: IJupyterLabPageFixture, name: string): Promise<string> {
  const status = (await api(page, 'GET', `mounts/${name}`)).body;
  const root: string = await page.evaluate(
    () => JSON.parse(document.getElementById('jupyter-config-data')!.textContent!).serverRoot
  );
  return (status.mountpoint as string).slice(root.length).replace(/^\/+/, '');
}

/** Save a text file through the contents API, then a checkpoint of it, as the editor does. */
async function saveWithCheckpoint(page: IJupyterLabPageFixture, path: string, text: string): Promise<void> {
  const statuses = await page.evaluate(
    async ([p, content]) => {
      const url = `/api/contents/${p.split('/').map(encodeURIComponent).join('/')}`;
      const xsrf = document.cookie.match(/_xsrf=([^;]+)/)?.[1] ?? '';
      const headers = { 'Content-Type': 'application/json', 'X-XSRFToken': xsrf };
      const put = await fetch(url, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ type: 'file', format: 'text', content })
      });
      const checkpoint = await fetch(`${url}/checkpoints`, { method: 'POST', headers });
      return [put.status, checkpoint.status];
    },
    [path, text]
  );
  expect([200, 201]).toContain(statuses[0]);
  expect(statuses[1]).toBe(201);
}

async function refreshPanel(panel: Locator): Promise<void> {
  await panel.getByRole('button', { name: 'Refresh repos and mounts' }).click();
}

test('rollback, follow, move forward, ignore and untick, without a stale view', async ({ page }, testInfo) => {
  test.setTimeout(240000);
  const repo = `rb${Date.now().toString(36)}`;
  await page.goto();
  const mounts = await api(page, 'GET', 'mounts');
  test.skip(mounts.status === 503, `mounts are not available on this server: ${mounts.body?.message}`);
  expect((await api(page, 'POST', 'repos', { name: repo })).status).toBe(201);
  expect((await api(page, 'POST', 'mounts', { repo, mode: 'rw' })).status).toBe(201);
  const folder = await folderOf(page, repo);
  const panel = await openPanel(page);
  await panel.getByLabel('Filter repos and branches').fill(repo);
  const mount = panel.locator(`.jp-PachlsMount[data-mount="${repo}"]`);
  const pending = mount.locator('.jp-PachlsMount-pending');

  // A new file saved from the editor: its checkpoint is Jupyter's own, never pending.
  await saveWithCheckpoint(page, `${folder}/notes.txt`, 'first notes\n');
  await refreshPanel(panel);
  await expect(pending).toHaveText('1 pending');
  const first = await (async () => {
    await mount.getByRole('button', { name: /^Commit the pending changes/ }).click();
    const dialog = page.locator('.jp-PachlsCommitDialog');
    await expect(dialog.locator('.jp-PachlsChange')).toHaveCount(1);
    await expect(dialog.locator('.jp-PachlsChange[data-path="/notes.txt"]')).toBeVisible();
    // written while the dialog is open: the user never saw it listed, so it is not committed
    await saveWithCheckpoint(page, `${folder}/draft.txt`, 'not shown in the dialog\n');
    return commitInDialog(dialog, 'First notes');
  })();
  const onlyListed = await api(page, 'GET', `repos/${repo}/commits/${first}/files`);
  expect(onlyListed.body.items.map((f: { path: string }) => f.path)).toEqual(['/notes.txt']);
  await expect(pending).toHaveText('1 pending');
  // deleted as the file browser does (to the trash: on a FUSE mount, .Trash-<uid>/ at its top, never pending)
  const draft = await page.evaluate(async p => {
    const xsrf = document.cookie.match(/_xsrf=([^;]+)/)?.[1] ?? '';
    const url = `/api/contents/${p.split('/').map(encodeURIComponent).join('/')}`;
    return (await fetch(url, { method: 'DELETE', headers: { 'X-XSRFToken': xsrf } })).status;
  }, `${folder}/draft.txt`);
  expect(draft).toBe(204);

  // Two more files; the dialog lets one be left out: it stays pending.
  await saveWithCheckpoint(page, `${folder}/keep.txt`, 'keep\n');
  await saveWithCheckpoint(page, `${folder}/later.txt`, 'later\n');
  await refreshPanel(panel);
  await expect(pending).toHaveText('2 pending');
  await mount.getByRole('button', { name: /^Commit the pending changes/ }).click();
  const dialog = page.locator('.jp-PachlsCommitDialog');
  await dialog.getByRole('checkbox', { name: 'Commit /later.txt' }).uncheck();
  await expect(dialog.locator('.jp-PachlsCommitForm-submit')).toHaveText('Commit 1 change');
  await expect(dialog).toContainText('1 unticked stay pending');
  await shot(page, 'commit-untick-light.png', testInfo);
  const second = await commitInDialog(dialog, 'Keep this one');
  await expect(pending).toHaveText('1 pending');
  const committed = await api(page, 'GET', `repos/${repo}/commits/${second}/files`);
  expect(committed.body.items.map((f: { path: string }) => f.path)).toEqual(['/keep.txt', '/notes.txt']);

  // The file browser marks the pending file; the status bar counts the open file's mount.
  await mount.getByRole('button', { name: `Open the folder of ${repo} in the file browser` }).click();
  const later = page.locator('.jp-FileBrowser .jp-DirListing-item', { hasText: 'later.txt' });
  await expect(later).toHaveAttribute('data-pachls-pending', 'added');
  await expect(
    page.locator('.jp-FileBrowser .jp-DirListing-item', { hasText: 'keep.txt' })
  ).not.toHaveAttribute('data-pachls-pending', /.*/);
  await later.dblclick();
  const status = page.locator('.jp-PachlsPendingStatus');
  await expect(status).toHaveText(`${repo}: 1 pending`);
  await shot(page, 'pending-marks-light.png', testInfo);

  // A read-only mount of the same branch, to see it follow.
  expect((await api(page, 'POST', 'mounts', { repo, name: `${repo}_ro` })).status).toBe(201);

  // Roll back to the first commit from the history.
  await openPanel(page);
  await mount.getByRole('button', { name: `Show the history of ${repo}@master` }).click();
  const history = page.locator(`.jp-PachlsHistory[data-repo="${repo}"]`);
  const rows = history.locator('.jp-PachlsCommit');
  await expect(rows).toHaveCount(2);
  await rows.nth(1).getByRole('button', { name: /^Roll back to commit/ }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Roll back' }).click();
  await expect(history.locator('.jp-PachlsNotice')).toContainText(`now points at ${first.slice(0, 8)}`);
  // in place: the move, the commit it left (not on the branch), the head
  await expect(history.locator('.jp-PachlsMove')).toHaveCount(1);
  await expect(rows.nth(0)).toHaveAttribute('data-commit', second);
  await expect(rows.nth(0)).toHaveAttribute('data-left', 'true');
  await expect(rows.nth(1)).toHaveAttribute('data-head', 'true');

  // The read-write mount says so plainly, never "up to date"; one action follows it.
  const panelAgain = await openPanel(page);
  await refreshPanel(panelAgain);
  const behind = mount.locator('.jp-PachlsMount-behind');
  await expect(behind).toHaveText(`branch was rolled back to ${first.slice(0, 8)}`);
  await shot(panelAgain, 'mount-rolled-back-light.png', testInfo);
  await mount.getByRole('button', { name: /^Follow the branch of/ }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Keep my changes' }).click();
  await expect(behind).toHaveText('up to date');
  await expect(pending).toHaveText('1 pending'); // later.txt, kept
  const shown = (await api(page, 'GET', `mounts/${repo}`)).body;
  expect(shown.base).toBe(first);

  // The read-only mount followed its branch back by itself (the panel's poll).
  const readOnly = panel.locator(`.jp-PachlsMount[data-mount="${repo}_ro"]`);
  await expect(async () => {
    await refreshPanel(panelAgain);
    expect((await api(page, 'GET', `mounts/${repo}_ro`)).body.base).toBe(first);
  }).toPass({ timeout: 20000 });
  await expect(readOnly.locator('.jp-PachlsMount-behind')).toHaveText('up to date');

  // Move the branch forward again onto the commit the rollback left.
  await rows.nth(0).getByRole('button', { name: /^Move the branch forward to commit/ }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Move the branch' }).click();
  await expect(history.locator('.jp-PachlsNotice')).toContainText(`now points at ${second.slice(0, 8)}`);
  await expect(rows.nth(0)).toHaveAttribute('data-commit', second);
  await expect(rows.nth(0)).toHaveAttribute('data-head', 'true');
  await expect(history.locator('.jp-PachlsCommit[data-left="true"]')).toHaveCount(0);

  // A later commit moves the head: the notice goes, nothing stale stays.
  await api(page, 'POST', `mounts/${repo}/follow`, { pending: 'keep' });
  expect((await api(page, 'POST', `mounts/${repo}/commit`, { message: 'later too' })).status).toBe(201);
  await history.getByRole('button', { name: 'Reload the history' }).click();
  await expect(rows).toHaveCount(3);
  await expect(history.locator('.jp-PachlsNotice')).toHaveCount(0);
});
