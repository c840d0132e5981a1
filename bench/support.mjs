// Helpers shared by the bench sections that host servers in the bench process: non-blocking child processes, s3rver with traffic counting, the WAN proxy, rclone settings, file subsets.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const PROXY_MODULE = path.join(REPO_ROOT, 'dist', 'test', 'support', 'wan-proxy.js'); // built by `npm run build`
const COMMAND_TIMEOUT_MS = 60 * 60 * 1000;

/** The emulated link: env overrides exist for trying the harness quickly, the documented figures use the defaults. */
export const WAN = {
  rttMs: Number(process.env.BENCH_WAN_RTT_MS || 250),
  mbitPerSec: Number(process.env.BENCH_WAN_MBIT || 200),
};
export const WAN_NAME = `WAN ${WAN.rttMs} ms, ${WAN.mbitPerSec} Mbit/s`;

/** rclone makes at least one request per file: through the WAN it copies a subset of this many files. */
export const RCLONE_WAN_FILES = Number(process.env.BENCH_RCLONE_FILES || 1000);

/** rclone's own defaults (4 transfers, 8 checkers), and the same with many parallel requests. */
export const RCLONE_VARIANTS = [
  { name: 'rclone copy', flags: [] },
  { name: 'rclone copy --transfers 32', flags: ['--transfers', '32', '--checkers', '32'] },
];

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only offers through
 * its legacy provider: without it, any listing of more than 1,000 keys fails with a 500.
 */
export function desAvailable() {
  try {
    crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return true;
  } catch {
    return false;
  }
}

