// Use-cases: the keyring of an encrypted store (docs/encryption.md). Adding, removing and rotating
// a wrapping need the repository key open; listing does not, and shows no secret.

import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { exists, ioError, notFound, usage } from '../errors.js';
import { writeFileAtomic } from '../lib/atomic.js';
import { isNetworkUrl, normalizeRemote, openKeyringOf } from '../store/open.js';
import type { KeyringHolder } from '../store/store.js';
import { checkTreeName } from '../ref.js';
import { Workspace } from '../workspace/workspace.js';
import { addWrapping, addWriter, decodeKeyring, sealKeyring, encodeKeyring, listWrappings, newKeyFileContent, parseKeySource, removeWrapping, rotateKms, type Keyring } from '../crypto/keyring.js';
import { kmsClient, offeredKeys, openKeyring } from '../crypto/unlock.js';
import { pinKeyring, readPin } from '../crypto/pin.js';
import type { Deps } from './context.js';

export interface KeyListing { store: string; wrappings: Array<{ id: string; source: string; created: string; detail: string }> }

interface Place { url: string; holder: KeyringHolder; close(): Promise<void>; cache?: string }

/** Where the keyring of the workspace's store (or of the store at `remote`) lives: the store itself, also at a master or a bucket. */
async function keyringPlace(remote: string | undefined, deps: Deps): Promise<Place> {
  let url: string;
  let token: string | undefined;
  let cache: string | undefined;
  if (remote) {
    url = normalizeRemote(remote, deps.cwd);
  } else {
    const ws = await Workspace.find(deps.cwd);
    url = ws.remoteUrl;
    token = ws.config.token;
    if (isNetworkUrl(url)) cache = ws.cachePath;
  }
  const { holder, config, close } = await openKeyringOf(url, token);
  if (!config.encryption) {
    await close();
    throw usage(`the store at ${url} is not encrypted`, 'encryption is chosen when a store is made: `elton init --encrypt`');
  }
  return { url, holder, close, cache };
}

async function readKeyringAt(place: Place): Promise<{ keyring: Keyring; data: Buffer; tag: string }> {
  const held = await place.holder.readKeyringBytes();
  if (!held) throw notFound(`the keyring of the encrypted store at ${place.url}`, 'restore it from a backup of the store (elton backup copies it)');
  return { keyring: decodeKeyring(held.data, place.url), data: held.data, tag: held.tag };
}

/**
 * Opens the key, changes the keyring, and writes it back only if nobody changed it meanwhile.
 * The keyring is opened against this host's pin, like any command's: a rolled-back one is
 * refused, and one changed without the key is replaced by the change made to the pinned copy
 * (numbered past the bad one, so the store takes it), which repairs the store.
 */
async function withKeyring(remote: string | undefined, deps: Deps, change: (keyring: Keyring, master: Buffer) => Promise<Keyring> | Keyring): Promise<KeyListing> {
  const place = await keyringPlace(remote, deps);
  try {
    const read = await readKeyringAt(place);
    if (offeredKeys().writer) throw usage('a write-only host cannot change the keyring', 'run key commands where the repository key is (ELTON_KEYFILE, ELTON_PASSPHRASE or KMS), without ELTON_WRITER');
    const opened = await openKeyring(read.data, place.url);
    const base = opened.fromPin ? { ...opened.keyring, generation: Math.max(opened.keyring.generation, read.keyring.generation) } : opened.keyring;
    const master = opened.master!;
    const changed = sealKeyring(await change(base, master), master);
    const data = encodeKeyring(changed);
    await place.holder.writeKeyringBytes(data, read.tag);
    await pinKeyring(data, changed, await readPin(changed.check));
    // The workspace's cache keeps a copy, which opens the store without asking the remote.
    if (place.cache) await writeFileAtomic(join(place.cache, 'keyring'), data).catch(() => {});
    return { store: place.url, wrappings: listWrappings(changed) };
  } finally {
    await place.close();
  }
}

export async function keyList(remote: string | undefined, deps: Deps): Promise<KeyListing> {
  const place = await keyringPlace(remote, deps);
  try {
    return { store: place.url, wrappings: listWrappings((await readKeyringAt(place)).keyring) };
  } finally {
    await place.close();
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

/**
 * Adds a write-only host: its credential is written to `out` (0600, never over a file), then the
 * keyring lists it. Without the keyring change the credential opens nothing, so a failure leaves
 * nothing behind but the file, which is removed.
 */
export async function keyWriter(name: string, trees: string[], out: string, kmsKey: string | undefined, remote: string | undefined, deps: Deps): Promise<KeyListing & { writer: { id: string; name: string; credential: string } }> {
  const target = resolve(deps.cwd, out);
  let made: { id: string; name: string } | undefined;
  try {
    const listing = await withKeyring(remote, deps, async (keyring, master) => {
      const { keyring: changed, credential } = await addWriter(keyring, master, name, trees.map(checkTreeName), kmsKey, kmsClient);
      await writeSecretFile(target, Buffer.from(JSON.stringify(credential, null, 2) + '\n'), 'writer credential');
      made = { id: credential.id, name };
      return changed;
    });
    return { ...listing, writer: { ...made!, credential: target } };
  } catch (err) {
    if (made) await fsp.rm(target, { force: true });
    throw err;
  }
}

/** Writes a file readable by its owner only, durably, never over an existing one. */
async function writeSecretFile(target: string, data: Buffer, what: string): Promise<void> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(target, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists(`${target} already exists`, `a ${what} is never overwritten: choose another path, or remove the old one if nothing needs it`);
    throw ioError(`cannot create the ${what} ${target}`, err);
  }
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes a new key file: 32 random bytes, base64, readable by its owner only; never over an existing file. */
export async function keyGenerate(path: string, deps: Deps): Promise<{ path: string }> {
  const target = resolve(deps.cwd, path);
  await writeSecretFile(target, Buffer.from(newKeyFileContent()), 'key file');
  return { path: target };
}
