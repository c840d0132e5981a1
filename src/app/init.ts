// Use-case: make a directory a workspace, with the embedded store or a remote.

import { promises as fsp } from 'node:fs';
import { basename, resolve } from 'node:path';
import { exists, usage } from '../errors.js';
import { checkTreeName, treeNameFromDir } from '../ref.js';
import type { S3Settings } from '../remote/s3-client.js';
import { createEncryptedStore, createStore, isNetworkUrl, normalizeRemote } from '../store/open.js';
import { createKeyring, listWrappings, parseKeySource } from '../crypto/keyring.js';
import { assertMayCommit } from '../codec.js';
import { kmsClient } from '../crypto/unlock.js';
import { Workspace, WORKSPACE_FORMAT } from '../workspace/workspace.js';
import type { Store, Transfer } from '../store/store.js';
import { storeOptions, transferOf, type Deps } from './context.js';

export interface InitOptions {
  dir?: string; tree?: string; remote?: string; s3?: S3Settings;
  /** A new encrypted store, its key wrapped by each of these sources (passphrase, keyfile:PATH, kms:KEY). */
  encrypt?: { sources: string[]; passphrase: () => string };
}
export interface InitResult {
  root: string; tree: string; remote: string | null; store: string; transfer: Transfer;
  /** The store is encrypted (made so here, or joined). */
  encrypted: boolean;
  /** The wrappings of a store made encrypted here (null otherwise). */
  encryption: Array<{ id: string; source: string; detail: string }> | null;
}

export async function init(opts: InitOptions, deps: Deps): Promise<InitResult> {
  const root = resolve(deps.cwd, opts.dir ?? '.');
  if (Workspace.isWorkspace(root)) {
    throw exists(`${root} is already an elton workspace`, 'use it as it is, or remove its .elton/ directory to start over');
  }
  const tree = opts.tree ? checkTreeName(opts.tree) : treeNameFromDir(basename(root));
  if (!opts.remote && Object.values(opts.s3 ?? {}).some((v) => v !== undefined)) throw usage('S3 settings need an s3:// remote', 'add --remote s3://BUCKET/PREFIX');
  const remote = opts.remote ? normalizeRemote(opts.remote, deps.cwd, opts.s3) : null;
  // Key sources are checked, and KMS asked, before anything is created.
  const keys = opts.encrypt ? await createKeyring((opts.encrypt.sources.length ? opts.encrypt.sources : ['passphrase']).map((s) => parseKeySource(s, opts.encrypt!.passphrase)), kmsClient) : undefined;
  const created = await fsp.mkdir(root, { recursive: true });
  const ws = await Workspace.create(root, { format: WORKSPACE_FORMAT, tree, remote });
  let store: Store | undefined;
  try {
    // For a master, this fetches its store config: an unreachable master or a bad token fails init here.
    store = keys ? await createEncryptedStore(ws.remoteUrl, keys.keyring, keys.master, storeOptions(ws)) : await createStore(ws.remoteUrl, storeOptions(ws));
    assertMayCommit(store.codec.keys, tree);
  } catch (err) {
    await store?.close();
    await fsp.rm(created ?? ws.meta, { recursive: true, force: true });
    throw err;
  }
  const encrypted = !!store.config.encryption;
  if (encrypted) await ws.markEncrypted();
  await store.close();
  const encryption = keys ? listWrappings(keys.keyring).map(({ id, source, detail }) => ({ id, source, detail })) : null;
  return { root, tree, remote, store: ws.remoteUrl, transfer: transferOf(store), encrypted, encryption };
}
