// Use-case: make the working tree match NAME@V, touching only what differs and never losing uncommitted work.
//
// Three phases, so that a failure or a kill can never leave a half-written file behind:
//   1. plan: compare the target with the workspace's base version and the working tree;
//   2. stage: fetch, verify and write every new file under .elton/staging (the working tree is untouched);
//   3. apply: delete, create directories, rename staged files into place, restore mtimes.
// A run killed in phase 3 is completed by the next run: what it already changed now matches the target.

import {
  promises as fsp, lstatSync, mkdirSync, openSync, writevSync, fchmodSync, futimesSync, closeSync, rmSync, rmdirSync,
  renameSync, symlinkSync, lutimesSync, chmodSync, utimesSync, writev, type Stats,
} from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { dirty, notFound } from '../errors.js';
import { formatRef } from '../ref.js';
import type { ChunkRef } from '../tree.js';
import { comparePaths, contentKey, loadSnapshot, parentOf, pathCovered, type Flat, type FlatEntry } from '../snapshot.js';
import type { Store, Transfer } from '../store/store.js';
import type { VersionRecord } from '../version.js';
import { readWorkTree, StatCache } from '../workspace/worktree.js';
import type { Workspace } from '../workspace/workspace.js';
import type { Reporter } from '../events.js';
import { openWorkspace, reporterOf, resolveVersion, settlePendingQuietly, transferOf, workspacePaths, type Deps } from './context.js';

export interface CheckoutOptions { ref: string; paths?: string[]; force?: boolean }

export interface CheckoutResult {
  ref: string;
  tree: string;
  version: number;
  paths: string[] | null;
  /** Files and symlinks in the checked-out selection. */
  files: number;
  written: number;
  reused: number;
  deleted: number;
  bytesWritten: number;
  /** Objects (trees and chunks) that came from the remote, as encoded bytes; for a local store, every chunk read. */
  fetched: { objects: number; bytes: number };
  /** Objects a remote-backed store found in a local cache instead of fetching them. */
  cached: { objects: number; bytes: number };
  transfer: Transfer;
}

const ROOT_META = { mode: 0o755, mtime: 0 };
const STAGE_BATCH_BYTES = 16 * 1024 * 1024;
const STAGE_DIR_FILES = 1024;
const ASYNC_WRITE_BYTES = 1024 * 1024;
const ASYNC_DECODE_BYTES = 64 * 1024;

export async function checkout(opts: CheckoutOptions, deps: Deps): Promise<CheckoutResult> {
  const { ws, store } = await openWorkspace(deps);
  const lock = await ws.lock('checkout');
  try {
    await settlePendingQuietly(ws, store);
    const record = await resolveVersion(store, opts.ref, ws.config.tree, reporterOf(deps));
    const prefixes = opts.paths?.length ? workspacePaths(ws, deps.cwd, opts.paths) : undefined;
    return await checkoutVersion(ws, store, record, prefixes, opts.force ?? false, reporterOf(deps));
  } finally {
    await store.close();
    await lock.release();
  }
}

interface Plan {
  writes: string[];
  dirs: string[];
  deletes: string[];
  reused: number;
  fixMeta: string[];
  conflicts: string[];
}

function isClean(work: FlatEntry | undefined, head: FlatEntry | undefined): boolean {
  return !!work && !!head && work.type === head.type && contentKey(work) === contentKey(head);
}

/** Decides what to write and delete, and which uncommitted changes stand in the way. */
function plan(target: Flat, head: Flat, work: Flat, prefixes: string[] | undefined): Plan {
  const p: Plan = { writes: [], dirs: [], deletes: [], reused: 0, fixMeta: [], conflicts: [] };
  for (const [path, t] of target) {
    if (path === '') continue;
    const w = work.get(path);
    if (w && w.type === t.type && contentKey(w) === contentKey(t)) {
      if (t.type === 'dir') p.dirs.push(path);
      else {
        p.reused++;
        if ((w.mode & 0o777) !== (t.mode & 0o777) || (t.type === 'file' && Math.floor(w.mtime) !== t.mtime)) p.fixMeta.push(path);
      }
      continue;
    }
    if (t.type === 'dir') p.dirs.push(path);
    else p.writes.push(path);
    // Replacing something that is neither the base version's content nor already the target's.
    if (w && w.type !== 'dir' && !isClean(w, head.get(path))) p.conflicts.push(path);
  }
  const replacedDirs = new Set<string>();
  for (const [path, w] of work) {
    if (path === '' || !pathCovered(path, prefixes)) continue;
    const t = target.get(path);
    const h = head.get(path);
    // A directory in the way of a file: everything in it must be ours to remove.
    const blocker = ancestorReplacedByNonDir(path, w.type === 'dir', target);
    if (blocker) {
      replacedDirs.add(blocker);
      if (w.type !== 'dir' && !isClean(w, h)) p.conflicts.push(path);
      continue;
    }
    if (t || !h) continue; // kept, or untracked and left alone
    if (w.type !== 'dir' && !isClean(w, h)) p.conflicts.push(path);
    p.deletes.push(path);
  }
  for (const d of replacedDirs) p.deletes.push(d);
  p.deletes.sort((a, b) => comparePaths(b, a));
  return p;
}

