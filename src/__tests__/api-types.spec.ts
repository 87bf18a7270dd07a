import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';
import { describe, expect, it } from 'vitest';

const spec = new URL('../../jupyterlab_pachls/openapi.yaml', import.meta.url);
const generated = new URL('../api/types.ts', import.meta.url);

describe('src/api/types.ts', () => {
  it('is what openapi-typescript makes of openapi.yaml', async () => {
    // The same text as the `generate:api` script writes (the CLI's header + defaults).
    const expected = COMMENT_HEADER + astToString(await openapiTS(spec, { silent: true }));
    const current = readFileSync(fileURLToPath(generated), 'utf8');
    expect(current === expected, 'src/api/types.ts is stale: run jlpm generate:api').toBe(true);
  }, 60_000);
});
