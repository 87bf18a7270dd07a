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
  reporter: [['list'], ['html', { open: 'never' }]],
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
