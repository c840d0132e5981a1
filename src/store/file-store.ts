// The directory store behind file:// remotes and the embedded default: tar packs, pack indexes, version files.
//
// Layout (see docs/format.md):
//   config                    store config record
//   packs/<sha256>.tar        objects, one tar entry each
//   packs/<sha256>.idx        index of that pack
//   versions/<tree>/<v>       version records, created exclusively
//   tmp/                      packs being written
// A pack becomes visible only when its index is renamed into place, after both are fsynced.
// Several processes may share a store: packs have unique names and versions are created with link(2).

import { promises as fsp, type Stats } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createFileExclusive, fsyncDir, writeFileAtomic } from '../lib/atomic.js';
import { acquireLock, isAlive } from '../lib/lock.js';
import { sha256 } from '../lib/hash.js';
import { conflict, corrupt, exists, formatError, incomplete, ioError, isErrno, notFound, staleParent } from '../errors.js';
import { decodeObject, encodeRecord, Kind } from '../object.js';
import { decodeVersion, divergedVersion, encodeVersion, sameVersion, type VersionRecord } from '../version.js';
import { isTreeName } from '../ref.js';
import { encryptedCodec, lockedCodec, plainCodec, type ObjectCodec } from '../codec.js';
import { encodeKeyring, repoKeys, type Keyring, type RepoKeys } from '../crypto/keyring.js';

const KEYRING_FILE = 'keyring';

/** A keyring's tag, in every store that has no ETag of its own (its ETag on a master): what a write names to replace it. */
export const keyringTag = (data: Buffer) => sha256(data).toString('hex');
import { validateChunkerParams } from '../chunker.js';
import { PackFileWriter, decodeIndex, encodeIndex, type PackEntry } from './pack.js';
import { noTransfer, STORE_FORMAT, type CopiedContents, type IdLister, type KeyringHolder, type ObjectSource, type ObjectWriter, type PutOutcome, type Store, type StoreConfig, type VersionDraft } from './store.js';
import type { Reporter } from '../events.js';

export interface Location { pack: string; offset: number; length: number }

/**
 * Where each object lives. The default reads every pack index into memory on first use; the
 * master keeps it in its transactional metadata store instead, so it starts in constant time.
 */
export interface ObjectIndex {
  get(id: string): Location | undefined;
  /** Records a pack that has just been published (its .idx is durable). */
  add(pack: string, entries: PackEntry[]): void | Promise<void>;
  /** Every id, where that is cheap. */
  ids?(): string[];
  /** Re-reads what other processes published or removed since (stores shared by processes, such as the user cache). */
  refresh?(root: string): Promise<void>;
  /** Drops a pack that is gone from disk. */
  forgetPack?(pack: string): void;
}

/**
 * The default index: every .idx file of the store, read into a Map. `refresh` picks up packs
 * published by other processes since, and forgets packs another process removed (a cache trim).
 */
class MemoryIndex implements ObjectIndex {
  private readonly map = new Map<string, Location>();
  private readonly packs = new Map<string, string[]>();

  static async load(root: string): Promise<MemoryIndex> {
    const index = new MemoryIndex();
    await index.refresh(root);
    return index;
  }

  get(id: string): Location | undefined { return this.map.get(id); }

  add(pack: string, entries: PackEntry[]): void {
    if (this.packs.has(pack)) return;
    this.packs.set(pack, entries.map((e) => e.id));
    for (const e of entries) if (!this.map.has(e.id)) this.map.set(e.id, { pack, offset: e.offset, length: e.length });
  }

  ids(): string[] { return [...this.map.keys()]; }

  async refresh(root: string): Promise<void> {
    const names = new Set((await fsp.readdir(join(root, 'packs'))).filter((n) => n.endsWith('.idx')).map((n) => n.slice(0, -4)));
    for (const pack of this.packs.keys()) if (!names.has(pack)) this.forgetPack(pack);
    const fresh = [...names].filter((pack) => !this.packs.has(pack)).sort();
    const loaded = await Promise.all(fresh.map(async (pack) => {
      try {
        return [pack, decodeIndex(await fsp.readFile(join(root, 'packs', `${pack}.idx`)), `${pack}.idx`)] as const;
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return undefined; // removed since the listing
        throw err;
      }
    }));
    for (const l of loaded) if (l) this.add(l[0], l[1]);
  }

