// `elton master --replicate-to`: every version is queued durably and copied in the background, with backoff, across restarts and kills.

import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertSameTree, eltonAsync, ok, sleep, snapshotTree } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';

interface Status { replication: { target: string; queue: number; lagSeconds: number; copied: number; failures: number; lastError: { code: string } | null } | null }

describe('integration: master replication', function () {
  this.timeout(180000);
  const saved = process.env.ELTON_REPLICATE_RETRY_MS;
  const started: MasterProcess[] = [];
  const master = async (args: string[] = [], data?: string, listen?: string) => {
    const m = await startMasterProcess(args, data, listen);
    started.push(m);
    return m;
  };
  const status = async (url: string): Promise<Status> => ok(await eltonAsync(tempDir(), ['master', 'status', url, '--json'])).json;
  /** Polls the master's status until `done` holds (replication runs in the background). */
  const until = async (url: string, done: (s: Status) => boolean, what: string): Promise<Status> => {
    const deadline = Date.now() + 30000;
    for (;;) {
      const s = await status(url);
      if (done(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
      await sleep(100);
    }
  };
  const versionsAt = async (url: string, tree: string) => {
    const r = await eltonAsync(tempDir(), ['verify', url, '--tree', tree, '--json']);
    return r.code === 4 ? 0 : ok(r).json.versions;
  };

  before(() => { process.env.ELTON_REPLICATE_RETRY_MS = '100'; });
  after(async () => {
    if (saved === undefined) delete process.env.ELTON_REPLICATE_RETRY_MS; else process.env.ELTON_REPLICATE_RETRY_MS = saved;
    for (const m of started) await m.stop('SIGKILL');
  });

  it('copies each commit to the replica; queues durably while the replica is down; resumes after the master is killed and restarted', async () => {
    const replica = await master();
    const replicaPort = new URL(replica.url).port;
    const primary = await master(['--replicate-to', replica.url]);
    const ws = join(tempDir(), 'rep');
    writeTree(ws, { 'a.bin': pseudoRandom(500000, 1), 'b/c.txt': 'c\n' });
    ok(await eltonAsync(ws, ['init', '--remote', primary.url, '--tree', 'rep']));
    ok(await eltonAsync(ws, ['commit', '-m', 'one']));
    await until(primary.url, (s) => s.replication!.queue === 0 && s.replication!.copied === 1, 'rep@1 at the replica');
    assert.equal(await versionsAt(replica.url, 'rep'), 1);

    // The replica goes away: commits still succeed, and queue up with a growing backoff.
    await replica.stop();
    writeTree(ws, { 'd.txt': 'two\n' });
    ok(await eltonAsync(ws, ['commit', '-m', 'two']));
    writeTree(ws, { 'e.bin': pseudoRandom(300000, 2) });
    ok(await eltonAsync(ws, ['commit', '-m', 'three']));
    const waiting = await until(primary.url, (s) => s.replication!.queue === 2 && s.replication!.failures >= 2, 'failures with two queued');
    assert.equal(waiting.replication!.lastError?.code, 'E_UNREACHABLE');
    const text = ok(await eltonAsync(tempDir(), ['master', 'status', primary.url]));
    assert.match(text.stdout, /2 queued/);
    assert.match(text.stdout, /E_UNREACHABLE/);

    // The primary is killed with its queue pending; both come back; the queue drains.
    await primary.stop('SIGKILL');
    const replica2 = await master([], replica.data, `127.0.0.1:${replicaPort}`);
    const primary2 = await master(['--replicate-to', replica.url], primary.data);
    await until(primary2.url, (s) => s.replication!.queue === 0 && s.replication!.copied >= 2, 'the queue to drain after the restart');
    assert.equal(await versionsAt(replica2.url, 'rep'), 3);
    const verified = ok(await eltonAsync(tempDir(), ['verify', replica2.url, '--read-data', '--json'])).json;
    assert.equal(verified.ok, true, JSON.stringify(verified.problems));
    const restored = join(tempDir(), 'restored');
    ok(await eltonAsync(tempDir(), ['clone', replica2.url, 'rep@3', restored]));
    assertSameTree(snapshotTree(restored), snapshotTree(ws));
    const plain = await status(replica2.url);
    assert.equal(plain.replication, null, 'a master without --replicate-to reports replication null');
  });

  it('replicates to S3, and a master started with replication on brings the replica up to date with what it already had', async () => {
    const s3: S3Server = await startS3Server();
    const saveEnv = { ...process.env };
    try {
      await s3.createBucket('rep');
      Object.assign(process.env, s3.env());
      delete process.env.AWS_CA_BUNDLE;
      const data = join(tempDir('elton-master-'), 'data');
      const plain = await master([], data);
      const ws = join(tempDir(), 'late');
      writeTree(ws, { 'x.bin': pseudoRandom(200000, 3) });
      ok(await eltonAsync(ws, ['init', '--remote', plain.url, '--tree', 'late']));
      ok(await eltonAsync(ws, ['commit', '-m', 'before replication']));
      await plain.stop();

      const target = `s3://rep/elton?endpoint=${encodeURIComponent(s3.endpoint)}`;
      const primary = await master(['--replicate-to', target], data, new URL(plain.url).host);
      await until(primary.url, (s) => s.replication!.copied === 1, 'the existing version at the replica');
      writeTree(ws, { 'y.txt': 'after\n' });
      ok(await eltonAsync(ws, ['commit', '-m', 'after']));
      await until(primary.url, (s) => s.replication!.copied === 2 && s.replication!.queue === 0, 'the new version at the replica');
      const restored = join(tempDir(), 'from-s3');
      ok(await eltonAsync(tempDir(), ['clone', target, 'late@2', restored]));
      assertSameTree(snapshotTree(restored), snapshotTree(ws));
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saveEnv)) delete process.env[k];
      Object.assign(process.env, saveEnv);
      await s3.close();
    }
  });
});
