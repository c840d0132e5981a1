// The user-wide cache of immutable objects, shared by every workspace, mount and gateway of a user.
//
// Layout (docs/lazy.md):
//   objects/                a store (packs + indexes) of objects fetched from any remote
//   remotes/<key>/          per remote, for opens without a workspace (mount, serve): its config and version records
//   traffic.jsonl           one line per process that used the network: what it fetched and what the cache saved
// Objects are named by the hash of their content, so one fetched from any remote serves every
// remote and never needs invalidating. Several processes share the cache safely: packs have
// unique names and appear index-last, and a process re-reads the pack list before it fetches.
// Trimming removes whole packs, least recently used first.

import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CHUNKER } from '../chunker.js';
import { isErrno, usage } from '../errors.js';
import { sha256 } from '../lib/hash.js';
import { decodeIndex } from './pack.js';
import { FileStore } from './file-store.js';
import { STORE_FORMAT, type Transfer } from './store.js';

/** What a process moved, and what the cache spared it: encoded object bytes. */
export interface CacheUse {
  fetched: { objects: number; bytes: number };
  cached: { objects: number; bytes: number };
}

export const noCacheUse = (): CacheUse => ({ fetched: { objects: 0, bytes: 0 }, cached: { objects: 0, bytes: 0 } });

export interface TrafficLine extends CacheUse {
  time: string;
  remote: string;
  transfer: Transfer;
}

export interface RemoteTraffic extends CacheUse {
  remote: string;
  runs: number;
  transfer: Transfer;
}

export interface CacheStats {
  path: string;
  bytes: number;
  packs: number;
  objects: number;
  remotes: number;
  oldestUse: string | null;
  newestUse: string | null;
  traffic: RemoteTraffic[];
}

export interface TrimResult { path: string; maxBytes: number; before: number; after: number; removedPacks: number; removedBytes: number }

/** $ELTON_CACHE, else $XDG_CACHE_HOME/elton, else ~/.cache/elton. */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ELTON_CACHE) return env.ELTON_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'elton');
}

/** Objects are stored as received; this config only satisfies the store format (nothing is encoded here). */
const objectsConfig = () => ({
  format: STORE_FORMAT, idScheme: 'sha256' as const, chunker: { ...DEFAULT_CHUNKER },
  compression: { codec: 'raw' as const, quality: 0 }, created: new Date().toISOString(),
});

/** Where the cache keeps what belongs to one remote (its config, version records, S3 index objects). */
export function remoteCacheDir(url: string, dir = userCacheDir()): string {
  return join(dir, 'remotes', sha256(Buffer.from(url)).toString('hex').slice(0, 16));
}

export class UserCache {
  private constructor(readonly dir: string, readonly objects: FileStore) {}

  static async open(dir = userCacheDir()): Promise<UserCache> {
    const objects = await FileStore.create(join(dir, 'objects'), objectsConfig());
    objects.trackUse = true;
    return new UserCache(dir, objects);
  }

  /** Where a remote's config and version records are kept when no workspace holds them. */
  remoteDir(url: string): string {
    return remoteCacheDir(url, this.dir);
  }

  /** Appends one line; O_APPEND keeps concurrent writers' lines whole, and a reader skips a torn last line. */
  async record(line: TrafficLine): Promise<void> {
    await fsp.appendFile(join(this.dir, 'traffic.jsonl'), `${JSON.stringify(line)}\n`);
  }

  async close(): Promise<void> {
    await this.objects.close();
  }
}

interface PackFile { name: string; bytes: number; used: number }

async function listPacks(dir: string): Promise<PackFile[]> {
  const packsDir = join(dir, 'objects', 'packs');
  let names: string[];
  try {
    names = await fsp.readdir(packsDir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const packs: PackFile[] = [];
  for (const n of names.filter((x) => x.endsWith('.tar'))) {
    const name = n.slice(0, -4);
    try {
      const [tar, idx] = await Promise.all([fsp.stat(join(packsDir, n)), fsp.stat(join(packsDir, `${name}.idx`))]);
      packs.push({ name, bytes: tar.size + idx.size, used: tar.mtimeMs });
    } catch { /* being published or removed by another process */ }
  }
  return packs;
}

export async function cacheStats(dir = userCacheDir()): Promise<CacheStats> {
  const packs = await listPacks(dir);
  let objects = 0;
  for (const p of packs) {
    try {
      objects += decodeIndex(await fsp.readFile(join(dir, 'objects', 'packs', `${p.name}.idx`)), p.name).length;
    } catch { /* removed since the listing */ }
  }
  const remotes = (await fsp.readdir(join(dir, 'remotes')).catch(() => [] as string[])).length;
  const used = packs.map((p) => p.used);
  return {
    path: dir,
    bytes: packs.reduce((n, p) => n + p.bytes, 0),
    packs: packs.length,
    objects,
    remotes,
    oldestUse: used.length ? new Date(Math.min(...used)).toISOString() : null,
    newestUse: used.length ? new Date(Math.max(...used)).toISOString() : null,
    traffic: await readTraffic(dir),
  };
}

async function readTraffic(dir: string): Promise<RemoteTraffic[]> {
  let text: string;
  try {
    text = await fsp.readFile(join(dir, 'traffic.jsonl'), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const byRemote = new Map<string, RemoteTraffic>();
  for (const raw of text.split('\n')) {
    let line: TrafficLine;
    try { line = JSON.parse(raw) as TrafficLine; } catch { continue; }
    if (!line?.remote || !line.transfer || !line.fetched || !line.cached) continue;
    const t = byRemote.get(line.remote) ?? { remote: line.remote, runs: 0, transfer: { requests: 0, bytesUp: 0, bytesDown: 0 }, ...noCacheUse() };
    t.runs++;
    t.transfer.requests += line.transfer.requests;
    t.transfer.bytesUp += line.transfer.bytesUp;
    t.transfer.bytesDown += line.transfer.bytesDown;
    t.fetched.objects += line.fetched.objects;
    t.fetched.bytes += line.fetched.bytes;
    t.cached.objects += line.cached.objects;
    t.cached.bytes += line.cached.bytes;
    byRemote.set(line.remote, t);
  }
  return [...byRemote.values()].sort((a, b) => (a.remote < b.remote ? -1 : 1));
}

/** Parses 500M, 2G, 1.5GiB, 100000 (bytes). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) throw usage(`bad size "${text}"`, 'write a number of bytes, optionally with K, M, G or T (powers of 1024), as in 500M or 2G');
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * scale);
}

/**
 * Removes packs, least recently used first, until the objects take at most `maxBytes`. A
 * process reading a removed pack keeps its open file; one that had not opened it yet fetches
 * the objects again.
 */
export async function trimCache(maxBytes: number, dir = userCacheDir()): Promise<TrimResult> {
  const packs = await listPacks(dir);
  const before = packs.reduce((n, p) => n + p.bytes, 0);
  let after = before;
  let removedPacks = 0;
  packs.sort((a, b) => a.used - b.used);
  const store = packs.length ? await FileStore.open(join(dir, 'objects')) : undefined;
  for (const p of packs) {
    if (after <= maxBytes) break;
    await store!.removePack(p.name);
    after -= p.bytes;
    removedPacks++;
  }
  await store?.close();
  return { path: dir, maxBytes, before, after, removedPacks, removedBytes: before - after };
}
