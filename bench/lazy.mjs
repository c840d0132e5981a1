// Lazy-access benchmark, the thesis's experiment: cluster B reads cluster A's data through the emulated WAN by checkout, mount and gateway; one file out of 20,000; the gateway under 100 clients.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { WAN, WAN_NAME, listFiles, liveServers, runAsync, startDaemon, wanProxy } from './support.mjs';
import { makeRng, planLarge } from './workload.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The thesis's file: 64 MiB, half SQL-dump-like text with blobs, a quarter semi-compressible, a quarter random. */
const BIG_BYTES = 64 * MiB;
const BIG_PATH = 'data/mix-64MiB.bin';
/** Targets (the issue's): first read ≤ compressed × (1 + 1%) + metadata; one file ≤ 64 KiB + its path's trees, in ≤ 2 round trips. */
const DATA_SLACK = 0.01;
const ONE_FILE_BYTES = 64 * KiB;
const ONE_FILE_ROUNDS = 2;
/** The gateway under load. */
const LOAD_CLIENTS = 100;
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS || 10);
/** The thesis's NFS model (computed, not measured): every read moves the data, at 6–11 MB/s per stream; one second per file created. */
const NFS_MB_PER_SEC = [6, 11];

/** The master's request log line: TIME CLIENT WHO METHOD PATH STATUS MSms in=N out=N. */
const LOG_LINE = /^(\S+) (\S+) (\S+) ([A-Z]+) (\S+) (\d+) ([\d.]+)ms in=(\d+) out=(\d+)$/;
const isData = (r) => r.method === 'POST' && r.path === '/v1/objects';
/** Requests that resolve the version (store config, version records): what "after the version is resolved" leaves out. */
const isResolve = (r) => r.method === 'GET' && (r.path === '/v1/config' || /^\/v1\/trees\/[^/]+\/versions(\/|$)/.test(r.path));

/**
 * Sequential round trips among requests seen at the master: a request that arrives after every
 * earlier one has been answered starts a new round; requests that overlap share one.
 */
function rounds(reqs) {
  let n = 0;
  let end = -Infinity;
  for (const r of [...reqs].sort((a, b) => a.start - b.start)) {
    if (r.start >= end) n++;
    end = r.start >= end ? r.end : Math.max(end, r.end);
  }
  return n;
}

const sum = (xs, f) => xs.reduce((n, x) => n + f(x), 0);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

/**
 * Runs the lazy-access benchmark on workload `wl` (the small tree) in scratch directory `dir` and returns {rows, markdown}.
 * ctx: {elton, env, reps, log, freshCopy, parseJson, fmtSec, fmtBytes, have, version}.
 */
