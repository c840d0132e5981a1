// A version as a read-only file tree, loaded lazily: the model behind `elton mount` and `elton serve`.
//
// Looking a path up fetches only the tree objects on that path, in one request for those not
// held; reading a byte range fetches only the chunks under it.

import { createHash } from 'node:crypto';
import type { ChunkRef, Tree, TreeEntry } from '../tree.js';
import type { VersionRecord } from '../version.js';
import { formatRef } from '../ref.js';
import type { ObjectLoader } from './loader.js';

export interface Node {
  path: string;
  name: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  size: number;
  /** The tree object of a directory, or the content id of a file: what an ETag names. */
  id: string;
  chunks?: ChunkRef[];
  target?: string;
}

export type Lookup =
  | { kind: 'found'; node: Node }
  | { kind: 'absent' }
  /** A path that would pass through a symlink: never followed. */
  | { kind: 'through-symlink'; at: string };

/** Bytes per fetch when streaming a whole file: big enough to fill parallel streams, small enough to start soon. */
const STREAM_WINDOW = 16 * 1024 * 1024;

/**
 * A file's content id: its one chunk's id, or the SHA-256 of its chunk ids in order (the empty
 * file's is that of nothing). Equal ids mean equal bytes.
 */
export function contentId(chunks: ChunkRef[]): string {
  if (chunks.length === 1) return chunks[0].id;
  const h = createHash('sha256');
  for (const c of chunks) h.update(Buffer.from(c.id, 'hex'));
  return h.digest('hex');
}

const byName = new WeakMap<Tree, Map<string, TreeEntry>>();
const offsetsOf = new WeakMap<ChunkRef[], number[]>();

function entryNamed(tree: Tree, name: string): TreeEntry | undefined {
  let map = byName.get(tree);
  if (!map) {
    map = new Map(tree.entries.map((e) => [e.name, e]));
    byName.set(tree, map);
  }
  return map.get(name);
}

/** Start offset of each chunk, plus the total: computed once per chunk list (trees are cached, so lists are shared). */
function offsets(chunks: ChunkRef[]): number[] {
  let o = offsetsOf.get(chunks);
  if (!o) {
    o = [0];
    for (const c of chunks) o.push(o[o.length - 1] + c.size);
    offsetsOf.set(chunks, o);
  }
  return o;
}

/** Index of the chunk holding byte `pos` (pos < total). */
function chunkAt(o: number[], pos: number): number {
  let lo = 0;
  let hi = o.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (o[mid] <= pos) lo = mid; else hi = mid - 1;
  }
  return lo;
}

export function nodeOf(parent: string, e: TreeEntry): Node {
  const path = parent ? `${parent}/${e.name}` : e.name;
  const base = { path, name: e.name, mode: e.mode, mtime: e.mtime };
  if (e.type === 'dir') return { ...base, type: 'dir', size: 0, id: e.tree };
  if (e.type === 'symlink') return { ...base, type: 'symlink', size: Buffer.byteLength(e.target), id: '', target: e.target };
  return { ...base, type: 'file', size: e.size, id: contentId(e.chunks), chunks: e.chunks };
}

export class VersionView {
  readonly ref: string;
  readonly rootNode: Node;

  constructor(readonly loader: ObjectLoader, readonly record: VersionRecord) {
    this.ref = formatRef(record.tree, record.version);
    this.rootNode = { path: '', name: '', type: 'dir', mode: 0o755, mtime: Date.parse(record.time) || 0, size: 0, id: record.root };
  }

  /** `path` is posix, relative to the root ('' for the root), already split into safe names by the caller. */
  async lookup(path: string): Promise<Lookup> {
    if (path === '') return { kind: 'found', node: this.rootNode };
    await this.loader.ensurePath(this.record.root, path);
    const names = path.split('/');
    let tree = await this.loader.tree(this.record.root);
    let at = '';
    for (let i = 0; i < names.length; i++) {
      const e = entryNamed(tree, names[i]);
      if (!e) return { kind: 'absent' };
      const node = nodeOf(at, e);
      if (i === names.length - 1) return { kind: 'found', node };
      if (e.type === 'symlink') return { kind: 'through-symlink', at: node.path };
      if (e.type !== 'dir') return { kind: 'absent' };
      tree = await this.loader.tree(e.tree);
      at = node.path;
    }
    return { kind: 'absent' };
  }

  /** The entries of a directory; with `subtree`, every tree below it is fetched at once (for recursive listings). */
  async list(dir: Node, opts: { subtree?: boolean } = {}): Promise<Node[]> {
    if (opts.subtree) await this.loader.ensurePath(this.record.root, dir.path, true);
    const tree = await this.loader.tree(dir.id);
    return tree.entries.map((e) => nodeOf(dir.path, e));
  }

  /** Bytes [start, start + length) of a file, clipped to its end. */
  async read(file: Node, start: number, length: number): Promise<Buffer> {
    const chunks = file.chunks ?? [];
    const end = Math.min(file.size, start + length);
    if (start >= end) return Buffer.alloc(0);
    const o = offsets(chunks);
    const first = chunkAt(o, start);
    const wanted = this.chunksUnder(file, start, end);
    const plain = await this.loader.plain(wanted.map((c) => c.id), new Map(wanted.map((c) => [c.id, c.size])));
    const whole = plain.length === 1 ? plain[0] : Buffer.concat(plain);
    return whole.subarray(start - o[first], end - o[first]);
  }

  /** Starts bringing the chunks under [start, start + length) into the cache, without waiting: readahead. */
  prefetch(file: Node, start: number, length: number): void {
    const ids = this.chunksUnder(file, start, start + length);
    if (ids.length) this.loader.ensure(ids.map((c) => c.id), new Map(ids.map((c) => [c.id, c.size]))).catch(() => {});
  }

  private chunksUnder(file: Node, start: number, end: number): ChunkRef[] {
    const chunks = file.chunks ?? [];
    end = Math.min(end, file.size);
    if (start >= end) return [];
    const o = offsets(chunks);
    return chunks.slice(chunkAt(o, start), chunkAt(o, end - 1) + 1);
  }

  /** Streams bytes [start, end) of a file in windows, fetching the next window while the current one is written. */
  async *stream(file: Node, start: number, end: number): AsyncGenerator<Buffer> {
    const chunks = file.chunks ?? [];
    if (start >= end) return;
    const o = offsets(chunks);
    const windows: Array<[number, number]> = [];
    for (let s = start; s < end;) {
      const k = chunkAt(o, s);
      let e = Math.min(end, s + STREAM_WINDOW);
      // Windows end on chunk boundaries, so that no chunk is fetched for two of them.
      const kEnd = chunkAt(o, e - 1);
      if (kEnd > k && e < end) e = o[kEnd];
      windows.push([s, e]);
      s = e;
    }
    const ensure = (w: [number, number]) => {
      const ids = this.chunksUnder(file, w[0], w[1]);
      const p = this.loader.ensure(ids.map((c) => c.id), new Map(ids.map((c) => [c.id, c.size])));
      p.catch(() => {});
      return p;
    };
    let ahead = ensure(windows[0]);
    for (let i = 0; i < windows.length; i++) {
      await ahead;
      if (i + 1 < windows.length) ahead = ensure(windows[i + 1]);
      yield await this.read(file, windows[i][0], windows[i][1] - windows[i][0]);
    }
  }
}
