// Use-cases: the keyring of an encrypted store (docs/encryption.md). Adding, removing and rotating
// a wrapping need the repository key open; listing does not, and shows no secret.

import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import { exists, ioError, usage } from '../errors.js';
import { FileStore } from '../store/file-store.js';
import { isNetworkUrl, normalizeRemote } from '../store/open.js';
import { Workspace } from '../workspace/workspace.js';
import { addWrapping, listWrappings, newKeyFileContent, parseKeySource, removeWrapping, rotateKms, unlock, type Keyring } from '../crypto/keyring.js';
import { kmsClient, offeredKeys } from '../crypto/unlock.js';
import type { Deps } from './context.js';

export interface KeyListing { store: string; wrappings: Array<{ id: string; source: string; created: string; detail: string }> }

/** The encrypted store of the workspace (or the store at `remote`), opened without its key. */
async function encryptedStore(remote: string | undefined, deps: Deps): Promise<FileStore> {
  const url = remote ? normalizeRemote(remote, deps.cwd) : (await Workspace.find(deps.cwd)).remoteUrl;
  if (isNetworkUrl(url)) throw usage(`${url} is not a directory store`, 'encrypted masters and buckets are not supported yet (docs/encryption.md)');
  const store = await FileStore.open(FileStore.pathFromUrl(url));
  if (!store.config.encryption) {
    await store.close();
    throw usage(`the store at ${store.root} is not encrypted`, 'encryption is chosen when a store is made: `elton init --encrypt`');
  }
  return store;
}

async function withKeyring(remote: string | undefined, deps: Deps, change: (keyring: Keyring, master: Buffer) => Promise<Keyring> | Keyring): Promise<KeyListing> {
  const store = await encryptedStore(remote, deps);
  try {
    const keyring = await store.readKeyring();
    const master = await unlock(keyring, offeredKeys(), kmsClient);
    const changed = await change(keyring, master);
    await store.writeKeyring(changed);
    return { store: store.root, wrappings: listWrappings(changed) };
  } finally {
    await store.close();
  }
}

export async function keyList(remote: string | undefined, deps: Deps): Promise<KeyListing> {
  const store = await encryptedStore(remote, deps);
  try {
    return { store: store.root, wrappings: listWrappings(await store.readKeyring()) };
  } finally {
    await store.close();
  }
}

/** `passphrase` gives the new wrapping's passphrase, when the source is one. */
export async function keyAdd(source: string, passphrase: () => string, remote: string | undefined, deps: Deps): Promise<KeyListing> {
  const parsed = parseKeySource(source, passphrase);
  return withKeyring(remote, deps, (keyring, master) => addWrapping(keyring, master, parsed, kmsClient));
}

export async function keyRemove(id: string, remote: string | undefined, deps: Deps): Promise<KeyListing> {
  return withKeyring(remote, deps, (keyring) => removeWrapping(keyring, id));
}

export async function keyRotate(id: string, to: string | undefined, remote: string | undefined, deps: Deps): Promise<KeyListing> {
  return withKeyring(remote, deps, (keyring, master) => rotateKms(keyring, master, id, to, kmsClient));
}

/** Writes a new key file: 32 random bytes, base64, readable by its owner only; never over an existing file. */
export async function keyGenerate(path: string, deps: Deps): Promise<{ path: string }> {
  const target = resolve(deps.cwd, path);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(target, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists(`${target} already exists`, 'a key file is never overwritten: choose another path, or remove the old one if nothing needs it');
    throw ioError(`cannot create the key file ${target}`, err);
  }
  try {
    await fh.writeFile(newKeyFileContent());
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { path: target };
}
