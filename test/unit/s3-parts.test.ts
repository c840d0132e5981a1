// The S3 remote's pure parts: URL parsing and settings, index objects and version envelopes.

import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { effectiveSettings, formatS3Url, parseS3Url } from '../../src/remote/s3-client.js';
import { decodeEnvelope, decodeIndexObject, encodeEnvelope, encodeIndexObject, INLINE, INLINE_DELTA, packPath } from '../../src/remote/s3-index.js';
import { normalizeRemote } from '../../src/store/open.js';
import { expectEltonError } from '../helpers.js';

const id = (n: number) => createHash('sha256').update(String(n)).digest('hex');

describe('S3 remote parts', () => {
  it('parses s3:// URLs with settings and writes them back canonically', () => {
    const t = parseS3Url('s3://my-bucket/a/b/?region=eu-west-1&endpoint=http://127.0.0.1:9000&path-style=false&storage-class=STANDARD_IA');
    assert.deepEqual(t, { bucket: 'my-bucket', prefix: 'a/b', settings: { region: 'eu-west-1', endpoint: 'http://127.0.0.1:9000', pathStyle: false, storageClass: 'STANDARD_IA' } });
    assert.equal(formatS3Url(t), 's3://my-bucket/a/b?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1&path-style=false&storage-class=STANDARD_IA');
    assert.deepEqual(parseS3Url(formatS3Url(t)), t);
    assert.deepEqual(parseS3Url('s3://bucket'), { bucket: 'bucket', prefix: '', settings: {} });
  });

  it('refuses credentials in the URL, unknown settings, bad buckets, prefixes and endpoints', () => {
    expectEltonError(() => parseS3Url('s3://AKIA:secret@bucket/x'), 'E_USAGE', /credentials/);
    expectEltonError(() => parseS3Url('s3://bucket/x?colour=blue'), 'E_USAGE', /colour/);
    expectEltonError(() => parseS3Url('s3://b/x'), 'E_USAGE', /bucket name/);
    expectEltonError(() => parseS3Url('s3://bucket/a//b'), 'E_USAGE', /prefix/);
    expectEltonError(() => parseS3Url('s3://bucket/x?endpoint=ftp://h'), 'E_USAGE', /endpoint/);
    expectEltonError(() => parseS3Url('s3://bucket/x?path-style=maybe'), 'E_USAGE', /path-style/);
  });

  it('folds flags into the URL; S3 flags on another remote are refused', () => {
    assert.equal(normalizeRemote('s3://bucket/p', '/', { endpoint: 'http://h:1', region: undefined }), 's3://bucket/p?endpoint=http%3A%2F%2Fh%3A1');
    expectEltonError(() => normalizeRemote('http://127.0.0.1:3586', '/', { region: 'x' }), 'E_USAGE', /s3:\/\//);
  });

  it('settings: the URL wins over ELTON_S3_*; path-style defaults on with a custom endpoint', () => {
    assert.deepEqual(effectiveSettings({}, {}), { endpoint: undefined, region: undefined, pathStyle: false, storageClass: undefined });
    assert.equal(effectiveSettings({}, { ELTON_S3_ENDPOINT: 'http://minio:9000' }).pathStyle, true);
    assert.equal(effectiveSettings({ region: 'a' }, { ELTON_S3_REGION: 'b' }).region, 'a');
    assert.equal(effectiveSettings({}, { ELTON_S3_REGION: 'b' }).region, 'b');
    assert.equal(effectiveSettings({ pathStyle: false }, { ELTON_S3_ENDPOINT: 'http://minio:9000' }).pathStyle, false);
  });

  it('index objects round-trip, are named by their hash, and refuse damage', () => {
    const tree = Buffer.from('a tree object');
    const entries = [
      { id: id(2), pack: 1, offset: 512, length: 100 },
      { id: id(1), pack: 0, offset: 5 * 2 ** 32, length: 7 },
      { id: id(3), pack: INLINE, offset: 0, length: tree.length },
    ];
    const { hash, bytes } = encodeIndexObject([id(10), id(11)], entries, tree);
    assert.equal(hash, createHash('sha256').update(bytes).digest('hex'));
    const back = decodeIndexObject(bytes, hash);
    assert.deepEqual(back.packs, [id(10), id(11)]);
    assert.deepEqual(back.entries, [...entries].sort((a, b) => (a.id < b.id ? -1 : 1)));
    assert.deepEqual(back.inline, tree);
    const damaged = Buffer.from(bytes);
    damaged[damaged.length - 1] ^= 1;
    expectEltonError(() => decodeIndexObject(damaged, hash), 'E_CORRUPT', /does not match/);
    const outside = encodeIndexObject([id(10)], [{ id: id(4), pack: 3, offset: 0, length: 1 }], Buffer.alloc(0));
    expectEltonError(() => decodeIndexObject(outside.bytes, outside.hash), 'E_CORRUPT', /outside/);
  });

  it('format 2 records each pack\'s framing and inline deltas; format-1 index objects (ustar packs) still read', () => {
    const delta = Buffer.concat([Buffer.from(id(9), 'hex'), Buffer.from([7, 0])]);
    const two = encodeIndexObject([id(10), id(11)], [{ id: id(1), pack: 1, offset: 0, length: 9 }, { id: id(2), pack: INLINE_DELTA, offset: 0, length: delta.length }], delta, [true, false]);
    const back = decodeIndexObject(two.bytes, two.hash);
    assert.equal(back.format, 2);
    assert.deepEqual(back.tar, [true, false]);
    assert.deepEqual([packPath(back.packs[0], back.tar[0]), packPath(back.packs[1], back.tar[1])], [`data/${id(10)}.tar`, `data/${id(11)}.pack`]);
    // Format 1, as earlier versions wrote it: no framing bytes, every pack ustar, no deltas.
    const head = Buffer.alloc(8 + 4 + 32 + 4 + 48);
    head.write('ELTI', 0);
    head[4] = 1;
    head.writeUInt32BE(1, 8);
    head.write(id(10), 12, 32, 'hex');
    head.writeUInt32BE(1, 44);
    head.write(id(1), 48, 32, 'hex');
    head.writeUInt16BE(0, 80);
    head.writeBigUInt64BE(512n, 84);
    head.writeUInt32BE(100, 92);
    const oneHash = createHash('sha256').update(head).digest('hex');
    const one = decodeIndexObject(head, oneHash);
    assert.deepEqual([one.format, one.tar, one.entries[0].offset], [1, [true], 512]);
    head.writeUInt16BE(INLINE_DELTA, 80);
    const deltaInOne = createHash('sha256').update(head).digest('hex');
    expectEltonError(() => decodeIndexObject(head, deltaInOne), 'E_CORRUPT', /outside/);
  });

  it('version envelopes carry the record (checked) and the index objects it needs', () => {
    const record = { tree: 't', version: 4, root: id(7), parent: 3, message: 'm', author: 'a', host: 'h', time: '2026-01-01T00:00:00.000Z', git: null };
    const env = encodeEnvelope(record, [id(2), id(1)]);
    assert.deepEqual(decodeEnvelope(env, 't', 4), { record, indexes: [id(1), id(2)] });
    expectEltonError(() => decodeEnvelope(env, 't', 5), 'E_CORRUPT', /t@5/);
    expectEltonError(() => decodeEnvelope(Buffer.from('{"format":9}'), 't', 4), 'E_CORRUPT', /format/);
  });
});
