// Version records (src/version.ts): golden encoding and the checks decodeVersion makes.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { encodeVersion, decodeVersion, VERSION_FORMAT, type VersionRecord } from '../../src/version.js';
import { encodeRecord, Kind } from '../../src/object.js';
import { expectEltonError } from '../helpers.js';

const REC: VersionRecord = {
  tree: 'data', version: 3, root: 'ab'.repeat(32), parent: 2, message: 'fix "x"\né', author: 'alice',
  host: 'node-7', time: '2026-11-22T00:00:00.000Z', git: { commit: 'c'.repeat(40), branch: 'main' },
};

// Written by hand from docs/format.md ("Version records"): fixed key order, no whitespace.
const GOLDEN_JSON =
  '{"format":1,"tree":"data","version":3,"root":"abababababababababababababababababababababababababababababababab",' +
  '"parent":2,"message":"fix \\"x\\"\\né","author":"alice","host":"node-7","time":"2026-11-22T00:00:00.000Z",' +
  '"git":{"commit":"cccccccccccccccccccccccccccccccccccccccc","branch":"main"}}';

const expectCorrupt = (fn: () => unknown, pattern?: RegExp) => { expectEltonError(fn, 'E_CORRUPT', pattern); };

const record = (doc: unknown) => encodeRecord(Kind.version, Buffer.from(JSON.stringify(doc)));

describe('version records', () => {
  it('encode to a kind-3 record around the golden JSON', () => {
    assert.equal(VERSION_FORMAT, 1);
    const data = encodeVersion(REC);
    const json = Buffer.from(GOLDEN_JSON, 'utf8');
    assert.equal(data.subarray(0, 8).toString('hex'), '454c540103000100');
    assert.equal(data.subarray(8, 40).toString('hex'), createHash('sha256').update(json).digest('hex'));
    assert.equal(data.subarray(40).toString('utf8'), GOLDEN_JSON);
  });

  it('extra fields on the input record are not written', () => {
    const noisy = { ...REC, secret: 'x' } as VersionRecord;
    assert.ok(encodeVersion(noisy).equals(encodeVersion(REC)));
  });

  it('round-trip, with and without git', () => {
    assert.deepEqual(decodeVersion(encodeVersion(REC), 'data', 3), REC);
    const first = { ...REC, version: 1, parent: null, git: null };
    assert.deepEqual(decodeVersion(encodeVersion(first), 'data', 1), first);
  });

  it('a record read under another name is E_CORRUPT', () => {
    expectCorrupt(() => decodeVersion(encodeVersion(REC), 'data', 4), /claims to be data@3/);
    expectCorrupt(() => decodeVersion(encodeVersion(REC), 'other', 3), /claims to be data@3/);
  });

  it('a damaged record is E_CORRUPT naming tree@version', () => {
    const data = encodeVersion(REC);
    data[data.length - 2] ^= 1;
    expectCorrupt(() => decodeVersion(data, 'data', 3), /data@3/);
  });

  it('a record of another kind, format or with a bad root is E_CORRUPT', () => {
    const doc = JSON.parse(GOLDEN_JSON);
    expectCorrupt(() => decodeVersion(encodeRecord(Kind.config, Buffer.from(GOLDEN_JSON)), 'data', 3), /not a version record/);
    expectCorrupt(() => decodeVersion(record({ ...doc, format: 2 }), 'data', 3), /unsupported format/);
    expectCorrupt(() => decodeVersion(record({ ...doc, root: 'AB'.repeat(32) }), 'data', 3), /bad root/);
    expectCorrupt(() => decodeVersion(encodeRecord(Kind.version, Buffer.from('{not json')), 'data', 3), /not JSON/);
  });
});
