// An exclusive, crash-tolerant lock file: one elton process per workspace at a time.

import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { locked } from '../errors.js';

interface LockInfo { pid: number; host: string; time: string; command: string }

export interface Lock { release(): Promise<void> }

/** True when a process with this pid runs on this host (EPERM: it runs, as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await fsp.readFile(path, 'utf8')) as LockInfo;
  } catch {
    return undefined;
  }
}

/** A lock is stale when its holder ran on this host and is dead; a torn or empty lock file is stale too. */
function isStale(info: LockInfo | undefined): boolean {
  if (!info || typeof info.pid !== 'number') return true;
  return info.host === hostname() && !isAlive(info.pid);
}

/**
 * Takes the lock at `path`, waiting up to `waitMs` for a live holder.
 * A stale lock is moved aside with rename(2) first: only one contender can rename a given file,
 * and the contender re-checks what it moved, so a fresh lock taken meanwhile is put back untouched.
 */
export interface LockLabel { what: string; hint: string }

export async function acquireLock(path: string, command: string, waitMs = 0, label?: LockLabel): Promise<Lock> {
  const deadline = Date.now() + waitMs;
  const mine: LockInfo = { pid: process.pid, host: hostname(), time: new Date().toISOString(), command };
  for (;;) {
    // Written aside and linked into place, so that nobody ever reads a half-written lock.
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(mine));
    try {
      await fsp.link(tmp, path);
      return {
        release: async () => {
          const now = await readLock(path);
          if (now?.pid === mine.pid && now.host === mine.host) await fsp.rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    const holder = await readLock(path);
    if (isStale(holder)) {
      const aside = `${path}.stale.${process.pid}`;
      try {
        await fsp.rename(path, aside);
        const moved = await readLock(aside);
        if (isStale(moved)) await fsp.rm(aside, { force: true });
        else await fsp.link(aside, path).catch(() => {}).finally(() => fsp.rm(aside, { force: true }));
      } catch { /* somebody else moved it first; loop and look again */ }
      continue;
    }
    if (Date.now() >= deadline) {
      throw locked(path, holder ? `pid ${holder.pid} on ${holder.host}, running \`${holder.command}\` since ${holder.time}` : 'unknown holder', label?.what, label?.hint);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
