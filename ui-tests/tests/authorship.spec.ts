import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import { FrameLocator, Locator, Page } from '@playwright/test';

import { api, commitInDialog, LS_START, test } from './helpers';

/**
 * Two people on one Jupyter server (the test identity provider of
 * jupyter_server_test_config.py: `alice-token`, `bob-token`) label in the
 * embedded Label Studio, each as their own account; commits, blame and the
 * label changes of the history name each of them, and when Bob changes Alice's
 * label they name her as its annotator and him as the one who changed it.
 * Then the session's resync
 * shows what it would replace (the annotation never committed called out)
 * before anything changes, and deleting the session says what happens to the
 * Label Studio project, stops at labels not committed, and leaves committed
 * labels where they are.
 */
test.use({ autoGoto: false, viewport: { width: 1440, height: 900 } });

const LABELS = 'labels@people';

/** Open JupyterLab as the person a token names (the login cookie then keeps them). */
async function signIn(page: IJupyterLabPageFixture, token: string): Promise<Locator> {
  // Playwright's own navigation: galata's goto waits for a Launcher a restored layout may not show
  const browserPage = (page as unknown as { page: Page }).page;
  await browserPage.goto(`/lab?token=${token}`);
  await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 60000 });
  await page.waitForFunction(() => typeof (window as any).jupyterapp === 'object');
  await page.evaluate(async () => {
    const app = (window as any).jupyterapp;
    await app.started;
    await app.restored;
    // activate, not toggle: the restored layout may already show the panel
    await app.commands.execute('pachls:open-panel');
  });
  const panel = page.locator('#jp-pachls-sidebar');
  await expect(panel).toBeVisible();
  return panel;
}

async function openTab(page: IJupyterLabPageFixture, session: string): Promise<Locator> {
  await page.evaluate(
    async (id: string) => {
      await (window as any).jupyterapp.commands.execute('pachls:open-labeling', { sessionId: id });
    },
    session
  );
  const tab = page.locator('.jp-PachlsLabelingWidget').filter({
    has: page.locator(`.jp-PachlsLabelingContent[data-session="${session}"]`)
  });
  // Label Studio runs already (the test waited for it before creating the session): a tab that does not
  // get ready within a minute is a failure, not worth LS_START (5 min) of waiting
  await expect(tab.locator('.jp-PachlsLabelingContent')).toHaveAttribute('data-phase', 'ready', {
    timeout: 60000
  });
  return tab;
}

function labelStudio(page: IJupyterLabPageFixture): FrameLocator {
  return page.frameLocator('.jp-PachlsLabelingWidget:visible iframe');
}

/** Label the next unlabeled task in Label Studio's own UI with `choice`; wait until it is pending. */
async function labelNext(page: IJupyterLabPageFixture, tab: Locator, choice: string, pending: number) {
  const frame = labelStudio(page);
  await frame.getByRole('button', { name: 'Label All Tasks' }).click({ timeout: 60000 });
  const radio = frame.getByRole('radio', { name: new RegExp(choice) }).first();
  await expect(radio).toBeVisible({ timeout: 30000 });
  await radio.check();
  await frame.getByRole('button', { name: 'Submit current annotation' }).click();
  await expect(tab.locator('.jp-PachlsCommitLabels')).toHaveText(`Commit labels (${pending} pending)`, {
    timeout: 30000
  });
  // back to the task list for the next round
  await page.evaluate(() => {
    const frame = document.querySelector('.jp-PachlsLabelingWidget:not(.lm-mod-hidden) iframe') as HTMLIFrameElement;
    frame.src = frame.src;
  });
}

async function commitLabels(page: IJupyterLabPageFixture, tab: Locator, message: string): Promise<string> {
  await tab.locator('.jp-PachlsCommitLabels').click();
  return commitInDialog(page.locator('.jp-PachlsLabelCommitDialog'), message, { timeout: 60000 });
}

/** The data file a label commit labeled. */
async function labeledFile(page: IJupyterLabPageFixture, commit: string): Promise<string> {
  const info = await api(page, 'GET', `repos/labels/commits/${commit}`);
  const diff = await api(
    page,
    'GET',
    `labels/diff?repo=labels&to=${commit}${info.body.parent ? `&from=${info.body.parent}` : ''}`
  );
  expect(diff.body.changes).toHaveLength(1);
  return diff.body.changes[0].path as string;
}

