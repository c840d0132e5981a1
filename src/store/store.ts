// The storage contract every remote satisfies: content-addressed objects plus immutable version records.

import type { ChunkerParams } from '../chunker.js';
import type { Compression } from '../object.js';
import type { Reporter } from '../events.js';
import type { VersionRecord } from '../version.js';
import type { CacheUse } from './user-cache.js';
import type { SimilarTree } from '../tree-delta.js';
import type { ObjectCodec } from '../codec.js';

export const STORE_FORMAT = 1;

export interface StoreConfig {
  format: number;
  /** How object ids are derived: "sha256" of the plaintext, or "hmac-sha256" under an encrypted store's id key. */
  idScheme: 'sha256' | 'hmac-sha256';
  /** Present in an encrypted store (docs/encryption.md): objects and records are sealed, and the keyring is kept beside the config. */
  encryption?: { cipher: 'aes-256-gcm' };
  chunker: ChunkerParams;
  compression: Compression;
  created: string;
}

/** A version record before the store has given it a number. */
export type VersionDraft = Omit<VersionRecord, 'version'>;

/**
 * A root of a tree-closure request, at its path in the version; `base`, if given, is a tree the
 * requester holds with everything beneath it, at the same path: only what differs from it is sent.
 */
export interface ClosureRoot { id: string; path: string; base?: string | null }

/** What a command moved over the network: the `transfer` field of every command's --json. */
export interface Transfer { requests: number; bytesUp: number; bytesDown: number }

/** Receives new objects; nothing written is visible to readers of versions until `finish` resolves. */
export interface ObjectWriter {
  add(id: string, data: Buffer): Promise<void>;
  /** Makes every added object durable. */
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * A store. Guarantees: objects are immutable and durable once a writer's `finish` resolves;
 * `issueVersion` is atomic (of several racing issuers of the same tree, each gets a distinct
 * number, latest + 1 at the moment it is issued); a version is visible to every later reader,
 * and only once every object it reaches is stored.
 */
export interface Store {
  readonly url: string;
  readonly config: StoreConfig;
  /** How its objects are named, stored and verified (plain, or encrypted: docs/encryption.md). */
  readonly codec: ObjectCodec;
  /** Network use so far (zero for local stores). */
  readonly transfer: Transfer;
  /** For stores fronting a remote: the distinct objects fetched, and those found in a local cache instead. */
  readonly use?: CacheUse;
  /** Returns the ids, among `ids`, that the store does not hold. */
  missing(ids: Iterable<string>): Promise<Set<string>>;
  writer(): ObjectWriter;
  /** Every id the store holds, where listing them is cheap (local stores); lets a commit skip encoding known chunks. */
  knownIds?(): Promise<string[]>;
  /** Reads encoded objects (header + payload); calls `onObject` once per id, in any order. Throws not-found for absent ids. */
  readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void>;
  /**
   * Hints that these objects will be read soon, so that a remote-backed store can fetch them
   * all in a constant number of requests instead of one per later read. `sizes` (plain bytes
   * per id) helps it split the work into parallel streams.
   */
  prefetch?(ids: Iterable<string>, sizes?: Map<string, number>, reporter?: Reporter): Promise<void>;
  /** The same for the tree objects under `root` along the selected paths. */
  prefetchTrees?(root: string, prefixes?: string[]): Promise<void>;
  /** For caches: forgets the cached copy of an object found corrupt, so the next read fetches it again; returns what was dropped. */
  dropCached?(id: string): Promise<string | undefined>;
  listTrees(): Promise<string[]>;
  listVersions(tree: string): Promise<number[]>;
  /** 0 when the tree has no version yet. */
  latestVersion(tree: string): Promise<number>;
  /** Why the last `latestVersion(tree)` may be behind (a master answered from its cache; docs/federation.md), if it may be. */
  staleLatest?(tree: string): string | undefined;
  readVersion(tree: string, version: number): Promise<VersionRecord>;
  /**
   * Issues tree@(latest + 1) for `draft`. A draft whose parent is no longer the latest version
   * is refused with E_CONFLICT unless `force`, which records it with its true parent.
   */
  issueVersion(draft: VersionDraft, force: boolean, reporter?: Reporter): Promise<VersionRecord>;
  close(): Promise<void>;
}

/** Where a remote reads the objects it sends: the local store in front of it. */
export interface ObjectSource {
  /** The encoded length of an object, if held. */
  locate(id: string): Promise<{ length: number } | undefined>;
  readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void>;
  /** A similar tree the receiver holds (its counterpart in the version before), to store or send this one as a delta against. */
  similar?(id: string): SimilarTree | undefined;
}

/**
 * What a commit's version covers, for remotes that record where its objects live (S3): `ids`
 * are reachable from the draft's root; when `parentToo`, everything else it reaches is under
 * the parent version's root.
 */
export interface VersionContents { ids: string[]; parentToo: boolean }

/**
 * What a copied version covers (a backup): `ids` are the objects it reaches beyond those of
 * `base`, a version of the same tree already at the store (null: `ids` are all it reaches).
 */
export interface CopiedContents { ids: string[]; base: number | null }

/** Whether a copied version record was created, or an identical one was there already. */
export type PutOutcome = 'created' | 'present';

/**
 * What a backup writes to: any store, reached directly (never through a cache, which could
 * answer for objects the store itself lacks).
 */
export interface CopyTarget {
  readonly url: string;
  readonly config: StoreConfig;
  readonly transfer: Transfer;
  missing(ids: Iterable<string>): Promise<Set<string>>;
  send(ids: string[], source: ObjectSource, reporter?: Reporter): Promise<void>;
  listTrees(): Promise<string[]>;
  listVersions(tree: string): Promise<number[]>;
  readVersion(tree: string, version: number): Promise<VersionRecord>;
  /**
   * Creates exactly this record, number included, once every object it reaches is held here;
   * 'present' when an identical record is already there, E_CONFLICT when a different one is.
   */
  putVersion(record: VersionRecord, contents: CopiedContents): Promise<PutOutcome>;
  close(): Promise<void>;
}

/** What a backup reads from: a store reached directly, which can tell the stored length of its objects. */
export interface CopySource {
  readonly url: string;
  readonly config: StoreConfig;
  readonly transfer: Transfer;
  /** Stored (encoded) lengths of the held objects among `ids`; absent ones are left out. */
  lengths(ids: string[]): Promise<Map<string, number>>;
  /** As Remote.readObjects. */
  readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>, sizes?: Map<string, number>): Promise<void>;
  listTrees(): Promise<string[]>;
  listVersions(tree: string): Promise<number[]>;
}

