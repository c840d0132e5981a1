// Locking: one elton process per workspace at a time; ELTON_LOCK_WAIT makes the second one wait.

import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { elton, tempDir } from '../helpers.js';
import { assertJsonError, assertTextError, checkedHistory, describeRun, eltonAsync, lockExists, lockPath, ok, sleep, waitFor, writeRandomTree } from './util.js';

const FILES = 300;
const BYTES = 30 * 1024 * 1024;

describe('e2e: workspace lock', function () {
  this.timeout(180000);

  let ws: string;
  let seed = 10;

  before(function () {
    ws = join(tempDir(), 'locked');
    writeRandomTree(ws, FILES, 1024 * 1024, seed++);
    ok(elton(ws, ['init']));
    ok(elton(ws, ['commit', '--json']));
  });

  /**
   * Starts a commit with a lot to store and, once it holds the lock, pauses it with SIGSTOP, so that
   * it is certainly still running (and holding the lock) while the test runs other commands.
   * `resume` lets it go on and resolves with its result.
   */
  async function startLongCommit() {
    writeRandomTree(ws, FILES, BYTES, seed++);
    const first = eltonAsync(ws, ['commit', '-m', 'long', '--json']);
    const held = await waitFor(() => lockExists(ws), 20000);
    first.kill('SIGSTOP');
    assert.ok(held, 'the long commit took the lock');
    let resumed = false;
    const resume = async () => {
      if (!resumed) first.kill('SIGCONT');
      resumed = true;
      return first;
    };
    running.push(resume);
    return { pid: first.pid, resume };
  }

  const running: Array<() => Promise<unknown>> = [];
  afterEach(async function () {
    // Never leave a stopped process behind, whatever failed.
    for (const resume of running.splice(0)) await resume();
  });

  it('a second commit while one runs fails at once with E_LOCKED (exit 6) naming the holder', async function () {
    const first = await startLongCommit();
    const second = await eltonAsync(ws, ['commit', '--json']);
    const firstDone = await first.resume();
    const j = assertJsonError(second, 'E_LOCKED', 6);
    assert.ok(j.message.includes(`pid ${first.pid}`), `the holder's pid ${first.pid} is named: ${j.message}`);
    assert.ok(j.message.includes('commit'));
    assert.match(j.hint!, /ELTON_LOCK_WAIT/);
    assert.ok(j.hint!.includes(lockPath(ws)), 'the hint names the lock file');
    assert.equal(firstDone.code, 0, describeRun(firstDone));
    assert.equal(firstDone.json.unchanged, false);
    assert.ok(!lockExists(ws), 'released');
  });

  it('checkout and status are refused too while a commit holds the lock (text form)', async function () {
    const first = await startLongCommit();
    const [co, st] = await Promise.all([eltonAsync(ws, ['checkout', '@1']), eltonAsync(ws, ['status'])]);
    const firstDone = await first.resume();
    assertTextError(co, 6, 'locked');
    assertTextError(st, 6, 'locked');
    assert.equal(firstDone.code, 0, describeRun(firstDone));
    assert.equal(ok(elton(ws, ['status', '--json'])).json.head, `locked@${firstDone.json.version}`, 'the refused checkout changed nothing');
  });

  it('log, ls and cat do not need the lock', async function () {
    const first = await startLongCommit();
    const [log, ls, cat] = await Promise.all([
      eltonAsync(ws, ['log', '--json']), eltonAsync(ws, ['ls', '@1', '--json']), eltonAsync(ws, ['cat', '@1:d0/f0000.bin', '--json']),
    ]);
    for (const r of [log, ls, cat]) assert.equal(r.code, 0, describeRun(r));
    const firstDone = await first.resume();
    assert.equal(firstDone.code, 0);
  });

  it('with ELTON_LOCK_WAIT=60 the second commit waits, then succeeds', async function () {
    const first = await startLongCommit();
    let secondEnded = false;
    const second = eltonAsync(ws, ['commit', '-m', 'waited', '--json'], { ELTON_LOCK_WAIT: '60' });
    void second.then(() => { secondEnded = true; });
    await sleep(1500);
    assert.equal(secondEnded, false, 'the second one is still waiting for the lock');
    const firstDone = await first.resume();
    const secondDone = await second;
    assert.equal(firstDone.code, 0, describeRun(firstDone));
    assert.equal(secondDone.code, 0, describeRun(secondDone));
    assert.ok(secondDone.endedAt >= firstDone.endedAt, 'the second one finished after the first');
    const a = firstDone.json;
    const b = secondDone.json;
    assert.equal(a.unchanged, false);
    if (b.unchanged) assert.equal(b.version, a.version, 'nothing left to commit: the same version');
    else assert.equal(b.version, a.version + 1, 'consecutive versions');
    const history = checkedHistory(ok(elton(ws, ['log', '--json'])));
    assert.equal(history[history.length - 1].version, b.version);
    assert.equal(ok(elton(ws, ['status', '--json'])).json.clean, true);
  });

  it('with ELTON_LOCK_WAIT, a change made while both run is committed, and versions stay consecutive', async function () {
    const first = await startLongCommit();
    const second = eltonAsync(ws, ['commit', '-m', 'waited', '--json'], { ELTON_LOCK_WAIT: '60' });
    await sleep(300);
    writeFileSync(join(ws, 'late.txt'), 'written while both ran\n');
    const firstDone = await first.resume();
    const secondDone = await second;
    assert.equal(firstDone.code, 0, describeRun(firstDone));
    assert.equal(secondDone.code, 0, describeRun(secondDone));
    const a = firstDone.json;
    const b = secondDone.json;
    // The first may or may not have seen late.txt; either way nothing is lost and versions are consecutive.
    if (b.unchanged) assert.equal(b.version, a.version);
    else assert.equal(b.version, a.version + 1);
    assert.equal(ok(elton(ws, ['cat', `@${b.version}:late.txt`])).stdout, 'written while both ran\n');
  });

  it('a lock held by a dead process on this host is taken over; a torn lock file too', function () {
    writeFileSync(lockPath(ws), JSON.stringify({ pid: 999999, host: hostname(), time: new Date().toISOString(), command: 'commit' }));
    writeFileSync(join(ws, 'after-stale.txt'), 'x');
    const r = ok(elton(ws, ['commit', '--json'])).json;
    assert.equal(r.unchanged, false);
    assert.ok(!lockExists(ws));
    writeFileSync(lockPath(ws), '{"pid": 12');
    ok(elton(ws, ['status', '--json']));
    assert.ok(!lockExists(ws));
  });

  it('a lock held by a live process is respected even when old; ELTON_LOCK_WAIT gives up with E_LOCKED', function () {
    // Our own pid: alive for as long as this test runs.
    writeFileSync(lockPath(ws), JSON.stringify({ pid: process.pid, host: hostname(), time: '2000-01-01T00:00:00.000Z', command: 'commit' }));
    try {
      const t0 = Date.now();
      const r = elton(ws, ['commit', '--json'], { ELTON_LOCK_WAIT: '1' });
      assertJsonError(r, 'E_LOCKED', 6);
      assert.ok(Date.now() - t0 >= 1000, 'it waited about a second first');
      // A lock from another host is never assumed dead.
      writeFileSync(lockPath(ws), JSON.stringify({ pid: 999999, host: 'some-other-host', time: new Date().toISOString(), command: 'commit' }));
      assertJsonError(elton(ws, ['checkout', '@1', '--json']), 'E_LOCKED', 6);
    } finally {
      writeFileSync(lockPath(ws), '');
      ok(elton(ws, ['status']));
    }
  });
});
