// Use-case: make a directory a workspace, with the embedded store or a remote.

import { promises as fsp } from 'node:fs';
import { basename, resolve } from 'node:path';
import { exists } from '../errors.js';
import { checkTreeName, treeNameFromDir } from '../ref.js';
import { createStore, normalizeRemote } from '../store/open.js';
import { Workspace, WORKSPACE_FORMAT } from '../workspace/workspace.js';
import type { Deps } from './context.js';

export interface InitOptions { dir?: string; tree?: string; remote?: string }
export interface InitResult { root: string; tree: string; remote: string | null; store: string }

export async function init(opts: InitOptions, deps: Deps): Promise<InitResult> {
  const root = resolve(deps.cwd, opts.dir ?? '.');
  if (Workspace.isWorkspace(root)) {
    throw exists(`${root} is already an elton workspace`, 'use it as it is, or remove its .elton/ directory to start over');
  }
  const tree = opts.tree ? checkTreeName(opts.tree) : treeNameFromDir(basename(root));
  const remote = opts.remote ? normalizeRemote(opts.remote, deps.cwd) : null;
  await fsp.mkdir(root, { recursive: true });
  const ws = await Workspace.create(root, { format: WORKSPACE_FORMAT, tree, remote });
  const store = await createStore(ws.remoteUrl);
  await store.close();
  return { root, tree, remote, store: ws.remoteUrl };
}
