// The object encoding: an 8-byte header (magic, format version, kind, codec, flags), an optional digest, then the payload.

import { brotliCompressSync, brotliDecompressSync, brotliDecompress, constants as zc } from 'node:zlib';
import { promisify } from 'node:util';
import { timingSafeEqual, webcrypto } from 'node:crypto';
import { sha256 } from './lib/hash.js';
import { corrupt, formatError } from './errors.js';

export const OBJECT_FORMAT = 1;
const brotliDecompressAsync = promisify(brotliDecompress);
/**
 * The most an object may decompress to: chunks are at most 1 MiB, and a tree of a million
 * entries is about 100 MiB. Data from a remote or a peer is untrusted until its hash is checked,
 * which needs the plain bytes: a small payload must not be able to expand without bound.
 */
const MAX_PLAIN_BYTES = 256 * 1024 * 1024;
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
const SAMPLE_SIZE = 4096;
/** Bits per byte above which a sample is taken for random: random 4 KiB samples measure ~7.95. */
const RANDOM_ENTROPY = 7.8;

function brotli(data: Uint8Array, quality: number): Buffer {
  return brotliCompressSync(data, {
    params: { [zc.BROTLI_PARAM_QUALITY]: quality, [zc.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
}

const counts = new Uint32Array(256);

/** Shannon entropy (bits per byte) of a sample from the middle of `data`. */
export function sampleEntropy(data: Uint8Array): number {
  const start = Math.max(0, (data.length >> 1) - (SAMPLE_SIZE >> 1));
  const end = Math.min(data.length, start + SAMPLE_SIZE);
  counts.fill(0);
  for (let i = start; i < end; i++) counts[data[i]]++;
  const n = end - start;
  let h = 0;
  for (let i = 0; i < 256; i++) {
    if (counts[i]) {
      const p = counts[i] / n;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

/**
 * Compresses when it pays. A byte histogram of a 4 KiB sample spots random data (media,
 * archives, ciphertext) in microseconds, so it skips a compression pass that would be thrown away.
 */
function compress(plain: Uint8Array, compression: Compression): { codec: CodecCode; payload: Uint8Array } {
  if (compression.codec === 'raw' || plain.length < 64) return { codec: Codec.raw, payload: plain };
  if (plain.length >= SAMPLE_SIZE && sampleEntropy(plain) > RANDOM_ENTROPY) return { codec: Codec.raw, payload: plain };
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

interface Parsed { kind: KindCode; codec: number; digest?: Buffer; payload: Buffer }

function parseHeader(data: Uint8Array, what: string): Parsed {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER_SIZE || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1] || buf[2] !== MAGIC[2]) {
    throw corrupt(`${what}: not an elton object (bad magic)`, undefined, { object: what });
  }
  if (buf[3] !== OBJECT_FORMAT) throw formatError(`${what}: object format ${buf[3]} is not supported (this elton reads format ${OBJECT_FORMAT})`);
  const codec = buf[5];
  if (codec !== Codec.raw && codec !== Codec.brotli) throw formatError(`${what}: unknown codec ${codec}`);
  let offset = HEADER_SIZE;
  let digest: Buffer | undefined;
  if (buf[6] & FLAG_DIGEST) {
    digest = buf.subarray(offset, offset + DIGEST_SIZE);
    offset += DIGEST_SIZE;
  }
  return { kind: buf[4] as KindCode, codec, digest, payload: buf.subarray(offset) };
}

function check(parsed: Parsed, plain: Buffer, actual: Buffer, what: string, expectedId?: string): Decoded {
  const expected = expectedId ? Buffer.from(expectedId, 'hex') : parsed.digest;
  if (!expected || expected.length !== DIGEST_SIZE || !timingSafeEqual(actual, expected)) {
    throw corrupt(`${what}: content hash is ${actual.toString('hex')}`, undefined, { object: what });
  }
  return { kind: parsed.kind, plain };
}

const undecodable = (what: string) => corrupt(`${what}: payload does not decompress`, undefined, { object: what });

/**
 * Decodes and verifies an object. `expectedId` is checked for content-addressed objects (against
 * `idOf` of the plaintext: SHA-256, or a keyed hash in an encrypted store); records are checked
 * against the SHA-256 digest they carry. `what` names the object in errors.
 */
export function decodeObject(data: Uint8Array, what: string, expectedId?: string, idOf: (plain: Uint8Array) => Buffer = sha256): Decoded {
  const parsed = parseHeader(data, what);
  let plain: Buffer;
  try {
    plain = parsed.codec === Codec.brotli ? brotliDecompressSync(parsed.payload, { maxOutputLength: MAX_PLAIN_BYTES }) : parsed.payload;
  } catch {
    throw undecodable(what);
  }
  return check(parsed, plain, expectedId ? idOf(plain) : sha256(plain), what, expectedId);
}

/**
 * The same, with decompression and hashing on libuv's thread pool, so that a checkout can
 * decode several objects at once while the main thread writes files.
 */
export async function decodeObjectAsync(
  data: Uint8Array, what: string, expectedId?: string, plainSize?: number,
  idOfAsync: (plain: Uint8Array) => Promise<Buffer> = async (plain) => Buffer.from(await webcrypto.subtle.digest('SHA-256', plain)),
): Promise<Decoded> {
  const parsed = parseHeader(data, what);
  let plain: Buffer;
  try {
    // Output in one piece when the size is known: the default 16 KiB costs a callback and a copy per 16 KiB.
    const chunkSize = Math.max(64 * 1024, Math.min(plainSize ?? 256 * 1024, 16 * 1024 * 1024));
    plain = parsed.codec === Codec.brotli ? await brotliDecompressAsync(parsed.payload, { chunkSize, maxOutputLength: MAX_PLAIN_BYTES }) : parsed.payload;
  } catch {
    throw undecodable(what);
  }
  const actual = expectedId ? await idOfAsync(plain) : sha256(plain);
  return check(parsed, plain, actual, what, expectedId);
}
