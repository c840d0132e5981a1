// Helpers for the `elton serve` tests: a real gateway process, a fixture tree committed to a real master, raw HTTP.

import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { Chunker, DEFAULT_CHUNKER } from '../../src/chunker.js';
import { eltonChild, pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { eltonAsync, ok } from '../e2e/util.js';

export const MiB = 1024 * 1024;

export interface GatewayProcess {
  url: string;
  cache: string;
  pid: number;
  /** Everything the process wrote so far (stdout then stderr interleaved as it came). */
  output(): string;
  /** Request log lines (`TIME CLIENT METHOD PATH STATUS MSms out=N [error=...]`). */
  lines: string[];
  stats(): Promise<GatewayStatsJson>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export interface GatewayStatsJson {
  requests: number;
  bytesServed: number;
  status: Record<string, number>;
  upstream: { requests: number; bytesUp: number; bytesDown: number };
  cache: { fetched: { objects: number; bytes: number }; cached: { objects: number; bytes: number } } | null;
  loader: { fetches: number; coalesced: number; memoryHits: number };
}

const REQUEST_LINE = /^\S+ \S+ (GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) /;
const running = new Set<GatewayProcess>();

/** Starts `elton serve --remote REMOTE --listen 127.0.0.1:0` with its own user cache (or `cache`), and waits for its URL. */
export async function startGatewayProcess(remote: string, opts: { cache?: string; cwd?: string; extraArgs?: string[] } = {}): Promise<GatewayProcess> {
  const cache = opts.cache ?? tempDir('elton-gw-cache-');
  const child = eltonChild(opts.cwd ?? tempDir(), ['serve', '--remote', remote, '--listen', '127.0.0.1:0', ...(opts.extraArgs ?? [])], { ELTON_CACHE: cache });
  let stdout = '';
  let stderr = '';
  let partial = '';
  const lines: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) if (REQUEST_LINE.test(l)) lines.push(l);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${stdout}\n${stderr}`)), 15000);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(stdout) ?? /"url":"(http:\/\/[^"]+)"/.exec(stdout);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout!.on('data', check);
    void exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`gateway exited (${code}) before listening:\n${stdout}\n${stderr}`)); });
  });
  const gw: GatewayProcess = {
    url, cache, pid: child.pid!, lines,
    output: () => stdout + stderr,
    stats: async () => {
      const r = await get(url, '/-/stats');
      assert.equal(r.status, 200, `/-/stats: ${r.status} ${r.body.toString()}`);
      return JSON.parse(r.body.toString('utf8')) as GatewayStatsJson;
    },
    stop: async (signal = 'SIGTERM') => {
      running.delete(gw);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const e = await exited;
      return { ...e, stdout, stderr };
    },
  };
  running.add(gw);
  return gw;
}

/** Stops every gateway a test left running (a failed assertion skips its own cleanup). */
export async function stopAllGateways(): Promise<void> {
  await Promise.all([...running].map((g) => g.stop('SIGKILL')));
}

export interface Response { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** One HTTP request; `path` is sent exactly as given (no normalization). */
export function request(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; agent?: http.Agent } = {}): Promise<Response> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`response to ${path} aborted`)));
    });
    req.on('error', reject);
    req.end();
  });
}

export const get = (base: string, path: string, headers: Record<string, string> = {}, agent?: http.Agent) => request(base, path, { headers, agent });

/** A request written byte for byte on a socket: whatever the path holds reaches the server's parser as is. */
export function rawRequest(base: string, requestLine: string): Promise<{ status: number; head: string; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    const parts: Buffer[] = [];
    sock.on('data', (b) => parts.push(b));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(parts).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : -1, head: split >= 0 ? text.slice(0, split) : text, body: split >= 0 ? text.slice(split + 4) : '' });
    });
    sock.write(Buffer.from(`${requestLine}\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`, 'latin1'));
  });
}

export const sha256hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A file's content id, computed independently of the gateway: the chunker's cuts, each chunk's SHA-256, then (for several) the SHA-256 of the ids. */
export function expectedContentId(data: Buffer): { id: string; chunks: Array<{ id: string; offset: number; size: number }> } {
  const pieces = new Chunker(DEFAULT_CHUNKER).split(data);
  let offset = 0;
  const chunks = pieces.map((p) => {
    const c = { id: sha256hex(p), offset, size: p.length };
    offset += p.length;
    return c;
  });
  if (chunks.length === 1) return { id: chunks[0].id, chunks };
  const h = createHash('sha256');
  for (const c of chunks) h.update(Buffer.from(c.id, 'hex'));
  return { id: h.digest('hex'), chunks };
}

/** The fixture tree: small and multi-MiB files, nested directories, symlinks, names that need encoding or escaping. */
export const UNICODE_NAME = 'sp ace é ü 日本.txt';
export const HTML_NAME = '<b>x&y<b> "q\'.txt';

export function fixtureFiles(): Record<string, Buffer> {
  return {
    'small.txt': Buffer.from('hello from the gateway\n'),
    'blob.bin': pseudoRandom(40 * 1024, 3),
    'big.bin': pseudoRandom(8 * MiB, 1),
    'big2.bin': pseudoRandom(5 * MiB, 2),
    'page.html': Buffer.from('<!doctype html><title>t</title><p id="p">user html</p>\n'),
    [UNICODE_NAME]: Buffer.from('unicode and spaces\n'),
    [HTML_NAME]: Buffer.from('escaped\n'),
    'sub/data.json': Buffer.from('{"answer":42}\n'),
    'sub/deep/nested.txt': Buffer.from('nested file\n'),
    'sub/deep/medium.bin': pseudoRandom(700 * 1024, 4),
  };
}

export interface Site { ws: string; tree: string; files: Record<string, Buffer> }

/**
 * A workspace with the fixture, committed twice to `remote` as tree `tree`:
 * @1 is the fixture, @2 adds v2.txt.
 */
export async function commitSite(remote: string, tree: string): Promise<Site> {
  const ws = join(tempDir('elton-site-'), tree);
  const files = fixtureFiles();
  writeTree(ws, files);
  symlinkSync('sub', join(ws, 'link-to-dir'));
  symlinkSync('small.txt', join(ws, 'link-to-file'));
  symlinkSync('../../../../../../etc/passwd', join(ws, 'escape'));
  ok(await eltonAsync(ws, ['init', '--remote', remote, '--tree', tree]), 'init');
  assert.equal(ok(await eltonAsync(ws, ['commit', '-m', 'one', '--json']), 'commit').json.version, 1);
  writeTree(ws, { 'v2.txt': 'only in two\n' });
  assert.equal(ok(await eltonAsync(ws, ['commit', '-m', 'two', '--json']), 'commit').json.version, 2);
  return { ws, tree, files };
}

/** `/NAME@V/` plus each path segment percent-encoded. */
export const fileUrl = (ref: string, path: string) => `/${ref}/${path.split('/').map(encodeURIComponent).join('/')}`;

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