/** Runs argv without blocking the event loop (the proxy and s3rver live in this process); resolves {code, stdout, stderr, seconds}. */
export function runAsync(argv, { cwd, env, timeout = COMMAND_TIMEOUT_MS } = {}) {
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

/**
 * Starts a long-running command (a master, a gateway, a mount) and resolves once a line of its
 * stdout matches `ready`. Every stdout line goes to `onLine` (and is kept when `keepLines`), so a
 * full pipe never stalls the child. Resolves {match, lines, exited, stop(signal)}; `exited`
 * resolves {code, signal, stderr} when the child ends, whoever ended it.
 */
export function startDaemon(argv, { env, cwd, ready, onLine, keepLines = false, timeoutMs = 60_000 } = {}) {
  const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const name = argv.slice(1, 4).map((a) => path.basename(a)).join(' ');
  const lines = [];
  let stderr = '';
  let partial = '';
  let onReady = null;
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  child.stdout.on('data', (d) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop();
    for (const line of parts) {
      if (keepLines) lines.push(line);
      onLine?.(line);
      onReady?.(line);
    }
  });
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  const stop = async (signal = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const r = await exited;
    clearTimeout(kill);
    return r;
  };
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name} ${why}: ${(stderr.trim() || lines.join('\n').trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`));
    };
    const timer = setTimeout(() => fail(`printed no ready line within ${timeoutMs / 1000} s`), timeoutMs);
    child.on('error', (e) => fail(e.message));
    void exited.then(({ code, signal }) => onReady && fail(`exited ${code ?? signal} before it was ready`));
    onReady = (line) => {
      const match = ready.exec(line);
      if (!match) return;
      onReady = null;
      clearTimeout(timer);
      resolve({ child, match, lines, exited, stop });
    };
  });
}

/** s3rver's version, for the report. */
export function s3rverVersion() {
  try {
    return JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'node_modules', 's3rver', 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

/**
 * Starts s3rver in this process on a fresh directory with one empty bucket `bench`, over TLS when
 * `tls` ({key, cert} PEM) is given. Counts requests (per method, and error responses per status) and
 * bytes on the wire at the server: for TLS the raw TCP bytes, record overhead and handshakes included.
 */
export async function startS3(dir, { tls } = {}) {
  const { default: S3rver } = await import('s3rver');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: 'bench' }], ...tls });
  const { port } = await s3.run();
  const sockets = new Set();
  const done = { requests: 0, bytesUp: 0, bytesDown: 0 };
  const methods = {}; // e.g. {PUT: 1000, HEAD: 1000, GET: 1, 'HTTP 404': 1}
  s3.httpServer.on('request', (req, res) => {
    done.requests++;
    methods[req.method] = (methods[req.method] ?? 0) + 1;
    res.on('finish', () => {
      if (res.statusCode >= 400) methods[`HTTP ${res.statusCode}`] = (methods[`HTTP ${res.statusCode}`] ?? 0) + 1;
    });
  });
  // a TLS server emits 'connection' with the plain TCP socket, before the handshake
  s3.httpServer.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      done.bytesUp += socket.bytesRead;
      done.bytesDown += socket.bytesWritten;
    });
  });
  const transfer = () => {
    const t = { ...done };
    for (const s of sockets) {
      t.bytesUp += s.bytesRead;
      t.bytesDown += s.bytesWritten;
    }
    return t;
  };
  const listMethods = (counts) => Object.entries(counts).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ');
  return {
    host: '127.0.0.1',
    port,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    /** Requests per method, and error responses per status, so far. */
    methods: () => listMethods(methods),
    /** What crossed the wire so far, seen from the server (up = towards it). */
    transfer,
    /** Starts counting afresh: returns a function giving {requests, bytesUp, bytesDown, methods} since the call. */
    mark() {
      const t0 = transfer();
      const m0 = { ...methods };
      return () => {
        const t = transfer();
        const m = Object.fromEntries(Object.entries(methods).map(([k, v]) => [k, v - (m0[k] ?? 0)]));
        return { requests: t.requests - t0.requests, bytesUp: t.bytesUp - t0.bytesUp, bytesDown: t.bytesDown - t0.bytesDown, methods: listMethods(m) };
      };
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await s3.close();
    },
  };
}

/**
 * Loads the WAN proxy (test/support/wan-proxy.ts as built into dist/) and returns a starter: target -> {url, stats, stop}.
 * `link` ({rttMs, mbitPerSec}) is the bench's WAN unless a section emulates a link of its own.
 */
export async function wanProxy(link = WAN) {
  if (!fs.existsSync(PROXY_MODULE)) throw new Error(`${path.relative(REPO_ROOT, PROXY_MODULE)} not found (run npm run build?)`);
  const { startWanProxy } = await import(pathToFileURL(PROXY_MODULE).href);
  return async (target) => {
    const p = await startWanProxy(target, link);
    return { ...p, url: p.url(), stop: () => p.close() };
  };
}

/** Environment for rclone to reach s3rver at `endpoint` as the remote `s3:` (no config file, no AWS_CA_BUNDLE). */
export function rcloneEnv(env, endpoint) {
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
}

/** rclone's ERROR lines, summarized: it retries the whole copy (--retries 3) after errors, which inflates the requests. */
export function rcloneErrors(stderr) {
  const errors = stderr.split('\n').filter((l) => /\bERROR\b/.test(l));
  return errors.length ? `; ${errors.length} rclone errors, e.g. ${errors[0].replace(/^.*?ERROR\s*:\s*/, '').slice(0, 160)}` : '';
}

/** Relative paths of the regular files under `dir`, sorted. */
export function listFiles(dir) {
  const files = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) files.push(r);
    }
  };
  walk('');
  return files.sort();
}

/** Copies every k-th file (sorted paths) of `src` to `dest`, so the subset spans all directories and sizes. */
export function makeSubset(src, dest, count) {
  const files = listFiles(src);
  const step = Math.max(1, Math.floor(files.length / count));
  const picked = files.filter((_, i) => i % step === 0).slice(0, count);
  fs.rmSync(dest, { recursive: true, force: true });
  let bytes = 0;
  for (const r of picked) {
    fs.mkdirSync(path.dirname(path.join(dest, r)), { recursive: true });
    fs.copyFileSync(path.join(src, r), path.join(dest, r));
    bytes += fs.statSync(path.join(src, r)).size;
  }
  return { files: picked.length, bytes, step };
}

/** What a bench section started (servers, proxies, daemons), stopped whatever happens: `untrack` stops one early, `forget` drops one that stopped itself. */
export function liveServers() {
  const live = [];
  const forget = (s) => {
    const i = live.indexOf(s);
    if (i >= 0) live.splice(i, 1);
    return i >= 0;
  };
  return {
    track: (s) => {
      live.push(s);
      return s;
    },
    forget,
    untrack: async (s) => {
      if (s && forget(s)) await s.stop();
    },
    stopAll: async () => {
      for (const s of live.splice(0).reverse()) await s.stop().catch(() => {});
    },
  };
}
