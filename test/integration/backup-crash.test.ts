// `elton backup` killed at random points: the target never shows an incomplete version, the next run completes it, resuming resends little, and a killed run's lock is taken over.
//
// Each round SIGKILLs a slowed-down backup after a random delay (spread from 50 ms to the time an
// uninterrupted run takes), then asks the target itself, through `elton verify --read-data` with a cache of its
// own, whether every version it shows is complete. A round whose run finished before the kill gets a
// new source version, so that the next round has as much to copy again (and copies it against a
// base version). The delays come from a seeded generator: every assertion message carries
// ELTON_TEST_SEED=N and the rounds so far, and setting it replays the same delays.
// ELTON_TEST_VERBOSE=1 prints the rounds of passing runs too.

import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { tempDir } from '../helpers.js';
import { assertJsonError, assertSameTree, describeRun, eltonAsync, ok, sleep, snapshotTree, waitFor, writeRandomTree, type Entry } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { startWanProxy, type WanProxy } from '../support/wan-proxy.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** S3 packs close at this size (the smallest ELTON_S3_PACK_MIB allows), so a copy of a few MiB spans several packs and a kill can land between them. */
const PACK_MIB = 5;
/** The largest chunk (DEFAULT_CHUNKER.max): a pack closes once it reaches PACK_MIB, so it may exceed it by one chunk. */
const MAX_CHUNK = MiB;

/** mulberry32: a small seeded generator, so that a failing sequence of delays can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.ELTON_TEST_SEED) || (Date.now() % 1000000007);
const random = seeded(SEED);

/**
 * `n` kill delays spread over [50 ms, the time an uninterrupted run took], one drawn at random from
 * each n-th of that range, in random order: every stretch of a run (start-up, planning, each pack,
 * version creation) gets kills, and no unlucky draw bunches them all at the start.
 */
function killDelays(n: number, fullRunMs: number): number[] {
  const span = Math.max(0, fullRunMs - 50) / n;
  const delays = Array.from({ length: n }, (_, i) => Math.round(50 + (i + random()) * span));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [delays[i], delays[j]] = [delays[j], delays[i]];
  }
  return delays;
}

/** A master holding one tree, fed by a workspace that commits to it; keeps a snapshot of every version. */
interface Source {
  master: MasterProcess;
  ws: string;
  tree: string;
  /** The workspace's content at each version. */
  versions: Map<number, Map<string, Entry>>;
  /** Rewrites every `every`-th file (which ones depends on `seed`) with new random content and commits: about 1/every of the tree's bytes are new. */
  commitChange(seed: number, every: number): Promise<number>;
  stop(): Promise<void>;
}

async function makeSource(tree: string, files: number, bytes: number, versions: number, env: Record<string, string | undefined>): Promise<Source> {
  const master = await startMasterProcess();
  const ws = join(tempDir(), tree);
  const snapshots = new Map<number, Map<string, Entry>>();
  const commit = async (message: string) => {
    const r = ok(await eltonAsync(ws, ['commit', '-m', message, '--json'], env), `commit ${message}`).json;
    snapshots.set(r.version, snapshotTree(ws));
    return r.version as number;
  };
  try {
    writeRandomTree(ws, files, bytes, 1);
    ok(await eltonAsync(ws, ['init', '--remote', master.url, '--tree', tree], env));
    await commit('one');
    const src: Source = {
      master, ws, tree, versions: snapshots,
      commitChange: async (seed, every) => {
        writeRandomTree(ws, files, bytes, seed, (i) => i % every === seed % every);
        return commit(`change ${seed}`);
      },
      stop: async () => { await master.stop(); },
    };
    for (let v = 2; v <= versions; v++) await src.commitChange(v, 4);
    return src;
  } catch (err) {
    await master.stop();
    throw err;
  }
}

/** Where the kill loop backs up to: the URL the backups use, and the one the checks (verify, clone) use for the same store. */
interface Target { url: string; check: string; bwlimit: string }

