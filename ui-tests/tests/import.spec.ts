import { expect, test } from '@jupyterlab/galata';

import { api, openPanel } from './helpers';

test.use({ autoGoto: false });

/** The paths below `path` at `ref` of repo images. */
async function paths(page: any, ref: string, path: string): Promise<string[]> {
  const answer = await api(
    page,
    'GET',
    `repos/images/commits/${ref}/files?path=${encodeURIComponent(path)}`
  );
  expect(answer.status).toBe(200);
  return answer.body.items.map((f: { path: string }) => f.path);
}

test('Import folder… on a branch lands a folder under the Jupyter root as one commit', async ({
  page
}) => {
  await page.goto();
  await page.contents.createDirectory('import-src');
  await page.contents.createDirectory('import-src/sub');
  await page.contents.uploadContent('alpha', 'text', 'import-src/a.txt');
  await page.contents.uploadContent('beta', 'text', 'import-src/sub/b.txt');
  const before = (await api(page, 'GET', 'repos/images/branches/master')).body.head.id;

  const panel = await openPanel(page);
  const master = panel.locator('.jp-PachlsRepo[data-repo="images"] .jp-PachlsBranch[data-branch="master"]');
  await master.locator('.jp-PachlsBranch-import').click();
  const dialog = page.locator('.jp-PachlsImportDialog');
  await expect(dialog).toContainText('Import into images@master');
  await dialog.locator('.jp-PachlsImport-source').fill('import-src');
  await dialog.locator('.jp-PachlsImport-dest').fill('/imported');
  await dialog.locator('.jp-PachlsImport-message').fill('a folder from the Jupyter root');
  await dialog.locator('.jp-PachlsImport-start').click();
  await expect(dialog.locator('.jp-PachlsImport-done')).toContainText('Committed 2 files', {
    timeout: 30000
  });
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toHaveCount(0);

  const head = (await api(page, 'GET', 'repos/images/branches/master')).body.head;
  expect(head.parent).toBe(before);
  expect(head.message).toBe('a folder from the Jupyter root');
  expect(await paths(page, head.id, '/imported/import-src')).toEqual([
    '/imported/import-src/a.txt',
    '/imported/import-src/sub/'
  ]);
  // the panel shows the new head
  await expect(master.locator('.jp-PachlsBranch-head')).toHaveText(head.id.slice(0, 8));

  // a folder outside the root is refused in the dialog; nothing lands
  await master.locator('.jp-PachlsBranch-import').click();
  await dialog.locator('.jp-PachlsImport-source').fill('../etc');
  await dialog.locator('.jp-PachlsImport-start').click();
  await expect(dialog.locator('.jp-PachlsError')).toContainText('inside the Jupyter root');
  await dialog.locator('.jp-PachlsForm-buttons').getByText('Cancel', { exact: true }).click();
  await expect(dialog).toHaveCount(0);
  expect((await api(page, 'GET', 'repos/images/branches/master')).body.head.id).toBe(head.id);
});

test('files dropped on a branch are uploaded into one commit', async ({ page }) => {
  await page.goto();
  const panel = await openPanel(page);
  const row = panel.locator('.jp-PachlsRepo[data-repo="images"] .jp-PachlsBranch[data-branch="master"]');
  await expect(row).toBeVisible();
  const before = (await api(page, 'GET', 'repos/images/branches/master')).body.head.id;

  // what a desktop drag hands the page: a DataTransfer holding files
  await row.evaluate(element => {
    const data = new DataTransfer();
    data.items.add(new File(['first dropped file'], 'dropped-1.txt', { type: 'text/plain' }));
    data.items.add(new File([new Uint8Array(300_000)], 'dropped-2.bin'));
    element.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
    element.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  });
  const dialog = page.locator('.jp-PachlsImportDialog');
  await expect(dialog.locator('.jp-PachlsImport-files')).toContainText('2 files');
  await dialog.locator('.jp-PachlsImport-dest').fill('/drops');
  await dialog.locator('.jp-PachlsImport-start').click();
  await expect(dialog.locator('.jp-PachlsImport-done')).toContainText('Committed 2 files', {
    timeout: 30000
  });
  await dialog.getByRole('button', { name: 'Close' }).click();

  const head = (await api(page, 'GET', 'repos/images/branches/master')).body.head;
  expect(head.parent).toBe(before);
  expect(await paths(page, head.id, '/drops')).toEqual(['/drops/dropped-1.txt', '/drops/dropped-2.bin']);
  const file = await page.evaluate(
    async id => (await fetch(`/pachls/api/repos/images/commits/${id}/file?path=/drops/dropped-1.txt`)).text(),
    head.id
  );
  expect(file).toBe('first dropped file');
});
