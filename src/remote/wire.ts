// The master protocol's bodies: id lists as packed 32-byte digests, and object packs as streamed tar.
//
// A pack on the wire has the same framing as a pack on disk (docs/format.md): one ustar entry per
// object, named by its id, holding the encoded object. Senders build headers by hand (as local
// packs do); receivers parse with tar-stream, one entry at a time, so a pack is never held whole.

import type { Readable, Writable } from 'node:stream';
import tar from 'tar-stream';
import { tarHeader } from '../store/pack.js';
import { isId } from '../lib/hash.js';
import { usage } from '../errors.js';

export const API = '/v1';
export const DEFAULT_PORT = 3586;
/** The largest object either side accepts: a chunk is at most 1 MiB, a tree of a huge directory more. */
export const MAX_OBJECT_BYTES = 64 * 1024 * 1024;
export const ID_BYTES = 32;

export function encodeIds(ids: Iterable<string>): Buffer {
  const list = [...ids];
  const buf = Buffer.allocUnsafe(list.length * ID_BYTES);
  list.forEach((id, i) => buf.write(id, i * ID_BYTES, ID_BYTES, 'hex'));
  return buf;
}

export function decodeIds(buf: Buffer): string[] {
  if (buf.length % ID_BYTES) throw usage(`an id list must be a multiple of ${ID_BYTES} bytes, got ${buf.length}`);
  const out = new Array<string>(buf.length / ID_BYTES);
  for (let i = 0; i < out.length; i++) out[i] = buf.toString('hex', i * ID_BYTES, (i + 1) * ID_BYTES);
  return out;
}

const BLOCK = 512;
const ZEROS = Buffer.alloc(2 * BLOCK);

/** The buffers of one tar entry: header, data, padding. */
export function tarEntry(name: string, data: Buffer): Buffer[] {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return pad ? [tarHeader(name, data.length), data, ZEROS.subarray(0, pad)] : [tarHeader(name, data.length), data];
}

/**
 * A pack entry named `<id>.delta` holds a tree as a delta: the 32-byte id of a base tree the
 * receiver holds, then the delta (src/lib/delta.ts) of the tree's plain bytes. Only uploads
 * to a master carry them.
 */
export const DELTA_SUFFIX = '.delta';

/**
 * Packs travel in one of two framings. `tar` (ustar, the pack-file format) costs a 512-byte
 * header and up to 511 bytes of padding per object: 11% on a tree of small files. `elton`
 * (protocol 2) costs 37 bytes: "ELTP", 01, three zero bytes; then per entry a type byte (1 an
 * object, 2 a tree delta), the 32-byte id and a u32 length (big-endian), and the bytes; a zero
 * type byte ends the pack. Receivers tell them apart by Content-Type.
 */
export type PackFraming = 'tar' | 'elton';
export const PACK_TYPES: Record<PackFraming, string> = { tar: 'application/x-tar', elton: 'application/x-elton-pack' };
export const framingOf = (contentType: string | undefined): PackFraming => (contentType?.split(';')[0].trim() === PACK_TYPES.elton ? 'elton' : 'tar');
/** The master protocol version this side speaks; protocol 2 adds the elton framing. */
export const PROTOCOL = 2;
export const PROTOCOL_HEADER = 'x-elton-protocol';
/** Federation (docs/federation.md): a named master says its name on every answer... */
export const MASTER_HEADER = 'x-elton-master';
/** ...and names itself in this header on every request it sends a peer, which never forwards such a request again. */
export const VIA_HEADER = 'x-elton-via';
/** On a @latest answer: the home could not be asked, so this is the newest version the answering master knows. */
export const STALE_HEADER = 'x-elton-stale';
/** Sent by a backup's or a replica's client: answer with what is stored at this master, never on behalf of a tree's home. */
export const LOCAL_HEADER = 'x-elton-local';
/** On POST /v1/objects: send the objects held and leave out the rest, instead of refusing the request. */
export const PARTIAL_HEADER = 'x-elton-partial';
/**
 * On PUT /v1/trees/NAME/versions/V to an encrypted master (docs/master.md): how many 32-byte ids
 * follow the record in the body (the objects the version reaches beyond its base)...
 */
