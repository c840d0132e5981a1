#!/usr/bin/env node
// More libuv threads let checkout and commit keep many small-file syscalls in flight at once.
process.env.UV_THREADPOOL_SIZE ??= '16';
import { execute } from '@oclif/core';
await execute({ dir: import.meta.url });
