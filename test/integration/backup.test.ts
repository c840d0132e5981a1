// `elton backup`: what the target lacks, exactly once, verified, each version visible only when complete; restore is an ordinary clone.

import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { brotliCompressSync, constants as zlibConstants } from 'node:zlib';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertSameTree, eltonAsync, ok, snapshotTree } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';

const MiB = 1024 * 1024;

/** A tree of `count` files of mixed sizes, some compressible. */
function files(count: number, seed: number): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (let i = 0; i < count; i++) {
    const size = 2000 + ((i * 7919) % 60000);
    out[`d${i % 7}/e${i % 3}/f${i}.bin`] = i % 2 ? pseudoRandom(size, seed * 100000 + i) : Buffer.from(`row ${i} ${'x'.repeat(size)}\n`);
  }
  return out;
}

describe('integration: elton backup', function () {
  this.timeout(180000);
  let s3: S3Server;
  let env: Record<string, string | undefined>;
  let source: MasterProcess;
  let ws: string;
  const s3url = (prefix: string) => `s3://elton-test/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}`;
  const run = (cwd: string, args: string[], extra: Record<string, string | undefined> = {}) => eltonAsync(cwd, args, { ...env, ...extra });
  const backup = async (from: string, to: string, ...more: string[]) => ok(await run(tempDir(), ['backup', '--from', from, '--to', to, '--json', ...more]), `backup ${from} -> ${to}`).json;

  before(async () => {
    s3 = await startS3Server();
    await s3.createBucket('elton-test');
    env = s3.env();
    source = await startMasterProcess();
    ws = join(tempDir(), 'photos');
    writeTree(ws, { ...files(120, 1), 'big.bin': pseudoRandom(3 * MiB, 9) });
    ok(await run(ws, ['init', '--remote', source.url, '--tree', 'photos']));
    ok(await run(ws, ['commit', '-m', 'one']));
    writeTree(ws, { 'd1/e1/f1.bin': pseudoRandom(5000, 77), 'new.txt': 'new\n' });
    ok(await run(ws, ['commit', '-m', 'two']));
  });
  after(async () => {
    await source?.stop();
    await s3?.close();
  });

  it('master to S3: copies both versions once, verifies, a second run moves no data in a handful of requests, and restore is an ordinary clone', async () => {
    const target = s3url('b1');
    const dryMark = s3.stats.log.length;
    const dry = await backup(source.url, target, '--dry-run');
    assert.deepEqual(s3.stats.log.slice(dryMark).filter((e) => e.method !== 'GET' && e.method !== 'HEAD'), [], 'a dry run writes nothing, not even the store config');
    const dirTarget = join(tempDir(), 'not-yet');
    assert.deepEqual((await backup(source.url, dirTarget, '--dry-run')).copied, ['photos@1', 'photos@2']);
    assert.throws(() => statSync(dirTarget), 'nor a directory store');
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.copied, ['photos@1', 'photos@2']);
    assert.ok(dry.objects > 100 && dry.bytes > 3 * MiB, JSON.stringify(dry));
    const before = s3.stats.requests;
    const first = await backup(source.url, target);
    assert.deepEqual(first.copied, ['photos@1', 'photos@2']);
    assert.equal(first.ok, true);
    assert.equal(first.objects, dry.objects, 'the dry run predicted the objects');
    assert.equal(first.bytes, dry.bytes, 'and the bytes');
    assert.ok(first.transfer.to.bytesUp >= first.bytes && first.transfer.to.bytesUp < first.bytes * 1.05 + 64 * 1024, `sent ${first.transfer.to.bytesUp} for ${first.bytes} stored bytes`);
    assert.equal(first.transfer.to.requests, s3.stats.requests - before, 'the client counts what the endpoint sees');

    const verified = ok(await run(tempDir(), ['verify', target, '--read-data', '--json'])).json;
    assert.equal(verified.ok, true, JSON.stringify(verified.problems));
    assert.equal(verified.versions, 2);

    const mark = s3.stats.requests;
    const again = await backup(source.url, target);
    assert.deepEqual([again.copied, again.objects, again.bytes, again.upToDate], [[], 0, 0, 2]);
    const requests = s3.stats.requests - mark;
    assert.ok(requests <= 5, `a no-change run made ${requests} requests to the target`);
    assert.ok(again.transfer.from.requests <= 3, `and ${again.transfer.from.requests} to the source`);

    // Restore: clone, log, ls and checkout straight from the backup.
    const restored = join(tempDir(), 'restored');
    ok(await run(tempDir(), ['clone', target, 'photos@2', restored]));
    assertSameTree(snapshotTree(restored), snapshotTree(ws));
    const log = ok(await run(restored, ['log', '--json'])).json;
    assert.deepEqual(log.versions.map((v: { version: number }) => v.version), [2, 1]);
    const ls = ok(await run(restored, ['ls', 'photos@1', 'd1', '--json'])).json;
    assert.ok(ls.entries.some((e: { name: string }) => e.name === 'e1'), JSON.stringify(ls));
    ok(await run(restored, ['checkout', 'photos@1']));
    assert.throws(() => statSync(join(restored, 'new.txt')), 'photos@1 has no new.txt');
  });

  it('incremental: a new version sends only its changed objects, and between any two kinds of remote (S3 to master, master to directory)', async () => {
    const target = s3url('b2');
    await backup(source.url, target);
    const wsB = join(tempDir(), 'inc');
    ok(await run(tempDir(), ['clone', source.url, 'photos@2', wsB]));
    const changed = pseudoRandom(40000, 1234);
    writeTree(wsB, { 'd2/e0/changed.bin': changed });
    ok(await run(wsB, ['commit', '-m', 'three']));
    const inc = await backup(source.url, target);
    assert.deepEqual(inc.copied, ['photos@3']);
    assert.ok(inc.bytes < changed.length * 1.1 + 4096, `an incremental run of one 40 KB file sent ${inc.bytes} bytes`);

    // S3 -> a second master -> a directory: numbers and content survive every hop.
    const second = await startMasterProcess();
    try {
      const hop1 = await backup(target, second.url);
      assert.deepEqual(hop1.copied, ['photos@1', 'photos@2', 'photos@3']);
      const dir = join(tempDir(), 'dirstore');
      const hop2 = await backup(second.url, dir);
      assert.deepEqual(hop2.copied, ['photos@1', 'photos@2', 'photos@3']);
      const restored = join(tempDir(), 'r3');
      ok(await run(tempDir(), ['clone', dir, 'photos@3', restored]));
      assert.deepEqual(readFileSync(join(restored, 'd2/e0/changed.bin')), changed);
      const log = ok(await run(restored, ['log', '--json'])).json;
      assert.deepEqual(log.versions.map((v: { message: string }) => v.message), ['three', 'two', 'one']);
      // The copy at the second master is a master's own history: it issues @4 next.
      writeTree(restored, { 'later.txt': 'later\n' });
      ok(await run(tempDir(), ['clone', second.url, 'photos@3', join(tempDir(), 'w4')]));
      const w4 = join(tempDir(), 'w4b');
      ok(await run(tempDir(), ['clone', second.url, 'photos@latest', w4]));
      writeTree(w4, { 'later.txt': 'later\n' });
      assert.equal(ok(await run(w4, ['commit', '-m', 'four', '--json'])).json.version, 4);
      // ...which the S3 copy lacks, and a backup the other way brings over.
      assert.deepEqual((await backup(second.url, target)).copied, ['photos@4']);
    } finally {
      await second.stop();
    }
  });

  it('1% of the files changed: the incremental run to S3 sends at most 1.1x their compressed bytes (trees go as deltas, packs carry no per-object headers)', async () => {
    const master = await startMasterProcess();
    try {
      const w = join(tempDir(), 'pct');
      const tree: Record<string, Buffer> = {};
      for (let i = 0; i < 2000; i++) tree[`d${i % 10}/e${i % 7}/f${i}.txt`] = Buffer.from(`${'record '.repeat(100 + (i % 300))}\n${pseudoRandom(2000 + (i % 3000), i).toString('hex')}\n`);
      writeTree(w, tree);
      ok(await run(w, ['init', '--remote', master.url, '--tree', 'pct']));
      ok(await run(w, ['commit', '-m', 'one']));
      const target = s3url('pct');
      await backup(master.url, target);
      // Every hundredth file gets new content of the same kind and size.
      let changed = 0;
      const edits: Record<string, Buffer> = {};
      for (let i = 3; i < 2000; i += 100) {
        const name = `d${i % 10}/e${i % 7}/f${i}.txt`;
        edits[name] = Buffer.from(`${'record '.repeat(100 + (i % 300))}\n${pseudoRandom(2000 + (i % 3000), 99000 + i).toString('hex')}\n`);
        changed += brotliCompressSync(edits[name], { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 2 } }).length;
      }
      writeTree(w, edits);
      ok(await run(w, ['commit', '-m', 'two']));
      const inc = await backup(master.url, target);
      assert.deepEqual(inc.copied, ['pct@2']);
      const up = inc.transfer.to.bytesUp;
      // Each request's HTTP and SigV4 headers (about 1 KiB) are a fixed cost, not a per-byte one.
      const allowed = 1.1 * changed + 1024 * inc.transfer.to.requests;
      assert.ok(up <= allowed, `sent ${up} bytes (${(up / changed).toFixed(2)}x) in ${inc.transfer.to.requests} requests for ${changed} compressed bytes of changed files`);
      const restored = join(tempDir(), 'pct-restored');
      ok(await run(tempDir(), ['clone', target, 'pct@2', restored]));
      assertSameTree(snapshotTree(restored), snapshotTree(w));
      console.log(`      1% changed: ${up} bytes up for ${changed} compressed (${(up / changed).toFixed(3)}x), ${inc.transfer.to.requests} requests`);
    } finally {
      await master.stop();
    }
  });

  it('verify on the backup bucket finds a data pack deleted behind its index objects, without reading data back', async () => {
    const target = s3url('gone');
    await backup(source.url, target);
    const sdk = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: s3.credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    try {
      const packs = ((await sdk.send(new ListObjectsV2Command({ Bucket: 'elton-test', Prefix: 'gone/data/' }))).Contents ?? []).map((o) => o.Key!);
      assert.ok(packs.length >= 1 && packs.every((k) => k.endsWith('.pack')), packs.join(', '));
      await sdk.send(new DeleteObjectCommand({ Bucket: 'elton-test', Key: packs[0] }));
    } finally {
      sdk.destroy();
    }
    const r = await run(tempDir(), ['verify', target, '--json']);
    assert.equal(r.code, 7, r.stdout + r.stderr);
    assert.ok(r.json.problems.length >= 1 && r.json.problems.every((p: { kind: string; what: string }) => p.kind === 'missing' && p.what === 'chunk'), JSON.stringify(r.json.problems.slice(0, 3)));
    // The next backup does not know either (it trusts the index objects): restoring the pack is the repair, as docs/backup.md says.
  });

  it('--tree and --since select versions; a later run fills in the rest', async () => {
    const target = s3url('b3');
    const none = await backup(source.url, target, '--since', '2000-01-01', '--tree', 'photos', '--dry-run');
    assert.ok(none.copied.includes('photos@1'));
    const future = await backup(source.url, target, '--since', '2999-01-01');
    assert.deepEqual(future.copied, []);
    const recent = await backup(source.url, target, '--since', '1d');
    assert.ok(recent.copied.length >= 2, JSON.stringify(recent.copied));
    const unknown = await run(tempDir(), ['backup', '--from', source.url, '--to', target, '--tree', 'nope', '--json']);
    assertJsonError(unknown, 'E_NOT_FOUND', 4);
    const bad = await run(tempDir(), ['backup', '--from', source.url, '--to', target, '--since', 'yesterday', '--json']);
    assertJsonError(bad, 'E_USAGE', 2);
    const badRate = await run(tempDir(), ['backup', '--from', source.url, '--to', target, '--bwlimit', 'fast', '--json']);
    assertJsonError(badRate, 'E_USAGE', 2);
  });

  it('--bwlimit holds the average rate of the data sent', async () => {
    const t0 = Date.now();
    const r = await backup(source.url, join(tempDir(), 'slow'), '--bwlimit', '2M');
    const seconds = (Date.now() - t0) / 1000;
    assert.ok(r.bytes > 3 * MiB, `${r.bytes} bytes`);
    const floor = r.bytes / (2 * MiB) - 0.25;
    assert.ok(seconds >= floor, `${r.bytes} bytes at 2 MiB/s took ${seconds} s, under the ${floor.toFixed(2)} s the limit allows`);
  });

  it('a damaged source object is not copied: the versions that reach it are skipped and reported, and the run exits 7', async () => {
    const master = await startMasterProcess();
    try {
      const w = join(tempDir(), 'dmg');
      writeTree(w, { 'a.bin': pseudoRandom(2 * MiB, 3), 'b.txt': 'b\n' });
      ok(await run(w, ['init', '--remote', master.url, '--tree', 'dmg']));
      ok(await run(w, ['commit', '-m', 'one']));
      const packs = join(master.data, 'store', 'packs');
      const largest = readdirSync(packs).filter((n) => n.endsWith('.tar')).map((n) => join(packs, n)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
      const data = readFileSync(largest);
      data[Math.floor(data.length / 2)] ^= 0xff;
      writeFileSync(largest, data);
      const target = join(tempDir(), 'dmg-target');
      const r = await run(tempDir(), ['backup', '--from', master.url, '--to', target, '--json']);
      assert.equal(r.code, 7, r.stderr);
      assert.equal(r.json.ok, false);
      assert.deepEqual(r.json.skipped, ['dmg@1']);
      assert.deepEqual(r.json.copied, []);
      assert.equal(r.json.problems[0].kind, 'corrupt');
      assert.deepEqual(r.json.problems[0].versions, ['dmg@1']);
      // Nothing of it is visible at the target, and the rest of the objects are there for the next run.
      const v = ok(await run(tempDir(), ['verify', target, '--json'])).json;
      assert.equal(v.versions, 0);
    } finally {
      await master.stop();
    }
  });

  it('a target that is unreachable, refuses writes, or already has a different version gets a clear error, and the source is untouched', async () => {
    const down = await run(tempDir(), ['backup', '--from', source.url, '--to', 'http://127.0.0.1:9', '--json']);
    assertJsonError(down, 'E_UNREACHABLE', 11);
    const tokens = join(tempDir(), 'tokens');
    const readOnly = 'r0'.repeat(16);
    writeFileSync(tokens, `${readOnly} read reader\n`);
    const guarded = await startMasterProcess(['--token-file', tokens]);
    try {
      const refused = await run(tempDir(), ['backup', '--from', source.url, '--to', guarded.url, '--json'], { ELTON_TO_TOKEN: readOnly });
      assertJsonError(refused, 'E_AUTH', 12);
    } finally {
      await guarded.stop();
    }
    // A target with its own history under the same name: nothing is overwritten.
    const other = await startMasterProcess();
    try {
      const w = join(tempDir(), 'photos-elsewhere');
      writeTree(w, { 'x.txt': 'another photos@1\n' });
      ok(await run(w, ['init', '--remote', other.url, '--tree', 'photos']));
      ok(await run(w, ['commit', '-m', 'mine']));
      const clash = await run(tempDir(), ['backup', '--from', source.url, '--to', other.url, '--json']);
      assertJsonError(clash, 'E_CONFLICT', 5);
      const log = ok(await run(w, ['log', '--json'])).json;
      assert.deepEqual(log.versions.map((v: { message: string }) => v.message), ['mine']);
    } finally {
      await other.stop();
    }
    const same = await run(tempDir(), ['backup', '--from', source.url, '--to', source.url, '--json']);
    assertJsonError(same, 'E_USAGE', 2);
    // The source still has exactly its own versions.
    assert.ok(ok(await run(tempDir(), ['verify', source.url, '--json'])).json.ok);
  });

  it('a run that fails before its versions are created leaves none visible; the next sends only the rest', async () => {
    const target = s3url('b5');
    // The version PUTs fail: every object is sent, no version may appear.
    let refusing = true;
    s3.faults.failNext(1000, 403, 'AccessDenied', (method, key) => refusing && method === 'PUT' && key.includes('/versions/'));
    const r = await run(tempDir(), ['backup', '--from', source.url, '--to', target, '--json']);
    refusing = false;
    assertJsonError(r, 'E_AUTH', 12);
    const v = await run(tempDir(), ['verify', target, '--json']);
    assert.equal(v.json?.versions ?? 0, 0, `no version is visible: ${v.stdout}`);
    const next = await backup(source.url, target);
    assert.ok(next.copied.length >= 2);
    assert.equal(next.objects, 0, 'every object was already there');
  });
});
