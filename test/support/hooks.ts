// Root hooks: every test gets its own user cache, so what one test fetched never hides another's traffic.

import { tempDir } from '../helpers.js';

// As bin/run.js: the AWS SDK's notice about its future Node requirement is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const mochaHooks = {
  beforeAll(): void {
    process.env.ELTON_CACHE = tempDir('elton-cache-');
  },
  beforeEach(): void {
    process.env.ELTON_CACHE = tempDir('elton-cache-');
  },
};
