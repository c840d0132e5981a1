// Shared test helpers: temp directories, running the real CLI, and small fixtures.

import { spawnSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, cpSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { EltonError } from '../src/errors.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const binPath = join(repoRoot, 'bin', 'run.js');
export const fixturesDir = join(repoRoot, 'fixtures');

const made: string[] = [];

/** A fresh temporary directory, removed after the test run. */
export function tempDir(prefix = 'elton-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

process.on('exit', () => {
  if (process.env.ELTON_KEEP_TEST_DIRS) return;
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

export interface RunResult { code: number; stdout: string; stderr: string; json?: any }

/** Runs `elton ARGS` in `cwd` and parses stdout as JSON when --json was given. */
export function elton(cwd: string, args: string[], env: Record<string, string | undefined> = {}): RunResult {
  const r = spawnSync(process.execPath, [binPath, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  const out: RunResult = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  if (args.includes('--json')) {
    try { out.json = JSON.parse(r.stdout); } catch { /* left undefined; the test will say so */ }
  }
  return out;
}

/** Starts `elton ARGS` without waiting (for kill and lock tests). */
export function eltonChild(cwd: string, args: string[], env: Record<string, string | undefined> = {}): ChildProcess {
  return spawn(process.execPath, [binPath, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Writes a tree of files: { 'a.txt': 'text', 'dir/b.bin': Buffer, 'empty/': null }. */
export function writeTree(root: string, files: Record<string, string | Buffer | null>): void {
  for (const [path, content] of Object.entries(files)) {
    const abs = join(root, path);
    if (content === null) {
      mkdirSync(abs, { recursive: true });
      continue;
    }
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, content);
  }
}

/**
 * Copies a named fixture (fixtures/NAME) into a new temp dir and returns its path.
 * Git keeps no empty directories, so fixtures/NAME.empty-dirs lists the ones to create.
 */
export function fixture(name: string): string {
  const dir = join(tempDir(), name);
  cpSync(join(fixturesDir, name), dir, { recursive: true, verbatimSymlinks: true });
  if (existsSync(join(fixturesDir, `${name}.empty-dirs`))) {
    for (const line of readFileSync(join(fixturesDir, `${name}.empty-dirs`), 'utf8').split('\n')) {
      if (line.trim()) mkdirSync(join(dir, line.trim()), { recursive: true });
    }
  }
  return dir;
}

/** Deterministic pseudo-random bytes (xorshift32), for content that must not compress. */
export function pseudoRandom(size: number, seed = 1): Buffer {
  const buf = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** Runs `fn` and returns the EltonError it throws, failing unless its code is `code` (and its message matches `pattern`). */
export function expectEltonError(fn: () => unknown, code: string, pattern?: RegExp): EltonError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof EltonError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}
