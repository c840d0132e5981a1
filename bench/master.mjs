// Master benchmark: elton push and clone against a master, direct and through an emulated WAN link, next to rclone to s3rver.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const PROXY_MODULE = path.join(REPO_ROOT, 'dist', 'test', 'support', 'wan-proxy.js'); // built by `npm run build`

/** The emulated link: env overrides exist for trying the harness quickly, the documented figures use the defaults. */
export const WAN = {
  rttMs: Number(process.env.BENCH_WAN_RTT_MS || 250),
  mbitPerSec: Number(process.env.BENCH_WAN_MBIT || 200),
};
/** Target for a transfer over the WAN: bytes moved at the link rate, plus this many round trips. */
const TARGET_RTTS = 8;
/** rclone makes at least one request per file: through the WAN it copies a subset of this many files. */
const RCLONE_WAN_FILES = Number(process.env.BENCH_RCLONE_FILES || 1000);
/** rclone's own defaults (4 transfers, 8 checkers), and the same with many parallel requests. */
const RCLONE_VARIANTS = [
  { name: 'rclone copy', flags: [] },
  { name: 'rclone copy --transfers 32', flags: ['--transfers', '32', '--checkers', '32'] },
];
const MASTER_START_TIMEOUT_MS = 60_000;
const COMMAND_TIMEOUT_MS = 60 * 60 * 1000;

/** Runs argv without blocking the event loop (the proxy and s3rver live in this process); resolves {code, stdout, stderr, seconds}. */
function runAsync(argv, { cwd, env, timeout = COMMAND_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    const finish = (code, extra = '') => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: extra + Buffer.concat(err).toString('utf8'), seconds });
    };
    child.on('error', (e) => finish(-1, `${e.message}\n`));
    child.on('close', (code, signal) => finish(code ?? -1, signal ? `killed by ${signal}\n` : ''));
  });
}

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

/** Starts s3rver in this process with one empty bucket; counts requests and wire bytes at the server. */
async function startS3(dir) {
  const { default: S3rver } = await import('s3rver');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: 'bench' }] });
  const { port } = await s3.run();
  const sockets = new Set();
  const done = { requests: 0, bytesUp: 0, bytesDown: 0 };
  const methods = {}; // e.g. {PUT: 1000, HEAD: 1000, GET: 1, 'error responses': 0}
  s3.httpServer.on('request', (req, res) => {
    done.requests++;
    methods[req.method] = (methods[req.method] ?? 0) + 1;
    res.on('finish', () => {
      if (res.statusCode >= 400) methods[`HTTP ${res.statusCode}`] = (methods[`HTTP ${res.statusCode}`] ?? 0) + 1;
    });
  });
  s3.httpServer.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      done.bytesUp += socket.bytesRead;
      done.bytesDown += socket.bytesWritten;
    });
  });
  return {
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    /** Requests per method, and error responses per status. */
    methods: () => Object.entries(methods).map(([k, v]) => `${k} ${v}`).join(', '),
    /** What crossed the wire so far, seen from the server (up = towards it). */
    transfer() {
      const t = { ...done };
      for (const s of sockets) {
        t.bytesUp += s.bytesRead;
        t.bytesDown += s.bytesWritten;
      }
      return t;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await s3.close();
    },
  };
}

/** Copies every k-th file (sorted paths) of `src` to `dest`, so the subset spans all directories and sizes. */
function makeSubset(src, dest, count) {
  const files = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(src, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) files.push(r);
    }
  };
  walk('');
  files.sort();
  const step = Math.max(1, Math.floor(files.length / count));
  const picked = files.filter((_, i) => i % step === 0).slice(0, count);
  fs.rmSync(dest, { recursive: true, force: true });
  let bytes = 0;
  for (const r of picked) {
    fs.mkdirSync(path.dirname(path.join(dest, r)), { recursive: true });
    fs.copyFileSync(path.join(src, r), path.join(dest, r));
    bytes += fs.statSync(path.join(src, r)).size;
  }
  return { files: picked.length, bytes };
}

/**
 * Runs the master benchmark on workload `wl` in scratch directory `dir` and returns {rows, markdown}.
 * ctx: {elton, env, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes, have}.
 */
