// Opening an encrypted store: the key sources offered by the environment, tried against its keyring.

import { delimiter } from 'node:path';
import type { FileStore } from '../store/file-store.js';
import { awsKms, type Kms } from './kms.js';
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

let shared: Kms | undefined;
/** One KMS client per process, made on first use: a store opened with a key file never touches the AWS SDK. */
export const kmsClient = (): Kms => (shared ??= awsKms());

/** Opens an encrypted store with the keys offered; a plain store is left as it is. */
export async function openKeys(store: FileStore, offered: Unlockers = offeredKeys()): Promise<FileStore> {
  if (!store.config.encryption) return store;
  store.useKeys(await unlock(await store.readKeyring(), offered, kmsClient));
  return store;
}
