// Content-defined chunking (FastCDC with a 32-bit gear hash and normalized chunking).
//
// A cut depends only on the 32 bytes before it, so an edit moves at most the cuts next to it:
// an insertion in the middle of a large file changes about one chunk. The parameters and the
// gear seed live in the store config, so every writer of a store cuts the same way and dedups
// against every other.

import { createHash } from 'node:crypto';

export interface ChunkerParams {
  algorithm: 'fastcdc-gear32-v1';
  min: number;
  avg: number;
  max: number;
  /** Seeds the gear table; a keyed seed can hide chunk boundaries when stores are encrypted. */
  seed: string;
}

export const DEFAULT_CHUNKER: ChunkerParams = {
  algorithm: 'fastcdc-gear32-v1',
  min: 64 * 1024,
  avg: 256 * 1024,
  max: 1024 * 1024,
  seed: 'elton-gear-v1',
};

export function validateChunkerParams(p: ChunkerParams): string | undefined {
  if (p.algorithm !== 'fastcdc-gear32-v1') return `unknown chunker "${p.algorithm}"`;
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(p.avg) || p.avg < 1024 || p.avg > 64 * 1024 * 1024) return 'chunker avg must be a power of two between 1 KiB and 64 MiB';
  if (!(p.min >= 64 && p.min < p.avg && p.avg < p.max)) return 'chunker sizes must satisfy 64 <= min < avg < max';
  return undefined;
}

export class Chunker {
  private readonly gear: Int32Array;
  private readonly maskS: number;
  private readonly maskL: number;

  constructor(readonly params: ChunkerParams) {
    this.gear = gearTable(params.seed);
    const bits = Math.round(Math.log2(params.avg));
    // Normalized chunking: a harder mask before the average size, an easier one after,
    // which narrows the size distribution. Mask bits sit at the top of the hash, since
    // the top bits depend on the most input bytes.
    this.maskS = topBits(bits + 2);
    this.maskL = topBits(bits - 2);
  }

  /** Returns the end (exclusive) of the chunk that starts at `start`; `data` ends at `end`, which is EOF or at least `max` away. */
  cut(data: Uint8Array, start: number, end: number): number {
    const { min, avg, max } = this.params;
    const n = end - start;
    if (n <= min) return end;
    const limit = start + Math.min(n, max);
    const normal = start + Math.min(n, avg);
    const gear = this.gear;
    const maskS = this.maskS;
    const maskL = this.maskL;
    let h = 0;
    let i = start + min;
    for (; i < normal; i++) {
      h = ((h << 1) + gear[data[i]]) | 0;
      if ((h & maskS) === 0) return i + 1;
    }
    for (; i < limit; i++) {
      h = ((h << 1) + gear[data[i]]) | 0;
      if ((h & maskL) === 0) return i + 1;
    }
    return limit;
  }

  /** Splits a whole buffer; for streams, call `cut` with a buffer holding at least `max` bytes or the rest of the file. */
  split(data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let start = 0;
    while (start < data.length) {
      const end = this.cut(data, start, data.length);
      out.push(data.subarray(start, end));
      start = end;
    }
    if (data.length === 0) out.push(data);
    return out;
  }
}

function topBits(n: number): number {
  return n >= 32 ? -1 : (~0 << (32 - n)) | 0;
}

const tables = new Map<string, Int32Array>();

export function gearTable(seed: string): Int32Array {
  let table = tables.get(seed);
  if (!table) {
    table = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      table[i] = createHash('sha256').update(`${seed}\0${i}`).digest().readInt32LE(0);
    }
    tables.set(seed, table);
  }
  return table;
}
