// Use-cases that read history: log, ls, cat, status and diff.

import { hasCode, notFound, usage } from '../errors.js';
import { formatRef, parseRef } from '../ref.js';
import { diffSnapshots, loadSnapshot, parentOf, type Change, type Flat } from '../snapshot.js';
import type { Store, Transfer } from '../store/store.js';
import type { VersionRecord } from '../version.js';
import { readWorkTree } from '../workspace/worktree.js';
import type { Workspace } from '../workspace/workspace.js';
import { openWorkspace, reporterOf, resolveVersion, transferOf, type Deps } from './context.js';

const ROOT_META = { mode: 0o755, mtime: 0 };

/** Runs a read-only use-case on the workspace's store and adds what it moved over the network. */
async function withWorkspace<T>(deps: Deps, fn: (ws: Workspace, store: Store) => Promise<T>): Promise<T & { transfer: Transfer }> {
  const { ws, store } = await openWorkspace(deps);
  try {
    const result = await fn(ws, store);
    return { ...result, transfer: transferOf(store) };
  } finally {
    await store.close();
  }
}

export interface LogResult { tree: string; versions: VersionRecord[]; transfer: Transfer }

export function log(opts: { tree?: string; limit?: number }, deps: Deps): Promise<LogResult> {
  return withWorkspace(deps, async (ws, store) => {
    const tree = opts.tree ?? ws.config.tree;
    let numbers = (await store.listVersions(tree)).reverse();
    if (opts.limit) numbers = numbers.slice(0, opts.limit);
    const versions = await Promise.all(numbers.map((v) => store.readVersion(tree, v)));
    return { tree, versions };
  });
}

export interface LsEntry { name: string; path: string; type: string; mode: string; size: number; mtime: string; target?: string }
export interface LsResult { ref: string; path: string; entries: LsEntry[]; transfer: Transfer }

const normalizePath = (p: string | undefined) => (p ?? '').split('/').filter((s) => s && s !== '.').join('/');

export function ls(opts: { ref: string; path?: string; recursive?: boolean }, deps: Deps): Promise<LsResult> {
  return withWorkspace(deps, async (ws, store) => {
    const record = await resolveVersion(store, opts.ref, ws.config.tree, reporterOf(deps));
    const ref = formatRef(record.tree, record.version);
    const path = normalizePath(opts.path);
    const { flat } = await loadSnapshot(store, record.root, ROOT_META, path ? [path] : undefined);
    const at = flat.get(path);
    if (!at) throw notFound(`path "${path}" in ${ref}`, `\`elton ls ${ref}\` shows what it holds`);
    const entries: LsEntry[] = [];
    for (const [p, e] of flat) {
      if (p === '' || p === path && at.type === 'dir') continue;
      const inside = at.type !== 'dir' ? p === path : path === '' || p.startsWith(path + '/');
      if (!inside || (!opts.recursive && at.type === 'dir' && parentOf(p) !== path)) continue;
      entries.push({
        name: p.slice(p.lastIndexOf('/') + 1), path: p, type: e.type, mode: e.mode.toString(8).padStart(4, '0'),
        size: e.size, mtime: new Date(e.mtime).toISOString(), ...(e.target !== undefined ? { target: e.target } : {}),
      });
    }
    return { ref, path, entries };
  });
}

export interface CatResult { ref: string; path: string; size: number; content: Buffer; transfer: Transfer }

