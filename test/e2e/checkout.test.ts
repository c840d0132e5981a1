// Checkout semantics: reuse, deletion, untracked and ignored files, uncommitted changes, partial checkouts.

import { strict as assert } from 'node:assert';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { elton, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertSameTree, assertTextError, ok, snapshotTree } from './util.js';

const V1 = {
  '.eltonignore': '*.tmp\ncache/\n',
  'a.txt': 'a one\n',
  'b.txt': 'b one\n',
  'keep.txt': 'never changes\n',
  'docs/x.md': 'x one\n',
  'docs/y.md': 'y one\n',
};

describe('e2e: checkout semantics', function () {
  this.timeout(120000);

  let ws: string;
  let v1: ReturnType<typeof snapshotTree>;
  let v2: ReturnType<typeof snapshotTree>;

  before(function () {
    ws = join(tempDir(), 'proj');
    writeTree(ws, V1);
    ok(elton(ws, ['init', '--json']));
    assert.equal(ok(elton(ws, ['commit', '--json'])).json.version, 1);
    v1 = snapshotTree(ws);
    // @2: a modified, b deleted, c added, docs/x modified, a new directory.
    writeFileSync(join(ws, 'a.txt'), 'a two\n');
    rmSync(join(ws, 'b.txt'));
    writeTree(ws, { 'c.txt': 'c two\n', 'docs/x.md': 'x two\n', 'new/deep/n.txt': 'n two\n' });
    assert.equal(ok(elton(ws, ['commit', '--json'])).json.version, 2);
    v2 = snapshotTree(ws);
  });

  beforeEach(function () {
    // Every test starts from a clean @2.
    ok(elton(ws, ['checkout', '@2', '--force']));
    for (const p of ['untracked.txt', 'scratch.tmp', 'cache', 'docs/untracked.md']) rmSync(join(ws, p), { recursive: true, force: true });
    assert.equal(ok(elton(ws, ['status', '--json'])).json.clean, true);
  });

  it('reuses files that are already right (same inode) and deletes tracked files absent from the target', function () {
    const keepIno = lstatSync(join(ws, 'keep.txt')).ino;
    const yIno = lstatSync(join(ws, 'docs/y.md')).ino;
    const r = ok(elton(ws, ['checkout', '@1', '--json'])).json;
    assert.equal(r.ref, 'proj@1');
    assert.equal(r.files, 6);
    assert.equal(r.written, 3, 'a.txt, b.txt, docs/x.md');
    assert.equal(r.reused, 3, '.eltonignore, keep.txt, docs/y.md');
    assert.ok(r.deleted >= 2, `c.txt and new/deep/n.txt (and their directories) deleted; got ${r.deleted}`);
    assert.equal(r.bytesWritten, 'a one\n'.length + 'b one\n'.length + 'x one\n'.length);
    assert.equal(lstatSync(join(ws, 'keep.txt')).ino, keepIno, 'keep.txt was not rewritten');
    assert.equal(lstatSync(join(ws, 'docs/y.md')).ino, yIno, 'docs/y.md was not rewritten');
    assert.ok(!existsSync(join(ws, 'c.txt')), 'c.txt deleted');
    assert.ok(!existsSync(join(ws, 'new')), 'the directory that only @2 has is gone');
    assert.equal(readFileSync(join(ws, 'b.txt'), 'utf8'), 'b one\n');
    const now = snapshotTree(ws);
    assert.deepEqual([...now.keys()], [...v1.keys()]);
    for (const [p, e] of v1) assert.equal(now.get(p)!.hash, e.hash, p);

    // Back to @2: only what differs is written again.
    const back = ok(elton(ws, ['checkout', '@2', '--json'])).json;
    assert.equal(back.written, 4, 'a.txt, c.txt, docs/x.md, new/deep/n.txt');
    assert.equal(back.reused, 3);
    assert.equal(back.deleted, 1, 'b.txt');
    assert.equal(lstatSync(join(ws, 'keep.txt')).ino, keepIno);
    const again = ok(elton(ws, ['checkout', '@2', '--json'])).json;
    assert.deepEqual([again.written, again.deleted, again.reused, again.bytesWritten], [0, 0, 7, 0], 'a no-op checkout writes nothing');
    assert.deepEqual([...snapshotTree(ws).keys()], [...v2.keys()]);
  });

  it('leaves untracked and ignored files alone', function () {
    writeTree(ws, {
      'untracked.txt': 'mine\n',
      'docs/untracked.md': 'mine too\n',
      'scratch.tmp': 'ignored\n',
      'cache/blob': 'ignored dir\n',
      'new/deep/also-untracked.txt': 'inside a directory that @1 lacks\n',
    });
    const st = ok(elton(ws, ['status', '--json'])).json;
    assert.deepEqual(st.changes.map((c: any) => c.path).sort(), ['docs/untracked.md', 'new/deep/also-untracked.txt', 'untracked.txt']);
    ok(elton(ws, ['checkout', '@1', '--json']));
    assert.equal(readFileSync(join(ws, 'untracked.txt'), 'utf8'), 'mine\n');
    assert.equal(readFileSync(join(ws, 'docs/untracked.md'), 'utf8'), 'mine too\n');
    assert.equal(readFileSync(join(ws, 'scratch.tmp'), 'utf8'), 'ignored\n');
    assert.equal(readFileSync(join(ws, 'cache/blob'), 'utf8'), 'ignored dir\n');
    assert.equal(readFileSync(join(ws, 'new/deep/also-untracked.txt'), 'utf8'), 'inside a directory that @1 lacks\n');
    assert.ok(!existsSync(join(ws, 'new/deep/n.txt')), 'the tracked file beside it is deleted');
    assert.ok(!existsSync(join(ws, 'c.txt')));
    rmSync(join(ws, 'new'), { recursive: true });
  });

  it('refuses to overwrite uncommitted changes (E_DIRTY, exit 5, path named) and --force overrides', function () {
    writeFileSync(join(ws, 'a.txt'), 'precious local edit\n');
    const j = assertJsonError(elton(ws, ['checkout', '@1', '--json']), 'E_DIRTY', 5);
    assert.ok(j.message.includes('a.txt'), j.message);
    assert.ok(!j.message.includes('keep.txt'), 'only the conflicting path is named');
    assert.match(j.hint!, /--force/);
    assertTextError(elton(ws, ['checkout', '@1']), 5, 'a.txt');
    // Nothing was touched by the refused checkouts.
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'precious local edit\n');
    assert.ok(existsSync(join(ws, 'c.txt')), 'no deletion happened');
    assert.equal(readFileSync(join(ws, 'docs/x.md'), 'utf8'), 'x two\n', 'no other file was written');
    assert.equal(ok(elton(ws, ['status', '--json'])).json.head, 'proj@2');

    const forced = ok(elton(ws, ['checkout', '@1', '--force', '--json'])).json;
    assert.equal(forced.version, 1);
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'a one\n');
    assert.ok(!existsSync(join(ws, 'c.txt')));
  });

  it('refuses to delete a modified tracked file that the target lacks', function () {
    writeFileSync(join(ws, 'c.txt'), 'edited, not committed\n');
    const j = assertJsonError(elton(ws, ['checkout', '@1', '--json']), 'E_DIRTY', 5);
    assert.ok(j.message.includes('c.txt'), j.message);
    assert.equal(readFileSync(join(ws, 'c.txt'), 'utf8'), 'edited, not committed\n');
  });

  it('a local edit equal to the target is not a conflict', function () {
    writeFileSync(join(ws, 'a.txt'), 'a one\n');
    const r = ok(elton(ws, ['checkout', '@1', '--json'])).json;
    assert.equal(r.version, 1);
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'a one\n');
  });

  it('`checkout @1 -- docs` touches only docs', function () {
    const aIno = lstatSync(join(ws, 'a.txt')).ino;
    const r = ok(elton(ws, ['checkout', '--json', '@1', '--', 'docs'])).json;
    assert.deepEqual(r.paths, ['docs']);
    assert.equal(r.written, 1, 'docs/x.md');
    assert.equal(r.deleted, 0);
    assert.equal(readFileSync(join(ws, 'docs/x.md'), 'utf8'), 'x one\n');
    assert.equal(readFileSync(join(ws, 'docs/y.md'), 'utf8'), 'y one\n');
    // Outside docs/ everything is still @2.
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'a two\n');
    assert.equal(lstatSync(join(ws, 'a.txt')).ino, aIno);
    assert.ok(existsSync(join(ws, 'c.txt')));
    assert.ok(existsSync(join(ws, 'new/deep/n.txt')));
    assert.ok(!existsSync(join(ws, 'b.txt')));
    const st = ok(elton(ws, ['status', '--json'])).json;
    assert.equal(st.head, 'proj@2', 'a partial checkout keeps the base version');
    assert.deepEqual(st.changes.map((c: any) => [c.path, c.change]), [['docs/x.md', 'modified']]);
  });

  it('`checkout @1 docs/x.md` from a subdirectory resolves paths against the cwd', function () {
    const r = ok(elton(join(ws, 'docs'), ['checkout', '@1', 'x.md', '--json'])).json;
    assert.deepEqual(r.paths, ['docs/x.md']);
    assert.equal(readFileSync(join(ws, 'docs/x.md'), 'utf8'), 'x one\n');
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'a two\n');
  });

  it('a path the version lacks is E_NOT_FOUND and changes nothing', function () {
    const j = assertJsonError(elton(ws, ['checkout', '@1', 'nope', '--json']), 'E_NOT_FOUND', 4);
    assert.match(j.message, /nope/);
    assert.equal(readFileSync(join(ws, 'a.txt'), 'utf8'), 'a two\n');
  });
});

