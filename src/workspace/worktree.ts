// Reads the working tree into a snapshot, re-reading only files whose stat changed since the stat cache was written.

import { promises as fsp, writeFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic.js';
import { ioError } from '../errors.js';
import type { ChunkRef } from '../tree.js';
import type { Reporter } from '../events.js';
import { pathSelected, type Flat, type FlatEntry } from '../snapshot.js';
import { scanWorkspace, type ScanEntry } from './scan.js';
import { hashFiles, HashFailure, type HashTask } from './hash-pool.js';
import type { HashSettings } from './hasher.js';
import type { Workspace } from './workspace.js';

export interface CachedFile {
  size: number; mtimeMs: number; ctimeMs: number; ino: number; mode: number; chunks: ChunkRef[];
  /** False when only hashed (status, diff): its chunks may be missing from the store, so a commit re-reads it. */
  stored: boolean;
}

const STAT_CACHE_FORMAT = 1;

/**
 * The stat cache (git's index, minus staging): path → stat fields and chunk ids.
 * `clockMs` is the filesystem's own time when the scan that produced it began. An entry whose
 * mtime is not older than that clock is "racy": the file may have changed again within the
 * same timestamp tick, so it is re-read instead of trusted.
 */
export class StatCache {
  constructor(readonly entries: Map<string, CachedFile>, readonly clockMs: number) {}

  static async load(ws: Workspace): Promise<StatCache> {
    try {
      const doc = JSON.parse(await fsp.readFile(ws.statCachePath, 'utf8'));
      if (doc.format !== STAT_CACHE_FORMAT) return new StatCache(new Map(), 0);
      const entries = new Map<string, CachedFile>();
      for (const [path, [size, mtimeMs, ctimeMs, ino, mode, chunks, stored]] of Object.entries(doc.files as Record<string, [number, number, number, number, number, Array<[string, number]>, number]>)) {
        entries.set(path, { size, mtimeMs, ctimeMs, ino, mode, chunks: chunks.map(([id, size]) => ({ id, size })), stored: stored === 1 });
      }
      return new StatCache(entries, doc.clockMs);
    } catch {
      // A missing or damaged cache only costs a re-read of every file.
      return new StatCache(new Map(), 0);
    }
  }

  lookup(e: ScanEntry, mustBeStored: boolean): CachedFile | undefined {
    const c = this.entries.get(e.path);
    if (!c || (mustBeStored && !c.stored) || c.size !== e.size || c.mtimeMs !== e.mtimeMs || c.ctimeMs !== e.ctimeMs || c.ino !== e.ino || c.mode !== e.mode) return undefined;
    if (c.mtimeMs >= this.clockMs) return undefined;
    return c;
  }

  async save(ws: Workspace): Promise<void> {
    const files: Record<string, unknown> = {};
    for (const [path, c] of this.entries) files[path] = [c.size, c.mtimeMs, c.ctimeMs, c.ino, c.mode, c.chunks.map((k) => [k.id, k.size]), c.stored ? 1 : 0];
    await writeFileAtomic(ws.statCachePath, JSON.stringify({ format: STAT_CACHE_FORMAT, clockMs: this.clockMs, files }));
  }
}

/** Reads the filesystem's clock (which may differ from the system clock on network filesystems). */
export function filesystemNow(ws: Workspace): number {
  const probe = join(ws.meta, 'clock');
  writeFileSync(probe, '');
  return lstatSync(probe).mtimeMs;
}

export interface WorkTreeOptions {
  settings: HashSettings;
  /** Chunks already stored; new chunks are encoded and given to `onObject` (commit only). */
  known?: () => Promise<Set<string>>;
  onObject?: (id: string, data: Buffer) => Promise<void> | void;
  /** Restricts the snapshot to these paths (and the directories above them). */
  prefixes?: string[];
  /** When given, only these files are hashed on a stat-cache miss; others get no chunks (used by checkout). */
  needContent?: (path: string) => boolean;
  reporter?: Reporter;
}

export interface WorkTree {
  flat: Flat;
  cache: StatCache;
  hashedFiles: number;
  hashedBytes: number;
}

function toFlat(e: ScanEntry): FlatEntry {
  return { type: e.type, mode: e.mode, mtime: e.mtimeMs, size: e.size, target: e.target };
}

export async function readWorkTree(ws: Workspace, opts: WorkTreeOptions): Promise<WorkTree> {
  const clockMs = filesystemNow(ws);
  const old = await StatCache.load(ws);
  opts.reporter?.({ type: 'progress', phase: 'scan', loaded: 0, total: 0, unit: 'files' });
  const scanned = scanWorkspace(ws.root, opts.reporter).filter((e) => pathSelected(e.path, opts.prefixes));
  const flat: Flat = new Map();
  const fresh = new Map<string, CachedFile>();
  // Entries outside a sparse selection keep their old cache lines.
  if (opts.prefixes) for (const [p, c] of old.entries) if (!pathSelected(p, opts.prefixes)) fresh.set(p, c);
  const storing = opts.onObject !== undefined;
  const tasks: HashTask[] = [];
  const taskEntries: ScanEntry[] = [];
  for (const e of scanned) {
    const f = toFlat(e);
    flat.set(e.path, f);
    if (e.type !== 'file') continue;
    const hit = old.lookup(e, storing);
    if (hit) {
      f.chunks = hit.chunks;
      fresh.set(e.path, hit);
    } else if (!opts.needContent || opts.needContent(e.path)) {
      tasks.push({ abs: join(ws.root, e.path), size: e.size });
      taskEntries.push(e);
    }
  }
  const total = tasks.reduce((n, t) => n + t.size, 0);
  let loaded = 0;
  const known = tasks.length && opts.known ? await opts.known() : new Set<string>();
  try {
    await hashFiles(tasks, opts.settings, known, {
      onObject: (id, data) => opts.onObject?.(id, data),
      onFile: (index, r) => {
        const e = taskEntries[index];
        const f = flat.get(e.path)!;
        Object.assign(f, { chunks: r.chunks, size: r.size, mode: r.mode, mtime: r.mtimeMs });
        fresh.set(e.path, { size: r.size, mtimeMs: r.mtimeMs, ctimeMs: r.ctimeMs, ino: r.ino, mode: r.mode, chunks: r.chunks, stored: storing });
        loaded += r.size;
        opts.reporter?.({ type: 'progress', phase: 'hash', loaded, total, unit: 'bytes' });
      },
    });
  } catch (err) {
    if (err instanceof HashFailure) {
      const path = err.task.abs.slice(ws.root.length + 1);
      throw ioError(`cannot read ${path}: ${err.error.message}`, err, err.error.code === 'EACCES' ? `fix its permissions, or add it to .eltonignore` : 'check the file, or add it to .eltonignore');
    }
    throw err;
  }
  return { flat, cache: new StatCache(fresh, clockMs), hashedFiles: tasks.length, hashedBytes: total };
}
