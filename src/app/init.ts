// Use-case: make a directory a workspace, with the embedded store or a remote.

import { promises as fsp } from 'node:fs';
import { basename, resolve } from 'node:path';
import { exists, usage } from '../errors.js';
import { checkTreeName, treeNameFromDir } from '../ref.js';
import type { S3Settings } from '../remote/s3-client.js';
import { createStore, normalizeRemote } from '../store/open.js';
import { Workspace, WORKSPACE_FORMAT } from '../workspace/workspace.js';
import type { Store, Transfer } from '../store/store.js';
import { storeOptions, transferOf, type Deps } from './context.js';

export interface InitOptions { dir?: string; tree?: string; remote?: string; s3?: S3Settings }
export interface InitResult { root: string; tree: string; remote: string | null; store: string; transfer: Transfer }

export async function init(opts: InitOptions, deps: Deps): Promise<InitResult> {
  const root = resolve(deps.cwd, opts.dir ?? '.');
  if (Workspace.isWorkspace(root)) {
    throw exists(`${root} is already an elton workspace`, 'use it as it is, or remove its .elton/ directory to start over');
  }
  const tree = opts.tree ? checkTreeName(opts.tree) : treeNameFromDir(basename(root));
  if (!opts.remote && Object.values(opts.s3 ?? {}).some((v) => v !== undefined)) throw usage('S3 settings need an s3:// remote', 'add --remote s3://BUCKET/PREFIX');
  const remote = opts.remote ? normalizeRemote(opts.remote, deps.cwd, opts.s3) : null;
  const created = await fsp.mkdir(root, { recursive: true });
  const ws = await Workspace.create(root, { format: WORKSPACE_FORMAT, tree, remote });
  let store: Store;
  try {
    // For a master, this fetches its store config: an unreachable master or a bad token fails init here.
    store = await createStore(ws.remoteUrl, storeOptions(ws));
  } catch (err) {
    await fsp.rm(created ?? ws.meta, { recursive: true, force: true });
    throw err;
  }
  await store.close();
  return { root, tree, remote, store: ws.remoteUrl, transfer: transferOf(store) };
}
