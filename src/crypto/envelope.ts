// Encrypted objects (docs/encryption.md): the ordinary encoding of an object (its kind, codec and
// payload) sealed with AES-256-GCM under the repository's object key. The id is bound in as
// associated data, so storage cannot swap one object for another; ids are HMAC-SHA256 of the
// plaintext under the id key, so storage cannot test for content it knows.

import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { authError, corrupt, formatError } from '../errors.js';
import type { RepoKeys } from './keyring.js';

const MAGIC = [0x45, 0x4c, 0x58]; // "ELX"
/** Sealed under the repository's object key. */
export const SEALED_FORMAT = 1;
/** Sealed under a write-only host's own key, named in the header (docs/encryption.md, "Write-only hosts"). */
export const WRITER_FORMAT = 2;
/**
 * Format 1: magic (3), format (1), nonce (12). Format 2 puts the writer's 16-byte id before the
 * nonce. Then the ciphertext of the encoding, its padding and the padding's length, then the
 * 16-byte tag.
 */
const HEADER_SIZE = 16;
const WRITER_ID_SIZE = 16;
const TAG_SIZE = 16;

/** The id of a plaintext in an encrypted repository (under the id key of whoever sealed it). */
export function keyedId(keys: { idKey: Buffer }, plain: Uint8Array): Buffer {
  return createHmac('sha256', keys.idKey).update(plain).digest();
}

export function isSealed(data: Uint8Array): boolean {
  return data.length >= 3 && data[0] === MAGIC[0] && data[1] === MAGIC[1] && data[2] === MAGIC[2];
}

const headerSize = (format: number) => (format === WRITER_FORMAT ? HEADER_SIZE + WRITER_ID_SIZE : HEADER_SIZE);
/** The padding's length ends the plaintext, as a 32-bit big-endian count. */
const TRAILER_SIZE = 4;

/**
 * Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with
 * PURBs", 2019): `length` rounded up so that only its top log2(log2(length)) + 1 bits are free.
 * A stored size then tells at most O(log log L) bits about the content's size instead of all of
 * them, for at most 12% more bytes (under 2% for chunks of a megabyte).
 */
export function padme(length: number): number {
  if (length < 2) return length;
  const e = Math.floor(Math.log2(length));
  const s = Math.floor(Math.log2(e)) + 1;
  const mask = 2 ** (e - s) - 1;
  return Math.floor((length + mask) / (mask + 1)) * (mask + 1);
}

/**
 * Seals an encoded object. The nonce is random: 96 bits, under one key, keep the chance of a
 * repeat below 2^-32 up to 2^32 objects (NIST SP 800-38D), and a repository holds far fewer.
 * A writer's keys (`keys.writer`) seal in format 2, which names the writer.
 */
export function seal(keys: RepoKeys, id: string, encoded: Uint8Array): Buffer {
  const format = keys.writer ? WRITER_FORMAT : SEALED_FORMAT;
  const size = headerSize(format);
  const header = Buffer.alloc(size);
  header.set(MAGIC, 0);
  header[3] = format;
  if (keys.writer) Buffer.from(keys.writer, 'hex').copy(header, 4);
  randomBytes(12).copy(header, size - 12);
  const cipher = createCipheriv('aes-256-gcm', keys.encKey, header.subarray(size - 12));
  cipher.setAAD(Buffer.concat([header, Buffer.from(id, 'hex')]));
  // Padded inside the ciphertext, so the padding is authenticated with the rest.
  const bare = size + encoded.length + TRAILER_SIZE + TAG_SIZE;
  const pad = Buffer.alloc(padme(bare) - bare + TRAILER_SIZE);
  pad.writeUInt32BE(pad.length - TRAILER_SIZE, pad.length - TRAILER_SIZE);
  const body = cipher.update(encoded);
  const padding = cipher.update(pad);
  const rest = cipher.final();
  // One copy into the result: GCM's final() is empty, and the tag comes last.
  return Buffer.concat([header, body, padding, rest, cipher.getAuthTag()], size + body.length + padding.length + rest.length + TAG_SIZE);
}

