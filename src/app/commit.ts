// Use-case: snapshot the working tree into the store and have the store issue NAME@V.

import { hostname, userInfo } from 'node:os';
import * as fs from 'node:fs';
import { EltonError, hasCode, usage } from '../errors.js';
import { buildTrees, encodeTreeObject } from '../snapshot.js';
import { formatRef } from '../ref.js';
import type { Store, Transfer, VersionDraft } from '../store/store.js';
import { assertMayCommit } from '../codec.js';
import type { VersionRecord } from '../version.js';
import type { Reporter } from '../events.js';
import type { PendingCommit, Workspace } from '../workspace/workspace.js';
import { findGitRoot } from '../workspace/ignore.js';
import { readWorkTree } from '../workspace/worktree.js';
import { openWorkspace, reporterOf, settlePendingQuietly, transferOf, type Deps } from './context.js';

export interface CommitOptions { message?: string; force?: boolean }

export interface CommitResult {
  /** NAME@V, or NAME@pending while the version is not issued yet. */
  ref: string;
  tree: string;
  /** null while pending. */
  version: number | null;
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
  /** True when the remote could not be reached: the commit is saved locally and `elton push` sends it. */
  pending: boolean;
  /** Why it is pending. */
  pendingReason?: string;
  transfer: Transfer;
}

export interface Issued { record: VersionRecord | null; reason?: string }

/**
 * Has the store issue a pending commit's version and moves HEAD to it. A remote that cannot be
 * reached leaves the commit pending (and says why); any other refusal is thrown, the draft kept.
 */
const keptPending = (err: EltonError) => new EltonError(err.code, err.message, err.exitCode,
  `the commit is kept as pending: \`elton push\` sends it (only what did not get there); ${err.hint ?? ''}`.trim(), err.details, { cause: err });

export async function issuePending(ws: Workspace, store: Store, pending: PendingCommit, reporter: Reporter): Promise<Issued> {
  const { force, ...draft } = pending;
  let record: VersionRecord;
  try {
    record = await store.issueVersion(draft, force, reporter);
  } catch (err) {
    if (hasCode(err, 'E_UNREACHABLE')) return { record: null, reason: err.message };
    throw err;
  }
  const head = await ws.readHead();
  // HEAD moves only if it still names the draft's base: a checkout since then wins.
  if (!head || head.version === pending.parent) await ws.writeHead({ tree: record.tree, version: record.version });
  await ws.clearPending();
  return { record };
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

export async function commit(opts: CommitOptions, deps: Deps): Promise<CommitResult> {
  const reporter = reporterOf(deps);
  const { ws, store } = await openWorkspace(deps);
  const lock = await ws.lock('commit');
  try {
    const tree = ws.config.tree;
    // An unsent commit goes first; if it cannot go (unreachable, or refused as stale), this commit takes its place.
    let replaced: PendingCommit | undefined = await settlePendingQuietly(ws, store);
    if (replaced) {
      try {
        if ((await issuePending(ws, store, replaced, reporter)).record) replaced = undefined;
      } catch (err) {
        if (!hasCode(err, 'E_CONFLICT')) throw err;
      }
    }
    const head = await ws.readHead();
    if (head?.paths) throw usage('this workspace holds a partial checkout, and a commit from it would drop the rest of the tree', `check out the whole version first: \`elton checkout ${tree}@${head.version}\``);
    const base = head?.tree === tree ? head.version : null;
    assertMayCommit(store.codec.keys, tree);
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
        settings: { chunker, compression, keys: store.codec.keys },
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
      const built = buildTrees(work.flat, store.codec);
      const summary = { tree, root: built.root, files, bytes, hashedFiles: work.hashedFiles, hashedBytes: work.hashedBytes };
      if (base !== null) {
        const baseRecord = await store.readVersion(tree, base);
        if (baseRecord.root === built.root) {
          await writer.abort();
          if (replaced) await ws.clearPending();
          if (work.cache.changed) await work.cache.save(ws);
          return { ref: formatRef(tree, base), version: base, parent: baseRecord.parent, unchanged: true, newObjects: 0, newBytes: 0, pending: false, ...summary, transfer: transferOf(store) };
        }
      }
      const missingTrees = await store.missing(built.trees.keys());
      for (const [id, plain] of built.trees) if (missingTrees.has(id)) await addObject(id, encodeTreeObject(plain, id, compression, store.codec));
      await writer.finish();
      // The message of an unsent commit this one replaces is kept below this one's.
      const message = [opts.message ?? '', replaced?.message ?? ''].filter(Boolean).join('\n\n');
      const draft: VersionDraft = {
        tree, root: built.root, parent: base, message, author: author(), host: hostname(),
        time: new Date().toISOString(), git: await gitHead(ws.root),
      };
      const pending: PendingCommit = { ...draft, force: opts.force ?? false };
      await ws.writePending(pending);
      // The stat cache is saved first: these files are stored whether or not the version is issued now.
      await work.cache.save(ws);
      const issued = await issuePending(ws, store, pending, reporter).catch(async (err) => {
        // A remote that failed (after its retries) refused nothing: the commit stays pending for `push`.
        if (hasCode(err, 'E_REMOTE')) throw keptPending(err);
        // Refused (a stale parent, say): nothing is recorded, as with any refused commit.
        await ws.clearPending();
        throw err;
      });
      const common = { parent: base, unchanged: false, newObjects, newBytes, ...summary };
      if (!issued.record) return { ref: `${tree}@pending`, version: null, pending: true, pendingReason: issued.reason, ...common, transfer: transferOf(store) };
      return { ref: formatRef(tree, issued.record.version), version: issued.record.version, pending: false, ...common, transfer: transferOf(store) };
    } catch (err) {
      await writer.abort();
      throw err;
    }
  } finally {
    await store.close();
    await lock.release();
  }
}
