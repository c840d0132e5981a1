// A real master on an ephemeral port: the round-trip bound, version issuance, conflicts, pending commits and push.

import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { elton, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertSameTree, checkedHistory, eltonAsync, ok, snapshotTree, writeRandomTree } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';

/** N small files in nested directories (depth 3), so trees span several levels. */
function manyFiles(root: string, n: number, seed: number): void {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`a${i % 7}/b${i % 13}/c${i % 3}/f${i}.txt`] = `file ${i} seed ${seed}\n`.repeat(1 + (i % 5));
  writeTree(root, files);
}

describe('integration: master', function () {
  this.timeout(120000);
  let master: MasterProcess;

  before(async () => { master = await startMasterProcess(); });
  after(async () => { await master?.stop(); });

  it('commit and checkout cost the same few requests for 10 files and for 3,000 files', async () => {
    const counts: Record<number, { commit: number; clone: number; recommit: number; logged: { commit: number; clone: number } }> = {};
    for (const n of [10, 3000]) {
      const ws = join(tempDir(), `rt${n}`);
      manyFiles(ws, n, n);
      ok(elton(ws, ['init', '--remote', master.url]));
      await master.settle();
      let mark = master.mark();
      const c = ok(elton(ws, ['commit', '-m', 'one', '--json'])).json;
      await master.settle();
      const commitLogged = master.since(mark).length;
      assert.equal(c.version, 1);
      assert.equal(c.files, n);
      writeFileSync(join(ws, 'a0', 'changed.txt'), 'a change\n');
      const c2 = ok(elton(ws, ['commit', '-m', 'two', '--json'])).json;
      assert.equal(c2.version, 2);
      await master.settle();
      mark = master.mark();
      const dst = join(tempDir(), 'clone');
      const cl = ok(elton(tempDir(), ['clone', master.url, `rt${n}@2`, dst, '--json'])).json;
      await master.settle();
      const cloneLogged = master.since(mark).length;
      assertSameTree(snapshotTree(dst), snapshotTree(ws), { modes: true });
      counts[n] = { commit: c.transfer.requests, recommit: c2.transfer.requests, clone: cl.transfer.requests, logged: { commit: commitLogged, clone: cloneLogged } };
      // The client's count is the master's count.
      assert.equal(c.transfer.requests, commitLogged, master.since(mark).join('\n'));
      assert.equal(cl.transfer.requests, cloneLogged, master.since(mark).join('\n'));
    }
    assert.deepEqual(counts[10], counts[3000], JSON.stringify(counts));
    assert.ok(counts[3000].commit <= 3, `a commit is missing + pack + issue: ${JSON.stringify(counts)}`);
    assert.ok(counts[3000].clone <= 4, `a clone is config + version + trees + objects: ${JSON.stringify(counts)}`);
  });

  it('a checkout that needs nothing new fetches nothing, and objects are never fetched twice', async () => {
    const ws = join(tempDir(), 'cache');
    writeRandomTree(ws, 20, 4 * 1024 * 1024, 7);
    ok(elton(ws, ['init', '--remote', master.url]));
    ok(elton(ws, ['commit', '-m', 'v1']));
    writeRandomTree(ws, 20, 4 * 1024 * 1024, 8, (i) => i < 2);
    ok(elton(ws, ['commit', '-m', 'v2']));
    const dst = join(tempDir(), 'c');
    const first = ok(elton(tempDir(), ['clone', master.url, 'cache@1', dst, '--json'])).json;
    assert.ok(first.transfer.bytesDown > 3 * 1024 * 1024, JSON.stringify(first.transfer));
    // v2 differs in two files: only their chunks come down.
    const second = ok(elton(dst, ['checkout', 'cache@2', '--json'])).json;
    assert.equal(second.written, 2);
    assert.ok(second.transfer.bytesDown < first.transfer.bytesDown / 4, JSON.stringify(second.transfer));
    // Back to v1: everything is in the cache already.
    const third = ok(elton(dst, ['checkout', 'cache@1', '--json'])).json;
    assert.equal(third.written, 2);
    assert.ok(third.transfer.requests <= 1, `only "latest"-free reads expected: ${JSON.stringify(third.transfer)}`);
    assert.ok(third.transfer.bytesDown < 4096, JSON.stringify(third.transfer));
  });

  it('log, ls, cat, diff and status work against the master', () => {
    const ws = join(tempDir(), 'hist');
    writeTree(ws, { 'a.txt': 'alpha\n', 'd/b.txt': 'beta\n' });
    ok(elton(ws, ['init', '--remote', master.url]));
    ok(elton(ws, ['commit', '-m', 'first']));
    writeTree(ws, { 'a.txt': 'alpha 2\n', 'c.txt': 'gamma\n' });
    ok(elton(ws, ['commit', '-m', 'second']));
    const other = join(tempDir(), 'other');
    ok(elton(tempDir(), ['clone', master.url, 'hist@1', other]));
    const log = ok(elton(other, ['log', '--json'])).json;
    assert.deepEqual(checkedHistory({ ...log, code: 0, stdout: '', stderr: '', json: log }).map((v) => v.message), ['first', 'second']);
    assert.equal(log.transfer.requests, 1);
    assert.equal(ok(elton(other, ['cat', 'hist@2:a.txt'])).stdout, 'alpha 2\n');
    const ls = ok(elton(other, ['ls', '@2', '-r', '--json'])).json;
    assert.deepEqual(ls.entries.map((e: { path: string }) => e.path), ['a.txt', 'c.txt', 'd', 'd/b.txt']);
    const diff = ok(elton(other, ['diff', '@1', '@2', '--json'])).json;
    assert.deepEqual(diff.changes.map((c: { path: string; change: string }) => `${c.change} ${c.path}`), ['modified a.txt', 'added c.txt']);
    const st = ok(elton(other, ['status', '--json'])).json;
    assert.equal(st.head, 'hist@1');
    assert.equal(st.latest, 2);
    assert.equal(st.clean, true);
  });

  it('a stale commit is refused with a conflict that says what to do; --force records it with its true parent', () => {
    const a = join(tempDir(), 'race');
    writeTree(a, { 'f.txt': 'base\n' });
    ok(elton(a, ['init', '--remote', master.url]));
    ok(elton(a, ['commit', '-m', 'base']));
    const b = join(tempDir(), 'b');
    ok(elton(tempDir(), ['clone', master.url, 'race@1', b]));
    writeTree(a, { 'f.txt': 'from a\n' });
    assert.equal(ok(elton(a, ['commit', '-m', 'a wins', '--json'])).json.version, 2);
    writeTree(b, { 'g.txt': 'from b\n' });
    const refused = elton(b, ['commit', '-m', 'b is stale', '--json']);
    const e = assertJsonError(refused, 'E_CONFLICT', 5);
    assert.match(e.message, /latest version is @2/);
    assert.match(e.hint!, /elton checkout race@latest/);
    assert.match(e.hint!, /--force/);
    const forced = ok(elton(b, ['commit', '-m', 'b forced', '--force', '--json'])).json;
    assert.equal(forced.version, 3);
    assert.equal(forced.parent, 1);
    const log = checkedHistory(ok(elton(a, ['log', '--json'])));
    assert.deepEqual(log.map((v) => [v.version, v.parent, v.message]), [[1, null, 'base'], [2, 1, 'a wins'], [3, 1, 'b forced']]);
  });

  it('N clients committing at once get distinct, consecutive versions: none lost, none duplicated', async () => {
    const N = 8;
    const seed = join(tempDir(), 'conc');
    writeTree(seed, { 'base.txt': 'base\n' });
    ok(elton(seed, ['init', '--remote', master.url]));
    ok(elton(seed, ['commit', '-m', 'base']));
    const clients: string[] = [];
    for (let i = 0; i < N; i++) {
      const dir = join(tempDir(), `c${i}`);
      ok(elton(tempDir(), ['clone', master.url, 'conc@1', dir]));
      writeTree(dir, { [`client-${i}.txt`]: `client ${i}\n` });
      clients.push(dir);
    }
    // Half plain, half forced: exactly one plain commit can win; every forced one is recorded.
    const runs = await Promise.all(clients.map((dir, i) => eltonAsync(dir, ['commit', '-m', `client ${i}`, ...(i % 2 ? ['--force'] : []), '--json'])));
    const won = runs.filter((r) => r.code === 0).map((r) => r.json.version as number);
    const plainWins = runs.filter((r, i) => i % 2 === 0 && r.code === 0).length;
    for (const [i, r] of runs.entries()) if (r.code !== 0) { assert.equal(i % 2, 0, 'a forced commit must not fail'); assertJsonError(r, 'E_CONFLICT', 5); }
    assert.ok(plainWins <= 1, `at most one plain commit wins: ${plainWins}`);
    assert.deepEqual([...won].sort((x, y) => x - y), Array.from({ length: won.length }, (_, k) => k + 2));
    const log = checkedHistory(ok(elton(seed, ['log', '--json'])));
    assert.equal(log.length, 1 + won.length);
    for (const v of log.slice(1)) assert.equal(v.parent, 1, 'each records its true parent');
    // Every issued version checks out byte for byte.
    for (const [i, r] of runs.entries()) {
      if (r.code !== 0) continue;
      const dst = join(tempDir(), `v${r.json.version}`);
      ok(elton(tempDir(), ['clone', master.url, `conc@${r.json.version}`, dst]));
      assertSameTree(snapshotTree(dst), snapshotTree(clients[i]));
    }
  });

  it('a commit made while the master is down stays pending; push sends it later and sends only what is missing', async () => {
    const own = await startMasterProcess();
    const ws = join(tempDir(), 'offline');
    writeRandomTree(ws, 10, 2 * 1024 * 1024, 3);
    ok(elton(ws, ['init', '--remote', own.url]));
    ok(elton(ws, ['commit', '-m', 'online']));
    await own.stop();
    writeRandomTree(ws, 10, 2 * 1024 * 1024, 4, (i) => i === 0);
    const r = ok(elton(ws, ['commit', '-m', 'offline', '--json']));
    assert.equal(r.json.pending, true);
    assert.equal(r.json.version, null);
    assert.match(r.stderr, /saved locally as pending/);
    assert.match(r.stderr, /elton push/);
    const text = ok(elton(ws, ['status']));
    assert.match(text.stdout, /pending/);
    const failed = elton(ws, ['push', '--json']);
    assertJsonError(failed, 'E_UNREACHABLE', 11);
    // The master comes back on the same address, with the same data.
    const back = await startMasterProcess([], own.data, new URL(own.url).host);
    assert.equal(back.url, own.url);
    const pushed = ok(elton(ws, ['push', '--json'])).json;
    assert.equal(pushed.version, 2);
    assert.ok(pushed.transfer.bytesUp < 1024 * 1024, `only the changed file goes up: ${JSON.stringify(pushed.transfer)}`);
    assert.equal(ok(elton(ws, ['push', '--json'])).json.pushed, false);
    const st = ok(elton(ws, ['status', '--json'])).json;
    assert.equal(st.head, 'offline@2');
    assert.equal(st.pending, null);
    const dst = join(tempDir(), 'back');
    ok(elton(tempDir(), ['clone', back.url, 'offline@2', dst]));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
    const stopped = await back.stop('SIGINT');
    assert.equal(stopped.code, 0, stopped.output);
    assert.match(stopped.output, /stopped/);
  });
});