export const IDS_HEADER = 'x-elton-ids';
/** ...and the version of the same tree they are counted beyond (absent: they are all it reaches). */
export const BASE_HEADER = 'x-elton-base';

const ELTP_MAGIC = Buffer.from([0x45, 0x4c, 0x54, 0x50, 1, 0, 0, 0]);
const ENTRY_END = 0;
const ENTRY_OBJECT = 1;
const ENTRY_DELTA = 2;
const ENTRY_HEAD = 1 + 32 + 4;

function eltonEntry(type: number, id: string, data: Buffer): Buffer[] {
  const head = Buffer.allocUnsafe(ENTRY_HEAD);
  head[0] = type;
  head.write(id, 1, 32, 'hex');
  head.writeUInt32BE(data.length, 33);
  return [head, data];
}

export const TAR_END = ZEROS;

/** Writes with backpressure: resolves when the stream can take more. */
export function writeAll(out: Writable, bufs: Buffer[]): Promise<void> | void {
  let ok = true;
  for (const b of bufs) ok = out.write(b) && ok;
  if (ok) return;
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', done);
      if (err) reject(err); else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('stream closed'));
    out.once('drain', onDrain).once('close', onClose).once('error', done);
  });
}

/** Small objects are sent in batches of about this many bytes: one write (one HTTP chunk) per batch, not three per object. */
const SEND_BATCH_BYTES = 256 * 1024;

/** Writes a pack to a stream, with backpressure, coalescing the entries of small objects. */
export class PackStreamWriter {
  private parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly out: Writable, private readonly framing: PackFraming = 'tar') {
    if (framing === 'elton') {
      this.parts.push(ELTP_MAGIC);
      this.bytes += ELTP_MAGIC.length;
    }
  }

  add(id: string, data: Buffer): Promise<void> | void {
    return this.entry(this.framing === 'tar' ? tarEntry(id, data) : eltonEntry(ENTRY_OBJECT, id, data));
  }

  /** A tree as a delta against `base`, a tree the receiver holds. */
  addDelta(id: string, base: string, delta: Buffer): Promise<void> | void {
    const data = Buffer.concat([Buffer.from(base, 'hex'), delta]);
    return this.entry(this.framing === 'tar' ? tarEntry(`${id}${DELTA_SUFFIX}`, data) : eltonEntry(ENTRY_DELTA, id, data));
  }

  private entry(buffers: Buffer[]): Promise<void> | void {
    for (const b of buffers) {
      this.parts.push(b);
      this.bytes += b.length;
    }
    if (this.bytes >= SEND_BATCH_BYTES) return this.flush();
  }

  private flush(): Promise<void> | void {
    if (!this.parts.length) return;
    const batch = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    return writeAll(this.out, [batch]);
  }

  /** Writes what is buffered and the end-of-archive blocks; the caller ends the stream. */
  async finish(): Promise<void> {
    const end = this.framing === 'tar' ? TAR_END : Buffer.from([ENTRY_END]);
    this.parts.push(end);
    this.bytes += end.length;
    await this.flush();
  }
}

export class PackFormatError extends Error {}

/**
 * Reads a tar pack entry by entry. Every entry must be a regular file named by an object id and
 * at most MAX_OBJECT_BYTES; `onEntry` is awaited before the next entry is read (backpressure).
 */
