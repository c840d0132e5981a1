// The storage contract every remote satisfies: content-addressed objects plus immutable version records.

import type { ChunkerParams } from '../chunker.js';
import type { Compression } from '../object.js';
import type { VersionRecord } from '../version.js';

export const STORE_FORMAT = 1;

export interface StoreConfig {
  format: number;
  /** How object ids are derived: "sha256" of the plaintext today; keyed schemes come with encryption. */
  idScheme: 'sha256';
  chunker: ChunkerParams;
  compression: Compression;
  created: string;
}

/** Receives new objects; nothing written is visible to readers of versions until `finish` resolves. */
export interface ObjectWriter {
  add(id: string, data: Buffer): Promise<void>;
  /** Makes every added object durable. */
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * A store. Guarantees: objects are immutable and durable once a writer's `finish` resolves;
 * `createVersion` is atomic and exclusive (exactly one of several racing creators of the same
 * tree@v wins); a created version is visible to every later reader.
 */
export interface Store {
  readonly url: string;
  readonly config: StoreConfig;
  /** Returns the ids, among `ids`, that the store does not hold. */
  missing(ids: Iterable<string>): Promise<Set<string>>;
  writer(): ObjectWriter;
  /** Every id the store holds, where listing them is cheap (local stores); lets a commit skip encoding known chunks. */
  knownIds?(): Promise<string[]>;
  /** Reads encoded objects (header + payload); calls `onObject` once per id, in any order. Throws not-found for absent ids. */
  readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void>;
  listTrees(): Promise<string[]>;
  listVersions(tree: string): Promise<number[]>;
  /** 0 when the tree has no version yet. */
  latestVersion(tree: string): Promise<number>;
  readVersion(tree: string, version: number): Promise<VersionRecord>;
  /** Returns false when tree@version already exists. */
  createVersion(record: VersionRecord): Promise<boolean>;
  close(): Promise<void>;
}
