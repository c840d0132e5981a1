// Tree objects (src/tree.ts): golden canonical JSON and id, UTF-8 byte ordering, and validation of hostile trees.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { encodeTree, decodeTree, invalidNameReason, compareNames, TREE_FORMAT, type TreeEntry } from '../../src/tree.js';
import { expectEltonError } from '../helpers.js';

const T_BIN = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const T_ZETA = 'fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210';
const C_RUN = '299001868fb8c02fd431c336c6d058f5558c5dff5b5af5e6fe04b870a6a9cbba'; // sha256("#!/bin/sh\necho hi\n")
const C_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const C_SMILE = 'fa1eadc4c6995667412681c69ce33adfc9302a2965f521c40908549e670e2e4e'; // sha256("smile")
const ID = 'a'.repeat(64);

/** Deliberately not in sorted order. */
const ENTRIES: TreeEntry[] = [
  { name: '😀', type: 'file', mode: 0o600, mtime: 1700000000999, size: 5, chunks: [{ id: C_SMILE, size: 5 }] },
  { name: 'run.sh', type: 'file', mode: 0o755, mtime: 1700000000123, size: 18, chunks: [{ id: C_RUN, size: 18 }] },
  { name: 'latest', type: 'symlink', mode: 0o777, mtime: 1700000000000, target: 'run.sh' },
  { name: 'ｆ', type: 'dir', mode: 0o700, mtime: 1700000000000, tree: T_BIN },
  { name: 'bin', type: 'dir', mode: 0o755, mtime: 1700000000000, tree: T_BIN },
  { name: 'é.txt', type: 'symlink', mode: 0o777, mtime: 1700000000000, target: '../日本/ファイル' },
  { name: 'say "hi"', type: 'file', mode: 0o644, mtime: 0, size: 0, chunks: [{ id: C_EMPTY, size: 0 }] },
  {
    name: 'big.bin', type: 'file', mode: 0o644, mtime: 1, size: 300000,
    chunks: [{ id: '1'.repeat(64), size: 200000 }, { id: '2'.repeat(64), size: 100000 }],
  },
  { name: 'Zeta', type: 'dir', mode: 0o755, mtime: 1700000000000, tree: T_ZETA },
];

// Written out by hand from the format spec (docs/format.md, "Trees"): keys name,type,mode,mtime then
// size+chunks / tree / target; entries ordered by UTF-8 bytes, so "ｆ" (ef bd 86) sorts before
// "😀" (f0 9f 98 80) although UTF-16 order is the reverse. Any change here is a format break.
const GOLDEN =
  '{"format":1,"entries":[' +
  '{"name":"Zeta","type":"dir","mode":493,"mtime":1700000000000,"tree":"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"},' +
  '{"name":"big.bin","type":"file","mode":420,"mtime":1,"size":300000,"chunks":[{"id":"1111111111111111111111111111111111111111111111111111111111111111","size":200000},{"id":"2222222222222222222222222222222222222222222222222222222222222222","size":100000}]},' +
  '{"name":"bin","type":"dir","mode":493,"mtime":1700000000000,"tree":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},' +
  '{"name":"latest","type":"symlink","mode":511,"mtime":1700000000000,"target":"run.sh"},' +
  '{"name":"run.sh","type":"file","mode":493,"mtime":1700000000123,"size":18,"chunks":[{"id":"299001868fb8c02fd431c336c6d058f5558c5dff5b5af5e6fe04b870a6a9cbba","size":18}]},' +
  '{"name":"say \\"hi\\"","type":"file","mode":420,"mtime":0,"size":0,"chunks":[{"id":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}]},' +
  '{"name":"é.txt","type":"symlink","mode":511,"mtime":1700000000000,"target":"../日本/ファイル"},' +
  '{"name":"ｆ","type":"dir","mode":448,"mtime":1700000000000,"tree":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},' +
  '{"name":"😀","type":"file","mode":384,"mtime":1700000000999,"size":5,"chunks":[{"id":"fa1eadc4c6995667412681c69ce33adfc9302a2965f521c40908549e670e2e4e","size":5}]}' +
  ']}';
// sha256 of GOLDEN, computed with sha256sum.
const GOLDEN_ID = '0c66c6156dded9ba9c2f797c5b7bae3cdd491547aa0e16ef7c6a3f5aa469069f';

