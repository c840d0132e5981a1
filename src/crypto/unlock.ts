// Opening an encrypted store: the key sources offered by the environment, tried against its keyring.

import { delimiter } from 'node:path';
import type { FileStore } from '../store/file-store.js';
import type { Kms } from './kms.js';
import { unlock, type Unlockers } from './keyring.js';

/**
 * What this process offers to open an encrypted store: ELTON_KEYFILE (one or more paths,
 * separated like PATH), ELTON_PASSPHRASE, and the KMS wrappings unless ELTON_KMS=off (a host
 * without KMS access then fails at once instead of waiting on the credential chain).
 */
export function offeredKeys(env: NodeJS.ProcessEnv = process.env): Unlockers {
  return {
    passphrase: env.ELTON_PASSPHRASE || undefined,
    keyFiles: (env.ELTON_KEYFILE ?? '').split(delimiter).filter(Boolean),
    kms: env.ELTON_KMS !== 'off',
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

/** Opens an encrypted store with the keys offered; a plain store is left as it is. */
export async function openKeys(store: FileStore, offered: Unlockers = offeredKeys()): Promise<FileStore> {
  if (!store.config.encryption) return store;
  store.useKeys(await unlock(await store.readKeyring(), offered, kmsClient));
  return store;
}
