// Tree objects: one per directory, canonical JSON, entries sorted by the UTF-8 bytes of their names.

import { corrupt } from './errors.js';
import { isId } from './lib/hash.js';

export interface ChunkRef { id: string; size: number }

interface EntryBase { name: string; mode: number; mtime: number }
export interface FileEntry extends EntryBase { type: 'file'; size: number; chunks: ChunkRef[] }
export interface DirEntry extends EntryBase { type: 'dir'; tree: string }
export interface SymlinkEntry extends EntryBase { type: 'symlink'; target: string }
export type TreeEntry = FileEntry | DirEntry | SymlinkEntry;

export interface Tree { entries: TreeEntry[] }

export const TREE_FORMAT = 1;

/** Why `name` cannot be an entry name, or undefined when it can. */
export function invalidNameReason(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'not a string';
  if (name === '') return 'empty';
  if (name === '.' || name === '..') return `"${name}" is reserved`;
  if (name.includes('/')) return 'contains "/"';
  if (name.includes('\0')) return 'contains NUL';
  if (name.includes('\uFFFD')) return 'is not valid UTF-8';
  return undefined;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Orders names by their UTF-8 bytes. Without surrogate pairs, UTF-16 code-unit order is the
 * same as UTF-8 byte order, so the common case needs no encoding.
 */
export function compareNames(a: string, b: string): number {
  if (SURROGATE.test(a) || SURROGATE.test(b)) return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Canonical JSON: fixed key order, no whitespace. Equal trees always have equal bytes, hence equal ids. */
export function encodeTree(entries: TreeEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => compareNames(a.name, b.name));
  const parts = sorted.map((e) => {
    const head = `{"name":${JSON.stringify(e.name)},"type":"${e.type}","mode":${e.mode},"mtime":${e.mtime}`;
    switch (e.type) {
      case 'file':
        return `${head},"size":${e.size},"chunks":[${e.chunks.map((c) => `{"id":"${c.id}","size":${c.size}}`).join(',')}]}`;
      case 'dir':
        return `${head},"tree":"${e.tree}"}`;
      case 'symlink':
        return `${head},"target":${JSON.stringify(e.target)}}`;
    }
  });
  return Buffer.from(`{"format":${TREE_FORMAT},"entries":[${parts.join(',')}]}`, 'utf8');
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/**
 * Parses and validates a tree. Anything a hostile or damaged store could use to escape the
 * workspace (names with "/", "..", NUL, duplicates) or to confuse checkout is refused.
 */
export function decodeTree(plain: Buffer, id: string): Tree {
  const bad = (why: string) => corrupt(`tree ${id}: ${why}`, 'the tree object is malformed; it was not written by a correct elton', { object: id });
  let doc: unknown;
  try {
    doc = JSON.parse(plain.toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('not a JSON object');
  const d = doc as { format?: unknown; entries?: unknown };
  if (d.format !== TREE_FORMAT) throw bad(`unsupported tree format ${String(d.format)}`);
  if (!Array.isArray(d.entries)) throw bad('no entries');
  let previous: string | undefined;
  for (const raw of d.entries as TreeEntry[]) {
    const reason = invalidNameReason(raw?.name);
    if (reason) throw bad(`entry name ${JSON.stringify(raw?.name)} ${reason}`);
    if (previous !== undefined) {
      const order = compareNames(previous, raw.name);
      if (order === 0) throw bad(`duplicate entry "${raw.name}"`);
      if (order > 0) throw bad(`entries not sorted at "${raw.name}"`);
    }
    previous = raw.name;
    if (!isCount(raw.mode) || raw.mode > 0o7777) throw bad(`entry "${raw.name}" has a bad mode`);
    if (typeof raw.mtime !== 'number' || !Number.isFinite(raw.mtime)) throw bad(`entry "${raw.name}" has a bad mtime`);
    if (raw.type === 'file') {
      if (!isCount(raw.size) || !Array.isArray(raw.chunks)) throw bad(`file "${raw.name}" is malformed`);
      let total = 0;
      for (const c of raw.chunks) {
        if (!isId(c?.id) || !isCount(c.size)) throw bad(`file "${raw.name}" has a bad chunk`);
        total += c.size;
      }
      if (total !== raw.size) throw bad(`file "${raw.name}": chunk sizes do not add up to its size`);
    } else if (raw.type === 'dir') {
      if (!isId(raw.tree)) throw bad(`dir "${raw.name}" has a bad tree id`);
    } else if (raw.type === 'symlink') {
      if (typeof raw.target !== 'string' || raw.target === '' || raw.target.includes('\0')) throw bad(`symlink "${raw.name}" has a bad target`);
    } else {
      throw bad(`entry "${(raw as TreeEntry).name}" has unknown type`);
    }
  }
  return { entries: d.entries as TreeEntry[] };
}
