// Turns a remote URL (or a local path) into a Store.

import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { hasCode, usage } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunker.js';
import { HttpStore } from '../remote/http-store.js';
import { LOCAL_HEADER } from '../remote/wire.js';
import { openKeys } from '../crypto/unlock.js';
import type { Keyring } from '../crypto/keyring.js';
import { S3Store } from '../remote/s3-store.js';
import { formatS3Url, isS3Url, parseS3Url, type S3Settings } from '../remote/s3-client.js';
import { CachedStore } from './cached-store.js';
import { FileStore } from './file-store.js';
import { remoteCacheDir, UserCache } from './user-cache.js';
import { STORE_FORMAT, type CopyTarget, type Remote, type Store, type StoreConfig } from './store.js';

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
async function openRemote(url: string, opts: OpenOptions, create?: StoreConfig): Promise<Store> {
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
    if (local) {
      return new CachedStore(local, readOnly(isS3Url(url) ? S3Store.withConfig(url, local.config, indexCache) : HttpStore.withConfig(url, client, local.config)), userCache);
    }
    let remote: Remote;
    if (isS3Url(url)) remote = readOnly(create ? await S3Store.create(url, create, indexCache) : await S3Store.connect(url, indexCache));
    else remote = await HttpStore.connect(url, client);
    try {
      return new CachedStore(await FileStore.create(cacheDir, remote.config), remote, userCache);
    } catch (err) {
      await remote.close();
      throw err;
    }
  } catch (err) {
    await userCache.close();
    throw err;
  }
}

/**
 * Opens a remote for reading without a workspace (a mount, a gateway): its config and version
 * records are kept in the user cache's directory for that remote, objects in the shared cache.
 */
export async function openForReading(url: string, token?: string, tokenWins = false, local = false): Promise<Store> {
  if (!isNetworkUrl(url)) return openKeys(await FileStore.open(FileStore.pathFromUrl(url)));
  const userCache = await UserCache.open();
  return openRemote(url, { cacheDir: userCache.remoteDir(url), userCache, token, tokenWins, readOnly: true, local });
}

/**
 * Opens a store to write copies into (a backup target), directly: never through a cache, which
 * could answer for objects the store itself lacks. An empty target is created with `config`,
 * except for a dry run, which writes nothing (and finds no store there: E_NOT_FOUND).
 */
export async function openForCopying(url: string, config: StoreConfig, token?: string, dryRun = false): Promise<CopyTarget> {
  if (isHttpUrl(url)) return HttpStore.connect(url, { token, caFile: process.env.ELTON_CA_FILE || undefined, headers: { [LOCAL_HEADER]: '1' } });
  if (isS3Url(url)) {
    const indexCache = join(remoteCacheDir(url), 'remote-index');
    if (!dryRun) return S3Store.create(url, config, indexCache);
    const store = await S3Store.connect(url, indexCache);
    store.readOnly = true;
    return store;
  }
  const root = FileStore.pathFromUrl(url);
  return dryRun ? FileStore.open(root) : FileStore.create(root, config);
}

export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  if (isNetworkUrl(url)) return openRemote(url, opts);
  return openKeys(await FileStore.open(FileStore.pathFromUrl(url)));
}

export async function createStore(url: string, opts: OpenOptions = {}, config = defaultStoreConfig()): Promise<Store> {
  if (isNetworkUrl(url)) return openRemote(url, opts, config);
  return openKeys(await FileStore.create(FileStore.pathFromUrl(url), config));
}

/** A new encrypted store at a directory (the embedded store, or file://): its keyring, then its config. */
export async function createEncryptedStore(url: string, keyring: Keyring, master: Buffer): Promise<Store> {
  if (isNetworkUrl(url)) {
    throw usage('encrypted masters and buckets are not supported yet', 'encrypt the embedded store or a file:// store for now (docs/encryption.md)');
  }
  const config: StoreConfig = { ...defaultStoreConfig(), idScheme: 'hmac-sha256', encryption: { cipher: 'aes-256-gcm' } };
  return FileStore.createEncrypted(FileStore.pathFromUrl(url), config, keyring, master);
}