/**
 * A store reached over the network (a master, a bucket). It sits behind a CachedStore, which
 * keeps what it fetches, stages commits locally and hands them over through `send`.
 */
export interface Remote {
  readonly url: string;
  readonly config: StoreConfig;
  readonly transfer: Transfer;
  missing(ids: Iterable<string>): Promise<Set<string>>;
  /** Makes these objects, read from `source`, durable at the remote, in as few requests as it allows. */
  send(ids: string[], source: ObjectSource, reporter?: Reporter): Promise<void>;
  /** Fetches objects in any order; `sizes` (plain bytes per id) helps split the work into parallel streams. */
  readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>, sizes?: Map<string, number>): Promise<void>;
  /** The tree objects beneath each root (at its path), along the selected paths. */
  readTrees(roots: ClosureRoot[], prefixes: string[] | undefined, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void>;
  listTrees(): Promise<string[]>;
  listVersions(tree: string): Promise<number[]>;
  latestVersion(tree: string): Promise<number>;
  /** See Store.staleLatest. */
  readonly stale?: ReadonlyMap<string, string>;
  readVersion(tree: string, version: number): Promise<VersionRecord>;
  /**
   * As Store.issueVersion, once every object of the draft has been sent. `seal` turns the record,
   * numbered, into its stored form (an encrypted store's seal binds the number): the remote calls
   * it for the number it is about to create, again if it must take another.
   */
  issueVersion(draft: VersionDraft, force: boolean, contents: VersionContents, seal?: (record: VersionRecord) => VersionRecord): Promise<VersionRecord>;
  /** As CopyTarget.putVersion. */
  putVersion(record: VersionRecord, contents: CopiedContents): Promise<PutOutcome>;
  /** As CopySource.lengths. */
  lengths(ids: string[]): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/**
 * Where an encrypted remote keeps its keyring (docs/encryption.md), as opaque bytes: a master or a
 * bucket stores it without being able to use it. `tag` names the bytes read; a write names the
 * tag it replaces (null: create, only if there is none), and fails with E_CONFLICT if the keyring
 * changed meanwhile, so that two key commands never lose each other's wrapping.
 */
export interface KeyringHolder {
  readKeyringBytes(): Promise<{ data: Buffer; tag: string } | undefined>;
  writeKeyringBytes(data: Buffer, expected: string | null): Promise<void>;
}

/** The ids of every object a store holds: what a copy of an encrypted store compares, since nothing can walk its trees without the key. */
export interface IdLister {
  listIds(): Promise<string[]>;
}

export const noTransfer = (): Transfer => ({ requests: 0, bytesUp: 0, bytesDown: 0 });
