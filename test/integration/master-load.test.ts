// Many clients at once against one master: 50 fetching and 10 committing, no errors, every version intact.

import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { tempDir, writeTree } from '../helpers.js';
import { assertSameTree, snapshotTree, type Entry } from '../e2e/util.js';
import { startMasterProcess } from './master-util.js';
import { clone } from '../../src/app/clone.js';
import { commit } from '../../src/app/commit.js';
import { init } from '../../src/app/init.js';

const FETCHERS = 50;
const COMMITTERS = 10;
const ROUNDS = 3;

describe('integration: master under load', function () {
  this.timeout(300000);

  it(`${FETCHERS} clients fetching and ${COMMITTERS} committing at once: no errors, and every version checks out byte for byte`, async () => {
    const master = await startMasterProcess();
    try {
      const seed = join(tempDir(), 'load');
      const files: Record<string, string> = {};
      for (let i = 0; i < 300; i++) files[`d${i % 10}/f${i}.txt`] = `line ${i}\n`.repeat(50 + i);
      writeTree(seed, files);
      await init({ remote: master.url }, { cwd: seed });
      await commit({ message: 'seed' }, { cwd: seed });
      const committers = await Promise.all(Array.from({ length: COMMITTERS }, async (_, i) => {
        const dir = join(tempDir(), `w${i}`);
        await clone({ remote: master.url, ref: 'load@1', dir }, { cwd: tempDir() });
        return dir;
      }));
      await master.settle();
      const mark = master.mark();
      const t0 = Date.now();
      const expected = new Map<number, Map<string, Entry>>();
      const commits = committers.map(async (dir, i) => {
        for (let round = 0; round < ROUNDS; round++) {
          writeTree(dir, { [`client${i}/round${round}.txt`]: `client ${i} round ${round}\n`.repeat(100) });
          const before = snapshotTree(dir);
          const r = await commit({ message: `c${i} r${round}`, force: true }, { cwd: dir });
          assert.ok(r.version && !expected.has(r.version), `distinct versions: ${r.version}`);
          expected.set(r.version!, before);
        }
      });
      const fetches = Array.from({ length: FETCHERS }, async (_, i) => {
        const dir = join(tempDir(), `f${i}`);
        const r = await clone({ remote: master.url, ref: 'load@latest', dir }, { cwd: tempDir() });
        assert.ok(r.files >= 300);
      });
      await Promise.all([...commits, ...fetches]);
      const seconds = (Date.now() - t0) / 1000;
      await master.settle();
      const lines = master.since(mark);
      const failed = lines.filter((l) => / [45]\d\d /.test(l));
      assert.deepEqual(failed, [], 'no request failed');
      const rate = lines.length / seconds;
      console.log(`      ${lines.length} requests in ${seconds.toFixed(1)} s: ${rate.toFixed(0)} requests/s (${FETCHERS} fetching, ${COMMITTERS} committing)`);
      const versions = [...expected.keys()].sort((a, b) => a - b);
      assert.deepEqual(versions, Array.from({ length: COMMITTERS * ROUNDS }, (_, k) => k + 2), 'consecutive versions, none lost');
      for (const v of versions) {
        const dst = join(tempDir(), `check${v}`);
        await clone({ remote: master.url, ref: `load@${v}`, dir: dst }, { cwd: tempDir() });
        assertSameTree(snapshotTree(dst), expected.get(v)!, { label: `load@${v}` });
      }
    } finally {
      await master.stop();
    }
  });
});
