// Lock files (src/lib/lock.ts): exclusivity, E_LOCKED, stale-lock takeover, release, and waiting.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../src/lib/lock.js';
import { EltonError } from '../../src/errors.js';
import { tempDir } from '../helpers.js';

/** The pid of a process that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  assert.ok(pid > 0);
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  return pid;
}

async function expectLocked(p: Promise<unknown>): Promise<EltonError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof EltonError, `expected E_LOCKED, got ${String(caught)}`);
  assert.equal(caught.code, 'E_LOCKED', caught.message);
  return caught;
}

describe('lock', () => {
  it('writes who holds it, and release removes it', async () => {
    const path = join(tempDir(), 'lock');
    const lock = await acquireLock(path, 'commit');
    const info = JSON.parse(readFileSync(path, 'utf8'));
    assert.equal(info.pid, process.pid);
    assert.equal(info.host, hostname());
    assert.equal(info.command, 'commit');
    assert.ok(!Number.isNaN(Date.parse(info.time)));
    await lock.release();
    assert.ok(!existsSync(path));
  });

  it('a second acquire with waitMs 0 throws E_LOCKED naming the holder', async () => {
    const dir = tempDir();
    const path = join(dir, 'lock');
    const lock = await acquireLock(path, 'commit');
    const started = Date.now();
    const err = await expectLocked(acquireLock(path, 'checkout', 0));
    assert.ok(Date.now() - started < 1000, 'must not wait');
    assert.match(err.message, new RegExp(`pid ${process.pid}`));
    assert.match(err.message, /commit/);
    assert.equal(err.exitCode, 6);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).command, 'commit', 'the holder is untouched');
    await lock.release();
    assert.deepEqual(readdirSync(dir), [], 'no temp or stale files left');
  });

  it('a lock from another host is never taken over (its pid cannot be checked from here)', async () => {
    const path = join(tempDir(), 'lock');
    writeFileSync(path, JSON.stringify({ pid: deadPid(), host: `not-${hostname()}`, time: new Date().toISOString(), command: 'x' }));
    await expectLocked(acquireLock(path, 'commit', 0));
    assert.ok(existsSync(path));
  });

  it('a lock naming a dead pid on this host is taken over', async () => {
    const dir = tempDir();
    const path = join(dir, 'lock');
    writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), time: new Date().toISOString(), command: 'crashed' }));
    const lock = await acquireLock(path, 'commit', 0);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    await lock.release();
    assert.deepEqual(readdirSync(dir), []);
  });

  it('an empty or torn lock file is stale and taken over', async () => {
    for (const content of ['', '{"pid":12', 'null', '{"host":"x"}']) {
      const path = join(tempDir(), 'lock');
      writeFileSync(path, content);
      const lock = await acquireLock(path, 'commit', 0);
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid, JSON.stringify(content));
      await lock.release();
    }
  });

  it('release does not remove a lock that somebody else holds now', async () => {
    const path = join(tempDir(), 'lock');
    const lock = await acquireLock(path, 'commit');
    const other = JSON.stringify({ pid: 1, host: 'elsewhere', time: new Date().toISOString(), command: 'x' });
    writeFileSync(path, other);
    await lock.release();
    assert.equal(readFileSync(path, 'utf8'), other);
  });

  it('concurrent acquires in one process: exactly one wins, every other one is E_LOCKED (never a raw fs error)', async () => {
    const dir = tempDir();
    for (let round = 0; round < 200; round++) {
      const path = join(dir, `lock${round}`);
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => acquireLock(path, `c${i}`, 0)));
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1, `round ${round}`);
      for (const r of results) {
        if (r.status === 'rejected') assert.equal((r.reason as EltonError).code, 'E_LOCKED', `round ${round}: ${String(r.reason)}`);
      }
      await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
    }
  });

  it('a waiting acquire succeeds once the holder releases', async () => {
    const path = join(tempDir(), 'lock');
    const first = await acquireLock(path, 'first');
    const started = Date.now();
    setTimeout(() => void first.release(), 300);
    const second = await acquireLock(path, 'second', 5000);
    const waited = Date.now() - started;
    assert.ok(waited >= 250 && waited < 3000, `waited ${waited} ms`);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).command, 'second');
    await second.release();
    assert.ok(!existsSync(path));
  });

  it('a waiting acquire gives up with E_LOCKED after waitMs', async () => {
    const path = join(tempDir(), 'lock');
    const first = await acquireLock(path, 'first');
    const started = Date.now();
    await expectLocked(acquireLock(path, 'second', 400));
    const waited = Date.now() - started;
    assert.ok(waited >= 400 && waited < 2000, `waited ${waited} ms`);
    await first.release();
  });
});
