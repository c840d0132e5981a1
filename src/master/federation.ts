// Federation (docs/federation.md): this master's peers, and what it does for trees homed on them.
//
// A tree's home is in its name ("data~tokyo"). For a tree homed on a peer, this master asks the
// home for version records (pinned ones are kept forever; @latest is asked again after a short
// time), forwards commits to it after sending it the objects it lacks, and fetches the objects
// and trees its nodes read from whichever peer holds them, keeping a copy. Every record and object
// a peer sends is verified before it is kept. Requests cross at most one master-to-master hop: a
// request from a peer (it carries X-Elton-Via) is answered from this master's own data, never
// forwarded again, so a misconfiguration cannot make requests go round in a loop.

import { EltonError, EXIT, hasCode, incomplete, notFound, unreachable, usage } from '../errors.js';
import { divergedVersion, sameVersion } from '../version.js';
import { decodeObjectAsync, decodeObject, Kind } from '../object.js';
import { homeOf } from '../ref.js';
import { decodeTree } from '../tree.js';
import { decodeVersion, encodeVersion, type VersionRecord } from '../version.js';
import { diffTrees, pathSelected, type TreeDiff } from '../snapshot.js';
import { HttpStore } from '../remote/http-store.js';
import { VIA_HEADER } from '../remote/wire.js';
import type { FileStore } from '../store/file-store.js';
import type { ClosureRoot, Transfer, VersionDraft } from '../store/store.js';
import type { MasterMeta } from './meta.js';

export interface PeerConfig {
  name: string;
  url: string;
  /** Bearer token this master presents to the peer. */
  token?: string;
  /** PEM file of extra CAs to trust for this peer. */
  caFile?: string;
}

export interface PeerStatus {
  name: string;
  url: string;
  /** Requests this master sent the peer, and their bytes (headers included). */
  out: Transfer;
  /** Requests the peer sent this master, and their bytes. */
  in: { requests: number; bytesIn: number; bytesOut: number };
  /** Objects fetched from the peer and kept here. */
  objectsFetched: number;
  /** Objects sent to the peer (for commits forwarded to it). */
  objectsSent: number;
  /** Commits forwarded to the peer, as their home. */
  versionsForwarded: number;
  /** Records or objects from the peer that failed verification, and were not kept. */
  rejected: number;
  lastError: { time: string; code: string; message: string } | null;
}

export type PeerEvent = { type: 'peer-error'; peer: string; code: string; message: string };

/** A loop between peers, or a request a peer should not have forwarded here. */
export const loop = (message: string, hint: string) => new EltonError('E_LOOP', message, EXIT.remote, hint);

/** After a peer failed to answer, reads skip it for this long (the home is down: answer from what is held, at once). */
const PEER_DOWN_MS = Number(process.env.ELTON_PEER_RETRY_MS ?? 10_000);
/** How long a node's read waits for the home's answer to @latest or a version list before it is answered from what is held. */
const HOME_DEADLINE_MS = Number(process.env.ELTON_PEER_DEADLINE_MS ?? 5_000);
/** Bounds of the in-memory maps of a long-running master. */
const MAX_TRACKED = 10_000;

class Peer {
  readonly store: HttpStore;
  /** Reads skip the peer until then (ms), after it failed to answer. */
  downUntil = 0;
  private checked?: Promise<void>;
  readonly in = { requests: 0, bytesIn: 0, bytesOut: 0 };
  objectsFetched = 0;
  objectsSent = 0;
  versionsForwarded = 0;
  rejected = 0;
  lastError: PeerStatus['lastError'] = null;

  constructor(readonly config: PeerConfig, self: string, storeConfig: FileStore['config']) {
    this.store = HttpStore.withConfig(config.url, {
      token: config.token, caFile: config.caFile, headers: { [VIA_HEADER]: self }, expectName: config.name,
    }, storeConfig);
  }

  get name(): string { return this.config.name; }

