// Turns a remote URL (or a local path) into a Store.

import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { corrupt, exists, hasCode, notFound, usage } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunker.js';
import { HttpStore } from '../remote/http-store.js';
import { LOCAL_HEADER } from '../remote/wire.js';
import { offeredKeys, openKeyring, openKeys, refuseWriterOnPlain } from '../crypto/unlock.js';
import { decodeKeyring, encodeKeyring, repoKeys, type Keyring } from '../crypto/keyring.js';
import { sha256 } from '../lib/hash.js';
import { S3Store } from '../remote/s3-store.js';
import { formatS3Url, isS3Url, parseS3Url, type S3Settings } from '../remote/s3-client.js';
import { CachedStore } from './cached-store.js';
import { FileStore } from './file-store.js';
import { remoteCacheDir, UserCache } from './user-cache.js';
import { STORE_FORMAT, type CopyTarget, type KeyringHolder, type Remote, type Store, type StoreConfig } from './store.js';

export interface OpenOptions {
  /** Where a remote store keeps what it fetched and what it stages for a push (required for http remotes). */
  cacheDir?: string;
  /** Bearer token from the workspace config; ELTON_TOKEN wins, unless `tokenWins`. */
  token?: string;
  /** The token was given for this remote in particular (a backup's ELTON_FROM_TOKEN): it beats ELTON_TOKEN. */
  tokenWins?: boolean;
  /** Nothing will be written through it (verify, mount, serve, a backup's source). */
  readOnly?: boolean;
  /** The user-wide object cache to share; opened at its default place when absent. */
  userCache?: UserCache;
  /** Ask a master for what it stores itself, never on behalf of a tree's home (verify, a backup's source). */
  local?: boolean;
  /** Leave an encrypted store locked: its objects and records pass as stored (a backup's source). */
  locked?: boolean;
}

export const isHttpUrl = (url: string) => /^https?:\/\//i.test(url);
/** Remotes reached over the network, fronted by a local cache. */
export const isNetworkUrl = (url: string) => isHttpUrl(url) || isS3Url(url);

export function defaultStoreConfig(): StoreConfig {
  return {
    format: STORE_FORMAT,
    idScheme: 'sha256',
    chunker: { ...DEFAULT_CHUNKER },
    compression: { codec: 'brotli', quality: 2 },
    created: new Date().toISOString(),
  };
}

/**
 * Normalizes what a user typed as a remote: file:// URLs stay, a plain path becomes one,
 * and a path to a workspace means that workspace's embedded store.
 */
export function normalizeRemote(text: string, cwd = process.cwd(), s3?: S3Settings): string {
  const given = Object.entries(s3 ?? {}).filter(([, v]) => v !== undefined);
  if (given.length && !isS3Url(text)) throw usage(`S3 settings (${given.map(([k]) => k).join(', ')}) apply only to an s3:// remote, not "${text}"`);
  if (isS3Url(text)) {
    const target = parseS3Url(text);
    return formatS3Url({ ...target, settings: { ...target.settings, ...Object.fromEntries(given) } });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    if (isHttpUrl(text)) {
      let url: URL;
      try { url = new URL(text); } catch { throw usage(`bad remote URL "${text}"`, 'write http(s)://HOST:PORT'); }
      if (url.username || url.password) throw usage('a remote URL must not carry credentials', 'put the token in ELTON_TOKEN or "token" in .elton/config.json');
      if (url.pathname !== '/' || url.search || url.hash) throw usage(`a master URL is http(s)://HOST:PORT, without a path: "${text}"`, `use ${url.origin}`);
      return url.origin;
    }
    if (!text.startsWith('file://')) {
      throw usage(`unsupported remote "${text}"`, 'a remote is file:///PATH, http(s)://HOST:PORT (an elton master), s3://BUCKET/PREFIX, or a workspace path');
    }
    return text;
  }
  const abs = resolve(cwd, text);
  let config: { remote?: string | null } | undefined;
  try {
    config = JSON.parse(readFileSync(join(abs, '.elton', 'config.json'), 'utf8')) as { remote?: string | null };
  } catch { /* not a workspace: a plain store directory */ }
  // A workspace stands for its store: its remote, or its embedded store.
  if (config) return typeof config.remote === 'string' && config.remote ? config.remote : pathToFileURL(join(abs, '.elton', 'store')).href;
  return pathToFileURL(abs).href;
}

/**
 * A network remote (a master, a bucket) is fronted by a local cache, which is created with the
 * remote's config on first use. With the cache in place, nothing is asked of the remote until
 * it is needed: an offline commit works.
 */
