// Master benchmark: elton push and clone against a master, direct and through an emulated WAN link, next to rclone to s3rver.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RCLONE_VARIANTS, RCLONE_WAN_FILES, WAN, WAN_NAME, makeSubset, rcloneEnv, rcloneErrors, runAsync, s3rverVersion, startS3, wanProxy } from './support.mjs';

/** Target for a transfer over the WAN: bytes moved at the link rate, plus this many round trips. */
const TARGET_RTTS = 8;
const MASTER_START_TIMEOUT_MS = 60_000;

/** Starts `elton master` on a fresh data directory and resolves once it prints its URL. */
function startMaster(elton, dataDir, env) {
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, [elton, 'master', '--data', dataDir, '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      child.kill('SIGKILL');
      reject(new Error(`elton master ${why}: ${(stderr.trim() || stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`));
    };
    const timer = setTimeout(() => fail(`did not print its URL within ${MASTER_START_TIMEOUT_MS / 1000} s`), MASTER_START_TIMEOUT_MS);
    const early = (code) => fail(`exited ${code} before listening`);
    child.on('error', (e) => fail(e.message));
    child.on('close', early);
    child.stdout.on('data', function onData(d) {
      stdout = (stdout + d).slice(-4000); // keep reading: a full pipe would stall the master
      const m = /elton master listening on (https?:\/\/(\S+?):(\d+))\s/.exec(stdout);
      if (!m) return;
      child.stdout.off('data', onData);
      child.stdout.resume();
      child.off('close', early);
      clearTimeout(timer);
      resolve({
        url: m[1],
        host: m[2],
        port: Number(m[3]),
        async stop() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(kill);
        },
      });
    });
  });
}

/**
 * Runs the master benchmark on workload `wl` in scratch directory `dir` and returns {rows, markdown}.
 * ctx: {elton, env, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes, have}.
 */
