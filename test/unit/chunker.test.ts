// FastCDC chunker (src/chunker.ts): golden cut points, size bounds, and boundary stability under edits.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Chunker, DEFAULT_CHUNKER, gearTable, validateChunkerParams, type ChunkerParams } from '../../src/chunker.js';
import { pseudoRandom } from '../helpers.js';

const MiB = 1024 * 1024;
const { min, max } = DEFAULT_CHUNKER;

const hashOf = (c: Uint8Array) => createHash('sha256').update(c).digest('hex');
/** End offsets of the chunks. */
function cuts(chunks: Uint8Array[]): number[] {
  let at = 0;
  return chunks.map((c) => (at += c.length));
}

describe('chunker', () => {
  const chunker = new Chunker(DEFAULT_CHUNKER);

  describe('format stability', () => {
    it('default parameters are the documented ones', () => {
      assert.deepEqual(DEFAULT_CHUNKER, {
        algorithm: 'fastcdc-gear32-v1', min: 65536, avg: 262144, max: 1048576, seed: 'elton-gear-v1',
      });
    });

    it('gear table entry i is the first 4 bytes (LE, signed) of sha256(seed NUL i)', () => {
      const table = gearTable('elton-gear-v1');
      assert.equal(table.length, 256);
      // Golden values, computed independently (Python hashlib + struct '<i').
      assert.deepEqual([...table.subarray(0, 4)], [212922383, 887988760, -1152641783, -382211478]);
      for (const i of [0, 1, 17, 128, 255]) {
        assert.equal(table[i], createHash('sha256').update(`elton-gear-v1\0${i}`).digest().readInt32LE(0));
      }
    });

    it('golden cut offsets for pseudoRandom(4 MiB, seed 42)', () => {
      // These offsets were computed once by an independent Python implementation of the cut rule in
      // docs/format.md ("Chunking"), and match this code. If this test fails, every existing store
      // stops deduplicating against new commits: that is a FORMAT BREAK, not a test to update.
      const data = pseudoRandom(4 * MiB, 42);
      assert.equal(data.subarray(0, 16).toString('hex'), '28ac03c0c4b6d8ae9337da3364e0a9d9', 'pseudoRandom itself changed');
      const chunks = chunker.split(data);
      assert.deepEqual(cuts(chunks), [
        292189, 549714, 838602, 1200720, 1478109, 1926396, 2191739, 2606516, 2911152, 3430163, 3775685, 3872886, 4160200, 4194304,
      ]);
      assert.equal(hashOf(chunks[0]), '5ff7e625dbe24b9fc8d346f3ee000f111acd85e18df7284beaacf94933f0bfe1');
    });

    it('is deterministic: same input, same cuts, also from a fresh Chunker', () => {
      const data = pseudoRandom(3 * MiB, 5);
      const a = cuts(chunker.split(data));
      const b = cuts(new Chunker({ ...DEFAULT_CHUNKER }).split(Buffer.from(data)));
      assert.deepEqual(a, b);
      assert.ok(a.length > 3);
    });

    it('another seed cuts differently', () => {
      const data = pseudoRandom(4 * MiB, 42);
      const other = new Chunker({ ...DEFAULT_CHUNKER, seed: 'another-seed' });
      assert.notDeepEqual(cuts(other.split(data)), cuts(chunker.split(data)));
    });
  });

  describe('chunk sizes', () => {
    it('an empty buffer is one empty chunk', () => {
      const chunks = chunker.split(Buffer.alloc(0));
      assert.equal(chunks.length, 1);
      assert.equal(chunks[0].length, 0);
    });

    it('a buffer no longer than min is one chunk', () => {
      assert.deepEqual(cuts(chunker.split(pseudoRandom(1, 3))), [1]);
      assert.deepEqual(cuts(chunker.split(pseudoRandom(min, 3))), [min]);
    });

    it('every chunk but the last is within [min, max]; chunks cover the input exactly', () => {
      for (const seed of [1, 2, 3]) {
        const data = pseudoRandom(12 * MiB + 12345, seed);
        const chunks = chunker.split(data);
        chunks.slice(0, -1).forEach((c, i) => {
          assert.ok(c.length >= min && c.length <= max, `chunk ${i} has ${c.length} bytes`);
        });
        const last = chunks[chunks.length - 1];
        assert.ok(last.length > 0 && last.length <= max);
        assert.ok(Buffer.concat(chunks).equals(data));
        // Normalized chunking keeps the mean near avg (256 KiB) on random data.
        const mean = data.length / chunks.length;
        assert.ok(mean > 150 * 1024 && mean < 450 * 1024, `mean chunk size ${mean}`);
      }
    });

    it('data without content cuts (all zeros) is cut at max', () => {
      const chunks = chunker.split(Buffer.alloc(3 * MiB + 10));
      assert.deepEqual(chunks.map((c) => c.length), [max, max, max, 10]);
    });

    it('cut() stops at the end it is given', () => {
      const data = pseudoRandom(2 * MiB, 9);
      const end = chunker.cut(data, 0, data.length);
      assert.ok(end >= min && end <= max);
      assert.equal(chunker.cut(data, 100, 100 + min), 100 + min);
      assert.equal(chunker.cut(data, 100, 101), 101);
    });
  });

  describe('boundary stability', () => {
    it('a 5-byte insertion in the middle of 8 MiB changes at most 2 chunks', () => {
      const data = pseudoRandom(8 * MiB, 11);
      const mid = 4 * MiB + 777;
      const edited = Buffer.concat([data.subarray(0, mid), Buffer.from('HELLO'), data.subarray(mid)]);
      const before = new Set(chunker.split(data).map(hashOf));
      const after = chunker.split(edited).map(hashOf);
      const fresh = after.filter((h) => !before.has(h));
      assert.ok(fresh.length >= 1, 'the edited chunk must be new');
      assert.ok(fresh.length <= 2, `${fresh.length} new chunks`);
    });

    it('a 1 MiB overwrite in the middle of 16 MiB changes at most 4 MiB of chunks', () => {
      const data = pseudoRandom(16 * MiB, 12);
      const edited = Buffer.from(data);
      pseudoRandom(MiB, 99).copy(edited, 8 * MiB);
      const before = new Set(chunker.split(data).map(hashOf));
      const changed = chunker.split(edited).filter((c) => !before.has(hashOf(c))).reduce((n, c) => n + c.length, 0);
      assert.ok(changed >= MiB, `only ${changed} bytes changed`);
      assert.ok(changed <= 4 * MiB, `${changed} bytes of new chunks`);
    });

    it('an edit at the start leaves the chunks after the next cut untouched', () => {
      const data = pseudoRandom(6 * MiB, 13);
      const edited = Buffer.from(data);
      edited[0] ^= 0xff;
      const a = chunker.split(data).map(hashOf);
      const b = chunker.split(edited).map(hashOf);
      assert.notEqual(a[0], b[0]);
      assert.deepEqual(a.slice(1), b.slice(1));
    });
  });

  describe('validateChunkerParams', () => {
    const ok = (p: Partial<ChunkerParams>) => validateChunkerParams({ ...DEFAULT_CHUNKER, ...p });

    it('accepts the defaults and other sane values', () => {
      assert.equal(ok({}), undefined);
      assert.equal(ok({ min: 1024, avg: 4096, max: 16384 }), undefined);
    });

    it('refuses an unknown algorithm, a non-power-of-two avg, and misordered sizes', () => {
      assert.match(ok({ algorithm: 'rabin' as ChunkerParams['algorithm'] }) ?? '', /unknown chunker/);
      assert.match(ok({ avg: 300000 }) ?? '', /power of two/);
      assert.match(ok({ avg: 512, min: 64, max: 1024 }) ?? '', /power of two/);
      assert.match(ok({ min: 262144 }) ?? '', /min < avg < max/);
      assert.match(ok({ max: 262144 }) ?? '', /min < avg < max/);
      assert.match(ok({ min: 32 }) ?? '', /64 <= min/);
    });
  });
});