  /**
   * Before the first request that carries the token: asks the master at the URL its name, with
   * no token, so that a wrong URL never receives this peer's token.
   */
  ready(): Promise<void> {
    this.checked ??= HttpStore.health(this.config.url, this.config.caFile).then(({ name }) => {
      if (name !== this.config.name) {
        throw new EltonError('E_PEER', `the peer configured as "${this.config.name}" at ${this.store.url} is ${name ? `the master named "${name}"` : 'not a named elton master'}`, EXIT.remote,
          'fix the peer\'s URL in --peer or the peers file: each peer must be the master of that name (docs/federation.md)', { peer: this.config.name, answered: name });
      }
    });
    this.checked.catch(() => { this.checked = undefined; });
    return this.checked;
  }

  get down(): boolean { return Date.now() < this.downUntil; }
}

/** A Map that forgets its oldest entries past MAX_TRACKED. */
function track<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  if (map.size >= MAX_TRACKED) map.delete(map.keys().next().value as K);
  map.set(key, value);
}

interface Latest { version: number; at: number }

export class Federation {
  private readonly peers = new Map<string, Peer>();
  /** When @latest of a tree homed elsewhere was last asked of its home, and the answer. */
  private readonly latest = new Map<string, Latest>();
  private readonly latestInFlight = new Map<string, Promise<Latest>>();
  /** Objects, and roots of tree closures, being fetched from peers: concurrent readers wait for one fetch. */
  private readonly fetching = new Map<string, Promise<unknown>>();
  private readonly fetchingTrees = new Map<string, Promise<unknown>>();
  /** The tree whose version has this root, for the records of trees homed elsewhere served here. */
  private readonly rootTree = new Map<string, string>();
  /** Roots whose whole closure of trees is held here (fetched without prefixes). */
  private readonly wholeRoots = new Map<string, true>();

  constructor(
    readonly name: string,
    peers: PeerConfig[],
    private readonly meta: MasterMeta,
    private readonly store: FileStore,
    private readonly latestTtlMs: number,
    private readonly onEvent: (e: PeerEvent) => void = () => {},
  ) {
    for (const p of peers) {
      if (p.name === name) throw usage(`peer "${p.name}" has this master's own name`, 'each master of a federation needs its own name');
      if (this.peers.has(p.name)) throw usage(`peer "${p.name}" is configured twice`);
      this.peers.set(p.name, new Peer(p, name, store.config));
    }
  }

  /**
   * The peer that is home of `tree`, or undefined when this master is (or the name is local).
   * `via` is the peer a request came from: such a request is never forwarded again.
   */
  homePeer(tree: string, via: string | undefined): Peer | undefined {
    const home = homeOf(tree);
    if (home === undefined || home === this.name) return undefined;
    if (via !== undefined) {
      throw loop(`${tree} belongs to master "${home}", not to "${this.name}", yet peer "${via}" forwarded a request for it here`,
        `check peer "${via}"'s configuration: its --peer ${home}=URL must point at the master named ${home}, not at ${this.name}`);
    }
    const peer = this.peers.get(home);
    // A copy of the tree held here (a backup, a replica) is read as a local tree.
    if (!peer && this.meta.latestVersion(tree)) return undefined;
    if (!peer) {
      throw new EltonError('E_NO_PEER', `${tree} belongs to the master "${home}", which is not a peer of "${this.name}"`, EXIT.notFound,
        `add it to "${this.name}": elton master --peer ${home}=URL (docs/federation.md)`, { home });
    }
    return peer;
  }

  /** The peer that is home of `tree`, if one is (whatever this master holds of it). */
  peerHoming(tree: string): Peer | undefined {
    const home = homeOf(tree);
    return home === undefined ? undefined : this.peers.get(home);
  }

  /** Counts a request a peer sent here. */
  countInbound(via: string, bytesIn: number, bytesOut: number): void {
    const peer = this.peers.get(via);
    if (!peer) return;
    peer.in.requests++;
    peer.in.bytesIn += bytesIn;
    peer.in.bytesOut += bytesOut;
  }

