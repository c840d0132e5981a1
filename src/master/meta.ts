// The master's metadata in LMDB: version records and latest numbers, the object index, and which trees are known complete.
//
// Everything that must change together changes in one LMDB transaction: a version record, its
// tree's latest number and the trees proven complete by the issuing check. LMDB serializes writers,
// so concurrent commits to one tree get distinct, consecutive numbers.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { decodeIndex, type PackEntry } from '../store/pack.js';
import type { Location, ObjectIndex } from '../store/file-store.js';
import { conflict, staleParent, usage } from '../errors.js';
import { decodeVersion, divergedVersion, encodeVersion, sameVersion, type VersionRecord } from '../version.js';
import type { PutOutcome, VersionDraft } from '../store/store.js';

const LOCATION_SIZE = 32 + 8 + 4;

export class MasterMeta implements ObjectIndex {
  private constructor(
    private readonly root: RootDatabase,
    private readonly objects: Database<Buffer, Buffer>,
    private readonly packs: Database<boolean, string>,
    private readonly versions: Database<Buffer, [string, number]>,
    private readonly latest: Database<number, string>,
    private readonly complete: Database<boolean, Buffer>,
    private readonly queue: Database<number, [string, number]>,
    private readonly settings: Database<string, string>,
    private readonly peerRecords: Database<Buffer, [string, number]>,
  ) {}

  /** When set, every version recorded is queued for replication in the same transaction. */
  replicating = false;

  static open(dir: string): MasterMeta {
    const root = open({ path: dir, maxDbs: 12 });
    return new MasterMeta(
      root,
      root.openDB<Buffer, Buffer>({ name: 'objects', keyEncoding: 'binary', encoding: 'binary' }),
      root.openDB<boolean, string>({ name: 'packs' }),
      root.openDB<Buffer, [string, number]>({ name: 'versions', encoding: 'binary' }),
      root.openDB<number, string>({ name: 'latest' }),
      root.openDB<boolean, Buffer>({ name: 'complete', keyEncoding: 'binary' }),
      root.openDB<number, [string, number]>({ name: 'replication-queue' }),
      root.openDB<string, string>({ name: 'settings' }),
      root.openDB<Buffer, [string, number]>({ name: 'peer-versions', encoding: 'binary' }),
    );
  }

  // ---- the object index

  get(id: string): Location | undefined {
    const v = this.objects.get(Buffer.from(id, 'hex'));
    if (!v) return undefined;
    return { pack: v.toString('hex', 0, 32), offset: Number(v.readBigUInt64BE(32)), length: v.readUInt32BE(40) };
  }

  has(id: string): boolean {
    return this.objects.doesExist(Buffer.from(id, 'hex'));
  }

  /** Indexes a published pack in one transaction; the pack's marker says it needs no re-indexing at start. */
  async add(pack: string, entries: PackEntry[]): Promise<void> {
    const packId = Buffer.from(pack, 'hex');
    this.root.transactionSync(() => {
      for (const e of entries) {
        const key = Buffer.from(e.id, 'hex');
        if (this.objects.doesExist(key)) continue;
        const v = Buffer.allocUnsafe(LOCATION_SIZE);
        packId.copy(v, 0);
        v.writeBigUInt64BE(BigInt(e.offset), 32);
        v.writeUInt32BE(e.length, 40);
        this.objects.putSync(key, v);
      }
      this.packs.putSync(pack, true);
    });
    await this.root.flushed;
  }

  /**
   * Indexes packs whose .idx is on disk but whose entries never reached LMDB (the master was
   * killed between the two). Returns how many packs it indexed.
   */
  async reindex(storeRoot: string): Promise<number> {
    let n = 0;
    for (const name of await fsp.readdir(join(storeRoot, 'packs'))) {
      if (!name.endsWith('.idx')) continue;
      const pack = name.slice(0, -4);
      if (this.packs.get(pack)) continue;
      await this.add(pack, decodeIndex(await fsp.readFile(join(storeRoot, 'packs', name)), name));
      n++;
    }
    return n;
  }

  /**
   * Up to `limit` held ids (raw 32-byte keys, in key order) after `after` (exclusive; undefined:
   * from the first). Callers page through the index with it, one short read transaction a page.
   */
  /** Every object id held, hex (a copy of an encrypted repository compares these: nothing walks its trees). */
  ids(): string[] {
    const out: string[] = [];
    for (const key of this.objects.getKeys()) out.push(Buffer.from(key).toString('hex'));
    return out;
  }

  idsAfter(after: Buffer | undefined, limit: number): Buffer[] {
    const out: Buffer[] = [];
    for (const key of this.objects.getKeys(after ? { start: after, limit: limit + 1 } : { limit })) {
      if (after && after.equals(key)) continue;
      // Copied: LMDB may hand out keys in a buffer it reuses.
      out.push(Buffer.from(key));
      if (out.length >= limit) break;
    }
    return out;
  }

  // ---- trees proven complete (every object beneath them is held)

  isComplete(treeId: string): boolean {
    return this.complete.doesExist(Buffer.from(treeId, 'hex'));
  }

  // ---- versions

  listTrees(): string[] {
    return [...this.latest.getKeys()] as string[];
  }

  latestVersion(tree: string): number {
    return this.latest.get(tree) ?? 0;
  }

