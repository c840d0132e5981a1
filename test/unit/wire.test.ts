// Pack framings on the master's wire: ustar (protocol 1) and the compact elton framing (protocol 2).

import { strict as assert } from 'node:assert';
import { PassThrough, Readable } from 'node:stream';
import { PackFormatError, PackStreamWriter, readPack, type PackFraming } from '../../src/remote/wire.js';
import { pseudoRandom } from '../helpers.js';

const id = (n: number) => n.toString(16).padStart(64, '0');

async function write(framing: PackFraming, objects: Array<[string, Buffer]>, deltas: Array<[string, string, Buffer]> = []): Promise<Buffer> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (d: Buffer) => parts.push(d));
  const pack = new PackStreamWriter(out, framing);
  for (const [i, data] of objects) await pack.add(i, data);
  for (const [i, base, delta] of deltas) await pack.addDelta(i, base, delta);
  await pack.finish();
  out.end();
  return Buffer.concat(parts);
}

async function read(bytes: Buffer, framing: PackFraming, acceptDeltas = false, chunk = 7): Promise<Array<[string, Buffer, boolean]>> {
  const got: Array<[string, Buffer, boolean]> = [];
  // Small chunks: entries and headers straddle chunk boundaries.
  const pieces = Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) => bytes.subarray(i * chunk, (i + 1) * chunk));
  await readPack(Readable.from(pieces), (i, data, delta) => { got.push([i, Buffer.from(data), delta]); }, undefined, acceptDeltas, framing);
  return got;
}

describe('unit: pack framings', () => {
  const objects: Array<[string, Buffer]> = [[id(1), Buffer.from('small')], [id(2), pseudoRandom(70000, 3)], [id(3), Buffer.alloc(0)], [id(4), pseudoRandom(513, 4)]];

  it('both framings round-trip objects and deltas; the elton framing costs 37 bytes an object, ustar about 770', async () => {
    for (const framing of ['tar', 'elton'] as const) {
      const bytes = await write(framing, objects, [[id(9), id(1), Buffer.from([5, 0])]]);
      const back = await read(bytes, framing, true);
      assert.deepEqual(back.slice(0, 4), objects.map(([i, d]) => [i, d, false]));
      assert.deepEqual(back[4], [id(9), Buffer.concat([Buffer.from(id(1), 'hex'), Buffer.from([5, 0])]), true]);
      const payload = objects.reduce((n, [, d]) => n + d.length, 0) + 34;
      const overhead = (bytes.length - payload) / 5;
      if (framing === 'elton') assert.ok(overhead < 40, `elton: ${overhead} bytes an object`);
      else assert.ok(overhead > 500, `tar: ${overhead} bytes an object`);
    }
  });

  it('the elton framing refuses damage: bad magic, truncation, trailing bytes, unknown entries, deltas where none are taken, oversize', async () => {
    const good = await write('elton', objects);
    const refuses = async (bytes: Buffer, pattern: RegExp, acceptDeltas = false) => {
      await assert.rejects(read(bytes, 'elton', acceptDeltas), (err: Error) => err instanceof PackFormatError && pattern.test(err.message));
    };
    await refuses(Buffer.concat([Buffer.from('XXXX'), good.subarray(4)]), /magic/);
    await refuses(good.subarray(0, good.length - 1), /truncated/);
    await refuses(good.subarray(0, 100), /truncated/);
    await refuses(Buffer.concat([good, Buffer.from([1])]), /after the end/);
    const typed = Buffer.from(good);
    typed[8] = 7;
    await refuses(typed, /entry type 7/);
    await refuses(await write('elton', [], [[id(9), id(1), Buffer.from([5, 0])]]), /entry type 2/);
    const big = Buffer.from(good);
    big.writeUInt32BE(2 ** 31, 8 + 33);
    await refuses(big, /over the/);
    // A tar stream is not an elton pack.
    await refuses(await write('tar', objects), /magic/);
  });
});
