// Helpers shared by the end-to-end tests: assertions on CLI results, tree snapshots, async runs.

import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { eltonChild, pseudoRandom, type RunResult } from '../helpers.js';

export function describeRun(r: RunResult): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Asserts a zero exit and returns the result (its json too, when --json was given). */
export function ok(r: RunResult, what = 'command'): RunResult {
  assert.equal(r.code, 0, `${what} failed: ${describeRun(r)}`);
  return r;
}

/** Asserts that nothing looks like a JavaScript stack trace. */
export function assertNoStack(r: RunResult): void {
  assert.ok(!/\n\s+at /.test(r.stderr) && !r.stderr.startsWith('    at '), `stack trace on stderr: ${describeRun(r)}`);
  assert.ok(!/\n\s+at /.test(r.stdout), `stack trace on stdout: ${describeRun(r)}`);
}

/** Asserts the --json error shape: {"error":{code,message,hint,exitCode}} and the matching process exit code. */
export function assertJsonError(r: RunResult, code: string, exitCode: number): { code: string; message: string; hint?: string; exitCode: number } {
  assert.equal(r.code, exitCode, `expected exit ${exitCode} (${code}): ${describeRun(r)}`);
  assert.ok(r.json, `stdout is not JSON: ${describeRun(r)}`);
  const e = r.json.error;
  assert.ok(e && typeof e === 'object', `no "error" object: ${describeRun(r)}`);
  assert.equal(e.code, code, describeRun(r));
  assert.equal(e.exitCode, exitCode, describeRun(r));
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.hint, 'string', `no hint: ${describeRun(r)}`);
  assert.ok(e.hint.length > 0);
  assertNoStack(r);
  return e;
}

/** Asserts the text error shape: "error: ..." and "hint: ..." on stderr, nothing on stdout, no stack. */
export function assertTextError(r: RunResult, exitCode: number, messageIncludes?: string): void {
  assert.equal(r.code, exitCode, `expected exit ${exitCode}: ${describeRun(r)}`);
  assert.match(r.stderr, /^error: /m, describeRun(r));
  assert.match(r.stderr, /^hint: /m, describeRun(r));
  assert.equal(r.stdout, '', `stdout should be empty on error: ${describeRun(r)}`);
  if (messageIncludes) assert.ok(r.stderr.includes(messageIncludes), `stderr lacks "${messageIncludes}": ${describeRun(r)}`);
  assertNoStack(r);
}

export interface AsyncRun extends RunResult { signal: NodeJS.Signals | null; startedAt: number; endedAt: number; pid: number }

/** Runs `elton ARGS` as a child process without blocking the event loop. */
export function eltonAsync(cwd: string, args: string[], env: Record<string, string | undefined> = {}): Promise<AsyncRun> & { pid: number; kill(sig?: NodeJS.Signals): void } {
  const startedAt = Date.now();
  const child = eltonChild(cwd, args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const p = new Promise<AsyncRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const r: AsyncRun = { code: code ?? -1, signal, stdout, stderr, startedAt, endedAt: Date.now(), pid: child.pid! };
      if (args.includes('--json')) {
        try { r.json = JSON.parse(stdout); } catch { /* left undefined */ }
      }
      resolve(r);
    });
  });
  return Object.assign(p, { pid: child.pid!, kill: (sig: NodeJS.Signals = 'SIGKILL') => { child.kill(sig); } });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `cond` holds; returns false on timeout. */
export async function waitFor(cond: () => boolean, timeoutMs: number, everyMs = 2): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(everyMs);
  }
  return cond();
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface Entry { type: 'file' | 'dir' | 'symlink' | 'other'; mode: number; size: number; hash?: string; target?: string; mtimeMs: number; ino: number }

/** Walks a directory without following symlinks; paths are posix and relative; top-level names in `skip` are left out. */
export function snapshotTree(root: string, skip: string[] = ['.elton']): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      if (!rel && skip.includes(name)) continue;
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = lstatSync(abs);
      const base = { mode: st.mode & 0o7777, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
      if (st.isSymbolicLink()) out.set(path, { type: 'symlink', ...base, target: readlinkSync(abs) });
      else if (st.isDirectory()) { out.set(path, { type: 'dir', ...base }); walk(path); }
      else if (st.isFile()) out.set(path, { type: 'file', ...base, hash: sha256(readFileSync(abs)) });
      else out.set(path, { type: 'other', ...base });
    }
  };
  walk('');
  return out;
}

/** Asserts two snapshots hold the same paths with the same types, contents, link targets and (optionally) permission bits. */
export function assertSameTree(actual: Map<string, Entry>, expected: Map<string, Entry>, opts: { modes?: boolean; label?: string } = {}): void {
  const label = opts.label ? `${opts.label}: ` : '';
  const missing = [...expected.keys()].filter((p) => !actual.has(p));
  const extra = [...actual.keys()].filter((p) => !expected.has(p));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${label}paths differ`);
  for (const [path, e] of expected) {
    const a = actual.get(path)!;
    assert.equal(a.type, e.type, `${label}${path}: type`);
    if (e.type === 'file') {
      assert.equal(a.size, e.size, `${label}${path}: size`);
      assert.equal(a.hash, e.hash, `${label}${path}: content`);
    }
    if (e.type === 'symlink') assert.equal(a.target, e.target, `${label}${path}: link target`);
    if (opts.modes && e.type !== 'symlink') assert.equal((a.mode & 0o777).toString(8), (e.mode & 0o777).toString(8), `${label}${path}: mode`);
  }
}

/** Writes `count` files of pseudo-random bytes (about `total` bytes in all) under root, spread over 10 directories. */
export function writeRandomTree(root: string, count: number, total: number, seed: number, only?: (i: number) => boolean): void {
  const each = Math.floor(total / count);
  for (let i = 0; i < count; i++) {
    if (only && !only(i)) continue;
    const path = join(root, `d${i % 10}`, `f${String(i).padStart(4, '0')}.bin`);
    mkdirSync(dirname(path), { recursive: true });
    // Sizes vary by +-25% so that files do not all end on the same chunk boundaries.
    const size = Math.floor(each * (0.75 + ((i * 7919) % 100) / 200));
    writeFileSync(path, pseudoRandom(size, seed * 100003 + i + 1));
  }
}

export function git(cwd: string, args: string[]): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

export function lockPath(ws: string): string {
  return join(ws, '.elton', 'lock');
}

export function lockExists(ws: string): boolean {
  return existsSync(lockPath(ws));
}

/** The versions in `log --json`, oldest first, checked for a consistent history (1..n, each parent an earlier version). */
export function checkedHistory(r: RunResult): Array<{ version: number; parent: number | null; root: string; message: string; git: any }> {
  assert.ok(r.json && Array.isArray(r.json.versions), `log --json gave no versions: ${describeRun(r)}`);
  const versions = [...r.json.versions].reverse();
  versions.forEach((v, i) => {
    assert.equal(v.version, i + 1, 'versions are 1..n without gaps');
    if (v.parent !== null) assert.ok(v.parent >= 1 && v.parent < v.version, `parent ${v.parent} of @${v.version}`);
    assert.match(v.root, /^[0-9a-f]{64}$/);
  });
  return versions;
}
