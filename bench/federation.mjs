// Federation benchmark, the thesis's scenario: masters A (alpha) and B (beta) joined by an emulated WAN; a node on A commits,
// two nodes on B check out through B, one of them commits a change back (forwarded to the home A), a second node on A checks it out.
// Counts what crosses the A↔B link at each step, next to two nodes on B cloning straight from A through the WAN (no federation).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { WAN, WAN_NAME, listFiles, liveServers, runAsync, startDaemon, wanProxy } from './support.mjs';
import { TextGen, makeRng, randomStream } from './workload.mjs';

const KiB = 1024;
/** The tree is homed on A: its name says so. */
const TREE = 'data~alpha';
/** Files b1 rewrites (seeded pick, new content of the same size and kind). */
const CHANGED_FILES = 10;
/**
 * Targets. b1's commit: WAN bytes (both directions) ≤ 1.1 × the changed files compressed + a fixed allowance for
 * HTTP headers, the id list, the changed trees and the version record, in a small constant number of requests
 * between masters (missing?, pack, version). b2's checkout: no object fetched by B, and no more than a small
 * @latest exchange on the link. a2's checkout: no more than the changed files compressed on the link.
 */
const COMMIT_SLACK = 1.1;
const COMMIT_ALLOWANCE = 8 * KiB;
const COMMIT_M2M_REQUESTS = 4;
const LATEST_ONLY_BYTES = 4 * KiB;
/** "Compressed" as elton stores it by default: brotli at quality 2, file by file (raw when that is smaller). */
const compressed = (buf) => Math.min(buf.length, zlib.brotliCompressSync(buf, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 2, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: buf.length } }).length);
const TEXT_STYLE = { txt: 'prose', csv: 'csv', log: 'log', jsonl: 'json' };
const READY = /elton master listening on (https?:\/\/(\S+?):(\d+))\s/;
/** The master's request log line: TIME CLIENT WHO [peer:NAME] METHOD PATH STATUS MSms in=N out=N (peer:NAME for a peer's request). */
const LOG_LINE = /^(\S+) (\S+) \S+(?: (peer:\S+))? ([A-Z]+) (\S+) (\d+) ([\d.]+)ms in=(\d+) out=(\d+)$/;

/** Rewrites `count` files under `root` (seeded pick, .elton left out) with new content of the same size and kind; returns {files, bytes, compressed}. */
function changeFiles(root, count) {
  const all = listFiles(root).filter((f) => !f.startsWith('.elton/'));
  const rng = makeRng(0xfed0);
  const picked = new Set();
  while (picked.size < Math.min(count, all.length)) picked.add(all[rng.int(all.length)]);
  const files = [...picked].sort();
  let bytes = 0;
  let packed = 0;
  files.forEach((rel, i) => {
    const file = path.join(root, rel);
    const size = fs.statSync(file).size;
    const style = TEXT_STYLE[path.extname(rel).slice(1)];
    const data = style ? new TextGen(0xfed00000 + i).block(style, size) : randomStream(`federation-${rel}`)(size);
    fs.writeFileSync(file, data);
    bytes += data.length;
    packed += compressed(data);
  });
  return { files, bytes, compressed: packed };
}

