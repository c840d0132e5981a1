// The object encoding: an 8-byte header (magic, format version, kind, codec, flags), an optional digest, then the payload.

import { brotliCompressSync, brotliDecompressSync, constants as zc } from 'node:zlib';
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from './lib/hash.js';
import { corrupt, formatError } from './errors.js';

export const OBJECT_FORMAT = 1;
const MAGIC = [0x45, 0x4c, 0x54]; // "ELT"
const HEADER_SIZE = 8;
const DIGEST_SIZE = 32;
const FLAG_DIGEST = 1;

export const Kind = { chunk: 1, tree: 2, version: 3, config: 4 } as const;
export type KindName = keyof typeof Kind;
export type KindCode = (typeof Kind)[KindName];

export const Codec = { raw: 0, brotli: 1 } as const;
export type CodecCode = (typeof Codec)[keyof typeof Codec];

export interface Compression { codec: 'brotli' | 'raw'; quality: number }

/** Data that compresses worse than this is stored raw: decoding it then costs nothing. */
const KEEP_IF_BELOW = 0.97;
const PROBE_SIZE = 32 * 1024;

function brotli(data: Uint8Array, quality: number): Buffer {
  return brotliCompressSync(data, {
    params: { [zc.BROTLI_PARAM_QUALITY]: quality, [zc.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
}

/**
 * Compresses when it pays. Large payloads are probed first with a small sample at the fastest
 * setting, so random data (media, archives, ciphertext) skips a full compression pass.
 */
function compress(plain: Uint8Array, compression: Compression): { codec: CodecCode; payload: Uint8Array } {
  if (compression.codec === 'raw' || plain.length < 64) return { codec: Codec.raw, payload: plain };
  if (plain.length > 4 * PROBE_SIZE) {
    const mid = Math.floor(plain.length / 2);
    const sample = plain.subarray(mid, mid + PROBE_SIZE);
    if (brotli(sample, 1).length >= sample.length * KEEP_IF_BELOW) return { codec: Codec.raw, payload: plain };
  }
  const packed = brotli(plain, compression.quality);
  if (packed.length >= plain.length * KEEP_IF_BELOW) return { codec: Codec.raw, payload: plain };
  return { codec: Codec.brotli, payload: packed };
}

export interface Encoded {
  /** Hex SHA-256 of the plaintext. */
  id: string;
  /** Header plus payload: the bytes stored and sent. */
  data: Buffer;
}

function header(kind: KindCode, codec: CodecCode, flags: number): Buffer {
  return Buffer.from([...MAGIC, OBJECT_FORMAT, kind, codec, flags, 0]);
}

/** Encodes a content-addressed object; its id is the SHA-256 of `plain`. */
export function encodeObject(kind: KindCode, plain: Uint8Array, compression: Compression, id?: Buffer): Encoded {
  const digest = id ?? sha256(plain);
  const { codec, payload } = compress(plain, compression);
  return { id: digest.toString('hex'), data: Buffer.concat([header(kind, codec, 0), payload]) };
}

/** Encodes a named record (version record, config): it carries its own digest, since its name is not a hash. */
export function encodeRecord(kind: KindCode, plain: Uint8Array): Buffer {
  return Buffer.concat([header(kind, Codec.raw, FLAG_DIGEST), sha256(plain), plain]);
}

export interface Decoded { kind: KindCode; plain: Buffer }

/**
 * Decodes and verifies an object. `expectedId` is checked for content-addressed objects;
 * records are checked against the digest they carry. `what` names the object in errors.
 */
export function decodeObject(data: Uint8Array, what: string, expectedId?: string): Decoded {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER_SIZE || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1] || buf[2] !== MAGIC[2]) {
    throw corrupt(`${what}: not an elton object (bad magic)`, undefined, { object: what });
  }
  if (buf[3] !== OBJECT_FORMAT) throw formatError(`${what}: object format ${buf[3]} is not supported (this elton reads format ${OBJECT_FORMAT})`);
  const kind = buf[4] as KindCode;
  const codec = buf[5];
  const flags = buf[6];
  let offset = HEADER_SIZE;
  let digest: Buffer | undefined;
  if (flags & FLAG_DIGEST) {
    digest = buf.subarray(offset, offset + DIGEST_SIZE);
    offset += DIGEST_SIZE;
  }
  const payload = buf.subarray(offset);
  let plain: Buffer;
  try {
    if (codec === Codec.raw) plain = payload;
    else if (codec === Codec.brotli) plain = brotliDecompressSync(payload);
    else throw formatError(`${what}: unknown codec ${codec}`);
  } catch (err) {
    if (err instanceof Error && err.name === 'EltonError') throw err;
    throw corrupt(`${what}: payload does not decompress`, undefined, { object: what });
  }
  const actual = sha256(plain);
  const expected = expectedId ? Buffer.from(expectedId, 'hex') : digest;
  if (!expected || expected.length !== DIGEST_SIZE || !timingSafeEqual(actual, expected)) {
    throw corrupt(`${what}: content hash is ${actual.toString('hex')}`, undefined, { object: what });
  }
  return { kind, plain };
}
