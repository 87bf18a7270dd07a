import { describe, expect, it } from 'vitest';

import { syncLabelStudioToggle } from '../labeling/state';

/**
 * A stand-in for Label Studio 1.23's theme toggle (a browser cannot run in
 * these unit tests; Galata's labeling spec presses the real one): each press
 * cycles Auto, Light, Dark from what it shows, and shows the new value only
 * after a render, as React does after the click.
 */
function labelStudioPage(shown: string | null) {
  const SCHEMES = ['Auto', 'Light', 'Dark'];
  const presses: string[] = [];
  const label = { textContent: shown };
  const toggle = {
    querySelector: (selector: string) => (selector === '[class*="themeToggle__label"]' ? label : null),
    click: () => {
      const next = SCHEMES[(SCHEMES.indexOf(label.textContent as string) + 1) % SCHEMES.length];
      presses.push(next);
      queueMicrotask(() => (label.textContent = next));
    }
  };
  const page = {
    querySelector: (selector: string) =>
      shown !== null && selector === 'button[class*="themeToggle--"]' ? toggle : null
  } as unknown as Document;
  return { page, presses, label };
}

describe('syncLabelStudioToggle', () => {
  it('presses the toggle until it reads the scheme shown', async () => {
    const light = labelStudioPage('Light');
    await syncLabelStudioToggle(light.page, 'Dark');
    expect(light.presses).toEqual(['Dark']);
    expect(light.label.textContent).toBe('Dark');

    const dark = labelStudioPage('Dark');
    await syncLabelStudioToggle(dark.page, 'Light');
    // through Auto: the order is Label Studio's
    expect(dark.presses).toEqual(['Auto', 'Light']);
    expect(dark.label.textContent).toBe('Light');
  });

  it('ends on the last scheme asked when asked again before the toggle rendered', async () => {
    // two theme changes in a row: the second must not read the label the first is about to change
    const page = labelStudioPage('Light');
    await Promise.all([syncLabelStudioToggle(page.page, 'Dark'), syncLabelStudioToggle(page.page, 'Light')]);
    expect(page.label.textContent).toBe('Light');
    expect(page.presses).toEqual(['Dark', 'Auto', 'Light']);
  });

  it('leaves a toggle that reads the scheme, and a page without one, alone', async () => {
    const same = labelStudioPage('Dark');
    await syncLabelStudioToggle(same.page, 'Dark');
    expect(same.presses).toEqual([]);
    const none = labelStudioPage(null);
    await syncLabelStudioToggle(none.page, 'Dark');
    expect(none.presses).toEqual([]);
  });
});