async function openRemote(url: string, opts: OpenOptions, create?: { config: StoreConfig; keyring?: Buffer; master?: Buffer }): Promise<Store> {
  if (!opts.cacheDir) throw new Error('internal: a network remote needs a cache directory');
  const cacheDir = opts.cacheDir;
  const client = {
    token: opts.tokenWins ? opts.token : process.env.ELTON_TOKEN || opts.token, caFile: process.env.ELTON_CA_FILE || undefined,
    headers: opts.local ? { [LOCAL_HEADER]: '1' } : undefined,
  };
  const indexCache = join(cacheDir, 'remote-index');
  let local: FileStore | undefined;
  try {
    local = await FileStore.open(cacheDir);
  } catch (err) {
    if (!hasCode(err, 'E_NOT_FOUND')) throw err;
  }
  const userCache = opts.userCache ?? await UserCache.open();
  try {
    const readOnly = <T extends Remote>(remote: T): T => {
      if (remote instanceof S3Store) remote.readOnly = !!opts.readOnly;
      return remote;
    };
    let remote: Remote;
    if (local) {
      remote = readOnly(isS3Url(url) ? S3Store.withConfig(url, local.config, indexCache) : HttpStore.withConfig(url, client, local.config));
    } else {
      if (isS3Url(url)) remote = readOnly(create ? await S3Store.create(url, create.config, indexCache, create.keyring) : await S3Store.connect(url, indexCache));
      else remote = await HttpStore.connect(url, client);
      try {
        local = await FileStore.create(cacheDir, remote.config);
      } catch (err) {
        await remote.close();
        throw err;
      }
    }
    const store = new CachedStore(local, remote, userCache);
    try {
      if (create?.keyring) await createRemoteKeyring(store, create.keyring);
      if (create?.master) local.useKeys(repoKeys(create.master));
      else if (local.config.encryption && !opts.locked) await unlockRemote(local, remote);
      else if (!local.config.encryption) refuseWriterOnPlain(url);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  } catch (err) {
    await userCache.close();
    throw err;
  }
}

const isKeyringHolder = (x: unknown): x is KeyringHolder => typeof (x as KeyringHolder).readKeyringBytes === 'function';

/** The keyring of an encrypted remote: where it keeps it (a master or a bucket answers for it, opaque to them). */
export function keyringHolderOf(remote: unknown, url: string): KeyringHolder {
  if (!isKeyringHolder(remote)) throw usage(`${url} cannot hold an encrypted store's keyring`, 'update the master to this version of elton');
  return remote;
}

/** Where the store at `url` keeps its keyring, reached directly (the key commands). */
export async function openKeyringOf(url: string, token?: string): Promise<{ holder: KeyringHolder; config: StoreConfig; close(): Promise<void> }> {
  const store = isS3Url(url) ? await S3Store.connect(url)
    : isHttpUrl(url) ? await HttpStore.connect(url, { token: process.env.ELTON_TOKEN || token, caFile: process.env.ELTON_CA_FILE || undefined })
    : await FileStore.open(FileStore.pathFromUrl(url));
  try {
    return { holder: keyringHolderOf(store, url), config: store.config, close: () => store.close() };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * A new encrypted store at a master or a bucket: its keyring goes there (created only if there
 * is none), then into the local cache, which opens it from then on.
 */
async function createRemoteKeyring(store: CachedStore, keyring: Buffer): Promise<void> {
  if (!store.config.encryption) {
    throw usage(`${store.url} holds a store that is not encrypted`, isHttpUrl(store.url)
      ? 'a master holds encrypted repositories only when started with --encrypted (docs/encryption.md)'
      : 'encryption is chosen when a store is made: use an empty bucket or prefix');
  }
  const holder = keyringHolderOf(store.remote, store.url);
  if (isHttpUrl(store.url)) {
    try {
      await holder.writeKeyringBytes(keyring, null);
    } catch (err) {
      if (!hasCode(err, 'E_CONFLICT')) throw err;
      throw exists(`${store.url} already holds an encrypted repository`, 'join it with `elton init --remote URL` (no --encrypt) and its key, or use another master');
    }
  } else if (!(await holder.readKeyringBytes())?.data.equals(keyring)) {
    throw exists(`${store.url} already holds an encrypted store`, 'join it with `elton init --remote URL` (no --encrypt) and its key, or use another prefix');
  }
  await store.local.writeKeyringBytes(keyring, null);
}

/**
 * Opens a remote's encrypted store with the keys offered. The remote's keyring is read every
 * time (one request), so that a wrapping or writer added or removed there counts at once; the
 * local cache's copy is used only when the remote cannot be reached. A keyring for another
 * repository key than the one this cache has used (its check value differs) is refused, so
 * whoever controls the remote cannot swap in a key of their own; rollbacks are refused, and
 * tampering survived, by this host's pin (openKeyring).
 */
async function unlockRemote(local: FileStore, remote: Remote): Promise<void> {
  const cached = await local.readKeyringBytes();
  let fresh: { data: Buffer } | undefined;
  try {
    fresh = await keyringHolderOf(remote, remote.url).readKeyringBytes();
  } catch (err) {
    if (!(cached && hasCode(err, 'E_UNREACHABLE'))) throw err;
    fresh = cached;
  }
  if (!fresh) throw notFound(`the keyring of the encrypted store at ${remote.url}`, 'restore it from a backup of the store (elton backup copies it)');
  if (cached && !cached.data.equals(fresh.data) && decodeKeyring(fresh.data, remote.url).check !== decodeKeyring(cached.data, local.root).check) {
    throw corrupt(`the keyring at ${remote.url} is for another key than the one this cache has used`,
      'someone replaced the keyring at the remote: check with the store\'s owner before trusting it', { object: 'keyring' });
  }
  const opened = await openKeyring(fresh.data, remote.url);
  local.useKeys(opened.keys);
  // The cache keeps a copy for working offline: only one that opened here, and never a writer's (it cannot verify one).
  if (!offeredKeys().writer && !cached?.data.equals(opened.data)) {
    await local.writeKeyringBytes(opened.data, cached ? sha256(cached.data).toString('hex') : null).catch(() => {});
  }
}

/**
 * Opens a remote for reading without a workspace (a mount, a gateway): its config and version
 * records are kept in the user cache's directory for that remote, objects in the shared cache.
 */
export async function openForReading(url: string, token?: string, tokenWins = false, local = false, locked = false): Promise<Store> {
  if (!isNetworkUrl(url)) {
    const store = await FileStore.open(FileStore.pathFromUrl(url));
    return locked ? store : openKeys(store);
  }
  const userCache = await UserCache.open();
  return openRemote(url, { cacheDir: userCache.remoteDir(url), userCache, token, tokenWins, readOnly: true, local, locked });
}

/**
 * Opens a store to write copies into (a backup target), directly: never through a cache, which
 * could answer for objects the store itself lacks. An empty target is created with `config`,
 * except for a dry run, which writes nothing (and finds no store there: E_NOT_FOUND).
 */
export async function openForCopying(url: string, config: StoreConfig, token?: string, dryRun = false, keyring?: Buffer): Promise<CopyTarget> {
  if (isHttpUrl(url)) return HttpStore.connect(url, { token, caFile: process.env.ELTON_CA_FILE || undefined, headers: { [LOCAL_HEADER]: '1' } });
  if (isS3Url(url)) {
    const indexCache = join(remoteCacheDir(url), 'remote-index');
    if (!dryRun) return S3Store.create(url, config, indexCache, keyring);
    const store = await S3Store.connect(url, indexCache);
    store.readOnly = true;
    return store;
  }
  const root = FileStore.pathFromUrl(url);
  if (dryRun) return FileStore.open(root);
  return keyring ? FileStore.createWithKeyring(root, config, keyring) : FileStore.create(root, config);
}

export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  if (isNetworkUrl(url)) return openRemote(url, opts);
  return openKeys(await FileStore.open(FileStore.pathFromUrl(url)));
}

export async function createStore(url: string, opts: OpenOptions = {}, config = defaultStoreConfig()): Promise<Store> {
  if (isNetworkUrl(url)) return openRemote(url, opts, { config });
  return openKeys(await FileStore.create(FileStore.pathFromUrl(url), config));
}

/** A new encrypted store: its keyring, then its config (at a master, one started with --encrypted). */
export async function createEncryptedStore(url: string, keyring: Keyring, master: Buffer, opts: OpenOptions = {}): Promise<Store> {
  const config: StoreConfig = { ...defaultStoreConfig(), idScheme: 'hmac-sha256', encryption: { cipher: 'aes-256-gcm' } };
  if (isNetworkUrl(url)) return openRemote(url, opts, { config, keyring: encodeKeyring(keyring), master });
  return FileStore.createEncrypted(FileStore.pathFromUrl(url), config, keyring, master);
}
