// Snapshots as flat path maps: built into tree objects for a commit, read back from trees for checkout and diff.

import { Kind, type Compression } from './object.js';
import { decodeTree, encodeTree, type ChunkRef, type TreeEntry } from './tree.js';
import type { Store } from './store/store.js';
import type { ObjectCodec } from './codec.js';
import type { SimilarTree } from './tree-delta.js';

export interface FlatEntry {
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  size: number;
  chunks?: ChunkRef[];
  target?: string;
}

/** Path ('' for the root, posix separators) to entry; parents always come before their children. */
export type Flat = Map<string, FlatEntry>;

export const parentOf = (path: string) => {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
};
const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/** Equal keys mean that checking one out over the other would change no content and no exec bit. */
export function contentKey(e: FlatEntry | undefined): string {
  if (!e) return '';
  if (e.type === 'file') {
    if (!e.chunks) throw new Error('internal: comparing a file whose content was not read');
    return `f${e.mode & 0o111 ? 'x' : ''}:${e.chunks.map((c) => c.id).join(',')}`;
  }
  if (e.type === 'symlink') return `l:${e.target}`;
  return 'd';
}

export interface BuiltTrees {
  root: string;
  /** Every tree object of the snapshot, as canonical JSON (not yet encoded), by id. */
  trees: Map<string, Buffer>;
}

/** Builds one canonical tree object per directory, bottom-up. */
export function buildTrees(flat: Flat, codec: ObjectCodec): BuiltTrees {
  const children = new Map<string, TreeEntry[]>();
  for (const [path, e] of flat) {
    if (e.type === 'dir') children.set(path, []);
  }
  const trees = new Map<string, Buffer>();
  const addTree = (entries: TreeEntry[]) => {
    const plain = encodeTree(entries);
    const id = codec.idOf(plain).toString('hex');
    trees.set(id, plain);
    return id;
  };
  const paths = [...flat.keys()].reverse();
  for (const path of paths) {
    const e = flat.get(path)!;
    if (path === '') continue;
    const name = baseName(path);
    const mode = e.mode & 0o777;
    const mtime = Math.floor(e.mtime);
    let entry: TreeEntry;
    if (e.type === 'file') entry = { name, type: 'file', mode, mtime, size: e.size, chunks: e.chunks! };
    else if (e.type === 'symlink') entry = { name, type: 'symlink', mode, mtime, target: e.target! };
    else entry = { name, type: 'dir', mode, mtime, tree: addTree(children.get(path)!) };
    children.get(parentOf(path))!.push(entry);
  }
  return { root: addTree(children.get('')!), trees };
}

/** Encodes a tree for storage. */
export function encodeTreeObject(plain: Buffer, id: string, compression: Compression, codec: ObjectCodec): Buffer {
  return codec.encode(Kind.tree, plain, compression, Buffer.from(id, 'hex')).data;
}

/** True when `path` is one of `prefixes`, or inside one, or an ancestor of one (which a sparse checkout must traverse). */
export function pathSelected(path: string, prefixes: string[] | undefined): boolean {
  if (!prefixes) return true;
  return prefixes.some((p) => p === '' || path === p || path.startsWith(p + '/') || p.startsWith(path === '' ? '' : path + '/'));
}

/** True when `path` is one of `prefixes` or inside one (not merely an ancestor). */
export function pathCovered(path: string, prefixes: string[] | undefined): boolean {
  if (!prefixes) return true;
  return prefixes.some((p) => p === '' || path === p || path.startsWith(p + '/'));
}

export interface LoadedTrees { flat: Flat; treeObjects: number; treeBytes: number }

/**
 * Reads a snapshot's trees level by level: one batched read per directory depth, whatever the
 * number of directories, and only the subtrees on the selected paths.
 */
export async function loadSnapshot(store: Store, root: string, rootMeta: Pick<FlatEntry, 'mode' | 'mtime'>, prefixes?: string[]): Promise<LoadedTrees> {
  const flat: Flat = new Map([['', { type: 'dir', mode: rootMeta.mode, mtime: rootMeta.mtime, size: 0 }]]);
  let level = new Map<string, string[]>([[root, ['']]]);
  let treeObjects = 0;
  let treeBytes = 0;
  await store.prefetchTrees?.(root, prefixes);
  // Collected per level, then inserted in path order, so that parents precede children.
  while (level.size) {
    const next = new Map<string, string[]>();
    const found: Array<[string, FlatEntry]> = [];
    await store.readObjects(level.keys(), (id, data) => {
      treeObjects++;
      treeBytes += data.length;
      const tree = decodeTree(store.codec.decode(data, `tree ${id}`, id).plain, id);
      for (const dirPath of level.get(id)!) {
        for (const e of tree.entries) {
          const path = dirPath ? `${dirPath}/${e.name}` : e.name;
          if (!pathSelected(path, prefixes)) continue;
          if (e.type === 'dir') {
            found.push([path, { type: 'dir', mode: e.mode, mtime: e.mtime, size: 0 }]);
            const list = next.get(e.tree) ?? [];
            list.push(path);
            next.set(e.tree, list);
          } else if (e.type === 'file') {
            found.push([path, { type: 'file', mode: e.mode, mtime: e.mtime, size: e.size, chunks: e.chunks }]);
          } else {
            found.push([path, { type: 'symlink', mode: e.mode, mtime: e.mtime, size: 0, target: e.target }]);
          }
        }
      }
    });
    found.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [path, e] of found) flat.set(path, e);
    level = next;
  }
  return { flat, treeObjects, treeBytes };
}

