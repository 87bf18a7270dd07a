import * as path from 'path';
import { expect, IJupyterLabPageFixture, test as galataTest } from '@jupyterlab/galata';
import { Locator, Page } from '@playwright/test';

/**
 * How long JupyterLab may take to start in a test's fresh page. Galata waits
 * 15 s at most (its waitForCondition default), which a loaded machine
 * (Chromium, JupyterLab and Label Studio on two cores) overruns.
 */
export const APP_START = 120 * 1000;

/**
 * Galata's `test` with a patient start: `page.goto()` and `page.reload()`
 * wait up to APP_START for JupyterLab's plugins and its Launcher.
 */
export const test = galataTest.extend({
  waitForApplication: async ({}, use) => {
    await use(async (page: Page, helpers: IJupyterLabPageFixture) => {
      await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: APP_START });
      await expect.poll(() => helpers.activity.isTabActive('Launcher'), { timeout: APP_START }).toBe(true);
      if (!(await helpers.isInSimpleMode())) {
        await helpers.activity.activateTab('Launcher');
      }
    });
  },
  page: async ({ page }, use) => {
    // an own property of galata's page object (its proxy forwards sets to it)
    (page as unknown as { waitForAppStarted: () => Promise<void> }).waitForAppStarted = async () => {
      // the app and galata's in-page helpers (what galata's goto checks next), then the app's start
      await page.waitForFunction(
        () =>
          typeof (window as any).jupyterapp === 'object' &&
          typeof (window as any).galata === 'object' &&
          typeof (window as any).galata.app === 'object',
        undefined,
        { timeout: APP_START, polling: 100 }
      );
      await page.evaluate(() => (window as any).jupyterapp.started);
    };
    await use(page);
  }
});

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
