// What every use-case shares: dependencies passed in, and the workspace/store lookup with ref resolution.

import { resolve, relative, sep } from 'node:path';
import { corrupt, hasCode, notFound, usage } from '../errors.js';
import { silent, type Reporter } from '../events.js';
import { parseRef, type Ref } from '../ref.js';
import { openStore } from '../store/open.js';
import type { Store, Transfer } from '../store/store.js';
import type { VersionRecord } from '../version.js';
import { Workspace, type PendingCommit } from '../workspace/workspace.js';

export interface Deps {
  cwd: string;
  reporter?: Reporter;
}

export const reporterOf = (deps: Deps): Reporter => deps.reporter ?? silent;

export interface Opened { ws: Workspace; store: Store }

export async function openWorkspace(deps: Deps): Promise<Opened> {
  const ws = await Workspace.find(deps.cwd);
  const store = await openStore(ws.remoteUrl, storeOptions(ws));
  if (ws.config.encrypted && !store.config.encryption) {
    await store.close();
    throw corrupt(`the store at ${ws.remoteUrl} is not encrypted, and it was when this workspace met it`,
      'someone replaced it with a plain store, which would receive this workspace\'s files in plaintext: check with the store\'s owner', { object: 'config' });
  }
  return { ws, store };
}

export const storeOptions = (ws: Workspace) => ({ cacheDir: ws.cachePath, token: ws.config.token });

/** The `transfer` field of every command's --json: what crossed the network. */
export const transferOf = (store: Store): Transfer => ({ ...store.transfer });

/**
 * Settles a pending commit (a draft saved before its version was issued). If the store issued
 * it (the commit was killed after the version was created, before HEAD moved), HEAD moves to it:
 * without this, the next commit would see its own version as someone else's. Otherwise the draft
 * is returned, still pending, for `push` (or a commit) to send.
 */
export async function settlePending(ws: Workspace, store: Store): Promise<PendingCommit | undefined> {
  const pending = await ws.readPending();
  if (!pending) return undefined;
  const head = await ws.readHead();
  // Only a draft based on the current HEAD can have been issued without HEAD moving.
  if ((head?.version ?? null) === pending.parent || !head) {
    const latest = await store.latestVersion(pending.tree);
    for (let v = latest; v > (pending.parent ?? 0); v--) {
      const r = await store.readVersion(pending.tree, v);
      if (r.root === pending.root && r.parent === pending.parent && r.host === pending.host && (!pending.time || r.time === pending.time)) {
        await ws.writeHead({ tree: pending.tree, version: v });
        await ws.clearPending();
        return undefined;
      }
    }
  }
  // A marker from an older elton holds no draft: its commit is simply made again.
  if (!pending.time) {
    await ws.clearPending();
    return undefined;
  }
  return pending;
}

/** Like settlePending, but an unreachable remote leaves the draft pending instead of failing: for commands that work offline. */
export async function settlePendingQuietly(ws: Workspace, store: Store): Promise<PendingCommit | undefined> {
  try {
    return await settlePending(ws, store);
  } catch (err) {
    if (hasCode(err, 'E_UNREACHABLE')) return ws.readPending();
    throw err;
  }
}

/** Resolves NAME@V / NAME@latest / @V / @latest to a version record; a bare tree name defaults to the workspace's. */
export async function resolveVersion(store: Store, ref: Ref | string, defaultTree?: string, reporter?: Reporter): Promise<VersionRecord> {
  const r = typeof ref === 'string' ? parseRef(ref) : ref;
  const tree = r.tree ?? defaultTree;
  if (!tree) throw usage('this ref names no tree, and there is no workspace to take it from', 'write it as NAME@V');
  let version = r.version;
  if (version === 'latest') {
    version = await store.latestVersion(tree);
    if (version === 0) throw notFound(`tree "${tree}"`, `it has no versions at ${store.url}; \`elton log\` lists what exists`);
    const stale = store.staleLatest?.(tree);
    if (stale) reporter?.({ type: 'warning', code: 'W_STALE_LATEST', message: stale });
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
