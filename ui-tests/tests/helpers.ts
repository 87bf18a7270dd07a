import * as path from 'path';
import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

/** Where the README's screenshots live. */
const DOCS = path.resolve(__dirname, '..', '..', 'docs');

/**
 * How long Label Studio's first start may take: on a fresh data dir it migrates
 * its database (a minute or two on a busy machine).
 */
export const LS_START = 5 * 60 * 1000;

/** A screenshot in the test output; with PACHLS_DOCS_SCREENSHOTS=1 in docs/ as well. */
export async function shot(
  target: IJupyterLabPageFixture | Locator,
  name: string,
  info: { outputPath: (name: string) => string }
): Promise<void> {
  await target.screenshot({ path: info.outputPath(name) });
  if (process.env.PACHLS_DOCS_SCREENSHOTS === '1') {
    await target.screenshot({ path: path.join(DOCS, name) });
  }
}

/** The Pachyderm sidebar, opened from its tab unless it shows already. */
export async function openPanel(page: IJupyterLabPageFixture): Promise<Locator> {
  const panel = page.locator('#jp-pachls-sidebar');
  if (!(await panel.isVisible())) {
    await page.sidebar.openTab('jp-pachls-sidebar');
  }
  await expect(panel).toBeVisible();
  return panel;
}

/** A request to the pachls REST API from the page (its login and cookies). */
export async function api(
  page: IJupyterLabPageFixture,
  method: string,
  route: string,
  body?: unknown
): Promise<{ status: number; body: any }> {
  return page.evaluate(
    async ([m, p, b]) => {
      const r = await fetch(`/pachls/api/${p}`, {
        method: m as string,
        headers: b === undefined ? {} : { 'Content-Type': 'application/json' },
        body: b === undefined ? undefined : JSON.stringify(b)
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    },
    [method, route, body] as [string, string, unknown]
  );
}

/** Commit with `message` in an open commit dialog; the new commit id, once the dialog is closed. */
export async function commitInDialog(
  dialog: Locator,
  message: string,
  options: { timeout?: number } = {}
): Promise<string> {
  await dialog.getByLabel('Message (required)').fill(message);
  await dialog.locator('.jp-PachlsCommitForm-submit').click();
  const id = dialog.locator('.jp-PachlsCommitForm-newId');
  await expect(id).toHaveText(/^[0-9a-f]{32}$/, options);
  const commitId = (await id.textContent()) as string;
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toHaveCount(0);
  return commitId;
}