export async function benchLazy(wl, dir, ctx) {
  const { elton, reps, log, freshCopy, parseJson, fmtSec, fmtBytes } = ctx;
  const reads = []; // the 64 MiB file, three reads
  const ones = []; // one file of the 20,000
  const loads = []; // the gateway under load
  const info = {};
  const { track, forget, untrack, stopAll } = liveServers(); // stopped whatever happens
  let cacheSeq = 0;
  /** A fresh, empty user cache (ELTON_CACHE) for one node. */
  const freshCache = (label) => {
    const c = path.join(dir, 'caches', `${String(++cacheSeq).padStart(3, '0')}-${label}`);
    fs.rmSync(c, { recursive: true, force: true });
    fs.mkdirSync(c, { recursive: true });
    return c;
  };
  const envWith = (cache) => ({ ...ctx.env, ELTON_CACHE: cache });
  const eltonRun = (args, { cwd = dir, cache }) => runAsync([process.execPath, elton, ...args], { cwd, env: envWith(cache) });
  const mustOk = (r, what) => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`);
    return r;
  };

  // ---- cluster A: a master; a workspace commits the 64 MiB file, another the 20,000-file tree
  const requests = []; // the master's request log, parsed
  let master;
  let proxy;
  const bigWs = path.join(dir, 'a-big');
  const smallWs = path.join(dir, 'a-small');
  const bigFile = path.join(bigWs, BIG_PATH);
  let bigSha = '';
  let oneFile = null;
  try {
    const dataA = path.join(dir, 'master-a');
    fs.mkdirSync(dataA, { recursive: true });
    master = track(await startDaemon([process.execPath, elton, 'master', '--data', dataA, '--listen', '127.0.0.1:0'], {
      env: envWith(freshCache('master-a')),
      ready: /elton master listening on (https?:\/\/(\S+?):(\d+))\s/,
      onLine: (line) => {
        const m = LOG_LINE.exec(line);
        if (!m) return;
        const end = Date.parse(m[1]);
        requests.push({ end, start: end - Number(m[7]), method: m[4], path: m[5], status: Number(m[6]), bytesIn: Number(m[8]), bytesOut: Number(m[9]) });
      },
    }));
    master.url = master.match[1];
    master.host = master.match[2];
    master.port = Number(master.match[3]);
    proxy = track(await (await wanProxy())(master));

    fs.mkdirSync(path.dirname(bigFile), { recursive: true });
    writeBigFile(bigFile);
    bigSha = sha256(fs.readFileSync(bigFile));
    const cacheA = freshCache('node-a');
    mustOk(await eltonRun(['init', '--remote', master.url, '--tree', 'big', '--json'], { cwd: bigWs, cache: cacheA }), 'elton init (big)');
    const big = parseJson(mustOk(await eltonRun(['commit', '-m', '64 MiB file', '--json'], { cwd: bigWs, cache: cacheA }), 'elton commit (big)').stdout);
    info.big = { bytes: BIG_BYTES, stored: big.newBytes, objects: big.newObjects, ref: big.ref };
    log(`  lazy  A: ${BIG_PATH} ${fmtBytes(BIG_BYTES)} committed as ${big.ref}: ${big.newObjects} objects, ${fmtBytes(big.newBytes)} stored`);

    freshCopy(wl.dir, smallWs);
    mustOk(await eltonRun(['init', '--remote', master.url, '--tree', 'small', '--json'], { cwd: smallWs, cache: cacheA }), 'elton init (small)');
    const small = parseJson(mustOk(await eltonRun(['commit', '-m', '20,000 files', '--json'], { cwd: smallWs, cache: cacheA }), 'elton commit (small)').stdout);
    info.small = { files: small.files, bytes: small.bytes, stored: small.newBytes, ref: small.ref };
    oneFile = pickOneFile(wl.dir);
    log(`  lazy  A: small tree committed as ${small.ref}: ${small.files} files; one file: ${oneFile.rel} (${fmtBytes(oneFile.size)})`);
  } catch (e) {
    await stopAll();
    reads.push({ op: '(setup)', error: e.message });
    return { rows: { reads, ones, loads }, markdown: render() };
  }

  /** Starts counting at cluster A: returns a function giving what crossed since, once the master has logged it. */
  const mark = () => {
    const i = requests.length;
    const p0 = { ...proxy.stats };
    return async () => {
      // the master logs a request when its response ends, a moment after the client may have exited
      for (let seen = -1, waited = 0; seen !== requests.length && waited < 2000; waited += 150) {
        seen = requests.length;
        await sleep(150);
      }
      const reqs = requests.slice(i);
      const data = reqs.filter(isData);
      const meta = reqs.filter((r) => !isData(r));
      return {
        reqs,
        requests: reqs.length,
        methods: summarize(reqs),
        wire: { down: proxy.stats.bytesDown - p0.bytesDown, up: proxy.stats.bytesUp - p0.bytesUp, connections: proxy.stats.connections - p0.connections },
        atMaster: { down: sum(reqs, (r) => r.bytesOut), up: sum(reqs, (r) => r.bytesIn) },
        dataBytes: sum(data, (r) => r.bytesIn + r.bytesOut),
        metaBytes: sum(meta, (r) => r.bytesIn + r.bytesOut),
        after: reqs.filter((r) => !isResolve(r)),
      };
    };
  };
  const urlOf = (link) => (link === 'WAN' ? proxy.url : master.url);
  /** What the last elton process using `cache` fetched, from the cache's traffic log. */
  const fetchedIn = (cache) => {
    const lines = fs.readFileSync(path.join(cache, 'traffic.jsonl'), 'utf8').trim().split('\n');
    return lines.map((l) => JSON.parse(l)).reduce((a, l) => ({ objects: a.objects + l.fetched.objects, bytes: a.bytes + l.fetched.bytes }), { objects: 0, bytes: 0 });
  };

  try {
    // ---- 1. the 64 MiB file, read three times on B through the WAN: checkout, mount, gateway, one user cache
    const readTarget = (row) => {
      const limit = info.big.stored * (1 + DATA_SLACK);
      if (row.first) {
        row.target = `data ≤ ${fmtBytes(Math.floor(limit))} (stored × 1.01) + metadata`;
        row.pass = row.dataBytes <= limit;
        row.note = `data = stored + ${(((row.dataBytes - info.big.stored) / info.big.stored) * 100).toFixed(2)}%; ${row.note}`;
      } else {
        row.target = 'data 0 B (+ metadata)';
        row.pass = row.dataBytes === 0;
      }
    };
    const readRow = (op, how, cache, first, m, seconds, note) => {
      const row = {
        op, how, cache, first, seconds, requests: m.requests, methods: m.methods, down: m.wire.down, up: m.wire.up,
        dataBytes: m.dataBytes, metaBytes: m.metaBytes, connections: m.wire.connections, note,
      };
      readTarget(row);
      return row;
    };
    const verifyBig = (file) => {
      if (sha256(fs.readFileSync(file)) !== bigSha) throw new Error(`${file} differs from the original`);
      return 'verified';
    };
    const readClone = async (cache, first) => {
      const dest = path.join(dir, 'b-clone');
      fs.rmSync(dest, { recursive: true, force: true });
      const done = mark();
      const r = mustOk(await eltonRun(['clone', proxy.url, 'big@1', dest, '--json'], { cache }), 'elton clone');
      const m = await done();
      const j = parseJson(r.stdout);
      const note = `fetched ${j.fetched?.objects ?? '?'} objects (${fmtBytes(j.fetched?.bytes)}), ${j.cached?.objects ?? '?'} from the cache; ${verifyBig(path.join(dest, BIG_PATH))}`;
      fs.rmSync(dest, { recursive: true, force: true });
      return readRow('checkout', '`elton clone URL big@1 DIR`', cache, first, m, r.seconds, note);
    };
    const readMount = async (cache, first) => {
      const mnt = path.join(dir, 'b-mnt');
      fs.mkdirSync(mnt, { recursive: true });
      const done = mark();
      const t0 = performance.now();
      const mount = track(await startDaemon([process.execPath, elton, 'mount', 'big@1', mnt, '--remote', proxy.url, '--json'], {
        env: envWith(cache), ready: /"event":"mounted"/, keepLines: true,
      }));
      const started = (performance.now() - t0) / 1000;
      const r = await runAsync(['cmp', path.join(mnt, BIG_PATH), bigFile]);
      const report = await unmountAndReport(mount, mnt);
      const m = await done();
      mustOk(r, 'cmp through the mount');
      const note = `mount up in ${fmtSec(started)} s (resolves big@1); \`cmp MNT/${BIG_PATH} original\` timed; fetched ${report?.cache?.fetched.objects ?? '?'} objects; verified${report?.exit ? `; ${report.exit}` : ''}`;
      return readRow('mount', '`elton mount big@1 MNT`, `cmp` the file', cache, first, m, r.seconds, note);
    };
    const unmountAndReport = async (mount, mnt) => {
      const u = await runAsync([process.execPath, elton, 'unmount', mnt], { env: ctx.env });
      forget(mount);
      let exit = u.code === 0 ? '' : `elton unmount exited ${u.code}: ${u.stderr.trim().slice(0, 100)}`;
      const ended = await Promise.race([mount.exited, sleep(10_000).then(() => null)]);
      if (!ended) {
        exit = 'the mount process did not exit after `elton unmount` (killed)';
        await mount.stop('SIGKILL');
      }
      const text = mount.lines.slice(mount.lines.findIndex((l) => l.includes('"event":"mounted"')) + 1).join('\n').trim();
      let report = null;
      try {
        report = JSON.parse(text);
      } catch { /* no report: the process was killed */ }
      return { ...report, exit };
    };
    const startGateway = async (cache, remote) => {
      const g = track(await startDaemon([process.execPath, elton, 'serve', '--remote', remote, '--listen', '127.0.0.1:0', '--json'], {
        env: envWith(cache), ready: /"event":"listening"/,
      }));
      g.url = JSON.parse(g.match.input).url;
      return g;
    };
    const readServe = async (cache, first) => {
      const done = mark();
      const t0 = performance.now();
      const g = await startGateway(cache, proxy.url);
      const started = (performance.now() - t0) / 1000;
      const got = await httpGet(`${g.url}/big@1/${BIG_PATH}`);
      const stats = JSON.parse((await httpGet(`${g.url}/-/stats`)).body.toString('utf8'));
      await untrack(g);
      const m = await done();
      if (got.status !== 200 || sha256(got.body) !== bigSha) throw new Error(`GET /big@1/${BIG_PATH}: HTTP ${got.status}, ${got.body.length} bytes, content ${sha256(got.body) === bigSha ? 'ok' : 'differs'}`);
      const note = `gateway up in ${fmtSec(started)} s; GET timed; upstream ${stats.upstream.requests} req, fetched ${stats.cache?.fetched.objects ?? '?'} objects; verified`;
      return readRow('gateway', '`elton serve`, `GET /big@1/PATH`', cache, first, m, got.seconds, note);
    };
    const threeReads = [];
    for (let i = 0; i < reps; i++) {
      const cacheB = freshCache('node-b');
      const run = [];
      for (const [name, read] of [['clone', readClone], ['mount', readMount], ['serve', readServe]]) {
        try {
          run.push(await read(cacheB, run.length === 0));
        } catch (e) {
          run.push({ op: name, cache: cacheB, first: run.length === 0, error: e.message });
        }
      }
      // each path cold on its own (a fresh cache each), so that every first read is checked
      for (const [name, read] of [['mount', readMount], ['serve', readServe]]) {
        try {
          run.push({ ...(await read(freshCache(`cold-${name}`), true)), cold: true });
        } catch (e) {
          run.push({ op: name, cold: true, first: true, error: e.message });
        }
      }
      threeReads.push(run);
    }
    reads.push(...mergeReps(threeReads));
    for (const r of reads) {
      const label = `${r.op}${r.cold ? ' (own cold cache)' : r.first ? ' (1st, cold)' : ' (warm)'}`;
      log(`  lazy  64 MiB ${label.padEnd(30)} ${r.error ? `ERROR ${r.error}` : `${fmtSec(r.seconds)} s  ${r.requests} req  down ${fmtBytes(r.down)}  data ${fmtBytes(r.dataBytes)}  meta ${fmtBytes(r.metaBytes)}  ${r.pass ? 'PASS' : 'FAIL'}`}`);
    }

    // ---- 2. one 64 KiB file out of the 20,000-file tree, cold cache, direct and through the WAN
    const ref = 'small@1';
    const verifyOne = (buf) => {
      if (!buf.equals(oneFile.data)) throw new Error(`${oneFile.rel} differs from the original (${buf.length} bytes)`);
      return 'verified';
    };
    const oneRow = (method, link, seconds, m, cache, note) => {
      const row = {
        method, link, seconds, requests: m.requests, methods: m.methods, after: m.after.length, rounds: rounds(m.after),
        down: link === 'WAN' ? m.wire.down : m.atMaster.down, up: link === 'WAN' ? m.wire.up : m.atMaster.up,
        afterBytes: sum(m.after, (r) => r.bytesIn + r.bytesOut), fetched: fetchedIn(cache), note,
      };
      return row;
    };
    const methods = {
      // the metadata on the path, as reference: the trees from the root down to the file's directory
      ls: async (link) => {
        const cache = freshCache('ls');
        const ws = path.join(dir, 'b-ls');
        fs.rmSync(ws, { recursive: true, force: true });
        fs.mkdirSync(ws);
        mustOk(await eltonRun(['init', '--remote', urlOf(link), '--tree', 'small', '--json'], { cwd: ws, cache }), 'elton init');
        const done = mark();
        const r = mustOk(await eltonRun(['ls', ref, path.dirname(oneFile.rel), '--json'], { cwd: ws, cache }), 'elton ls');
        return oneRow(`\`elton ls ${ref} ${path.dirname(oneFile.rel)}\` (the trees on the path, for reference)`, link, r.seconds, await done(), cache, 'in a workspace made by `elton init` (its config request not counted)');
      },
      cat: async (link) => {
        const cache = freshCache('cat');
        const ws = path.join(dir, 'b-cat');
        fs.rmSync(ws, { recursive: true, force: true });
        fs.mkdirSync(ws);
        mustOk(await eltonRun(['init', '--remote', urlOf(link), '--tree', 'small', '--json'], { cwd: ws, cache }), 'elton init');
        const done = mark();
        const r = mustOk(await eltonRun(['cat', `${ref}:${oneFile.rel}`, '--json'], { cwd: ws, cache }), 'elton cat');
        const m = await done();
        const j = parseJson(r.stdout);
        return oneRow(`\`elton cat ${ref}:PATH\``, link, r.seconds, m, cache, `${verifyOne(Buffer.from(j.content, j.encoding))}; workspace made by \`elton init\` before (its config request not counted)`);
      },
      clone: async (link) => {
        const cache = freshCache('clone');
        const dest = path.join(dir, 'b-sparse');
        fs.rmSync(dest, { recursive: true, force: true });
        const done = mark();
        const r = mustOk(await eltonRun(['clone', urlOf(link), ref, dest, '--json', '--', oneFile.rel], { cache }), 'elton clone -- PATH');
        const m = await done();
        const note = `${verifyOne(fs.readFileSync(path.join(dest, oneFile.rel)))}, ${listFiles(dest).filter((f) => !f.startsWith('.elton/')).length} file(s) written`;
        fs.rmSync(dest, { recursive: true, force: true });
        return oneRow(`\`elton clone URL ${ref} DIR -- PATH\``, link, r.seconds, m, cache, note);
      },
      checkout: async (link) => {
        const dest = path.join(dir, 'b-sparse');
        fs.rmSync(dest, { recursive: true, force: true });
        // a sparse clone of another directory's file, made with a cache of its own: the checkout then starts cold
        mustOk(await eltonRun(['clone', urlOf(link), ref, dest, '--json', '--', oneFile.other], { cache: freshCache('sparse') }), 'elton clone -- OTHER');
        const cache = freshCache('checkout');
        const done = mark();
        const r = mustOk(await eltonRun(['checkout', ref, '--json', '--', oneFile.rel], { cwd: dest, cache }), 'elton checkout -- PATH');
        const m = await done();
        const note = `in a clone made with \`-- ${oneFile.other}\`; ${verifyOne(fs.readFileSync(path.join(dest, oneFile.rel)))}`;
        fs.rmSync(dest, { recursive: true, force: true });
        return oneRow(`\`elton checkout ${ref} -- PATH\` (sparse clone)`, link, r.seconds, m, cache, note);
      },
      mount: async (link) => {
        const cache = freshCache('mount');
        const mnt = path.join(dir, 'b-mnt');
        fs.mkdirSync(mnt, { recursive: true });
        const mount = track(await startDaemon([process.execPath, elton, 'mount', ref, mnt, '--remote', urlOf(link), '--json'], { env: envWith(cache), ready: /"event":"mounted"/, keepLines: true }));
        const done = mark();
        const r = await runAsync(['cmp', path.join(mnt, oneFile.rel), path.join(wl.dir, oneFile.rel)], {});
        const m = await done();
        const report = await unmountAndReport(mount, mnt);
        mustOk(r, 'cmp through the mount');
        const note = `\`cmp MNT/PATH original\` timed, after \`elton mount ${ref}\` resolved the version; verified${report.exit ? `; ${report.exit}` : ''}`;
        return oneRow(`\`elton mount ${ref} MNT\`, \`cmp MNT/PATH\``, link, r.seconds, m, cache, note);
      },
      serve: async (link) => {
        const cache = freshCache('serve');
        const g = await startGateway(cache, urlOf(link));
        const done = mark();
        const got = await httpGet(`${g.url}/${ref}/${oneFile.rel.split('/').map(encodeURIComponent).join('/')}`);
        const m = await done();
        await untrack(g);
        if (got.status !== 200) throw new Error(`HTTP ${got.status}: ${got.body.toString('utf8').slice(0, 200)}`);
        return oneRow(`\`elton serve\`, \`GET /${ref}/PATH\``, link, got.seconds, m, cache, `GET timed, the gateway already started (its config request not counted); ${verifyOne(got.body)}`);
      },
    };
    const oneRuns = [];
    for (let i = 0; i < reps; i++) {
      const run = [];
      for (const [name, fn] of Object.entries(methods)) {
        for (const link of ['direct', 'WAN']) {
          try {
            run.push({ key: name, ...(await fn(link)) });
          } catch (e) {
            run.push({ key: name, method: name, link, error: e.message });
          }
        }
      }
      oneRuns.push(run);
    }
    ones.push(...mergeReps(oneRuns));
    const pathTrees = ones.find((r) => r.key === 'ls' && r.link === 'WAN' && !r.error)?.fetched;
    info.pathTrees = pathTrees;
    for (const r of ones) {
      const direct = ones.find((x) => x.key === r.key && x.link === 'direct' && !x.error);
      if (r.link === 'WAN' && direct && !r.error) r.rtts = (r.seconds - direct.seconds) / (WAN.rttMs / 1000);
      if (r.key !== 'ls' && !r.error && pathTrees) {
        const limit = ONE_FILE_BYTES + pathTrees.bytes;
        r.target = `≤ ${fmtBytes(limit)} fetched (64 KiB + ${pathTrees.objects} trees on the path), ≤ ${ONE_FILE_ROUNDS} rounds`;
        const missed = [r.fetched.bytes > limit && `fetched ${fmtBytes(r.fetched.bytes)}`, r.rounds > ONE_FILE_ROUNDS && `${r.rounds} rounds`].filter(Boolean);
        r.pass = !missed.length;
        r.missed = missed.join(', ');
      }
      log(`  lazy  one file ${`${r.key} ${r.link}`.padEnd(16)} ${r.error ? `ERROR ${r.error}` : `${fmtSec(r.seconds)} s  ${r.requests} req (${r.after} after the version, ${r.rounds} rounds)  fetched ${r.fetched.objects} objects ${fmtBytes(r.fetched.bytes)}  wire ${fmtBytes(r.down + r.up)}${r.target ? `  ${r.pass ? 'PASS' : 'FAIL'}` : ''}`}`);
    }

    // ---- 3. the gateway under 100 concurrent keep-alive clients: cold (fetching from A through the WAN), then warm
    const plan = loadPlan(wl.dir, bigFile);
    info.loadPlan = plan.summary;
    const gCache = freshCache('gateway-load');
    const g = await startGateway(gCache, proxy.url);
    try {
      const done = mark();
      const cold = await runLoad({ url: g.url, plan: plan.items, clients: LOAD_CLIENTS, seconds: LOAD_SECONDS, cycle: false });
      const m = await done();
      loads.push({ server: 'elton serve', cache: 'cold (fetching from A through the WAN)', ...cold, upstream: m.requests, upstreamBytes: m.wire.down, methods: m.methods });
      const before = mark();
      const warm = await runLoad({ url: g.url, plan: plan.items.slice(0, cold.requests), clients: LOAD_CLIENTS, seconds: LOAD_SECONDS, cycle: true });
      const m2 = await before();
      loads.push({ server: 'elton serve', cache: `warm (the ${cold.requests} requests of the cold run, replayed)`, ...warm, upstream: m2.requests, upstreamBytes: m2.wire.down, methods: m2.methods });
    } finally {
      await untrack(g);
    }
    if (ctx.have('rclone')) {
      // reference: a plain file server on the same files from the local disk
      const root = path.join(dir, 'rclone-root');
      fs.rmSync(root, { recursive: true, force: true });
      fs.mkdirSync(root);
      fs.symlinkSync(wl.dir, path.join(root, 'small@1'));
      fs.symlinkSync(bigWs, path.join(root, 'big@1'));
      const port = await freePort();
      const rclone = await runDaemonUntilUp(['rclone', 'serve', 'http', '--config', '/dev/null', '-L', '--read-only', '--addr', `127.0.0.1:${port}`, root], `http://127.0.0.1:${port}/`, ctx.env);
      try {
        const cold = loads[0];
        const r = await runLoad({ url: `http://127.0.0.1:${port}`, plan: plan.items.slice(0, cold?.requests || plan.items.length), clients: LOAD_CLIENTS, seconds: LOAD_SECONDS, cycle: true });
        loads.push({ server: `rclone serve http (${firstLine(ctx.version(['rclone', 'version']))})`, cache: 'the files on the local disk (same requests as the warm run)', ...r, upstream: null });
      } finally {
        await rclone.stop();
      }
    } else {
      loads.push({ server: 'rclone serve http', error: 'rclone not installed' });
    }
    for (const l of loads) {
      l.target = 'errors 0';
      l.pass = !l.error && l.errors === 0;
      log(`  lazy  load ${`${l.server} ${l.cache ?? ''}`.slice(0, 60).padEnd(60)} ${l.error ? `ERROR ${l.error}` : `${l.requests} req in ${fmtSec(l.seconds)} s = ${l.rate.toFixed(0)}/s  p50 ${l.p50.toFixed(1)} p95 ${l.p95.toFixed(1)} p99 ${l.p99.toFixed(1)} ms  errors ${l.errors}`}`);
    }
  } catch (e) {
    loads.push({ server: '(section)', error: e.message });
  } finally {
    await stopAll();
  }
  return { rows: { info, reads, ones, loads }, markdown: render() };

  function render() {
    const out = ['', `## Lazy access: checkout, mount and gateway over a WAN (${WAN.rttMs} ms RTT, ${WAN.mbitPerSec} Mbit/s)`, ''];
    const cell = (cells) => `| ${cells.map((c) => String(c ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`;
    const verdict = (r) => (r.error ? 'ERROR' : r.pass == null ? '' : r.pass ? 'PASS' : `FAIL${r.missed ? ` (${r.missed})` : ''}`);
    const secs = (r) => (r.times?.length > 1 ? `${fmtSec(r.seconds)} (×${r.times.length})` : fmtSec(r.seconds));
    out.push(
      `- **cluster A**: \`elton master\` on loopback; a workspace commits \`${BIG_PATH}\` (${fmtBytes(BIG_BYTES)}: 32 MiB SQL-dump-like text with blobs, 16 MiB semi-compressible, 16 MiB random) as \`big@1\`` +
        `${info.big ? `, stored as ${info.big.objects} objects, ${fmtBytes(info.big.stored)} (${((info.big.stored / BIG_BYTES) * 100).toFixed(1)}%)` : ''}; another commits the ${wl.name} tree (${wl.files} files, ${fmtBytes(wl.bytes)}) as \`small@1\``,
      `- **cluster B**: reaches A through test/support/wan-proxy.ts (${WAN_NAME}, one RTT of handshake per new connection); one node, one user cache (\`ELTON_CACHE\`, fresh per scenario)`,
      '- **counted at A**: requests from the master\'s request log (socket bytes per request, headers included); *data* = `POST /v1/objects` (chunks), *metadata* = the rest (store config, version records, trees); bytes down/up through the emulator from the proxy',
      `- **reps**: ${reps}, median reported`,
      '',
      `### The ${fmtBytes(BIG_BYTES)} file, read three times on B`,
      '',
      '| read | how | cache | seconds | requests | bytes down | bytes up | data | metadata | target | result | note |',
      '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
    );
    for (const r of reads) {
      const which = r.cold ? 'own, cold' : r.first ? 'shared, cold' : 'shared, warm';
      out.push(cell([r.op, r.how, which, secs(r), r.requests, fmtBytes(r.down), fmtBytes(r.up), fmtBytes(r.dataBytes), fmtBytes(r.metaBytes), r.target, verdict(r),
        r.error ? `ERROR: ${r.error}` : [r.methods, r.note].filter(Boolean).join('; ')]));
    }
    const [lo, hi] = NFS_MB_PER_SEC;
    const perRead = (mbs) => (BIG_BYTES / 1e6 / mbs).toFixed(1);
    for (let i = 1; i <= 3; i++) {
      out.push(cell([`NFS read ${i} (computed)`, 'the thesis\'s model: every read moves the file', '', `${perRead(hi)}–${perRead(lo)}`, '', fmtBytes(BIG_BYTES), '', fmtBytes(BIG_BYTES), '', '', '',
        `${lo}–${hi} MB/s per stream; not measured (no NFS here)`]));
    }
    out.push(
      '',
      `### One file out of ${wl.files}, cold cache`,
      '',
      `- **file**: \`${oneFile?.rel ?? 'n/a'}\` (${fmtBytes(oneFile?.size)}, random bytes: stored as is), at depth ${oneFile ? oneFile.rel.split('/').length - 1 : '?'}; ` +
        `metadata on its path: ${info.pathTrees ? `${info.pathTrees.objects} trees, ${fmtBytes(info.pathTrees.bytes)} (what a cold \`elton ls\` of its directory fetches)` : 'n/a'}`,
      '- **requests after the version**: all but the store config and version records; **rounds**: sequential round trips among those, seen at A (a request arriving after every earlier one was answered starts a new one); ' +
        `**RTTs (time)**: (WAN seconds − direct seconds) / ${WAN.rttMs} ms, connection handshakes and everything else the link adds included`,
      '- **fetched**: objects that came from A (chunks and trees, as stored), from the user cache\'s traffic log; **wire**: all bytes both ways (through the emulator on the WAN rows, at A\'s sockets on the direct ones)',
      '',
      '| method | link | seconds | requests (after the version) | rounds | RTTs (time) | fetched | wire | wire after the version | target | result | note |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
    );
    for (const r of ones) {
      out.push(cell([r.method, r.link === 'WAN' ? WAN_NAME : r.link, secs(r), r.error ? '' : `${r.requests} (${r.after})`, r.rounds ?? '', r.rtts != null ? r.rtts.toFixed(1) : '',
        r.fetched ? `${r.fetched.objects} obj, ${fmtBytes(r.fetched.bytes)}` : '', r.error ? '' : fmtBytes(r.down + r.up), r.error ? '' : fmtBytes(r.afterBytes), r.target ?? '', verdict(r),
        r.error ? `ERROR: ${r.error}` : `${r.methods}; ${r.note}`]));
    }
    out.push(
      '',
      `### The gateway under ${LOAD_CLIENTS} concurrent clients`,
      '',
      `- **clients**: ${LOAD_CLIENTS} keep-alive connections from a worker thread of the bench process, on loopback, each sending its next request when the last one ended, for ${LOAD_SECONDS} s (requests under way then are finished and counted); every response is checked (status, length, bytes)`,
      `- **requests**: ${info.loadPlan ?? 'n/a'}`,
      `- **cold**: a fresh \`elton serve\` with an empty cache, its remote A through the emulated WAN; every request is for a file not asked before. **warm**: the same gateway replays the cold run's requests`,
      '',
      '| server | cache | requests | seconds | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | MiB served | requests to A | target | result | note |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
    );
    for (const l of loads) {
      if (l.error) {
        out.push(cell([l.server, '', '', '', '', '', '', '', '', '', '', '', l.target ?? '', 'ERROR', `ERROR: ${l.error}`]));
        continue;
      }
      out.push(cell([l.server, l.cache, l.requests, fmtSec(l.seconds), l.rate.toFixed(0), l.p50.toFixed(1), l.p95.toFixed(1), l.p99.toFixed(1), l.max.toFixed(1), l.errors,
        (l.bytes / MiB).toFixed(1), l.upstream ?? '', l.target, verdict(l), [l.methods, l.errorSamples?.length ? `errors: ${l.errorSamples.join('; ')}` : ''].filter(Boolean).join('; ')]));
    }
    out.push('', '| target | result | |', '|---|---|---|');
    const first = reads.filter((r) => r.first);
    const later = reads.filter((r) => !r.first);
    const all = (rs) => (rs.length && rs.every((r) => r.pass) ? 'PASS' : 'FAIL');
    out.push(cell([`first read of the ${fmtBytes(BIG_BYTES)} file ≤ stored × 1.01 + metadata`, `**${all(first)}**`, first.map((r) => `${r.op}${r.cold ? ' (own cache)' : ''}: data ${fmtBytes(r.dataBytes)}, metadata ${fmtBytes(r.metaBytes)}`).join('; ')]));
    out.push(cell(['2nd and 3rd reads move 0 bytes of data', `**${all(later)}**`, later.map((r) => `${r.op}: data ${fmtBytes(r.dataBytes)}, metadata ${fmtBytes(r.metaBytes)} in ${r.requests} req`).join('; ')]));
    const oneChecked = ones.filter((r) => r.key !== 'ls');
    out.push(cell([`one file ≤ 64 KiB + the trees on its path, ≤ ${ONE_FILE_ROUNDS} round trips after the version`, `**${all(oneChecked)}**`,
      oneChecked.filter((r) => !r.pass).map((r) => `${r.key} ${r.link}: ${r.error ? 'ERROR' : `${fmtBytes(r.fetched.bytes)} fetched in ${r.rounds} rounds`}`).join('; ') || 'every method, direct and over the WAN']));
    const gw = loads.filter((l) => l.server === 'elton serve');
    out.push(cell([`the gateway under ${LOAD_CLIENTS} concurrent clients: no errors`, `**${all(gw)}**`, gw.map((l) => `${l.cache.split(' ')[0]}: ${l.requests ?? 0} req, ${l.errors ?? '?'} errors`).join('; ')]));
    return out.join('\n') + '\n';
  }
}

