// `elton verify REMOTE`: asks the remote itself whether every version's objects are there, and with --read-data whether they read back true.

import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, eltonAsync, ok } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';

/** Flips two bytes in the middle of the largest pack: inside some chunk's payload. */
function damageLargestPack(packsDir: string): void {
  const tars = readdirSync(packsDir).filter((n) => n.endsWith('.tar')).map((n) => join(packsDir, n));
  const largest = tars.sort((a, b) => statSync(b).size - statSync(a).size)[0];
  const data = readFileSync(largest);
  const at = Math.floor(data.length / 2);
  data[at] ^= 0xff;
  data[at + 1] ^= 0xff;
  writeFileSync(largest, data);
}

describe('integration: elton verify', function () {
  this.timeout(60000);
  let master: MasterProcess;

  before(async () => { master = await startMasterProcess(); });
  after(async () => { await master?.stop(); });

  it('passes a sound master, finds a damaged chunk only when reading data back, and names the version', async () => {
    const ws = join(tempDir(), 'vm');
    writeTree(ws, { 'a.bin': pseudoRandom(3 * 1024 * 1024, 5), 'b/c.txt': 'c\n'.repeat(1000) });
    ok(await eltonAsync(ws, ['init', '--remote', master.url]));
    ok(await eltonAsync(ws, ['commit', '-m', 'one']));
    writeTree(ws, { 'd.txt': 'more\n' });
    ok(await eltonAsync(ws, ['commit', '-m', 'two']));

    const good = ok(await eltonAsync(tempDir(), ['verify', master.url, '--read-data', '--json'])).json;
    assert.equal(good.ok, true);
    assert.equal(good.versions, 2);
    assert.ok(good.objects.chunks >= 4 && good.objects.trees >= 3, JSON.stringify(good.objects));
    assert.equal(good.readData.objects, good.objects.chunks, 'every chunk was read back');
    assert.ok(good.transfer.bytesDown >= 3 * 1024 * 1024, 'the data came from the master, not a cache');

    damageLargestPack(join(master.data, 'store', 'packs'));
    // Presence alone cannot see damage inside a chunk...
    assert.equal(ok(await eltonAsync(tempDir(), ['verify', master.url, '--json'])).json.ok, true);
    // ...reading it back does, whatever any cache holds.
    const bad = await eltonAsync(tempDir(), ['verify', master.url, '--read-data', '--json']);
    assert.equal(bad.code, 7, bad.stderr);
    assert.equal(bad.json.ok, false);
    assert.equal(bad.json.problems.length, 1, JSON.stringify(bad.json.problems));
    const p = bad.json.problems[0];
    assert.deepEqual([p.kind, p.what], ['corrupt', 'chunk']);
    assert.match(p.id, /^[0-9a-f]{64}$/);
    assert.ok(p.versions.includes('vm@1') && p.versions.includes('vm@2'), `both versions reach it: ${p.versions}`);
    const text = await eltonAsync(tempDir(), ['verify', master.url, '--read-data=100']);
    assert.equal(text.code, 7);
    assert.match(text.stdout, new RegExp(`corrupt chunk ${p.id}`));
    assert.match(text.stdout, /FAILED/);
  });

  it('reports what a store lacks, with the versions that need it, and exits 7', async () => {
    const ws = join(tempDir(), 'vf');
    writeTree(ws, { 'x.bin': pseudoRandom(2 * 1024 * 1024, 9), 'y.txt': 'y\n' });
    ok(await eltonAsync(ws, ['init']));
    ok(await eltonAsync(ws, ['commit', '-m', 'one']));
    const packs = join(ws, '.elton', 'store', 'packs');
    assert.equal(ok(await eltonAsync(tempDir(), ['verify', ws, '--json'])).json.ok, true);
    // Remove the pack holding the big file's chunks (the largest), index and data.
    const largest = readdirSync(packs).filter((n) => n.endsWith('.tar')).sort((a, b) => statSync(join(packs, b)).size - statSync(join(packs, a)).size)[0];
    rmSync(join(packs, largest));
    rmSync(join(packs, largest.replace(/\.tar$/, '.idx')));
    const r = await eltonAsync(tempDir(), ['verify', ws, '--json']);
    assert.equal(r.code, 7, r.stderr);
    assert.ok(r.json.problems.length >= 1);
    assert.ok(r.json.problems.every((p: { kind: string; versions: string[] }) => p.kind === 'missing' && p.versions.includes('vf@1')), JSON.stringify(r.json.problems));
  });

  it('refuses a bad percentage and an unknown tree with clear errors', async () => {
    assertJsonError(await eltonAsync(tempDir(), ['verify', master.url, '--read-data=0', '--json']), 'E_USAGE', 2);
    assertJsonError(await eltonAsync(tempDir(), ['verify', master.url, '--read-data=lots', '--json']), 'E_USAGE', 2);
    assertJsonError(await eltonAsync(tempDir(), ['verify', master.url, '--tree', 'nope', '--json']), 'E_NOT_FOUND', 4);
  });
});