  forgetPack(pack: string): void {
    const ids = this.packs.get(pack);
    if (!ids) return;
    this.packs.delete(pack);
    for (const id of ids) if (this.map.get(id)?.pack === pack) this.map.delete(id);
  }
}

const PACK_TARGET = 32 * 1024 * 1024;
/** Reads of neighbouring objects closer than this are merged into one. */
const READ_GAP = 64 * 1024;
const READ_SPAN = 8 * 1024 * 1024;

export function encodeStoreConfig(config: StoreConfig): Buffer {
  return encodeRecord(Kind.config, Buffer.from(JSON.stringify(config), 'utf8'));
}

export function decodeStoreConfig(data: Buffer, where: string): StoreConfig {
  const { plain } = decodeObject(data, `store config at ${where}`);
  const config = JSON.parse(plain.toString('utf8')) as StoreConfig;
  if (typeof config.format !== 'number' || config.format > STORE_FORMAT) {
    throw formatError(`store at ${where} has format ${config.format}; this elton reads format ${STORE_FORMAT}`);
  }
  const scheme = config.encryption ? 'hmac-sha256' : 'sha256';
  if (config.idScheme !== scheme) throw formatError(`store at ${where} uses id scheme "${config.idScheme}", which this elton does not support${config.encryption ? ' with encryption' : ''}`);
  if (config.encryption && config.encryption.cipher !== 'aes-256-gcm') throw formatError(`store at ${where} is encrypted with "${config.encryption.cipher}", which this elton does not support`);
  const why = validateChunkerParams(config.chunker);
  if (why) throw formatError(`store at ${where}: ${why}`);
  return config;
}

export class FileStore implements Store, KeyringHolder, IdLister {
  private loading?: Promise<ObjectIndex>;
  private readonly fds = new Map<string, fsp.FileHandle>();
  readonly transfer = noTransfer();

  /** When set, reading a pack marks it used (its mtime), for least-recently-used trimming. */
  trackUse = false;
  private readonly touched = new Set<string>();

  /** An encrypted store's is locked until it is unlocked (`useKeys`): objects and records pass as stored. */
  codec: ObjectCodec;

  private constructor(readonly root: string, readonly config: StoreConfig, private index?: ObjectIndex) {
    this.codec = config.encryption ? lockedCodec : plainCodec;
  }

  get url(): string { return pathToFileURL(this.root).href; }

  /** The keyring of an encrypted store, as stored; its tag is the hash of its bytes. */
  async readKeyringBytes(): Promise<{ data: Buffer; tag: string } | undefined> {
    let data: Buffer;
    try {
      data = await fsp.readFile(join(this.root, KEYRING_FILE));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw ioError(`cannot read the keyring of the encrypted store at ${this.root}`, err, 'restore the keyring file from a backup of the store');
    }
    return { data, tag: keyringTag(data) };
  }

  /**
   * Replaces the keyring if it is still the one read (`expected`), under the store's keyring lock,
   * so two key commands on one host never lose each other's change.
   */
  async writeKeyringBytes(data: Buffer, expected: string | null): Promise<void> {
    const lock = await acquireLock(join(this.root, 'keyring.lock'), 'a keyring change', 10_000, { what: `the keyring of ${this.root}`, hint: 'another key command is changing it; run this one again' });
    try {
      const now = await this.readKeyringBytes();
      if ((now?.tag ?? null) !== expected) throw conflict(`the keyring of ${this.root} changed meanwhile`, 'run the key command again');
      await writeFileAtomic(join(this.root, KEYRING_FILE), data);
    } finally {
      await lock.release();
    }
  }

  async listIds(): Promise<string[]> { return this.knownIds(); }

  /** Opens an encrypted store with its keys: objects are sealed, and ids keyed, from now on. */
  useKeys(keys: RepoKeys): void {
    this.codec = encryptedCodec(keys);
  }

