// Root hooks: every test gets its own user cache, so what one test fetched never hides another's traffic.

import { tempDir } from '../helpers.js';

export const mochaHooks = {
  beforeAll(): void {
    process.env.ELTON_CACHE = tempDir('elton-cache-');
  },
  beforeEach(): void {
    process.env.ELTON_CACHE = tempDir('elton-cache-');
  },
};
