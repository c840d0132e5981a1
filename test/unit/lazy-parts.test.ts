// The pure parts of lazy access: gateway path and range parsing, content ids, sizes, and the
// version view's byte-range reads over a real file store.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseRange, splitRequestPath } from '../../src/lazy/gateway.js';
import { contentId, VersionView } from '../../src/lazy/view.js';
import { ObjectLoader } from '../../src/lazy/loader.js';
import { parseSize } from '../../src/store/user-cache.js';
import { FileStore } from '../../src/store/file-store.js';
import { defaultStoreConfig } from '../../src/store/open.js';
import { encodeObject, Kind } from '../../src/object.js';
import { encodeTree, type ChunkRef } from '../../src/tree.js';
import { EltonError } from '../../src/errors.js';
import { pseudoRandom, tempDir } from '../helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('unit: lazy-access parts', () => {
  it('splitRequestPath decodes each segment once and refuses traversal, separators and NUL', () => {
    assert.deepEqual(splitRequestPath('/t@1/a%20b/%C3%A9.txt?x=1'), { names: ['t@1', 'a b', 'é.txt'], trailingSlash: false });
    assert.deepEqual(splitRequestPath('/t@1/dir/'), { names: ['t@1', 'dir'], trailingSlash: true });
    assert.deepEqual(splitRequestPath('/'), { names: [], trailingSlash: false });
    // %252e%252e decodes once to "%2e%2e", a harmless literal name, never to "..".
    assert.deepEqual(splitRequestPath('/t@1/%252e%252e').names, ['t@1', '%2e%2e']);
    for (const bad of ['/t@1/../x', '/t@1/%2e%2e/x', '/t@1/%2E%2E', '/t@1/./x', '/t@1/a%2fb', '/t@1/a%5cb', '/t@1/a%00', '/t@1//x', '/t@1/%zz', 'x']) {
      assert.throws(() => splitRequestPath(bad), (err: { status?: number }) => err.status === 400, bad);
    }
  });

  it('parseRange handles the three single-range forms and refuses what cannot be met', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 10 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 100 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 100 });
    assert.deepEqual(parseRange('bytes=-500', 100), { start: 0, end: 100 });
    assert.deepEqual(parseRange('bytes=95-200', 100), { start: 95, end: 100 });
    assert.equal(parseRange(undefined, 100), 'whole');
    assert.equal(parseRange('bytes=0-1,5-6', 100), 'whole');
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=5-2', 100), 'unsatisfiable');
  });

  it('contentId is the one chunk id, or the hash of the id list', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    assert.equal(contentId([{ id: a, size: 1 }]), a);
    assert.equal(contentId([{ id: a, size: 1 }, { id: b, size: 2 }]), sha(Buffer.from(a + b, 'hex')));
    assert.equal(contentId([]), sha(Buffer.alloc(0)));
  });

  it('parseSize reads bytes and binary units, and refuses anything else with a hint', () => {
    assert.equal(parseSize('0'), 0);
    assert.equal(parseSize('1500'), 1500);
    assert.equal(parseSize('2K'), 2048);
    assert.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
    assert.equal(parseSize('10g'), 10 * 2 ** 30);
    assert.throws(() => parseSize('12 parsecs'), (err: EltonError) => err.code === 'E_USAGE' && !!err.hint);
    assert.throws(() => parseSize('-1'), (err: EltonError) => err.code === 'E_USAGE');
  });

  it('VersionView reads any byte range of a multi-chunk file, reading only the chunks under it', async () => {
    const store = await FileStore.create(tempDir(), defaultStoreConfig());
    const sizes = [1000, 70_000, 3, 200_000, 5000];
    const parts = sizes.map((n, i) => pseudoRandom(n, i + 1));
    const chunks: ChunkRef[] = parts.map((p) => ({ id: sha(p), size: p.length }));
    const writer = store.writer();
    for (const [i, p] of parts.entries()) await writer.add(chunks[i].id, encodeObject(Kind.chunk, p, store.config.compression, Buffer.from(chunks[i].id, 'hex')).data);
    const treePlain = encodeTree([{ name: 'f.bin', type: 'file', mode: 0o644, mtime: 0, size: sizes.reduce((a, b) => a + b), chunks }]);
    const root = sha(treePlain);
    await writer.add(root, encodeObject(Kind.tree, treePlain, store.config.compression, Buffer.from(root, 'hex')).data);
    await writer.finish();
    const whole = Buffer.concat(parts);
    const loader = new ObjectLoader(store);
    const view = new VersionView(loader, { tree: 't', version: 1, root, parent: null, message: '', author: 'a', host: 'h', time: '2026-01-01T00:00:00.000Z', git: null });
    const found = await view.lookup('f.bin');
    assert.equal(found.kind, 'found');
    const node = (found as { node: import('../../src/lazy/view.js').Node }).node;
    assert.equal(node.id, contentId(chunks));
    for (const [start, len] of [[0, 10], [995, 10], [1000, 70_000], [71_000, 4], [71_002, 1], [0, whole.length], [whole.length - 7, 100], [whole.length, 5]]) {
      assert.deepEqual(await view.read(node, start, len), whole.subarray(start, Math.min(whole.length, start + len)), `read ${start}+${len}`);
    }
    let streamed = Buffer.alloc(0);
    for await (const b of view.stream(node, 500, whole.length - 500)) streamed = Buffer.concat([streamed, b]);
    assert.deepEqual(streamed, whole.subarray(500, whole.length - 500));
    assert.deepEqual((await view.lookup('nope')).kind, 'absent');
    await store.close();
  });
});