export async function benchMaster(wl, dir, ctx) {
  const { elton, env, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes } = ctx;
  const startProxy = await wanProxy();
  const rows = [];
  const rateBytes = (WAN.mbitPerSec * 1e6) / 8;
  const live = []; // masters, s3rvers and proxies to stop whatever happens
  const stopAll = async () => {
    for (const s of live.splice(0).reverse()) await s.stop().catch(() => {});
  };
  const track = (s) => {
    live.push(s);
    return s;
  };
  const untrack = async (s) => {
    live.splice(live.indexOf(s), 1);
    await s.stop();
  };
  const proxyTo = async (target) => track(await startProxy(target));
  const eltonRun = (args, cwd) => runAsync([process.execPath, elton, ...args], { cwd, env });
  const mustOk = (r, what) => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`);
    return r;
  };

  /**
   * Times step.run() `reps` times (median). step.setup(i) runs untimed before and returns a context
   * passed to run and to step.measure(result, context) -> {requests, bytesUp, bytesDown, wire, note}.
   */
  const measure = async (tool, op, link, files, step) => {
    const row = { tool, op, link, files, seconds: null, times: [], requests: null, bytesUp: null, bytesDown: null, wire: null, note: '' };
    try {
      for (let i = 0; i < reps; i++) {
        const c = await step.setup(i);
        const r = await step.run(c);
        mustOk(r, `${tool} ${op}`);
        row.times.push(r.seconds);
        Object.assign(row, await step.measure(r, c));
        await step.teardown?.(c, i === reps - 1);
      }
      row.seconds = [...row.times].sort((a, b) => a - b)[Math.floor((row.times.length - 1) / 2)];
      if (link !== 'direct') {
        const moved = (row.bytesUp ?? 0) + (row.bytesDown ?? 0);
        row.target = (moved * 8) / (WAN.mbitPerSec * 1e6) + (TARGET_RTTS * WAN.rttMs) / 1000;
        row.pass = row.seconds <= row.target;
      }
    } catch (e) {
      row.error = e.message;
    }
    rows.push(row);
    const t = row.error ? `ERROR ${row.error}` : `${fmtSec(row.seconds)} s  ${row.requests ?? '?'} req  up ${fmtBytes(row.bytesUp)}  down ${fmtBytes(row.bytesDown)}` +
      (row.target != null ? `  target ${fmtSec(row.target)} s ${row.pass ? 'PASS' : 'FAIL'}` : '');
    log(`  master ${`${tool} ${op}`.padEnd(40)} ${link.padEnd(7)} ${t}`);
    return row;
  };
  const wireOf = (p) => (p ? { connections: p.stats.connections, bytesUp: p.stats.bytesUp, bytesDown: p.stats.bytesDown } : null);

  const ws = path.join(dir, 'ws');
  const subsetWs = path.join(dir, 'subset');
  const dest = path.join(dir, 'clone');
  let subset = null;
  try {
    freshCopy(wl.dir, ws);
    subset = makeSubset(wl.dir, subsetWs, RCLONE_WAN_FILES);
  } catch (e) {
    rows.push({ tool: 'elton', op: '(setup)', link: '', files: wl.files, times: [], error: e.message });
    return { rows, markdown: render() };
  }

  // ---- elton push (cold, to a fresh master each time) and clone, direct and through the WAN
  const masterFor = { direct: null, wan: null }; // the last master pushed to, kept for the clone
  const push = (tree, label, files, key) =>
    measure('elton', 'push (cold commit)', label, files, {
      setup: async (i) => {
        if (masterFor[key]) await untrack(masterFor[key]);
        const master = track(await startMaster(elton, path.join(dir, `master-${key}-${i}`), env));
        masterFor[key] = master;
        const proxy = key === 'wan' ? await proxyTo(master) : null;
        fs.rmSync(path.join(tree, '.elton'), { recursive: true, force: true });
        mustOk(await eltonRun(['init', '--remote', proxy ? proxy.url : master.url, '--tree', 'bench', '--json'], tree), 'elton init');
        return { master, proxy };
      },
      run: () => eltonRun(['commit', '-m', 'bench', '--json'], tree),
      measure: (r, { proxy }) => {
        const j = parseJson(r.stdout);
        if (j.pending || !j.version) throw new Error(`commit did not reach the master: ${JSON.stringify(j).slice(0, 200)}`);
        return { ...j.transfer, wire: wireOf(proxy), note: `${j.ref} newObjects=${j.newObjects ?? '?'}` };
      },
      teardown: async ({ proxy }) => proxy && (await untrack(proxy)),
    });
  const clone = (label, files, key, src) =>
    measure('elton', 'clone (checkout)', label, files, {
      setup: async () => {
        const master = masterFor[key];
        if (!master) throw new Error('skipped: the push before it failed');
        fs.rmSync(dest, { recursive: true, force: true });
        // A fresh user cache each time: objects once fetched are never fetched again, so a shared one would measure the cache.
        const cache = fs.mkdtempSync(path.join(dir, 'cache-'));
        return { master, proxy: key === 'wan' ? await proxyTo(master) : null, cache };
      },
      run: ({ master, proxy, cache }) => runAsync([process.execPath, elton, 'clone', proxy ? proxy.url : master.url, 'bench@latest', dest, '--json'], { cwd: dir, env: { ...env, ELTON_CACHE: cache } }),
      measure: (r, { proxy }) => {
        const j = parseJson(r.stdout);
        return { ...j.transfer, wire: wireOf(proxy), note: [`files=${j.files ?? '?'}`, verifyTree(src, dest)].filter(Boolean).join(' ') };
      },
      teardown: async ({ proxy, cache }) => {
        if (proxy) await untrack(proxy);
        fs.rmSync(dest, { recursive: true, force: true });
        fs.rmSync(cache, { recursive: true, force: true });
      },
    });

  try {
    await push(ws, 'direct', wl.files, 'direct');
    await push(ws, 'WAN', wl.files, 'wan');
    await clone('direct', wl.files, 'direct', wl.dir);
    await clone('WAN', wl.files, 'wan', wl.dir);
    // the same on the rclone subset, for a like-for-like comparison with rclone through the WAN
    await push(subsetWs, 'direct', subset.files, 'direct');
    await push(subsetWs, 'WAN', subset.files, 'wan');
  } finally {
    await stopAll();
  }

  // ---- rclone to s3rver, direct and through the WAN
  if (!ctx.have('rclone')) {
    rows.push({ tool: 'rclone', op: '(all)', link: '', files: null, times: [], error: 'rclone not installed (or --skip rclone)' });
  } else {
    const copy = (variant, src, label, files) =>
      measure(variant.name.split(' ')[0], variant.name.split(' ').slice(1).join(' '), label, files, {
        setup: async () => {
          fs.rmSync(path.join(src, '.elton'), { recursive: true, force: true }); // left by the elton pushes
          const s3Dir = path.join(dir, 's3');
          const s3 = track(await startS3(s3Dir));
          const proxy = label === 'direct' ? null : await proxyTo(s3);
          return { s3, s3Dir, proxy };
        },
        run: ({ s3, proxy }) => runAsync(['rclone', 'copy', ...variant.flags, src, 's3:bench'], { env: rcloneEnv(env, proxy ? proxy.url : s3.url) }),
        measure: async (r, { s3, proxy }) => {
          const t = s3.transfer();
          const methods = s3.methods();
          const listed = await runAsync(['rclone', 'size', '--json', 's3:bench'], { env: rcloneEnv(env, s3.url) });
          const count = listed.code === 0 ? JSON.parse(listed.stdout).count : '?';
          if (count !== files) throw new Error(`bucket holds ${count} objects, expected ${files}`);
          return { ...t, wire: wireOf(proxy), note: `${count} objects in the bucket; ${methods}${rcloneErrors(r.stderr)}` };
        },
        teardown: async ({ s3, s3Dir, proxy }) => {
          if (proxy) await untrack(proxy);
          await untrack(s3);
          fs.rmSync(s3Dir, { recursive: true, force: true });
        },
      });
    try {
      await copy(RCLONE_VARIANTS[0], ws, 'direct', wl.files);
      for (const v of RCLONE_VARIANTS) {
        await copy(v, subsetWs, 'direct', subset.files);
        await copy(v, subsetWs, 'WAN', subset.files);
      }
    } finally {
      await stopAll();
    }
  }
  return { rows, markdown: render() };

  function render() {
    const rclone = ctx.have('rclone') ? firstLine(ctx.version(['rclone', 'version'])) : 'not installed';
    const s3rver = s3rverVersion();
    const out = ['', `## Master: push and clone, direct and over a WAN (${WAN.rttMs} ms RTT, ${WAN.mbitPerSec} Mbit/s)`, ''];
    out.push(
      `- **tree**: ${wl.name}, ${wl.files} files, ${fmtBytes(wl.bytes)}; subset for rclone over the WAN: ${subset ? `${subset.files} files (every ${Math.floor(wl.files / subset.files)}th), ${fmtBytes(subset.bytes)}` : 'n/a'}`,
      `- **WAN**: test/support/wan-proxy.ts in the bench process, ${WAN.rttMs} ms RTT, ${WAN.mbitPerSec} Mbit/s per direction shared by all connections, one RTT handshake per new connection`,
      `- **target** (WAN rows): (bytes up + bytes down) × 8 / ${WAN.mbitPerSec} Mbit/s + ${TARGET_RTTS} × ${WAN.rttMs} ms`,
      `- **elton**: every push is cold, to a fresh master (\`elton master --data <new dir>\`); requests and bytes are the command's \`--json\` \`transfer\` (bytes on the sockets)`,
      `- **rclone**: ${rclone}, to s3rver ${s3rver} in the bench process (fresh bucket each time); requests and bytes counted at s3rver's HTTP server`,
      `- **reps**: ${reps}, median reported`,
      '',
      '| tool | operation | link | files | seconds | requests | bytes up | bytes down | proxy conns | target | result | note |',
      '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    );
    for (const r of rows) {
      const secs = r.times.length > 1 ? `${fmtSec(r.seconds)} (×${r.times.length})` : fmtSec(r.seconds);
      const result = r.error ? (r.link && r.link !== 'direct' ? 'ERROR' : '') : r.pass == null ? '' : r.pass ? 'PASS' : 'FAIL';
      const cells = [
        r.tool, r.op, r.link === 'WAN' ? WAN_NAME : r.link, r.files ?? '', secs, r.requests ?? '', fmtBytes(r.bytesUp), fmtBytes(r.bytesDown),
        r.wire?.connections ?? '', r.target != null ? `${fmtSec(r.target)} s` : '', result, r.error ? `ERROR: ${r.error}` : r.note || '',
      ];
      out.push(`| ${cells.map((c) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`);
    }
    return out.join('\n') + '\n';
  }
}

const firstLine = (s) => s.trim().split('\n')[0];