/** The directory (this one or an ancestor) that the target replaces with a file or symlink, if any. */
function ancestorReplacedByNonDir(path: string, isDir: boolean, target: Flat): string | undefined {
  let found: string | undefined;
  for (let d = isDir ? path : parentOf(path); d !== ''; d = parentOf(d)) {
    const t = target.get(d);
    if (t && t.type !== 'dir') found = d;
  }
  return found;
}

export async function checkoutVersion(ws: Workspace, store: Store, record: VersionRecord, prefixes: string[] | undefined, force: boolean, reporter: Reporter): Promise<CheckoutResult> {
  const targetLoad = await loadSnapshot(store, record.root, ROOT_META, prefixes);
  const target = targetLoad.flat;
  const ref = formatRef(record.tree, record.version);
  for (const p of prefixes ?? []) {
    if (!target.has(p)) throw notFound(`path "${p}" in ${ref}`, `\`elton ls ${ref}\` shows what it holds`);
  }
  const headRef = await ws.readHead();
  let head: Flat = new Map();
  if (headRef) {
    const headRecord = await store.readVersion(headRef.tree, headRef.version);
    head = (await loadSnapshot(store, headRecord.root, ROOT_META, prefixes)).flat;
  }
  const work = await readWorkTree(ws, {
    settings: { chunker: store.config.chunker, keys: store.codec.keys },
    prefixes,
    needContent: (path) => target.has(path) || head.has(path),
    reporter,
  });
  const steps = plan(target, head, work.flat, prefixes);
  if (steps.conflicts.length && !force) throw dirty(steps.conflicts.sort(comparePaths));

  await fsp.rm(ws.stagingDir, { recursive: true, force: true });
  await fsp.mkdir(ws.stagingDir, { recursive: true });
  const read = { objects: 0, bytes: 0 };
  const staged = await stage(ws, store, target, steps.writes, read, reporter);
  const bytesWritten = apply(ws, target, steps, staged, force);
  await fsp.rm(ws.stagingDir, { recursive: true, force: true });

  // The scan's clock predates every write below, so entries for written files are not racy by accident.
  const cache = new StatCache(new Map(work.cache.entries), work.cache.clockMs);
  for (const path of steps.deletes) cache.entries.delete(path);
  for (const path of [...steps.writes, ...steps.fixMeta]) {
    const t = target.get(path)!;
    if (t.type !== 'file') continue;
    const st = lstatSync(join(ws.root, path));
    cache.entries.set(path, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode & 0o7777, chunks: t.chunks!, stored: true });
  }
  await cache.save(ws);
  if (!prefixes) await ws.writeHead({ tree: record.tree, version: record.version });
  else if (!headRef) await ws.writeHead({ tree: record.tree, version: record.version, paths: prefixes });

  let files = 0;
  for (const e of target.values()) if (e.type !== 'dir') files++;
  return {
    ref, tree: record.tree, version: record.version, paths: prefixes ?? null,
    files, written: steps.writes.length, reused: steps.reused, deleted: steps.deletes.length, bytesWritten,
    fetched: store.use ? { ...store.use.fetched } : read, cached: store.use ? { ...store.use.cached } : { objects: 0, bytes: 0 }, transfer: transferOf(store),
  };
}

interface Piece { path: string; chunks: ChunkRef[]; first: boolean; last: boolean }

