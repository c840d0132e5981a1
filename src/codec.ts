// How a store's objects are named, stored and verified: its codec. A plain store names objects
// by SHA-256 and stores their ordinary encoding; an encrypted one (docs/encryption.md) names them
// by HMAC-SHA256 under its id key and seals every stored object and version record.

import { webcrypto } from 'node:crypto';
import { decodeObject, decodeObjectAsync, encodeObject, type Compression, type Decoded, type Encoded, type KindCode } from './object.js';
import { sha256 } from './lib/hash.js';
import { keyedId, keysFor, seal, unseal } from './crypto/envelope.js';
import type { RepoKeys, WriterKeys } from './crypto/keyring.js';
import { authError, corrupt, hasCode, usage } from './errors.js';
import type { VersionRecord } from './version.js';

export interface ObjectCodec {
  /** Objects and records are sealed, and ids keyed. */
  readonly encrypted: boolean;
  /** The keys, for worker threads that build their own codec (undefined: a plain store). */
  readonly keys?: RepoKeys;
  /** The id of a plaintext. */
  idOf(plain: Uint8Array): Buffer;
  /** The same, off the main thread where that pays. */
  idOfAsync(plain: Uint8Array): Promise<Buffer>;
  /** The bytes stored and sent for an object. */
  encode(kind: KindCode, plain: Uint8Array, compression: Compression, id?: Buffer): Encoded;
  /** Verifies stored bytes against their id and returns the plaintext. */
  decode(data: Uint8Array, what: string, id: string): Decoded;
  decodeAsync(data: Uint8Array, what: string, id: string, plainSize?: number): Promise<Decoded>;
  /**
   * A version record (or draft) in its stored form: in an encrypted store, message, author, host
   * and git go sealed into `sealed`; tree, version, root, parent and time stay public, since
   * stores issue, order and copy versions by them. Stores keep that form and never open it.
   */
  sealVersion(record: VersionRecord): VersionRecord;
  /** A stored record opened: its sealed fields checked and restored. */
  openVersion(record: VersionRecord): VersionRecord;
}

export const plainCodec: ObjectCodec = {
  encrypted: false,
  idOf: (plain) => sha256(plain),
  idOfAsync: async (plain) => Buffer.from(await webcrypto.subtle.digest('SHA-256', plain)),
  encode: (kind, plain, compression, id) => encodeObject(kind, plain, compression, id),
  decode: (data, what, id) => decodeObject(data, what, id),
  decodeAsync: (data, what, id, plainSize) => decodeObjectAsync(data, what, id, plainSize),
  sealVersion: (record) => record,
  openVersion: (record) => record,
};

/**
 * What a record's seal is bound to (a sealed object binds its id): its public fields, its number
 * included, so that none can be changed, no sealed part moved to another record, and no record
 * shown again under a newer number (a rollback), without detection.
 */
const recordBinding = (r: VersionRecord) =>
  sha256(`elton record\n${r.tree}\n${r.version}\n${r.parent ?? ''}\n${r.root}\n${r.time}`).toString('hex');

interface SealedFields { message: string; author: string; host: string; git: VersionRecord['git'] }

const needsKey = () => authError('this store is encrypted, and its key is not open',
  'offer a key: ELTON_KEYFILE, ELTON_PASSPHRASE, or KMS credentials (docs/encryption.md)');

/**
 * An encrypted store opened without its key (a backup host): objects and records pass through
 * as stored, which is all a copy needs, and nothing can be read or written in plaintext.
 */
export const lockedCodec: ObjectCodec = {
  encrypted: true,
  idOf: () => { throw needsKey(); },
  idOfAsync: async () => { throw needsKey(); },
  encode: () => { throw needsKey(); },
  decode: () => { throw needsKey(); },
  decodeAsync: async () => { throw needsKey(); },
  sealVersion(record) {
    if (record.sealed === undefined) throw needsKey();
    return record;
  },
  openVersion: (record) => record,
};