/** A port free on 127.0.0.1 now (a master started on it right after gets it, barring a race with another process). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Bytes under a directory (apparent sizes), 0 if absent. */
function dirBytes(dir) {
  if (!fs.existsSync(dir)) return 0;
  return listFiles(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

/**
 * Runs the federation benchmark on workload `wl` (2,000 files) in scratch directory `dir` and returns {rows, markdown}.
 * ctx: {elton, env, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes}.
 */
export async function benchFederation(wl, dir, ctx) {
  const { elton, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes } = ctx;
  const rows = [];
  const info = { changed: null, a1: null, storeGrowth: null, verified: [] };
  const { track, stopAll } = liveServers(); // masters and proxies, stopped whatever happens
  const mustOk = (r, what) => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`);
    return r;
  };
  /** Every node has its own working directory and its own user cache (ELTON_CACHE). */
  const node = (name) => {
    const cache = path.join(dir, 'caches', name);
    fs.mkdirSync(cache, { recursive: true });
    return { name, ws: path.join(dir, name), env: { ...ctx.env, ELTON_CACHE: cache } };
  };
  const eltonRun = (args, { cwd = dir, env = ctx.env } = {}) => runAsync([process.execPath, elton, ...args], { cwd, env });
  const m = {}; // alpha, beta: {url, data}
  const p = {}; // toA (in front of A: B's --peer alpha=), toB (in front of B: A's --peer beta=)
  const peerCalls = []; // requests a master received from its peer, from the masters' request logs: {at: 'alpha'|'beta', method, path, status, bytesIn, bytesOut}

  /** Both masters' status (peers' counters), read directly (not through the WAN). */
  const status = async () => {
    const out = {};
    await Promise.all(['alpha', 'beta'].map(async (k) => {
      const s = parseJson(mustOk(await eltonRun(['master', 'status', m[k].url, '--json']), `elton master status ${k}`).stdout);
      if (s.name !== k) throw new Error(`master status of ${m[k].url} says name ${s.name}, expected ${k}`);
      out[k] = s.peers[0];
    }));
    return out;
  };
  const wire = () => ({ toA: { ...p.toA.stats }, toB: { ...p.toB.stats } });

  /**
   * Runs one step: step.run() returns a runAsync result; counts the WAN proxies and the masters' peer counters around it.
   * step.measure(j, row) gets the command's JSON (and the row, its counts filled in) and returns fields for the row; step.target(row) returns {target, pass}.
   */
  const measure = async (label, op, step) => {
    const row = { step: label, op, seconds: null, node: null, wan: null, m2m: null, note: '' };
    try {
      const s0 = await status();
      const c0 = peerCalls.length;
      const w0 = wire();
      const r = await step.run();
      const w1 = wire();
      const s1 = await status();
      row.calls = peerCalls.slice(c0);
      mustOk(r, op);
      row.seconds = r.seconds;
      const j = parseJson(r.stdout);
      row.node = j.transfer ?? null;
      // B→A: B's requests to A (up through toA) and B's answers to A's requests (down through toB); A→B the other way round
      const d = (side, k) => w1[side][k] - w0[side][k];
      row.wan = {
        bToA: d('toA', 'bytesUp') + d('toB', 'bytesDown'),
        aToB: d('toA', 'bytesDown') + d('toB', 'bytesUp'),
        connections: d('toA', 'connections') + d('toB', 'connections'),
      };
      const peerDelta = (k) => ({
        requests: s1[k].out.requests - s0[k].out.requests,
        bytesUp: s1[k].out.bytesUp - s0[k].out.bytesUp,
        bytesDown: s1[k].out.bytesDown - s0[k].out.bytesDown,
        objectsFetched: s1[k].objectsFetched - s0[k].objectsFetched,
        objectsSent: s1[k].objectsSent - s0[k].objectsSent,
        versionsForwarded: s1[k].versionsForwarded - s0[k].versionsForwarded,
        rejected: s1[k].rejected - s0[k].rejected,
        lastError: s1[k].lastError,
      });
      row.m2m = { beta: peerDelta('beta'), alpha: peerDelta('alpha') };
      for (const k of ['alpha', 'beta']) if (row.m2m[k].lastError && row.m2m[k].lastError.time !== s0[k].lastError?.time) row.peerError = `${k}: ${row.m2m[k].lastError.code} ${row.m2m[k].lastError.message}`;
      Object.assign(row, await step.measure?.(j, row));
    } catch (e) {
      row.error = e.message;
    }
    Object.assign(row, step.target?.(row));
    if (row.error && row.target) row.pass = false;
    rows.push(row);
    const t = row.error
      ? `ERROR ${row.error}`
      : `${fmtSec(row.seconds)} s  WAN B→A ${fmtBytes(row.wan.bToA)} A→B ${fmtBytes(row.wan.aToB)} conns ${row.wan.connections}  ` +
        `m2m req B→A ${row.m2m.beta.requests} A→B ${row.m2m.alpha.requests}  node ${row.node?.requests ?? '?'} req up ${fmtBytes(row.node?.bytesUp)} down ${fmtBytes(row.node?.bytesDown)}` +
        (row.target ? `  ${row.target} ${row.pass ? 'PASS' : 'FAIL'}` : '');
    log(`  fed   ${`${label} ${op}`.padEnd(44)} ${t}`);
    return row;
  };
  const failed = (label) => rows.find((r) => r.step === label)?.error;
  const skip = (label, op, why) => {
    rows.push({ step: label, op, error: why });
    log(`  fed   ${`${label} ${op}`.padEnd(44)} SKIPPED ${why}`);
  };

  const a1 = node('a1');
  const a2 = node('a2');
  const b1 = node('b1');
  const b2 = node('b2');
  const wantV1 = wl.dir;
  let wantV2 = null; // b1's tree after its change (kept as a copy: b1 stays a workspace)

  try {
    // ---- setup (untimed): ports, the two proxies of the A↔B link, the two masters, a1's workspace
    try {
      const startProxy = await wanProxy();
      const ports = { alpha: await freePort(), beta: await freePort() };
      p.toA = track(await startProxy({ host: '127.0.0.1', port: ports.alpha }));
      p.toB = track(await startProxy({ host: '127.0.0.1', port: ports.beta }));
      const start = async (name, peer, peerUrl) => {
        const data = path.join(dir, `master-${name}`);
        fs.mkdirSync(data, { recursive: true });
        const d = track(await startDaemon([process.execPath, elton, 'master', '--data', data, '--listen', `127.0.0.1:${ports[name]}`, '--name', name, '--peer', `${peer}=${peerUrl}`], {
          env: { ...ctx.env, ELTON_CACHE: path.join(dir, 'caches', `master-${name}`) }, ready: READY,
          onLine: (line) => {
            const l = LOG_LINE.exec(line);
            if (l && l[3] === `peer:${peer}`) peerCalls.push({ at: name, method: l[4], path: l[5], status: Number(l[6]), bytesIn: Number(l[8]), bytesOut: Number(l[9]) });
          },
        }));
        m[name] = { url: d.match[1], data };
      };
      await start('alpha', 'beta', p.toB.url);
      await start('beta', 'alpha', p.toA.url);
      info.masters = `alpha ${m.alpha.url} --peer beta=${p.toB.url} (proxy → ${ports.beta}); beta ${m.beta.url} --peer alpha=${p.toA.url} (proxy → ${ports.alpha})`;
      freshCopy(fs.realpathSync(wl.dir), a1.ws);
      mustOk(await eltonRun(['init', '--remote', m.alpha.url, '--tree', TREE, '--json'], { cwd: a1.ws, env: a1.env }), 'elton init a1');
    } catch (e) {
      skip('(setup)', '', e.message);
      return { rows, markdown: render() };
    }

    // ---- 1. a1 commits the tree to A (its home): nothing should cross the link
    await measure('1', 'a1: commit to A (home)', {
      run: () => eltonRun(['commit', '-m', 'v1', '--json'], { cwd: a1.ws, env: a1.env }),
      measure: (j) => {
        if (j.pending || j.version !== 1) throw new Error(`expected ${TREE}@1, got ${JSON.stringify(j).slice(0, 200)}`);
        info.a1 = j;
        return { note: `${j.ref}: ${j.files} files, ${fmtBytes(j.bytes)}; ${j.newObjects} objects, ${fmtBytes(j.newBytes)} compressed` };
      },
    });
    if (failed('1')) throw new Error('a1 commit failed');

    // ---- 2, 3. b1 then b2 check it out through B: B fetches it from A once and keeps it
    const clone = (who, label, masterKey, want, target) =>
      measure(label, `${who.name}: clone from ${masterKey === 'alpha' ? 'A' : 'B'}`, {
        run: () => eltonRun(['clone', m[masterKey].url, `${TREE}@latest`, who.ws, '--json'], { env: who.env }),
        measure: (j) => {
          const verified = verifyTree(want(), who.ws);
          if (verified) info.verified.push(`${who.name} = ${j.ref}`);
          return { ref: j.ref, note: `${j.ref} files=${j.files ?? '?'} fetched ${j.fetched?.objects ?? '?'} objects ${fmtBytes(j.fetched?.bytes)}${verified ? ` ${verified}` : ''}` };
        },
        target,
      });
    const perObjects = (row) => `B fetched ${row.m2m.beta.objectsFetched} objects from A`;
    const b1Row = await clone(b1, '2', 'beta', () => wantV1);
    if (!b1Row.error) b1Row.note += `; ${perObjects(b1Row)}`;
    const b2Row = await clone(b2, '3', 'beta', () => wantV1, (row) => ({
      target: `0 objects from A; WAN ≤ ${fmtBytes(LATEST_ONLY_BYTES)} (an @latest at most)`,
      pass: !row.error && row.m2m.beta.objectsFetched === 0 && row.wan.bToA + row.wan.aToB <= LATEST_ONLY_BYTES,
    }));
    if (!b2Row.error) b2Row.note += `; ${perObjects(b2Row)}`;
    if (b1Row.error) throw new Error('b1 clone failed');

    // ---- 4. b1 changes 10 files and commits through B, which forwards the commit to A
    info.changed = changeFiles(b1.ws, CHANGED_FILES);
    log(`  fed   b1 changed ${info.changed.files.length} files: ${fmtBytes(info.changed.bytes)}, ${fmtBytes(info.changed.compressed)} compressed (brotli q2, file by file)`);
    wantV2 = path.join(dir, 'want-v2');
    fs.rmSync(wantV2, { recursive: true, force: true });
    mustOk(await runAsync(['cp', '-a', b1.ws, wantV2]), 'cp b1');
    fs.rmSync(path.join(wantV2, '.elton'), { recursive: true, force: true });
    const homeStore = path.join(m.alpha.data, 'store');
    const storeBefore = dirBytes(homeStore);
    const limit = Math.floor(COMMIT_SLACK * info.changed.compressed) + COMMIT_ALLOWANCE;
    await measure('4', 'b1: commit 10 changed files to B', {
      run: () => eltonRun(['commit', '-m', 'v2: 10 files changed on B', '--json'], { cwd: b1.ws, env: b1.env }),
      measure: (j, row) => {
        if (j.pending || j.version !== 2) throw new Error(`expected ${TREE}@2, got ${JSON.stringify(j).slice(0, 200)}`);
        info.storeGrowth = dirBytes(homeStore) - storeBefore;
        const moved = row.wan.bToA + row.wan.aToB;
        return {
          ref: j.ref,
          note: `${j.ref}; hashed ${j.hashedFiles} files; commit's newObjects ${j.newObjects}, newBytes ${fmtBytes(j.newBytes)} (what b1's own store lacked, trees included); B sent A ${row.m2m.beta.objectsSent} objects, ` +
            `${row.m2m.beta.versionsForwarded} version; A's store grew ${fmtBytes(info.storeGrowth)}; WAN ${fmtBytes(moved)} = ${(moved / info.changed.compressed).toFixed(2)}× the changed files compressed`,
        };
      },
      target: (row) => ({
        target: `WAN ≤ ${COMMIT_SLACK} × ${fmtBytes(info.changed.compressed)} + ${fmtBytes(COMMIT_ALLOWANCE)} = ${fmtBytes(limit)}, ≤ ${COMMIT_M2M_REQUESTS} req B→A, 1 version forwarded`,
        pass: !row.error && row.wan.bToA + row.wan.aToB <= limit && row.m2m.beta.requests <= COMMIT_M2M_REQUESTS && row.m2m.alpha.requests === 0 && row.m2m.beta.versionsForwarded === 1,
      }),
    });
    if (failed('4')) throw new Error('b1 commit failed');

    // ---- 5. a2 checks the new version out from A: the commit already put everything there
    const a2Row = await clone(a2, '5', 'alpha', () => wantV2, (row) => ({
      target: `WAN ≤ the changed files compressed (${fmtBytes(info.changed.compressed)}), expected ~0`,
      pass: !row.error && row.ref === `${TREE}@2` && row.wan.bToA + row.wan.aToB <= info.changed.compressed,
    }));
    if (!a2Row.error) a2Row.note += `; A fetched ${a2Row.m2m.alpha.objectsFetched} objects from B`;

    // ---- naive, for comparison: b1 and b2 each clone @1 straight from A through the WAN (no federation, no shared master)
    for (const who of ['b1', 'b2']) {
      const n = node(`naive-${who}`);
      await measure(`naive`, `${who}: clone @1 from A through the WAN`, {
        run: () => eltonRun(['clone', p.toA.url, `${TREE}@1`, n.ws, '--json'], { env: n.env }),
        measure: (j) => {
          const verified = verifyTree(wantV1, n.ws);
          return { ref: j.ref, note: `${j.ref} files=${j.files ?? '?'} fetched ${j.fetched?.objects ?? '?'} objects ${fmtBytes(j.fetched?.bytes)}${verified ? ` ${verified}` : ''}` };
        },
      });
      fs.rmSync(n.ws, { recursive: true, force: true });
    }
  } catch (e) {
    skip('—', '(the steps after it)', `skipped: ${e.message}`);
  } finally {
    await stopAll();
  }
  return { rows, markdown: render() };

  function render() {
    const ch = info.changed;
    const callText = (c) => `${c.at === 'alpha' ? 'B→A' : 'A→B'} ${c.method} ${c.path.replace(/^\/v1\//, '').replace(/^trees\/[^/]+\//, '')}${c.status >= 400 ? ` ${c.status}` : ''} ${fmtBytes(c.bytesIn)}/${fmtBytes(c.bytesOut)}`;
    const out = ['', `## Federation: two masters over a WAN (${WAN.rttMs} ms RTT, ${WAN.mbitPerSec} Mbit/s), a tree homed on A read and changed on B`, ''];
    const wanOf = (label) => rows.filter((r) => r.step === label && r.wan).reduce((n, r) => n + r.wan.bToA + r.wan.aToB, 0);
    const fed23 = wanOf('2') + wanOf('3');
    const naive = wanOf('naive');
    out.push(
      `- **tree**: ${wl.files} files, ${fmtBytes(wl.bytes)} (bench/workload.mjs small tree at scale ×0.1: log-uniform 100 B–64 KiB, half text, half random), ` +
        `\`${TREE}\` (homed on alpha)` + (info.a1 ? `, ${fmtBytes(info.a1.newBytes)} compressed in ${info.a1.newObjects} objects` : ''),
      `- **masters**: \`elton master --name alpha --peer beta=<proxy to B>\` (A) and \`elton master --name beta --peer alpha=<proxy to A>\` (B), on loopback, default --latest-ttl (2 s); ` +
        `every master-to-master request crosses one of two WAN proxies (test/support/wan-proxy.ts in the bench process, ${WAN_NAME}, bandwidth per proxy and direction)`,
      '- **nodes**: a1, a2 use A, b1, b2 use B, directly (loopback); each has its own working directory and its own user cache (ELTON_CACHE)',
      `- **change**: ${ch ? `b1 rewrote ${ch.files.length} files (seeded pick) with new content of the same size and kind: ${fmtBytes(ch.bytes)}, ${fmtBytes(ch.compressed)} compressed (brotli quality 2, file by file, as elton stores them)` : 'not made'}`,
      '- **WAN B→A / A→B**: bytes through the two proxies (HTTP headers included), by direction; **conns**: new connections through them; ' +
        '**m2m req**: `elton master status --json` `peers[].out.requests` deltas (B→A: made by beta; A→B: made by alpha); ' +
        '**node**: the command\'s own `--json` `transfer` to its master (LAN)',
      '- **naive**: no federation: b1 and b2 each clone straight from A through the proxy in front of A (fresh caches); what every node of B pays without a master of its own',
      `- **verified**: ${info.verified.length ? `${info.verified.join(', ')} (diff -r without .elton against the committed trees)` : 'no'}`,
      '- **reps**: 1 (each step builds on the one before)',
      '',
      '| step | operation | seconds | WAN B→A | WAN A→B | WAN conns | m2m req B→A | m2m req A→B | node req | node up | node down | target | result | note |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
    );
    for (const r of rows) {
      const result = r.target ? (r.error ? 'ERROR' : r.pass ? 'PASS' : 'FAIL') : '';
      const calls = r.calls?.length ? `master-to-master calls (as logged by the callee, in/out bytes): ${r.calls.map(callText).join(', ')}` : '';
      const note = r.error ? `ERROR: ${r.error}` : [r.note, calls, r.peerError && `peer error ${r.peerError}`].filter(Boolean).join('; ');
      const cells = [
        r.step, r.op, fmtSec(r.seconds), fmtBytes(r.wan?.bToA), fmtBytes(r.wan?.aToB), r.wan?.connections ?? '', r.m2m?.beta.requests ?? '', r.m2m?.alpha.requests ?? '',
        r.node?.requests ?? '', fmtBytes(r.node?.bytesUp), fmtBytes(r.node?.bytesDown), r.target ?? '', result, note,
      ];
      out.push(`| ${cells.map((c) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`);
    }
    if (fed23 && naive) {
      out.push('', `Two nodes of B reading the tree: ${fmtBytes(fed23)} across the WAN with federation (steps 2 + 3), ${fmtBytes(naive)} without (naive) — ` +
        `${(naive / fed23).toFixed(2)}× as much; each further node of B adds ${fmtBytes(wanOf('3'))} with federation, ${fmtBytes(naive / 2)} without.`);
    }
    const targeted = rows.filter((r) => r.target);
    if (targeted.length) {
      out.push('', '### Federation targets', '');
      for (const r of targeted) {
        const verdict = r.error ? 'ERROR' : r.pass ? 'PASS' : 'FAIL';
        const moved = r.wan ? r.wan.bToA + r.wan.aToB : null;
        const got = r.error ? r.error.slice(0, 160) : `${fmtBytes(moved)} across the WAN (B→A ${fmtBytes(r.wan.bToA)}, A→B ${fmtBytes(r.wan.aToB)}), ` +
          `${r.m2m.beta.requests} request(s) B→A, ${r.m2m.alpha.requests} A→B, B fetched ${r.m2m.beta.objectsFetched} objects, A fetched ${r.m2m.alpha.objectsFetched}` +
          (r.step === '4' && ch ? `; ${(moved / ch.compressed).toFixed(2)}× the ${fmtBytes(ch.compressed)} of changed files compressed, ${r.m2m.beta.objectsSent} objects sent, ${r.m2m.beta.versionsForwarded} version forwarded` : '');
        out.push(`- ${verdict}: step ${r.step} ${r.op}: ${r.target} — got ${got}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