function expectCorrupt(plain: string | Buffer, pattern?: RegExp): void {
  const err = expectEltonError(() => decodeTree(typeof plain === 'string' ? Buffer.from(plain, 'utf8') : plain, ID), 'E_CORRUPT', pattern);
  assert.equal(err.details?.object, ID);
}

/** A one-entry tree document with `entry` as its only entry. */
const one = (entry: Record<string, unknown>) => JSON.stringify({ format: 1, entries: [entry] });
const file = (extra: Record<string, unknown> = {}) =>
  ({ name: 'f', type: 'file', mode: 420, mtime: 0, size: 3, chunks: [{ id: ID, size: 3 }], ...extra });

describe('tree objects', () => {
  describe('canonical encoding', () => {
    it('encodes a fixed entry list to the exact golden JSON', () => {
      assert.equal(TREE_FORMAT, 1);
      assert.equal(encodeTree(ENTRIES).toString('utf8'), GOLDEN);
    });

    it('the golden tree has the golden id', () => {
      assert.equal(createHash('sha256').update(encodeTree(ENTRIES)).digest('hex'), GOLDEN_ID);
      assert.equal(createHash('sha256').update(Buffer.from(GOLDEN, 'utf8')).digest('hex'), GOLDEN_ID);
    });

    it('does not depend on input order or on extra keys of the entries', () => {
      const reversed = [...ENTRIES].reverse();
      assert.equal(encodeTree(reversed).toString('utf8'), GOLDEN);
      const noisy = ENTRIES.map((e) => ({ ...e, extra: 'ignored' }) as unknown as TreeEntry);
      assert.equal(encodeTree(noisy).toString('utf8'), GOLDEN);
      assert.equal(ENTRIES[0].name, '😀', 'encodeTree must not sort its input in place');
    });

    it('an empty directory encodes to an empty entry list', () => {
      assert.equal(encodeTree([]).toString(), '{"format":1,"entries":[]}');
    });

    it('decodes the golden tree back to the sorted entries', () => {
      const tree = decodeTree(Buffer.from(GOLDEN, 'utf8'), GOLDEN_ID);
      assert.deepEqual(tree.entries.map((e) => e.name), ['Zeta', 'big.bin', 'bin', 'latest', 'run.sh', 'say "hi"', 'é.txt', 'ｆ', '😀']);
      const byName = new Map(ENTRIES.map((e) => [e.name, e]));
      for (const e of tree.entries) assert.deepEqual(e, byName.get(e.name));
      assert.equal(encodeTree(tree.entries).toString('utf8'), GOLDEN);
    });

    it('compareNames orders by UTF-8 bytes, not UTF-16 code units', () => {
      assert.ok(compareNames('ｆ', '😀') < 0);
      assert.ok('ｆ' > '😀', 'precondition: JS string order is the reverse');
      assert.ok(compareNames('Z', 'a') < 0);
      assert.ok(compareNames('a', 'a.') < 0);
      assert.ok(compareNames('big.bin', 'bin') < 0);
      assert.equal(compareNames('é', 'é'), 0);
    });
  });

  describe('invalidNameReason', () => {
    it('accepts ordinary and unicode names', () => {
      for (const name of ['a', 'a.txt', '.hidden', '...', 'with space', 'é', '日本', '😀', '-', 'a\\b', 'x'.repeat(255)]) {
        assert.equal(invalidNameReason(name), undefined, name);
      }
    });

    it('refuses empty, ".", "..", "/", NUL, U+FFFD and non-strings', () => {
      assert.equal(invalidNameReason(''), 'empty');
      assert.equal(invalidNameReason('.'), '"." is reserved');
      assert.equal(invalidNameReason('..'), '".." is reserved');
      assert.equal(invalidNameReason('a/b'), 'contains "/"');
      assert.equal(invalidNameReason('/'), 'contains "/"');
      assert.equal(invalidNameReason('a\0b'), 'contains NUL');
      assert.equal(invalidNameReason('bad\uFFFDname'), 'is not valid UTF-8');
      assert.equal(invalidNameReason(undefined), 'not a string');
      assert.equal(invalidNameReason(42), 'not a string');
      assert.equal(invalidNameReason(null), 'not a string');
    });
  });

  describe('decodeTree refuses malformed trees with E_CORRUPT', () => {
    it('accepts a minimal valid tree (control)', () => {
      assert.equal(decodeTree(Buffer.from(one(file())), ID).entries.length, 1);
    });

    for (const [label, name] of [['empty', ''], ['"."', '.'], ['".."', '..'], ['with "/"', 'a/b'], ['leading "/"', '/etc'], ['with NUL', 'a\0b'], ['a number', 7], ['missing', undefined]] as const) {
      it(`name ${label}`, () => expectCorrupt(one(file({ name })), /entry name/));
    }

    it('a name that is not valid UTF-8', () => {
      const doc = Buffer.from(one(file({ name: 'XX' })), 'utf8');
      const at = doc.indexOf('XX');
      doc[at] = 0xff; // an invalid UTF-8 byte, decoded as U+FFFD
      expectCorrupt(doc, /UTF-8/);
    });

    it('duplicate names', () => {
      expectCorrupt(JSON.stringify({ format: 1, entries: [file({ name: 'a' }), file({ name: 'a' })] }), /duplicate/);
    });

    it('unsorted entries', () => {
      expectCorrupt(JSON.stringify({ format: 1, entries: [file({ name: 'b' }), file({ name: 'a' })] }), /not sorted/);
    });

    it('entries sorted by UTF-16 instead of UTF-8', () => {
      expectCorrupt(JSON.stringify({ format: 1, entries: [file({ name: '😀' }), file({ name: 'ｆ' })] }), /not sorted/);
    });

    it('bad chunk ids', () => {
      for (const id of ['A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), 'g'.repeat(64), '', 12, null]) {
        expectCorrupt(one(file({ chunks: [{ id, size: 3 }] })), /bad chunk/);
      }
      expectCorrupt(one(file({ chunks: [null] })), /bad chunk/);
    });

    it('bad chunk sizes', () => {
      for (const size of [-1, 1.5, '3', null]) expectCorrupt(one(file({ chunks: [{ id: ID, size }] })));
    });

    it('chunk sizes that do not add up to the file size', () => {
      expectCorrupt(one(file({ size: 4 })), /do not add up/);
      expectCorrupt(one(file({ size: 3, chunks: [{ id: ID, size: 1 }, { id: ID, size: 1 }] })), /do not add up/);
      expectCorrupt(one(file({ size: 3, chunks: [] })), /do not add up/);
    });

    it('a file without chunks or size', () => {
      expectCorrupt(one(file({ chunks: undefined })), /malformed/);
      expectCorrupt(one(file({ size: -3 })), /malformed/);
    });

    it('bad mode or mtime', () => {
      expectCorrupt(one(file({ mode: -1 })), /bad mode/);
      expectCorrupt(one(file({ mode: 0o10000 })), /bad mode/);
      expectCorrupt(one(file({ mode: '644' })), /bad mode/);
      expectCorrupt(one(file({ mtime: '0' })), /bad mtime/);
      expectCorrupt(one(file({ mtime: null })), /bad mtime/);
    });

    it('unknown entry type', () => {
      expectCorrupt(one({ name: 'p', type: 'fifo', mode: 420, mtime: 0 }), /unknown type/);
      expectCorrupt(one({ name: 'p', mode: 420, mtime: 0 }), /unknown type/);
    });

    it('bad dir tree id', () => {
      expectCorrupt(one({ name: 'd', type: 'dir', mode: 493, mtime: 0, tree: 'ABC' }), /bad tree id/);
      expectCorrupt(one({ name: 'd', type: 'dir', mode: 493, mtime: 0 }), /bad tree id/);
    });

    it('bad symlink target', () => {
      for (const target of ['', 'a\0b', 5, undefined]) {
        expectCorrupt(one({ name: 'l', type: 'symlink', mode: 511, mtime: 0, target }), /bad target/);
      }
    });

    it('not JSON, wrong format, no entry list', () => {
      expectCorrupt('{"format":1,"entries":[', /not JSON/);
      expectCorrupt('{"format":2,"entries":[]}', /unsupported tree format/);
      expectCorrupt('{"entries":[]}', /unsupported tree format/);
      expectCorrupt('{"format":1}', /no entries/);
      expectCorrupt('{"format":1,"entries":{}}', /no entries/);
    });

    it('a non-object entry', () => {
      expectCorrupt('{"format":1,"entries":[null]}');
      expectCorrupt('{"format":1,"entries":["a"]}');
    });

    it('a document that is valid JSON but not an object (null, a number)', () => {
      // A hostile store can serve any plaintext whose hash matches the id it advertises.
      expectCorrupt('null');
      expectCorrupt('42');
    });
  });
});