const writeOnly = () => authError('this host holds a write-only credential: it cannot read what it did not write itself',
  'read with the repository\'s key (ELTON_KEYFILE, ELTON_PASSPHRASE or KMS), without ELTON_WRITER');

/**
 * The keys that open a sealed object: the repository's, or those of the writer its header
 * names. A write-only host has only its own; a reader has every listed writer's.
 */
export function keysFor(keys: RepoKeys, sealed: Uint8Array, what: string, id: string): { encKey: Buffer; idKey: Buffer } {
  if (!isSealed(sealed) || sealed.length < HEADER_SIZE + TAG_SIZE) throw corrupt(`${what}: not an encrypted elton object`, undefined, { object: id });
  const format = sealed[3];
  if (format === SEALED_FORMAT) {
    if (keys.writer) throw writeOnly();
    return keys;
  }
  if (format !== WRITER_FORMAT) throw formatError(`${what}: encrypted object format ${format} is not supported (this elton reads formats ${SEALED_FORMAT} and ${WRITER_FORMAT})`);
  if (sealed.length < headerSize(format) + TAG_SIZE) throw corrupt(`${what}: not an encrypted elton object`, undefined, { object: id });
  const writer = Buffer.from(sealed.buffer, sealed.byteOffset + 4, WRITER_ID_SIZE).toString('hex');
  if (writer === keys.writer) return keys;
  if (keys.writer) throw writeOnly();
  const theirs = keys.writers?.get(writer);
  if (!theirs) {
    throw corrupt(`${what}: sealed by writer ${writer}, which this repository's keyring does not list`, 'a writer removed from the keyring (elton key remove) leaves what it wrote unreadable; restore the keyring from a backup if that was a mistake', { object: id });
  }
  return theirs;
}

/** Opens a sealed object stored under `id`. Any change to any byte of it, or a wrong key, is E_CORRUPT: nothing unauthenticated is returned. */
export function unseal(keys: { encKey: Buffer }, id: string, sealed: Uint8Array, what: string): Buffer {
  const data = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (!isSealed(data) || data.length < HEADER_SIZE + TAG_SIZE) throw corrupt(`${what}: not an encrypted elton object`, undefined, { object: id });
  if (data[3] !== SEALED_FORMAT && data[3] !== WRITER_FORMAT) throw formatError(`${what}: encrypted object format ${data[3]} is not supported`);
  const size = headerSize(data[3]);
  if (data.length < size + TAG_SIZE) throw corrupt(`${what}: not an encrypted elton object`, undefined, { object: id });
  const decipher = createDecipheriv('aes-256-gcm', keys.encKey, data.subarray(size - 12, size));
  decipher.setAAD(Buffer.concat([data.subarray(0, size), Buffer.from(id, 'hex')]));
  decipher.setAuthTag(data.subarray(data.length - TAG_SIZE));
  let plain: Buffer;
  try {
    const body = decipher.update(data.subarray(size, data.length - TAG_SIZE));
    const rest = decipher.final();
    plain = rest.length ? Buffer.concat([body, rest]) : body;
  } catch {
    throw corrupt(`${what}: it does not authenticate (tampered with, or sealed under another key)`, 'restore the object from another copy; if every object fails, the key is not this repository\'s', { object: id });
  }
  const padded = plain.length >= TRAILER_SIZE ? plain.readUInt32BE(plain.length - TRAILER_SIZE) + TRAILER_SIZE : Infinity;
  if (padded > plain.length) throw corrupt(`${what}: its padding is malformed`, 'restore the object from another copy', { object: id });
  return plain.subarray(0, plain.length - padded);
}

/** The fewest bytes a sealed object adds to its encoding (its padding comes on top: `padme`). */
export const SEAL_OVERHEAD = HEADER_SIZE + TRAILER_SIZE + TAG_SIZE;
