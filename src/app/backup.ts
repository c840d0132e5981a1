// Use-case: back up trees from one remote to another, under a lock, so that cron can run it safely.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { hasCode, usage } from '../errors.js';
import { acquireLock } from '../lib/lock.js';
import { copyVersions, emptyTarget, type CopyResult, type Origin } from '../backup/copy.js';
import { CachedStore } from '../store/cached-store.js';
import { FileStore } from '../store/file-store.js';
import { keyringHolderOf, normalizeRemote, openForCopying, openForReading } from '../store/open.js';
import { parseSize, userCacheDir } from '../store/user-cache.js';
import { reporterOf, type Deps } from './context.js';

export interface BackupOptions {
  from: string;
  to: string;
  trees?: string[];
  /** A date (2026-11-01, or an ISO time) or an age (90m, 36h, 7d, 2w). */
  since?: string;
  dryRun?: boolean;
  /** Bytes per second, as 10M or 512K. */
  bwlimit?: string;
}

export interface BackupResult extends CopyResult {
  from: string;
  to: string;
  /** False when an object could not be copied (see problems): the run exits non-zero. */
  ok: boolean;
  seconds: number;
}

const AGE_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

export function parseSince(text: string, now = new Date()): Date {
  const age = /^(\d+)\s*([smhdw])$/i.exec(text.trim());
  if (age) return new Date(now.getTime() - Number(age[1]) * AGE_UNITS[age[2].toLowerCase()] * 1000);
  const at = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text.trim()) && !Number.isNaN(at)) return new Date(at);
  throw usage(`bad --since "${text}"`, 'write a date (2026-11-01 or 2026-11-01T06:00:00Z) or an age (90m, 36h, 7d, 2w)');
}

export function parseRate(text: string): number {
  const rate = parseSize(text.replace(/\/s$/i, ''));
  if (!(rate > 0)) throw usage(`bad --bwlimit "${text}"`, 'write bytes per second, as 10M or 512K');
  return rate;
}

/** One lock per pair of remotes: runs between other pairs go on side by side. */
export function backupLockPath(from: string, to: string): string {
  const key = createHash('sha256').update(`${from}\n${to}`).digest('hex').slice(0, 16);
  return join(userCacheDir(), 'locks', `backup-${key}.lock`);
}

export async function backup(opts: BackupOptions, deps: Deps): Promise<BackupResult> {
  const t0 = Date.now();
  const from = normalizeRemote(opts.from, deps.cwd);
  const to = normalizeRemote(opts.to, deps.cwd);
  if (from === to) throw usage(`--from and --to are the same remote (${from})`, 'a backup copies to another remote: point --to at the bucket, master or directory that keeps the copies');
  const since = opts.since === undefined ? undefined : parseSince(opts.since);
  const bytesPerSecond = opts.bwlimit === undefined ? undefined : parseRate(opts.bwlimit);
  const lockPath = backupLockPath(from, to);
  await fsp.mkdir(join(userCacheDir(), 'locks'), { recursive: true });
  // A dry run writes nothing, so it neither takes the lock nor waits for it.
  const lock = opts.dryRun ? undefined : await acquireLock(lockPath, `elton backup --from ${from} --to ${to}`, 0, {
    what: `the backup from ${from} to ${to}`, hint: 'another run is still copying; the next scheduled run will go on from where it stops',
  });
  try {
    const fromToken = process.env.ELTON_FROM_TOKEN || process.env.ELTON_TOKEN || undefined;
    // Never with the key: an encrypted store is copied as it is stored (docs/encryption.md).
    const store = await openForReading(from, fromToken, true, true, true);
    try {
      const origin: Origin = { store, direct: store instanceof CachedStore ? store.remote : store as FileStore };
      // A new target of an encrypted source gets its keyring before its config.
      const keyring = store.config.encryption ? (await keyringHolderOf(origin.direct, from).readKeyringBytes())?.data : undefined;
      const target = await openForCopying(to, store.config, process.env.ELTON_TO_TOKEN || process.env.ELTON_TOKEN || undefined, opts.dryRun, keyring).catch((err) => {
        // A dry run to a target that has no store yet: everything would be copied (and it creates none).
        if (opts.dryRun && hasCode(err, 'E_NOT_FOUND')) return emptyTarget(to, store.config);
        throw err;
      });
      try {
        const r = await copyVersions(origin, target, { trees: opts.trees, since, dryRun: opts.dryRun, bytesPerSecond, reporter: reporterOf(deps) });
        return { from, to, ok: r.problems.length === 0, ...r, seconds: (Date.now() - t0) / 1000 };
      } finally {
        await target.close();
      }
    } finally {
      await store.close();
    }
  } finally {
    await lock?.release();
  }
}
