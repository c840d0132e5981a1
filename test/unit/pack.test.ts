// Packs (src/store/pack.ts): golden ustar header, packs readable by GNU tar and tar-stream, index encoding and corruption detection.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync, statSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { tarHeader, PackFileWriter, encodeIndex, decodeIndex, type PackEntry } from '../../src/store/pack.js';
import { expectEltonError, pseudoRandom, tempDir } from '../helpers.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const field = (h: Buffer, at: number, len: number) => h.toString('latin1', at, at + len);

const expectCorrupt = (fn: () => unknown) => expectEltonError(fn, 'E_CORRUPT');

/** Objects of awkward sizes: empty, under a block, exactly a block, a block plus one, large. */
function sampleObjects(): Array<{ id: string; data: Buffer }> {
  return [Buffer.alloc(0), Buffer.from('hello'), pseudoRandom(512, 1), pseudoRandom(513, 2), pseudoRandom(1234, 3), pseudoRandom(5 * 1024 * 1024 + 7, 4)]
    .map((data) => ({ id: sha(data), data }));
}

async function writePack(path: string, objects: Array<{ id: string; data: Buffer }>): Promise<{ id: string; entries: PackEntry[] }> {
  const w = await PackFileWriter.create(path);
  for (const o of objects) await w.add(o.id, o.data);
  const id = await w.finish();
  return { id, entries: w.entries };
}

