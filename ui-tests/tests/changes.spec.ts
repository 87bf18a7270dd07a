import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';

import { api, openPanel, shot, test } from './helpers';

/**
 * What changed, shown: a commit's changed paths open the change itself (a
 * text diff, images before and after), the same in the comparison of two
 * commits; "History of This File" from the file browser lists only the
 * commits that changed that file; a mount of a fixed commit is no warning;
 * disabled buttons look disabled in the dark theme.
 */
test.use({ autoGoto: false, viewport: { width: 1440, height: 900 } });

// two 8x8 PNGs, red then blue
const RED =
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGO4o6GBFTEMLQkAe3tLAfuiUfAAAAAASUVORK5CYII=';
const BLUE =
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGPQCLiDFTEMLQkACbdVAfTkR+4AAAAASUVORK5CYII=';

/** Write a file of the mount through the contents API (as the file browser saves). */
async function write(page: IJupyterLabPageFixture, path: string, content: string, format = 'text') {
  const status = await page.evaluate(
    async ([p, c, f]) => {
      const r = await fetch(`/api/contents/${p.split('/').map(encodeURIComponent).join('/')}`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'file', format: f, content: c })
      });
      return r.status;
    },
    [path, content, format]
  );
  expect([200, 201]).toContain(status);
}

test('a commit shows its text and image changes; a file has its own history', async ({
  page
}, testInfo) => {
  test.setTimeout(4 * 60 * 1000);
  const repo = `changes${Date.now().toString(36)}`;
  await page.goto();
  const panel = await openPanel(page);

  // Three commits through a read-write mount: add notes.txt and pic.png; change both; touch only other.txt.
  expect((await api(page, 'POST', 'repos', { name: repo })).status).toBe(201);
  const mounted = await api(page, 'POST', 'mounts', { repo, branch: 'master', mode: 'rw', name: repo });
  expect(mounted.status, JSON.stringify(mounted.body)).toBe(201);
  const root: string = await page.evaluate(
    () => JSON.parse(document.getElementById('jupyter-config-data')!.textContent!).serverRoot
  );
  const folder = (mounted.body.mountpoint as string).slice(root.length).replace(/^\/+/, '');
  const commit = async (message: string) => {
    const done = await api(page, 'POST', `mounts/${repo}/commit`, { message });
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    return done.body.commit?.id ?? done.body.id;
  };
  await write(page, `${folder}/notes.txt`, 'one\ntwo\nthree\n');
  await write(page, `${folder}/pic.png`, RED, 'base64');
  await commit('Add notes and a picture');
  await write(page, `${folder}/notes.txt`, 'one\nTWO\nthree\nfour\n');
  await write(page, `${folder}/pic.png`, BLUE, 'base64');
  await commit('Change both');
  await write(page, `${folder}/other.txt`, 'other\n');
  await commit('Only other.txt');

  await page.evaluate(async (r: string) => {
    await (window as any).jupyterapp.commands.execute('pachls:show-history', { repo: r });
  }, repo);
  const history = page.locator(`.jp-PachlsHistory[data-repo="${repo}"]:not([data-path])`);
  const rows = history.locator('.jp-PachlsCommit');
  await expect(rows).toHaveCount(3);

  // The commit's link says what it will show, then the count of changed files (not the tree's total).
  const second = rows.nth(1);
  const files = second.locator('.jp-PachlsCommit-files');
  await expect(files).toHaveText('files changed');
  await files.click();
  await expect(files).toHaveText('2 files changed');

  // A text file: its unified diff.
  await second.getByRole('button', { name: 'Show the change of /notes.txt' }).click();
  const text = second.locator('.jp-PachlsDiffView[data-path="/notes.txt"]');
  await expect(text).toHaveAttribute('data-kind', 'text');
  await expect(text.locator('tr[data-kind="deleted"] .jp-PachlsTextDiff-text')).toHaveText(['two']);
  await expect(text.locator('tr[data-kind="added"] .jp-PachlsTextDiff-text')).toHaveText(['TWO', 'four']);

  // An image: before and after side by side, both loaded.
  await second.getByRole('button', { name: 'Show the change of /pic.png' }).click();
  const image = second.locator('.jp-PachlsDiffView[data-path="/pic.png"]');
  await expect(image).toHaveAttribute('data-kind', 'image');
  for (const side of ['before', 'after']) {
    const img = image.locator(`.jp-PachlsImageDiff-side[data-side="${side}"] img`);
    await expect(img).toBeVisible();
    await expect.poll(() => img.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(8);
  }
  await shot(page, 'history-file-diff-light.png', testInfo);

  // Comparing the first and the last commit: the same, between those two.
  await rows.nth(0).getByRole('checkbox').check();
  await rows.nth(2).getByRole('checkbox').check();
  const diff = history.locator('.jp-PachlsDiff');
  await diff.getByRole('button', { name: 'Show the change of /notes.txt' }).click();
  await expect(
    diff.locator('.jp-PachlsDiffView[data-path="/notes.txt"] tr[data-kind="added"] .jp-PachlsTextDiff-text')
  ).toHaveText(['TWO', 'four']);
  await expect(diff.locator('.jp-PachlsChange[data-path="/other.txt"]')).toHaveAttribute('data-change', 'added');

  // Dark: the diff stays readable, a disabled button looks disabled (no fill, dashed, dimmed).
  await page.theme.setDarkTheme();
  await shot(page, 'history-file-diff-dark.png', testInfo);
  const disabled = panel.locator('.jp-PachlsButton:disabled').first();
  await expect(disabled).toBeVisible();
  expect(await disabled.evaluate(el => getComputedStyle(el).borderStyle)).toBe('dashed');
  expect(await disabled.evaluate(el => getComputedStyle(el).backgroundColor)).toBe('rgba(0, 0, 0, 0)');
  await page.theme.setLightTheme();

  // History of one file, from the file browser's context menu on the file in the mount.
  await page.evaluate(async (p: string) => {
    await (window as any).jupyterapp.commands.execute('filebrowser:go-to-path', { path: p });
  }, `/${folder}`);
  await page
    .locator('.jp-DirListing-item', { has: page.locator('.jp-DirListing-itemText', { hasText: 'notes.txt' }) })
    .click({ button: 'right' });
  await page.locator('.lm-Menu-item', { hasText: 'History of This File' }).click();
  const fileHistory = page.locator(`.jp-PachlsHistory[data-repo="${repo}"][data-path="/notes.txt"]`);
  await expect(fileHistory.locator('.jp-PachlsHistory-title')).toHaveText(
    `History of /notes.txt in ${repo}@master`
  );
  await expect(fileHistory.locator('.jp-PachlsCommit-message')).toHaveText([
    'Change both',
    'Add notes and a picture'
  ]);

  // A mount of a fixed commit says so, in plain text, not as a warning.
  const first = await rows.nth(2).getAttribute('data-commit');
  const fixed = await api(page, 'POST', 'mounts', { repo, commit: first, name: `${repo}_fixed` });
  expect(fixed.status, JSON.stringify(fixed.body)).toBe(201);
  await openPanel(page);
  await panel.getByRole('button', { name: 'Refresh repos and mounts' }).click();
  const note = panel.locator(`.jp-PachlsMount[data-mount="${repo}_fixed"] .jp-PachlsMount-behind`);
  await expect(note).toHaveText('fixed commit');
  expect(await note.evaluate(el => getComputedStyle(el).fontWeight)).toBe('400');
});
