/**
 * Galata configuration: Debian's Chromium (no browser download), JupyterLab
 * started on 127.0.0.1 by jupyter_server_test_config.py with a temporary
 * store holding the demo data.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const PORT = Number(process.env.PACHLS_UI_PORT || 18888);
const CHROMIUM = process.env.PACHLS_CHROMIUM || '/usr/bin/chromium';

module.exports = {
  ...baseConfig,
  workers: 1,
  retries: 0,
  timeout: 90000,
  // a run on another port (several at once on one checkout) keeps its results apart: each run
  // empties its output directory first
  outputDir: PORT === 18888 ? 'test-results' : `test-results/port-${PORT}`,
  reporter: [
    ['list'],
    ['html', { open: 'never', outputFolder: PORT === 18888 ? 'playwright-report' : `playwright-report/port-${PORT}` }]
  ],
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${PORT}`,
    video: 'off',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--headless=new',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run'
      ]
    }
  },
  // Label Studio is started first (start.setup.ts) and the specs that need it run last, so its start
  // overlaps the panel's specs (flow.spec labels too); with one worker the projects run in this order.
  projects: [
    { name: 'start', testMatch: /start\.setup\.ts$/ },
    {
      name: 'panel',
      testIgnore: [/start\.setup\.ts$/, /labeling\.spec\.ts$/, /authorship\.spec\.ts$/, /flow\.spec\.ts$/],
      dependencies: ['start']
    },
    {
      name: 'labeling',
      testMatch: [/flow\.spec\.ts$/, /labeling\.spec\.ts$/, /authorship\.spec\.ts$/],
      dependencies: ['start']
    }
  ],
  webServer: {
    command: 'jlpm start',
    url: `http://127.0.0.1:${PORT}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: false,
    // SIGTERM lets the server exit cleanly and remove its temporary store.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 10000 },
    env: { ...process.env, PACHLS_UI_PORT: String(PORT) }
  }
};
