// Ignore rules (src/workspace/ignore.ts): .eltonignore, negation, nesting, directory patterns, and .gitignore only inside Git.

import assert from 'node:assert/strict';
import { readdirSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { IgnoreRules, ALWAYS_IGNORED, findGitRoot } from '../../src/workspace/ignore.js';
import { tempDir, writeTree } from '../helpers.js';

/** Walks `root` the way scanWorkspace does (enter, test each child, recurse, leave) and lists what is kept. */
function kept(root: string): string[] {
  const rules = IgnoreRules.forWorkspace(root);
  const out: string[] = [];
  const walk = (rel: string) => {
    const pushed = rules.enter(rel);
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      if (ALWAYS_IGNORED.has(name)) continue;
      const path = rel ? `${rel}/${name}` : name;
      const isDir = lstatSync(join(root, path)).isDirectory();
      if (rules.ignores(path, isDir)) continue;
      out.push(isDir ? `${path}/` : path);
      if (isDir) walk(path);
    }
    rules.leave(pushed);
  };
  walk('');
  return out;
}

describe('ignore rules', () => {
  it('.eltonignore patterns: globs, anchored paths and directory-only patterns', () => {
    const root = tempDir();
    writeTree(root, {
      '.eltonignore': '# a comment\n*.log\nbuild/\n/secret.txt\n',
      'a.log': 'x', 'keep.txt': 'x', 'secret.txt': 'x',
      'build/out.o': 'x',
      'sub/b.log': 'x', 'sub/secret.txt': 'x', 'sub/build/out.o': 'x',
      'other/build': 'a file named build is not a directory',
    });
    assert.deepEqual(kept(root), ['.eltonignore', 'keep.txt', 'other/', 'other/build', 'sub/', 'sub/secret.txt']);
  });

  it('negation re-includes, and the last matching pattern wins', () => {
    const root = tempDir();
    writeTree(root, {
      '.eltonignore': '*.log\n!important.log\n*.tmp\n!*.tmp\ndata/*\n!data/keep.bin\n',
      'a.log': 'x', 'important.log': 'x', 'x.tmp': 'x', 'data/drop.bin': 'x', 'data/keep.bin': 'x',
    });
    assert.deepEqual(kept(root), ['.eltonignore', 'data/', 'data/keep.bin', 'important.log', 'x.tmp']);
  });

  it('a nested .eltonignore overrides its parent, only below its own directory', () => {
    const root = tempDir();
    writeTree(root, {
      '.eltonignore': '*.log\n',
      'top.log': 'x', 'local.txt': 'x',
      'sub/.eltonignore': '!keep.log\nlocal.txt\n/only-here.txt\n',
      'sub/keep.log': 'x', 'sub/drop.log': 'x', 'sub/local.txt': 'x', 'sub/only-here.txt': 'x',
      'sub/deeper/only-here.txt': 'x', 'sub/deeper/keep.log': 'x', 'sub/deeper/local.txt': 'x',
      'sibling/keep.log': 'x', 'sibling/local.txt': 'x',
    });
    assert.deepEqual(kept(root), [
      '.eltonignore', 'local.txt',
      'sibling/', 'sibling/local.txt',
      'sub/', 'sub/.eltonignore', 'sub/deeper/', 'sub/deeper/keep.log', 'sub/deeper/only-here.txt', 'sub/keep.log',
    ]);
  });

  it('rules of a directory are dropped when the walk leaves it', () => {
    const root = tempDir();
    writeTree(root, { 'a/.eltonignore': 'x.txt\n', 'a/x.txt': '1', 'b/x.txt': '2' });
    assert.deepEqual(kept(root), ['a/', 'a/.eltonignore', 'b/', 'b/x.txt']);
  });

  it('an empty or blank ignore file ignores nothing', () => {
    const root = tempDir();
    writeTree(root, { '.eltonignore': '\n  \n', 'a.txt': 'x' });
    assert.deepEqual(kept(root), ['.eltonignore', 'a.txt']);
  });

  it('.gitignore is not honoured outside a Git repository', () => {
    const root = tempDir();
    writeTree(root, { '.gitignore': '*.tmp\n', 'a.tmp': 'x', 'sub/.gitignore': 'b.txt\n', 'sub/b.txt': 'x' });
    assert.equal(findGitRoot(root), undefined);
    assert.deepEqual(kept(root), ['.gitignore', 'a.tmp', 'sub/', 'sub/.gitignore', 'sub/b.txt']);
  });

  it('.gitignore (at any depth) and .git/info/exclude are honoured when the workspace is a Git repository', () => {
    const root = tempDir();
    writeTree(root, {
      '.git/info/exclude': 'excluded.txt\n',
      '.gitignore': '*.tmp\nnode_modules/\n',
      'a.tmp': 'x', 'a.txt': 'x', 'excluded.txt': 'x', 'node_modules/m.js': 'x',
      'sub/.gitignore': 'b.txt\n', 'sub/b.txt': 'x', 'sub/c.txt': 'x',
    });
    assert.equal(findGitRoot(root), root);
    assert.deepEqual(kept(root), ['.gitignore', 'a.txt', 'sub/', 'sub/.gitignore', 'sub/c.txt']);
  });

  it('.eltonignore overrides .gitignore in the same directory', () => {
    const root = tempDir();
    writeTree(root, { '.git/': null, '.gitignore': '*.tmp\n', '.eltonignore': '!keep.tmp\nextra.txt\n', 'a.tmp': 'x', 'keep.tmp': 'x', 'extra.txt': 'x' });
    assert.deepEqual(kept(root), ['.eltonignore', '.gitignore', 'keep.tmp']);
  });

  it('a .git file (worktree or submodule) also enables .gitignore', () => {
    const root = tempDir();
    writeTree(root, { '.git': 'gitdir: /elsewhere/.git/worktrees/x\n', '.gitignore': '*.tmp\n', 'a.tmp': 'x', 'a.txt': 'x' });
    assert.deepEqual(kept(root), ['.gitignore', 'a.txt']);
  });

  it('a workspace inside a Git repository honours .gitignore files above it, including anchored patterns', () => {
    // Repository at repo/, workspace at repo/proj/ws. The process's cwd is not the workspace.
    const repo = tempDir();
    writeTree(repo, {
      '.git/info/exclude': '/proj/ws/excluded-by-info.txt\n',
      '.gitignore': '*.tmp\n/proj/ws/anchored.txt\n',
      'proj/.gitignore': 'ws/by-parent.txt\n',
      'proj/ws/a.tmp': 'x', 'proj/ws/a.txt': 'x', 'proj/ws/anchored.txt': 'x', 'proj/ws/by-parent.txt': 'x',
      'proj/ws/excluded-by-info.txt': 'x',
      'proj/ws/sub/anchored.txt': 'not anchored here',
    });
    const ws = join(repo, 'proj', 'ws');
    assert.equal(findGitRoot(ws), repo);
    assert.notEqual(process.cwd(), ws);
    assert.deepEqual(kept(ws), ['a.txt', 'sub/', 'sub/anchored.txt']);
  });

  it('what is kept does not depend on the current directory of the process', () => {
    const repo = tempDir();
    writeTree(repo, { '.git/': null, '.gitignore': 'ws/dropped.txt\n', 'ws/dropped.txt': 'x', 'ws/kept.txt': 'x' });
    const ws = join(repo, 'ws');
    const here = process.cwd();
    let fromWs: string[];
    try {
      process.chdir(ws);
      fromWs = kept(ws);
    } finally {
      process.chdir(here);
    }
    assert.deepEqual(fromWs, ['kept.txt']);
    assert.deepEqual(kept(ws), fromWs);
  });

  it('.elton and .git are always ignored; findGitRoot walks up', () => {
    assert.ok(ALWAYS_IGNORED.has('.elton'));
    assert.ok(ALWAYS_IGNORED.has('.git'));
    const repo = tempDir();
    mkdirSync(join(repo, '.git'));
    mkdirSync(join(repo, 'a', 'b'), { recursive: true });
    assert.equal(findGitRoot(join(repo, 'a', 'b')), repo);
  });
});
