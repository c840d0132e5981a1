// Turns a remote URL (or a local path) into a Store.

import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { statSync } from 'node:fs';
import { usage } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunker.js';
import { FileStore } from './file-store.js';
import { STORE_FORMAT, type Store, type StoreConfig } from './store.js';

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
export function normalizeRemote(text: string, cwd = process.cwd()): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    if (!text.startsWith('file://')) {
      throw usage(`unsupported remote "${text}"`, 'this version of elton supports file:///PATH remotes and workspace paths');
    }
    return text;
  }
  const abs = resolve(cwd, text);
  try {
    if (statSync(join(abs, '.elton', 'config.json')).isFile()) return pathToFileURL(join(abs, '.elton', 'store')).href;
  } catch { /* not a workspace: a plain store directory */ }
  return pathToFileURL(abs).href;
}

export async function openStore(url: string): Promise<Store & { knownIds?: () => Promise<string[]> }> {
  return FileStore.open(FileStore.pathFromUrl(url));
}

export async function createStore(url: string, config = defaultStoreConfig()): Promise<Store> {
  return FileStore.create(FileStore.pathFromUrl(url), config);
}
