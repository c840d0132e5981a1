// Walks a working tree and lists what a snapshot keeps: files, directories and symlinks, never following links.

import { readdirSync, lstatSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { invalidNameReason } from '../tree.js';
import { ALWAYS_IGNORED, IgnoreRules } from './ignore.js';
import type { Reporter } from '../events.js';

export interface ScanEntry {
  /** Posix path relative to the workspace root; '' is the root. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  target?: string;
}

export function entryFromStats(path: string, st: Stats, type: ScanEntry['type']): ScanEntry {
  return { path, type, mode: st.mode & 0o7777, size: type === 'file' ? st.size : 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}

/**
 * Lists the workspace in depth-first order, parents before children. Synchronous on purpose:
 * stat calls on a warm cache take microseconds, and the async round trip per call costs more.
 */
export function scanWorkspace(root: string, reporter?: Reporter): ScanEntry[] {
  const rules = IgnoreRules.forWorkspace(root);
  const out: ScanEntry[] = [entryFromStats('', lstatSync(root), 'dir')];
  const walk = (rel: string) => {
    const abs = rel ? join(root, rel) : root;
    const pushed = rules.enter(rel);
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (err) {
      rules.leave(pushed);
      reporter?.({ type: 'warning', code: 'unreadable-dir', path: rel, message: `skipped unreadable directory ${rel || '.'}: ${(err as Error).message}` });
      return;
    }
    names.sort();
    for (const name of names) {
      if (ALWAYS_IGNORED.has(name)) continue;
      const path = rel ? `${rel}/${name}` : name;
      const bad = invalidNameReason(name);
      if (bad) {
        reporter?.({ type: 'warning', code: 'bad-name', path, message: `skipped ${path}: its name ${bad}` });
        continue;
      }
      let st: Stats;
      try {
        st = lstatSync(join(abs, name));
      } catch {
        continue; // vanished while we looked
      }
      const isDir = st.isDirectory();
      if (rules.ignores(path, isDir)) continue;
      if (isDir) {
        out.push(entryFromStats(path, st, 'dir'));
        walk(path);
      } else if (st.isFile()) {
        out.push(entryFromStats(path, st, 'file'));
      } else if (st.isSymbolicLink()) {
        const entry = entryFromStats(path, st, 'symlink');
        entry.target = readlinkSync(join(abs, name));
        out.push(entry);
      } else {
        reporter?.({ type: 'warning', code: 'special-file', path, message: `skipped special file ${path} (not a regular file, directory or symlink)` });
      }
    }
    rules.leave(pushed);
  };
  walk('');
  return out;
}