  readVersionBytes(tree: string, version: number): Buffer | undefined {
    return this.versions.get([tree, version]);
  }

  readVersion(tree: string, version: number): VersionRecord | undefined {
    const bytes = this.readVersionBytes(tree, version);
    return bytes ? decodeVersion(bytes, tree, version) : undefined;
  }

  /** Every record of a tree, oldest first. */
  listVersionBytes(tree: string): Array<{ version: number; bytes: Buffer }> {
    const out: Array<{ version: number; bytes: Buffer }> = [];
    for (const { key, value } of this.versions.getRange({ start: [tree, 0], end: [tree, Number.MAX_SAFE_INTEGER] })) {
      out.push({ version: key[1], bytes: value });
    }
    return out;
  }

  /**
   * Issues tree@(latest + 1) in one transaction, and records `completeTrees` (checked by the
   * caller before the transaction: objects are never removed, so the check stays true).
   */
  /** `expect`: the only number the version may take (a sealed record binds it); another is E_CONFLICT, reason "number". */
  async issue(draft: VersionDraft, force: boolean, completeTrees: Iterable<string>, expect?: number): Promise<{ record: VersionRecord; bytes: Buffer }> {
    const result = this.root.transactionSync(() => {
      const latest = this.latest.get(draft.tree) ?? 0;
      if (draft.parent !== null && (draft.parent < 1 || draft.parent > latest)) {
        throw usage(`parent @${draft.parent} of ${draft.tree} does not exist (latest is @${latest})`, 'commit from a workspace checked out from this master');
      }
      if (latest !== (draft.parent ?? 0) && !force) throw staleParent(draft.tree, latest, draft.parent);
      if (expect !== undefined && expect !== latest + 1) {
        throw conflict(`${draft.tree}@${expect} was sealed for a number the master cannot give (the next is @${latest + 1})`, 'commit again: elton seals it for the next number', { tree: draft.tree, latest, reason: 'number' });
      }
      const record: VersionRecord = { ...draft, version: latest + 1 };
      const bytes = encodeVersion(record);
      this.versions.putSync([draft.tree, record.version], bytes);
      this.latest.putSync(draft.tree, record.version);
      for (const t of completeTrees) this.complete.putSync(Buffer.from(t, 'hex'), true);
      if (this.replicating) this.queue.putSync([draft.tree, record.version], Date.now());
      return { record, bytes };
    });
    await this.root.flushed;
    return result;
  }

  /**
   * Records a copied version under its own number (a backup), with the trees the caller proved
   * complete; the tree's latest moves up to it if it is newer.
   */
  async putCopied(record: VersionRecord, completeTrees: Iterable<string>): Promise<PutOutcome> {
    const outcome = this.root.transactionSync((): PutOutcome => {
      const there = this.versions.get([record.tree, record.version]);
      if (there) {
        if (sameVersion(decodeVersion(there, record.tree, record.version), record)) return 'present';
        throw divergedVersion('the master', record);
      }
      this.versions.putSync([record.tree, record.version], encodeVersion(record));
      if ((this.latest.get(record.tree) ?? 0) < record.version) this.latest.putSync(record.tree, record.version);
      for (const t of completeTrees) this.complete.putSync(Buffer.from(t, 'hex'), true);
      if (this.replicating) this.queue.putSync([record.tree, record.version], Date.now());
      return 'created';
    });
    await this.root.flushed;
    return outcome;
  }

  // ---- federation: this master's name, and the records of trees homed elsewhere, cached

  /**
   * This master's name in a federation, recorded on first use: trees homed here carry it, so
   * it can never change. Returns the recorded name (`wanted` when there was none).
   */
  async claimName(wanted: string | undefined): Promise<string | undefined> {
    const recorded = this.settings.get('name');
    if (recorded || !wanted) return recorded;
    await this.settings.put('name', wanted);
    return wanted;
  }

  /** A record of a tree homed on another master, as that master sent it (verified by the caller). */
  async cachePeerRecord(tree: string, version: number, bytes: Buffer): Promise<void> {
    if (this.peerRecords.doesExist([tree, version])) return;
    await this.peerRecords.put([tree, version], bytes);
  }

  /** Every cached record of a tree homed elsewhere, oldest first. */
  listPeerRecords(tree: string): Array<{ version: number; bytes: Buffer }> {
    const out: Array<{ version: number; bytes: Buffer }> = [];
    for (const { key, value } of this.peerRecords.getRange({ start: [tree, 0], end: [tree, Number.MAX_SAFE_INTEGER] })) {
      out.push({ version: key[1], bytes: value });
    }
    return out;
  }

  readPeerRecord(tree: string, version: number): Buffer | undefined {
    return this.peerRecords.get([tree, version]);
  }

  // ---- the replication queue: versions recorded here and not yet known to be at the replica

  /** Every queued version, oldest key first, with the time it was queued (ms). */
  queued(): Array<{ tree: string; version: number; since: number }> {
    const out: Array<{ tree: string; version: number; since: number }> = [];
    for (const { key, value } of this.queue.getRange()) out.push({ tree: key[0], version: key[1], since: value });
    return out;
  }

  async dequeue(entries: Array<{ tree: string; version: number }>): Promise<void> {
    if (!entries.length) return;
    this.root.transactionSync(() => { for (const e of entries) this.queue.removeSync([e.tree, e.version]); });
    await this.root.flushed;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
