// Trees go to a master as deltas against the same directory's tree in the version before: a small change sends about its own size.

import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { brotliCompressSync, constants as zlibConstants } from 'node:zlib';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertSameTree, eltonAsync, ok, snapshotTree } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import { encodeObject, Kind } from '../../src/object.js';
import { encodeTree } from '../../src/tree.js';
import { makeDelta } from '../../src/lib/delta.js';
import { HttpStore } from '../../src/remote/http-store.js';
import { TAR_END, tarEntry } from '../../src/remote/wire.js';

const file = (i: number, seed = 0) => Buffer.from(`${'row '.repeat(200 + (i % 200))}\n${pseudoRandom(1500 + (i % 2500), seed * 100000 + i).toString('hex')}\n`);

describe('integration: trees as deltas to a master', function () {
  this.timeout(120000);
  let master: MasterProcess;
  before(async () => { master = await startMasterProcess(); });
  after(async () => { await master?.stop(); });

  it('a commit changing 1% of 2,000 files sends about the changed files compressed: not their directories again, nor tar headers', async () => {
    const ws = join(tempDir(), 'deltas');
    const tree: Record<string, Buffer> = {};
    for (let i = 0; i < 2000; i++) tree[`d${i % 4}/f${i}.txt`] = file(i);
    writeTree(ws, tree);
    ok(await eltonAsync(ws, ['init', '--remote', master.url, '--tree', 'deltas']));
    ok(await eltonAsync(ws, ['commit', '-m', 'one']));
    const edits: Record<string, Buffer> = {};
    let compressed = 0;
    for (let i = 5; i < 2000; i += 100) {
      edits[`d${i % 4}/f${i}.txt`] = file(i, 7);
      compressed += brotliCompressSync(edits[`d${i % 4}/f${i}.txt`], { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 2 } }).length;
    }
    writeTree(ws, edits);
    const c = ok(await eltonAsync(ws, ['commit', '-m', 'two', '--json'])).json;
    const up = c.transfer.bytesUp;
    // Four directories of 500 files: their trees whole would be over 100 KB, twice the changed data.
    // Allowed beyond 1.1x: the requests' headers and the version draft, a few KiB in all. Packs
    // travel in the elton framing (37 bytes an object; ustar would add up to 1 KiB each).
    const allowed = 1.1 * compressed + 64 * c.newObjects + 4096;
    assert.ok(up <= allowed, `sent ${up} bytes (${(up / compressed).toFixed(2)}x, ${c.newObjects} objects) for ${compressed} compressed bytes of changed files`);
    const clone = join(tempDir(), 'deltas-clone');
    ok(await eltonAsync(tempDir(), ['clone', master.url, 'deltas@2', clone]));
    assertSameTree(snapshotTree(clone), snapshotTree(ws));
    const v = ok(await eltonAsync(tempDir(), ['verify', master.url, '--json'])).json;
    assert.equal(v.ok, true);
    console.log(`      1% changed: ${up} bytes up for ${compressed} compressed (${(up / compressed).toFixed(3)}x, ${c.newObjects} objects)`);
  });

  it('a delta that rebuilds to other content is refused; one against a base the master lacks falls back to the whole tree', async () => {
    const compression = { codec: 'brotli', quality: 2 } as const;
    const chunkA = encodeObject(Kind.chunk, Buffer.from('a\n'), compression);
    const entry = (name: string) => ({ name, type: 'file' as const, mode: 0o644, mtime: 0, size: 2, chunks: [{ id: chunkA.id, size: 2 }] });
    const basePlain = encodeTree([entry('a')]);
    const otherPlain = encodeTree([entry('b')]);
    const base = encodeObject(Kind.tree, basePlain, compression);
    const store = await HttpStore.connect(master.url, {});
    try {
      await store.upload(async (pack) => { await pack.add(chunkA.id, chunkA.data); await pack.add(base.id, base.data); });
      const other = encodeObject(Kind.tree, otherPlain, compression);
      // Claim the id of another tree for a delta that rebuilds `other`: refused, nothing stored.
      const forgedId = encodeObject(Kind.tree, Buffer.concat([otherPlain, Buffer.from('x')]), compression).id;
      const body: Buffer[] = [];
      body.push(...tarEntry(`${forgedId}.delta`, Buffer.concat([Buffer.from(base.id, 'hex'), makeDelta(basePlain, otherPlain)])), TAR_END);
      const res = await fetch(`${master.url}/v1/packs`, { method: 'POST', body: new Uint8Array(Buffer.concat(body)), headers: { 'content-type': 'application/x-tar' } });
      assert.equal(res.status, 422);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'E_CORRUPT');
      assert.deepEqual([...await store.missing([forgedId])], [forgedId]);
      // A sender that believes the master holds a base it does not: the send still completes, whole.
      const absentBase = encodeObject(Kind.tree, Buffer.from('never sent'), compression).id;
      await store.send([other.id], {
        locate: async () => ({ length: other.data.length }),
        readObjects: async (_ids, onObject) => { await onObject(other.id, other.data); },
        similar: () => ({ base: absentBase, plain: basePlain }),
      });
      assert.equal((await store.missing([other.id])).size, 0, 'the tree arrived whole after the refusal');
    } finally {
      await store.close();
    }
  });
});