  status(): PeerStatus[] {
    return [...this.peers.values()].map((p) => ({
      name: p.name, url: p.store.url, out: { ...p.store.transfer }, in: { ...p.in },
      objectsFetched: p.objectsFetched, objectsSent: p.objectsSent, versionsForwarded: p.versionsForwarded, rejected: p.rejected, lastError: p.lastError,
    }));
  }

  /**
   * Records a peer's failure for the status and the log, and returns the error to throw: one that
   * names the peer, carries `details.peer` (the node gets a 502), and hints at this master's
   * configuration rather than the node's.
   */
  private failed(peer: Peer, err: unknown): unknown {
    // A peer that lacks something answers not-found: another peer may hold it. Not an error of the peer.
    if (hasCode(err, 'E_NOT_FOUND')) return err;
    const e = err instanceof EltonError ? err : new EltonError('E_REMOTE', err instanceof Error ? err.message : String(err), EXIT.remote, 'see this master\'s log');
    peer.lastError = { time: new Date().toISOString(), code: e.code, message: e.message };
    this.onEvent({ type: 'peer-error', peer: peer.name, code: e.code, message: e.message });
    if (e.code === 'E_UNREACHABLE') {
      peer.downUntil = Date.now() + PEER_DOWN_MS;
      return unreachable(peer.store.url, `the master "${peer.name}" cannot be reached from "${this.name}"`, e,
        `that the master "${peer.name}" is running and that --peer ${peer.name}=URL on "${this.name}" is right`);
    }
    if (e.code === 'E_AUTH') {
      return new EltonError('E_AUTH', `the master "${peer.name}" refused "${this.name}": ${e.message}`, EXIT.auth,
        `give "${this.name}" a valid token for "${peer.name}" (token-file= in the peers file, or ELTON_PEER_TOKEN_${peer.name.toUpperCase().replace(/-/g, '_')}), with the read scope, and write to forward commits; for TLS, ca-file= (docs/federation.md)`, { peer: peer.name });
    }
    if (e.details?.peer) return e;
    return new EltonError(e.code, `the master "${peer.name}": ${e.message}`, e.exitCode, e.hint, { ...e.details, peer: peer.name });
  }

  private rejected(peer: Peer, what: string, err: unknown): EltonError {
    peer.rejected++;
    const e = new EltonError('E_CORRUPT', `peer "${peer.name}" sent ${what} that does not verify (${err instanceof Error ? err.message : err}); it was rejected`, EXIT.corrupt,
      `the peer's copy is damaged: run \`elton verify ${peer.store.url}\``, { peer: peer.name });
    this.failed(peer, e);
    return e;
  }

  // ---- version records of trees homed on a peer

  /** A verified record from the home, kept here forever (records are immutable). */
  private async keep(peer: Peer, record: VersionRecord): Promise<Buffer> {
    track(this.rootTree, record.root, record.tree);
    const bytes = encodeVersion(record);
    await this.meta.cachePeerRecord(record.tree, record.version, bytes);
    return bytes;
  }

  /** One exchange with a peer, after its name was checked: a failure is recorded, and a peer's bad data rejected. */
  private async call<T>(peer: Peer, what: string, ask: () => Promise<T>): Promise<T> {
    try {
      await peer.ready();
      const answer = await ask();
      // An answer after a deadline passed (a slow link, not a dead one) makes the peer usable again.
      peer.downUntil = 0;
      return answer;
    } catch (err) {
      if (hasCode(err, 'E_CORRUPT')) throw this.rejected(peer, what, err);
      throw this.failed(peer, err);
    }
  }

  /** tree@version: from this master if held (as the home sent it, or a copy checked against it), else from the home. */
  async record(peer: Peer, tree: string, version: number): Promise<Buffer> {
    const held = this.meta.readPeerRecord(tree, version) ?? this.meta.readVersionBytes(tree, version);
    if (held) {
      track(this.rootTree, decodeVersion(held, tree, version).root, tree);
      return held;
    }
    return this.fromHome(peer, tree, version);
  }

