import { expect } from '@jupyterlab/galata';

import { test } from './helpers';

test.use({ autoGoto: false });

test('the Pachyderm panel lists the demo repo images with branch master', async ({
  page
}) => {
  await page.goto();

  // Open the panel from its tab in the left sidebar, as a user would.
  await page.sidebar.openTab('jp-pachls-sidebar');

  const panel = page.locator('#jp-pachls-sidebar');
  await expect(panel).toBeVisible();
  await expect(
    panel.locator('.jp-PachlsConnection[data-kind="local"]')
  ).toContainText('Embedded store');

  const images = panel.locator('.jp-PachlsRepo[data-repo="images"]');
  await expect(images).toBeVisible();
  const master = images.locator('.jp-PachlsBranch[data-branch="master"]');
  await expect(master).toBeVisible();
  await expect(master.locator('.jp-PachlsBranch-name')).toHaveText('master');
  // The head commit is shown as a short hex id.
  await expect(master.locator('.jp-PachlsBranch-head')).toHaveText(
    /^[0-9a-f]{8}$/
  );

  await expect(
    panel.locator('.jp-PachlsRepo[data-repo="labels"]')
  ).toBeVisible();
  await expect(panel.locator('.jp-PachlsError')).toHaveCount(0);
});
