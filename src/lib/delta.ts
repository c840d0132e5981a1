// Binary deltas: a target expressed as copies from a base plus inserted bytes.
//
// Used for tree objects, where a change to one file rewrites one entry of a directory whose
// other entries (names, and 32-byte chunk ids that no compressor can shrink) stay the same.
//
// Encoding: a sequence of ops, each a LEB128 header `length << 1 | kind`; kind 0 (copy) is
// followed by the LEB128 base offset, kind 1 (insert) by `length` literal bytes.

/** Matches shorter than this are not worth a copy op (a copy costs up to about 8 bytes). */
const WINDOW = 16;
/** Base positions indexed: every STEP-th. A match of WINDOW + STEP bytes or more is always found. */
const STEP = 8;
/** Larger inputs are not delta-encoded (the index would cost more memory than the delta saves). */
export const MAX_DELTA_INPUT = 8 * 1024 * 1024;

function putVarint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

export class DeltaError extends Error {}

/** A delta that rebuilds `target` from `base`. */
export function makeDelta(base: Buffer, target: Buffer): Buffer {
  if (base.length > MAX_DELTA_INPUT || target.length > MAX_DELTA_INPUT) throw new RangeError('delta input too large');
  const index = new Map<string, number>();
  for (let p = 0; p + WINDOW <= base.length; p += STEP) {
    const key = base.toString('latin1', p, p + WINDOW);
    if (!index.has(key)) index.set(key, p);
  }
  const head: number[] = [];
  const chunks: Buffer[] = [];
  const flushHead = () => { if (head.length) { chunks.push(Buffer.from(head)); head.length = 0; } };
  let literalStart = 0;
  const emitInsert = (end: number) => {
    if (end <= literalStart) return;
    putVarint(head, ((end - literalStart) * 2) + 1);
    flushHead();
    chunks.push(target.subarray(literalStart, end));
  };
  let j = 0;
  while (j + WINDOW <= target.length) {
    const at = index.get(target.toString('latin1', j, j + WINDOW));
    if (at === undefined) { j++; continue; }
    let start = j;
    let from = at;
    // Grow the match backwards into the pending literal, then forwards.
    while (start > literalStart && from > 0 && target[start - 1] === base[from - 1]) { start--; from--; }
    let end = j + WINDOW;
    let baseEnd = at + WINDOW;
    while (end < target.length && baseEnd < base.length && target[end] === base[baseEnd]) { end++; baseEnd++; }
    emitInsert(start);
    putVarint(head, (end - start) * 2);
    putVarint(head, from);
    literalStart = end;
    j = end;
  }
  emitInsert(target.length);
  flushHead();
  return Buffer.concat(chunks);
}

/** Rebuilds the target; throws DeltaError on a malformed delta or one that reaches outside `base`. */
export function applyDelta(base: Buffer, delta: Buffer, maxOutput = MAX_DELTA_INPUT): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  let i = 0;
  const varint = (): number => {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (i >= delta.length) throw new DeltaError('truncated');
      const b = delta[i++];
      n += (b & 0x7f) * scale;
      if (!(b & 0x80)) return n;
      scale *= 128;
      if (scale > 2 ** 49) throw new DeltaError('varint too long');
    }
  };
  while (i < delta.length) {
    const h = varint();
    const length = Math.floor(h / 2);
    if (length === 0) throw new DeltaError('empty op');
    if (h % 2) {
      if (i + length > delta.length) throw new DeltaError('truncated insert');
      parts.push(delta.subarray(i, i + length));
      i += length;
    } else {
      const from = varint();
      if (from + length > base.length) throw new DeltaError('copy outside the base');
      parts.push(base.subarray(from, from + length));
    }
    size += length;
    if (size > maxOutput) throw new DeltaError('output too large');
  }
  return Buffer.concat(parts, size);
}