  static async create(root: string, config: StoreConfig, index?: ObjectIndex): Promise<FileStore> {
    for (const dir of ['packs', 'versions', 'tmp']) await fsp.mkdir(join(root, dir), { recursive: true });
    if (!(await createFileExclusive(join(root, 'config'), encodeStoreConfig(config)))) {
      return FileStore.open(root, index);
    }
    return new FileStore(root, config, index);
  }

  /**
   * An encrypted store: its keyring is written (atomically) before its config, so that a store
   * whose config says it is encrypted always has a keyring.
   */
  static async createEncrypted(root: string, config: StoreConfig, keyring: Keyring, master: Buffer): Promise<FileStore> {
    await fsp.mkdir(root, { recursive: true });
    if (await fsp.stat(join(root, 'config')).then(() => true, () => false)) throw exists(`a store already exists at ${root}`, 'use it, or choose another directory');
    await writeFileAtomic(join(root, KEYRING_FILE), encodeKeyring(keyring));
    const store = await FileStore.create(root, config);
    store.useKeys(repoKeys(master, keyring));
    return store;
  }

  /** An encrypted store made from another's keyring, without its key (a backup's target). */
  static async createWithKeyring(root: string, config: StoreConfig, keyring: Buffer): Promise<FileStore> {
    await fsp.mkdir(root, { recursive: true });
    if (!(await fsp.stat(join(root, 'config')).then(() => true, () => false))) await writeFileAtomic(join(root, KEYRING_FILE), keyring);
    return FileStore.create(root, config);
  }

  static async open(root: string, index?: ObjectIndex): Promise<FileStore> {
    let data: Buffer;
    try {
      data = await fsp.readFile(join(root, 'config'));
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw notFound(`store at ${root}`, 'check the remote URL, or create the store with `elton init --remote URL`');
      throw ioError(`cannot read store config at ${root}`, err);
    }
    return new FileStore(root, decodeStoreConfig(data, root), index);
  }

  static pathFromUrl(url: string): string {
    return fileURLToPath(url);
  }

  private async loadIndex(): Promise<ObjectIndex> {
    if (this.index) return this.index;
    this.loading ??= MemoryIndex.load(this.root);
    this.index = await this.loading;
    return this.index;
  }

  /** Sees packs that other processes published, or removed, since the index was loaded. */
  async refresh(): Promise<void> {
    if (!this.index && !this.loading) return;
    await (await this.loadIndex()).refresh?.(this.root);
  }

  /**
   * Removes the pack holding `id` (a cache entry found corrupt): it is a cache, so the objects
   * are fetched again when next needed.
   */
  async dropPackOf(id: string): Promise<string | undefined> {
    const index = await this.loadIndex();
    const loc = index.get(id);
    if (!loc) return undefined;
    await this.removePack(loc.pack);
    return loc.pack;
  }

  /** Index first, so no new reader finds the pack; readers holding it open keep reading it. */
  async removePack(pack: string): Promise<void> {
    await fsp.rm(join(this.root, 'packs', `${pack}.idx`), { force: true });
    await fsp.rm(join(this.root, 'packs', `${pack}.tar`), { force: true });
    (this.index as ObjectIndex | undefined)?.forgetPack?.(pack);
    const fh = this.fds.get(pack);
    this.fds.delete(pack);
    await fh?.close().catch(() => {});
  }

  async missing(ids: Iterable<string>): Promise<Set<string>> {
    const index = await this.loadIndex();
    const out = new Set<string>();
    for (const id of ids) if (!index.get(id)) out.add(id);
    return out;
  }

  async knownIds(): Promise<string[]> {
    return (await this.loadIndex()).ids?.() ?? [];
  }

  /** Where an object is, for servers that stream it on without decoding. */
  async locate(id: string): Promise<Location | undefined> {
    return (await this.loadIndex()).get(id);
  }

  writer(): ObjectWriter {
    // A pack published before the index was ever loaded is found by the index when it loads.
    return new FileStoreWriter(this, async (pack, entries) => { if (this.index || this.loading) await (await this.loadIndex()).add(pack, entries); });
  }