describe('packs', () => {
  describe('tarHeader', () => {
    const h = tarHeader('a'.repeat(64), 1234);

    it('is one 512-byte ustar block with the documented fields', () => {
      assert.equal(h.length, 512);
      assert.equal(field(h, 0, 100), 'a'.repeat(64) + '\0'.repeat(36));
      assert.equal(field(h, 100, 8), '0000644\0');
      assert.equal(field(h, 108, 8), '0000000\0');
      assert.equal(field(h, 116, 8), '0000000\0');
      assert.equal(field(h, 124, 12), '00000002322\0'); // 1234 = 0o2322
      assert.equal(field(h, 136, 12), '00000000000\0');
      assert.equal(field(h, 156, 1), '0');
      assert.equal(field(h, 257, 8), 'ustar\x0000');
      assert.ok(h.subarray(265).equals(Buffer.alloc(512 - 265)));
      assert.ok(h.subarray(157, 257).equals(Buffer.alloc(100)));
    });

    it('has the exact checksum field, computed by hand', () => {
      // 64*'a' (6208) + mode (350) + uid (336) + gid (336) + size (537) + mtime (528)
      // + 8 spaces (256) + '0' (48) + 'ustar\0' '00' (655) = 9254 = 0o22046.
      assert.equal(field(h, 148, 8), '022046\0 ');
    });

    it('the checksum is valid for other names and sizes (sum of bytes with the field as spaces)', () => {
      for (const [name, size] of [['x', 0], ['f'.repeat(100), 8 ** 11 - 1], ['0'.repeat(64), 512]] as const) {
        const hdr = tarHeader(name, size);
        const copy = Buffer.from(hdr);
        copy.fill(0x20, 148, 156);
        const sum = copy.reduce((n, b) => n + b, 0);
        assert.equal(parseInt(field(hdr, 148, 6), 8), sum, name);
        assert.equal(parseInt(field(hdr, 124, 11), 8), size);
      }
    });

    it('refuses names over 100 bytes and sizes over 8^11-1', () => {
      assert.throws(() => tarHeader('a'.repeat(101), 1));
      assert.throws(() => tarHeader('é'.repeat(51), 1));
      assert.throws(() => tarHeader('a', 8 ** 11));
    });
  });

  describe('PackFileWriter', () => {
    const dir = tempDir();
    const objects = sampleObjects();
    let packPath: string;
    let packId: string;
    let entries: PackEntry[];

    before(async () => {
      packPath = join(dir, 'p.tar');
      ({ id: packId, entries } = await writePack(packPath, objects));
    });

    it('returns the sha256 of the whole file as the pack id', () => {
      assert.equal(packId, sha(readFileSync(packPath)));
    });

    it('records exact data offsets and lengths', () => {
      const file = readFileSync(packPath);
      assert.equal(entries.length, objects.length);
      let expectedOffset = 512;
      for (const [i, e] of entries.entries()) {
        assert.equal(e.id, objects[i].id);
        assert.equal(e.length, objects[i].data.length);
        assert.equal(e.offset, expectedOffset);
        assert.ok(file.subarray(e.offset, e.offset + e.length).equals(objects[i].data));
        expectedOffset += Math.ceil(e.length / 512) * 512 + 512;
      }
    });

    it('is block-aligned and ends with two zero blocks', () => {
      const file = readFileSync(packPath);
      assert.equal(file.length % 512, 0);
      assert.ok(file.subarray(file.length - 1024).equals(Buffer.alloc(1024)));
      const dataEnd = entries[entries.length - 1].offset + entries[entries.length - 1].length;
      assert.equal(file.length, Math.ceil(dataEnd / 512) * 512 + 1024);
    });

    it('is read-only once written', () => {
      assert.equal(statSync(packPath).mode & 0o777, 0o444);
    });

    it('GNU tar lists every entry, named by id, with the right size, mode and mtime', () => {
      const r = spawnSync('tar', ['-tvf', packPath], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' } });
      assert.ifError(r.error);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, objects.length);
      for (const [i, line] of lines.entries()) {
        const cols = line.split(/\s+/);
        assert.equal(cols[0], '-rw-r--r--');
        assert.equal(Number(cols[2]), objects[i].data.length);
        assert.match(cols[3], /^1970-01-01/);
        assert.equal(cols[cols.length - 1], objects[i].id);
      }
    });

    it('GNU tar extracts byte-identical objects', () => {
      const out = tempDir();
      const r = spawnSync('tar', ['-xf', packPath, '-C', out], { encoding: 'utf8' });
      assert.ifError(r.error);
      assert.equal(r.status, 0, r.stderr);
      for (const o of objects) assert.ok(readFileSync(join(out, o.id)).equals(o.data), o.id);
    });

    it('tar-stream extracts every entry, named by id, with the right bytes', async () => {
      const ex = extract();
      const seen: Array<{ name: string; data: Buffer; mode?: number; type?: string | null }> = [];
      ex.on('entry', (header, stream, next) => {
        const parts: Buffer[] = [];
        stream.on('data', (d: unknown) => parts.push(d as Buffer));
        stream.on('end', () => {
          seen.push({ name: header.name, data: Buffer.concat(parts), mode: header.mode, type: header.type });
          next();
        });
        stream.resume();
      });
      await new Promise<void>((resolve, reject) => {
        ex.on('finish', resolve);
        ex.on('error', reject);
        createReadStream(packPath).on('error', reject).pipe(ex);
      });
      assert.deepEqual(seen.map((s) => s.name), objects.map((o) => o.id));
      for (const [i, s] of seen.entries()) {
        assert.ok(s.data.equals(objects[i].data), s.name);
        assert.equal(s.type, 'file');
        assert.equal(s.mode, 0o644);
      }
    });

    it('create refuses to overwrite an existing pack', async () => {
      await assert.rejects(PackFileWriter.create(packPath), { code: 'EEXIST' });
    });

    it('an empty pack is just the end-of-archive marker', async () => {
      const { id, entries: none } = await writePack(join(dir, 'empty.tar'), []);
      const file = readFileSync(join(dir, 'empty.tar'));
      assert.ok(file.equals(Buffer.alloc(1024)));
      assert.equal(id, sha(Buffer.alloc(1024)));
      assert.deepEqual(none, []);
    });

    it('abort removes the partial pack', async () => {
      const path = join(dir, 'aborted.tar');
      const w = await PackFileWriter.create(path);
      await w.add(sha('x'), Buffer.from('x'));
      await w.abort();
      assert.ok(!existsSync(path));
    });
  });

  describe('index', () => {
    const e1: PackEntry = { id: 'ff'.repeat(32), offset: 5_000_000_000, length: 0xffffffff };
    const e2: PackEntry = { id: '00'.repeat(31) + '01', offset: 512, length: 5 };
    const e3: PackEntry = { id: '7f'.repeat(32), offset: 1536, length: 0 };

    it('has the golden layout: ELTX, format 01, 3 zero bytes, count, sorted entries, sha256 trailer', () => {
      const idx = encodeIndex([e1, e2]);
      const body =
        '454c5458' + '01' + '000000' + '00000002' +
        '00'.repeat(31) + '01' + '0000000000000200' + '00000005' +
        'ff'.repeat(32) + '000000012a05f200' + 'ffffffff';
      assert.equal(idx.toString('hex'), body + sha(Buffer.from(body, 'hex')));
    });

    it('round-trips, sorted by id', () => {
      const decoded = decodeIndex(encodeIndex([e1, e3, e2]), 'x.idx');
      assert.deepEqual(decoded, [e2, e3, e1]);
    });

    it('round-trips an empty index (44 bytes)', () => {
      const idx = encodeIndex([]);
      assert.equal(idx.length, 44);
      assert.deepEqual(decodeIndex(idx, 'empty.idx'), []);
    });

    it('round-trips the entries of a real pack', async () => {
      const { entries } = await writePack(join(tempDir(), 'p.tar'), sampleObjects());
      const byId = (a: PackEntry, b: PackEntry) => (a.id < b.id ? -1 : 1);
      assert.deepEqual(decodeIndex(encodeIndex(entries), 'p.idx'), [...entries].sort(byId));
    });

    it('detects a flipped byte at every position with E_CORRUPT naming the index', () => {
      const idx = encodeIndex([e1, e2, e3]);
      for (let i = 0; i < idx.length; i++) {
        for (const bit of [0x01, 0x80]) {
          const bad = Buffer.from(idx);
          bad[i] ^= bit;
          const err = expectCorrupt(() => decodeIndex(bad, 'abc.idx'));
          assert.match(err.message, /abc\.idx/);
          assert.equal(err.details?.object, 'abc.idx');
        }
      }
    });

    it('detects truncation and trailing garbage', () => {
      const idx = encodeIndex([e1, e2, e3]);
      for (const len of [0, 10, 43, 44, idx.length - 44, idx.length - 1]) expectCorrupt(() => decodeIndex(idx.subarray(0, len), 'x.idx'));
      expectCorrupt(() => decodeIndex(Buffer.concat([idx, Buffer.alloc(44)]), 'x.idx'));
    });

    it('refuses a count that does not match the body even with a valid checksum', () => {
      const body = Buffer.from(encodeIndex([e1, e2]).subarray(0, -32));
      body.writeUInt32BE(3, 8);
      const forged = Buffer.concat([body, createHash('sha256').update(body).digest()]);
      expectCorrupt(() => decodeIndex(forged, 'x.idx'));
    });

    it('refuses an unknown index format', () => {
      const body = Buffer.from(encodeIndex([e1]).subarray(0, -32));
      body[4] = 2;
      const forged = Buffer.concat([body, createHash('sha256').update(body).digest()]);
      const err = expectCorrupt(() => decodeIndex(forged, 'x.idx'));
      assert.match(err.message, /format/);
    });
  });
});
