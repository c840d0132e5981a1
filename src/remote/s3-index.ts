// The two metadata formats of an S3 store: index objects (where each object lives, plus the trees inline) and version envelopes.
//
// An index object is written once per push, after the push's data packs are durable. It names
// those packs, says where every object of the push lives, and carries the push's tree objects
// inline, so that listing a tree never touches data and a reader learns a whole push's
// metadata in one GET. It is named by the SHA-256 of its bytes, which every reader checks.

import { createHash } from 'node:crypto';
import { corrupt } from '../errors.js';
import { isId } from '../lib/hash.js';
import { decodeVersion, encodeVersion, type VersionRecord } from '../version.js';

const INDEX_MAGIC = Buffer.from('ELTI');
/**
 * 1: data packs are ustar (`data/<P>.tar`), a 512-byte header before each object.
 * 2: data packs are the objects back to back (`data/<P>.pack`): the index locates them, and the
 *    headers cost 11% on a tree of small files. Inline objects may be deltas (INLINE_DELTA).
 */
export const INDEX_FORMAT = 2;
const ENTRY_BYTES = 48;
/** The pack number of an object stored inline, in the index object's own tree area. */
export const INLINE = 0xffff;
/**
 * An inline object stored as a delta (format 2): 32-byte base id, then a delta (src/lib/delta.ts)
 * that rebuilds the object's plain bytes from the base's. The base is located by the same
 * version envelope, so a reader holds it whenever it holds the delta.
 */
export const INLINE_DELTA = 0xfffe;
const MAX_PACKS = INLINE_DELTA;

export interface IndexEntry {
  id: string;
  /** Index into `packs`, or INLINE. */
  pack: number;
  offset: number;
  length: number;
}

export interface IndexObject {
  /** SHA-256 of the encoded index object: its name in the bucket. */
  hash: string;
  format: number;
  /** Data pack ids (SHA-256 of each pack). */
  packs: string[];
  /** Per pack, whether it is ustar-framed (data/<id>.tar) rather than raw (data/<id>.pack). */
  tar: boolean[];
  entries: IndexEntry[];
  /** The inline objects (trees), back to back; INLINE entries' offsets point in here. */
  inline: Buffer;
}

/**
 * Layout: "ELTI", format 02, three zero bytes; u32 pack count, then the 32-byte pack ids, then
 * one byte per pack (0: raw, 1: ustar); u32 entry count, then per entry (sorted by id) the
 * 32-byte id, u16 pack number (ffff = inline, fffe = inline delta), u16 zero, u64 offset, u32
 * length; then the inline area. All integers big-endian. Format 01 has no framing bytes (every
 * pack is ustar) and no deltas.
 */
export function encodeIndexObject(packs: string[], entries: IndexEntry[], inline: Buffer, tar: boolean[] = packs.map(() => false)): { hash: string; bytes: Buffer } {
  if (packs.length >= MAX_PACKS) throw new Error('internal: too many packs in one index object');
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const head = Buffer.alloc(8 + 4 + packs.length * 33 + 4 + sorted.length * ENTRY_BYTES);
  INDEX_MAGIC.copy(head, 0);
  head[4] = INDEX_FORMAT;
  let o = 8;
  head.writeUInt32BE(packs.length, o); o += 4;
  for (const p of packs) { head.write(p, o, 32, 'hex'); o += 32; }
  for (let i = 0; i < packs.length; i++) head[o++] = tar[i] ? 1 : 0;
  head.writeUInt32BE(sorted.length, o); o += 4;
  for (const e of sorted) {
    head.write(e.id, o, 32, 'hex');
    head.writeUInt16BE(e.pack, o + 32);
    head.writeBigUInt64BE(BigInt(e.offset), o + 36);
    head.writeUInt32BE(e.length, o + 44);
    o += ENTRY_BYTES;
  }
  const bytes = Buffer.concat([head, inline]);
  return { hash: createHash('sha256').update(bytes).digest('hex'), bytes };
}