describe('e2e: checkout across type changes and symlinks', function () {
  this.timeout(120000);

  let ws: string;
  let outside: string;
  let vA: ReturnType<typeof snapshotTree>;
  let vB: ReturnType<typeof snapshotTree>;

  before(function () {
    outside = tempDir('elton-outside-');
    ws = join(tempDir(), 'types');
    // @1: x is a file, y a directory, z a symlink, evil/ a real directory.
    writeTree(ws, { 'x': 'x file\n', 'y/inner.txt': 'inner\n', 'y/sub/deep.txt': 'deep\n', 'evil/file.txt': 'inside evil\n' });
    symlinkSync('x', join(ws, 'z'));
    ok(elton(ws, ['init']));
    ok(elton(ws, ['commit', '--json']));
    vA = snapshotTree(ws);
    // @2: x a directory, y a file, z a file, evil a symlink leading out of the workspace.
    rmSync(join(ws, 'x'));
    rmSync(join(ws, 'y'), { recursive: true });
    rmSync(join(ws, 'z'));
    rmSync(join(ws, 'evil'), { recursive: true });
    writeTree(ws, { 'x/now-a-dir.txt': 'x dir\n', 'y': 'y file\n', 'z': 'z file\n' });
    symlinkSync(outside, join(ws, 'evil'));
    ok(elton(ws, ['commit', '--json']));
    vB = snapshotTree(ws);
  });

  it('switches files, directories and symlinks back and forth, never writing through a link', function () {
    for (let round = 0; round < 2; round++) {
      ok(elton(ws, ['checkout', '@1']), 'checkout @1');
      assertSameTree(snapshotTree(ws), vA, { modes: true, label: '@1' });
      assert.ok(lstatSync(join(ws, 'evil')).isDirectory() && !lstatSync(join(ws, 'evil')).isSymbolicLink());
      ok(elton(ws, ['checkout', '@2']), 'checkout @2');
      assertSameTree(snapshotTree(ws), vB, { modes: true, label: '@2' });
      assert.deepEqual(readdirSync(outside), [], 'nothing was written outside the workspace');
    }
  });

  it('a symlink put where the version has a directory is a conflict; --force replaces the link, not its target', function () {
    ok(elton(ws, ['checkout', '@1']));
    rmSync(join(ws, 'evil'), { recursive: true });
    // The tracked directory replaced by a link that leads out of the workspace.
    symlinkSync(outside, join(ws, 'evil'));
    const j = assertJsonError(elton(ws, ['checkout', '@1', '--json']), 'E_DIRTY', 5);
    assert.ok(j.message.includes('evil'), j.message);
    assert.deepEqual(readdirSync(outside), []);
    ok(elton(ws, ['checkout', '@1', '--force']));
    assert.ok(lstatSync(join(ws, 'evil')).isDirectory() && !lstatSync(join(ws, 'evil')).isSymbolicLink());
    assert.equal(readFileSync(join(ws, 'evil/file.txt'), 'utf8'), 'inside evil\n');
    assert.deepEqual(readdirSync(outside), [], 'the link target was not written to');
  });

  it('a local file added inside a directory that the target replaces with a file is a conflict', function () {
    ok(elton(ws, ['checkout', '@1', '--force']));
    mkdirSync(join(ws, 'y', 'sub', 'more'), { recursive: true });
    writeFileSync(join(ws, 'y', 'sub', 'more', 'mine.txt'), 'untracked work\n');
    const j = assertJsonError(elton(ws, ['checkout', '@2', '--json']), 'E_DIRTY', 5);
    assert.ok(j.message.includes('y/sub/more/mine.txt'), j.message);
    assert.equal(readFileSync(join(ws, 'y', 'sub', 'more', 'mine.txt'), 'utf8'), 'untracked work\n');
    ok(elton(ws, ['checkout', '@2', '--force']));
    assertSameTree(snapshotTree(ws), vB, { label: '@2 forced' });
  });
});