  private async packHandle(pack: string): Promise<fsp.FileHandle> {
    let fh = this.fds.get(pack);
    if (!fh) {
      const path = join(this.root, 'packs', `${pack}.tar`);
      try {
        fh = await fsp.open(path, 'r');
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
        // Removed by another process (a cache trim) after this one loaded the index.
        (await this.loadIndex()).forgetPack?.(pack);
        throw notFound(`pack ${pack}`, 'it was removed while in use; read again', { pack });
      }
      this.fds.set(pack, fh);
    }
    if (this.trackUse && !this.touched.has(pack)) {
      this.touched.add(pack);
      const now = new Date();
      await fsp.utimes(join(this.root, 'packs', `${pack}.tar`), now, now).catch(() => {});
    }
    return fh;
  }

  /**
   * Reads in pack order and merges neighbouring objects into one read, so a full checkout
   * streams each pack sequentially instead of seeking per object.
   */
  async readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void> {
    const index = await this.loadIndex();
    const wanted: Array<Location & { id: string }> = [];
    for (const id of new Set(ids)) {
      const loc = index.get(id);
      if (!loc) throw notFound(`object ${id}`, 'the store is incomplete; push the data again from a workspace that has it', { object: id });
      wanted.push({ id, ...loc });
    }
    wanted.sort((a, b) => (a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : a.offset - b.offset));
    let i = 0;
    while (i < wanted.length) {
      const first = wanted[i];
      let j = i + 1;
      let end = first.offset + first.length;
      while (j < wanted.length && wanted[j].pack === first.pack && wanted[j].offset - end <= READ_GAP && wanted[j].offset + wanted[j].length - first.offset <= READ_SPAN) {
        end = wanted[j].offset + wanted[j].length;
        j++;
      }
      const fh = await this.packHandle(first.pack);
      const span = Buffer.allocUnsafe(end - first.offset);
      const { bytesRead } = await fh.read(span, 0, span.length, first.offset);
      if (bytesRead !== span.length) throw corrupt(`pack ${first.pack} is truncated`, undefined, { object: first.id });
      for (let k = i; k < j; k++) {
        const w = wanted[k];
        await onObject(w.id, span.subarray(w.offset - first.offset, w.offset - first.offset + w.length));
      }
      i = j;
    }
  }

  async listTrees(): Promise<string[]> {
    return (await fsp.readdir(join(this.root, 'versions'))).filter(isTreeName).sort();
  }