/** Groups the rows of several reps by position and keeps, for each, the rep with the median time (all times listed). */
function mergeReps(runs) {
  return runs[0].map((_, i) => {
    const same = runs.map((run) => run[i]).filter((r) => r && !r.error);
    if (!same.length) return runs[runs.length - 1][i];
    const times = same.map((r) => r.seconds);
    const mid = median(times);
    return { ...same.find((r) => r.seconds === mid), times };
  });
}

/** "GET 3, POST 2" for the master's requests. */
function summarize(reqs) {
  const counts = {};
  for (const r of reqs) {
    const what = `${r.method} ${r.path.replace(/^\/v1\/trees\/[^/]+\/versions\/.*/, '/v1/trees/T/versions/V')}${r.status >= 400 ? ` ${r.status}` : ''}`;
    counts[what] = (counts[what] ?? 0) + 1;
  }
  return Object.entries(counts).map(([k, v]) => `${k} ×${v}`).join(', ');
}

/** Writes the 64 MiB file deterministically: 32 MiB of the large tree's dump, 16 MiB semi-compressible, 16 MiB random. */
function writeBigFile(file) {
  const [dump, random, semi] = planLarge(1).map((f) => f.make());
  const fd = fs.openSync(file, 'w');
  try {
    for (const [fill, bytes] of [[dump, 32 * MiB], [semi, 16 * MiB], [random, 16 * MiB]]) {
      for (let done = 0; done < bytes; done += 8 * MiB) fs.writeSync(fd, fill(8 * MiB));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The largest random-content file at the deepest level of the tree (the worst case: no compression, the most trees), and a file elsewhere. */
function pickOneFile(root) {
  const files = listFiles(root).map((rel) => ({ rel, depth: rel.split('/').length, size: fs.statSync(path.join(root, rel)).size }));
  const deepest = Math.max(...files.map((f) => f.depth));
  const one = files.filter((f) => f.depth === deepest && /\.(bin|dat|png|gz)$/.test(f.rel)).sort((a, b) => b.size - a.size)[0];
  const top = one.rel.split('/')[0];
  const other = files.find((f) => !f.rel.startsWith(`${top}/`)).rel;
  return { ...one, other, data: fs.readFileSync(path.join(root, one.rel)) };
}

/**
 * The gateway's request mix, in a fixed order: every file of the tree once (shuffled), every
 * fifth request a Range instead: alternately a range of a small file and 64 KiB of the 64 MiB file.
 */
function loadPlan(root, bigFile) {
  const rng = makeRng(0x5eed);
  const files = listFiles(root).map((rel) => ({ rel, size: fs.statSync(path.join(root, rel)).size }));
  for (let i = files.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [files[i], files[j]] = [files[j], files[i]];
  }
  const enc = (rel) => rel.split('/').map(encodeURIComponent).join('/');
  const items = files.map((f, i) => {
    if (i % 5 !== 4 || f.size < 2) return { path: `/small@1/${enc(f.rel)}`, file: path.join(root, f.rel), size: f.size };
    if (i % 10 === 4) {
      const start = rng.int(f.size - 1);
      return { path: `/small@1/${enc(f.rel)}`, file: path.join(root, f.rel), size: f.size, range: [start, Math.min(f.size, start + 1 + rng.int(16 * KiB))] };
    }
    const start = rng.int(BIG_BYTES - 64 * KiB);
    return { path: `/big@1/${BIG_PATH}`, file: bigFile, size: BIG_BYTES, range: [start, start + 64 * KiB] };
  });
  const sizes = files.map((f) => f.size);
  return {
    items,
    summary: `every file of the tree once, in a fixed shuffled order (${files.length} paths, ${Math.min(...sizes)} B to ${(Math.max(...sizes) / KiB).toFixed(1)} KiB), ` +
      'every 5th request a Range instead: alternately up to 16 KiB of a small file, and 64 KiB at a random offset of the 64 MiB file',
  };
}

/** GET with a fresh connection; resolves {status, body, seconds}. */
function httpGet(url) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get(url, { agent: false }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts), seconds: (performance.now() - t0) / 1000 }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Starts a server that prints nothing useful on stdout, and polls `url` until it answers. */
async function runDaemonUntilUp(argv, url, env) {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-2000);
  });
  const exited = new Promise((resolve) => child.on('close', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    try {
      const r = await httpGet(url);
      if (r.status < 500) return { stop };
    } catch { /* not up yet */ }
    await sleep(100);
  }
  await stop();
  throw new Error(`${argv[0]} did not come up: ${stderr.trim().split('\n').slice(-2).join(' | ')}`);
}