  private async fromHome(peer: Peer, tree: string, version: number): Promise<Buffer> {
    const held = this.meta.readPeerRecord(tree, version);
    if (held) return held;
    const record = await this.read(peer, `${tree}@${version}`, () => peer.store.readVersion(tree, version));
    return this.keep(peer, record);
  }

  /**
   * A copy of tree@V being put here (a backup, a replica) must be the home's own record: this
   * master never holds a different NAME@V than its home. Refused when it differs, and while the
   * home cannot be asked.
   */
  async checkCopy(peer: Peer, record: VersionRecord): Promise<void> {
    const home = decodeVersion(await this.fromHome(peer, record.tree, record.version), record.tree, record.version);
    if (!sameVersion(home, record)) throw divergedVersion(`the home "${peer.name}"`, record);
  }

  /** Moves the known @latest of a tree forward, never back (an answer in flight may be older than a commit just forwarded). */
  private advance(tree: string, latest: Latest): void {
    const known = this.latest.get(tree);
    if (!known || latest.version >= known.version) track(this.latest, tree, latest);
  }

  /**
   * @latest, asked of the home at most once per TTL. When the home does not answer within
   * HOME_DEADLINE_MS (or failed to, moments ago), the newest version held here is returned with
   * `stale` saying why; without any, the failure is thrown.
   */
  async latestRecord(peer: Peer, tree: string): Promise<{ version: number; bytes: Buffer; stale?: string } | undefined> {
    const known = this.latest.get(tree);
    let latest: Latest;
    if (known && Date.now() - known.at < this.latestTtlMs) {
      latest = known;
    } else {
      try {
        latest = await this.askLatest(peer, tree);
      } catch (err) {
        if (!hasCode(err, 'E_UNREACHABLE')) throw err;
        const newest = this.newestHeld(tree);
        if (!newest) throw err;
        return { ...newest, stale: `the home of ${tree}, master "${peer.name}", could not be reached from "${this.name}"; @latest is the newest version "${this.name}" holds, @${newest.version}` };
      }
    }
    if (!latest.version) return undefined;
    return { version: latest.version, bytes: await this.record(peer, tree, latest.version) };
  }

  private askLatest(peer: Peer, tree: string): Promise<Latest> {
    let asking = this.latestInFlight.get(tree);
    if (!asking) {
      asking = this.read(peer, `${tree}@latest`, async () => {
        const version = await peer.store.latestVersion(tree);
        if (version) await this.keep(peer, await peer.store.readVersion(tree, version));
        return { version, at: Date.now() };
      }).then((l) => {
        // Names that do not exist are not remembered: any name can be asked for.
        if (l.version) this.advance(tree, l);
        return l;
      }).finally(() => this.latestInFlight.delete(tree));
      this.latestInFlight.set(tree, asking);
    }
    return asking;
  }

