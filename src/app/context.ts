// What every use-case shares: dependencies passed in, and the workspace/store lookup with ref resolution.

import { resolve, relative, sep } from 'node:path';
import { notFound, usage } from '../errors.js';
import { silent, type Reporter } from '../events.js';
import { parseRef, type Ref } from '../ref.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import type { VersionRecord } from '../version.js';
import { Workspace } from '../workspace/workspace.js';

export interface Deps {
  cwd: string;
  reporter?: Reporter;
}

export const reporterOf = (deps: Deps): Reporter => deps.reporter ?? silent;

export interface Opened { ws: Workspace; store: Store }

export async function openWorkspace(deps: Deps): Promise<Opened> {
  const ws = await Workspace.find(deps.cwd);
  return { ws, store: await openStore(ws.remoteUrl) };
}

/**
 * Finishes a commit that was killed after its version record was created but before HEAD was
 * moved to it: without this, the next commit would see its own version as someone else's.
 */
export async function recoverPendingCommit(ws: Workspace, store: Store): Promise<void> {
  const pending = await ws.readPending();
  if (!pending) return;
  for (const v of await store.listVersions(pending.tree)) {
    if (v <= (pending.parent ?? 0)) continue;
    const r = await store.readVersion(pending.tree, v);
    if (r.root === pending.root && r.parent === pending.parent && r.host === pending.host) {
      await ws.writeHead({ tree: pending.tree, version: v });
      break;
    }
  }
  await ws.clearPending();
}

/** Resolves NAME@V / NAME@latest / @V / @latest to a version record; a bare tree name defaults to the workspace's. */
export async function resolveVersion(store: Store, ref: Ref | string, defaultTree?: string): Promise<VersionRecord> {
  const r = typeof ref === 'string' ? parseRef(ref) : ref;
  const tree = r.tree ?? defaultTree;
  if (!tree) throw usage('this ref names no tree, and there is no workspace to take it from', 'write it as NAME@V');
  let version = r.version;
  if (version === 'latest') {
    version = await store.latestVersion(tree);
    if (version === 0) throw notFound(`tree "${tree}"`, `it has no versions at ${store.url}; \`elton log\` lists what exists`);
  }
  return store.readVersion(tree, version);
}

/** Turns paths typed by the user (relative to cwd) into posix paths relative to the workspace root. */
export function workspacePaths(ws: Workspace, cwd: string, paths: string[]): string[] {
  return paths.map((p) => {
    const rel = relative(ws.root, resolve(cwd, p));
    if (rel.startsWith('..') || resolve(ws.root, rel) !== resolve(cwd, p)) {
      throw usage(`path "${p}" is outside the workspace ${ws.root}`);
    }
    return rel.split(sep).join('/');
  });
}