interface Round {
  delay: number;
  killed: boolean;
  /** Versions `elton verify` found at the target after the round; null: no store there yet. */
  visible: number | null;
  /** What the S3 endpoint saw of the run: bytes received, pack PUTs, those answered 200, those cut off. */
  bytesIn: number;
  packPuts: number;
  completed: number;
  /** Keys of the packs whose PUT completed. */
  completedKeys: string[];
  cut: number;
  /** Completed pack PUTs that the next run cannot find: neither named by an index object the run wrote nor in its local journal. */
  unjournaled: number;
  note: string;
}

const describeRounds = (rounds: Round[], s3 = true) => rounds.map((r, i) =>
  `#${i} ${r.delay}ms ${r.killed ? 'killed' : 'finished'} visible=${r.visible ?? 'no-store'}` +
  (s3 ? ` in=${r.bytesIn} packPUTs=${r.packPuts} ok=${r.completed} cut=${r.cut} unjournaled=${r.unjournaled}` : '') +
  (r.note ? ` ${r.note}` : '')).join('\n');

/** Pack ids an S3 target's client journaled (uploaded, not yet indexed) under the user cache, for the next run to adopt. */
function journaledPacks(cache: string): Set<string> {
  const out = new Set<string>();
  const remotes = join(cache, 'remotes');
  for (const r of existsSync(remotes) ? readdirSync(remotes) : []) {
    const dir = join(remotes, r, 'remote-index', 'unindexed');
    for (const n of existsSync(dir) ? readdirSync(dir) : []) if (/^[0-9a-f]{64}\.idx$/.test(n)) out.add(n.slice(0, 64));
  }
  return out;
}

