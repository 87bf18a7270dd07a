import { defineConfig } from 'vitest/config';

// Unit tests of the frontend logic (formatting, state, the model, the request
// layer). Node environment: nothing here needs a DOM.
export default defineConfig({
  test: {
    include: ['src/**/__tests__/**/*.spec.ts'],
    environment: 'node',
    server: {
      deps: {
        inline: [/@jupyterlab\//, /@lumino\//]
      }
    }
  }
});