  async listVersions(tree: string): Promise<number[]> {
    let names: string[];
    try {
      names = await fsp.readdir(join(this.root, 'versions', tree));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    return names.filter((n) => /^[1-9][0-9]*$/.test(n)).map(Number).sort((a, b) => a - b);
  }

  async latestVersion(tree: string): Promise<number> {
    const versions = await this.listVersions(tree);
    return versions.length ? versions[versions.length - 1] : 0;
  }

  async readVersion(tree: string, version: number): Promise<VersionRecord> {
    let data: Buffer;
    try {
      data = await fsp.readFile(join(this.root, 'versions', tree, String(version)));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw notFound(`version ${tree}@${version}`, `run \`elton log ${tree}\` to see the versions that exist`);
      throw err;
    }
    return this.codec.openVersion(decodeVersion(data, tree, version));
  }

  /** Latest + 1, created exclusively; losing a creation race to another writer is the stale-parent case. */
  async issueVersion(draft: VersionDraft, force: boolean): Promise<VersionRecord> {
    for (;;) {
      const latest = await this.latestVersion(draft.tree);
      if (latest !== (draft.parent ?? 0) && !force) throw staleParent(draft.tree, latest, draft.parent);
      const record = { ...draft, version: latest + 1 };
      if (await this.createVersion(record)) return record;
    }
  }

  async createVersion(record: VersionRecord): Promise<boolean> {
    const dir = join(this.root, 'versions', record.tree);
    let st: Stats | undefined;
    try { st = await fsp.stat(dir); } catch { /* created below */ }
    if (!st) {
      await fsp.mkdir(dir, { recursive: true });
      await fsyncDir(join(this.root, 'versions'));
    }
    return createFileExclusive(join(dir, String(record.version)), encodeVersion(this.codec.sealVersion(record)));
  }

  /** A copied version (a backup): created only once every object it names beyond its base is held. */
  async putVersion(record: VersionRecord, contents: CopiedContents): Promise<PutOutcome> {
    const absent = await this.missing(contents.ids);
    if (absent.size) throw incomplete(this.url, `${record.tree}@${record.version}`, absent);
    if (await this.createVersion(record)) return 'created';
    if (sameVersion(await this.readVersion(record.tree, record.version), record)) return 'present';
    throw divergedVersion(this.url, record);
  }

  /** Stored lengths of the held objects among `ids`. */
  async lengths(ids: string[]): Promise<Map<string, number>> {
    const index = await this.loadIndex();
    const out = new Map<string, number>();
    for (const id of ids) {
      const at = index.get(id);
      if (at) out.set(id, at.length);
    }
    return out;
  }

  /** Writes objects read from `source` (a backup into this store): durable when it resolves. */
  async send(ids: string[], source: ObjectSource, reporter?: Reporter): Promise<void> {
    const writer = this.writer();
    let loaded = 0;
    try {
      await source.readObjects(ids, async (id, data) => {
        await writer.add(id, data);
        loaded += data.length;
        reporter?.({ type: 'progress', phase: 'push', loaded, total: 0, unit: 'bytes' });
      });
    } catch (err) {
      // What was read before the failure is kept: the next run sends only the rest.
      await writer.finish();
      throw err;
    }
    await writer.finish();
  }

  /** Publishes a finished pack: the index appears last, so readers never see a pack without its data. */
  async publishPack(tmpPath: string, packId: string, entries: Parameters<typeof encodeIndex>[0]): Promise<void> {
    const packs = join(this.root, 'packs');
    await fsp.rename(tmpPath, join(packs, `${packId}.tar`));
    await writeFileAtomic(join(packs, `${packId}.idx`), encodeIndex(entries));
  }

  /** Temp packs are named by host and pid, so that the leftovers of a killed writer can be told from live ones. */
  tmpPath(): string {
    return join(this.root, 'tmp', `${hostname()}.${process.pid}.${Date.now()}.${randomBytes(6).toString('hex')}.tar`);
  }

  /**
   * Removes temp packs left by writers on this host that are no longer running (killed
   * mid-commit). Writers on other hosts sharing the store are never touched.
   */
  async removeAbandonedTemps(): Promise<number> {
    let removed = 0;
    const host = hostname();
    for (const name of await fsp.readdir(join(this.root, 'tmp')).catch(() => [] as string[])) {
      const m = /^(.+)\.(\d+)\.\d+\.[0-9a-f]+\.tar$/.exec(name);
      if (!m || m[1] !== host || isAlive(Number(m[2]))) continue;
      await fsp.rm(join(this.root, 'tmp', name), { force: true });
      removed++;
    }
    return removed;
  }

  async close(): Promise<void> {
    await Promise.all([...this.fds.values()].map((fh) => fh.close().catch(() => {})));
    this.fds.clear();
  }
}

class FileStoreWriter implements ObjectWriter {
  private current?: PackFileWriter;
  private opening?: Promise<PackFileWriter>;

  constructor(private readonly store: FileStore, private readonly onPublished: (pack: string, entries: PackEntry[]) => Promise<void>) {}

  async add(id: string, data: Buffer): Promise<void> {
    if (!this.current) {
      this.opening ??= this.store.removeAbandonedTemps().then(() => PackFileWriter.create(this.store.tmpPath()));
      this.current = await this.opening;
      this.opening = undefined;
    }
    await this.current.add(id, data);
    if (this.current.size >= PACK_TARGET) await this.seal();
  }

  private async seal(): Promise<void> {
    const pack = this.current;
    if (!pack) return;
    this.current = undefined;
    const id = await pack.finish();
    await this.store.publishPack(pack.path, id, pack.entries);
    await this.onPublished(id, pack.entries);
  }

  async finish(): Promise<void> {
    await this.seal();
  }

  async abort(): Promise<void> {
    await this.current?.abort();
    this.current = undefined;
  }
}
