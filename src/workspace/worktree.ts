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

const HEADER = 'elton-stat-cache 1';
const NEEDS_QUOTING = /[\t\n\r"\\]/;

/**
 * The stat cache (git's index, minus staging): path → stat fields and chunk ids.
 * `clockMs` is the filesystem's own time when the scan that produced it began. An entry whose
 * mtime is not older than that clock is "racy": the file may have changed again within the
 * same timestamp tick, so it is re-read instead of trusted.
 *
 * One line per file, tab-separated, because an unchanged re-commit of 20,000 files must load
 * it in a few milliseconds; JSON parsing of the same data costs several times more.
 */
export class StatCache {
  /** False when it holds exactly what was loaded, so there is nothing to save. */
  changed = true;

  constructor(readonly entries: Map<string, CachedFile>, readonly clockMs: number) {}

  static async load(ws: Workspace): Promise<StatCache> {
    let text: string;
    try {
      text = await fsp.readFile(ws.statCachePath, 'utf8');
    } catch {
      return new StatCache(new Map(), 0);
    }
    const lines = text.split('\n');
    const [magic, clock] = lines[0].split('\t');
    // A missing, damaged or foreign cache only costs a re-read of every file.
    if (magic !== HEADER || !Number.isFinite(Number(clock))) return new StatCache(new Map(), 0);
    const entries = new Map<string, CachedFile>();
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i].split('\t');
      if (f.length !== 8) continue;
      const path = f[0].startsWith('"') ? JSON.parse(f[0]) as string : f[0];
      const chunks = f[7] ? f[7].split(',').map((c) => ({ id: c.slice(0, 64), size: Number(c.slice(65)) })) : [];
      entries.set(path, { size: Number(f[1]), mtimeMs: Number(f[2]), ctimeMs: Number(f[3]), ino: Number(f[4]), mode: Number(f[5]), stored: f[6] === '1', chunks });
    }
    return new StatCache(entries, Number(clock));
  }

  lookup(e: ScanEntry, mustBeStored: boolean): CachedFile | undefined {
    const c = this.entries.get(e.path);
    if (!c || (mustBeStored && !c.stored) || c.size !== e.size || c.mtimeMs !== e.mtimeMs || c.ctimeMs !== e.ctimeMs || c.ino !== e.ino || c.mode !== e.mode) return undefined;
    if (c.mtimeMs >= this.clockMs) return undefined;
    return c;
  }

  async save(ws: Workspace): Promise<void> {
    const lines = [`${HEADER}\t${this.clockMs}`];
    for (const [path, c] of this.entries) {
      const p = NEEDS_QUOTING.test(path) ? JSON.stringify(path) : path;
      lines.push(`${p}\t${c.size}\t${c.mtimeMs}\t${c.ctimeMs}\t${c.ino}\t${c.mode}\t${c.stored ? 1 : 0}\t${c.chunks.map((k) => `${k.id}:${k.size}`).join(',')}`);
    }
    await writeFileAtomic(ws.statCachePath, lines.join('\n') + '\n');
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
  let hits = 0;
  const tasks: HashTask[] = [];
  const taskEntries: ScanEntry[] = [];
  for (const e of scanned) {
    const f = toFlat(e);
    flat.set(e.path, f);
    if (e.type !== 'file') continue;
    const hit = old.lookup(e, storing);
    if (hit) {
      hits++;
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
  const cache = new StatCache(fresh, clockMs);
  cache.changed = tasks.length > 0 || hits !== old.entries.size;
  return { flat, cache, hashedFiles: tasks.length, hashedBytes: total };
}
