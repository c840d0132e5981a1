// Binary deltas (trees stored against the same directory's tree in the version before).

import { strict as assert } from 'node:assert';
import { applyDelta, DeltaError, makeDelta } from '../../src/lib/delta.js';
import { pseudoRandom } from '../helpers.js';

/** A tree-like buffer: `n` records of a name and a 32-byte random id. */
function records(n: number, seed: number, change: Set<number> = new Set()): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(Buffer.from(`f${i}.bin\u0000`), pseudoRandom(32, change.has(i) ? seed * 1000 + i : i));
  return Buffer.concat(parts);
}

describe('unit: delta', () => {
  it('rebuilds the target exactly, for edits anywhere', () => {
    const base = records(100, 1);
    const cases: Buffer[] = [
      base, Buffer.alloc(0), records(100, 2, new Set([0])), records(100, 2, new Set([99])), records(100, 2, new Set([3, 50, 97])),
      Buffer.concat([base.subarray(0, 1000), Buffer.from('inserted entry'), base.subarray(1000)]),
      Buffer.concat([base.subarray(0, 1000), base.subarray(1400)]), records(140, 3), pseudoRandom(5000, 9), base.subarray(7, 20),
    ];
    for (const target of cases) assert.deepEqual(applyDelta(base, makeDelta(base, target)), target);
    assert.deepEqual(applyDelta(Buffer.alloc(0), makeDelta(Buffer.alloc(0), base)), base, 'from nothing: one insert');
  });

  it('is small when one entry of a directory changed', () => {
    const base = records(100, 1);
    const one = records(100, 2, new Set([42]));
    const delta = makeDelta(base, one);
    assert.ok(delta.length < 60, `one changed 32-byte id costs ${delta.length} bytes of delta, out of ${one.length}`);
    const three = makeDelta(base, records(100, 2, new Set([5, 50, 95])));
    assert.ok(three.length < 160, `three changed ids cost ${three.length}`);
  });

  it('refuses malformed deltas instead of reading outside the base', () => {
    const base = records(10, 1);
    const good = makeDelta(base, records(10, 2, new Set([4])));
    assert.throws(() => applyDelta(base, good.subarray(0, good.length - 1)), DeltaError);
    assert.throws(() => applyDelta(base, Buffer.from([2 * 10, 0xff, 0x7f])), DeltaError, 'copy beyond the base');
    assert.throws(() => applyDelta(base, Buffer.from([0])), DeltaError, 'an empty op');
    assert.throws(() => applyDelta(base, Buffer.from([0x81])), DeltaError, 'a cut varint');
    assert.throws(() => applyDelta(base, Buffer.from([2 * 100, 0]), 50), DeltaError, 'output over the bound');
  });
});