async function blameRow(page: IJupyterLabPageFixture, item: Locator, file: string, commit: string) {
  await item.getByRole('button', { name: /^Who labeled a file of/ }).click();
  // a picker of the labeled files (a path may still be typed)
  const ask = page.locator('.jp-Dialog').filter({ hasText: 'Who labeled which file' });
  await ask.locator('input').fill(file);
  await ask.getByRole('button', { name: /^(OK|Ok)$/ }).click();
  const row = page.locator(`.jp-PachlsBlame-entry[data-commit="${commit}"]`);
  await expect(row).toBeVisible();
  const cells = {
    author: (await row.locator('.jp-PachlsBlame-author').textContent()) ?? '',
    labeledBy: (await row.locator('.jp-PachlsBlame-annotators').textContent()) ?? '',
    changedBy: (await row.locator('.jp-PachlsBlame-changedBy').textContent()) ?? '',
    labels: (await row.locator('.jp-PachlsBlame-labels').textContent()) ?? ''
  };
  await page.locator('.jp-PachlsBlameDialog').getByRole('button', { name: 'Close' }).click();
  await expect(page.locator('.jp-PachlsBlameDialog')).toHaveCount(0);
  return cells;
}

test('two people label as themselves; blame and label changes name each; resync previews; delete says what happens', async ({
  page,
  request
}) => {
  test.setTimeout(LS_START + 8 * 60 * 1000);
  const started = await request.post('/pachls/api/labeling', { data: {} });
  test.skip(started.status() === 503, `labeling is not available on this server: ${await started.text()}`);
  expect(started.status()).toBe(202);

  // --- Alice -------------------------------------------------------------------------------
  let panel = await signIn(page, 'alice-token');
  const who = panel.locator('.jp-PachlsIdentity');
  await expect(who).toHaveAttribute('data-source', 'jupyter');
  await expect(who.locator('.jp-PachlsIdentity-author')).toHaveText('Alice Example <alice@localhost>');

  // Her login names her; the email is hers to change, and commits will carry it.
  await who.getByRole('button', { name: 'Change who commits are recorded as' }).click();
  const identityDialog = page.locator('.jp-PachlsIdentityDialog');
  await expect(identityDialog.getByLabel('Name')).toHaveValue('Alice Example');
  const email = identityDialog.getByLabel('Email');
  const identityPreview = identityDialog.locator('.jp-PachlsIdentityForm-preview');
  await email.fill('alice.example.org');
  await expect(identityPreview).toHaveText('Commits will read: Alice Example <alice.example.org>');
  await identityDialog.getByRole('button', { name: 'Save' }).click();
  await expect(identityDialog.locator('.jp-PachlsFieldError')).toContainText('one @');
  await email.fill('alice@example.org');
  await expect(identityPreview).toHaveText('Commits will read: Alice Example <alice@example.org>');
  await identityDialog.getByRole('button', { name: 'Save' }).click();
  await expect(identityDialog).toHaveCount(0);
  await expect(who.locator('.jp-PachlsIdentity-author')).toHaveText('Alice Example <alice@example.org>');

  // Label Studio's first start on a fresh data dir migrates its database: wait for it.
  await expect
    .poll(async () => (await api(page, 'GET', 'labeling')).body.label_studio?.state, {
      timeout: LS_START,
      intervals: [2000]
    })
    .toBe('running');
  const created = await api(page, 'POST', 'labeling/sessions', {
    data: 'images@master',
    labels: LABELS,
    glob: '/cats/*',
    template: 'image-classification',
    classes: ['cat', 'dog']
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const session = created.body.id as string;
  let tab = await openTab(page, session);
  await labelNext(page, tab, 'cat', 1);
  const aliceCommit = await commitLabels(page, tab, 'Alice: round 1');
  // The layout without her tab is saved before Bob's page loads. The saved state keeps the closed tab's
  // restore entry (galata's workspace mock merges what is saved), so his page re-creates that tab while
  // its restored layout leaves it out: opening the session must still show it.
  const layoutSaved = page.waitForRequest(
    r => r.method() === 'PUT' && /\/lab\/api\/workspaces\//.test(r.url()) && !r.postData()?.includes('"pachls-labeling:')
  );
  await page.evaluate(async () => {
    await (window as any).jupyterapp.commands.execute('application:close-all');
  });
  await layoutSaved;

  // --- Bob, in the same browser ---------------------------------------------------------------
  panel = await signIn(page, 'bob-token');
  await expect(panel.locator('.jp-PachlsIdentity-author')).toHaveText('Bob Example <bob@localhost>');
  tab = await openTab(page, session);
  // Label Studio shows Bob, not the account Alice left logged in
  const whoInLabelStudio = await page.evaluate(async () => {
    const r = await fetch('/pachls/labelstudio/api/current-user/whoami');
    return (await r.json()).email as string;
  });
  expect(whoInLabelStudio).toMatch(/bob/);
  await expect(tab.locator('.jp-PachlsCommitLabels')).toHaveText('Commit labels (0 pending)', {
    timeout: 30000
  });
  await labelNext(page, tab, 'dog', 1);
  const bobCommit = await commitLabels(page, tab, 'Bob: round 2');

  // --- Commits, blame and label changes name each ------------------------------------------
  const commits = await api(page, 'GET', 'repos/labels/branches/people/commits');
  const authors = Object.fromEntries(
    (commits.body.commits as Array<{ id: string; author: string }>).map(c => [c.id, c.author])
  );
  expect(authors[aliceCommit]).toBe('Alice Example <alice@example.org>');
  expect(authors[bobCommit]).toBe('Bob Example <bob@localhost>');

  const aliceFile = await labeledFile(page, aliceCommit);
  const bobFile = await labeledFile(page, bobCommit);
  expect(aliceFile).not.toBe(bobFile);
  const item = panel.locator(`.jp-PachlsLabelingSession[data-session="${session}"]`);
  await panel.getByRole('button', { name: 'Refresh labeling sessions' }).click();
  await expect(item).toBeVisible();

  const aliceRow = await blameRow(page, item, aliceFile, aliceCommit);
  expect(aliceRow.author).toBe('Alice Example <alice@example.org>');
  expect(aliceRow.labeledBy).toMatch(/alice/);
  expect(aliceRow.labeledBy).not.toMatch(/bob|admin/);
  expect(aliceRow.changedBy).toMatch(/alice/);
  expect(aliceRow.labels).toBe('cat');

  const bobRow = await blameRow(page, item, bobFile, bobCommit);
  expect(bobRow.author).toBe('Bob Example <bob@localhost>');
  expect(bobRow.labeledBy).toMatch(/bob/);
  expect(bobRow.labeledBy).not.toMatch(/alice|admin/);
  expect(bobRow.changedBy).toMatch(/bob/);
  expect(bobRow.labels).toBe('dog');

  // Bob changes Alice's label: blame keeps her as the annotator and names him as the one who changed it.
  const frame = labelStudio(page);
  await frame.getByText(aliceFile, { exact: true }).first().click({ timeout: 60000 });
  const dog = frame.getByRole('radio', { name: /dog/ }).first();
  await expect(dog).toBeVisible({ timeout: 30000 });
  await dog.check();
  // the editor of an existing annotation: its submit button reads "Update"
  await frame.locator('button').filter({ hasText: /^Update$/ }).click({ timeout: 30000 });
  await expect(tab.locator('.jp-PachlsCommitLabels')).toHaveText('Commit labels (1 pending)', {
    timeout: 30000
  });
  const fixCommit = await commitLabels(page, tab, "Bob: Alice's cat is a dog");
  expect(await labeledFile(page, fixCommit)).toBe(aliceFile);
  const fixRow = await blameRow(page, item, aliceFile, fixCommit);
  expect(fixRow.author).toBe('Bob Example <bob@localhost>');
  expect(fixRow.labeledBy).toMatch(/alice/);
  expect(fixRow.labeledBy).not.toMatch(/bob/);
  expect(fixRow.changedBy).toMatch(/bob/);
  expect(fixRow.changedBy).not.toMatch(/alice/);
  expect(fixRow.labels).toBe('dog');
  await page.evaluate(() => {
    const frame = document.querySelector('.jp-PachlsLabelingWidget:not(.lm-mod-hidden) iframe') as HTMLIFrameElement;
    frame.src = frame.src;
  });

  await page.evaluate(async () => {
    await (window as any).jupyterapp.commands.execute('pachls:show-history', { repo: 'labels', branch: 'people' });
  });
  const history = page.locator('.jp-PachlsHistory[data-repo="labels"][data-branch="people"]');
  const bobCommitRow = history.locator(`.jp-PachlsCommit[data-commit="${bobCommit}"]`);
  await bobCommitRow.getByRole('button', { name: /^Label changes of commit/ }).click();
  const change = bobCommitRow.locator(`.jp-PachlsLabelChange[data-path="${bobFile}"]`);
  await expect(change).toHaveAttribute('data-change', 'added');
  await expect(change.locator('.jp-PachlsLabelChange-labels')).toHaveText('∅ → dog');
  await expect(change.locator('.jp-PachlsLabelChange-annotators')).toContainText('bob');
  await expect(change.locator('.jp-PachlsLabelChange-changedBy')).toContainText('bob');
  const fixCommitRow = history.locator(`.jp-PachlsCommit[data-commit="${fixCommit}"]`);
  await fixCommitRow.getByRole('button', { name: /^Label changes of commit/ }).click();
  const fix = fixCommitRow.locator(`.jp-PachlsLabelChange[data-path="${aliceFile}"]`);
  await expect(fix).toHaveAttribute('data-change', 'modified');
  await expect(fix.locator('.jp-PachlsLabelChange-labels')).toHaveText('cat → dog');
  await expect(fix.locator('.jp-PachlsLabelChange-annotators')).toContainText('alice');
  await expect(fix.locator('.jp-PachlsLabelChange-changedBy')).toContainText('bob');
  await expect(fix.locator('.jp-PachlsLabelChange-changedBy')).not.toContainText('alice');

  // --- Resync: a preview first; the annotation never committed is called out ---------------
  tab = await openTab(page, session);
  await labelNext(page, tab, 'cat', 1);
  await item.getByRole('button', { name: /^Resync the labels of/ }).click();
  const resync = page.locator('.jp-PachlsResyncDialog');
  const preview = resync.locator('.jp-PachlsResyncPreview');
  await expect(preview).toBeVisible({ timeout: 60000 });
  await expect(preview.locator('.jp-PachlsResyncPreview-summary')).toContainText('0 files overwritten, 1 removed');
  const lost = preview.locator('.jp-PachlsResyncPreview-lost');
  await expect(lost).toHaveCount(1);
  const uncommittedFile = (await lost.getAttribute('data-path')) as string;
  expect([aliceFile, bobFile]).not.toContain(uncommittedFile);
  await expect(
    preview.locator(`.jp-PachlsChange[data-path="${uncommittedFile}"][data-uncommitted="true"]`)
  ).toHaveAttribute('data-change', 'deleted');
  // a mistyped ref is refused before anything changes
  await resync.locator('.jp-PachlsResyncForm-ref').fill('no-such-branch');
  await resync.getByRole('button', { name: 'Preview', exact: true }).click();
  await expect(resync.locator('.jp-PachlsError')).toContainText('no branch or commit no-such-branch');
  await expect(resync.locator('.jp-PachlsResyncForm-confirm')).toBeDisabled();
  await resync.locator('.jp-PachlsDialog-buttons').getByRole('button', { name: 'Cancel' }).click();
  await expect(resync).toHaveCount(0);
  await expect(tab.locator('.jp-PachlsCommitLabels')).toHaveText('Commit labels (1 pending)', {
    timeout: 30000
  });

  // Confirmed, the resync does what the preview showed: nothing pending, authors kept.
  // this time from the tab's toolbar
  await tab.locator('.jp-Toolbar').getByText('Resync…').click();
  await expect(preview).toBeVisible({ timeout: 60000 });
  const confirm = resync.locator('.jp-PachlsResyncForm-confirm');
  await expect(confirm).toHaveText('Resync (overwrite 0, remove 1)');
  await confirm.click();
  await expect(resync.locator('.jp-PachlsResyncForm[data-phase="done"]')).toContainText('1 removed', {
    timeout: 60000
  });
  await resync.getByRole('button', { name: 'Close' }).click();
  await expect(tab.locator('.jp-PachlsCommitLabels')).toHaveText('Commit labels (0 pending)', {
    timeout: 30000
  });

  // --- Delete: stops at labels not committed; the user can go on -------------------------------
  await labelNext(page, tab, 'dog', 1);
  // from the tab's toolbar: the tab closes with the session
  await tab.locator('.jp-Toolbar').getByText('Delete session…').click();
  const remove = page.locator('.jp-PachlsDeleteSessionDialog');
  await expect(remove.locator('.jp-PachlsDeleteSession-what')).toContainText(
    'Labels already committed to labels@people stay as they are'
  );
  await remove.getByLabel('Delete the project and its annotations from Label Studio').check();
  await expect(remove.locator('.jp-PachlsDeleteSession-what')).toContainText('is deleted with its tasks');
  await remove.getByRole('button', { name: 'Delete session' }).click();
  await expect(remove.locator('.jp-PachlsDeleteSession-pending')).toContainText(
    '1 label change of this session is not committed'
  );
  expect((await api(page, 'GET', `labeling/sessions/${session}`)).status).toBe(200);
  await remove.getByRole('button', { name: 'Delete anyway' }).click();
  await expect(remove).toHaveCount(0);
  await expect(item).toHaveCount(0);
  await expect(page.locator(`.jp-PachlsLabelingContent[data-session="${session}"]`)).toHaveCount(0);
  expect((await api(page, 'GET', `labeling/sessions/${session}`)).status).toBe(404);

  // Committed labels stay, with who made them.
  const kept = await api(page, 'GET', `labels/blame?repo=labels&ref=people&path=${encodeURIComponent(bobFile)}`);
  expect(kept.body.entries.map((e: { commit: string }) => e.commit)).toEqual([bobCommit]);
});
