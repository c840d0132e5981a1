// One remote conformance suite, run against every kind of remote: a file store, a real master, and S3 (s3rver behind the conditional-write shim).
//
// Every case drives the real CLI in child processes (asynchronously: s3rver runs in this
// process and must keep serving).

import { strict as assert } from 'node:assert';
import { symlinkSync, chmodSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertSameTree, checkedHistory, eltonAsync, ok, snapshotTree } from '../e2e/util.js';
import { startMasterProcess } from './master-util.js';
import { startS3Server } from '../support/s3-server.js';

interface RemoteUnderTest {
  url: string;
  env: Record<string, string | undefined>;
  network: boolean;
  stop(): Promise<void>;
}

const kinds: Array<{ name: string; start(): Promise<RemoteUnderTest> }> = [
  {
    name: 'file',
    start: async () => ({ url: pathToFileURL(join(tempDir('elton-conf-'), 'store')).href, env: {}, network: false, stop: async () => {} }),
  },
  {
    name: 'master',
    start: async () => {
      const m = await startMasterProcess();
      return { url: m.url, env: {}, network: true, stop: async () => { await m.stop(); } };
    },
  },
  {
    name: 's3',
    start: async () => {
      const s3 = await startS3Server();
      await s3.createBucket('conformance');
      const env = s3.env();
      return { url: `s3://conformance/suite?endpoint=${encodeURIComponent(s3.endpoint)}`, env, network: true, stop: () => s3.close() };
    },
  },
];

