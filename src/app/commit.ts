// Use-case: snapshot the working tree into the store and have the store issue NAME@V.

import { hostname, userInfo } from 'node:os';
import * as fs from 'node:fs';
import { conflict, usage } from '../errors.js';
import { buildTrees, encodeTreeObject } from '../snapshot.js';
import { formatRef } from '../ref.js';
import type { Store } from '../store/store.js';
import type { VersionRecord } from '../version.js';
import { findGitRoot } from '../workspace/ignore.js';
import { readWorkTree } from '../workspace/worktree.js';
import { openWorkspace, recoverPendingCommit, reporterOf, type Deps } from './context.js';

export interface CommitOptions { message?: string; force?: boolean }

export interface CommitResult {
  ref: string;
  tree: string;
  version: number;
  root: string;
  parent: number | null;
  /** True when nothing changed since the base version, so no version was made. */
  unchanged: boolean;
  files: number;
  bytes: number;
  newObjects: number;
  newBytes: number;
  hashedFiles: number;
  hashedBytes: number;
}

async function gitHead(root: string): Promise<VersionRecord['git']> {
  const dir = findGitRoot(root);
  if (!dir) return null;
  try {
    // Loaded lazily: only commits inside a Git repository pay for it.
    const git = await import('isomorphic-git');
    const commit = await git.resolveRef({ fs, dir, ref: 'HEAD' });
    const branch = (await git.currentBranch({ fs, dir, fullname: false })) ?? null;
    return { commit, branch };
  } catch {
    return null; // a repository without commits yet
  }
}

export function author(): string {
  if (process.env.ELTON_AUTHOR) return process.env.ELTON_AUTHOR;
  try { return userInfo().username; } catch { return 'unknown'; }
}

/**
 * Issues tree@(latest+1). A commit based on a version that is no longer the latest is refused,
 * unless forced; then it is recorded with its true parent. Losing a creation race to another
 * committer is the same stale-parent case.
 */
export async function issueVersion(store: Store, draft: Omit<VersionRecord, 'version'>, force: boolean): Promise<number> {
  for (;;) {
    const latest = await store.latestVersion(draft.tree);
    if (latest !== (draft.parent ?? 0) && !force) {
      throw conflict(
        `${draft.tree} has moved on: its latest version is @${latest}, but this workspace is based on ${draft.parent ? `@${draft.parent}` : 'no version'}`,
        `run \`elton checkout ${draft.tree}@latest\` to catch up (your changes stay unless they collide), then commit again; or \`elton commit --force\` to record this commit anyway with parent @${draft.parent ?? 'none'}`,
        { latest, parent: draft.parent },
      );
    }
    const version = latest + 1;
    if (await store.createVersion({ ...draft, version })) return version;
  }
}

export async function commit(opts: CommitOptions, deps: Deps): Promise<CommitResult> {
  const reporter = reporterOf(deps);
  const { ws, store } = await openWorkspace(deps);
  const lock = await ws.lock('commit');
  try {
    await recoverPendingCommit(ws, store);
    const tree = ws.config.tree;
    const head = await ws.readHead();
    if (head?.paths) throw usage('this workspace holds a partial checkout, and a commit from it would drop the rest of the tree', `check out the whole version first: \`elton checkout ${tree}@${head.version}\``);
    const base = head?.tree === tree ? head.version : null;
    const { compression, chunker } = store.config;
    const writer = store.writer();
    const stored = new Set<string>();
    let newObjects = 0;
    let newBytes = 0;
    let known: Set<string> | undefined;
    const addObject = async (id: string, data: Buffer) => {
      if (stored.has(id) || known?.has(id)) return;
      stored.add(id);
      newObjects++;
      newBytes += data.length;
      await writer.add(id, data);
    };
    try {
      const work = await readWorkTree(ws, {
        settings: { chunker, compression },
        // Loaded only when some file must be read: an unchanged re-commit never touches the index.
        known: async () => new Set(known = new Set(await store.knownIds?.() ?? [])),
        onObject: addObject,
        reporter,
      });
      let files = 0;
      let bytes = 0;
      for (const e of work.flat.values()) {
        if (e.type === 'file') { files++; bytes += e.size; }
      }
      const built = buildTrees(work.flat);
      const summary = { tree, root: built.root, files, bytes, hashedFiles: work.hashedFiles, hashedBytes: work.hashedBytes };
      if (base !== null) {
        const baseRecord = await store.readVersion(tree, base);
        if (baseRecord.root === built.root) {
          await writer.abort();
          if (work.cache.changed) await work.cache.save(ws);
          return { ref: formatRef(tree, base), version: base, parent: baseRecord.parent, unchanged: true, newObjects: 0, newBytes: 0, ...summary };
        }
      }
      const missingTrees = await store.missing(built.trees.keys());
      for (const [id, plain] of built.trees) if (missingTrees.has(id)) await addObject(id, encodeTreeObject(plain, id, compression));
      await writer.finish();
      await ws.writePending({ tree, root: built.root, parent: base, host: hostname() });
      const version = await issueVersion(store, {
        tree, root: built.root, parent: base, message: opts.message ?? '', author: author(), host: hostname(),
        time: new Date().toISOString(), git: await gitHead(ws.root),
      }, opts.force ?? false);
      await ws.writeHead({ tree, version });
      await ws.clearPending();
      await work.cache.save(ws);
      return { ref: formatRef(tree, version), version, parent: base, unchanged: false, newObjects, newBytes, ...summary };
    } catch (err) {
      await writer.abort();
      throw err;
    }
  } finally {
    await store.close();
    await lock.release();
  }
}