export async function benchMaster(wl, dir, ctx) {
  const { elton, env, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes } = ctx;
  const { startWanProxy } = await import(pathToFileURL(PROXY_MODULE).href);
  const rows = [];
  const rateBytes = (WAN.mbitPerSec * 1e6) / 8;
  const linkName = `WAN ${WAN.rttMs} ms, ${WAN.mbitPerSec} Mbit/s`;
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
  const proxyTo = async (target) => {
    const p = await startWanProxy(target, WAN);
    return track({ ...p, stop: () => p.close(), url: p.url() });
  };
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
        return { master, proxy: key === 'wan' ? await proxyTo(master) : null };
      },
      run: ({ master, proxy }) => eltonRun(['clone', proxy ? proxy.url : master.url, 'bench@latest', dest, '--json'], dir),
      measure: (r, { proxy }) => {
        const j = parseJson(r.stdout);
        return { ...j.transfer, wire: wireOf(proxy), note: [`files=${j.files ?? '?'}`, verifyTree(src, dest)].filter(Boolean).join(' ') };
      },
      teardown: async ({ proxy }) => {
        if (proxy) await untrack(proxy);
        fs.rmSync(dest, { recursive: true, force: true });
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
    rows.push({ tool: 'rclone', op: '(all)', link: '', files: null, times: [], error: 'rclone not installed' });
  } else {
    const rcloneEnv = (endpoint) => {
      const e = {
        ...env,
        RCLONE_CONFIG: '/dev/null',
        RCLONE_CONFIG_S3_TYPE: 's3',
        RCLONE_CONFIG_S3_PROVIDER: 'Other',
        RCLONE_CONFIG_S3_ENDPOINT: endpoint,
        RCLONE_CONFIG_S3_ACCESS_KEY_ID: 'S3RVER',
        RCLONE_CONFIG_S3_SECRET_ACCESS_KEY: 'S3RVER',
        RCLONE_CONFIG_S3_REGION: 'us-east-1',
        RCLONE_CONFIG_S3_FORCE_PATH_STYLE: 'true',
      };
      delete e.AWS_CA_BUNDLE;
      return e;
    };
    const copy = (variant, src, label, files) =>
      measure(variant.name.split(' ')[0], variant.name.split(' ').slice(1).join(' '), label, files, {
        setup: async () => {
          fs.rmSync(path.join(src, '.elton'), { recursive: true, force: true }); // left by the elton pushes
          const s3Dir = path.join(dir, 's3');
          const s3 = track(await startS3(s3Dir));
          const proxy = label === 'direct' ? null : await proxyTo(s3);
          return { s3, s3Dir, proxy };
        },
        run: ({ s3, proxy }) => runAsync(['rclone', 'copy', ...variant.flags, src, 's3:bench'], { env: rcloneEnv(proxy ? proxy.url : s3.url) }),
        measure: async (r, { s3, proxy }) => {
          const t = s3.transfer();
          const methods = s3.methods();
          const listed = await runAsync(['rclone', 'size', '--json', 's3:bench'], { env: rcloneEnv(s3.url) });
          const count = listed.code === 0 ? JSON.parse(listed.stdout).count : '?';
          if (count !== files) throw new Error(`bucket holds ${count} objects, expected ${files}`);
          // rclone retries the whole copy (--retries 3) after errors: say so, since it inflates the requests
          const errors = r.stderr.split('\n').filter((l) => /\bERROR\b/.test(l));
          const retried = errors.length ? `; ${errors.length} rclone errors, e.g. ${errors[0].replace(/^.*?ERROR\s*:\s*/, '').slice(0, 160)}` : '';
          return { ...t, wire: wireOf(proxy), note: `${count} objects in the bucket; ${methods}${retried}` };
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
    let s3rver = '?';
    try {
      s3rver = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'node_modules', 's3rver', 'package.json'), 'utf8')).version;
    } catch {}
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
        r.tool, r.op, r.link === 'WAN' ? linkName : r.link, r.files ?? '', secs, r.requests ?? '', fmtBytes(r.bytesUp), fmtBytes(r.bytesDown),
        r.wire?.connections ?? '', r.target != null ? `${fmtSec(r.target)} s` : '', result, r.error ? `ERROR: ${r.error}` : r.note || '',
      ];
      out.push(`| ${cells.map((c) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`);
    }
    return out.join('\n') + '\n';
  }
}

const firstLine = (s) => s.trim().split('\n')[0];
