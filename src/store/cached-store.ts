// A local file store fronting a remote (a master or a bucket): reads go through the cache, commits are staged locally and pushed.
//
// Objects are immutable, so whatever has been fetched once is kept and never fetched again, and
// the cache never needs invalidating. Every object that arrives is verified against its id before
// it is kept. A push asks which objects the remote lacks, sends those, then has the remote issue
// the version: a constant number of requests, whatever the number of files.

import { decodeObject, decodeObjectAsync, Kind } from '../object.js';
import { corrupt, hasCode } from '../errors.js';
import { collectReachable, pathSelected } from '../snapshot.js';
import { decodeTree } from '../tree.js';
import type { Reporter } from '../events.js';
import type { VersionRecord } from '../version.js';
import type { FileStore } from './file-store.js';
import type { ObjectWriter, Remote, Store, VersionDraft } from './store.js';

/** Objects at least this big are verified on the thread pool while the stream goes on. */
const ASYNC_VERIFY_BYTES = 64 * 1024;
/** Bytes of objects being verified at once: bounds memory whatever the pack size. */
const VERIFY_WINDOW_BYTES = 64 * 1024 * 1024;

export class CachedStore implements Store {
  constructor(readonly local: FileStore, readonly remote: Remote) {}

  get url(): string { return this.remote.url; }
  get config() { return this.local.config; }
  get transfer() { return this.remote.transfer; }

  missing(ids: Iterable<string>): Promise<Set<string>> { return this.local.missing(ids); }
  writer(): ObjectWriter { return this.local.writer(); }
  knownIds(): Promise<string[]> { return this.local.knownIds(); }

  async readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void> {
    const list = [...new Set(ids)];
    await this.prefetch(list);
    await this.local.readObjects(list, onObject);
  }

  async prefetch(ids: Iterable<string>, sizes?: Map<string, number>, reporter?: Reporter): Promise<void> {
    const absent = [...(await this.local.missing(ids))];
    if (!absent.length) return;
    const total = absent.reduce((n, id) => n + (sizes?.get(id) ?? 0), 0);
    let loaded = 0;
    await this.keep((add) => this.remote.readObjects(absent, async (id, data) => {
      await add(id, data);
      loaded += sizes?.get(id) ?? 0;
      if (total) reporter?.({ type: 'progress', phase: 'fetch', loaded, total, unit: 'bytes' });
    }, sizes));
  }

  /** Fetches the trees under `root` that the cache lacks, in one request: the walk stops at the first missing tree on each path. */
  async prefetchTrees(root: string, prefixes?: string[]): Promise<void> {
    const frontier: Array<{ id: string; path: string }> = [];
    let level = new Map<string, string[]>([[root, ['']]]);
    while (level.size) {
      const absent = await this.local.missing(level.keys());
      for (const id of absent) for (const path of level.get(id)!) frontier.push({ id, path });
      const present = [...level.keys()].filter((id) => !absent.has(id));
      const next = new Map<string, string[]>();
      await this.local.readObjects(present, (id, data) => {
        for (const e of decodeTree(decodeObject(data, `tree ${id}`, id).plain, id).entries) {
          if (e.type !== 'dir') continue;
          for (const dir of level.get(id)!) {
            const path = dir ? `${dir}/${e.name}` : e.name;
            if (!pathSelected(path, prefixes)) continue;
            const paths = next.get(e.tree) ?? [];
            paths.push(path);
            next.set(e.tree, paths);
          }
        }
      });
      level = next;
    }
    if (frontier.length) await this.keep((add) => this.remote.readTrees(frontier, prefixes, add));
  }

  /**
   * Runs a fetch that delivers objects to `add`, verifying each against its id before it enters
   * the cache. Big objects are verified on the thread pool while the stream continues; the
   * bytes in verification are bounded.
   */
  private async keep(fetch: (add: (id: string, data: Buffer) => Promise<void>) => Promise<void>): Promise<void> {
    const writer = this.local.writer();
    const verifying = new Set<Promise<void>>();
    let inFlight = 0;
    let failure: unknown;
    // Objects may arrive on several parallel streams; the writer takes them one at a time.
    let queue = Promise.resolve();
    const accept = (id: string, data: Buffer, kind: number) => {
      if (kind !== Kind.chunk && kind !== Kind.tree) throw corrupt(`object ${id} from ${this.url} is not a chunk or a tree`, undefined, { object: id });
      const added = queue.then(() => writer.add(id, data));
      queue = added.catch(() => {});
      return added;
    };
    try {
      await fetch(async (id, data) => {
        if (failure) throw failure;
        if (data.length < ASYNC_VERIFY_BYTES) {
          await accept(id, data, decodeObject(data, `object ${id} from ${this.url}`, id).kind);
          return;
        }
        inFlight += data.length;
        const p: Promise<void> = decodeObjectAsync(data, `object ${id} from ${this.url}`, id)
          .then((d) => accept(id, data, d.kind))
          .catch((err) => { failure ??= err; })
          .finally(() => { inFlight -= data.length; verifying.delete(p); });
        verifying.add(p);
        while (inFlight > VERIFY_WINDOW_BYTES && verifying.size) await Promise.race(verifying);
      });
      await Promise.all(verifying);
      if (failure) throw failure;
      await writer.finish();
    } catch (err) {
      // What was verified is kept: a re-run fetches only the rest.
      await Promise.all(verifying);
      await writer.finish().catch(() => writer.abort());
      throw err;
    }
  }

  async listTrees(): Promise<string[]> { return this.remote.listTrees(); }
  async listVersions(tree: string): Promise<number[]> { return this.remote.listVersions(tree); }
  async latestVersion(tree: string): Promise<number> { return this.remote.latestVersion(tree); }

  /** Version records are immutable: once read, they are kept in the cache's versions/. */
  async readVersion(tree: string, version: number): Promise<VersionRecord> {
    try {
      return await this.local.readVersion(tree, version);
    } catch (err) {
      if (!hasCode(err, 'E_NOT_FOUND')) throw err;
    }
    const record = await this.remote.readVersion(tree, version);
    await this.local.createVersion(record);
    return record;
  }

  /** Push: which objects does the remote lack, send them, issue. */
  async issueVersion(draft: VersionDraft, force: boolean, reporter?: Reporter): Promise<VersionRecord> {
    // The remote holds every object of every version it issued, so the parent's subtrees need no asking.
    let skip = new Set<string>();
    if (draft.parent !== null) {
      try {
        const parent = await this.readVersion(draft.tree, draft.parent);
        skip = (await collectReachable(this.local, parent.root)).trees;
      } catch { /* the parent's trees are not all cached: ask about everything */ }
    }
    const reach = await collectReachable(this.local, draft.root, skip);
    const ids = [...reach.trees, ...reach.chunks.keys()];
    const wanted = await this.remote.missing(ids);
    if (wanted.size) await this.remote.send([...wanted], this.local, reporter);
    const record = await this.remote.issueVersion(draft, force, { ids, parentToo: skip.size > 0 });
    await this.local.createVersion(record);
    return record;
  }

  async close(): Promise<void> {
    await Promise.all([this.local.close(), this.remote.close()]);
  }
}
