// Packs: many objects in one plain POSIX tar file (one entry per object, named by its id), plus a binary index.
//
// A pack is readable by any tar tool, so a damaged store can be salvaged without elton.
// Entries are written with a hand-built ustar header because object ids always fit in the
// 100-byte name field, and because building 20,000 entries through a stream-per-entry tar
// library costs more than hashing them.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { corrupt } from '../errors.js';

const BLOCK = 512;
const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
const MAX_ENTRY_SIZE = 8 ** 11 - 1;

export function tarHeader(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) > 100 || size > MAX_ENTRY_SIZE) throw new Error(`tar entry ${name} does not fit a ustar header`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write('00000000000\0', 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

export interface PackEntry { id: string; offset: number; length: number }

/**
 * Appends objects to one pack file. Writes are batched; the caller fsyncs through `finish`.
 * Offsets are exact byte positions of each object's data, recorded in the index.
 */
export class PackFileWriter {
  readonly entries: PackEntry[] = [];
  private offset = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly hash = createHash('sha256');

  private constructor(readonly path: string, private readonly fh: fsp.FileHandle) {}

  static async create(path: string): Promise<PackFileWriter> {
    return new PackFileWriter(path, await fsp.open(path, 'wx', 0o444));
  }

  get size(): number { return this.offset; }

  async add(id: string, data: Buffer): Promise<void> {
    this.push(tarHeader(id, data.length));
    this.entries.push({ id, offset: this.offset, length: data.length });
    this.push(data);
    const pad = padding(data.length);
    if (pad) this.push(END_OF_ARCHIVE.subarray(0, pad));
    if (this.pendingBytes >= 4 * 1024 * 1024) await this.flush();
  }

  private push(buf: Buffer): void {
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    this.offset += buf.length;
    this.hash.update(buf);
  }

  private async flush(): Promise<void> {
    const bufs = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (bufs.length) await this.fh.writev(bufs);
  }

  /** Ends the archive, makes it durable and returns the pack's id (SHA-256 of the whole file). */
  async finish(): Promise<string> {
    this.push(END_OF_ARCHIVE);
    await this.flush();
    await this.fh.sync();
    await this.fh.close();
    return this.hash.digest('hex');
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
    await fsp.rm(this.path, { force: true });
  }
}

// Index: "ELTX", format byte, 3 zero bytes, entry count (u32 BE); then per entry the 32-byte id,
// data offset (u64 BE) and length (u32 BE), sorted by id; then the SHA-256 of everything before it.
const INDEX_MAGIC = Buffer.from('ELTX');
const INDEX_FORMAT = 1;
const INDEX_ENTRY = 44;

export function encodeIndex(entries: PackEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const body = Buffer.alloc(12 + sorted.length * INDEX_ENTRY);
  INDEX_MAGIC.copy(body, 0);
  body[4] = INDEX_FORMAT;
  body.writeUInt32BE(sorted.length, 8);
  let o = 12;
  for (const e of sorted) {
    body.write(e.id, o, 32, 'hex');
    body.writeBigUInt64BE(BigInt(e.offset), o + 32);
    body.writeUInt32BE(e.length, o + 40);
    o += INDEX_ENTRY;
  }
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

export function decodeIndex(buf: Buffer, name: string): PackEntry[] {
  const bad = (why: string) => corrupt(`pack index ${name}: ${why}`, 'rebuild it with a future `elton repair`, or restore the pack from a backup', { object: name });
  if (buf.length < 44 || !buf.subarray(0, 4).equals(INDEX_MAGIC)) throw bad('bad magic');
  if (buf[4] !== INDEX_FORMAT) throw bad(`unsupported index format ${buf[4]}`);
  const body = buf.subarray(0, buf.length - 32);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) throw bad('checksum mismatch');
  const count = buf.readUInt32BE(8);
  if (body.length !== 12 + count * INDEX_ENTRY) throw bad('truncated');
  const out: PackEntry[] = new Array(count);
  for (let i = 0, o = 12; i < count; i++, o += INDEX_ENTRY) {
    out[i] = { id: buf.toString('hex', o, o + 32), offset: Number(buf.readBigUInt64BE(o + 32)), length: buf.readUInt32BE(o + 40) };
  }
  return out;
}
