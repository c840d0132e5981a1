// Crash-safe file writes: temp file, fsync, rename, then fsync of the directory.

import { randomBytes } from 'node:crypto';
import { promises as fsp, constants } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Flushes a directory's entries, so that a rename or create inside it survives power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, constants.O_RDONLY);
  try { await fh.sync(); } finally { await fh.close(); }
}

async function writeDurableTemp(path: string, data: Uint8Array | string): Promise<string> {
  const tmp = tempNameFor(path);
  const fh = await fsp.open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  return tmp;
}

/** Replaces `path` with `data` so that readers see either the old or the new content, never a mix. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = await writeDurableTemp(path, data);
  try {
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/**
 * Creates `path` with `data` only if it does not exist yet; returns false if it did.
 * link(2) is atomic and fails with EEXIST, so two racing writers can never both win,
 * and the winner's file is complete from the moment it appears.
 */
export async function createFileExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
  const tmp = await writeDurableTemp(path, data);
  try {
    await fsp.link(tmp, path);
    await fsyncDir(dirname(path));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}
