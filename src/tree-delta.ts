// Trees sent or stored as deltas against a similar tree the receiver holds (the same directory in the version before).
//
// A change to one file rewrites one entry of its directory's tree; the rest (names, and 32-byte
// chunk ids no compressor can shrink) is already at the receiver. The receiver rebuilds the tree,
// re-encodes it, and checks it against its id like any other object.

import { corrupt } from './errors.js';
import { applyDelta, DeltaError, makeDelta, MAX_DELTA_INPUT } from './lib/delta.js';
import { decodeObject, encodeObject, Kind, type Compression } from './object.js';

/** A tree's counterpart at the receiver: its id, and its plain bytes (which the sender has read anyway). */
export interface SimilarTree { base: string; plain: Buffer }

/** Below this fraction of the encoded tree a delta is worth its rebuild. */
const WORTHWHILE = 0.8;

/** The delta of an encoded tree against a base's plain bytes, or undefined when it would save little. */
export function treeDelta(id: string, encoded: Buffer, basePlain: Buffer): Buffer | undefined {
  if (encoded.length > MAX_DELTA_INPUT || basePlain.length > MAX_DELTA_INPUT) return undefined;
  const delta = makeDelta(basePlain, decodeObject(encoded, `tree ${id}`, id).plain);
  return 32 + delta.length < encoded.length * WORTHWHILE ? delta : undefined;
}

/** Rebuilds an encoded tree from its base's plain bytes and a delta; verified against `id`. */
export function rebuildTree(id: string, basePlain: Buffer, delta: Buffer, compression: Compression, where: string): Buffer {
  let plain: Buffer;
  try {
    plain = applyDelta(basePlain, delta);
  } catch (err) {
    if (err instanceof DeltaError) throw corrupt(`tree ${id} from ${where}: bad delta (${err.message})`, undefined, { object: id });
    throw err;
  }
  const data = encodeObject(Kind.tree, plain, compression).data;
  decodeObject(data, `tree ${id} (rebuilt from a delta, from ${where})`, id);
  return data;
}
