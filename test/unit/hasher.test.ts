// FileHasher (src/workspace/hasher.ts): streamed chunking in 8 MiB blocks equals one-shot Chunker.split; encoding of new chunks.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Chunker, DEFAULT_CHUNKER } from '../../src/chunker.js';
import { FileHasher } from '../../src/workspace/hasher.js';
import { decodeObject, Kind } from '../../src/object.js';
import { pseudoRandom, tempDir } from '../helpers.js';

const MiB = 1024 * 1024;
const chunker = new Chunker(DEFAULT_CHUNKER);
const refs = (data: Buffer) => chunker.split(data).map((c) => ({ id: createHash('sha256').update(c).digest('hex'), size: c.length }));
const noSink = () => assert.fail('nothing must be encoded when no compression is configured');

describe('FileHasher', () => {
  const dir = tempDir();

  it('a 20 MiB file read in 8 MiB blocks gives the same chunks as split() on the whole buffer', () => {
    const data = pseudoRandom(20 * MiB, 2024);
    const path = join(dir, 'big.bin');
    writeFileSync(path, data);
    const result = new FileHasher({ chunker: DEFAULT_CHUNKER }, new Set()).hash(path, noSink);
    const expected = refs(data);
    assert.ok(expected.length > 40);
    assert.deepEqual(result.chunks, expected);
    assert.equal(result.size, data.length);
  });

  it('streaming equals one-shot for sizes around the block boundaries, and for zero-filled data', () => {
    const hasher = new FileHasher({ chunker: DEFAULT_CHUNKER }, new Set());
    const cases: Array<[string, Buffer]> = [
      ['exactly 8 MiB', pseudoRandom(8 * MiB, 1)],
      ['8 MiB + 1', pseudoRandom(8 * MiB + 1, 2)],
      ['9 MiB + 17', pseudoRandom(9 * MiB + 17, 3)],
      ['17 MiB of zeros', Buffer.alloc(17 * MiB + 5)],
    ];
    for (const [label, data] of cases) {
      const path = join(dir, 'case.bin');
      writeFileSync(path, data);
      assert.deepEqual(hasher.hash(path, noSink).chunks, refs(data), label);
    }
  });

  it('an empty file is one empty chunk', () => {
    const path = join(dir, 'empty');
    writeFileSync(path, '');
    const result = new FileHasher({ chunker: DEFAULT_CHUNKER }, new Set()).hash(path, noSink);
    assert.deepEqual(result.chunks, [{ id: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', size: 0 }]);
    assert.equal(result.size, 0);
  });

  it('reports size, mode and mtime of the file', () => {
    const path = join(dir, 'small.txt');
    writeFileSync(path, 'hello', { mode: 0o640 });
    const result = new FileHasher({ chunker: DEFAULT_CHUNKER }, new Set()).hash(path, noSink);
    assert.deepEqual(result.chunks, [{ id: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', size: 5 }]);
    assert.equal(result.mode, 0o640);
    assert.equal(result.size, 5);
    assert.ok(result.mtimeMs > 0);
  });

  it('with compression, emits each new chunk once as a verifiable chunk object, and skips known ones', () => {
    const half = pseudoRandom(2 * MiB, 77);
    const data = Buffer.concat([half, half, Buffer.from('tail'.repeat(1000))]); // repeated content dedups
    const path = join(dir, 'dup.bin');
    writeFileSync(path, data);
    const known = new Set<string>();
    const emitted = new Map<string, Buffer>();
    const hasher = new FileHasher({ chunker: DEFAULT_CHUNKER, compression: { codec: 'brotli', quality: 2 } }, known);
    const result = hasher.hash(path, (id, encoded) => {
      assert.ok(!emitted.has(id), `chunk ${id} emitted twice`);
      emitted.set(id, Buffer.from(encoded));
    });
    const unique = new Set(result.chunks.map((c) => c.id));
    assert.ok(unique.size < result.chunks.length, 'the repeated half must produce repeated chunks');
    assert.deepEqual(new Set(emitted.keys()), unique);
    const byId = new Map(chunker.split(data).map((c) => [createHash('sha256').update(c).digest('hex'), c]));
    for (const [id, encoded] of emitted) {
      const dec = decodeObject(encoded, `chunk ${id}`, id);
      assert.equal(dec.kind, Kind.chunk);
      assert.ok(dec.plain.equals(byId.get(id)!));
    }
    // A second pass with the same known set emits nothing.
    hasher.hash(path, () => assert.fail('known chunks must not be emitted again'));
  });
});
