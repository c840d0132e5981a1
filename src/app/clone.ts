// Use-case: make a new workspace from a remote and check a version out into it.

import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { exists } from '../errors.js';
import { parseRef } from '../ref.js';
import type { S3Settings } from '../remote/s3-client.js';
import { normalizeRemote, openStore } from '../store/open.js';
import { META_DIR, Workspace, WORKSPACE_FORMAT } from '../workspace/workspace.js';
import type { Store } from '../store/store.js';
import { checkoutVersion, type CheckoutResult } from './checkout.js';
import { reporterOf, resolveVersion, type Deps } from './context.js';
import { usage } from '../errors.js';

export interface CloneOptions { remote: string; ref: string; dir: string; paths?: string[]; s3?: S3Settings }
export interface CloneResult extends CheckoutResult { root: string; remote: string }

export async function clone(opts: CloneOptions, deps: Deps): Promise<CloneResult> {
  const root = resolve(deps.cwd, opts.dir);
  const entries = await fsp.readdir(root).catch(() => [] as string[]);
  if (entries.length) throw exists(`${root} exists and is not empty`, 'clone into a new or empty directory');
  const remote = normalizeRemote(opts.remote, deps.cwd, opts.s3);
  const created = await fsp.mkdir(root, { recursive: true });
  let store: Store | undefined;
  try {
    store = await openStore(remote, { cacheDir: join(root, META_DIR, 'cache') });
    const ref = parseRef(opts.ref);
    let tree = ref.tree;
    if (!tree) {
      const trees = await store.listTrees();
      if (trees.length !== 1) throw usage(`"${opts.ref}" names no tree, and the remote holds ${trees.length} trees`, `write NAME@V; the remote holds: ${trees.join(', ') || 'nothing'}`);
      tree = trees[0];
    }
    const record = await resolveVersion(store, ref, tree, reporterOf(deps));
    const ws = await Workspace.create(root, { format: WORKSPACE_FORMAT, tree, remote, ...(store.config.encryption ? { encrypted: true as const } : {}) });
    const lock = await ws.lock('clone');
    try {
      const prefixes = opts.paths?.map((p) => p.split('/').filter((s) => s && s !== '.').join('/'));
      const result = await checkoutVersion(ws, store, record, prefixes?.length ? prefixes : undefined, false, reporterOf(deps));
      return { ...result, root, remote };
    } finally {
      await lock.release();
    }
  } catch (err) {
    await store?.close();
    store = undefined;
    // A failed clone leaves nothing behind: the directory is as empty (or absent) as it was.
    if (created) await fsp.rm(created, { recursive: true, force: true });
    else for (const name of await fsp.readdir(root)) await fsp.rm(join(root, name), { recursive: true, force: true });
    throw err;
  } finally {
    await store?.close();
  }
}
