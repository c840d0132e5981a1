// Verification: one flipped byte in a pack is caught before the working tree is touched.

import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { elton, pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertTextError, ok, snapshotTree } from './util.js';

interface TarEntry { name: string; dataOffset: number; size: number }

/** Lists the entries of a ustar file (the pack format), with the offset of each entry's data. */
function tarEntries(buf: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let o = 0;
  while (o + 512 <= buf.length) {
    const header = buf.subarray(o, o + 512);
    if (header.every((b) => b === 0)) break;
    const name = header.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const size = parseInt(header.toString('ascii', 124, 136).replace(/\0.*$/s, '').trim(), 8);
    out.push({ name, dataOffset: o + 512, size });
    o += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** Flips one byte in the middle of `content` where it is stored in a pack; returns the id of the object hit. */
function corruptStoredContent(storeDir: string, content: Buffer, at = Math.floor(content.length / 2)): { pack: string; object: string } {
  const packs = join(storeDir, 'packs');
  const needle = content.subarray(at, at + 64);
  for (const name of readdirSync(packs).filter((n) => n.endsWith('.tar'))) {
    const path = join(packs, name);
    const data = readFileSync(path);
    const found = data.indexOf(needle);
    if (found < 0) continue;
    assert.equal(data.indexOf(needle, found + 1), -1, 'the needle is unique');
    const entry = tarEntries(data).find((e) => found >= e.dataOffset && found < e.dataOffset + e.size);
    assert.ok(entry, 'the needle lies inside an entry');
    const flip = found + 32;
    data[flip] ^= 0x5a;
    chmodSync(path, 0o644); // packs are written read-only
    writeFileSync(path, data);
    return { pack: name, object: entry!.name };
  }
  throw new Error('content not found in any pack: is it stored compressed?');
}

describe('e2e: verification of stored objects', function () {
  this.timeout(120000);

  let src: string;
  let ws: string;
  let big: Buffer;
  let hit: { pack: string; object: string };

  before(function () {
    src = join(tempDir(), 'vsrc');
    writeTree(src, { 'a.txt': 'alpha one\n', 'keep/b.txt': 'bravo\n' });
    ok(elton(src, ['init']));
    ok(elton(src, ['commit', '--json']));
    // A workspace at @1 that shares src's store.
    ws = join(tempDir(), 'vws');
    ok(elton(tempDir(), ['clone', src, 'vsrc@1', ws]));
    // @2 adds a big file of incompressible bytes (stored raw, so findable in the pack) and changes a.txt.
    big = pseudoRandom(900 * 1024, 4242);
    writeTree(src, { 'big.bin': big, 'a.txt': 'alpha two\n' });
    ok(elton(src, ['commit', '--json']));
    hit = corruptStoredContent(join(src, '.elton', 'store'), big);
    assert.match(hit.object, /^[0-9a-f]{64}$/);
  });

  it('checkout of the damaged version fails with E_CORRUPT (exit 7) naming the object, and touches nothing', function () {
    writeFileSync(join(ws, 'untracked.txt'), 'mine\n');
    const before = snapshotTree(ws);
    const j = assertJsonError(elton(ws, ['checkout', 'vsrc@2', '--json']), 'E_CORRUPT', 7);
    assert.ok(j.message.includes(hit.object), `message names object ${hit.object}: ${j.message}`);
    assertTextError(elton(ws, ['checkout', '@latest']), 7, hit.object);
    const after = snapshotTree(ws);
    assert.deepEqual([...after.keys()], [...before.keys()], 'no file added or removed');
    for (const [p, e] of before) {
      const a = after.get(p)!;
      assert.equal(a.hash, e.hash, `${p} content`);
      if (e.type === 'file') {
        assert.equal(a.ino, e.ino, `${p} was not replaced`);
        assert.equal(a.mtimeMs, e.mtimeMs, `${p} was not rewritten`);
      }
    }
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'alpha one\n');
    assert.ok(!existsSync(join(ws, 'big.bin')));
    const st = ok(elton(ws, ['status', '--json'])).json;
    assert.equal(st.head, 'vsrc@1', 'HEAD did not move');
    assert.deepEqual(st.changes.map((c: any) => c.path), ['untracked.txt']);
  });

  it('--force does not get past a damaged object either', function () {
    const j = assertJsonError(elton(ws, ['checkout', '@2', '--force', '--json']), 'E_CORRUPT', 7);
    assert.ok(j.message.includes(hit.object));
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'alpha one\n');
  });

  it('clone of the damaged version fails with E_CORRUPT and leaves no directory behind', function () {
    const parent = tempDir();
    const j = assertJsonError(elton(parent, ['clone', src, 'vsrc@2', 'dst', '--json']), 'E_CORRUPT', 7);
    assert.ok(j.message.includes(hit.object), j.message);
    assert.ok(!existsSync(join(parent, 'dst')), 'the new directory was removed');
    // An existing empty directory stays, and stays empty.
    mkdirSync(join(parent, 'empty'));
    assertJsonError(elton(parent, ['clone', `file://${join(src, '.elton', 'store')}`, 'vsrc@2', 'empty', '--json']), 'E_CORRUPT', 7);
    assert.deepEqual(readdirSync(join(parent, 'empty')), []);
  });

  it('cat of the damaged file fails with E_CORRUPT; undamaged data stays readable', function () {
    const j = assertJsonError(elton(src, ['cat', '@2:big.bin', '--json']), 'E_CORRUPT', 7);
    assert.ok(j.message.includes(hit.object));
    assert.equal(ok(elton(src, ['cat', '@2:a.txt'])).stdout, 'alpha two\n');
    const dst = join(tempDir(), 'old');
    ok(elton(tempDir(), ['clone', src, 'vsrc@1', dst]), 'clone of the undamaged version');
    assert.equal(readFileSync(join(dst, 'a.txt'), 'utf8'), 'alpha one\n');
  });

  it('a checkout of only undamaged paths still works', function () {
    const r = ok(elton(ws, ['checkout', '--json', '@2', '--', 'a.txt'])).json;
    assert.equal(r.written, 1);
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'alpha two\n');
    assert.ok(!existsSync(join(ws, 'big.bin')));
  });
});