export function cat(opts: { spec: string }, deps: Deps): Promise<CatResult> {
  return withWorkspace(deps, async (ws, store) => {
    const ref = parseRef(opts.spec, { allowPath: true });
    const path = normalizePath(ref.path);
    if (!path) throw usage(`"${opts.spec}" names no file`, 'write REF:PATH, for example data@3:docs/readme.txt');
    const record = await resolveVersion(store, ref, ws.config.tree, reporterOf(deps));
    const name = formatRef(record.tree, record.version);
    const { flat } = await loadSnapshot(store, record.root, ROOT_META, [path]);
    const e = flat.get(path);
    if (!e) throw notFound(`path "${path}" in ${name}`, `\`elton ls ${name}\` shows what it holds`);
    if (e.type === 'dir') throw usage(`"${path}" is a directory`, `use \`elton ls ${name} ${path}\``);
    if (e.type === 'symlink') return { ref: name, path, size: Buffer.byteLength(e.target!), content: Buffer.from(e.target!) };
    const parts = new Map<string, Buffer>();
    await store.readObjects(e.chunks!.map((c) => c.id), (id, data) => { parts.set(id, store.codec.decode(data, `object ${id}`, id).plain); });
    const content = Buffer.concat(e.chunks!.map((c) => parts.get(c.id)!));
    return { ref: name, path, size: content.length, content };
  });
}

export interface DiffResult { from: string; to: string; changes: Change[]; transfer: Transfer }

async function snapshotOf(store: Store, ref: string, tree: string): Promise<{ name: string; flat: Flat }> {
  const record = await resolveVersion(store, ref, tree);
  return { name: formatRef(record.tree, record.version), flat: (await loadSnapshot(store, record.root, ROOT_META)).flat };
}

async function workingSnapshot(ws: Workspace, store: Store, deps: Deps, prefixes?: string[]): Promise<Flat> {
  const lock = await ws.lock('diff');
  try {
    const work = await readWorkTree(ws, { settings: { chunker: store.config.chunker, keys: store.codec.keys }, prefixes, reporter: reporterOf(deps) });
    // The re-read files are remembered, so the next status or commit need not read them again.
    if (work.cache.changed) await work.cache.save(ws);
    return work.flat;
  } finally {
    await lock.release();
  }
}

/** `diff A B` compares two versions; `diff A` compares A with the working tree. */
export function diff(opts: { from: string; to?: string }, deps: Deps): Promise<DiffResult> {
  return withWorkspace(deps, async (ws, store) => {
    const a = await snapshotOf(store, opts.from, ws.config.tree);
    if (opts.to) {
      const b = await snapshotOf(store, opts.to, ws.config.tree);
      return { from: a.name, to: b.name, changes: diffSnapshots(a.flat, b.flat) };
    }
    return { from: a.name, to: 'working tree', changes: diffSnapshots(a.flat, await workingSnapshot(ws, store, deps)) };
  });
}

export interface StatusResult {
  tree: string;
  head: string | null;
  /** The remote's latest version, or null when it cannot be reached. */
  latest: number | null;
  clean: boolean;
  changes: Change[];
  /** A commit saved locally whose version is not issued yet (`elton push` sends it). */
  pending: { root: string; parent: number | null; message: string; time: string } | null;
  transfer: Transfer;
}

export function status(deps: Deps): Promise<StatusResult> {
  return withWorkspace(deps, async (ws, store) => {
    const head = await ws.readHead();
    const tree = ws.config.tree;
    // After a partial checkout, only the checked-out paths are compared.
    let base: Flat = new Map();
    if (head) base = (await loadSnapshot(store, (await store.readVersion(head.tree, head.version)).root, ROOT_META, head.paths)).flat;
    const pending = await ws.readPending();
    // Compared with the unsent commit if there is one: that is what the working tree was last committed as.
    const pendingRoot = pending?.time && pending.parent === (head?.version ?? null) ? pending.root : undefined;
    if (pendingRoot) base = (await loadSnapshot(store, pendingRoot, ROOT_META)).flat;
    const changes = diffSnapshots(base, await workingSnapshot(ws, store, deps, head?.paths));
    let latest: number | null;
    try {
      latest = await store.latestVersion(tree);
    } catch (err) {
      if (!hasCode(err, 'E_UNREACHABLE')) throw err;
      latest = null;
    }
    return {
      tree, head: head ? formatRef(head.tree, head.version) : null, latest, clean: changes.length === 0, changes,
      pending: pendingRoot ? { root: pending!.root, parent: pending!.parent, message: pending!.message, time: pending!.time } : null,
    };
  });
}