describe('integration: backup killed at random points', function () {
  this.timeout(240000);
  let s3: S3Server;
  let s3env: Record<string, string | undefined>;
  let sdk: S3Client;
  const s3url = (prefix: string, endpoint = s3.endpoint) => `s3://elton-test/${prefix}?endpoint=${encodeURIComponent(endpoint)}`;
  /** Environment of every elton child: the S3 credentials and small packs; no lock waiting. The test's own ELTON_CACHE comes through process.env. */
  const env = () => ({ ...s3env, ELTON_S3_PACK_MIB: String(PACK_MIB), ELTON_LOCK_WAIT: undefined });
  const backupArgs = (from: string, to: string, ...more: string[]) => ['backup', '--from', from, '--to', to, '--json', ...more];

  /** The version numbers of `tree` in the bucket under `prefix`, from s3rver's own listing. */
  const s3Versions = async (prefix: string, tree: string): Promise<number[]> => {
    const out: number[] = [];
    let token: string | undefined;
    do {
      const page = await sdk.send(new ListObjectsV2Command({ Bucket: 'elton-test', Prefix: `${prefix}/versions/${tree}/`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) out.push(Number(o.Key!.split('/').pop()));
      token = page.NextContinuationToken;
    } while (token);
    return out.sort((a, b) => a - b);
  };

  /**
   * `elton verify TARGET --json` with a cache of its own, so that nothing local answers for the
   * target and nothing of the backups' is touched. Null when there is no store at the target yet (a
   * run killed before it created one): the caller checks that no version exists either.
   */
  const verifyTarget = async (target: string, where: string, more: string[] = []): Promise<{ ok: boolean; versions: number } | null> => {
    const r = await eltonAsync(tempDir(), ['verify', target, '--json', ...more], { ...env(), ELTON_CACHE: tempDir('elton-verify-cache-') });
    if (r.code === 4 && r.json?.error?.code === 'E_NOT_FOUND') return null;
    assert.equal(r.code, 0, `verify, ${where}: ${describeRun(r)}`);
    assert.equal(r.json.ok, true, `verify, ${where}: ${JSON.stringify(r.json.problems)}`);
    return r.json;
  };

  /** Runs a backup to completion and checks its report. */
  const backupOk = async (from: string, to: string, where: string, ...more: string[]) => {
    const r = ok(await eltonAsync(tempDir(), backupArgs(from, to, ...more), env()), `backup, ${where}`).json;
    assert.equal(r.ok, true, `${where}: ${JSON.stringify(r.problems)}`);
    assert.deepEqual(r.skipped, [], where);
    return r;
  };

  /**
   * The kill loop shared by both kinds of target: `iterations` backups, each SIGKILLed after its
   * delay, the target checked after each. `listVersions` reads the version numbers straight from the
   * target where the test can (the bucket listing), to hold verify to them.
   */
  async function killLoop(src: Source, target: Target, iterations: number, fullRunMs: number, label: string,
    listVersions: () => Promise<number[] | undefined>): Promise<Round[]> {
    const rounds: Round[] = [];
    const isS3 = target.url.startsWith('s3://');
    let seen = new Set<number>();
    let changes = 0;
    for (const delay of killDelays(iterations, fullRunMs)) {
      const logMark = s3.stats.log.length;
      const bytesMark = s3.stats.bytesIn;
      const child = eltonAsync(tempDir(), backupArgs(src.master.url, target.url, '--bwlimit', target.bwlimit), env());
      await sleep(delay);
      child.kill('SIGKILL');
      const run = await child;
      const killed = run.signal === 'SIGKILL';
      const where = () => `${label} round ${rounds.length - 1} (ELTON_TEST_SEED=${SEED}), kill after ${delay} ms; rounds so far:\n${describeRounds(rounds, isS3)}`;

      // What the endpoint saw: the pack PUTs, which completed, and whether the run's index object (written
      // after all its packs are up, naming every one) or the local journal lets the next run find them.
      const log = s3.stats.log.slice(logMark);
      const packPuts = log.filter((e) => e.method === 'PUT' && e.key.includes('/data/'));
      const lastPack = log.lastIndexOf(packPuts[packPuts.length - 1]);
      const indexed = packPuts.length > 0 && log.some((e, i) => i > lastPack && e.method === 'PUT' && e.key.includes('/index/') && e.status === 200);
      const journal = journaledPacks(process.env.ELTON_CACHE!);
      const completed = packPuts.filter((e) => e.status === 200);
      const round: Round = {
        delay, killed, visible: null, bytesIn: s3.stats.bytesIn - bytesMark, packPuts: packPuts.length, completed: completed.length, completedKeys: completed.map((e) => e.key),
        cut: packPuts.length - completed.length,
        unjournaled: indexed ? 0 : completed.filter((e) => !journal.has(e.key.split('/').pop()!.replace(/\.(tar|pack)$/, ''))).length,
        note: '',
      };
      rounds.push(round);
      // A run that was not killed finished on its own: it must have succeeded (never E_LOCKED by the dead run before it).
      if (!killed) {
        assert.equal(run.code, 0, `${where()}: an unkilled backup must succeed: ${describeRun(run)}`);
        assert.equal(run.json.ok, true, where());
      }

      // The target shows only complete versions, whatever the moment of the kill. --read-data reads
      // every chunk back from the store itself: a presence check alone trusts what the store's
      // metadata says it holds (an S3 index object naming a pack that never arrived would pass it).
      const report = await verifyTarget(target.check, where(), ['--read-data']);
      const listed = await listVersions();
      if (report === null) {
        assert.ok(killed, `${where()}: a finished run leaves a target that exists`);
        assert.deepEqual(listed ?? [], [], `${where()}: verify found no store, yet versions exist`);
      } else if (listed) {
        assert.equal(report.versions, listed.length, `${where()}: verify checked every version the target lists (${listed})`);
      }
      round.visible = report?.versions ?? null;
      const now = new Set(listed ?? Array.from({ length: report?.versions ?? 0 }, (_, k) => k + 1));
      for (const v of seen) assert.ok(now.has(v), `${where()}: version ${v} was visible and is gone`);
      for (const v of now) assert.ok(src.versions.has(v), `${where()}: version ${v} is not one of the source's`);
      if (!killed) assert.equal(now.size, src.versions.size, `${where()}: a finished run copied every version`);
      seen = now;

      // A finished run leaves the target complete: a new version rewriting every file gives the next
      // round as much to copy as the first had (so the same range of delays fits), against a base version.
      if (!killed) round.note = `-> source @${await src.commitChange(100 + changes++, 1)}`;
    }
    return rounds;
  }

  /**
   * After the last round: one more run completes the copy; then the target holds exactly the
   * source's versions, verified down to the data, a further run has nothing to do, and the oldest and
   * newest versions restore from the target to what was committed. Returns what the completing run
   * sent to the S3 endpoint: bytes, and the keys of the packs it put.
   */
  async function finishAndCompare(src: Source, target: Target, where: string): Promise<{ bytesIn: number; packKeys: string[] }> {
    const mark = s3.stats.bytesIn;
    const logMark = s3.stats.log.length;
    await backupOk(src.master.url, target.url, `${where}, completing run`);
    const bytesIn = s3.stats.bytesIn - mark;
    const packKeys = s3.stats.log.slice(logMark).filter((e) => e.method === 'PUT' && e.key.includes('/data/') && e.status === 200).map((e) => e.key);
    const all = [...src.versions.keys()].sort((a, b) => a - b);
    const full = await verifyTarget(target.check, `${where}, after the completing run`, ['--read-data']);
    assert.ok(full, `${where}: the target exists after a completed run`);
    assert.equal(full.versions, all.length, `${where}: every source version is at the target`);
    const again = await backupOk(src.master.url, target.url, `${where}, no-change run`);
    assert.deepEqual({ copied: again.copied, upToDate: again.upToDate, objects: again.objects, bytes: again.bytes },
      { copied: [], upToDate: all.length, objects: 0, bytes: 0 }, `${where}: a run after completion has nothing to do`);
    for (const v of new Set([all[0], all[all.length - 1]])) {
      const dst = join(tempDir(), `restore-${v}`);
      ok(await eltonAsync(tempDir(), ['clone', target.check, `${src.tree}@${v}`, dst], { ...env(), ELTON_CACHE: tempDir('elton-clone-cache-') }), `clone @${v}, ${where}`);
      assertSameTree(snapshotTree(dst), src.versions.get(v)!, { label: `${where}: ${src.tree}@${v} restored from the target` });
    }
    return { bytesIn, packKeys };
  }

  before(async () => {
    s3 = await startS3Server();
    await s3.createBucket('elton-test');
    s3env = s3.env();
    sdk = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: s3.credentials });
  });
  after(async () => {
    sdk?.destroy();
    await s3?.close();
  });

  it('master to S3: killed 12 times, the bucket never shows an incomplete version, the next run completes it, and a resumed copy resends only cut-off packs', async function () {
    // 48 files of about 256 KiB of random data (one or two chunks each), 12 MiB, then two versions
    // rewriting a quarter each: about 18 MiB, four 5 MiB packs.
    const src = await makeSource('photos', 48, 12 * MiB, 3, env());
    // The backups reach the bucket over a 48 Mbit/s link, so that a pack PUT takes most of a second
    // and kills land in the middle of one, and read at 6 MiB/s, so that packs go up one after the
    // other and a kill can land between them. Checks go to the endpoint directly.
    const port = Number(new URL(s3.endpoint).port);
    let wan: WanProxy | undefined;
    try {
      wan = await startWanProxy({ host: '127.0.0.1', port }, { rttMs: 4, mbitPerSec: 48 });
      const prefix = 'killed';
      const target: Target = { url: s3url(prefix, wan.url()), check: s3url(prefix), bwlimit: '6M' };

      // One uninterrupted run (to a prefix of its own) sets the range of the kill delays.
      const measured = await eltonAsync(tempDir(), backupArgs(src.master.url, s3url('measure', wan.url()), '--bwlimit', target.bwlimit), env());
      const full = ok(measured, 'measuring run').json;
      const fullRunMs = measured.endedAt - measured.startedAt;
      assert.deepEqual(full.copied, ['photos@1', 'photos@2', 'photos@3']);
      assert.ok(full.bytes > 15 * MiB, `the source holds ${full.bytes} bytes`);
      assert.ok(fullRunMs > 2500, `an uninterrupted run took only ${fullRunMs} ms: kills would not land mid-copy`);

      const rounds = await killLoop(src, target, 12, fullRunMs, 'master->S3', () => s3Versions(prefix, 'photos'));
      const killed = rounds.filter((r) => r.killed);
      const summary = () => `ELTON_TEST_SEED=${SEED}, full run ${fullRunMs} ms:\n${describeRounds(rounds)}`;
      assert.ok(killed.length >= 4, `most kills should land mid-run; ${summary()}`);
      // The resume bound below means something only if some killed run got a pack safely up.
      assert.ok(killed.some((r) => r.completed > r.unjournaled), `no killed run left a pack for the next to build on; ${summary()}`);

      const final = await finishAndCompare(src, target, 'master->S3');
      assert.deepEqual(await s3Versions(prefix, 'photos'), [...src.versions.keys()].sort((a, b) => a - b), 'the bucket holds exactly the source\'s versions');

      // What one full copy of the source sends (stored bytes, object count): a dry run to an empty prefix.
      const sizing = ok(await eltonAsync(tempDir(), backupArgs(src.master.url, s3url('sizing'), '--dry-run'), env()), 'sizing dry run').json;
      const stored = sizing.bytes as number;
      const framing = sizing.objects * KiB; // per-object framing: none in raw packs, under 1 KiB in ustar ones
      const onePack = PACK_MIB * MiB + MAX_CHUNK + 64 * KiB; // a pack closes once past PACK_MIB, so it may hold one more chunk; plus request headers
      const unjournaled = rounds.reduce((n, r) => n + r.unjournaled, 0);
      const cut = rounds.reduce((n, r) => n + r.cut, 0);
      const sizes = new Map<string, number>();
      const packKeys = [...rounds.flatMap((r) => r.completedKeys), ...final.packKeys];
      for (const key of new Set(packKeys)) sizes.set(key, (await sdk.send(new HeadObjectCommand({ Bucket: 'elton-test', Key: key }))).ContentLength!);
      const packBytes = packKeys.reduce((n, k) => n + sizes.get(k)!, 0);
      const total = rounds.reduce((n, r) => n + r.bytesIn, 0) + final.bytesIn;
      const report = () => `packs completed: ${packKeys.length}, ${packBytes} bytes; all runs sent ${total} bytes for ${stored} stored (${(total / stored).toFixed(3)}x), ` +
        `${cut} pack PUTs cut off, ${unjournaled} completed but left unjournaled; ${summary()}`;
      // Resuming: a pack that reached the bucket whole is never sent again. The client journals it as
      // soon as its PUT succeeds and the next run adopts it (a HEAD) instead of uploading it; once a
      // run's index object is up, it names the pack anyway. So over all runs the completed pack PUTs
      // hold each object once, with its framing, plus again only the packs a kill left neither
      // journaled nor indexed (counted per round). Without resuming, every completed pack of a killed
      // run would be uploaded again: 5 MiB over this bound each.
      assert.ok(packBytes <= stored + framing + unjournaled * onePack, `completed packs hold more than one copy: ${report()}`);
      // And everything the runs sent to the endpoint (bodies, headers, framing): those packs, the
      // packs a kill cut off mid-PUT (each at most one pack), and per run at most 128 KiB of the rest
      // (config, listings, HEADs, index objects with the trees inline, version envelopes, headers).
      const bound = stored + framing + (unjournaled + cut) * onePack + (rounds.length + 1) * 128 * KiB;
      assert.ok(total <= bound, `the runs sent more than one copy and what the kills cut off (bound ${bound}): ${report()}`);
      if (process.env.ELTON_TEST_VERBOSE) console.log(`      ${report()}`);
    } finally {
      await wan?.close();
      await src.stop();
    }
  });

  it('master to master: killed 6 times, the target master never shows an incomplete version, and the next run completes it', async function () {
    // 48 files, 12 MiB, and a version rewriting a quarter: about 15 MiB, sent as one throttled stream.
    const src = await makeSource('maps', 48, 12 * MiB, 2, env());
    const dest = await startMasterProcess();
    try {
      const target: Target = { url: dest.url, check: dest.url, bwlimit: '4M' };
      // Measured against a third master, so that the target starts empty.
      const scratch = await startMasterProcess();
      let fullRunMs: number;
      try {
        const measured = await eltonAsync(tempDir(), backupArgs(src.master.url, scratch.url, '--bwlimit', target.bwlimit), env());
        assert.deepEqual(ok(measured, 'measuring run').json.copied, ['maps@1', 'maps@2']);
        fullRunMs = measured.endedAt - measured.startedAt;
      } finally {
        await scratch.stop();
      }
      assert.ok(fullRunMs > 2000, `an uninterrupted throttled run took only ${fullRunMs} ms: kills would not land mid-copy`);

      const rounds = await killLoop(src, target, 6, fullRunMs, 'master->master', async () => undefined);
      const summary = () => `ELTON_TEST_SEED=${SEED}, full run ${fullRunMs} ms:\n${describeRounds(rounds, false)}`;
      assert.ok(rounds.filter((r) => r.killed).length >= 2, `kills should land mid-run; ${summary()}`);
      await finishAndCompare(src, target, 'master->master');
      if (process.env.ELTON_TEST_VERBOSE) console.log(`      ${summary()}`);
    } finally {
      await dest.stop();
      await src.stop();
    }
  });

  it('the lock: a second run of the same pair exits 6 at once with E_LOCKED; a SIGKILLed run leaves a stale lock the next run takes over', async function () {
    const src = await makeSource('docs', 32, 8 * MiB, 1, env());
    try {
      const target = join(tempDir(), 'backup-dir');
      // The lock lives under the user cache, which every run of this test shares (process.env.ELTON_CACHE).
      const locks = join(process.env.ELTON_CACHE!, 'locks');
      const lockFiles = () => (existsSync(locks) ? readdirSync(locks) : []).filter((n) => /^backup-[0-9a-f]+\.lock$/.test(n));
      const holder = (file: string) => JSON.parse(readFileSync(file, 'utf8')).pid as number;
      // 1 MiB/s for 8 MiB: the first run holds the lock for several seconds.
      const first = eltonAsync(tempDir(), backupArgs(src.master.url, target, '--bwlimit', '1M'), env());
      let firstDone = false;
      void first.then(() => { firstDone = true; });
      assert.ok(await waitFor(() => lockFiles().length === 1, 20000, 20), 'the first run never took its lock');
      const lockFile = join(locks, lockFiles()[0]);
      assert.equal(holder(lockFile), first.pid, 'the lock names the running backup');

      const t0 = Date.now();
      const second = await eltonAsync(tempDir(), backupArgs(src.master.url, target), env());
      const secondMs = Date.now() - t0;
      const e = assertJsonError(second, 'E_LOCKED', 6);
      assert.ok(e.message.includes(String(first.pid)), `the error names the holder: ${e.message}`);
      assert.ok(!firstDone, 'the first run had ended before the second was refused: nothing was contended');
      assert.ok(secondMs < 10000, `the second run took ${secondMs} ms instead of exiting at once`);
      assert.equal(holder(lockFile), first.pid, 'the refused run left the holder\'s lock alone');

      first.kill('SIGKILL');
      const dead = await first;
      assert.equal(dead.signal, 'SIGKILL', `the first run was still copying: ${describeRun(dead)}`);
      assert.ok(existsSync(lockFile), 'a SIGKILLed run leaves its lock behind');
      assert.equal(holder(lockFile), first.pid);

      // The next run sees that the holder is dead, takes the lock over, and completes the copy.
      const next = ok(await eltonAsync(tempDir(), backupArgs(src.master.url, target), env()), 'run after the stale lock').json;
      assert.equal(next.ok, true);
      assert.deepEqual(next.copied, ['docs@1']);
      assert.deepEqual(lockFiles(), [], 'the lock is released at the end');
      assert.deepEqual(readdirSync(locks).filter((n) => n.includes('.stale')), [], 'no moved-aside lock is left');
      const v = await verifyTarget(target, 'after the take-over', ['--read-data']);
      assert.equal(v?.versions, 1);
      const dst = join(tempDir(), 'restored');
      ok(await eltonAsync(tempDir(), ['clone', target, 'docs@1', dst], env()));
      assertSameTree(snapshotTree(dst), src.versions.get(1)!);
    } finally {
      await src.stop();
    }
  });
});
