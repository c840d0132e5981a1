// Snapshots (src/snapshot.ts): flat maps to Merkle trees and back through a FileStore, path selection, and diffs.

import { plainCodec } from '../../src/codec.js';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import {
  buildTrees, loadSnapshot, encodeTreeObject, diffSnapshots, comparePaths, orderParentsFirst, pathSelected, pathCovered,
  contentKey, parentOf, type Flat, type FlatEntry,
} from '../../src/snapshot.js';
import { encodeTree } from '../../src/tree.js';
import { FileStore } from '../../src/store/file-store.js';
import { DEFAULT_CHUNKER } from '../../src/chunker.js';
import { tempDir } from '../helpers.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const fileEntry = (content: string, mode = 0o644, mtime = 1000): FlatEntry =>
  ({ type: 'file', mode, mtime, size: content.length, chunks: [{ id: sha(content), size: content.length }] });
const dirEntry = (mtime = 1000): FlatEntry => ({ type: 'dir', mode: 0o755, mtime, size: 0 });

/** root/{a.txt, d1/{x.txt, same/{k.txt}}, d2/{same/{k.txt}}, empty/, link -> a.txt} */
function sample(): Flat {
  return orderParentsFirst(new Map<string, FlatEntry>([
    ['', dirEntry()],
    ['link', { type: 'symlink', mode: 0o777, mtime: 1000, size: 0, target: 'a.txt' }],
    ['d2/same/k.txt', fileEntry('k')],
    ['a.txt', fileEntry('hello', 0o755, 1234.9)],
    ['d1', dirEntry()], ['d2', dirEntry()], ['d1/same', dirEntry()], ['d2/same', dirEntry()], ['empty', dirEntry()],
    ['d1/x.txt', fileEntry('x')],
    ['d1/same/k.txt', fileEntry('k')],
  ]));
}