/** Cuts the files to write into pieces of at most STAGE_BATCH_BYTES, so a huge file never sits in memory whole. */
function piecesOf(target: Flat, files: string[]): Piece[] {
  const pieces: Piece[] = [];
  for (const path of files) {
    const chunks = target.get(path)!.chunks!;
    let start = 0;
    let bytes = 0;
    for (let k = 0; k <= chunks.length; k++) {
      if (k === chunks.length || (bytes + chunks[k].size > STAGE_BATCH_BYTES && k > start)) {
        pieces.push({ path, chunks: chunks.slice(start, k), first: start === 0, last: k === chunks.length });
        start = k;
        bytes = 0;
      }
      if (k < chunks.length) bytes += chunks[k].size;
    }
  }
  return pieces;
}

/**
 * Fetches and verifies the chunks of every file to write, and writes each file under staging.
 * Pieces of files go in batches of about 16 MiB: one batched store read per batch (a remote
 * sees few large requests), objects decoded and verified several at a time on the thread pool,
 * and memory bounded whatever the file sizes. Any bad object aborts here, before the working
 * tree is touched.
 *
 * File creation uses synchronous calls on purpose: creating many small files is bound by the
 * filesystem's per-directory locking and journal, and measured here, a thread pool issuing
 * them in parallel was 2-3x slower than one thread issuing them back to back.
 */
async function stage(ws: Workspace, store: Store, target: Flat, writes: string[], read: { objects: number; bytes: number }, reporter: Reporter): Promise<Map<string, string>> {
  const staged = new Map<string, string>();
  const files = writes.filter((p) => target.get(p)!.type === 'file');
  const total = files.reduce((n, p) => n + target.get(p)!.size, 0);
  const batches = batchesOf(piecesOf(target, files));
  // A remote-backed store fetches everything this checkout needs in a few streams, not one request per batch.
  if (store.prefetch) {
    const sizes = new Map<string, number>();
    for (const p of files) for (const c of target.get(p)!.chunks!) sizes.set(c.id, c.size);
    await store.prefetch(sizes.keys(), sizes, reporter);
  }
  const open = new Map<string, number>();
  const umask = currentUmask();
  let loaded = 0;
  let serial = 0;
  let dir = '';
  const fetchBatch = async (batch: Piece[]): Promise<Map<string, Buffer>> => {
    const decoding: Array<Promise<void>> = [];
    const plain = new Map<string, Buffer>();
    const sizes = new Map(batch.flatMap((p) => p.chunks.map((c) => [c.id, c.size] as const)));
    await store.readObjects(sizes.keys(), (id, data) => {
      read.objects++;
      read.bytes += data.length;
      // Small objects are decoded here: for them a thread-pool round trip costs more than the work.
      const size = sizes.get(id)!;
      if (size < ASYNC_DECODE_BYTES) {
        plain.set(id, store.codec.decode(data, `object ${id}`, id).plain);
        return;
      }
      const decoded = store.codec.decodeAsync(data, `object ${id}`, id, size).then((d) => { plain.set(id, d.plain); });
      // Handled at once: a bad object may fail while later reads are still under way.
      decoded.catch(() => {});
      decoding.push(decoded);
    });
    await Promise.all(decoding);
    return plain;
  };
  // One batch ahead: the next batch is read and decoded while this one is written.
  let next = batches.length ? fetchBatch(batches[0]) : undefined;
  next?.catch(() => {});
  try {
    for (let b = 0; b < batches.length; b++) {
      const plain = await next!;
      next = b + 1 < batches.length ? fetchBatch(batches[b + 1]) : undefined;
      next?.catch(() => {});
      for (const piece of batches[b]) {
        const e = target.get(piece.path)!;
        let fd = open.get(piece.path);
        if (fd === undefined) {
          // Small staging directories: one huge directory makes every create slower.
          if (serial % STAGE_DIR_FILES === 0) {
            dir = join(ws.stagingDir, String(serial / STAGE_DIR_FILES));
            mkdirSync(dir);
          }
          const tmp = join(dir, String(serial++));
          fd = openSync(tmp, 'wx', e.mode & 0o777);
          open.set(piece.path, fd);
          staged.set(piece.path, tmp);
        }
        const parts = piece.chunks.map((c) => plain.get(c.id)!);
        const size = piece.chunks.reduce((n, c) => n + c.size, 0);
        // Big writes go through the thread pool, leaving the event loop free to decode the next batch.
        if (size >= ASYNC_WRITE_BYTES) await writevAll(fd, parts);
        else if (parts.length) writevSync(fd, parts);
        if (piece.last) {
          // open() applied the umask; restore the recorded bits only where it took some away.
          if (e.mode & umask) fchmodSync(fd, e.mode & 0o777);
          futimesSync(fd, seconds(e.mtime), seconds(e.mtime));
          closeSync(fd);
          open.delete(piece.path);
          loaded += e.size;
        }
      }
      reporter({ type: 'progress', phase: 'checkout', loaded, total, unit: 'bytes' });
    }
  } finally {
    for (const fd of open.values()) closeSync(fd);
  }
  return staged;
}