/** Re-orders a flat map depth-first, so that every directory precedes its contents. */
export function orderParentsFirst(flat: Flat): Flat {
  const keys = [...flat.keys()].sort((a, b) => (a === '' ? -1 : b === '' ? 1 : comparePaths(a, b)));
  return new Map(keys.map((k) => [k, flat.get(k)!]));
}

/** Orders paths component by component, so "a/b" sorts right after "a" and before "a-c". */
export function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

export type ChangeKind = 'added' | 'modified' | 'deleted' | 'type-changed';
export interface Change { path: string; change: ChangeKind; from?: FlatEntry['type']; to?: FlatEntry['type'] }

/** What turns `from` into `to`. Directories count only when added or removed. */
export function diffSnapshots(from: Flat, to: Flat): Change[] {
  const changes: Change[] = [];
  const paths = new Set([...from.keys(), ...to.keys()]);
  paths.delete('');
  for (const path of [...paths].sort(comparePaths)) {
    const a = from.get(path);
    const b = to.get(path);
    if (!a) changes.push({ path, change: 'added', to: b!.type });
    else if (!b) changes.push({ path, change: 'deleted', from: a.type });
    else if (a.type !== b.type) changes.push({ path, change: 'type-changed', from: a.type, to: b.type });
    else if (contentKey(a) !== contentKey(b)) changes.push({ path, change: 'modified', from: a.type, to: b.type });
  }
  return changes;
}

export interface Reachable {
  trees: Set<string>;
  /** Chunk id to plain size. */
  chunks: Map<string, number>;
}

/**
 * Every object reachable from `root`, read level by level (one batched read per depth). Subtrees
 * whose id is in `skip` are not entered: the caller knows their objects are accounted for.
 */
export async function collectReachable(store: Pick<Store, 'readObjects' | 'codec'>, root: string, skip: Set<string> = new Set()): Promise<Reachable> {
  const out: Reachable = { trees: new Set(), chunks: new Map() };
  let level = skip.has(root) ? [] : [root];
  while (level.length) {
    const next: string[] = [];
    for (const id of level) out.trees.add(id);
    await store.readObjects(level, (id, data) => {
      for (const e of decodeTree(store.codec.decode(data, `tree ${id}`, id).plain, id).entries) {
        if (e.type === 'dir') {
          if (!skip.has(e.tree) && !out.trees.has(e.tree)) { out.trees.add(e.tree); next.push(e.tree); }
        } else if (e.type === 'file') {
          for (const c of e.chunks) out.chunks.set(c.id, c.size);
        }
      }
    });
    level = next;
  }
  return out;
}

export interface TreeDiff {
  /** Every object under the root and not under the base at the same path. */
  out: Set<string>;
  treeIds: Set<string>;
  /** Plain sizes of the chunks in `out`. */
  plainSizes: Map<string, number>;
  /** Tree id -> the base's tree at the same path, with its plain bytes. */
  similar: Map<string, SimilarTree>;
}

/**
 * Adds to `out` every object under `root` that is not under `baseRoot` at the same path: the
 * trees that differ, and the chunks of their files that the base's tree at that path does not
 * name. A subtree whose id the base has at that path is skipped whole. One read per depth.
 */
export async function diffTrees(store: Pick<Store, 'readObjects' | 'codec'>, root: string, baseRoot: string | null, { out, treeIds, plainSizes, similar }: TreeDiff): Promise<void> {
  let level: Array<{ id: string; base: string | null }> = root === baseRoot ? [] : [{ id: root, base: baseRoot }];
  const seen = new Set<string>();
  while (level.length) {
    const entries = new Map<string, TreeEntry[]>();
    const ids = new Set<string>();
    for (const { id, base } of level) { ids.add(id); if (base) ids.add(base); }
    const plains = new Map<string, Buffer>();
    await store.readObjects(ids, (id, data) => {
      const { plain } = store.codec.decode(data, `tree ${id}`, id);
      plains.set(id, plain);
      entries.set(id, decodeTree(plain, id).entries);
    });
    const next: Array<{ id: string; base: string | null }> = [];
    for (const { id, base } of level) {
      if (seen.has(id)) continue;
      seen.add(id);
      out.add(id);
      treeIds.add(id);
      if (base) similar.set(id, { base, plain: plains.get(base)! });
      const before = new Map<string, TreeEntry>();
      const baseChunks = new Set<string>();
      for (const e of base ? entries.get(base)! : []) {
        before.set(e.name, e);
        if (e.type === 'file') for (const c of e.chunks) baseChunks.add(c.id);
      }
      for (const e of entries.get(id)!) {
        if (e.type === 'dir') {
          const old = before.get(e.name);
          const oldTree = old?.type === 'dir' ? old.tree : null;
          if (e.tree !== oldTree) next.push({ id: e.tree, base: oldTree });
        } else if (e.type === 'file') {
          for (const c of e.chunks) {
            if (baseChunks.has(c.id)) continue;
            out.add(c.id);
            plainSizes.set(c.id, c.size);
          }
        }
      }
    }
    level = next;
  }
}
