import { expect } from '@jupyterlab/galata';

import { api, LS_START, openPanel, shot, test } from './helpers';

/**
 * Labeling end to end, in real Chromium against the real managed Label
 * Studio: create a session on the demo `images` repo from the panel, label
 * one image in Label Studio inside the tab (logged in automatically), see
 * "Commit labels (1 pending)", commit, find the commit in the history of
 * labels@master.
 *
 * Label Studio's first start on a fresh data dir migrates its database (a
 * minute or two on a busy machine): it is started as soon as the test begins
 * and the test waits for it generously.
 */
test.use({ autoGoto: false, viewport: { width: 1440, height: 900 } });

test('label an image in the embedded Label Studio and commit the labels as one commit', async ({
  page,
  request
}, testInfo) => {
  test.setTimeout(LS_START + 3 * 60 * 1000);

  // Start Label Studio right away; creating the session waits for it.
  const started = await request.post('/pachls/api/labeling', { data: {} });
  test.skip(
    started.status() === 503,
    `labeling is not available on this server: ${await started.text()}`
  );
  expect(started.status()).toBe(202);

  await page.goto();
  const panel = await openPanel(page);
  const section = panel.locator('.jp-PachlsSection[data-section="labeling"]');
  await expect(section).toBeVisible();
  await expect(section.locator('.jp-PachlsLabelStudio')).toHaveAttribute(
    'data-state',
    /starting|running/
  );

  // The new-session form: the data picker offers the repos the panel loaded.
  await section.getByRole('button', { name: 'New labeling session' }).click();
  // a dialog, not a form at the bottom of the sidebar
  const form = page.locator('.jp-PachlsNewSessionDialog').getByRole('form', { name: 'New labeling session' });
  await expect(form.locator('#jp-pachls-labeling-sources option[value="images@master"]')).toHaveCount(1);
  // Validation happens in the form before anything is sent.
  await form.getByRole('button', { name: 'Create and label' }).click();
  await expect(form.locator('.jp-PachlsFieldError').first()).toContainText('repo@branch');
  await form.getByLabel('Data (repo@branch)').fill('images@master');
  await expect(form.getByLabel('Labels to (repo@branch, created if missing)')).toHaveValue('labels@master');
  await form.getByLabel('Labeling config').selectOption('image-classification');
  await form.getByLabel('Classes (comma-separated)').fill('cat, dog');
  await form.getByRole('button', { name: 'Create and label' }).click();

  // The tab opens on the session's project once Label Studio runs.
  const tab = page.locator('.jp-PachlsLabelingWidget');
  await expect(tab).toBeVisible({ timeout: LS_START });
  const content = tab.locator('.jp-PachlsLabelingContent');
  await expect(content).toHaveAttribute('data-phase', 'ready', { timeout: LS_START });
  const session = await content.getAttribute('data-session');
  expect(session).toMatch(/^[0-9a-z]+$/);
  const item = section.locator(`.jp-PachlsLabelingSession[data-session="${session}"]`);
  await expect(item).toContainText('images@master');
  await expect(section.locator('.jp-PachlsLabelStudio')).toHaveAttribute('data-state', 'running');

  // Logged in automatically: the project's task list, never the login page.
  const iframe = content.locator('iframe');
  await expect(iframe).toHaveAttribute('src', /\/pachls\/labelstudio\/projects\/\d+\/data$/);
  const frame = page.frameLocator('.jp-PachlsLabelingContent iframe');
  await expect(frame.getByRole('button', { name: 'Label All Tasks' })).toBeVisible({
    timeout: 60000
  });
  await expect(frame.locator('form[action*="/user/login"]')).toHaveCount(0);
  const frameUrl = await iframe.evaluate(
    (el: HTMLIFrameElement) => el.contentWindow?.location.href ?? ''
  );
  expect(frameUrl).not.toContain('/user/login');

  // Nothing labeled yet.
  const commitButton = tab.locator('.jp-PachlsCommitLabels');
  await expect(commitButton).toHaveText('Commit labels (0 pending)', { timeout: 30000 });

  // Label one image in Label Studio's own UI: choose "cat", submit.
  await frame.getByRole('button', { name: 'Label All Tasks' }).click();
  const cat = frame.getByRole('radio', { name: /cat/ }).first();
  await expect(cat).toBeVisible({ timeout: 30000 });
  await cat.check();
  await frame.getByRole('button', { name: 'Submit current annotation' }).click();

  // The toolbar and the panel count it.
  await expect(commitButton).toHaveText('Commit labels (1 pending)', { timeout: 30000 });
  await section.getByRole('button', { name: 'Refresh labeling sessions' }).click();
  await expect(item.locator('.jp-PachlsLabelingSession-commit')).toHaveText(
    'Commit labels (1 pending)'
  );
  await shot(page, 'labeling.png', testInfo);

  // Commit: one label file added, a required message, the new commit id.
  await commitButton.click();
  const dialog = page.locator('.jp-PachlsLabelCommitDialog');
  await expect(dialog).toBeVisible();
  await expect(dialog.locator('.jp-PachlsChange[data-change="added"]')).toHaveCount(1);
  await expect(dialog.locator('.jp-PachlsChange-path')).toHaveText(/\.png\.json$/);
  await dialog.locator('.jp-PachlsCommitForm-submit').click();
  await expect(dialog.locator('.jp-PachlsFieldError')).toHaveText('A commit message is required.');
  await dialog.getByLabel('Message (required)').fill('Label round 1: one cat');
  await dialog.locator('.jp-PachlsCommitForm-submit').click();
  const id = dialog.locator('.jp-PachlsCommitForm-newId');
  await expect(id).toHaveText(/^[0-9a-f]{32}$/, { timeout: 60000 });
  const commitId = (await id.textContent()) as string;
  await shot(page, 'labeling-commit.png', testInfo);

  // The commit is in the history of labels@master, newest first.
  await dialog.getByRole('button', { name: 'Show in history' }).click();
  await expect(dialog).toHaveCount(0);
  const history = page.locator('.jp-PachlsHistory[data-repo="labels"]');
  await expect(history).toBeVisible();
  const first = history.locator('.jp-PachlsCommit').first();
  await expect(first).toHaveAttribute('data-commit', commitId);
  await expect(first.locator('.jp-PachlsCommit-message')).toHaveText('Label round 1: one cat');

  // Nothing left to commit.
  await expect(commitButton).toHaveText('Commit labels (0 pending)', { timeout: 30000 });

  // Who labeled it? The blame of that file names the commit and the label.
  const labelPath = (await page.evaluate(
    async (sid: string) => {
      const r = await fetch(`/pachls/api/labeling/sessions/${sid}`);
      return (await r.json()).labels_repo as string;
    },
    session as string
  )) as string;
  expect(labelPath).toBe('labels');
  await item.getByRole('button', { name: /^Who labeled a file of/ }).click();
  const ask = page.locator('.jp-Dialog').filter({ hasText: 'Who labeled which file' });
  const filePath = await page.evaluate(async (cid: string) => {
    const r = await fetch(`/pachls/api/repos/labels/diff?to=${cid}`);
    const diff = await r.json();
    // the label file (the commit also carries the labeling config under /.pachls/)
    const label = diff.changes.find((c: { path: string }) => !c.path.startsWith('/.pachls/'));
    return (label.path as string).replace(/\.json$/, '');
  }, commitId);
  // a picker of the labeled files, not a path to type
  await expect(ask.locator('datalist option')).toHaveCount(1);
  await expect(ask.locator('datalist option')).toHaveAttribute('value', filePath);
  await ask.locator('input').fill(filePath);
  await ask.getByRole('button', { name: /^(OK|Ok)$/ }).click();
  const blame = page.locator('.jp-PachlsBlame');
  await expect(blame.locator(`.jp-PachlsBlame-entry[data-commit="${commitId}"]`)).toBeVisible();
  await expect(blame.locator('.jp-PachlsBlame-labels').first()).toHaveText('cat');
  await shot(page, 'labeling-blame.png', testInfo);
  await page.locator('.jp-PachlsBlameDialog').getByRole('button', { name: 'Close' }).click();
  await expect(page.locator('.jp-PachlsBlameDialog')).toHaveCount(0);

  // The same question from the file browser, on the file in another mount of the data (images@master
  // as "images_any", not the session's own data mount).
  const mounted = await api(page, 'POST', 'mounts', { repo: 'images', branch: 'master', name: 'images_any' });
  expect(mounted.status, JSON.stringify(mounted.body)).toBe(201);
  const where = await page.evaluate(async () => {
    const m = await (await fetch('/pachls/api/mounts')).json();
    const root = JSON.parse(document.getElementById('jupyter-config-data')!.textContent!).serverRoot;
    return { mount: 'images_any', dir: (m.mount_dir as string).slice(root.length).replace(/^\/+/, '') };
  });
  const folder = `${where.dir}/${where.mount}${filePath.slice(0, filePath.lastIndexOf('/'))}`;
  await page.evaluate(
    (p: string) => (window as any).jupyterapp.commands.execute('filebrowser:go-to-path', { path: p }),
    `/${folder}`
  );
  await expect(page.locator('.jp-FileBrowser .jp-BreadCrumbs')).toContainText(where.mount);
  const name = filePath.slice(filePath.lastIndexOf('/') + 1);
  await page
    .locator('.jp-DirListing-item', { has: page.locator('.jp-DirListing-itemText', { hasText: name }) })
    .click({ button: 'right' });
  await page.locator('.lm-Menu-item', { hasText: 'Who Labeled This?' }).click();
  const fromBrowser = page.locator('.jp-PachlsBlameDialog');
  await expect(fromBrowser.locator(`.jp-PachlsBlame-entry[data-commit="${commitId}"]`)).toBeVisible();
  await fromBrowser.getByRole('button', { name: 'Close' }).click();

  // Label Studio's own theme follows JupyterLab's, both ways.
  await page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: 'Label: images@master' }).click();
  const lsRoot = page.frameLocator('.jp-PachlsLabelingContent iframe').locator('html');
  // and its own theme toggle reads what it shows, without a reload of its page
  const lsToggle = lsRoot.locator('button[class*="themeToggle--"]');
  await expect(lsToggle).toHaveText('Light');
  await page.theme.setDarkTheme();
  await expect(lsRoot).toHaveAttribute('data-color-scheme', 'dark');
  await expect(lsToggle).toHaveText('Dark');
  await shot(page, 'labeling-dark.png', testInfo);
  await page.theme.setLightTheme();
  await expect(lsRoot).toHaveAttribute('data-color-scheme', 'light');
  await expect(lsToggle).toHaveText('Light');

  // After a reload the labeling tab is restored and logs in again.
  // (not galata's ready check: it waits for the Launcher to be the active tab)
  await page.reload({ waitForIsReady: false });
  await page.locator('#jupyterlab-splash').waitFor({ state: 'detached' });
  const restored = page.locator(`.jp-PachlsLabelingContent[data-session="${session}"]`);
  await expect(restored).toHaveAttribute('data-phase', 'ready', { timeout: 60000 });
  await page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: 'Label: images@master' }).click();
  await expect(
    page.frameLocator('.jp-PachlsLabelingContent iframe').getByRole('button', { name: 'Label All Tasks' })
  ).toBeVisible({ timeout: 60000 });
});

test('labeling commands are in the palette', async ({ page }) => {
  await page.goto();
  await page.keyboard.press('Control+Shift+C');
  const palette = page.locator('#command-palette');
  await expect(palette).toBeVisible();
  await palette.locator('.lm-CommandPalette-input').fill('Label');
  for (const label of [
    'New Labeling Session…',
    'Open a Labeling Session…',
    'Commit Labels of a Labeling Session…'
  ]) {
    await expect(palette.locator('.lm-CommandPalette-itemLabel', { hasText: label })).toHaveCount(1);
  }
  await page.keyboard.press('Escape');
});
