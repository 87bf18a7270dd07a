import * as fs from 'fs';
import { expect, test } from '@jupyterlab/galata';

import { api } from './helpers';

test.use({ autoGoto: false });

/** The entry names of an uncompressed tar (ustar headers; the demo's names are short). */
function tarNames(data: Buffer): string[] {
  const names: string[] = [];
  let at = 0;
  while (at + 512 <= data.length && data[at] !== 0) {
    const name = data.subarray(at, at + 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(data.subarray(at + 124, at + 136).toString('ascii').replace(/\0.*$/s, '') || '0', 8);
    names.push(name);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

test("a commit's download links stream its files as tar and zip", async ({ page }) => {
  await page.goto();
  const head = (await api(page, 'GET', 'repos/images/branches/master')).body.head.id as string;
  await page.evaluate(async () => {
    await window.jupyterapp.commands.execute('pachls:show-history', { repo: 'images', branch: 'master' });
  });
  const row = page.locator(`.jp-PachlsHistory[data-repo="images"] .jp-PachlsCommit[data-commit="${head}"]`);
  await expect(row).toBeVisible();

  const [tar] = await Promise.all([
    page.waitForEvent('download'),
    row.locator('.jp-PachlsDownload-link[data-format="tar"]').click()
  ]);
  const top = `images-${head.slice(0, 12)}`;
  expect(tar.suggestedFilename()).toBe(`${top}.tar`);
  const names = tarNames(fs.readFileSync((await tar.path()) as string));
  expect(names).toContain(`${top}/cats/001.png`);
  expect(names.filter(n => n.endsWith('.png'))).toHaveLength(12);

  const [zip] = await Promise.all([
    page.waitForEvent('download'),
    row.locator('.jp-PachlsDownload-link[data-format="zip"]').click()
  ]);
  expect(zip.suggestedFilename()).toBe(`${top}.zip`);
  const bytes = fs.readFileSync((await zip.path()) as string);
  expect(bytes.subarray(0, 2).toString('latin1')).toBe('PK');
  expect(bytes.includes(Buffer.from(`${top}/dogs/006.png`))).toBe(true);
});