describe('snapshots', () => {
  it('buildTrees makes one canonical tree per distinct directory, bottom-up', () => {
    const { root, trees } = buildTrees(sample(), plainCodec);
    const empty = encodeTree([]);
    const same = encodeTree([{ name: 'k.txt', type: 'file', mode: 0o644, mtime: 1000, size: 1, chunks: [{ id: sha('k'), size: 1 }] }]);
    const sameId = createHash('sha256').update(same).digest('hex');
    const d1 = encodeTree([
      { name: 'same', type: 'dir', mode: 0o755, mtime: 1000, tree: sameId },
      { name: 'x.txt', type: 'file', mode: 0o644, mtime: 1000, size: 1, chunks: [{ id: sha('x'), size: 1 }] },
    ]);
    const d2 = encodeTree([{ name: 'same', type: 'dir', mode: 0o755, mtime: 1000, tree: sameId }]);
    const id = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const top = encodeTree([
      { name: 'a.txt', type: 'file', mode: 0o755, mtime: 1234, size: 5, chunks: [{ id: sha('hello'), size: 5 }] },
      { name: 'd1', type: 'dir', mode: 0o755, mtime: 1000, tree: id(d1) },
      { name: 'd2', type: 'dir', mode: 0o755, mtime: 1000, tree: id(d2) },
      { name: 'empty', type: 'dir', mode: 0o755, mtime: 1000, tree: id(empty) },
      { name: 'link', type: 'symlink', mode: 0o777, mtime: 1000, target: 'a.txt' },
    ]);
    assert.equal(root, id(top));
    // d1/same and d2/same are equal directories: one object.
    assert.deepEqual(new Set(trees.keys()), new Set([id(top), id(d1), id(d2), sameId, id(empty)]));
    for (const [k, v] of trees) assert.equal(id(v), k);
  });

  it('equal snapshots have equal root ids; one changed file changes only the trees on its path', () => {
    const a = buildTrees(sample(), plainCodec);
    const changed = sample();
    changed.set('d1/same/k.txt', fileEntry('K'));
    const b = buildTrees(changed, plainCodec);
    assert.equal(buildTrees(sample(), plainCodec).root, a.root);
    assert.notEqual(b.root, a.root);
    const fresh = [...b.trees.keys()].filter((k) => !a.trees.has(k));
    assert.equal(fresh.length, 3, 'root, d1 and d1/same');
  });

  it('loadSnapshot reads back what buildTrees wrote, and only the selected subtrees', async () => {
    const store = await FileStore.create(join(tempDir(), 'store'), {
      format: 1, idScheme: 'sha256', chunker: DEFAULT_CHUNKER, compression: { codec: 'brotli', quality: 2 }, created: 'now',
    });
    const flat = sample();
    const { root, trees } = buildTrees(flat, plainCodec);
    const w = store.writer();
    for (const [id, plain] of trees) await w.add(id, encodeTreeObject(plain, id, store.config.compression, plainCodec));
    await w.finish();

    const full = await loadSnapshot(store, root, { mode: 0o755, mtime: 1000 });
    const expected = new Map([...flat].map(([p, e]) => [p, e.type === 'file' ? { ...e, mtime: Math.floor(e.mtime) } : e]));
    assert.deepEqual(full.flat, expected);
    const seen = new Set<string>();
    for (const path of full.flat.keys()) {
      if (path !== '') assert.ok(seen.has(parentOf(path)), `${path} comes before its parent`);
      seen.add(path);
    }

    const part = await loadSnapshot(store, root, { mode: 0o755, mtime: 1000 }, ['d1/same']);
    assert.deepEqual([...part.flat.keys()].sort(), ['', 'd1', 'd1/same', 'd1/same/k.txt']);
    assert.ok(part.treeObjects < full.treeObjects);
    await store.close();
  });

  it('diffSnapshots reports added, deleted, modified and type changes, in path order', () => {
    const a = sample();
    const b = sample();
    b.delete('d1/x.txt');
    b.set('new.txt', fileEntry('n'));
    b.set('a.txt', fileEntry('hello', 0o644, 1234.9)); // exec bit dropped: modified
    b.set('link', fileEntry('now a file'));
    b.set('empty', { ...dirEntry(), mtime: 5 }); // directory mtimes do not count
    b.set('d2/same/k.txt', fileEntry('k', 0o600, 99)); // same content, same exec bit: unchanged
    assert.deepEqual(diffSnapshots(a, b), [
      { path: 'a.txt', change: 'modified', from: 'file', to: 'file' },
      { path: 'd1/x.txt', change: 'deleted', from: 'file' },
      { path: 'link', change: 'type-changed', from: 'symlink', to: 'file' },
      { path: 'new.txt', change: 'added', to: 'file' },
    ]);
    assert.deepEqual(diffSnapshots(a, a), []);
  });

  it('path helpers', () => {
    assert.ok(comparePaths('a/b', 'a-c') < 0);
    assert.ok(comparePaths('a', 'a/b') < 0);
    assert.ok('a-c' < 'a/b', 'precondition: plain string order differs');
    assert.equal(parentOf('a/b/c'), 'a/b');
    assert.equal(parentOf('a'), '');
    assert.ok(pathSelected('d1', ['d1/same']), 'ancestors are traversed');
    assert.ok(pathSelected('d1/same/k.txt', ['d1/same']));
    assert.ok(!pathSelected('d1/x.txt', ['d1/same']));
    assert.ok(!pathSelected('d1/samex', ['d1/same']));
    assert.ok(pathSelected('anything', undefined));
    assert.ok(!pathCovered('d1', ['d1/same']), 'an ancestor is not covered');
    assert.ok(pathCovered('d1/same/k.txt', ['d1/same']));
    assert.equal(contentKey(fileEntry('x', 0o755)), `fx:${sha('x')}`);
    assert.equal(contentKey({ type: 'symlink', mode: 0o777, mtime: 0, size: 0, target: 't' }), 'l:t');
    assert.equal(contentKey(undefined), '');
  });
});
