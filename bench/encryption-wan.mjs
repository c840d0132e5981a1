// Encryption through a master over a WAN: a plain master and an `--encrypted` one, side by side in one run, each reached by the
// CLI through an emulated 100 ms RTT link; a cold commit, a commit after 1% of the files changed, and a cold clone, with what
// each costs in seconds, requests and bytes. An encrypted master holds ciphertext only, so it gets no tree deltas on a push and
// cannot send a tree closure on a clone (the client walks the trees itself, one level per request): this measures that cost.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { liveServers, runAsync, startDaemon, wanProxy } from './support.mjs';
import { changeFiles } from './workload.mjs';

/**
 * The link of this section: 100 ms RTT, 80 Mbit/s per direction (a transatlantic office link), not the bench's default
 * 250 ms / 200 Mbit/s; BENCH_WAN_RTT_MS and BENCH_WAN_MBIT override both, for trying the harness quickly.
 */
const LINK = { rttMs: Number(process.env.BENCH_WAN_RTT_MS || 100), mbitPerSec: Number(process.env.BENCH_WAN_MBIT || 80) };
const LINK_NAME = `${LINK.rttMs} ms RTT, ${LINK.mbitPerSec} Mbit/s`;
/** Target, for the cold commit only: encryption costs at most 15% of the wall time through the WAN. */
const MAX_RATIO = 1.15;
/** At least this many reps: a 15% threshold needs a median of paired ratios, not one sample. */
const MIN_REPS = 5;
/** The share of the files the second commit rewrites (seeded, the same new bytes in both modes). */
const CHANGED_SHARE = 0.01;
const TREE = 'bench';
const MODES = ['plain', 'encrypted'];
const OPS = { cold: 'cold commit', incremental: 'commit after 1% changed', clone: 'cold clone (fresh cache)' };
const READY = /elton master listening on (https?:\/\/(\S+?):(\d+))\s/;
/** The master's request log line: TIME CLIENT WHO [peer:NAME] METHOD PATH STATUS MSms in=N out=N. */
const LOG_LINE = /^(\S+) (\S+) \S+(?: (peer:\S+))? ([A-Z]+) (\S+) (\d+) ([\d.]+)ms in=(\d+) out=(\d+)$/;
/** How long to wait for the master's log to show a command's last requests (its stdout may trail the client's exit). */
const LOG_SETTLE_MS = 2000;

/** Tree levels under `root` (the root's tree is level 1) and the number of trees (directories, root included). */
function treeShape(root) {
  let levels = 0;
  let trees = 0;
  const walk = (dir, depth) => {
    trees++;
    levels = Math.max(levels, depth);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory() && e.name !== '.elton') walk(path.join(dir, e.name), depth + 1);
  };
  walk(root, 1);
  return { levels, trees };
}

/** The trees a change to `files` rewrites: every directory on their paths, the root included. */
function treesAbove(files) {
  const dirs = new Set(['']);
  for (const f of files) for (let d = path.dirname(f); d !== '.'; d = path.dirname(d)) dirs.add(d);
  return dirs.size;
}

/**
 * Runs the section on workload `wl` (the small tree at scale ×0.1: 2,000 files) in scratch directory `dir`; returns
 * {rows, markdown}. ctx: {elton, env, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes}.
 */
