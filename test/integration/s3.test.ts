// S3 remote: request budgets counted at the endpoint, conditional version issuance, retries, interrupted pushes, corruption and refusals.

import { strict as assert } from 'node:assert';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, writeTree, pseudoRandom } from '../helpers.js';
import { assertJsonError, assertSameTree, eltonAsync, ok, snapshotTree, waitFor } from '../e2e/util.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';

const MiB = 1024 * 1024;

describe('integration: S3 remote', function () {
  this.timeout(300000);
  let s3: S3Server;
  let env: Record<string, string | undefined>;
  let url: (prefix: string) => string;
  const run = (cwd: string, args: string[], extra: Record<string, string | undefined> = {}) => eltonAsync(cwd, args, { ...env, ...extra });
  let sdk: S3Client;
  const listKeys = async (prefix: string) => ((await sdk.send(new ListObjectsV2Command({ Bucket: 'elton-test', Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);
  const getObject = async (key: string) => Buffer.from(await (await sdk.send(new GetObjectCommand({ Bucket: 'elton-test', Key: key }))).Body!.transformToByteArray());
  const requests = (from: number, pred: (e: S3Server['stats']['log'][number]) => boolean = () => true) => s3.stats.log.slice(from).filter(pred);

  before(async () => {
    s3 = await startS3Server();
    await s3.createBucket('elton-test');
    env = s3.env();
    sdk = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: s3.credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    url = (prefix) => `s3://elton-test/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}`;
  });
  after(async () => {
    sdk?.destroy();
    await s3?.close();
  });

  it('pushing 20,000 files takes at most ceil(bytes / 16 MiB) + 10 requests; one file of it, cold, takes at most 4', async () => {
    const ws = join(tempDir(), 'many');
    const files: Record<string, string> = {};
    for (let i = 0; i < 20000; i++) files[`d${i % 20}/e${i % 7}/f${i}.txt`] = `file ${i}: ${'lorem ipsum dolor sit amet '.repeat(1 + (i % 40))}\n${pseudoRandom(64 + (i % 512), i).toString('hex')}\n`;
    writeTree(ws, files);
    const mark = s3.stats.log.length;
    const bytesBefore = s3.stats.bytesIn;
    ok(await run(ws, ['init', '--remote', url('many'), '--tree', 'many']));
    const c = ok(await run(ws, ['commit', '-m', 'twenty thousand', '--json'])).json;
    const push = requests(mark);
    const bytes = s3.stats.bytesIn - bytesBefore;
    const budget = Math.ceil(bytes / (16 * MiB)) + 10;
    assert.ok(push.length <= budget, `${push.length} requests for ${bytes} bytes (budget ${budget}): ${push.map((e) => `${e.method} ${e.key}`).join(', ')}`);
    assert.equal(c.transfer.requests + 2, push.length, 'the client counts what the endpoint sees (init made 2)');

    const coldMark = s3.stats.log.length;
    const dst = join(tempDir(), 'one');
    const one = 'd3/e2/f12343.txt';
    ok(await run(tempDir(), ['clone', '--json', url('many'), 'many@1', dst, '--', one]));
    const cold = requests(coldMark);
    assert.ok(cold.length <= 4, `cold checkout of one file: ${cold.map((e) => `${e.method} ${e.key} ${e.range ?? ''}`).join(', ')}`);
    assert.equal(readFileSync(join(dst, one), 'utf8'), files[one]);
    assert.ok(cold.filter((e) => e.key.includes('/data/')).every((e) => e.range), 'data is read by ranged GETs');
    console.log(`      push: ${push.length} requests for ${bytes} bytes (budget ${budget}); cold checkout of one file: ${cold.length} requests`);
  });

  it('10 committers at once get distinct versions: the losers of the conditional PUT retry at v+1', async () => {
    const seed = join(tempDir(), 'race');
    writeTree(seed, { 'base.txt': 'base\n' });
    ok(await run(seed, ['init', '--remote', url('race'), '--tree', 'race']));
    ok(await run(seed, ['commit', '-m', 'base']));
    const clients = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const dir = join(tempDir(), `race${i}`);
      ok(await run(tempDir(), ['clone', url('race'), 'race@1', dir]));
      writeTree(dir, { [`c${i}.txt`]: `client ${i}\n` });
      return dir;
    }));
    const mark = s3.stats.log.length;
    const runs = await Promise.all(clients.map((dir, i) => run(dir, ['commit', '-m', `c${i}`, '--force', '--json'])));
    const versions = runs.map((r) => ok(r).json.version as number).sort((a, b) => a - b);
    assert.deepEqual(versions, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const versionPuts = requests(mark, (e) => e.method === 'PUT' && e.key.includes('/versions/'));
    assert.ok(versionPuts.some((e) => e.status === 412), 'at least one writer lost a race and was told so with 412');
    assert.equal(versionPuts.filter((e) => e.status === 200).length, 10);
  });

  it('throttling (503 SlowDown) and dropped connections are retried, and the push completes', async () => {
    const ws = join(tempDir(), 'flaky');
    writeTree(ws, { 'a.bin': pseudoRandom(3 * MiB, 5), 'b.txt': 'bee\n' });
    ok(await run(ws, ['init', '--remote', url('flaky'), '--tree', 'flaky']));
    s3.faults.failNext(2, 503, 'SlowDown');
    s3.faults.dropNext(2, (method, key) => method === 'PUT' && key.includes('/data/'));
    const mark = s3.stats.log.length;
    const c = ok(await run(ws, ['commit', '-m', 'despite faults', '--json'])).json;
    assert.equal(c.version, 1);
    const log = requests(mark);
    assert.ok(log.filter((e) => e.status === 503).length === 2, 'two throttled answers');
    const dst = join(tempDir(), 'flaky-clone');
    ok(await run(tempDir(), ['clone', url('flaky'), 'flaky@1', dst]));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
  });

  it('an interrupted push leaves no visible version, and re-running it uploads only what is missing', async () => {
    const ws = join(tempDir(), 'cut');
    writeTree(ws, { 'a.bin': pseudoRandom(8 * MiB, 11), 'b.bin': pseudoRandom(8 * MiB, 12), 'c.txt': 'see\n' });
    const small = { ELTON_S3_PACK_MIB: '5' };
    ok(await run(ws, ['init', '--remote', url('cut'), '--tree', 'cut'], small));
    // Both attempts at the index object fail: the packs are up, the push never completes.
    s3.faults.failNext(2, 500, 'InternalError', (method, key) => method === 'PUT' && key.includes('/index/'));
    const failed = await run(ws, ['commit', '-m', 'cut short', '--json'], { ...small, ELTON_S3_MAX_ATTEMPTS: '2' });
    assertJsonError(failed, 'E_REMOTE', 13);
    const packsUp = requests(0, (e) => e.method === 'PUT' && e.key.startsWith('cut/data/') && e.status === 200).length;
    assert.ok(packsUp >= 3, `the packs went up before the failure: ${packsUp}`);
    assert.deepEqual(await listKeys('cut/versions/'), [], 'no version is visible');
    assertJsonError(await run(tempDir(), ['clone', '--json', url('cut'), 'cut@1', join(tempDir(), 'too-early')]), 'E_NOT_FOUND', 4);
    const mark = s3.stats.log.length;
    const pushed = ok(await run(ws, ['push', '--json'], small)).json;
    assert.equal(pushed.version, 1);
    const again = requests(mark, (e) => e.method === 'PUT' && e.key.includes('/data/'));
    assert.deepEqual(again, [], 'no data pack is uploaded twice');
    assert.ok(pushed.transfer.bytesUp < MiB, `the re-run sent only metadata: ${JSON.stringify(pushed.transfer)}`);
    const dst = join(tempDir(), 'cut-clone');
    ok(await run(tempDir(), ['clone', url('cut'), 'cut@1', dst]));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
  });

  it('a push killed after some packs are up leaves no version; `elton push` sends only the packs that did not get there', async () => {
    const ws = join(tempDir(), 'killed');
    writeTree(ws, Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}.bin`, pseudoRandom(5 * MiB, 40 + i)])));
    const small = { ELTON_S3_PACK_MIB: '5', ELTON_STREAMS: '1' };
    ok(await run(ws, ['init', '--remote', url('killed'), '--tree', 'killed'], small));
    const mark = s3.stats.log.length;
    const packsDone = () => requests(mark, (e) => e.method === 'PUT' && e.key.startsWith('killed/data/') && e.status === 200).length;
    const commit = run(ws, ['commit', '-m', 'killed', '--json'], small);
    assert.ok(await waitFor(() => packsDone() >= 2, 60000), 'two packs went up');
    commit.kill('SIGKILL');
    await commit;
    const before = packsDone();
    assert.ok(before < 6, `killed before the end: ${before} packs up`);
    assert.deepEqual(await listKeys('killed/versions/'), [], 'no version is visible');
    const again = s3.stats.log.length;
    const pushed = ok(await run(ws, ['push', '--json'], small)).json;
    assert.equal(pushed.version, 1);
    // The pack whose PUT was answered just as the kill came may not be journaled yet: it may go again.
    const adopted = (before - 1) * 5 * MiB;
    assert.ok(pushed.transfer.bytesUp < 30 * MiB - adopted + MiB, `re-sent ${pushed.transfer.bytesUp} bytes after ${before} packs had gone up`);
    const dst = join(tempDir(), 'killed-clone');
    ok(await run(tempDir(), ['clone', url('killed'), 'killed@1', dst]));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
  });

  it('a long history keeps cold reads bounded: an envelope names at most 8 index objects, merged when there would be more', async () => {
    const ws = join(tempDir(), 'history');
    writeTree(ws, { 'keep.bin': pseudoRandom(300000, 61), 'sub/deep/x.txt': 'x\n' });
    ok(await run(ws, ['init', '--remote', url('history'), '--tree', 'history']));
    const contents: string[] = [];
    for (let v = 1; v <= 12; v++) {
      writeTree(ws, { [`f${v}.txt`]: `version ${v}\n`, 'sub/deep/x.txt': `x at ${v}\n` });
      ok(await run(ws, ['commit', '-m', `v${v}`]));
      contents.push(`x at ${v}\n`);
    }
    const named = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const key = `history/versions/history/${String(i + 1).padStart(10, '0')}`;
      return (JSON.parse((await getObject(key)).toString('utf8')).indexes as string[]).length;
    }));
    assert.ok(named.every((n) => n <= 8), `indexes named per version: ${named}`);
    assert.ok(named.slice(8).includes(1), `a merged index object took over: ${named}`);
    const mark = s3.stats.log.length;
    const dst = join(tempDir(), 'history-cold');
    ok(await run(tempDir(), ['clone', url('history'), 'history@12', dst, '--', 'sub/deep/x.txt']));
    assert.equal(readFileSync(join(dst, 'sub/deep/x.txt'), 'utf8'), contents[11]);
    assert.ok(requests(mark).length <= 3 + named[11], `cold one-file checkout of @12: ${requests(mark).map((e) => `${e.method} ${e.key}`).join(', ')}`);
    const full = join(tempDir(), 'history-full');
    ok(await run(tempDir(), ['clone', url('history'), 'history@12', full]));
    assertSameTree(snapshotTree(full), snapshotTree(ws));
  });

  it('a corrupted pack range fails verification and names the object; nothing bad is kept', async () => {
    const ws = join(tempDir(), 'rot');
    writeTree(ws, { 'a.bin': pseudoRandom(2 * MiB, 21) });
    ok(await run(ws, ['init', '--remote', url('rot'), '--tree', 'rot']));
    ok(await run(ws, ['commit', '-m', 'one']));
    s3.faults.corruptNext(1, (method, key) => method === 'GET' && key.includes('/data/'));
    const dst = join(tempDir(), 'rot-clone');
    const e = assertJsonError(await run(tempDir(), ['clone', '--json', url('rot'), 'rot@1', dst]), 'E_CORRUPT', 7);
    assert.match(e.message, /[0-9a-f]{64}/, 'the object is named');
    ok(await run(tempDir(), ['clone', url('rot'), 'rot@1', dst]));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
  });

  it('a download that breaks off mid-body resumes where it stopped, and checks out intact', async () => {
    const ws = join(tempDir(), 'cutoff');
    writeTree(ws, { 'a.bin': pseudoRandom(6 * MiB, 71), 'b.bin': pseudoRandom(3 * MiB, 72) });
    ok(await run(ws, ['init', '--remote', url('cutoff'), '--tree', 'cutoff']));
    ok(await run(ws, ['commit', '-m', 'one']));
    s3.faults.cutNext(2, (method, key) => method === 'GET' && key.includes('/data/'));
    const mark = s3.stats.log.length;
    const dst = join(tempDir(), 'cutoff-clone');
    const r = ok(await run(tempDir(), ['clone', '--json', url('cutoff'), 'cutoff@1', dst])).json;
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
    const gets = requests(mark, (e) => e.method === 'GET' && e.key.includes('/data/'));
    // Resumed, not restarted: a later GET asks for the rest of a cut range (same end, later start).
    const span = (e: { range?: string }) => /bytes=(\d+)-(\d+)/.exec(e.range ?? '')!.slice(1).map(Number);
    const resumed = gets.filter((later, i) => gets.slice(0, i).some((first) => first.key === later.key && span(first)[1] === span(later)[1] && span(first)[0] < span(later)[0]));
    // A range cut before its first object was whole can only be asked again from its start (the
    // small tail range of a pack may hold one or two objects); the big ranges always resume.
    assert.ok(resumed.length >= 1, `a cut range resumed: ${gets.map((e) => e.range).join(', ')}`);
    const cut = gets.filter((e) => e.status === 0 || gets.some((later) => later !== e && later.key === e.key && span(later)[1] === span(e)[1] && gets.indexOf(later) > gets.indexOf(e)));
    assert.ok(cut.length >= 2, `both cut ranges were asked for again: ${gets.map((e) => `${e.range} ${e.status}`).join(', ')}`);
    assert.ok(r.transfer.bytesDown < 9 * MiB * 1.2, JSON.stringify(r.transfer));
  });

  it('an unreachable endpoint keeps the commit pending; push sends it later', async () => {
    const ws = join(tempDir(), 'offline');
    writeTree(ws, { 'a.txt': 'alpha\n' });
    ok(await run(ws, ['init', '--remote', url('offline'), '--tree', 'offline']));
    writeTree(ws, { 'b.txt': 'bravo\n' });
    assert.equal(ok(await run(ws, ['commit', '-m', 'online', '--json'])).json.version, 1);
    // The same bucket through a port where nothing listens: every attempt is refused.
    const dead = `s3://elton-test/offline?endpoint=${encodeURIComponent('http://127.0.0.1:9')}`;
    writeTree(ws, { 'c.txt': 'charlie\n' });
    const cfg = join(ws, '.elton', 'config.json');
    const config = JSON.parse(readFileSync(cfg, 'utf8'));
    const live = config.remote;
    writeFileSync(cfg, JSON.stringify({ ...config, remote: dead }));
    const pending = ok(await run(ws, ['commit', '-m', 'while down', '--json'], { ELTON_S3_MAX_ATTEMPTS: '2' })).json;
    assert.equal(pending.pending, true);
    assert.equal(pending.version, null);
    assert.match(pending.pendingReason, /cannot reach/);
    assertJsonError(await run(ws, ['push', '--json'], { ELTON_S3_MAX_ATTEMPTS: '2' }), 'E_UNREACHABLE', 11);
    writeFileSync(cfg, JSON.stringify({ ...config, remote: live }));
    const pushed = ok(await run(ws, ['push', '--json'])).json;
    assert.equal(pushed.version, 2);
    const dst = join(tempDir(), 'offline-clone');
    ok(await run(tempDir(), ['clone', url('offline'), 'offline@2', dst]));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
  });

  it('large packs go up in parts (multipart upload), in the storage class asked for', async () => {
    const ws = join(tempDir(), 'multi');
    writeTree(ws, { 'big.bin': pseudoRandom(12 * MiB, 31) });
    const parts = { ELTON_S3_MULTIPART_MIB: '5', ELTON_S3_PART_MIB: '5' };
    ok(await run(ws, ['init', '--remote', url('multi'), '--tree', 'multi', '--storage-class', 'STANDARD_IA'], parts));
    const mark = s3.stats.log.length;
    ok(await run(ws, ['commit', '-m', 'big'], parts));
    const data = requests(mark, (e) => e.key.includes('/data/'));
    assert.ok(data.filter((e) => e.method === 'PUT').length >= 3, `three parts: ${data.map((e) => `${e.method} ${e.key}`).join(', ')}`);
    assert.equal(data.filter((e) => e.method === 'POST').length, 2, 'create and complete');
    // The storage class (saved in the remote URL by init) applies to data packs; metadata stays STANDARD.
    const [pack] = await listKeys('multi/data/');
    const [index] = await listKeys('multi/index/');
    assert.equal((await sdk.send(new HeadObjectCommand({ Bucket: 'elton-test', Key: pack }))).StorageClass, 'STANDARD_IA');
    assert.notEqual((await sdk.send(new HeadObjectCommand({ Bucket: 'elton-test', Key: index }))).StorageClass, 'STANDARD_IA');
    const dst = join(tempDir(), 'multi-clone');
    ok(await run(tempDir(), ['clone', url('multi'), 'multi@1', dst]));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
  });

  it('wrong credentials, a missing bucket and access denied each give a clear error with a hint', async () => {
    const ws = join(tempDir(), 'refused');
    writeTree(ws, { 'a.txt': 'a\n' });
    const wrong = assertJsonError(await run(ws, ['init', '--json', '--remote', url('refused')], { AWS_ACCESS_KEY_ID: 'AKIANOTAKEY' }), 'E_AUTH', 12);
    assert.match(wrong.hint!, /AWS_ACCESS_KEY_ID|credentials/);
    const none = assertJsonError(await run(ws, ['init', '--json', '--remote', url('refused')], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'elton-no-such-profile', AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' }), 'E_AUTH', 12);
    assert.match(none.hint!, /AWS_ACCESS_KEY_ID/);
    const bucket = assertJsonError(await run(ws, ['init', '--json', '--remote', `s3://no-such-bucket/x?endpoint=${encodeURIComponent(s3.endpoint)}`]), 'E_NOT_FOUND', 4);
    assert.match(bucket.message, /no-such-bucket/);
    s3.faults.failNext(1, 403, 'AccessDenied');
    const denied = assertJsonError(await run(ws, ['init', '--json', '--remote', url('refused')]), 'E_AUTH', 12);
    assert.match(denied.hint!, /permission/);
    const bad = assertJsonError(await run(ws, ['init', '--json', '--remote', `${url('refused')}&colour=blue`]), 'E_USAGE', 2);
    assert.match(bad.message, /colour/);
    // The secret is never printed.
    assert.ok(!JSON.stringify([wrong, none, bucket, denied]).includes(env.AWS_SECRET_ACCESS_KEY!));
  });
});