describe('e2e: verification of a damaged object among many reads', function () {
  this.timeout(120000);

  // The damaged chunk is the first of a 24 MiB file: it is decoded while later parts of the pack
  // are still being read, which is when a failed decode must still end as E_CORRUPT (exit 7).
  let src: string;
  let hit: { pack: string; object: string };

  before(function () {
    src = join(tempDir(), 'hsrc');
    writeTree(src, { 'small.txt': 'small\n' });
    ok(elton(src, ['init']));
    ok(elton(src, ['commit', '--json']));
    const huge = pseudoRandom(24 * 1024 * 1024, 777);
    writeTree(src, { 'huge.bin': huge });
    ok(elton(src, ['commit', '--json']));
    hit = corruptStoredContent(join(src, '.elton', 'store'), huge, 16 * 1024);
  });

  it('clone fails with E_CORRUPT every time, never a crash', function () {
    for (let i = 0; i < 3; i++) {
      const parent = tempDir();
      const r = elton(parent, ['clone', src, 'hsrc@2', 'dst', '--json']);
      const j = assertJsonError(r, 'E_CORRUPT', 7);
      assert.ok(j.message.includes(hit.object), j.message);
      assert.ok(!existsSync(join(parent, 'dst')));
    }
  });

  it('checkout fails with E_CORRUPT every time and leaves the tree as it was', function () {
    const ws = join(tempDir(), 'hws');
    ok(elton(tempDir(), ['clone', src, 'hsrc@1', ws]));
    for (let i = 0; i < 3; i++) {
      assertTextError(elton(ws, ['checkout', '@2']), 7, hit.object);
      assert.deepEqual(readdirSync(ws).sort(), ['.elton', 'small.txt']);
    }
  });
});