  /**
   * A read on a node's behalf: at once E_UNREACHABLE while the peer is known to be down, and
   * E_UNREACHABLE after HOME_DEADLINE_MS (the exchange goes on, and what it brings is kept).
   */
  private async read<T>(peer: Peer, what: string, ask: () => Promise<T>): Promise<T> {
    const down = () => unreachable(peer.store.url, `the master "${peer.name}" did not answer "${this.name}"${peer.lastError ? ` (${peer.lastError.code})` : ''}`, undefined,
      `that the master "${peer.name}" is running and reachable from "${this.name}"`);
    if (peer.down) throw down();
    const exchange = this.call(peer, what, ask);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        peer.downUntil = Date.now() + PEER_DOWN_MS;
        reject(down());
      }, HOME_DEADLINE_MS);
    });
    exchange.catch(() => {});
    try {
      return await Promise.race([exchange, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The newest version held here whose root is held too (a version this master can serve), else the newest record. */
  private newestHeld(tree: string): { version: number; bytes: Buffer } | undefined {
    const all = [...this.meta.listVersionBytes(tree), ...this.meta.listPeerRecords(tree)].sort((a, b) => b.version - a.version);
    return all.find((r) => this.meta.has(decodeVersion(r.bytes, tree, r.version).root)) ?? all[0];
  }

  /** Every record of the tree, from the home (and kept); when the home does not answer, those held here. */
  async list(peer: Peer, tree: string): Promise<Array<{ version: number; bytes: Buffer }>> {
    try {
      const versions = await this.read(peer, `the versions of ${tree}`, () => peer.store.listVersions(tree));
      const out: Array<{ version: number; bytes: Buffer }> = [];
      for (const v of versions) out.push({ version: v, bytes: await this.keep(peer, await peer.store.readVersion(tree, v)) });
      if (out.length) this.advance(tree, { version: out[out.length - 1].version, at: Date.now() });
      return out;
    } catch (err) {
      if (!hasCode(err, 'E_UNREACHABLE')) throw err;
      const byVersion = new Map<number, Buffer>();
      for (const r of [...this.meta.listVersionBytes(tree), ...this.meta.listPeerRecords(tree)]) byVersion.set(r.version, r.bytes);
      if (!byVersion.size) throw err;
      return [...byVersion].sort((a, b) => a[0] - b[0]).map(([version, bytes]) => ({ version, bytes }));
    }
  }

  // ---- commits to trees homed on a peer

  /**
   * Has the home issue a version for `draft`: first sends the home, in one pack, the objects it
   * lacks among those this master holds beyond the parent version, then asks for the version.
   */
  async forwardIssue(peer: Peer, draft: VersionDraft, force: boolean): Promise<{ record: VersionRecord; bytes: Buffer }> {
    const diff = await this.beyondParent(peer, draft);
    const candidates = diff ? [...diff.out] : await this.reachableHere(draft.root);
    try {
      await peer.ready();
      const wanted = await peer.store.missing(candidates);
      const notHere = [...wanted].filter((id) => !this.meta.has(id));
      if (notHere.length) throw incomplete('the master', `this version of ${draft.tree} (neither "${this.name}" nor its home "${peer.name}" holds them)`, notHere);
      if (wanted.size) {
        await peer.store.send([...wanted], {
          locate: (id) => this.store.locate(id),
          readObjects: (ids, onObject) => this.store.readObjects(ids, onObject),
          similar: (id) => diff?.similar.get(id),
        });
        peer.objectsSent += wanted.size;
      }
      const record = await peer.store.issueVersion(draft, force);
      peer.versionsForwarded++;
      const bytes = await this.keep(peer, record);
      this.advance(draft.tree, { version: record.version, at: Date.now() });
      return { record, bytes };
    } catch (err) {
      if (hasCode(err, 'E_INCOMPLETE') || hasCode(err, 'E_CONFLICT')) throw err;
      throw this.failed(peer, err);
    }
  }

  /** What the draft reaches beyond its parent at the same paths, from this master's own trees; undefined if it lacks them. */
  private async beyondParent(peer: Peer, draft: VersionDraft): Promise<TreeDiff | undefined> {
    if (draft.parent === null) return undefined;
    const parent = decodeVersion(await this.record(peer, draft.tree, draft.parent), draft.tree, draft.parent);
    const diff: TreeDiff = { out: new Set(), treeIds: new Set(), plainSizes: new Map(), similar: new Map() };
    try {
      await diffTrees(this.store, draft.root, parent.root, diff);
      return diff;
    } catch (err) {
      if (!hasCode(err, 'E_NOT_FOUND')) throw err;
      return undefined;
    }
  }

  /** Every object under `root` held here, and the ids of the subtrees not held here (the home may hold them). */
  private async reachableHere(root: string): Promise<string[]> {
    const out = new Set<string>();
    let level = [root];
    while (level.length) {
      const next: string[] = [];
      for (const id of level) out.add(id);
      await this.store.readObjects(level.filter((id) => this.meta.has(id)), (id, data) => {
        for (const e of decodeTree(decodeObject(data, `tree ${id}`, id).plain, id).entries) {
          if (e.type === 'dir') { if (!out.has(e.tree)) next.push(e.tree); }
          else if (e.type === 'file') for (const c of e.chunks) out.add(c.id);
        }
      });
      level = [...new Set(next)];
    }
    return [...out];
  }

  // ---- objects this master's nodes read, held by peers

  /**
   * Makes every id held here, fetching the absent ones from the peers (in the order configured,
   * each asked only for what is still absent) and keeping them. Throws not-found for ids no peer
   * holds, or the rejection of an object a peer sent damaged.
   */
  async ensureHeld(ids: Iterable<string>): Promise<void> {
    const absent = [...new Set(ids)].filter((id) => !this.meta.has(id));
    await once(this.fetching, absent, (id) => id, (mine) => this.fetch(mine));
    const still = [...new Set(ids)].filter((id) => !this.meta.has(id));
    if (still.length) throw notFound(`object ${still[0]}${still.length > 1 ? ` and ${still.length - 1} more` : ''} on "${this.name}" or its peers`, 'the data of this version is not at any master reachable from here', { object: still[0] });
  }

  private async fetch(ids: string[]): Promise<void> {
    let wanted = ids;
    await this.askPeers(() => !wanted.length, async (peer) => {
      const got = await this.fetchFrom(peer, (onObject) => peer.store.readAvailable(wanted, onObject));
      wanted = wanted.filter((id) => !got.has(id));
    });
  }

  /**
   * Asks the peers, in the order configured, until `done`. A peer that fails (or lacks what was
   * asked: not-found) is passed over; its failure is thrown only if no later peer made up for it.
   */
  private async askPeers(done: () => boolean, ask: (peer: Peer) => Promise<void>): Promise<void> {
    let firstFailure: unknown;
    for (const peer of this.peers.values()) {
      if (done()) return;
      try {
        await ask(peer);
      } catch (err) {
        firstFailure ??= err;
      }
    }
    if (!done() && firstFailure) throw firstFailure;
  }

  /** Runs one fetch from `peer`, verifying every object before keeping it; returns the ids kept. */
  private async fetchFrom(peer: Peer, request: (onObject: (id: string, data: Buffer) => Promise<void>) => Promise<unknown>, treesOnly = false): Promise<Set<string>> {
    if (peer.down) {
      throw unreachable(peer.store.url, `the master "${peer.name}" did not answer "${this.name}" moments ago${peer.lastError ? ` (${peer.lastError.code})` : ''}`, undefined,
        `that the master "${peer.name}" is running and reachable from "${this.name}"; "${this.name}" asks it again ${Math.ceil(PEER_DOWN_MS / 1000)} s after its last failure`);
    }
    try {
      await peer.ready();
    } catch (err) {
      throw this.failed(peer, err);
    }
    const writer = this.store.writer();
    const kept = new Set<string>();
    let bad: EltonError | undefined;
    try {
      await request(async (id, data) => {
        try {
          const { kind } = data.length >= 64 * 1024 ? await decodeObjectAsync(data, `object ${id}`, id) : decodeObject(data, `object ${id}`, id);
          // A closure brings trees only: a peer cannot use one to make this master store anything else.
          if (kind !== Kind.tree && (treesOnly || kind !== Kind.chunk)) throw new Error(treesOnly ? 'not a tree, in a closure of trees' : 'not a chunk or a tree');
        } catch (err) {
          bad ??= this.rejected(peer, `object ${id}`, err);
          return;
        }
        if (kept.has(id) || this.meta.has(id)) return;
        kept.add(id);
        await writer.add(id, data);
      });
    } catch (err) {
      await writer.finish();
      throw this.failed(peer, err);
    }
    await writer.finish();
    peer.objectsFetched += kept.size;
    if (bad) throw bad;
    return kept;
  }

  /**
   * Makes held every tree under these roots (along the selected paths) that a closure walk
   * reaches: the trees absent at one depth are fetched with everything beneath them, in one
   * request to a peer, so a cold walk costs one round trip between masters. A version's root
   * goes with the root of an older version held here, so only the trees that changed come.
   */
  async ensureTrees(roots: ClosureRoot[], prefixes: string[] | undefined): Promise<void> {
    if (roots.every((r) => this.whole(r.id))) return;
    let level = roots;
    while (level.length) {
      const absent = level.filter((r) => !this.meta.has(r.id));
      if (absent.length) await this.fetchTrees(absent, prefixes);
      const next: Array<{ id: string; path: string }> = [];
      const paths = new Map<string, string[]>();
      for (const r of level) paths.set(r.id, [...(paths.get(r.id) ?? []), r.path]);
      await this.store.readObjects(paths.keys(), (id, data) => {
        for (const e of decodeTree(decodeObject(data, `tree ${id}`, id).plain, id).entries) {
          if (e.type !== 'dir') continue;
          for (const dir of paths.get(id)!) {
            const path = dir ? `${dir}/${e.name}` : e.name;
            if (pathSelected(path, prefixes)) next.push({ id: e.tree, path });
          }
        }
      });
      level = next;
    }
    if (!prefixes) for (const r of roots) track(this.wholeRoots, r.id, true);
  }

  /** Whether every tree beneath this one is held here: walked whole before, or proven complete by a version issued or copied here. */
  private whole(treeId: string): boolean {
    return this.wholeRoots.has(treeId) || this.meta.isComplete(treeId);
  }

  /**
   * For a version's root: the root of another version of its tree held here, so that the peer
   * sends only the trees that differ from it (the newest such version; null without one).
   */
  private baseFor(root: ClosureRoot): string | null {
    const tree = root.path === '' ? this.rootTree.get(root.id) : undefined;
    if (!tree) return null;
    const held = [...this.meta.listPeerRecords(tree), ...this.meta.listVersionBytes(tree)]
      .map((r) => decodeVersion(r.bytes, tree, r.version))
      .filter((r) => r.root !== root.id && this.whole(r.root))
      .sort((a, b) => b.version - a.version);
    return held[0]?.root ?? null;
  }

  private async fetchTrees(roots: ClosureRoot[], prefixes: string[] | undefined): Promise<void> {
    await once(this.fetchingTrees, roots, (r) => r.id, (mine) => this.fetchTreesOnce(mine, prefixes));
  }

  private async fetchTreesOnce(roots: ClosureRoot[], prefixes: string[] | undefined): Promise<void> {
    await this.askPeers(() => roots.every((r) => this.meta.has(r.id)), async (peer) => {
      const wanted = roots.filter((r) => !this.meta.has(r.id)).map((r) => ({ id: r.id, path: r.path, base: this.baseFor(r) }));
      await this.fetchFrom(peer, (onObject) => peer.store.readTrees(wanted, prefixes, onObject), true);
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.peers.values()].map((p) => p.store.close()));
  }
}

/**
 * Runs `fetch` for the items no one is fetching yet, and waits for those others are fetching
 * (`inFlight`, by key: each entry settles to the fetch's error, or undefined). Every caller gets
 * the failure of a fetch it waited on, so a waiter reports why, not just what is missing.
 */
async function once<T>(inFlight: Map<string, Promise<unknown>>, items: T[], key: (item: T) => string, fetch: (mine: T[]) => Promise<void>): Promise<void> {
  const waits: Promise<unknown>[] = [];
  const mine: T[] = [];
  for (const item of items) {
    const running = inFlight.get(key(item));
    if (running) waits.push(running);
    else mine.push(item);
  }
  if (mine.length) {
    const outcome = fetch(mine).then(() => undefined, (err: unknown) => err ?? new Error('fetch failed'));
    for (const item of mine) inFlight.set(key(item), outcome);
    void outcome.then(() => { for (const item of mine) if (inFlight.get(key(item)) === outcome) inFlight.delete(key(item)); });
    waits.push(outcome);
  }
  const failure = (await Promise.all(waits)).find((e) => e !== undefined);
  if (failure) throw failure;
}
