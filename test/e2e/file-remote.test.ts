// A file:// remote shared by several workspaces: stale parents, --force, concurrent committers.

import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { elton, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertSameTree, checkedHistory, describeRun, eltonAsync, ok, snapshotTree } from './util.js';

describe('e2e: file:// remote shared by workspaces', function () {
  this.timeout(180000);

  let storeDir: string;
  let url: string;
  let a: string;
  let b: string;

  before(function () {
    storeDir = join(tempDir(), 'x', 'store');
    url = pathToFileURL(storeDir).href;
    a = join(tempDir(), 'proj');
    writeTree(a, { 'readme.txt': 'shared project\n', 'data/one.txt': 'one\n', 'data/two.txt': 'two\n' });
  });

  it('init --remote creates the store; commit goes there, not into .elton', function () {
    const init = ok(elton(a, ['init', '--remote', url, '--json'])).json;
    assert.equal(init.remote, url);
    assert.equal(init.tree, 'proj');
    assert.ok(existsSync(join(storeDir, 'config')), 'the store was created');
    const r = ok(elton(a, ['commit', '-m', 'base', '--json'])).json;
    assert.equal(r.ref, 'proj@1');
    assert.ok(existsSync(join(storeDir, 'versions', 'proj', '1')));
    assert.ok(!existsSync(join(a, '.elton', 'store', 'versions')), 'nothing in an embedded store');
  });

  it('clone file://... NAME@latest gives the same tree', function () {
    b = join(tempDir(), 'b');
    const r = ok(elton(tempDir(), ['clone', url, 'proj@latest', b, '--json'])).json;
    assert.equal(r.ref, 'proj@1');
    assert.equal(r.remote, url);
    assertSameTree(snapshotTree(b), snapshotTree(a), { modes: true });
    assert.equal(ok(elton(b, ['status', '--json'])).json.head, 'proj@1');
    // A plain store path (not a URL) and the bare @latest work too, when the store holds one tree.
    const c = join(tempDir(), 'c');
    ok(elton(tempDir(), ['clone', storeDir, '@latest', c]));
    assert.equal(readFileSync(join(c, 'readme.txt'), 'utf8'), 'shared project\n');
  });

  it('two workspaces committing at once from the same base: exactly one wins, the other gets E_CONFLICT', async function () {
    writeFileSync(join(a, 'data/one.txt'), 'one, changed in A\n');
    writeFileSync(join(b, 'data/two.txt'), 'two, changed in B\n');
    const [ra, rb] = await Promise.all([eltonAsync(a, ['commit', '-m', 'from A', '--json']), eltonAsync(b, ['commit', '-m', 'from B', '--json'])]);
    const results = [{ ws: a, r: ra }, { ws: b, r: rb }];
    const winners = results.filter((x) => x.r.code === 0);
    const losers = results.filter((x) => x.r.code !== 0);
    assert.equal(winners.length, 1, `exactly one wins:\nA: ${describeRun(ra)}\nB: ${describeRun(rb)}`);
    assert.equal(losers.length, 1);
    const win = winners[0].r.json;
    assert.equal(win.version, 2);
    assert.equal(win.parent, 1);
    const e = assertJsonError(losers[0].r, 'E_CONFLICT', 5);
    assert.match(e.message, /@2/, 'names the latest version');
    assert.match(e.hint!, /--force/);
    assert.match(e.hint!, /checkout/);

    // The loser's HEAD and files are unchanged: it is still based on @1 with its local change.
    const loser = losers[0].ws;
    const st = ok(elton(loser, ['status', '--json'])).json;
    assert.equal(st.head, 'proj@1');
    assert.equal(st.latest, 2);
    assert.equal(st.changes.length, 1);

    // --force records it anyway, as @3 with its true parent @1.
    const forced = ok(elton(loser, ['commit', '--force', '-m', 'forced', '--json'])).json;
    assert.equal(forced.version, 3);
    assert.equal(forced.parent, 1);
    const log = checkedHistory(ok(elton(a, ['log', '--json'])));
    assert.deepEqual(log.map((v) => [v.version, v.parent]), [[1, null], [2, 1], [3, 1]]);
    assert.equal(log[2].message, 'forced');
    // Both versions hold what their committer had.
    const loserChanged = loser === a ? 'data/one.txt' : 'data/two.txt';
    const winnerChanged = loser === a ? 'data/two.txt' : 'data/one.txt';
    assert.equal(ok(elton(a, ['cat', `@3:${loserChanged}`])).stdout, readFileSync(join(loser, loserChanged), 'utf8'));
    assert.equal(ok(elton(a, ['cat', `@2:${winnerChanged}`])).stdout, readFileSync(join(winners[0].ws, winnerChanged), 'utf8'));
    assert.equal(ok(elton(a, ['cat', `@3:${winnerChanged}`])).stdout, winnerChanged === 'data/one.txt' ? 'one\n' : 'two\n', '@3 does not include the other change');
  });

  it('the text form of the stale-parent error has the hint too', function () {
    // A third clone moves the tree on, so that A (at @2 or @3) is behind.
    const c = join(tempDir(), 'c3');
    ok(elton(tempDir(), ['clone', url, 'proj@latest', c]));
    writeFileSync(join(c, 'c.txt'), 'c\n');
    assert.equal(ok(elton(c, ['commit', '--json'])).json.version, 4);
    writeFileSync(join(a, 'a-only.txt'), 'a\n');
    const r = elton(a, ['commit']);
    assert.equal(r.code, 5, describeRun(r));
    assert.match(r.stderr, /^error: .*moved on/m);
    assert.match(r.stderr, /^hint: .*--force/m);
    // Catching up with checkout keeps the local change, then the commit goes through.
    ok(elton(a, ['checkout', 'proj@latest']));
    assert.ok(existsSync(join(a, 'a-only.txt')), 'the untracked local change stays');
    const after = ok(elton(a, ['commit', '--json'])).json;
    assert.equal(after.version, 5);
    assert.equal(after.parent, 4);
  });

  it('5 concurrent `commit --force` from 5 clones give 5 distinct consecutive versions, none lost', async function () {
    const latest = checkedHistory(ok(elton(a, ['log', '--json']))).length;
    const clones: string[] = [];
    for (let i = 0; i < 5; i++) {
      const dir = join(tempDir(), `w${i}`);
      ok(elton(tempDir(), ['clone', url, 'proj@latest', dir]));
      writeFileSync(join(dir, `from-${i}.txt`), `clone ${i}\n`);
      writeFileSync(join(dir, 'readme.txt'), `edited by clone ${i}\n`);
      clones.push(dir);
    }
    const results = await Promise.all(clones.map((dir, i) => eltonAsync(dir, ['commit', '--force', '-m', `clone ${i}`, '--json'])));
    for (const r of results) assert.equal(r.code, 0, describeRun(r));
    const versions = results.map((r) => r.json.version).sort((x, y) => x - y);
    assert.deepEqual(versions, [1, 2, 3, 4, 5].map((k) => latest + k), 'distinct and consecutive');
    for (const r of results) assert.equal(r.json.parent, latest, 'each records its true base');

    const log = checkedHistory(ok(elton(a, ['log', '--json'])));
    assert.equal(log.length, latest + 5);
    results.forEach((r, i) => {
      const record = log[r.json.version - 1];
      assert.equal(record.root, r.json.root, `clone ${i}'s version holds its tree`);
      assert.equal(record.message, `clone ${i}`);
      // And its content reads back from the store.
      assert.equal(ok(elton(a, ['cat', `@${r.json.version}:readme.txt`])).stdout, `edited by clone ${i}\n`);
      assert.equal(ok(elton(a, ['cat', `@${r.json.version}:from-${i}.txt`])).stdout, `clone ${i}\n`);
      const st = ok(elton(clones[i], ['status', '--json'])).json;
      assert.equal(st.head, `proj@${r.json.version}`);
      assert.equal(st.clean, true);
    });
  });

  it('a clone of the newest version reproduces the committer\'s tree exactly', function () {
    const log = checkedHistory(ok(elton(a, ['log', '--json'])));
    const dst = join(tempDir(), 'final');
    ok(elton(tempDir(), ['clone', url, `proj@${log.length}`, dst]));
    const ls = ok(elton(dst, ['ls', '@latest', '-r', '--json'])).json.entries.map((e: any) => e.path).sort();
    const files = [...snapshotTree(dst).keys()].sort();
    assert.deepEqual(files, ls);
  });
});
