// A bucket as a Remote: data packs, index objects, version envelopes issued by conditional PUT.
//
// Bucket layout under the prefix (docs/format.md, "S3 stores"):
//   config                      store config record
//   data/<P>.pack               data packs (chunks back to back), 16-64 MiB; data/<P>.tar (ustar) from format-1 indexes
//   index/<H>                   one index object per push: where its objects live, its trees inline (some as deltas)
//   versions/<tree>/<v>         version envelopes, v zero-padded to 10 digits, created with If-None-Match: *
//
// S3 bills per request and each request costs a round trip, so nothing is done per object:
// a push is one LIST, one PUT per pack, one index PUT and the version's LIST + PUT; a cold read
// of one file is the version envelope, the index objects it names, and one ranged GET.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import {
  GetObjectCommand, HeadObjectCommand, PutObjectCommand, ListObjectsV2Command, CreateMultipartUploadCommand,
  UploadPartCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand, type StorageClass,
} from '@aws-sdk/client-s3';
import { conflict, corrupt, EltonError, exists, notFound, remoteError, staleParent } from '../errors.js';
import { decodeObject, Kind } from '../object.js';
import { decodeTree } from '../tree.js';
import { pathSelected } from '../snapshot.js';
import { writeFileAtomic } from '../lib/atomic.js';
import { decodeIndex, encodeIndex } from '../store/pack.js';
import { decodeStoreConfig, encodeStoreConfig } from '../store/file-store.js';
import type { Reporter } from '../events.js';
import type { CopiedContents, IdLister, KeyringHolder, ObjectSource, PutOutcome, Remote, StoreConfig, VersionContents, VersionDraft } from '../store/store.js';
import { divergedVersion, sameVersion, type VersionRecord } from '../version.js';
import { decodeEnvelope, decodeIndexObject, encodeEnvelope, encodeIndexObject, INLINE, INLINE_DELTA, packPath, type IndexEntry, type IndexObject } from './s3-index.js';
import { rebuildTree, treeDelta, type SimilarTree } from '../tree-delta.js';
import { effectiveSettings, formatS3Url, isAbsentKey, MAX_ATTEMPTS, parseS3Url, s3Client, s3Status, translateS3Error, type MeteredS3, type S3Target } from './s3-client.js';
import { MAX_STREAMS } from './streams.js';
import { eachLimited } from '../lib/limit.js';
import { isTreeName } from '../ref.js';

const MIB = 1024 * 1024;
const envMib = (name: string, fallback: number) => Math.max(5, Number(process.env[name] ?? fallback) || fallback) * MIB;
/** Packs close at this size: big enough that requests are few, small enough that a failed PUT costs little to redo. */
const PACK_BYTES = envMib('ELTON_S3_PACK_MIB', 32);
/** Packs above this go up in parts, in parallel; below it one PUT is one request. */
const MULTIPART_BYTES = envMib('ELTON_S3_MULTIPART_MIB', 64);
const PART_BYTES = envMib('ELTON_S3_PART_MIB', 16);
/** Ranges of one pack closer than this are read in one GET: at 250 ms RTT a request costs more than a megabyte. */
const RANGE_GAP = 1 * MIB;
/** Bounds of one ranged GET (it is streamed, so memory does not depend on it). */
const RANGE_SPAN = 64 * MIB;
const MIN_RANGE_SPAN = 4 * MIB;
/** GETs in flight at once. */
const READ_PARALLEL = 2 * MAX_STREAMS;
const VERSION_DIGITS = 10;
/** A delta's base may itself be a delta; merged index objects cut chains, so they stay short. */
const MAX_DELTA_CHAIN = 64;
/** Bytes of rebuilt trees kept; past it the memo starts over (chains are short, rebuilding is cheap). */
const MAX_REBUILT_BYTES = 64 * MIB;
/**
 * A version's envelope names at most this many index objects: a cold reader GETs each. Beyond
 * it, the locations of everything the version reaches are merged into one new index object.
 */
const MAX_NAMED_INDEXES = 8;
const KEYRING = 'keyring';

interface Located { index: IndexObject; entry: IndexEntry }
interface Wanted { id: string; offset: number; length: number }