export function encryptedCodec(keys: RepoKeys): ObjectCodec {
  const idOf = (plain: Uint8Array) => keyedId(keys, plain);
  const idKey = webcrypto.subtle.importKey('raw', keys.idKey, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const idOfAsync = async (plain: Uint8Array) => Buffer.from(await webcrypto.subtle.sign('HMAC', await idKey, plain));
  return {
    encrypted: true,
    keys,
    idOf,
    idOfAsync,
    encode(kind, plain, compression, id) {
      const digest = id ?? idOf(plain);
      const inner = encodeObject(kind, plain, compression, digest);
      return { id: inner.id, data: seal(keys, inner.id, inner.data) };
    },
    decode(data, what, id) {
      const k = keysFor(keys, data, what, id);
      return decodeObject(unseal(k, id, data, what), what, id, k === keys ? idOf : (plain) => keyedId(k, plain));
    },
    async decodeAsync(data, what, id, plainSize) {
      const k = keysFor(keys, data, what, id);
      return decodeObjectAsync(unseal(k, id, data, what), what, id, plainSize, k === keys ? idOfAsync : async (plain) => keyedId(k, plain));
    },
    sealVersion(record) {
      if (record.sealed !== undefined) return record;
      assertMayCommit(keys, record.tree);
      const fields: SealedFields = { message: record.message, author: record.author, host: record.host, git: record.git };
      const sealed = seal(keys, recordBinding(record), Buffer.from(JSON.stringify(fields), 'utf8')).toString('base64');
      return { ...record, message: '', author: '', host: '', git: null, sealed };
    },
    openVersion(record) {
      const name = `${record.tree}@${record.version}`;
      const bad = (why: string) => corrupt(`version record ${name}: ${why}`, 'restore it from another copy of the store', { object: name });
      if (record.sealed === undefined) throw bad('it is not sealed, in an encrypted store');
      const sealed = Buffer.from(record.sealed, 'base64');
      const binding = recordBinding(record);
      let k: { encKey: Buffer };
      try {
        k = keysFor(keys, sealed, `version record ${name}`, binding);
      } catch (err) {
        // A write-only host sees the public fields of what others committed (its parent's root, say), nothing more.
        if (keys.writer && hasCode(err, 'E_AUTH')) return record;
        throw err;
      }
      const plain = unseal(k, binding, sealed, `version record ${name}`);
      // A write-only host may make versions of its own trees only: anything else it sealed is a forgery.
      const writer = k !== keys && 'trees' in k ? k as WriterKeys : undefined;
      if (writer && !writer.trees.includes(record.tree)) {
        throw corrupt(`version record ${name}: it was sealed by the write-only host "${writer.name}", which may commit only to ${writer.trees.join(', ')}`,
          `a forgery, or that host's trees changed: remove the writer (elton key remove ${writer.name}'s id, see elton key list) if its credential may be stolen`, { object: name });
      }
      let f: SealedFields;
      try { f = JSON.parse(plain.toString('utf8')) as SealedFields; } catch { throw bad('its sealed fields are not JSON'); }
      const { sealed: _, ...open } = record;
      return { ...open, message: f.message, author: f.author, host: f.host, git: f.git, ...(writer ? { writer: writer.name } : {}) };
    },
  };
}

/** A write-only host may commit to its own trees only: said before anything is uploaded. */
export function assertMayCommit(keys: RepoKeys | undefined, tree: string): void {
  if (keys?.writer && !keys.trees?.includes(tree)) {
    throw usage(`this write-only host may commit only to ${keys.trees?.join(', ') || 'no tree'}, not "${tree}"`,
      'commit to one of its trees (elton init --tree NAME), or ask for a credential that lists this one (elton key writer NAME --tree TREE)');
  }
}

/** The codec for these keys (a worker thread rebuilds its store's codec from them). */
export const codecFor = (keys: RepoKeys | undefined): ObjectCodec => (keys ? encryptedCodec(keys) : plainCodec);
