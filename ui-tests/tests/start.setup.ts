import { expect, test as setup } from '@playwright/test';

/**
 * Start the managed Label Studio as soon as the server is up: its start (a
 * database migration on a fresh data dir) then overlaps the panel's specs
 * instead of being waited for by the first labeling spec. Labeling specs
 * still wait for it themselves; a server without labeling answers 503 here.
 */
setup('start Label Studio in the background', async ({ request }) => {
  const started = await request.post('/pachls/api/labeling', { data: {} });
  expect([202, 503]).toContain(started.status());
});