export function decodeIndexObject(bytes: Buffer, hash: string): IndexObject {
  const bad = (why: string) => corrupt(`index object ${hash}: ${why}`, 'the bucket is damaged; push the data again from a workspace that has it', { object: hash });
  if (createHash('sha256').update(bytes).digest('hex') !== hash) throw bad('its content does not match its name');
  if (bytes.length < 16 || !bytes.subarray(0, 4).equals(INDEX_MAGIC)) throw bad('bad magic');
  const format = bytes[4];
  if (format !== 1 && format !== 2) throw bad(`unsupported index format ${format}`);
  let o = 8;
  const packCount = bytes.readUInt32BE(o); o += 4;
  const framed = format >= 2;
  if (bytes.length < o + packCount * (framed ? 33 : 32) + 4) throw bad('truncated');
  const packs = new Array<string>(packCount);
  for (let i = 0; i < packCount; i++, o += 32) packs[i] = bytes.toString('hex', o, o + 32);
  const tar = new Array<boolean>(packCount).fill(true);
  if (framed) {
    for (let i = 0; i < packCount; i++, o++) {
      if (bytes[o] > 1) throw bad(`unknown pack framing ${bytes[o]}`);
      tar[i] = bytes[o] === 1;
    }
  }
  const count = bytes.readUInt32BE(o); o += 4;
  if (bytes.length < o + count * ENTRY_BYTES) throw bad('truncated');
  const inlineStart = o + count * ENTRY_BYTES;
  const inline = bytes.subarray(inlineStart);
  const entries = new Array<IndexEntry>(count);
  for (let i = 0; i < count; i++, o += ENTRY_BYTES) {
    const e: IndexEntry = { id: bytes.toString('hex', o, o + 32), pack: bytes.readUInt16BE(o + 32), offset: Number(bytes.readBigUInt64BE(o + 36)), length: bytes.readUInt32BE(o + 44) };
    const inlined = e.pack === INLINE || (format >= 2 && e.pack === INLINE_DELTA);
    if (inlined ? e.offset + e.length > inline.length : e.pack >= packCount) throw bad(`entry ${e.id} points outside the index`);
    if (e.pack === INLINE_DELTA && e.length < 33) throw bad(`delta entry ${e.id} is too short`);
    entries[i] = e;
  }
  return { hash, format, packs, tar, entries, inline };
}

/** Where a data pack lives: raw packs (written now) at data/<id>.pack, ustar ones (format 1) at data/<id>.tar. */
export function packPath(pack: string, tar = false): string {
  return tar ? `data/${pack}.tar` : `data/${pack}.pack`;
}

const ENVELOPE_FORMAT = 1;

/**
 * A version as the bucket stores it at versions/<tree>/<v>: the version record in its stored
 * encoding (with its digest), plus the index objects that locate everything the version
 * reaches, so that a cold reader fetches exactly those and lists nothing.
 */
export function encodeEnvelope(record: VersionRecord, indexes: Iterable<string>): Buffer {
  return Buffer.from(JSON.stringify({ format: ENVELOPE_FORMAT, record: encodeVersion(record).toString('base64'), indexes: [...indexes].sort() }));
}

export function decodeEnvelope(bytes: Buffer, tree: string, version: number): { record: VersionRecord; indexes: string[] } {
  const bad = (why: string) => corrupt(`version ${tree}@${version} in the bucket: ${why}`, undefined, { object: `${tree}@${version}` });
  let doc: { format?: number; record?: string; indexes?: unknown };
  try { doc = JSON.parse(bytes.toString('utf8')); } catch { throw bad('not JSON'); }
  if (doc.format !== ENVELOPE_FORMAT) throw bad(`unsupported format ${doc.format}`);
  if (typeof doc.record !== 'string' || !Array.isArray(doc.indexes) || !doc.indexes.every((h) => typeof h === 'string' && isId(h))) throw bad('malformed');
  return { record: decodeVersion(Buffer.from(doc.record, 'base64'), tree, version), indexes: doc.indexes as string[] };
}