export async function benchEncryptionWan(wl, dir, ctx) {
  const { elton, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes } = ctx;
  const reps = Math.max(MIN_REPS, ctx.reps);
  const rows = Object.fromEntries(Object.entries(OPS).map(([k, op]) => [k, { op, plain: [], encrypted: [] }])); // per op and mode: one sample per rep
  const info = { shape: treeShape(wl.dir), changed: null, changedTrees: null, verified: 0, load: { start: os.loadavg()[0] } };
  const { track, untrack, stopAll } = liveServers();
  const keyFile = path.join(dir, 'bench.key');
  // No key in the environment unless the mode needs one; no KMS lookups; every command gets its own user cache below.
  const baseEnv = { ...ctx.env, ELTON_KMS: 'off' };
  for (const k of ['ELTON_KEYFILE', 'ELTON_PASSPHRASE', 'ELTON_NEW_PASSPHRASE', 'ELTON_CACHE']) delete baseEnv[k];
  const modeEnv = (mode, cache) => ({ ...baseEnv, ELTON_CACHE: cache, ...(mode === 'encrypted' ? { ELTON_KEYFILE: keyFile } : {}) });
  const eltonRun = (args, { cwd = dir, env = baseEnv } = {}) => runAsync([process.execPath, elton, ...args], { cwd, env });
  const mustOk = (r, what) => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`);
    return r;
  };
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  /** Alternates which mode goes first, so a slow patch of the machine hits both. */
  const order = (i) => (i % 2 === 0 ? MODES : [...MODES].reverse());
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  let setupError = null;

  /**
   * One rep of one mode: a fresh master (plain or --encrypted) behind a fresh WAN proxy, a fresh copy of the tree, then the three
   * timed steps. Nothing is deleted before the section ends: creating 2,000 files soon after deleting others is slow at random
   * on this machine's ext4 (see bench/encryption.mjs), and the clone's time must not carry that.
   */
  const rep = async (mode, i) => {
    const base = path.join(dir, `${mode}-${i}`);
    const calls = []; // the master's request log: {method, path, status, bytesIn, bytesOut}
    const master = track(await startDaemon([process.execPath, elton, 'master', '--data', path.join(base, 'master'), '--listen', '127.0.0.1:0', ...(mode === 'encrypted' ? ['--encrypted'] : [])], {
      env: { ...baseEnv, ELTON_CACHE: path.join(base, 'cache-master') }, ready: READY,
      onLine: (line) => {
        const l = LOG_LINE.exec(line);
        if (l) calls.push({ method: l[4], path: l[5], status: Number(l[6]), bytesIn: Number(l[8]), bytesOut: Number(l[9]) });
      },
    }));
    const proxy = track(await startProxy({ host: master.match[2], port: Number(master.match[3]) }));
    try {
      const ws = path.join(base, 'ws');
      freshCopy(fs.realpathSync(wl.dir), ws);
      const wsEnv = modeEnv(mode, path.join(base, 'cache-ws'));
      const init = ['init', '--remote', proxy.url, '--tree', TREE, '--json', ...(mode === 'encrypted' ? ['--encrypt', '--key-source', `keyfile:${keyFile}`] : [])];
      const j = parseJson(mustOk(await eltonRun(init, { cwd: ws, env: wsEnv }), `elton init (${mode})`).stdout);
      if ((mode === 'encrypted') !== !!j.encryption?.length) throw new Error(`elton init (${mode}) says encryption=${JSON.stringify(j.encryption ?? null)}`);

      /** Runs one timed step; counts the proxy's new connections and the master's log around it; step.check(json) validates the result and returns a note. */
      const step = async (key, run, check) => {
        mustOk(await runAsync(['sync']), 'sync');
        const c0 = calls.length;
        const conns0 = proxy.stats.connections;
        const r = mustOk(await run(), `${OPS[key]} (${mode})`);
        const j = parseJson(r.stdout);
        if (!j.transfer) throw new Error(`${OPS[key]} (${mode}): no transfer in ${JSON.stringify(j).slice(0, 200)}`);
        const deadline = Date.now() + LOG_SETTLE_MS;
        while (calls.length - c0 < j.transfer.requests && Date.now() < deadline) await sleep(20);
        const sample = {
          seconds: r.seconds, ...j.transfer,
          conns: proxy.stats.connections - conns0,
          calls: calls.slice(c0), note: check(j),
        };
        rows[key][mode].push(sample);
        log(`  encwan ${mode.padEnd(9)} rep ${i + 1} ${OPS[key].padEnd(26)} ${fmtSec(r.seconds)} s  ${j.transfer.requests} req  up ${fmtBytes(j.transfer.bytesUp)}  down ${fmtBytes(j.transfer.bytesDown)}  conns ${sample.conns}`);
      };

      await step('cold', () => eltonRun(['commit', '-m', 'cold', '--json'], { cwd: ws, env: wsEnv }), (c) => {
        if (c.pending || c.version !== 1 || c.files !== wl.files) throw new Error(`cold commit (${mode}): expected ${TREE}@1 with ${wl.files} files on the master, got ${JSON.stringify(c).slice(0, 200)}`);
        return `${c.files} files, ${c.newObjects} objects, ${fmtBytes(c.newBytes)} stored`;
      });
      // the same files get the same new bytes in both modes and every rep (seeded)
      const changed = changeFiles(ws, CHANGED_SHARE);
      info.changed ??= changed;
      info.changedTrees ??= treesAbove(changed.files);
      await step('incremental', () => eltonRun(['commit', '-m', '1% changed', '--json'], { cwd: ws, env: wsEnv }), (c) => {
        if (c.pending || c.version !== 2 || c.hashedFiles !== changed.files.length) throw new Error(`commit after the change (${mode}): expected ${TREE}@2 hashing ${changed.files.length} files, got ${JSON.stringify(c).slice(0, 200)}`);
        return `${c.newObjects} new objects, ${fmtBytes(c.newBytes)} stored`;
      });
      const dest = path.join(base, 'clone');
      await step('clone', () => eltonRun(['clone', proxy.url, `${TREE}@latest`, dest, '--json'], { env: modeEnv(mode, path.join(base, 'cache-clone')) }), (c) => {
        if (c.version !== 2 || c.files !== wl.files) throw new Error(`clone (${mode}): expected ${TREE}@2 with ${wl.files} files, got ${JSON.stringify(c).slice(0, 200)}`);
        if (verifyTree(ws, dest)) info.verified++;
        return `${c.files} files, fetched ${c.fetched?.objects ?? '?'} objects ${fmtBytes(c.fetched?.bytes)}`;
      });
    } finally {
      await untrack(proxy);
      await untrack(master);
    }
  };

  let startProxy;
  try {
    if (!fs.existsSync(elton)) throw new Error(`${elton} not found (run npm run build?)`);
    startProxy = await wanProxy(LINK);
    mustOk(await eltonRun(['key', 'generate', keyFile, '--json']), 'elton key generate');
    for (let i = 0; i < reps; i++) for (const mode of order(i)) await rep(mode, i);
  } catch (e) {
    setupError = e.message;
    log(`  encwan ERROR ${e.message}`);
  } finally {
    await stopAll();
  }
  info.load.end = os.loadavg()[0];

  // ---- medians and paired ratios, by operation
  const summary = Object.values(rows).map((row) => {
    const n = Math.min(row.plain.length, row.encrypted.length);
    const s = { op: row.op, reps: n };
    if (!n) return { ...s, error: setupError ?? 'not run' };
    for (const mode of MODES) {
      const xs = row[mode].slice(0, n);
      const field = (k) => median(xs.map((x) => x[k]));
      const range = (k) => {
        const v = xs.map((x) => x[k]);
        return Math.min(...v) === Math.max(...v) ? null : `${Math.min(...v)}–${Math.max(...v)}`;
      };
      s[mode] = {
        seconds: field('seconds'), times: xs.map((x) => x.seconds), requests: field('requests'), bytesUp: field('bytesUp'), bytesDown: field('bytesDown'), conns: field('conns'),
        requestsRange: range('requests'), calls: xs[xs.length - 1].calls, note: xs[xs.length - 1].note,
      };
    }
    s.ratios = row.plain.slice(0, n).map((p, i) => row.encrypted[i].seconds / p.seconds);
    s.ratio = median(s.ratios);
    s.ratioOfMedians = s.encrypted.seconds / s.plain.seconds;
    if (n < reps && setupError) s.error = `${n} of ${reps} reps, then: ${setupError}`;
    return s;
  });
  const cold = summary.find((s) => s.op === OPS.cold);
  cold.target = `encrypted/plain ≤ ${MAX_RATIO.toFixed(2)}`;
  cold.pass = !cold.error && cold.ratio <= MAX_RATIO;
  for (const s of summary) {
    if (!s.plain) continue;
    log(`  encwan ${s.op.padEnd(26)} plain ${fmtSec(s.plain.seconds)} s  encrypted ${fmtSec(s.encrypted.seconds)} s  ratio ${s.ratio.toFixed(3)}` +
      `  req ${s.plain.requests} / ${s.encrypted.requests}  up ${fmtBytes(s.plain.bytesUp)} / ${fmtBytes(s.encrypted.bytesUp)}  down ${fmtBytes(s.plain.bytesDown)} / ${fmtBytes(s.encrypted.bytesDown)}` +
      `${s.target ? `  ${s.target} ${s.pass ? 'PASS' : 'FAIL'}` : ''}`);
  }
  return { rows: summary, info, markdown: render() };

  function render() {
    const out = ['', `### Through a master over a WAN (${LINK_NAME})`, ''];
    const cell = (c) => String(c ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
    const line = (cells) => out.push(`| ${cells.map(cell).join(' | ')} |`);
    const ch = info.changed;
    const { levels, trees } = info.shape;
    out.push(
      `- **tree**: ${wl.files} files, ${fmtBytes(wl.bytes)} (bench/workload.mjs small tree at scale ×0.1), ${trees} directories in ${levels} levels of trees (the root's included)`,
      `- **masters**: \`elton master --data DIR\` (plain) and \`elton master --data DIR --encrypted\`, a new one on a new data directory for every rep, on loopback; ` +
        `the CLI reaches each through a WAN proxy of its own (test/support/wan-proxy.ts in the bench process: ${LINK_NAME} per direction, one RTT of handshake per new connection)`,
      '- **plain**: `elton init --remote PROXY --tree bench`; **encrypted**: the same with `--encrypt --key-source keyfile:KEY` (the keyring goes to the master), ' +
        'every command with `ELTON_KEYFILE=KEY`; both with `ELTON_KMS=off`',
      `- **steps**, per rep and mode: (1) \`elton commit\` of a fresh copy of the tree (init untimed); (2) ${ch ? `${ch.files.length} files (1%, seeded: the same new bytes in both modes) rewritten with new content of the same size and kind, ` +
        `${fmtBytes(ch.bytes)}, ${fmtBytes(ch.compressed)} compressed (brotli q2, file by file), in ${info.changedTrees} directories counting their ancestors and the root` : '1% of the files rewritten'}, then \`elton commit\`; ` +
        `(3) \`elton clone PROXY bench@latest DIR\` with a new, empty ELTON_CACHE, verified with \`diff -r\` (\`.elton\` excluded) against the workspace${info.verified ? ` (${info.verified} clones verified)` : ''}`,
      '- **requests, up, down**: the command\'s `--json` `transfer` (HTTP bytes on the sockets, headers included); **conns**: new connections through the proxy (each pays a handshake RTT); ' +
        'the requests by endpoint below are from the master\'s log',
      `- **reps**: ${reps} per mode, plain and encrypted back to back in each rep (which goes first alternates); seconds, requests and bytes are medians; ` +
        '**encrypted/plain**: the median of the reps\' paired ratios; **of medians**: encrypted median / plain median',
      `- **load average** (1 min) at the start / end: ${info.load.start.toFixed(2)} / ${(info.load.end ?? os.loadavg()[0]).toFixed(2)} on ${os.availableParallelism()} CPUs`,
      '',
      '| operation | plain s | encrypted s | encrypted/plain | of medians | requests plain / encrypted | up plain / encrypted | down plain / encrypted | conns | target | result | note |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
    );
    const both = (s, k, f = (x) => x) => `${f(s.plain[k])} / ${f(s.encrypted[k])}`;
    const reqs = (s, m) => `${s[m].requests}${s[m].requestsRange ? ` (${s[m].requestsRange})` : ''}`;
    for (const s of summary) {
      const result = s.target ? (s.error ? 'ERROR' : s.pass ? 'PASS' : 'FAIL') : '';
      if (!s.plain) {
        line([s.op, '', '', '', '', '', '', '', '', s.target ?? '', result, `ERROR: ${s.error}`]);
        continue;
      }
      const secs = (m) => `${fmtSec(s[m].seconds)} (×${s[m].times.length})`;
      line([s.op, secs('plain'), secs('encrypted'), s.ratio.toFixed(3), s.ratioOfMedians.toFixed(3), `${reqs(s, 'plain')} / ${reqs(s, 'encrypted')}`,
        both(s, 'bytesUp', fmtBytes), both(s, 'bytesDown', fmtBytes), both(s, 'conns'), s.target ?? '', result,
        s.error ? `ERROR: ${s.error}` : `plain: ${s.plain.note}; encrypted: ${s.encrypted.note}`]);
    }
    const measured = summary.filter((s) => s.plain);
    if (measured.length) {
      out.push('', `Requests by endpoint (the master's log, last rep; count, bytes in / out):`, '');
      const endpoint = (c) => `${c.method} ${c.path.replace(/^\/v1\//, '').replace(/^trees\/[^/]+\/versions\/\d+$/, 'versions/N').replace(/^trees\/[^/]+\//, '')}${c.status >= 400 ? ` ${c.status}` : ''}`;
      const byEndpoint = (calls) => {
        const m = new Map();
        for (const c of calls) {
          const k = endpoint(c);
          const e = m.get(k) ?? { n: 0, in: 0, out: 0 };
          e.n++;
          e.in += c.bytesIn;
          e.out += c.bytesOut;
          m.set(k, e);
        }
        return [...m].map(([k, e]) => `${k} ×${e.n} (${fmtBytes(e.in)} / ${fmtBytes(e.out)})`).join(', ');
      };
      for (const s of measured) for (const mode of MODES) out.push(`- ${s.op}, ${mode}: ${byEndpoint(s[mode].calls) || '(none logged)'}`);
    }
    out.push('', '#### Targets', '');
    out.push(`- ${cold.error ? 'ERROR' : cold.pass ? 'PASS' : 'FAIL'}: ${cold.op} through the WAN: ${cold.target} — ` +
      (cold.plain ? `${cold.ratio.toFixed(3)} (medians ${fmtSec(cold.encrypted.seconds)} s vs ${fmtSec(cold.plain.seconds)} s)` : cold.error));
    for (const s of measured.filter((x) => !x.target)) {
      out.push(`- no target: ${s.op}: encrypted/plain ${s.ratio.toFixed(3)} (medians ${fmtSec(s.encrypted.seconds)} s vs ${fmtSec(s.plain.seconds)} s), ` +
        `${signed(s.encrypted.requests - s.plain.requests)} requests, ${signedBytes(s.encrypted.bytesUp - s.plain.bytesUp)} up, ${signedBytes(s.encrypted.bytesDown - s.plain.bytesDown)} down`);
    }
    const coldRow = measured.find((s) => s.op === OPS.cold);
    const inc = measured.find((s) => s.op === OPS.incremental);
    const clone = measured.find((s) => s.op === OPS.clone);
    /** Bytes the master received on one endpoint in a step (its log, last rep), by mode, and the encrypted − plain difference. */
    const received = (s, re) => {
      const sum = (m) => s[m].calls.filter((c) => re.test(c.path)).reduce((n, c) => n + c.bytesIn, 0);
      return { plain: sum('plain'), encrypted: sum('encrypted'), more: sum('encrypted') - sum('plain') };
    };
    const PACKS = /\/packs$/;
    const VERSIONS = /\/versions$/;
    if (measured.length) out.push('', '#### Why', '');
    if (coldRow) {
      const packs = received(coldRow, PACKS);
      const versions = received(coldRow, VERSIONS);
      out.push(`- **${coldRow.op}**: ${signed(coldRow.encrypted.requests - coldRow.plain.requests)} request (the keyring, which every command reads from the remote, so that a removed wrapping or writer counts at once); the pack is ${signedBytes(packs.more)} (36 bytes of sealing per object, then Padmé padding), and the version request ${signedBytes(versions.more)}: ` +
        'it lists every id the version reaches (base64 in the JSON body), since an encrypted master cannot walk sealed trees to check that the version is complete.');
    }
    if (inc) {
      const packs = received(inc, PACKS);
      const versions = received(inc, VERSIONS);
      out.push(`- **${inc.op}**: a plain master takes each changed tree as a delta against the parent's tree, which it holds; a delta is computed on plaintext, ` +
        'and an encrypted master could not rebuild a sealed tree from one, so the encrypted client sends every changed tree whole and sealed ' +
        `(${info.changedTrees ?? '?'} trees here: the ${ch?.files.length ?? '?'} files' directories, their ancestors and the root), and its version request lists the ids the version adds. ` +
        `The chunks are the same in both${ch ? ` (${fmtBytes(ch.compressed)} of changed files compressed)` : ''}. ` +
        `Pack: ${fmtBytes(packs.plain)} plain, ${fmtBytes(packs.encrypted)} encrypted (${signedBytes(packs.more)}, the whole trees); version request ${signedBytes(versions.more)}; ` +
        `in all ${signedBytes(inc.encrypted.bytesUp - inc.plain.bytesUp)} up (${(inc.encrypted.bytesUp / inc.plain.bytesUp).toFixed(2)}×), in ${inc.encrypted.requests} requests against ${inc.plain.requests} (the keyring read), ` +
        `which at ${LINK.mbitPerSec} Mbit/s is ${((inc.encrypted.bytesUp - inc.plain.bytesUp) * 8 / (LINK.mbitPerSec * 1e3)).toFixed(1)} ms.`);
    }
    if (clone) {
      const extra = clone.encrypted.requests - clone.plain.requests;
      // one objects request per level of trees instead of one trees-closure, plus the keyring: +levels in all
      const expected = levels;
      out.push(`- **${clone.op}**: a plain master sends every tree the version reaches in one \`trees-closure\` request; an encrypted master cannot read its trees, ` +
        `so the client fetches the root's tree, reads it, fetches the next level's, and so on: one request, at least one round trip (${LINK.rttMs} ms), per level of trees. ` +
        `With ${levels} levels, and the keyring read, that is ${levels} + 1 − 1 (no closure) = ${expected} requests more than plain, ` +
        `≈ ${fmtSec((expected * LINK.rttMs) / 1000)} s of round trips at ${LINK.rttMs} ms. Measured: ${signed(extra)} requests, ${signed(clone.encrypted.conns - clone.plain.conns)} connections, ` +
        `${signedSec(clone.encrypted.seconds - clone.plain.seconds)}${extra > expected ? ` — MORE THAN THE DEPTH ACCOUNTS FOR (${extra} > ${expected}): look at the requests by endpoint above` : ''}. ` +
        `The bytes down are the same objects, sealed (36 bytes more each, then Padmé padding).`);
    }
    return out.join('\n') + '\n';
  }

  function signed(n) {
    return `${n >= 0 ? '+' : '−'}${Math.abs(n)}`;
  }

  function signedSec(n) {
    return `${n >= 0 ? '+' : '−'}${fmtSec(Math.abs(n))} s`;
  }

  function signedBytes(n) {
    return `${n >= 0 ? '+' : '−'}${fmtBytes(Math.abs(n))}`;
  }
}
