// Use-case: check a remote itself (never a cache in front of it): every version's objects exist, and optionally read back true.

import { createHash } from 'node:crypto';
import { EltonError, hasCode, usage } from '../errors.js';
import { Kind } from '../object.js';
import type { ObjectCodec } from '../codec.js';
import { CachedStore } from '../store/cached-store.js';
import { normalizeRemote, openForReading } from '../store/open.js';
import type { Remote, Transfer } from '../store/store.js';
import type { FileStore } from '../store/file-store.js';
import { decodeTree } from '../tree.js';
import { reporterOf, type Deps } from './context.js';

export interface VerifyOptions { remote: string; trees?: string[]; readDataPercent?: number }

export interface Problem { kind: 'missing' | 'corrupt'; what: 'version' | 'tree' | 'chunk'; id: string; message: string; versions: string[] }

export interface VerifyResult {
  remote: string;
  ok: boolean;
  trees: number;
  versions: number;
  objects: { trees: number; chunks: number };
  readData: { percent: number; objects: number; bytes: number } | null;
  problems: Problem[];
  /** Problems beyond the ones listed (the list stops at PROBLEMS_LISTED). */
  moreProblems: number;
  transfer: Transfer;
}

const PROBLEMS_LISTED = 100;

/** What verification needs of a store: a remote itself, or a directory store (both answer without a cache). */
type Checked = Pick<Remote, 'missing' | 'listTrees' | 'listVersions' | 'readVersion' | 'transfer'> & {
  missingData?(ids: Iterable<string>): Promise<Set<string>>;
  readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void>;
};

/** Picks the same sample every run for the same objects and percentage (a stable, spread selection). */
function sampled(id: string, percent: number): boolean {
  if (percent >= 100) return true;
  return createHash('sha256').update(`elton-verify:${id}`).digest().readUInt32BE(0) / 2 ** 32 < percent / 100;
}