/** Runs the load in a worker thread, so that the clients do not share the event loop of the WAN proxy. */
function runLoad(opts) {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { lazyLoad: opts } });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => code && reject(new Error(`load worker exited ${code}`)));
  });
}

/** The load clients (in the worker): `clients` loops, each sending the next request of the plan when its last one ended. */
async function loadClients({ url, plan, clients, seconds, cycle }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const latencies = [];
  const errorSamples = [];
  let errors = 0;
  let bytes = 0;
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const expected = (item) => {
    const [start, end] = item.range ?? [0, item.size];
    const buf = Buffer.alloc(end - start);
    const fd = fs.openSync(item.file, 'r');
    try {
      fs.readSync(fd, buf, 0, buf.length, start);
    } finally {
      fs.closeSync(fd);
    }
    return buf;
  };
  const fail = (item, why) => {
    errors++;
    if (errorSamples.length < 3) errorSamples.push(`${item.path}${item.range ? ` ${item.range.join('-')}` : ''}: ${why}`.slice(0, 200));
  };
  const one = (item) => new Promise((resolve) => {
    const started = performance.now();
    const headers = item.range ? { range: `bytes=${item.range[0]}-${item.range[1] - 1}` } : {};
    const req = http.get(url + item.path, { agent, headers }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('error', (e) => {
        fail(item, e.message);
        resolve();
      });
      res.on('end', () => {
        latencies.push(performance.now() - started);
        const body = Buffer.concat(parts);
        bytes += body.length;
        const status = item.range ? 206 : 200;
        if (res.statusCode !== status) fail(item, `HTTP ${res.statusCode} (expected ${status}): ${body.toString('utf8').slice(0, 100)}`);
        else if (!body.equals(expected(item))) fail(item, `${body.length} bytes, not the file's`);
        resolve();
      });
    });
    req.on('error', (e) => {
      fail(item, e.message);
      resolve();
    });
  });
  const client = async () => {
    while (performance.now() < deadline) {
      const i = next++;
      if (!cycle && i >= plan.length) return;
      await one(plan[i % plan.length]);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return {
    requests: Math.min(next, cycle ? Infinity : plan.length), completed: latencies.length, seconds: elapsed, rate: latencies.length / elapsed,
    p50: pct(50), p95: pct(95), p99: pct(99), max: latencies[latencies.length - 1] ?? 0, errors, errorSamples, bytes,
  };
}

const firstLine = (s) => s.trim().split('\n')[0];

if (!isMainThread && workerData?.lazyLoad) parentPort.postMessage(await loadClients(workerData.lazyLoad));
