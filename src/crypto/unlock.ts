// Opening an encrypted store: the key sources offered by the environment, tried against its keyring.

import { delimiter } from 'node:path';
import type { FileStore } from '../store/file-store.js';
import type { Kms } from './kms.js';
import { EltonError, hasCode, notFound, usage } from '../errors.js';
import { decodeKeyring, openWriter, repoKeys, unlock, type Keyring, type RepoKeys, type Unlockers } from './keyring.js';
import { pinKeyring, readPin, refuseRollback } from './pin.js';

/**
 * What this process offers to open an encrypted store: ELTON_KEYFILE (one or more paths,
 * separated like PATH), ELTON_PASSPHRASE, and the KMS wrappings unless ELTON_KMS=off (a host
 * without KMS access then fails at once instead of waiting on the credential chain).
 */
export function offeredKeys(env: NodeJS.ProcessEnv = process.env): Unlockers & { writer?: string } {
  return {
    passphrase: env.ELTON_PASSPHRASE || undefined,
    keyFiles: (env.ELTON_KEYFILE ?? '').split(delimiter).filter(Boolean),
    kms: env.ELTON_KMS !== 'off',
    writer: env.ELTON_WRITER || undefined,
  };
}

// The AWS SDK is loaded on the first KMS call only: a plain store, or one opened with a key
// file, never pays for it.
let loaded: Promise<Kms> | undefined;
const load = () => (loaded ??= import('./kms.js').then((m) => m.awsKms()));
const lazyKms: Kms = {
  generateKey: async (keyId, context) => (await load()).generateKey(keyId, context),
  wrap: async (keyId, plain, context) => (await load()).wrap(keyId, plain, context),
  unwrap: async (wrapped, context) => (await load()).unwrap(wrapped, context),
};
/** One KMS client per process, made on first use. */
export const kmsClient = (): Kms => lazyKms;

export interface OpenedKeyring {
  keys: RepoKeys;
  /** The keyring that opened: the one read, or this host's pinned copy if the one read did not verify. */
  keyring: Keyring;
  data: Buffer;
  /** The repository key (undefined on a write-only host). */
  master?: Buffer;
  /** The keyring read did not verify, and the pinned copy was used instead. */
  fromPin: boolean;
}

/**
 * Opens a keyring read from `where`, against this host's pin (src/crypto/pin.ts): a rollback is
 * refused; a keyring changed without the key gives way to the pinned copy, which verifies; a
 * verified newer one becomes the pin. A write-only host cannot verify a keyring, so it never pins one.
 */
export async function openKeyring(data: Buffer, where: string, offered = offeredKeys()): Promise<OpenedKeyring> {
  const keyring = decodeKeyring(data, where);
  const pinned = await readPin(keyring.check);
  refuseRollback(keyring, data, pinned, where);
  if (offered.writer) return { keys: await openWriter(keyring, offered.writer, kmsClient), keyring, data, fromPin: false };
  let master: Buffer;
  try {
    master = await unlock(keyring, offered, kmsClient, where);
  } catch (err) {
    if (!(pinned && hasCode(err, 'E_CORRUPT') && (err as EltonError).details?.keyringMac)) throw err;
    const fallback = await unlock(pinned.keyring, offered, kmsClient, pinned.path);
    return { keys: repoKeys(fallback, pinned.keyring), keyring: pinned.keyring, data: pinned.data, master: fallback, fromPin: true };
  }
  await pinKeyring(data, keyring, pinned);
  return { keys: repoKeys(master, keyring), keyring, data, master, fromPin: false };
}

/**
 * A write-only credential offered for a plain store: refused, because what it would write
 * would be plaintext, and the host was meant to write only ciphertext.
 */
export function refuseWriterOnPlain(url: string, offered = offeredKeys()): void {
  if (offered.writer) {
    throw usage(`ELTON_WRITER is set, and ${url} is not encrypted: this host would write plaintext`, 'point the workspace at the encrypted store its credential was made for, or unset ELTON_WRITER');
  }
}

/** Opens an encrypted store with the keys offered; a plain store is left as it is (unless a writer credential is offered). */
export async function openKeys(store: FileStore, offered = offeredKeys()): Promise<FileStore> {
  if (!store.config.encryption) {
    refuseWriterOnPlain(store.url, offered);
    return store;
  }
  const held = await store.readKeyringBytes();
  if (!held) throw notFound(`the keyring of the encrypted store at ${store.root}`, 'restore it from a backup of the store (elton backup copies it)');
  store.useKeys((await openKeyring(held.data, store.root, offered)).keys);
  return store;
}
