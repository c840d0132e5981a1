// How a store's objects are named, stored and verified: its codec. A plain store names objects
// by SHA-256 and stores their ordinary encoding; an encrypted one (docs/encryption.md) names them
// by HMAC-SHA256 under its id key and seals every stored object and version record.

import { webcrypto } from 'node:crypto';
import { decodeObject, decodeObjectAsync, encodeObject, type Compression, type Decoded, type Encoded, type KindCode } from './object.js';
import { sha256 } from './lib/hash.js';
import { keyedId, seal, unseal } from './crypto/envelope.js';
import type { RepoKeys } from './crypto/keyring.js';

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
  /** A named record (a version record) as stored: sealed with its name as associated data, when encrypted. */
  sealRecord(name: string, record: Buffer): Buffer;
  openRecord(name: string, stored: Buffer, what: string): Buffer;
}

export const plainCodec: ObjectCodec = {
  encrypted: false,
  idOf: (plain) => sha256(plain),
  idOfAsync: async (plain) => Buffer.from(await webcrypto.subtle.digest('SHA-256', plain)),
  encode: (kind, plain, compression, id) => encodeObject(kind, plain, compression, id),
  decode: (data, what, id) => decodeObject(data, what, id),
  decodeAsync: (data, what, id, plainSize) => decodeObjectAsync(data, what, id, plainSize),
  sealRecord: (_name, record) => record,
  openRecord: (_name, stored) => stored,
};

/** The record's name, as the 32 bytes its seal is bound to (sealed objects bind their id). */
const recordBinding = (name: string) => sha256(`elton record:${name}`).toString('hex');

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
      return decodeObject(unseal(keys, id, data, what), what, id, idOf);
    },
    async decodeAsync(data, what, id, plainSize) {
      return decodeObjectAsync(unseal(keys, id, data, what), what, id, plainSize, idOfAsync);
    },
    sealRecord: (name, record) => seal(keys, recordBinding(name), record),
    openRecord: (name, stored, what) => unseal(keys, recordBinding(name), stored, what),
  };
}

/** The codec for these keys (a worker thread rebuilds its store's codec from them). */
export const codecFor = (keys: RepoKeys | undefined): ObjectCodec => (keys ? encryptedCodec(keys) : plainCodec);