export async function verify(opts: VerifyOptions, deps: Deps): Promise<VerifyResult> {
  const reporter = reporterOf(deps);
  const percent = opts.readDataPercent;
  if (percent !== undefined && !(percent > 0 && percent <= 100)) throw usage(`--read-data=${percent}: the percentage must be above 0 and at most 100`, 'write --read-data for every object, or --read-data=10 for a tenth');
  const url = normalizeRemote(opts.remote, deps.cwd);
  const store = await openForReading(url, undefined, false, true);
  // Through a cache, a missing or damaged object at the remote could pass unseen: ask the remote itself.
  const target: Checked = store instanceof CachedStore ? store.remote : (store as FileStore);
  const codec = store.codec;
  try {
    const all = await target.listTrees();
    for (const t of opts.trees ?? []) if (!all.includes(t)) throw new EltonError('E_NOT_FOUND', `tree "${t}" not found at ${url}`, 4, `the remote holds: ${all.join(', ') || 'nothing'}`);
    const trees = opts.trees?.length ? opts.trees : all;
    const problems: Problem[] = [];
    let problemCount = 0;
    const report = (p: Omit<Problem, 'versions'>, version: string) => {
      const known = problems.find((q) => q.id === p.id && q.kind === p.kind);
      if (known) { if (!known.versions.includes(version)) known.versions.push(version); return; }
      problemCount++;
      if (problems.length < PROBLEMS_LISTED) problems.push({ ...p, versions: [version] });
    };
    // Objects are shared between versions: each is checked once, and blamed on every version that reaches it.
    const treeOwners = new Map<string, string[]>();
    const chunkOwners = new Map<string, string[]>();
    const chunkSizes = new Map<string, number>();
    const own = (map: Map<string, string[]>, id: string, ref: string) => {
      const list = map.get(id);
      if (list) { if (list[list.length - 1] !== ref) list.push(ref); } else map.set(id, [ref]);
    };
    const refs: Array<{ tree: string; v: number }> = [];
    for (const tree of trees) for (const v of await target.listVersions(tree)) refs.push({ tree, v });
    let done = 0;
    for (const { tree, v } of refs) {
      const ref = `${tree}@${v}`;
      reporter({ type: 'progress', phase: 'read', loaded: done++, total: refs.length, unit: 'objects' });
      let root: string;
      try {
        root = (await target.readVersion(tree, v)).root;
      } catch (err) {
        if (!hasCode(err, 'E_CORRUPT') && !hasCode(err, 'E_NOT_FOUND')) throw err;
        report({ kind: hasCode(err, 'E_CORRUPT') ? 'corrupt' : 'missing', what: 'version', id: ref, message: err.message }, ref);
        continue;
      }
      const seen = treeOwners.has(root);
      own(treeOwners, root, ref);
      if (!seen) await walk(target, codec, root, ref, treeOwners, chunkOwners, chunkSizes, own, report); // else: the content of an earlier version
    }
    // A bucket can also lose a data pack that its index objects still name: ask for the data itself where the remote can tell.
    const chunks = [...chunkOwners.keys()];
    const absent = target.missingData ? await target.missingData(chunks) : await target.missing(chunks);
    for (const id of absent) report({ kind: 'missing', what: 'chunk', id, message: `chunk ${id} is not at the remote` }, chunkOwners.get(id)![0]);
    let readData: VerifyResult['readData'] = null;
    if (percent !== undefined) {
      const sample = [...chunkOwners.keys()].filter((id) => !absent.has(id) && sampled(id, percent));
      readData = { percent, objects: 0, bytes: 0 };
      const got = readData;
      let loaded = 0;
      // In batches, so that one damaged object is reported with the rest instead of ending the run.
      for (let i = 0; i < sample.length; i += 4096) {
        const batch = sample.slice(i, i + 4096);
        await target.readObjects(batch, (id, data) => {
          got.objects++;
          got.bytes += data.length;
          try {
            if (codec.decode(data, `chunk ${id}`, id).kind !== Kind.chunk) throw new EltonError('E_CORRUPT', `verification failed: object ${id} is not a chunk`, 7);
          } catch (err) {
            if (!hasCode(err, 'E_CORRUPT')) throw err;
            report({ kind: 'corrupt', what: 'chunk', id, message: err.message }, chunkOwners.get(id)![0]);
          }
          loaded += chunkSizes.get(id) ?? 0;
        }).catch((err) => {
          // A remote that fails a whole read (a pack gone from a bucket, a damaged range) names the object.
          const id = err instanceof EltonError ? err.details?.object : undefined;
          if (typeof id !== 'string' || !(hasCode(err, 'E_CORRUPT') || hasCode(err, 'E_NOT_FOUND'))) throw err;
          report({ kind: hasCode(err, 'E_CORRUPT') ? 'corrupt' : 'missing', what: 'chunk', id, message: err.message }, chunkOwners.get(id)?.[0] ?? '?');
        });
        reporter({ type: 'progress', phase: 'read', loaded, total: 0, unit: 'bytes' });
      }
    }
    // Blame every version seen to reach the object (a version sharing a subtree with an earlier one is not walked again).
    for (const p of problems) {
      const owners = p.what === 'tree' ? treeOwners.get(p.id) : p.what === 'chunk' ? chunkOwners.get(p.id) : undefined;
      for (const ref of owners ?? []) if (!p.versions.includes(ref)) p.versions.push(ref);
    }
    return {
      remote: url, ok: problemCount === 0, trees: trees.length, versions: refs.length,
      objects: { trees: treeOwners.size, chunks: chunkOwners.size }, readData,
      problems, moreProblems: problemCount - problems.length, transfer: { ...target.transfer },
    };
  } finally {
    await store.close();
  }
}

/**
 * Reads and verifies every tree under `root`, one request per directory depth (trees already
 * checked for an earlier version are not read again), and records the chunks they name.
 */
async function walk(
  target: Checked, codec: ObjectCodec, root: string, ref: string,
  treeOwners: Map<string, string[]>, chunkOwners: Map<string, string[]>, chunkSizes: Map<string, number>,
  own: (map: Map<string, string[]>, id: string, ref: string) => void,
  report: (p: Omit<Problem, 'versions'>, version: string) => void,
): Promise<void> {
  let level = [root];
  while (level.length) {
    const absent = await target.missing(level);
    for (const id of absent) report({ kind: 'missing', what: 'tree', id, message: `tree ${id} is not at the remote` }, ref);
    const next: string[] = [];
    await target.readObjects(level.filter((id) => !absent.has(id)), (id, data) => {
      let entries;
      try {
        entries = decodeTree(codec.decode(data, `tree ${id}`, id).plain, id).entries;
      } catch (err) {
        if (!hasCode(err, 'E_CORRUPT')) throw err;
        report({ kind: 'corrupt', what: 'tree', id, message: err.message }, ref);
        return;
      }
      for (const e of entries) {
        if (e.type === 'dir') {
          if (!treeOwners.has(e.tree)) next.push(e.tree);
          own(treeOwners, e.tree, ref);
        } else if (e.type === 'file') {
          for (const c of e.chunks) { own(chunkOwners, c.id, ref); chunkSizes.set(c.id, c.size); }
        }
      }
    });
    level = [...new Set(next)];
  }
}
