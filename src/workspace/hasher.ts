// Reads a file, cuts it into chunks, hashes them and (when asked) encodes the chunks a store lacks.

import { openSync, readSync, fstatSync, closeSync, type Stats } from 'node:fs';
import { Chunker, type ChunkerParams } from '../chunker.js';
import { Kind, type Compression } from '../object.js';
import { codecFor, type ObjectCodec } from '../codec.js';
import type { RepoKeys } from '../crypto/keyring.js';
import type { ChunkRef } from '../tree.js';

export interface HashJob {
  /** Absolute path. */
  path: string;
}

export interface HashResult {
  chunks: ChunkRef[];
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  mode: number;
}

export interface HashError { code: string; message: string }

export interface HashSettings {
  chunker: ChunkerParams;
  /** An encrypted store's keys: ids are keyed and chunks sealed (absent: a plain store). */
  keys?: RepoKeys;
  /** Absent: hash only (status, diff). Present: also encode chunks not in `known`. */
  compression?: Compression;
}

const READ_BLOCK = 8 * 1024 * 1024;
const ATTEMPTS = 3;

export type ObjectSink = (id: string, data: Buffer) => void;

const sameStat = (a: Stats, b: Stats) => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

export class FileHasher {
  private readonly chunker: Chunker;
  private readonly buffer: Buffer;
  private readonly codec: ObjectCodec;

  constructor(private readonly settings: HashSettings, private readonly known: Set<string>) {
    this.chunker = new Chunker(settings.chunker);
    this.codec = codecFor(settings.keys);
    this.buffer = Buffer.allocUnsafe(READ_BLOCK + settings.chunker.max);
  }

  /**
   * Hashes one file. A file that changes while it is read is read again; after three
   * attempts the commit fails rather than record bytes that never existed together.
   */
  hash(path: string, sink: ObjectSink): HashResult {
    for (let attempt = 1; ; attempt++) {
      const fd = openSync(path, 'r');
      try {
        const before = fstatSync(fd);
        // Objects from a torn read are still valid (each is named by the bytes it holds),
        // so they can go to the sink at once; only the file's chunk list is thrown away.
        const chunks = this.readChunks(fd, before.size, sink);
        const after = fstatSync(fd);
        const size = chunks.reduce((n, c) => n + c.size, 0);
        if (sameStat(before, after) && size === after.size) {
          return { chunks, size, mtimeMs: after.mtimeMs, ctimeMs: after.ctimeMs, ino: after.ino, mode: after.mode & 0o7777 };
        }
        if (attempt >= ATTEMPTS) {
          throw Object.assign(new Error(`${path} kept changing while it was read`), { code: 'ECHANGED' });
        }
      } finally {
        closeSync(fd);
      }
    }
  }

  /** `expected` is the size fstat gave: reaching it ends the read without one more call to see EOF (a change is caught by the second fstat). */
  private readChunks(fd: number, expected: number, emit: ObjectSink): ChunkRef[] {
    const chunks: ChunkRef[] = [];
    const buf = this.buffer;
    const max = this.settings.chunker.max;
    let filled = 0;
    let total = 0;
    let eof = false;
    for (;;) {
      while (!eof && filled < buf.length) {
        const n = readSync(fd, buf, filled, buf.length - filled, null);
        if (n === 0) eof = true;
        filled += n;
        total += n;
        if (total === expected) eof = true;
      }
      let start = 0;
      // Cut only while a full `max` window is available, or at EOF: a cut must see the same bytes
      // it would see if the file were read in one piece.
      while (start < filled && (eof || filled - start >= max)) {
        const end = this.chunker.cut(buf, start, filled);
        this.emitChunk(buf.subarray(start, end), chunks, emit);
        start = end;
      }
      if (eof) break;
      buf.copy(buf, 0, start, filled);
      filled -= start;
    }
    if (chunks.length === 0) this.emitChunk(buf.subarray(0, 0), chunks, emit);
    return chunks;
  }

  private emitChunk(data: Buffer, chunks: ChunkRef[], emit: ObjectSink): void {
    const digest = this.codec.idOf(data);
    const id = digest.toString('hex');
    chunks.push({ id, size: data.length });
    if (!this.settings.compression || this.known.has(id)) return;
    this.known.add(id);
    emit(id, this.codec.encode(Kind.chunk, data, this.settings.compression, digest).data);
  }
}

export function toHashError(err: unknown): HashError {
  const e = err as NodeJS.ErrnoException;
  return { code: e.code ?? 'EIO', message: e.message };
}