/**
 * Milliseconds to the seconds utimes takes, half a microsecond late: ms / 1000 is not exact in
 * binary, and a value that lands a hair below the millisecond would read back one ms early.
 */
const seconds = (ms: number) => (ms + 0.0005) / 1000;

/** Reads the umask without the deprecated no-argument call. */
function currentUmask(): number {
  const mask = process.umask(0o022);
  process.umask(mask);
  return mask;
}

function batchesOf(pieces: Piece[]): Piece[][] {
  const batches: Piece[][] = [];
  let current: Piece[] = [];
  let bytes = 0;
  for (const piece of pieces) {
    current.push(piece);
    bytes += piece.chunks.reduce((n, c) => n + c.size, 0);
    if (bytes >= STAGE_BATCH_BYTES) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
  }
  if (current.length) batches.push(current);
  return batches;
}

const writevAsync = promisify(writev);

async function writevAll(fd: number, parts: Buffer[]): Promise<void> {
  let rest = parts;
  while (rest.length) {
    let n = (await writevAsync(fd, rest)).bytesWritten;
    // writev may write less than asked; continue where it stopped.
    while (rest.length && n >= rest[0].length) {
      n -= rest[0].length;
      rest = rest.slice(1);
    }
    if (rest.length && n > 0) rest = [rest[0].subarray(n), ...rest.slice(1)];
  }
}

function removeAny(abs: string): void {
  rmSync(abs, { recursive: true, force: true });
}

function lstatOrUndefined(abs: string): Stats | undefined {
  try {
    return lstatSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Makes `abs` a real directory: whatever else is there (a file, or a symlink that could lead outside) is removed. */
function ensureDir(abs: string): void {
  const st = lstatOrUndefined(abs);
  if (st?.isDirectory()) return;
  if (st) removeAny(abs);
  mkdirSync(abs);
}

function apply(ws: Workspace, target: Flat, steps: Plan, staged: Map<string, string>, force: boolean): number {
  const abs = (p: string) => join(ws.root, p);
  for (const path of steps.deletes) {
    const st = lstatOrUndefined(abs(path));
    if (!st) continue;
    if (st.isDirectory()) {
      // A directory replaced by a file goes entirely (the plan checked its contents are ours,
      // or --force said to discard them); otherwise only an emptied one is removed.
      if (target.get(path) || force) removeAny(abs(path));
      else try { rmdirSync(abs(path)); } catch { /* still holds untracked or ignored files */ }
    } else {
      rmSync(abs(path), { force: true });
    }
  }
  // Parents before children (the target is ordered that way), so no path is ever reached through a symlink.
  for (const path of steps.dirs) ensureDir(abs(path));
  let bytesWritten = 0;
  let links = 0;
  for (const path of steps.writes) {
    const t = target.get(path)!;
    const dest = abs(path);
    if (t.type === 'file') {
      renameSync(staged.get(path)!, dest);
      bytesWritten += t.size;
    } else {
      // Created aside and renamed over, so the old entry is replaced atomically.
      const tmp = join(ws.stagingDir, `link-${links++}`);
      symlinkSync(t.target!, tmp);
      renameSync(tmp, dest);
      try { lutimesSync(dest, seconds(t.mtime), seconds(t.mtime)); } catch { /* not supported everywhere */ }
    }
  }
  for (const path of steps.fixMeta) {
    const t = target.get(path)!;
    if (t.type === 'file') {
      chmodSync(abs(path), t.mode & 0o777);
      utimesSync(abs(path), seconds(t.mtime), seconds(t.mtime));
    }
  }
  // Directory mtimes last, deepest first: creating entries inside a directory changes its mtime.
  const dirs = [...steps.dirs].sort((a, b) => comparePaths(b, a));
  for (const path of dirs) {
    const t = target.get(path)!;
    try {
      chmodSync(abs(path), t.mode & 0o777);
      utimesSync(abs(path), seconds(t.mtime), seconds(t.mtime));
    } catch { /* best effort, as tar does */ }
  }
  return bytesWritten;
}