for (const kind of kinds) {
  describe(`conformance: ${kind.name} remote`, function () {
    this.timeout(180000);
    let remote: RemoteUnderTest;
    // The machine's AWS_CA_BUNDLE must not reach the children (docs/remotes.md); s3.env() unsets it.
    const run = (cwd: string, args: string[]) => eltonAsync(cwd, args, remote.env);

    before(async () => { remote = await kind.start(); });
    after(async () => { await remote?.stop(); });

    it('commit then clone gives back the tree exactly: contents, modes, symlinks, empty directories', async () => {
      const ws = join(tempDir(), 'exact');
      writeTree(ws, { 'a.txt': 'alpha\n', 'bin/run.sh': '#!/bin/sh\necho hi\n', 'empty/': null, 'deep/er/still/x.bin': Buffer.alloc(300000, 7) });
      chmodSync(join(ws, 'bin/run.sh'), 0o755);
      symlinkSync('a.txt', join(ws, 'link'));
      ok(await run(ws, ['init', '--remote', remote.url, '--tree', 'exact']));
      const c = ok(await run(ws, ['commit', '-m', 'first', '--json'])).json;
      assert.equal(c.version, 1);
      assert.deepEqual(Object.keys(c.transfer).sort(), ['bytesDown', 'bytesUp', 'requests']);
      if (remote.network) assert.ok(c.transfer.requests > 0 && c.transfer.bytesUp > 300000 / 300, JSON.stringify(c.transfer));
      const dst = join(tempDir(), 'exact-clone');
      ok(await run(tempDir(), ['clone', remote.url, 'exact@1', dst]));
      assertSameTree(snapshotTree(dst), snapshotTree(ws), { modes: true });
    });

    it('history: log, ls, cat, diff and checkout of an older version', async () => {
      const ws = join(tempDir(), 'hist');
      writeTree(ws, { 'f.txt': 'one\n', 'sub/g.txt': 'gee\n' });
      ok(await run(ws, ['init', '--remote', remote.url, '--tree', 'hist']));
      ok(await run(ws, ['commit', '-m', 'v1']));
      writeTree(ws, { 'f.txt': 'two\n', 'new.txt': 'new\n' });
      ok(await run(ws, ['commit', '-m', 'v2']));
      const log = checkedHistory(ok(await run(ws, ['log', '--json'])));
      assert.deepEqual(log.map((v) => [v.version, v.parent, v.message]), [[1, null, 'v1'], [2, 1, 'v2']]);
      assert.equal(ok(await run(ws, ['cat', 'hist@1:f.txt'])).stdout, 'one\n');
      const ls = ok(await run(ws, ['ls', 'hist@2', '--json'])).json;
      assert.ok(JSON.stringify(ls).includes('new.txt'));
      const diff = ok(await run(ws, ['diff', 'hist@1', 'hist@2', '--json'])).json;
      assert.ok(JSON.stringify(diff).includes('new.txt'), JSON.stringify(diff));
      ok(await run(ws, ['checkout', 'hist@1']));
      assert.equal(readFileSync(join(ws, 'f.txt'), 'utf8'), 'one\n');
      assert.throws(() => readFileSync(join(ws, 'new.txt')), /ENOENT/);
    });

    it('a stale commit is refused with E_CONFLICT; --force records it with its true parent', async () => {
      const a = join(tempDir(), 'race-a');
      writeTree(a, { 'f.txt': 'base\n' });
      ok(await run(a, ['init', '--remote', remote.url, '--tree', 'race']));
      ok(await run(a, ['commit', '-m', 'base']));
      const b = join(tempDir(), 'race-b');
      ok(await run(tempDir(), ['clone', remote.url, 'race@1', b]));
      writeTree(a, { 'f.txt': 'from a\n' });
      assert.equal(ok(await run(a, ['commit', '-m', 'a wins', '--json'])).json.version, 2);
      writeTree(b, { 'g.txt': 'from b\n' });
      const e = assertJsonError(await run(b, ['commit', '-m', 'stale', '--json']), 'E_CONFLICT', 5);
      assert.match(e.message, /latest version is @2/);
      const forced = ok(await run(b, ['commit', '-m', 'forced', '--force', '--json'])).json;
      assert.deepEqual([forced.version, forced.parent], [3, 1]);
    });

    it('8 committers at once get distinct, consecutive versions, and each checks out byte for byte', async () => {
      const seed = join(tempDir(), 'conc');
      writeTree(seed, { 'base.txt': 'base\n' });
      ok(await run(seed, ['init', '--remote', remote.url, '--tree', 'conc']));
      ok(await run(seed, ['commit', '-m', 'base']));
      const clients = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const dir = join(tempDir(), `conc${i}`);
        ok(await run(tempDir(), ['clone', remote.url, 'conc@1', dir]));
        writeTree(dir, { [`client-${i}.txt`]: `client ${i}\n`.repeat(i + 1) });
        return dir;
      }));
      const runs = await Promise.all(clients.map((dir, i) => run(dir, ['commit', '-m', `c${i}`, '--force', '--json'])));
      for (const r of runs) ok(r, 'forced commit');
      const versions = runs.map((r) => r.json.version as number).sort((x, y) => x - y);
      assert.deepEqual(versions, [2, 3, 4, 5, 6, 7, 8, 9]);
      for (const [i, r] of runs.entries()) {
        const dst = join(tempDir(), `conc-v${r.json.version}`);
        ok(await run(tempDir(), ['clone', remote.url, `conc@${r.json.version}`, dst]));
        assertSameTree(snapshotTree(dst), snapshotTree(clients[i]));
      }
    });

    it('a missing version or tree is E_NOT_FOUND with a hint', async () => {
      const ws = join(tempDir(), 'nf');
      writeTree(ws, { 'f.txt': 'x\n' });
      ok(await run(ws, ['init', '--remote', remote.url, '--tree', 'nf']));
      ok(await run(ws, ['commit', '-m', 'one']));
      assertJsonError(await run(ws, ['checkout', 'nf@7', '--json']), 'E_NOT_FOUND', 4);
      assertJsonError(await run(tempDir(), ['clone', remote.url, 'nosuchtree@1', join(tempDir(), 'nf-clone'), '--json']), 'E_NOT_FOUND', 4);
    });

    it('a sparse clone writes only the selected path and fetches little more than it', async () => {
      const ws = join(tempDir(), 'sparse');
      const files: Record<string, string | Buffer> = { 'small/one.txt': 'just this\n' };
      for (let i = 0; i < 8; i++) files[`big/b${i}.bin`] = pseudoRandom(512 * 1024, i + 1);
      writeTree(ws, files);
      ok(await run(ws, ['init', '--remote', remote.url, '--tree', 'sparse']));
      ok(await run(ws, ['commit', '-m', 'one']));
      const dst = join(tempDir(), 'sparse-clone');
      const r = ok(await run(tempDir(), ['clone', '--json', remote.url, 'sparse@1', dst, '--', 'small/one.txt'])).json;
      assert.equal(readFileSync(join(dst, 'small/one.txt'), 'utf8'), 'just this\n');
      assert.deepEqual([...snapshotTree(dst).keys()].sort(), ['small', 'small/one.txt']);
      if (remote.network) assert.ok(r.transfer.bytesDown < 64 * 1024, `fetched ${r.transfer.bytesDown} bytes for a 10-byte file`);
    });

    it('objects are never fetched twice: a second checkout of a fetched version moves no data', async () => {
      const ws = join(tempDir(), 'twice');
      writeTree(ws, { 'a.bin': pseudoRandom(1024 * 1024, 3), 'b.txt': 'bee\n' });
      ok(await run(ws, ['init', '--remote', remote.url, '--tree', 'twice']));
      ok(await run(ws, ['commit', '-m', 'one']));
      writeFileSync(join(ws, 'b.txt'), 'bee two\n');
      ok(await run(ws, ['commit', '-m', 'two']));
      const dst = join(tempDir(), 'twice-clone');
      const first = ok(await run(tempDir(), ['clone', '--json', remote.url, 'twice@1', dst])).json;
      const again = ok(await run(dst, ['checkout', '--json', 'twice@2'])).json;
      if (remote.network) {
        assert.ok(first.transfer.bytesDown > 1024 * 1024 * 0.9, JSON.stringify(first.transfer));
        assert.ok(again.transfer.bytesDown < 64 * 1024, `the second checkout fetched only the changed file: ${JSON.stringify(again.transfer)}`);
      }
      rmSync(join(dst, 'a.bin'));
      ok(await run(dst, ['checkout', '--force', 'twice@2']));
      assert.equal(readFileSync(join(dst, 'b.txt'), 'utf8'), 'bee two\n');
    });
  });
}
