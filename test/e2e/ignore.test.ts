// Ignore rules end to end (.eltonignore, .gitignore inside Git, .git/ and .elton/), Git provenance, special files.

import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { elton, tempDir, writeTree } from '../helpers.js';
import { checkedHistory, git, ok } from './util.js';

function lsPaths(ws: string, ref = '@latest'): string[] {
  return ok(elton(ws, ['ls', ref, '-r', '--json'])).json.entries.map((e: any) => e.path).sort();
}

function assertNoMetaDirs(paths: string[]): void {
  for (const p of paths) {
    const parts = p.split('/');
    assert.ok(!parts.includes('.git') && !parts.includes('.elton'), `${p} must never be snapshotted`);
  }
}

describe('e2e: ignore rules', function () {
  this.timeout(120000);

  it('.eltonignore excludes files and directories, at the root and deeper', function () {
    const ws = join(tempDir(), 'plain');
    writeTree(ws, {
      '.eltonignore': '*.log\nbuild/\n!keep.log\n',
      'a.txt': 'a',
      'debug.log': 'noise',
      'keep.log': 'kept by negation',
      'build/out.bin': 'artifact',
      'sub/.eltonignore': 'local-only.txt\n',
      'sub/local-only.txt': 'ignored in sub',
      'sub/deep.log': 'noise',
      'sub/b.txt': 'b',
      'local-only.txt': 'not ignored at the root',
      // .gitignore means nothing outside a Git repository.
      '.gitignore': 'a.txt\n',
    });
    ok(elton(ws, ['init']));
    ok(elton(ws, ['commit', '--json']));
    const paths = lsPaths(ws);
    assert.deepEqual(paths, ['.eltonignore', '.gitignore', 'a.txt', 'keep.log', 'local-only.txt', 'sub', 'sub/.eltonignore', 'sub/b.txt'].sort());
    assertNoMetaDirs(paths);
    const st = ok(elton(ws, ['status', '--json'])).json;
    assert.equal(st.clean, true, 'ignored files are not reported as changes');
    writeFileSync(join(ws, 'more.log'), 'new noise');
    assert.equal(ok(elton(ws, ['status', '--json'])).json.clean, true);
  });

  describe('inside a Git repository', function () {
    let ws: string;
    let head: string;

    before(function () {
      ws = join(tempDir(), 'gitproj');
      writeTree(ws, {
        '.gitignore': 'secret.env\nnode_modules/\n',
        '.eltonignore': '*.tmp\n',
        'src/app.js': 'console.log(1)\n',
        'secret.env': 'TOKEN=1\n',
        'node_modules/dep/index.js': 'module.exports = 1\n',
        'scratch.tmp': 'tmp',
        'lib/.gitignore': 'generated.js\n',
        'lib/generated.js': 'generated',
        'lib/real.js': 'real',
        // A nested directory named like the metadata directories, deeper down.
        'vendor/thing/.git/HEAD': 'ref: refs/heads/main\n',
        'vendor/thing/file.txt': 'vendored',
      });
      git(ws, ['init', '-q']);
      git(ws, ['config', 'user.email', 'tester@example.com']);
      git(ws, ['config', 'user.name', 'Tester']);
      git(ws, ['add', '-A']);
      git(ws, ['commit', '-q', '-m', 'initial']);
      head = git(ws, ['rev-parse', 'HEAD']);
      ok(elton(ws, ['init']));
      ok(elton(ws, ['commit', '-m', 'from git', '--json']));
    });

    it('.gitignore applies, at the root and in subdirectories, together with .eltonignore', function () {
      const paths = lsPaths(ws);
      for (const p of ['secret.env', 'node_modules', 'node_modules/dep/index.js', 'scratch.tmp', 'lib/generated.js']) {
        assert.ok(!paths.includes(p), `${p} is ignored`);
      }
      for (const p of ['.gitignore', '.eltonignore', 'src/app.js', 'lib/real.js', 'lib/.gitignore', 'vendor/thing/file.txt']) {
        assert.ok(paths.includes(p), `${p} is kept`);
      }
    });

    it('.git/ and .elton/ never appear in ls -r, at any depth', function () {
      assert.ok(existsSync(join(ws, '.git')) && existsSync(join(ws, '.elton')));
      const paths = lsPaths(ws);
      assertNoMetaDirs(paths);
      const text = ok(elton(ws, ['ls', '@latest', '-r']));
      assert.ok(!/(^|\/|\s)\.(git|elton)(\/|$)/m.test(text.stdout), text.stdout);
    });

    it('the version record carries git.commit = `git rev-parse HEAD` and the branch', function () {
      const [v] = checkedHistory(ok(elton(ws, ['log', '--json'])));
      assert.ok(v.git, 'git provenance recorded');
      assert.equal(v.git.commit, head);
      assert.equal(v.git.branch, git(ws, ['rev-parse', '--abbrev-ref', 'HEAD']));
      const text = ok(elton(ws, ['log']));
      assert.ok(text.stdout.includes(`git ${head.slice(0, 12)}`), text.stdout);
    });

    it('a later Git commit is recorded by the next elton commit', function () {
      writeFileSync(join(ws, 'src/app.js'), 'console.log(2)\n');
      git(ws, ['commit', '-q', '-am', 'second']);
      const head2 = git(ws, ['rev-parse', 'HEAD']);
      assert.notEqual(head2, head);
      const r = ok(elton(ws, ['commit', '--json'])).json;
      assert.equal(r.version, 2);
      const log = checkedHistory(ok(elton(ws, ['log', '--json'])));
      assert.equal(log[1].git.commit, head2);
      assert.equal(log[0].git.commit, head);
    });

    it('a workspace in a subdirectory of a repository follows the .gitignore files above it', function () {
      const sub = join(ws, 'nested-ws');
      writeTree(sub, { 'x.txt': 'x', 'secret.env': 'ignored by the repository root .gitignore', 'y.tmp': 'not ignored: .eltonignore of the parent is not read' });
      ok(elton(sub, ['init']));
      ok(elton(sub, ['commit', '--json']));
      const paths = lsPaths(sub);
      assert.ok(paths.includes('x.txt'));
      assert.ok(!paths.includes('secret.env'), `root .gitignore applies: ${paths}`);
      const [v] = checkedHistory(ok(elton(sub, ['log', '--json'])));
      assert.match(v.git.commit, /^[0-9a-f]{40}$/);
    });

    it('a repository without commits records no git provenance, and the commit still succeeds', function () {
      const fresh = join(tempDir(), 'fresh');
      writeTree(fresh, { 'f.txt': 'f' });
      git(fresh, ['init', '-q']);
      ok(elton(fresh, ['init']));
      ok(elton(fresh, ['commit', '--json']));
      const [v] = checkedHistory(ok(elton(fresh, ['log', '--json'])));
      assert.equal(v.git, null);
    });
  });
});

describe('e2e: special files', function () {
  this.timeout(60000);

  it('a FIFO is skipped with a warning on stderr and the commit still succeeds', function () {
    const ws = join(tempDir(), 'fifo');
    writeTree(ws, { 'a.txt': 'a', 'sub/b.txt': 'b' });
    mkdirSync(join(ws, 'pipes'));
    const mk = spawnSync('mkfifo', [join(ws, 'pipes', 'my.fifo')]);
    assert.equal(mk.status, 0, String(mk.stderr));
    ok(elton(ws, ['init']));
    const r = ok(elton(ws, ['commit', '--json']), 'commit with a FIFO');
    assert.equal(r.json.version, 1);
    assert.equal(r.json.files, 2);
    assert.match(r.stderr, /^warning: .*pipes\/my\.fifo/m, `warning names the FIFO: ${r.stderr}`);
    const paths = lsPaths(ws);
    assert.deepEqual(paths, ['a.txt', 'pipes', 'sub', 'sub/b.txt']);
    // The text form warns too, and status is not blocked by the FIFO.
    const st = elton(ws, ['status']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stderr, /warning: .*my\.fifo/);
    assert.match(st.stdout, /nothing changed/);
  });
});