const sha256 = (parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

export class S3Store implements Remote, KeyringHolder, IdLister {
  private readonly where = new Map<string, Located>();
  private readonly loaded = new Set<string>();
  /** An encrypted store's index objects, for merging them (their trees cannot be walked). */
  private readonly indexObjects = new Map<string, IndexObject>();
  private readonly loading = new Map<string, Promise<void>>();
  /** Index objects named by version envelopes read so far: loaded before anything is looked up. */
  private readonly named = new Set<string>();
  private readonly envelopes = new Map<string, string[]>();
  /** Trees rebuilt from deltas (small, immutable). */
  private readonly rebuilt = new Map<string, Buffer>();
  private rebuiltBytes = 0;
  /** Readers (verify, mount, serve, a backup's source) never write: they leave a killed push's packs for the next writer to adopt. */
  readOnly = false;

  private constructor(
    private readonly target: S3Target,
    private readonly s3: MeteredS3,
    private known: StoreConfig | undefined,
    /** Where index objects are kept once fetched (they are immutable); none for a throwaway open. */
    private readonly indexCache: string | undefined,
  ) {}

  get config(): StoreConfig {
    if (!this.known) throw new Error('internal: the store config of an S3 remote was used before it was read');
    return this.known;
  }

  get url(): string { return formatS3Url(this.target); }
  get transfer() { return this.s3.transfer; }
  private get bucket(): string { return this.target.bucket; }

  /** Request helpers take paths under the prefix (`data/P.pack`); this makes them object keys. */
  private key(path: string): string { return this.target.prefix ? `${this.target.prefix}/${path}` : path; }
  private versionPath(tree: string, version: number): string { return `versions/${tree}/${String(version).padStart(VERSION_DIGITS, '0')}`; }

  private static client(url: string): { target: S3Target; s3: MeteredS3 } {
    const target = parseS3Url(url);
    return { target, s3: s3Client(effectiveSettings(target.settings)) };
  }

  /** A bucket whose store config is already known (kept in the local cache): no request until one is needed. */
  static withConfig(url: string, config: StoreConfig, indexCache?: string): S3Store {
    const { target, s3 } = S3Store.client(url);
    return new S3Store(target, s3, config, indexCache);
  }

  /** Reads the store config from the bucket (one request). */
  static async connect(url: string, indexCache?: string): Promise<S3Store> {
    const { target, s3 } = S3Store.client(url);
    const store = new S3Store(target, s3, undefined, indexCache);
    try {
      const data = await store.get('config');
      if (!data) throw notFound(`elton store at ${store.url}`, `create it with \`elton init --remote ${store.url}\` (or commit to it from a workspace)`);
      store.known = decodeStoreConfig(data, store.url);
      return store;
    } catch (err) {
      s3.close();
      throw err;
    }
  }

  /**
   * Creates the store in the bucket with `config`, or opens the one already there. An encrypted
   * store's keyring goes first, so that a config saying it is encrypted always has one beside it.
   */
  static async create(url: string, config: StoreConfig, indexCache?: string, keyring?: Buffer): Promise<S3Store> {
    const { target, s3 } = S3Store.client(url);
    const store = new S3Store(target, s3, undefined, indexCache);
    try {
      let existing = await store.get('config');
      if (!existing && keyring && !(await store.putIfAbsent(KEYRING, keyring))) {
        throw exists(`${store.url} already holds a keyring`, 'an encrypted store was being made there: open it with its key, or use another prefix');
      }
      // Of two creators racing, the conditional PUT lets one win; the other reads the winner's config.
      if (!existing && !(await store.putIfAbsent('config', encodeStoreConfig(config)))) existing = await store.get('config');
      store.known = existing ? decodeStoreConfig(existing, store.url) : config;
      return store;
    } catch (err) {
      s3.close();
      throw err;
    }
  }

  // --- an encrypted store's keyring and ids ----------------------------------------------------

  /** The keyring object, as stored; its tag is its ETag, which a replacing PUT must match. */
  async readKeyringBytes(): Promise<{ data: Buffer; tag: string } | undefined> {
    try {
      const res = await this.s3.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(KEYRING) }));
      return { data: Buffer.from(await res.Body!.transformToByteArray()), tag: res.ETag ?? '' };
    } catch (err) {
      if (isAbsentKey(err)) return undefined;
      throw this.fail(err);
    }
  }

  /** Creates the keyring (If-None-Match: *), or replaces the one read (If-Match: its ETag). */
  async writeKeyringBytes(data: Buffer, expected: string | null): Promise<void> {
    try {
      await this.s3.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: this.key(KEYRING), Body: data, ContentLength: data.length,
        ...(expected === null ? { IfNoneMatch: '*' } : { IfMatch: expected }),
      }));
    } catch (err) {
      if (s3Status(err) === 412 || s3Status(err) === 409) throw conflict(`the keyring in ${this.url} changed meanwhile`, 'run the key command again');
      throw this.fail(err);
    }
  }

  /** Every object the bucket's index objects locate. */
  async listIds(): Promise<string[]> {
    await this.loadAll();
    return [...this.where.keys()];
  }

  // --- requests -------------------------------------------------------------------------------

  private fail(err: unknown): Error {
    return translateS3Error(err, this.url, this.bucket);
  }

  /** GETs an object; undefined if it does not exist. */
  private async get(path: string): Promise<Buffer | undefined> {
    try {
      const res = await this.s3.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if (isAbsentKey(err)) return undefined;
      throw this.fail(err);
    }
  }

  private async exists(path: string): Promise<boolean> {
    try {
      await this.s3.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(path) }));
      return true;
    } catch (err) {
      if (isAbsentKey(err)) return false;
      throw this.fail(err);
    }
  }

  private async put(path: string, body: Buffer): Promise<void> {
    try {
      await this.s3.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: this.key(path), Body: body, ContentLength: body.length,
        StorageClass: this.storageClassFor(path),
      }));
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** Data packs may go to a cheaper class; metadata stays STANDARD, because it is read on every cold access. */
  private storageClassFor(path: string): StorageClass | undefined {
    const cls = effectiveSettings(this.target.settings).storageClass;
    return cls && path.startsWith('data/') ? cls as StorageClass : undefined;
  }

  /**
   * Creates `key` only if it does not exist (If-None-Match: *). False if it exists. A retried
   * attempt whose first try did land finds its own bytes there, which counts as created.
   */
  private async putIfAbsent(path: string, body: Buffer): Promise<boolean> {
    try {
      await this.s3.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(path), Body: body, ContentLength: body.length, IfNoneMatch: '*' }));
      return true;
    } catch (err) {
      // 412: the key exists. 409: another conditional write to it is in progress (AWS).
      if (s3Status(err) !== 412 && s3Status(err) !== 409) throw this.fail(err);
    }
    const there = await this.get(path);
    return !!there && there.equals(body);
  }

  private async putLarge(path: string, parts: Buffer[], size: number): Promise<void> {
    if (size <= MULTIPART_BYTES) return this.put(path, Buffer.concat(parts, size));
    const body = Buffer.concat(parts, size);
    const key = this.key(path);
    let uploadId: string | undefined;
    try {
      const created = await this.s3.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, StorageClass: this.storageClassFor(path) }));
      uploadId = created.UploadId!;
      const slices = Array.from({ length: Math.ceil(size / PART_BYTES) }, (_, i) => i);
      const etags: string[] = [];
      await eachLimited(slices, MAX_STREAMS, async (i) => {
        const part = body.subarray(i * PART_BYTES, Math.min(size, (i + 1) * PART_BYTES));
        const res = await this.s3.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: part, ContentLength: part.length }));
        etags[i] = res.ETag!;
      });
      await this.s3.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.bucket, Key: key, UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }));
    } catch (err) {
      if (uploadId) await this.s3.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })).catch(() => {});
      throw this.fail(err);
    }
  }

  /** Every key under `rest` (one request per 1,000 keys), or the common prefixes one level down with `delimiter`. */
  private async list(path: string, delimiter?: string): Promise<string[]> {
    const prefix = this.key(path);
    const out: string[] = [];
    let token: string | undefined;
    try {
      do {
        const res = await this.s3.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }));
        if (delimiter) for (const p of res.CommonPrefixes ?? []) out.push(p.Prefix!.slice(prefix.length, -delimiter.length));
        else for (const o of res.Contents ?? []) out.push(o.Key!.slice(prefix.length));
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.fail(err);
    }
    return out;
  }

  // --- the index ------------------------------------------------------------------------------

  private learn(index: IndexObject): void {
    if (this.loaded.has(index.hash)) return;
    this.loaded.add(index.hash);
    if (this.config.encryption) this.indexObjects.set(index.hash, index);
    for (const entry of index.entries) {
      // A whole copy beats a delta: a delta's base may be located only by index objects this
      // reader has no reason to load (the envelope names the delta's index for another object).
      const known = this.where.get(entry.id);
      if (!known || (known.entry.pack === INLINE_DELTA && entry.pack !== INLINE_DELTA)) this.where.set(entry.id, { index, entry });
    }
  }

  /** Loads index objects: from the local cache if kept there, else one GET each, in parallel. */
  private async loadIndexes(hashes: Iterable<string>): Promise<void> {
    const todo = [...new Set(hashes)].filter((h) => !this.loaded.has(h));
    // Readers running side by side (trees and chunks) share one fetch of each index object.
    await eachLimited(todo, READ_PARALLEL, async (hash) => {
      let loading = this.loading.get(hash);
      if (!loading) {
        loading = this.loadIndex(hash).finally(() => this.loading.delete(hash));
        this.loading.set(hash, loading);
      }
      await loading;
    });
  }

  private async loadIndex(hash: string): Promise<void> {
    const cached = this.indexCache ? await fsp.readFile(join(this.indexCache, hash)).catch(() => undefined) : undefined;
    if (cached) {
      try {
        this.learn(decodeIndexObject(cached, hash));
        return;
      } catch { /* a damaged cache file: fetch it again */ }
    }
    const bytes = await this.get(`index/${hash}`);
    if (!bytes) throw notFound(`index object ${hash} in ${this.url}`, 'the bucket is missing metadata; push the data again from a workspace that has it', { object: hash });
    this.learn(decodeIndexObject(bytes, hash));
    await this.keepIndex(hash, bytes);
  }

  private async keepIndex(hash: string, bytes: Buffer): Promise<void> {
    if (!this.indexCache) return;
    await fsp.mkdir(this.indexCache, { recursive: true });
    await writeFileAtomic(join(this.indexCache, hash), bytes);
  }

  /** The whole bucket's index: one LIST, then the index objects not seen yet. */
  private async loadAll(): Promise<void> {
    await this.loadIndexes(await this.list('index/'));
  }

  /** Where each id lives: first in what the versions read so far name, then in the whole bucket. */
  private async locate(ids: string[]): Promise<Map<string, Located>> {
    await this.loadIndexes(this.named);
    if (ids.some((id) => !this.where.has(id))) await this.loadAll();
    const out = new Map<string, Located>();
    for (const id of ids) {
      const at = this.where.get(id);
      if (!at) throw notFound(`object ${id} in ${this.url}`, 'the bucket lacks data of this version; push it again from a workspace that has it', { object: id });
      out.set(id, at);
    }
    return out;
  }

  /**
   * For verification: the ids whose bytes are not in the bucket, because no index object
   * locates them or because the data pack that holds them is gone (one LIST of data/).
   */
  async missingData(ids: Iterable<string>): Promise<Set<string>> {
    const list = [...ids];
    const out = await this.missing(list);
    const packs = new Set(await this.list('data/'));
    for (const id of list) {
      const at = this.where.get(id);
      if (!at || at.entry.pack >= INLINE_DELTA) continue;
      const path = packPath(at.index.packs[at.entry.pack], at.index.tar[at.entry.pack]);
      if (!packs.has(path.slice('data/'.length))) out.add(id);
    }
    return out;
  }

  async missing(ids: Iterable<string>): Promise<Set<string>> {
    if (!this.readOnly) await this.adoptUnindexed();
    await this.loadAll();
    const out = new Set<string>();
    for (const id of ids) if (!this.where.has(id)) out.add(id);
    return out;
  }

  // --- writing --------------------------------------------------------------------------------

  /** Packs uploaded by a push that did not reach its index object; see adoptUnindexed. */
  private get journal(): string | undefined { return this.indexCache && join(this.indexCache, 'unindexed'); }

  /**
   * A push killed between its pack PUTs and its index PUT leaves packs the bucket cannot find.
   * Each pack's entries are journaled locally once its PUT succeeds, so the next push from this
   * cache confirms that the bucket holds them (a HEAD each) and indexes them (one PUT)
   * instead of uploading them again.
   */
  private async adoptUnindexed(): Promise<void> {
    const dir = this.journal;
    const all = dir ? await fsp.readdir(dir).catch(() => [] as string[]) : [];
    if (!dir || !all.length) return;
    const names = all.filter((n) => /^[0-9a-f]{64}\.idx$/.test(n));
    const packs: string[] = [];
    const entries: IndexEntry[] = [];
    await eachLimited(names, READ_PARALLEL, async (name) => {
      const pack = name.slice(0, 64);
      let list;
      try { list = decodeIndex(await fsp.readFile(join(dir, name)), name); } catch { return; }
      // Journaled only after its PUT succeeded, but the bucket may have been emptied since.
      if (!(await this.exists(packPath(pack)))) return;
      for (const e of list) entries.push({ ...e, pack: packs.length });
      packs.push(pack);
    });
    if (packs.length) await this.writeIndex(packs, entries, Buffer.alloc(0));
    // Everything goes, temp files of a journal write cut short included.
    await fsp.rm(dir, { recursive: true, force: true });
  }

  /** Uploads an index object (once every pack it names is durable) and keeps it. */
  private async writeIndex(packs: string[], entries: IndexEntry[], inline: Buffer, tar?: boolean[]): Promise<string> {
    const { hash, bytes } = encodeIndexObject(packs, entries, inline, tar);
    await this.put(`index/${hash}`, bytes);
    this.learn(decodeIndexObject(bytes, hash));
    await this.keepIndex(hash, bytes);
    return hash;
  }

  private async journalPack(pack: string, entries: IndexEntry[]): Promise<void> {
    if (!this.journal) return;
    await fsp.mkdir(this.journal, { recursive: true });
    await writeFileAtomic(join(this.journal, `${pack}.idx`), encodeIndex(entries));
  }

  /**
   * Chunks go into data packs, uploaded as each fills (at most MAX_STREAMS at once); trees go
   * inline into the push's index object, which is written last, once every pack is durable.
   */
  async send(ids: string[], source: ObjectSource, reporter?: Reporter): Promise<void> {
    let total = 0;
    for (const id of ids) total += (await source.locate(id))?.length ?? 0;
    let sent = 0;
    const packs: string[] = [];
    const entries: IndexEntry[] = [];
    const inline: Buffer[] = [];
    let inlineBytes = 0;
    let parts: Buffer[] = [];
    let packEntries: IndexEntry[] = [];
    let size = 0;
    const uploads = new Set<Promise<void>>();
    let failure: unknown;

    const seal = async () => {
      if (!packEntries.length) return;
      const body = parts;
      const bytes = size;
      const id = sha256(body);
      const number = packs.length;
      packs.push(id);
      const own = packEntries;
      for (const e of own) entries.push({ ...e, pack: number });
      parts = [];
      packEntries = [];
      size = 0;
      while (uploads.size >= MAX_STREAMS) await Promise.race(uploads);
      if (failure) throw failure;
      const p: Promise<void> = this.putLarge(packPath(id), body, bytes)
        .then(() => this.journalPack(id, own))
        .then(() => {
          sent += bytes;
          reporter?.({ type: 'progress', phase: 'push', loaded: Math.min(sent, total), total, unit: 'bytes' });
        })
        .catch((err) => { failure ??= err; })
        .finally(() => uploads.delete(p));
      uploads.add(p);
    };

    await source.readObjects(ids, async (id, data) => {
      // Sealed objects hide their kind: an encrypted store's trees go into packs like chunks.
      if (!this.config.encryption && data[4] === Kind.tree) {
        const stored = this.asDelta(id, data, source.similar?.(id));
        entries.push({ id, pack: stored ? INLINE_DELTA : INLINE, offset: inlineBytes, length: (stored ?? data).length });
        inline.push(stored ?? data);
        inlineBytes += (stored ?? data).length;
        return;
      }
      packEntries.push({ id, pack: 0, offset: size, length: data.length });
      parts.push(data);
      size += data.length;
      if (size >= PACK_BYTES) await seal();
    });
    await seal();
    await Promise.all(uploads);
    if (failure) throw failure;
    await this.writeIndex(packs, entries, Buffer.concat(inline, inlineBytes));
    const journal = this.journal;
    if (journal) await Promise.all(packs.map((p) => fsp.rm(join(journal, `${p}.idx`), { force: true })));
  }

  /**
   * A tree stored as a delta against a similar tree the bucket already has (the same directory
   * in the version before), when that saves enough. Readers find the base through the index
   * objects the version's envelope names (it names its base version's).
   */
  private asDelta(id: string, data: Buffer, similar: SimilarTree | undefined): Buffer | undefined {
    const at = similar && this.where.get(similar.base);
    if (!similar || !at || at.entry.pack < INLINE_DELTA) return undefined;
    const delta = treeDelta(id, data, similar.plain);
    return delta && Buffer.concat([Buffer.from(similar.base, 'hex'), delta]);
  }

  /**
   * Latest + 1, created with a conditional PUT. Losing the race (412) means another writer
   * took that number: the stale-parent policy decides, exactly as for every other store.
   */
  async issueVersion(draft: VersionDraft, force: boolean, contents: VersionContents, seal = (r: VersionRecord) => r): Promise<VersionRecord> {
    const indexes = await this.indexesFor(draft.root, contents.ids, draft.tree, contents.parentToo ? draft.parent : null);
    for (;;) {
      const latest = await this.latestVersion(draft.tree);
      if (latest !== (draft.parent ?? 0) && !force) throw staleParent(draft.tree, latest, draft.parent);
      const record: VersionRecord = seal({ ...draft, version: latest + 1 });
      const envelope = encodeEnvelope(record, indexes);
      if (await this.putIfAbsent(this.versionPath(draft.tree, record.version), envelope)) {
        this.envelopes.set(`${record.tree}@${record.version}`, indexes);
        return record;
      }
    }
  }

  /** A copied version under its own number, created by conditional PUT once its objects are indexed here. */
  async putVersion(record: VersionRecord, contents: CopiedContents): Promise<PutOutcome> {
    const indexes = await this.indexesFor(record.root, contents.ids, record.tree, contents.base);
    if (await this.putIfAbsent(this.versionPath(record.tree, record.version), encodeEnvelope(record, indexes))) {
      this.envelopes.set(`${record.tree}@${record.version}`, indexes);
      return 'created';
    }
    if (sameVersion(await this.readVersion(record.tree, record.version), record)) return 'present';
    throw divergedVersion(this.url, record);
  }

  /**
   * The index objects a version's envelope names: those locating `ids`, plus those of version
   * `base` of the tree, which locate everything else it reaches. Throws not-found if an id is
   * not indexed here, so no envelope ever names an object the bucket lacks.
   */
  private async indexesFor(root: string, ids: string[], tree: string, base: number | null): Promise<string[]> {
    const indexes = new Set<string>();
    for (const at of (await this.locate(ids)).values()) indexes.add(at.index.hash);
    if (base !== null) for (const h of await this.indexesOf(tree, base)) indexes.add(h);
    if (indexes.size <= MAX_NAMED_INDEXES) return [...indexes];
    return [this.config.encryption ? await this.unionIndexes(indexes) : await this.mergeIndexes(root)];
  }

  /** Stored lengths of the indexed objects among `ids`. */
  async lengths(ids: string[]): Promise<Map<string, number>> {
    await this.loadIndexes(this.named);
    if (ids.some((id) => !this.where.has(id))) await this.loadAll();
    const out = new Map<string, number>();
    for (const id of ids) {
      const at = this.where.get(id);
      if (at) out.set(id, at.entry.length);
    }
    return out;
  }

  /**
   * Writes one index object that locates everything reachable from `root`: its trees inline
   * (copied), its chunks where they already are. Nothing is re-uploaded but metadata.
   */
  private async mergeIndexes(root: string): Promise<string> {
    const packs = new Map<string, number>();
    const tar: boolean[] = [];
    const entries: IndexEntry[] = [];
    const inline: Buffer[] = [];
    let inlineBytes = 0;
    const seen = new Set<string>();
    let level = [root];
    while (level.length) {
      const trees = [...new Set(level)].filter((id) => !seen.has(id));
      const chunks = new Set<string>();
      const next: string[] = [];
      for (const [id, at] of await this.locate(trees)) {
        seen.add(id);
        const data = await this.inlineObject(at, id);
        entries.push({ id, pack: INLINE, offset: inlineBytes, length: data.length });
        inline.push(data);
        inlineBytes += data.length;
        for (const e of decodeTree(decodeObject(data, `tree ${id}`, id).plain, id).entries) {
          if (e.type === 'dir') next.push(e.tree);
          else if (e.type === 'file') for (const c of e.chunks) if (!seen.has(c.id)) chunks.add(c.id);
        }
      }
      for (const [id, at] of await this.locate([...chunks])) {
        seen.add(id);
        const pack = at.index.packs[at.entry.pack];
        if (!packs.has(pack)) { packs.set(pack, packs.size); tar.push(at.index.tar[at.entry.pack]); }
        entries.push({ id, pack: packs.get(pack)!, offset: at.entry.offset, length: at.entry.length });
      }
      level = next;
    }
    return this.writeIndex([...packs.keys()], entries, Buffer.concat(inline, inlineBytes), tar);
  }

  /**
   * An encrypted store's trees cannot be walked here, so the merged index object locates
   * everything the given ones do: more than the version reaches, never less.
   */
  private async unionIndexes(hashes: Set<string>): Promise<string> {
    await this.loadIndexes(hashes);
    const packs = new Map<string, number>();
    const tar: boolean[] = [];
    const entries = new Map<string, IndexEntry>();
    for (const hash of hashes) {
      const index = this.indexObjects.get(hash)!;
      for (const e of index.entries) {
        if (e.pack >= INLINE_DELTA || entries.has(e.id)) continue;
        const pack = index.packs[e.pack];
        if (!packs.has(pack)) { packs.set(pack, packs.size); tar.push(index.tar[e.pack]); }
        entries.set(e.id, { id: e.id, pack: packs.get(pack)!, offset: e.offset, length: e.length });
      }
    }
    return this.writeIndex([...packs.keys()], [...entries.values()], Buffer.alloc(0), tar);
  }

  private async indexesOf(tree: string, version: number): Promise<string[]> {
    const known = this.envelopes.get(`${tree}@${version}`);
    if (known) return known;
    await this.readVersion(tree, version);
    return this.envelopes.get(`${tree}@${version}`)!;
  }

  // --- reading --------------------------------------------------------------------------------

  async readVersion(tree: string, version: number): Promise<VersionRecord> {
    const bytes = await this.get(this.versionPath(tree, version));
    if (!bytes) throw notFound(`version ${tree}@${version}`, `run \`elton log ${tree}\` to see the versions that exist`);
    const { record, indexes } = decodeEnvelope(bytes, tree, version);
    this.envelopes.set(`${tree}@${version}`, indexes);
    for (const h of indexes) this.named.add(h);
    return record;
  }

  async listTrees(): Promise<string[]> {
    return (await this.list('versions/', '/')).filter(isTreeName).sort();
  }

  async listVersions(tree: string): Promise<number[]> {
    return (await this.list(`versions/${tree}/`))
      .filter((k) => /^[0-9]+$/.test(k) && k.length === VERSION_DIGITS)
      .map(Number).filter((v) => v > 0).sort((a, b) => a - b);
  }

  async latestVersion(tree: string): Promise<number> {
    const versions = await this.listVersions(tree);
    return versions.length ? versions[versions.length - 1] : 0;
  }

  /** The trees beneath the roots come from index objects, never from data packs. */
  async readTrees(roots: Array<{ id: string; path: string }>, prefixes: string[] | undefined, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void> {
    const sent = new Set<string>();
    let level = roots;
    while (level.length) {
      const located = await this.locate([...new Set(level.map((r) => r.id))]);
      const next: Array<{ id: string; path: string }> = [];
      for (const { id, path } of level) {
        const data = await this.inlineObject(located.get(id)!, id);
        if (!sent.has(id)) {
          sent.add(id);
          await onObject(id, data);
        }
        for (const e of decodeTree(decodeObject(data, `tree ${id}`, id).plain, id).entries) {
          if (e.type !== 'dir') continue;
          const child = path ? `${path}/${e.name}` : e.name;
          if (pathSelected(child, prefixes)) next.push({ id: e.tree, path: child });
        }
      }
      level = next;
    }
  }

  /**
   * An object stored in an index object's inline area: as is, or rebuilt from its delta and
   * base (the base found in the index objects loaded, else in the whole bucket's). A rebuilt
   * object is re-encoded, and checked against its id like any other.
   */
  private async inlineObject(at: Located, id: string, depth = 0): Promise<Buffer> {
    const bytes = at.index.inline.subarray(at.entry.offset, at.entry.offset + at.entry.length);
    if (at.entry.pack === INLINE) return bytes;
    const bad = (why: string) => corrupt(`tree ${id} in ${this.url}: ${why}`, 'the bucket is damaged; push the data again from a workspace that has it', { object: id });
    if (at.entry.pack !== INLINE_DELTA) throw bad('it is stored in a data pack, not in its index object');
    const known = this.rebuilt.get(id);
    if (known) return known;
    if (depth > MAX_DELTA_CHAIN) throw bad('its chain of deltas is too long (or loops)');
    const base = bytes.toString('hex', 0, 32);
    if (!this.where.has(base)) await this.loadAll();
    const baseAt = this.where.get(base);
    if (!baseAt) throw bad(`the base ${base} of its delta is not in the bucket`);
    const basePlain = decodeObject(await this.inlineObject(baseAt, base, depth + 1), `tree ${base}`, base).plain;
    const data = rebuildTree(id, basePlain, bytes.subarray(32), this.config.compression, this.url);
    if (this.rebuiltBytes + data.length > MAX_REBUILT_BYTES) { this.rebuilt.clear(); this.rebuiltBytes = 0; }
    this.rebuilt.set(id, data);
    this.rebuiltBytes += data.length;
    return data;
  }

  /**
   * Inline objects at once; packed ones by ranged GETs, streamed. Neighbours in a pack are
   * merged into one range, and ranges are sized so that about MAX_STREAMS of them share the
   * work: a whole-tree clone reads each pack in one GET, a small read splits to go parallel.
   */
  async readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void> {
    const located = await this.locate([...new Set(ids)]);
    const byPack = new Map<string, Wanted[]>();
    let total = 0;
    for (const [id, at] of located) {
      if (at.entry.pack === INLINE || at.entry.pack === INLINE_DELTA) {
        await onObject(id, await this.inlineObject(at, id));
        continue;
      }
      const pack = packPath(at.index.packs[at.entry.pack], at.index.tar[at.entry.pack]);
      const list = byPack.get(pack) ?? [];
      list.push({ id, offset: at.entry.offset, length: at.entry.length });
      byPack.set(pack, list);
      total += at.entry.length;
    }
    const span = Math.min(RANGE_SPAN, Math.max(MIN_RANGE_SPAN, Math.ceil(total / MAX_STREAMS)));
    const ranges: Array<{ pack: string; objects: Wanted[] }> = [];
    for (const [pack, list] of byPack) {
      list.sort((a, b) => a.offset - b.offset);
      // Runs of neighbours, then each run cut into equal parts of at most `span`: no small tail GET.
      const runs: Wanted[][] = [];
      for (const o of list) {
        const run = runs[runs.length - 1];
        const last = run?.[run.length - 1];
        if (last && o.offset - (last.offset + last.length) <= RANGE_GAP) run.push(o);
        else runs.push([o]);
      }
      for (const run of runs) {
        const bytes = run[run.length - 1].offset + run[run.length - 1].length - run[0].offset;
        const piece = bytes / Math.ceil(bytes / span);
        let current: Wanted[] = [];
        for (const o of run) {
          if (current.length && o.offset + o.length - current[0].offset > piece) {
            ranges.push({ pack, objects: current });
            current = [];
          }
          current.push(o);
        }
        ranges.push({ pack, objects: current });
      }
    }
    await eachLimited(ranges, READ_PARALLEL, (r) => this.readRange(r.pack, r.objects, onObject));
  }

  /**
   * Streams one range of a pack and hands out its objects as their bytes arrive, so memory holds
   * about one object whatever the range. A body that breaks off is resumed from the first object
   * not yet handed out (the SDK retries requests, not bodies).
   */
  private async readRange(pack: string, objects: Wanted[], onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void> {
    const key = this.key(pack);
    const end = objects[objects.length - 1].offset + objects[objects.length - 1].length;
    let next = 0;
    for (let attempt = 1; ; attempt++) {
      const start = objects[next].offset;
      try {
        let res;
        try {
          res = await this.s3.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
        } catch (err) {
          if (isAbsentKey(err)) throw notFound(`pack ${pack} in ${this.url}`, 'the bucket lacks data of this version; push it again from a workspace that has it', { object: objects[next].id });
          throw this.fail(err);
        }
        // An endpoint that ignores Range would hand out the wrong bytes: refuse rather than misread.
        if (!res.ContentRange?.startsWith(`bytes ${start}-`)) throw remoteError(`${this.url} answered a ranged GET of ${key} without the range (Content-Range: ${res.ContentRange ?? 'none'})`, 'the endpoint must support HTTP Range requests');
        let pos = start;
        let parts: Buffer[] = [];
        let have = 0;
        for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
          parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          have += chunk.byteLength;
          while (next < objects.length && objects[next].offset + objects[next].length <= pos + have) {
            const o = objects[next];
            const buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
            await onObject(o.id, buf.subarray(o.offset - pos, o.offset - pos + o.length));
            next++;
            const used = o.offset + o.length - pos;
            parts = [buf.subarray(used)];
            have -= used;
            pos += used;
          }
        }
        if (next < objects.length) throw corrupt(`pack ${pack} in ${this.url} is shorter than its index says`, undefined, { object: objects[next].id });
        return;
      } catch (err) {
        if (err instanceof EltonError) throw err;
        if (attempt >= MAX_ATTEMPTS) throw this.fail(err);
        await new Promise((r) => setTimeout(r, Math.random() * 100 * 2 ** attempt));
      }
    }
  }

  async close(): Promise<void> {
    this.s3.close();
  }
}
