// The full cycle on the sample tree: init, commit, re-commit, modify, clone, checkout old and new versions.

import { strict as assert } from 'node:assert';
import { appendFileSync, cpSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { elton, fixture, fixturesDir, tempDir } from '../helpers.js';
import { assertSameTree, checkedHistory, ok, snapshotTree } from './util.js';

describe('e2e: full cycle on sample-tree', function () {
  this.timeout(120000);

  let src: string;
  let dst: string;
  let v1Tree: ReturnType<typeof snapshotTree>;
  let v2Tree: ReturnType<typeof snapshotTree>;
  const first: any = {};

  before(function () {
    src = fixture('sample-tree');
    // A dangling link and a link leading out of the tree: both must be stored as links, never followed.
    symlinkSync('does/not/exist', join(src, 'dangling'));
    symlinkSync('/etc/hostname', join(src, 'outside'));
    // An mtime with sub-millisecond digits whose millisecond value (…507998) is not exactly representable
    // in float seconds: restoring it must not round it down to …507997.
    for (const f of ['docs/guide.txt', 'src/main.js']) {
      const t = spawnSync('touch', ['-d', '@1763772507.998500000', join(src, f)]);
      assert.equal(t.status, 0);
    }
    ok(elton(src, ['init', '--json']), 'init');
    Object.assign(first, ok(elton(src, ['commit', '-m', 'first', '--json']), 'first commit').json);
    v1Tree = snapshotTree(src);
  });

  it('commits the tree as sample-tree@1 (tree name from the directory name)', function () {
    assert.equal(first.ref, 'sample-tree@1');
    assert.equal(first.tree, 'sample-tree');
    assert.equal(first.version, 1);
    assert.equal(first.parent, null);
    assert.equal(first.unchanged, false);
    assert.equal(first.files, 5, 'README.md, build.sh, two docs, src/main.js');
    assert.match(first.root, /^[0-9a-f]{64}$/);
    assert.ok(first.newObjects > 0);
    assert.equal(first.hashedFiles, 5);
  });

  it('a second commit with no change reports unchanged and makes no @2', function () {
    const r = ok(elton(src, ['commit', '--json'])).json;
    assert.equal(r.unchanged, true);
    assert.equal(r.version, 1);
    assert.equal(r.ref, 'sample-tree@1');
    assert.equal(r.root, first.root);
    assert.equal(r.newObjects, 0);
    assert.equal(r.hashedFiles, 0, 'an unchanged tree is not re-read');
    const log = checkedHistory(ok(elton(src, ['log', '--json'])));
    assert.equal(log.length, 1);
    const text = ok(elton(src, ['commit']));
    assert.match(text.stdout, /nothing changed/);
  });

  it('a modified tree commits as @2 with parent 1', function () {
    appendFileSync(join(src, 'README.md'), 'a new line\n');
    const st = ok(elton(src, ['status', '--json'])).json;
    assert.equal(st.clean, false);
    assert.deepEqual(st.changes.map((c: any) => [c.path, c.change]), [['README.md', 'modified']]);
    const r = ok(elton(src, ['commit', '-m', 'second', '--json'])).json;
    assert.equal(r.ref, 'sample-tree@2');
    assert.equal(r.version, 2);
    assert.equal(r.parent, 1);
    assert.equal(r.unchanged, false);
    assert.equal(r.hashedFiles, 1, 'only the changed file is re-read');
    const log = checkedHistory(ok(elton(src, ['log', '--json'])));
    assert.deepEqual(log.map((v) => [v.version, v.parent, v.message]), [[1, null, 'first'], [2, 1, 'second']]);
    v2Tree = snapshotTree(src);
  });

  describe('clone', function () {
    let cloneResult: any;

    before(function () {
      dst = join(tempDir(), 'copy');
      cloneResult = ok(elton(src, ['clone', src, 'sample-tree@latest', dst, '--json']), 'clone').json;
    });

    it('reports what it wrote', function () {
      assert.equal(cloneResult.ref, 'sample-tree@2');
      assert.equal(cloneResult.version, 2);
      assert.equal(cloneResult.root, dst);
      assert.equal(cloneResult.files, 8, '5 files and 3 symlinks');
      assert.equal(cloneResult.written, 8);
      assert.equal(cloneResult.reused, 0);
      assert.equal(cloneResult.deleted, 0);
    });

    it('gives byte-identical files with the same permission bits', function () {
      assertSameTree(snapshotTree(dst), v2Tree, { modes: true });
      for (const p of ['README.md', 'build.sh', 'docs/guide.txt', 'src/main.js']) {
        assert.ok(readFileSync(join(dst, p)).equals(readFileSync(join(src, p))), p);
      }
    });

    it('keeps the exec bit', function () {
      assert.equal(lstatSync(join(dst, 'build.sh')).mode & 0o777, 0o755);
      assert.equal(lstatSync(join(dst, 'README.md')).mode & 0o777, 0o644);
    });

    it('keeps symlinks as links and never follows them', function () {
      for (const [name, target] of [['guide-link', 'docs/guide.txt'], ['dangling', 'does/not/exist'], ['outside', '/etc/hostname']]) {
        assert.ok(lstatSync(join(dst, name)).isSymbolicLink(), `${name} is a symlink`);
        assert.equal(readlinkSync(join(dst, name)), target);
      }
      const ls = ok(elton(dst, ['ls', '@latest', '--json'])).json;
      const outside = ls.entries.find((e: any) => e.name === 'outside');
      assert.equal(outside.type, 'symlink');
      assert.equal(outside.target, '/etc/hostname');
      const cat = ok(elton(dst, ['cat', '@latest:outside']));
      assert.equal(cat.stdout, '/etc/hostname', 'cat of a link gives its target, not the linked file');
    });

    it('creates the empty directory', function () {
      const st = lstatSync(join(dst, 'src', 'empty-dir'));
      assert.ok(st.isDirectory());
      assert.deepEqual(readdirSync(join(dst, 'src', 'empty-dir')), []);
    });

    it('keeps the unicode name', function () {
      assert.ok(readdirSync(join(dst, 'docs')).includes('café menu.txt'));
      assert.ok(readFileSync(join(dst, 'docs', 'café menu.txt')).equals(readFileSync(join(src, 'docs', 'café menu.txt'))));
    });

    it('restores file mtimes to the millisecond', function () {
      const bad: string[] = [];
      for (const [path, e] of v2Tree) {
        if (e.type !== 'file') continue;
        const got = lstatSync(join(dst, path)).mtimeMs;
        if (Math.floor(got) !== Math.floor(e.mtimeMs)) bad.push(`${path}: original ${e.mtimeMs}, clone ${got}`);
      }
      assert.deepEqual(bad, []);
    });

    it('a commit right after a clone changes nothing', function () {
      // In a clone of its own (into a store copy), so that a failure here does not shift the versions below.
      const own = join(tempDir(), 'own');
      const store = join(tempDir(), 'store');
      cpSync(join(src, '.elton', 'store'), store, { recursive: true });
      ok(elton(src, ['clone', store, 'sample-tree@2', own]), 'clone');
      const st = ok(elton(own, ['status', '--json'])).json;
      assert.equal(st.clean, true);
      assert.equal(st.head, 'sample-tree@2');
      const r = ok(elton(own, ['commit', '--json'])).json;
      assert.equal(r.unchanged, true, `commit in a fresh clone made ${r.ref}`);
      assert.equal(r.version, 2);
    });

    it('checkout @1 restores the old content; checkout @latest brings it back', function () {
      const old = ok(elton(dst, ['checkout', '@1', '--json'])).json;
      assert.equal(old.ref, 'sample-tree@1');
      assert.equal(old.written, 1, 'only README.md differs');
      assert.equal(readFileSync(join(dst, 'README.md'), 'utf8'), readFileSync(join(v1Src(), 'README.md'), 'utf8'));
      assertSameTree(snapshotTree(dst), v1Tree, { modes: true, label: '@1' });
      const st = ok(elton(dst, ['status', '--json'])).json;
      assert.equal(st.head, 'sample-tree@1');
      assert.equal(st.latest, 2);
      assert.equal(st.clean, true);

      const latest = ok(elton(dst, ['checkout', '@latest', '--json'])).json;
      assert.equal(latest.ref, 'sample-tree@2');
      assert.equal(latest.written, 1);
      assertSameTree(snapshotTree(dst), v2Tree, { modes: true, label: '@latest' });
    });

    it('accepts NAME@V, @V, @latest and NAME@latest', function () {
      for (const [ref, version] of [['sample-tree@1', 1], ['@2', 2], ['@1', 1], ['@latest', 2], ['sample-tree@latest', 2], ['sample-tree@2', 2]] as const) {
        const r = ok(elton(dst, ['checkout', ref, '--json']), `checkout ${ref}`).json;
        assert.equal(r.version, version, ref);
        assert.equal(r.ref, `sample-tree@${version}`, ref);
        assertSameTree(snapshotTree(dst), version === 1 ? v1Tree : v2Tree, { label: ref });
        const ls = ok(elton(dst, ['ls', ref, '--json'])).json;
        assert.equal(ls.ref, `sample-tree@${version}`);
        const cat = ok(elton(dst, ['cat', `${ref}:README.md`]));
        assert.equal(cat.stdout, readFileSync(join(dst, 'README.md'), 'utf8'));
      }
    });

    it('diff lists README.md as modified between @1 and @2', function () {
      const d = ok(elton(dst, ['diff', '@1', '@2', '--json'])).json;
      assert.equal(d.from, 'sample-tree@1');
      assert.equal(d.to, 'sample-tree@2');
      assert.deepEqual(d.changes.map((c: any) => [c.path, c.change]), [['README.md', 'modified']]);
      const text = ok(elton(dst, ['diff', '@1', '@2']));
      assert.match(text.stdout, /^M README\.md$/m);
    });

    it('cat --json gives utf8 text, or base64 for binary content', function () {
      const r = ok(elton(dst, ['cat', '@2:docs/café menu.txt', '--json'])).json;
      assert.equal(r.encoding, 'utf8');
      assert.equal(r.content, readFileSync(join(src, 'docs', 'café menu.txt'), 'utf8'));
    });

    it('the original workspace is untouched by the clone', function () {
      assert.ok(existsSync(join(src, '.elton', 'config.json')));
      assertSameTree(snapshotTree(src), v2Tree, { modes: true });
    });
  });

  function v1Src(): string {
    // The fixture as it was at @1 (README.md without the appended line).
    return join(fixturesDir, 'sample-tree');
  }
});
