// Opening an encrypted store: the key sources offered by the environment, tried against its keyring.

import { delimiter } from 'node:path';
import type { FileStore } from '../store/file-store.js';
import type { Kms } from './kms.js';
import { usage } from '../errors.js';
import { openWriter, repoKeys, unlock, type Keyring, type RepoKeys, type Unlockers } from './keyring.js';

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

/**
 * The keys the offered sources give for this keyring: a write-only host's (ELTON_WRITER), or the
 * repository key with the keys of the writers it lists.
 */
export async function openRepoKeys(keyring: Keyring, offered = offeredKeys()): Promise<RepoKeys> {
  if (offered.writer) return openWriter(keyring, offered.writer, kmsClient);
  return repoKeys(await unlock(keyring, offered, kmsClient), keyring);
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
  store.useKeys(await openRepoKeys(await store.readKeyring(), offered));
  return store;
}