export async function readPack(
  input: Readable, onEntry: (id: string, data: Buffer, delta: boolean) => Promise<void> | void, maxBytes = MAX_OBJECT_BYTES, acceptDeltas = false,
  framing: PackFraming = 'tar',
): Promise<number> {
  if (framing === 'elton') return readEltonPack(input, onEntry, maxBytes, acceptDeltas);
  const extract = tar.extract();
  input.on('error', (err) => extract.destroy(err));
  input.pipe(extract);
  let n = 0;
  let inCallback = false;
  try {
    for await (const entry of extract) {
      const { size, type } = entry.header;
      const delta = acceptDeltas && entry.header.name.endsWith(DELTA_SUFFIX);
      const name = delta ? entry.header.name.slice(0, -DELTA_SUFFIX.length) : entry.header.name;
      if (type !== 'file' || !isId(name) || (delta && (size ?? 0) < 33)) {
        entry.resume();
        throw new PackFormatError(`pack entry "${String(name).slice(0, 80)}" is not an object id`);
      }
      if ((size ?? 0) > maxBytes) {
        entry.resume();
        throw new PackFormatError(`object ${name} is ${size} bytes, over the ${maxBytes}-byte limit`);
      }
      const parts: Buffer[] = [];
      for await (const part of entry) parts.push(part as Buffer);
      const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      if (data.length !== size) throw new PackFormatError(`object ${name} is truncated`);
      inCallback = true;
      await onEntry(name, data, delta);
      inCallback = false;
      n++;
    }
  } catch (err) {
    // The receiver's own refusals pass as they are; a stream that breaks off is a truncated pack.
    if (inCallback || err instanceof PackFormatError || (err as NodeJS.ErrnoException).code) throw err;
    throw new PackFormatError(`the pack is truncated or malformed after ${n} object(s): ${(err as Error).message}`);
  }
  return n;
}

/** Pulls exact byte counts from a stream, reading only as far as asked (backpressure). */
class ByteReader {
  private readonly chunks: Buffer[] = [];
  private have = 0;
  private readonly source: AsyncIterator<Buffer>;

  constructor(input: Readable) {
    this.source = input[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes, or undefined if the stream ends first. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.have < n) {
      const next = await this.source.next();
      if (next.done) return undefined;
      this.chunks.push(next.value);
      this.have += next.value.length;
    }
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.have);
    this.chunks.length = 0;
    const rest = all.subarray(n);
    if (rest.length) this.chunks.push(rest);
    this.have = rest.length;
    return all.subarray(0, n);
  }

  /** Whether anything follows (the end of a pack must be the end of the stream). */
  async atEnd(): Promise<boolean> {
    return this.have === 0 && (await this.read(1)) === undefined;
  }
}

async function readEltonPack(input: Readable, onEntry: (id: string, data: Buffer, delta: boolean) => Promise<void> | void, maxBytes: number, acceptDeltas: boolean): Promise<number> {
  const reader = new ByteReader(input);
  let n = 0;
  let inCallback = false;
  try {
    const magic = await reader.read(ELTP_MAGIC.length);
    if (!magic || !magic.equals(ELTP_MAGIC)) throw new PackFormatError('not an elton pack (bad magic)');
    for (;;) {
      const head = await reader.read(1);
      if (!head) throw new PackFormatError(`the pack is truncated after ${n} object(s)`);
      if (head[0] === ENTRY_END) {
        if (!(await reader.atEnd())) throw new PackFormatError('bytes after the end of the pack');
        return n;
      }
      const type = head[0];
      if (type !== ENTRY_OBJECT && !(type === ENTRY_DELTA && acceptDeltas)) throw new PackFormatError(`unknown pack entry type ${type}`);
      const rest = await reader.read(ENTRY_HEAD - 1);
      if (!rest) throw new PackFormatError(`the pack is truncated after ${n} object(s)`);
      const id = rest.toString('hex', 0, 32);
      const size = rest.readUInt32BE(32);
      if (size > maxBytes) throw new PackFormatError(`object ${id} is ${size} bytes, over the ${maxBytes}-byte limit`);
      if (type === ENTRY_DELTA && size < 33) throw new PackFormatError(`delta ${id} is too short`);
      const data = await reader.read(size);
      if (!data) throw new PackFormatError(`object ${id} is truncated`);
      inCallback = true;
      await onEntry(id, Buffer.from(data), type === ENTRY_DELTA);
      inCallback = false;
      n++;
    }
  } catch (err) {
    if (inCallback || err instanceof PackFormatError || (err as NodeJS.ErrnoException).code) throw err;
    throw new PackFormatError(`the pack is truncated or malformed after ${n} object(s): ${(err as Error).message}`);
  }
}
