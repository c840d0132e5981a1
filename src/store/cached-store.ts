// Local stores fronting a remote (a master or a bucket): reads go through the caches, commits are staged locally and pushed.
//
// Two local tiers. `local` (a workspace's .elton/cache, or the user cache's per-remote directory)
// holds the remote's config, the version records read, and what commits staged: data a pending
// commit needs, so it is never trimmed. `shared` (the user cache's objects, when there is one)
// receives every object fetched, for all workspaces, mounts and gateways of the user.
//
// Objects are immutable, so whatever has been fetched once is kept and never fetched again, and
// the cache never needs invalidating. Every object that arrives is verified against its id before
// it is kept. A push asks which objects the remote lacks, sends those, then has the remote issue
// the version: a constant number of requests, whatever the number of files.

import { Kind } from '../object.js';
import { corrupt, hasCode, notFound } from '../errors.js';
import { collectReachable, diffTrees, pathSelected, type TreeDiff } from '../snapshot.js';
import { decodeTree } from '../tree.js';
import type { Reporter } from '../events.js';
import type { VersionRecord } from '../version.js';
import type { FileStore } from './file-store.js';
import type { ObjectSource, ObjectWriter, Remote, Store, VersionDraft } from './store.js';
import { noCacheUse, type CacheUse, type UserCache } from './user-cache.js';

type OnObject = (id: string, data: Buffer) => void | Promise<void>;

/** Objects at least this big are verified on the thread pool while the stream goes on. */
const ASYNC_VERIFY_BYTES = 64 * 1024;
/** Bytes of objects being verified at once: bounds memory whatever the pack size. */
const VERIFY_WINDOW_BYTES = 64 * 1024 * 1024;

export class CachedStore implements Store {
  /** Distinct objects this store fetched, or found in a cache, since it was opened. */
  readonly use: CacheUse = noCacheUse();
  private readonly counted = new Set<string>();
  private readonly shared?: FileStore;

  constructor(readonly local: FileStore, readonly remote: Remote, private readonly userCache?: UserCache) {
    this.shared = userCache?.objects;
  }

  get url(): string { return this.remote.url; }
  get config() { return this.local.config; }
  get codec() { return this.local.codec; }
  get transfer() { return this.remote.transfer; }

  /** What a commit must still write: only the local tier counts, since the shared one may be trimmed before the push. */
  missing(ids: Iterable<string>): Promise<Set<string>> { return this.local.missing(ids); }
  writer(): ObjectWriter { return this.local.writer(); }
  knownIds(): Promise<string[]> { return this.local.knownIds(); }

