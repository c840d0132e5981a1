// Encrypted objects (docs/encryption.md): the ordinary encoding of an object (its kind, codec and
// payload) sealed with AES-256-GCM under the repository's object key. The id is bound in as
// associated data, so storage cannot swap one object for another; ids are HMAC-SHA256 of the
// plaintext under the id key, so storage cannot test for content it knows.

import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { corrupt, formatError } from '../errors.js';
import type { RepoKeys } from './keyring.js';

const MAGIC = [0x45, 0x4c, 0x58]; // "ELX"
export const SEALED_FORMAT = 1;
/** magic (3), format (1), nonce (12); then the ciphertext, then the 16-byte tag. */
const HEADER_SIZE = 16;
const TAG_SIZE = 16;

/** The id of a plaintext in an encrypted repository. */
export function keyedId(keys: RepoKeys, plain: Uint8Array): Buffer {
  return createHmac('sha256', keys.idKey).update(plain).digest();
}

export function isSealed(data: Uint8Array): boolean {
  return data.length >= 3 && data[0] === MAGIC[0] && data[1] === MAGIC[1] && data[2] === MAGIC[2];
}

/**
 * Seals an encoded object. The nonce is random: 96 bits, under one key, keep the chance of a
 * repeat below 2^-32 up to 2^32 objects (NIST SP 800-38D), and a repository holds far fewer.
 */
export function seal(keys: RepoKeys, id: string, encoded: Uint8Array): Buffer {
  const header = Buffer.alloc(HEADER_SIZE);
  header.set(MAGIC, 0);
  header[3] = SEALED_FORMAT;
  randomBytes(12).copy(header, 4);
  const cipher = createCipheriv('aes-256-gcm', keys.encKey, header.subarray(4, 16));
  cipher.setAAD(Buffer.concat([header, Buffer.from(id, 'hex')]));
  const body = cipher.update(encoded);
  const rest = cipher.final();
  // One copy into the result: GCM's final() is empty, and the tag comes last.
  return Buffer.concat([header, body, rest, cipher.getAuthTag()], HEADER_SIZE + body.length + rest.length + TAG_SIZE);
}

/** Opens a sealed object stored under `id`. Any change to any byte of it, or a wrong key, is E_CORRUPT: nothing unauthenticated is returned. */
export function unseal(keys: RepoKeys, id: string, sealed: Uint8Array, what: string): Buffer {
  const data = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (!isSealed(data) || data.length < HEADER_SIZE + TAG_SIZE) throw corrupt(`${what}: not an encrypted elton object`, undefined, { object: id });
  if (data[3] !== SEALED_FORMAT) throw formatError(`${what}: encrypted object format ${data[3]} is not supported (this elton reads format ${SEALED_FORMAT})`);
  const decipher = createDecipheriv('aes-256-gcm', keys.encKey, data.subarray(4, 16));
  decipher.setAAD(Buffer.concat([data.subarray(0, HEADER_SIZE), Buffer.from(id, 'hex')]));
  decipher.setAuthTag(data.subarray(data.length - TAG_SIZE));
  try {
    const plain = decipher.update(data.subarray(HEADER_SIZE, data.length - TAG_SIZE));
    const rest = decipher.final();
    return rest.length ? Buffer.concat([plain, rest]) : plain;
  } catch {
    throw corrupt(`${what}: it does not authenticate (tampered with, or sealed under another key)`, 'restore the object from another copy; if every object fails, the key is not this repository\'s', { object: id });
  }
}

/** Bytes a sealed object adds to its encoding. */
export const SEAL_OVERHEAD = HEADER_SIZE + TAG_SIZE;
