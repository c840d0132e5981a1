// Fetch-once, coalesced access to decoded objects: the engine under `elton mount` and `elton serve`.
//
// Reads arrive in many small pieces (FUSE asks for 128 KiB at a time) and from many clients at
// once. Every object is fetched from the remote at most once per cache lifetime: the store keeps
// what it fetched, and concurrent asks for an object not yet held share one fetch. Decoded chunks
// stay in a small in-memory LRU, so the pieces of one chunk decode once. Every object is verified
// against its id when decoded; a corrupt cached copy is dropped, so the next read fetches it again.

import { corrupt, hasCode } from '../errors.js';
import { decodeTree, type Tree } from '../tree.js';
import type { Store } from '../store/store.js';

const MEMORY_BYTES = 64 * 1024 * 1024;
const ASYNC_DECODE_BYTES = 64 * 1024;

export interface LoaderStats {
  /** Batched fetches the loader started (each one a single store call, however many objects). */
  fetches: number;
  /** Objects asked for while a fetch of them was already under way, and so not fetched again. */
  coalesced: number;
  /** Objects decoded from memory without touching the store. */
  memoryHits: number;
}

/** Bytes-bounded LRU of decoded objects (Map order is use order). */
class Lru {
  private readonly map = new Map<string, Buffer>();
  private bytes = 0;
  constructor(private readonly max: number) {}

  get(id: string): Buffer | undefined {
    const v = this.map.get(id);
    if (v) { this.map.delete(id); this.map.set(id, v); }
    return v;
  }

  set(id: string, v: Buffer): void {
    if (v.length > this.max / 4 || this.map.has(id)) return;
    this.map.set(id, v);
    this.bytes += v.length;
    for (const [k, old] of this.map) {
      if (this.bytes <= this.max) break;
      this.map.delete(k);
      this.bytes -= old.length;
    }
  }

  delete(id: string): void {
    const v = this.map.get(id);
    if (v) { this.map.delete(id); this.bytes -= v.length; }
  }
}

export class ObjectLoader {
  readonly stats: LoaderStats = { fetches: 0, coalesced: 0, memoryHits: 0 };
  private readonly memory = new Lru(MEMORY_BYTES);
  private readonly trees = new Map<string, Tree>();
  /** Objects being brought into the store's cache. */
  private readonly fetching = new Map<string, Promise<void>>();
  /** Objects being read and decoded. */
  private readonly decoding = new Map<string, Promise<Buffer>>();
  private readonly treePaths = new Map<string, Promise<void>>();

  constructor(readonly store: Store) {}

  /** Makes sure the store holds `ids`: one fetch for those nobody is fetching yet, a shared wait for the rest. */
  async ensure(ids: string[], sizes?: Map<string, number>): Promise<void> {
    if (!this.store.prefetch) return;
    const waits: Array<Promise<void>> = [];
    const fresh: string[] = [];
    for (const id of new Set(ids)) {
      const running = this.fetching.get(id);
      if (running) { this.stats.coalesced++; waits.push(running); } else fresh.push(id);
    }
    if (fresh.length) {
      this.stats.fetches++;
      const p = this.store.prefetch(fresh, sizes).finally(() => { for (const id of fresh) if (this.fetching.get(id) === p) this.fetching.delete(id); });
      for (const id of fresh) this.fetching.set(id, p);
      waits.push(p);
    }
    await Promise.all(waits);
  }

  /**
   * Fetches, in one request for those not held, the tree objects on `path` under `root` and the
   * tree of `path` itself; with `subtree`, every tree below it too (a recursive listing is coming).
   */
  async ensurePath(root: string, path: string, subtree = false): Promise<void> {
    if (!this.store.prefetchTrees || (!path && !subtree)) return;
    // Prefixes select a path, its ancestors and everything below it. One level below `path`, a
    // name no entry can have (entry names never hold NUL) selects `path`'s tree and nothing under it.
    const prefixes = subtree ? (path ? [path] : undefined) : [`${path}/\u0000`];
    const key = `${root}:${subtree ? 'subtree' : 'path'}:${path}`;
    let p = this.treePaths.get(key);
    if (!p) {
      p = this.store.prefetchTrees(root, prefixes).finally(() => this.treePaths.delete(key));
      this.treePaths.set(key, p);
    } else this.stats.coalesced++;
    await p;
  }

  async tree(id: string): Promise<Tree> {
    const held = this.trees.get(id);
    if (held) return held;
    const [plain] = await this.plain([id]);
    const tree = decodeTree(plain, id);
    // Trees are small; a bound on their number keeps a long-running mount's memory flat.
    if (this.trees.size >= 100_000) this.trees.delete(this.trees.keys().next().value!);
    this.trees.set(id, tree);
    return tree;
  }

  /** Decoded, verified payloads of `ids`, in order. */
  async plain(ids: string[], sizes?: Map<string, number>): Promise<Buffer[]> {
    const out = new Map<string, Promise<Buffer>>();
    const toRead: string[] = [];
    for (const id of new Set(ids)) {
      const mem = this.memory.get(id);
      if (mem) { this.stats.memoryHits++; out.set(id, Promise.resolve(mem)); continue; }
      const running = this.decoding.get(id);
      if (running) { out.set(id, running); continue; }
      toRead.push(id);
    }
    if (toRead.length) {
      const batch = this.readBatch(toRead, sizes);
      for (const id of toRead) {
        const p = batch.then((m) => m.get(id)!);
        p.catch(() => {});
        this.decoding.set(id, p);
        out.set(id, p.finally(() => { if (this.decoding.get(id) === p) this.decoding.delete(id); }));
      }
    }
    return Promise.all(ids.map((id) => out.get(id)!));
  }

  private async readBatch(ids: string[], sizes?: Map<string, number>): Promise<Map<string, Buffer>> {
    await this.ensure(ids, sizes);
    const found = new Map<string, Buffer>();
    const pending: Array<Promise<void>> = [];
    let bad: { id: string; err: unknown } | undefined;
    await this.store.readObjects(ids, (id, data) => {
      const what = `object ${id}`;
      const done = (plain: Buffer) => { found.set(id, plain); this.memory.set(id, plain); };
      const fail = (err: unknown) => { bad ??= { id, err }; };
      if (data.length >= ASYNC_DECODE_BYTES) {
        pending.push(this.store.codec.decodeAsync(data, what, id, sizes?.get(id)).then((d) => done(d.plain), fail));
        return;
      }
      try { done(this.store.codec.decode(data, what, id).plain); } catch (err) { fail(err); }
    });
    await Promise.all(pending);
    if (bad) await this.refuse(bad.id, bad.err);
    return found;
  }

  /** A cached copy that fails verification is dropped before the error goes out, so that the next read fetches it anew. */
  private async refuse(id: string, err: unknown): Promise<never> {
    if (!hasCode(err, 'E_CORRUPT')) throw err;
    this.memory.delete(id);
    const pack = await this.store.dropCached?.(id).catch(() => undefined);
    throw corrupt(`object ${id} failed verification${pack ? '; the cached copy was dropped' : ''}`, 'read it again to fetch it anew', { object: id });
  }
}
