// Refs and tree names (src/ref.ts): parseRef forms and errors, tree name rules, treeNameFromDir.

import assert from 'node:assert/strict';
import { parseRef, formatRef, isTreeName, checkTreeName, treeNameFromDir, homeOf, isMasterName } from '../../src/ref.js';
import { expectEltonError } from '../helpers.js';

const expectError = (fn: () => unknown, code: string) => expectEltonError(fn, code);

describe('refs', () => {
  describe('parseRef', () => {
    it('parses NAME@V, NAME@latest, @V and @latest', () => {
      assert.deepEqual(parseRef('data@3'), { tree: 'data', version: 3, path: undefined });
      assert.deepEqual(parseRef('data@latest'), { tree: 'data', version: 'latest', path: undefined });
      assert.deepEqual(parseRef('@2'), { tree: undefined, version: 2, path: undefined });
      assert.deepEqual(parseRef('@latest'), { tree: undefined, version: 'latest', path: undefined });
      assert.deepEqual(parseRef('my.tree_v-2@10'), { tree: 'my.tree_v-2', version: 10, path: undefined });
      assert.deepEqual(parseRef('data@999999999999999'), { tree: 'data', version: 999999999999999, path: undefined });
    });

    it('parses a :PATH suffix when allowed', () => {
      assert.deepEqual(parseRef('data@3:dir/f.txt', { allowPath: true }), { tree: 'data', version: 3, path: 'dir/f.txt' });
      assert.deepEqual(parseRef('@latest:a.txt', { allowPath: true }), { tree: undefined, version: 'latest', path: 'a.txt' });
      assert.deepEqual(parseRef('data@1', { allowPath: true }), { tree: 'data', version: 1, path: undefined });
    });

    it('refuses a path when it is not allowed', () => {
      const err = expectError(() => parseRef('data@3:dir/f.txt'), 'E_BAD_REF');
      assert.match(err.message, /path/);
    });

    it('refuses malformed refs with E_BAD_REF and exit code 2', () => {
      for (const text of ['data', '', '@', 'data@', 'data@0', 'data@-1', 'data@x', 'data@01', 'data@1.5', 'data@ 1', 'data@LATEST',
        'bad name@1', '-data@1', '.data@1', 'a@b@1', 'data@1234567890123456', `${'a'.repeat(101)}@1`]) {
        const err = expectError(() => parseRef(text), 'E_BAD_REF');
        assert.equal(err.exitCode, 2, text);
        assert.ok(err.message.includes(`"${text}"`), err.message);
      }
    });

    it('formatRef is the inverse of parseRef for named refs', () => {
      assert.equal(formatRef('data', 3), 'data@3');
      assert.equal(formatRef('data', 'latest'), 'data@latest');
      assert.deepEqual(parseRef(formatRef('x', 42)), { tree: 'x', version: 42, path: undefined });
    });
  });

  describe('tree names', () => {
    it('isTreeName: letters, digits, ".", "_", "-"; starts alphanumeric; at most 100 chars', () => {
      for (const ok of ['a', 'A1', '0', 'data', 'my-tree', 'my_tree.v2', 'x'.repeat(100)]) assert.ok(isTreeName(ok), ok);
      for (const bad of ['', '-a', '.a', '_a', 'a b', 'a/b', 'a@b', 'a:b', 'é', 'x'.repeat(101), 'a\n']) assert.ok(!isTreeName(bad), JSON.stringify(bad));
    });

    it('a name may end in ~HOME, the master it belongs to; homeOf reads it', () => {
      for (const ok of ['data~tokyo', 'my_tree.v2~us-east-1', `${'x'.repeat(100)}~${'h'.repeat(40)}`]) assert.ok(isTreeName(ok), ok);
      for (const bad of ['~tokyo', 'data~', 'data~Tokyo', 'data~to~kyo', 'data~-x', 'data~a.b', `x~${'h'.repeat(41)}`]) assert.ok(!isTreeName(bad), bad);
      assert.equal(homeOf('data~tokyo'), 'tokyo');
      assert.equal(homeOf('data'), undefined);
      assert.deepEqual(parseRef('data~tokyo@3:a/b~c', { allowPath: true }), { tree: 'data~tokyo', version: 3, path: 'a/b~c' });
      assert.ok(isMasterName('us-east-1') && !isMasterName('Tokyo') && !isMasterName('-a') && !isMasterName(''));
    });

    it('checkTreeName returns the name or throws E_USAGE', () => {
      assert.equal(checkTreeName('data'), 'data');
      expectError(() => checkTreeName('bad name'), 'E_USAGE');
    });

    it('treeNameFromDir turns directory names into valid tree names', () => {
      assert.equal(treeNameFromDir('My Photos!'), 'My-Photos');
      assert.equal(treeNameFromDir('data'), 'data');
      assert.equal(treeNameFromDir('.hidden'), 'hidden');
      assert.equal(treeNameFromDir('__init__'), 'init__');
      assert.equal(treeNameFromDir('a  b\tc'), 'a-b-c');
      assert.equal(treeNameFromDir('!!!'), 'tree');
      assert.equal(treeNameFromDir(''), 'tree');
      assert.equal(treeNameFromDir('日本'), 'tree');
      assert.equal(treeNameFromDir('ｄａｔａ'), 'data'); // NFKD folds full-width letters
      assert.equal(treeNameFromDir('x'.repeat(150)), 'x'.repeat(100));
      for (const dir of ['My Photos!', 'ｄａｔａ', '--x--', 'a'.repeat(99) + ' b', 'Ünïcödé dïr']) {
        assert.ok(isTreeName(treeNameFromDir(dir)), dir);
      }
    });
  });
});