  /** Reads through both tiers, fetching what neither holds. A pack trimmed away meanwhile by another process is fetched again. */
  async readObjects(ids: Iterable<string>, onObject: OnObject): Promise<void> {
    const delivered = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      const rest = [...new Set(ids)].filter((id) => !delivered.has(id));
      await this.prefetch(rest);
      try {
        await this.readHeld(rest, (id, data) => {
          delivered.add(id);
          this.count('cached', id, data.length);
          return onObject(id, data);
        });
        return;
      } catch (err) {
        if (attempt >= 3 || !hasCode(err, 'E_NOT_FOUND') || !err.details?.pack) throw err;
      }
    }
  }

  /** The ids held by neither tier. */
  private async absent(ids: Iterable<string>): Promise<Set<string>> {
    const notLocal = await this.local.missing(ids);
    return this.shared && notLocal.size ? this.shared.missing(notLocal) : notLocal;
  }

  /** Reads objects the tiers hold, without fetching. */
  private async readHeld(ids: string[], onObject: OnObject): Promise<void> {
    const notLocal = await this.local.missing(ids);
    const inLocal = notLocal.size ? ids.filter((id) => !notLocal.has(id)) : ids;
    if (inLocal.length) await this.local.readObjects(inLocal, onObject);
    if (!notLocal.size) return;
    if (!this.shared) {
      const id = notLocal.values().next().value!;
      throw notFound(`object ${id}`, 'the store is incomplete; push the data again from a workspace that has it', { object: id });
    }
    await this.shared.readObjects(notLocal, onObject);
  }

  /** Where a push reads what it sends: both tiers. */
  private readonly source: ObjectSource = {
    locate: async (id) => (await this.local.locate(id)) ?? this.shared?.locate(id),
    readObjects: (ids, onObject) => this.readHeld([...ids], onObject),
  };

  private count(kind: 'fetched' | 'cached', id: string, bytes: number): void {
    if (this.counted.has(id)) return;
    this.counted.add(id);
    this.use[kind].objects++;
    this.use[kind].bytes += bytes;
  }

  async prefetch(ids: Iterable<string>, sizes?: Map<string, number>, reporter?: Reporter): Promise<void> {
    let absent = await this.absent(ids);
    if (!absent.size) return;
    // Another process (a mount, a gateway, a checkout) may have fetched them since the index was read.
    if (this.shared) {
      await this.shared.refresh();
      absent = await this.shared.missing(absent);
      if (!absent.size) return;
    }
    // In id order for an encrypted store: the order of a walk would show which chunks make one file.
    const list = this.codec.encrypted ? [...absent].sort() : [...absent];
    const total = list.reduce((n, id) => n + (sizes?.get(id) ?? 0), 0);
    let loaded = 0;
    await this.keep((add) => this.remote.readObjects(list, async (id, data) => {
      await add(id, data);
      loaded += sizes?.get(id) ?? 0;
      if (total) reporter?.({ type: 'progress', phase: 'fetch', loaded, total, unit: 'bytes' });
    }, sizes));
  }

  /**
   * Drops the cached copy of an object found corrupt on a later read (a disk fault): the pack
   * holding it leaves the shared cache, and the next read fetches it again. Local-tier data is
   * never dropped: it may be a pending commit's only copy.
   */
  async dropCached(id: string): Promise<string | undefined> {
    if (!this.shared || !(await this.local.missing([id])).size) return undefined;
    return this.shared.dropPackOf(id);
  }

  /**
   * Fetches the trees under `root` that the cache lacks, in one request: the walk stops at the
   * first missing tree on each path. A store of sealed objects cannot walk trees, so for an
   * encrypted one the walk goes on here, fetching one level per request.
   */
  async prefetchTrees(root: string, prefixes?: string[]): Promise<void> {
    const frontier: Array<{ id: string; path: string }> = [];
    let level = new Map<string, string[]>([[root, ['']]]);
    while (level.size) {
      let absent = await this.absent(level.keys());
      if (absent.size && this.codec.encrypted) {
        const fetch = [...absent].sort();
        await this.keep((add) => this.remote.readObjects(fetch, add));
        absent = new Set();
      }
      for (const id of absent) for (const path of level.get(id)!) frontier.push({ id, path });
      const present = [...level.keys()].filter((id) => !absent.has(id));
      const next = new Map<string, string[]>();
      await this.readHeld(present, (id, data) => {
        for (const e of decodeTree(this.codec.decode(data, `tree ${id}`, id).plain, id).entries) {
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
    const writer = (this.shared ?? this.local).writer();
    const verifying = new Set<Promise<void>>();
    let inFlight = 0;
    let failure: unknown;
    // Objects may arrive on several parallel streams; the writer takes them one at a time.
    let queue = Promise.resolve();
    const accept = (id: string, data: Buffer, kind: number) => {
      if (kind !== Kind.chunk && kind !== Kind.tree) throw corrupt(`object ${id} from ${this.url} is not a chunk or a tree`, undefined, { object: id });
      this.count('fetched', id, data.length);
      const added = queue.then(() => writer.add(id, data));
      queue = added.catch(() => {});
      return added;
    };
    try {
      await fetch(async (id, data) => {
        if (failure) throw failure;
        if (data.length < ASYNC_VERIFY_BYTES) {
          await accept(id, data, this.codec.decode(data, `object ${id} from ${this.url}`, id).kind);
          return;
        }
        inFlight += data.length;
        const p: Promise<void> = this.codec.decodeAsync(data, `object ${id} from ${this.url}`, id)
          .then((d: { kind: number }) => accept(id, data, d.kind))
          .catch((err: unknown) => { failure ??= err; })
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
  staleLatest(tree: string): string | undefined { return this.remote.stale?.get(tree); }

  /** Version records are immutable: once read, they are kept in the cache's versions/. */
  async readVersion(tree: string, version: number): Promise<VersionRecord> {
    try {
      return await this.local.readVersion(tree, version);
    } catch (err) {
      if (!hasCode(err, 'E_NOT_FOUND')) throw err;
    }
    // Kept as stored (sealed, in an encrypted store), once it has opened: a damaged record is never
    // kept. Without the key (a backup) nothing can be checked, so nothing is kept.
    const stored = await this.remote.readVersion(tree, version);
    const opened = this.codec.openVersion(stored);
    if (!this.codec.encrypted || this.codec.keys) await this.local.createVersion(stored);
    return opened;
  }

  /**
   * Push: which objects does the remote lack, send them, issue. The remote holds every object of
   * every version it issued, so only what differs from the parent at the same paths is asked
   * about: the changed trees, and the chunks their files do not share with the parent's tree
   * there. Each changed tree may go as a delta against its counterpart.
   */
  async issueVersion(draft: VersionDraft, force: boolean, reporter?: Reporter): Promise<VersionRecord> {
    const changed = await this.changedSinceParent(draft);
    let ids: string[];
    if (changed) {
      ids = [...changed.out];
    } else {
      // No parent, or its trees are not all held here: ask about everything the draft reaches.
      // Through `this`: a subtree kept from the parent may have been trimmed from the shared cache.
      const reach = await collectReachable(this, draft.root);
      ids = [...reach.trees, ...reach.chunks.keys()];
    }
    // In id order, for an encrypted store: the order of a walk would tell it which ids are trees.
    if (this.codec.encrypted) ids.sort();
    const wanted = await this.remote.missing(ids);
    // A delta is made from plaintext, which a store of sealed objects could not rebuild.
    const similar = changed && !this.codec.encrypted ? (id: string) => changed.similar.get(id) : undefined;
    if (wanted.size) await this.remote.send(this.codec.encrypted ? [...wanted].sort() : [...wanted], { ...this.source, similar }, reporter);
    const stored = await this.remote.issueVersion(draft, force, { ids, parentToo: !!changed }, (record) => this.codec.sealVersion(record));
    const opened = this.codec.openVersion(stored);
    await this.local.createVersion(stored);
    return opened;
  }

  /** What the draft reaches beyond its parent at the same paths, from the local tiers only (never a fetch); undefined without a parent or its trees. */
  private async changedSinceParent(draft: VersionDraft): Promise<TreeDiff | undefined> {
    if (draft.parent === null) return undefined;
    try {
      const parent = await this.readVersion(draft.tree, draft.parent);
      const diff: TreeDiff = { out: new Set(), treeIds: new Set(), plainSizes: new Map(), similar: new Map() };
      await diffTrees({ ...this.source, codec: this.codec }, draft.root, parent.root, diff);
      return diff;
    } catch (err) {
      // A write-only host cannot read a parent that others committed: it asks about everything.
      if (!hasCode(err, 'E_NOT_FOUND') && !(this.codec.keys?.writer && hasCode(err, 'E_AUTH'))) throw err;
      return undefined;
    }
  }

  async close(): Promise<void> {
    const t = this.remote.transfer;
    if (this.userCache && (t.requests || this.use.cached.objects)) {
      await this.userCache.record({ time: new Date().toISOString(), remote: this.url, transfer: { ...t }, fetched: { ...this.use.fetched }, cached: { ...this.use.cached } }).catch(() => {});
    }
    await Promise.all([this.local.close(), this.remote.close(), this.userCache?.close()]);
  }
}
