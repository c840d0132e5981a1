// This host's memory of each encrypted repository's keyring (docs/encryption.md, "The keyring is
// authenticated, and pinned"): the newest one it has verified with the key, in the user cache,
// by the repository key's check value. Whatever store a keyring comes from (a master, a bucket,
// a directory, a backup), a keyring older than the pinned one, or as old but different, is a
// rollback: refused. And when a store's keyring does not verify, the pinned one still opens the
// repository, and the next key command writes it back.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { corrupt } from '../errors.js';
import { writeFileAtomic } from '../lib/atomic.js';
import { sha256 } from '../lib/hash.js';
import { userCacheDir } from '../store/user-cache.js';
import { decodeKeyring, type Keyring } from './keyring.js';

export const pinPath = (check: string) => join(userCacheDir(), 'keyrings', `${sha256(`elton keyring pin\n${check}`).toString('hex').slice(0, 32)}.json`);

export interface Pinned { data: Buffer; keyring: Keyring; path: string }

export async function readPin(check: string): Promise<Pinned | undefined> {
  const path = pinPath(check);
  let data: Buffer;
  try {
    data = await fsp.readFile(path);
  } catch {
    return undefined;
  }
  try {
    return { data, keyring: decodeKeyring(data, path), path };
  } catch {
    return undefined; // a damaged pin protects nothing; the next verified keyring replaces it
  }
}

/** Refuses a keyring older than the pinned one, or as old and different: a rollback. */
export function refuseRollback(keyring: Keyring, data: Buffer, pinned: Pinned | undefined, where: string): void {
  if (!pinned) return;
  const older = keyring.generation < pinned.keyring.generation;
  if (older || (keyring.generation === pinned.keyring.generation && !data.equals(pinned.data))) {
    throw corrupt(`the keyring at ${where} is ${older ? 'older than' : 'not'} the one this host has verified (generation ${keyring.generation}, this host has seen ${pinned.keyring.generation})`,
      `someone restored or replaced it; if the store's owner restored an older keyring on purpose, remove ${pinned.path} on this host`, { object: 'keyring' });
  }
}

/** Remembers a keyring verified with the key, if it is newer than the pinned one. */
export async function pinKeyring(data: Buffer, keyring: Keyring, pinned: Pinned | undefined): Promise<void> {
  if (pinned && keyring.generation <= pinned.keyring.generation) return;
  const path = pinPath(keyring.check);
  await fsp.mkdir(join(userCacheDir(), 'keyrings'), { recursive: true });
  await writeFileAtomic(path, data).catch(() => {}); // a read-only cache only loses the pin's protection
}
