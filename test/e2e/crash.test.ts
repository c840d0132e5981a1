// Crash safety: SIGKILL a commit or a checkout at random points; the store and the workspace stay usable.

import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { elton, tempDir } from '../helpers.js';
import { assertSameTree, checkedHistory, describeRun, eltonAsync, lockExists, ok, sleep, snapshotTree, writeRandomTree, type Entry } from './util.js';

const FILES = 300;
const BYTES = 60 * 1024 * 1024;
const ITERATIONS = 10;

/** A random delay in [20 ms, min(1500 ms, the time an uninterrupted run took)], so most kills land mid-run. */
function randomDelay(fullRunMs: number): number {
  const hi = Math.max(40, Math.min(1500, fullRunMs));
  return Math.round(20 + Math.random() * (hi - 20));
}

describe('e2e: crash safety', function () {
  this.timeout(300000);

  let ws: string;
  const expected = new Map<number, Map<string, Entry>>();

  it(`a commit killed at random points (${ITERATIONS} times) leaves a valid store; the next commit completes and clones back identical`, async function () {
    ws = join(tempDir(), 'crash');
    writeRandomTree(ws, FILES, BYTES, 1);
    ok(elton(ws, ['init']));
    const t0 = Date.now();
    const base = ok(elton(ws, ['commit', '--json'])).json;
    const fullRunMs = Date.now() - t0;
    assert.equal(base.version, 1);
    assert.equal(base.files, FILES);
    expected.set(1, snapshotTree(ws));

    let killedMidRun = 0;
    let staleLocks = 0;
    const log: string[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      // New content for every file, plus a structural change on the last round.
      writeRandomTree(ws, FILES, BYTES, 100 + i);
      if (i === ITERATIONS - 1) {
        rmSync(join(ws, 'd9'), { recursive: true });
        writeRandomTree(join(ws, 'extra'), 5, 1024 * 1024, 999);
      }
      const source = snapshotTree(ws);
      const before = checkedHistory(ok(elton(ws, ['log', '--json']))).length;

      const delay = randomDelay(fullRunMs);
      const child = eltonAsync(ws, ['commit', '-m', `killed ${i}`, '--json']);
      await sleep(delay);
      child.kill('SIGKILL');
      const killed = await child;
      const wasKilled = killed.signal === 'SIGKILL';
      if (wasKilled) killedMidRun++;
      else assert.equal(killed.code, 0, `an unkilled commit must succeed: ${describeRun(killed)}`);
      const stale = lockExists(ws);
      if (stale) staleLocks++;
      const where = `round ${i}, kill after ${delay} ms (${wasKilled ? 'killed' : 'had finished'}${stale ? ', lock left behind' : ''})`;
      log.push(where);

      // The store is valid: log and status work, even with the dead process's lock left behind.
      const history = checkedHistory(ok(elton(ws, ['log', '--json']), `log, ${where}`));
      assert.ok(history.length === before || history.length === before + 1, where);
      ok(elton(ws, ['status', '--json']), `status, ${where}`);

      // The next commit completes...
      const next = ok(elton(ws, ['commit', '-m', `after kill ${i}`, '--json']), `commit, ${where}`).json;
      assert.ok(next.version === before + 1, `${where}: ${JSON.stringify(next)}`);
      assert.equal(next.files, source.size - [...source.values()].filter((e) => e.type !== 'file').length);
      expected.set(next.version, source);
      const st = ok(elton(ws, ['status', '--json'])).json;
      assert.equal(st.clean, true, where);
      assert.equal(st.head, `crash@${next.version}`, where);

      // ...and a clone of it is byte-identical to the source.
      const dst = join(tempDir(), 'clone');
      ok(elton(ws, ['clone', ws, `crash@${next.version}`, dst]), `clone, ${where}`);
      assertSameTree(snapshotTree(dst), source, { modes: true, label: where });
      rmSync(dst, { recursive: true, force: true });
    }
    if (process.env.ELTON_TEST_VERBOSE) console.log(log.join('\n'));
    assert.ok(killedMidRun >= 1, `no kill landed mid-run: ${log.join('; ')}`);
    assert.ok(staleLocks >= 1, `no kill left a lock behind, so stale locks were not exercised: ${log.join('; ')}`);
    assert.ok(!lockExists(ws));
  });

  it(`a checkout killed at random points (${ITERATIONS} times) is completed by the next checkout`, async function () {
    assert.ok(ws, 'needs the history made by the test above');
    const versions = [...expected.keys()].sort((a, b) => a - b);
    const [a, b] = versions.slice(-2);
    const dst = join(tempDir(), 'co');
    const t0 = Date.now();
    ok(elton(tempDir(), ['clone', ws, `crash@${a}`, dst]));
    const fullRunMs = Date.now() - t0;
    assertSameTree(snapshotTree(dst), expected.get(a)!, { modes: true, label: 'clone' });

    let killedMidRun = 0;
    const log: string[] = [];
    let current = a;
    for (let i = 0; i < ITERATIONS; i++) {
      const target = current === a ? b : a;
      const delay = randomDelay(fullRunMs);
      const child = eltonAsync(dst, ['checkout', `crash@${target}`, '--json']);
      await sleep(delay);
      child.kill('SIGKILL');
      const killed = await child;
      const wasKilled = killed.signal === 'SIGKILL';
      if (wasKilled) killedMidRun++;
      else assert.equal(killed.code, 0, describeRun(killed));
      const where = `round ${i}: checkout @${target} killed after ${delay} ms (${wasKilled ? 'killed' : 'had finished'}${lockExists(dst) ? ', lock left behind' : ''})`;
      log.push(where);

      // Some rounds start the re-run from the other version's side: status first, as a user would.
      ok(elton(dst, ['status', '--json']), `status, ${where}`);
      const again = ok(elton(dst, ['checkout', `crash@${target}`, '--json']), `re-run, ${where}`).json;
      assert.equal(again.version, target);
      assertSameTree(snapshotTree(dst), expected.get(target)!, { modes: true, label: where });
      const st = ok(elton(dst, ['status', '--json'])).json;
      assert.equal(st.clean, true, `${where}: ${JSON.stringify(st.changes.slice(0, 5))}`);
      assert.equal(st.head, `crash@${target}`, where);
      current = target;
    }
    if (process.env.ELTON_TEST_VERBOSE) console.log(log.join('\n'));
    assert.ok(killedMidRun >= 1, `no kill landed mid-run: ${log.join('; ')}`);
  });
});
