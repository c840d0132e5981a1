#!/usr/bin/env node
// More libuv threads let checkout and commit keep many small-file syscalls in flight at once.
process.env.UV_THREADPOOL_SIZE ??= '16';
// elton pins its AWS SDK and supports Node 20: the SDK's notice that its future releases will need Node 22 is not for our users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { execute } from '@oclif/core';
await execute({ dir: import.meta.url });
