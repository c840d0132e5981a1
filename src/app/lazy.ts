// Use-cases of lazy access without a workspace checkout: the gateway, the user cache.

import { resolve } from 'node:path';
import { EltonError, hasCode, usage } from '../errors.js';
import { startGateway, type Gateway, type GatewayLog } from '../lazy/gateway.js';
import { ObjectLoader, type LoaderStats } from '../lazy/loader.js';
import { mountView, unmount as unmountPath, type MountHandle, type MountStats } from '../lazy/mount.js';
import { VersionView } from '../lazy/view.js';
import { parseRef } from '../ref.js';
import type { Transfer } from '../store/store.js';
import type { CacheUse } from '../store/user-cache.js';
import { normalizeRemote, openForReading } from '../store/open.js';
import type { Store } from '../store/store.js';
import { cacheStats, parseSize, trimCache, userCacheDir, type CacheStats, type TrimResult } from '../store/user-cache.js';
import { Workspace } from '../workspace/workspace.js';
import { parseListen } from './master.js';
import { reporterOf, resolveVersion, type Deps } from './context.js';

/** The remote named by --remote, else the current workspace's (and its tree, for refs without a name). */
export async function remoteFor(given: string | undefined, deps: Deps): Promise<{ url: string; tree?: string; token?: string }> {
  if (given) return { url: normalizeRemote(given, deps.cwd) };
  try {
    const ws = await Workspace.find(deps.cwd);
    return { url: ws.remoteUrl, tree: ws.config.tree, token: ws.config.token };
  } catch (err) {
    if (!hasCode(err, 'E_NOT_WORKSPACE')) throw err;
    throw new EltonError(err.code, err.message, err.exitCode, 'pass --remote URL (a master, s3://BUCKET/PREFIX or a store path), or run inside a workspace');
  }
}

export interface ServeOptions { remote?: string; listen?: string; onRequest?: (log: GatewayLog) => void }
export interface ServeInfo { url: string; remote: string; cache: string }

export const DEFAULT_GATEWAY_PORT = 3587;

export async function serve(opts: ServeOptions, deps: Deps): Promise<{ gateway: Gateway; store: Store; info: ServeInfo }> {
  const { url: remote, token } = await remoteFor(opts.remote, deps);
  const { host, port } = parseListen(opts.listen ?? `127.0.0.1:${DEFAULT_GATEWAY_PORT}`);
  const store = await openForReading(remote, token);
  let gateway: Gateway;
  try {
    gateway = await startGateway({ store, host, port, onRequest: opts.onRequest });
  } catch (err) {
    await store.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw usage(`${host}:${port} is already in use`, 'stop the other server, or pick another port with --listen');
    throw err;
  }
  return { gateway, store, info: { url: gateway.url, remote, cache: userCacheDir() } };
}

export function stats(): Promise<CacheStats> {
  return cacheStats();
}

export function trim(maxSize: string): Promise<TrimResult> {
  return trimCache(parseSize(maxSize));
}

export interface MountOptions { ref: string; mountpoint: string; remote?: string; onError?: (path: string, err: unknown) => void }
export interface MountInfo { ref: string; requested: string; mountpoint: string; remote: string; root: string }
export interface MountReport { stats: MountStats; loader: LoaderStats; transfer: Transfer; cache: CacheUse | null }

/** Mounts a version, pinned: NAME@latest is resolved once, here. */
export async function mount(opts: MountOptions, deps: Deps): Promise<{ handle: MountHandle; info: MountInfo; finish(): Promise<MountReport> }> {
  const remote = await remoteFor(opts.remote, deps);
  const store = await openForReading(remote.url, remote.token);
  try {
    const record = await resolveVersion(store, parseRef(opts.ref), remote.tree, reporterOf(deps));
    const loader = new ObjectLoader(store);
    const view = new VersionView(loader, record);
    const handle = await mountView(view, opts.mountpoint, { onError: opts.onError });
    return {
      handle,
      info: { ref: view.ref, requested: opts.ref, mountpoint: handle.mountpoint, remote: remote.url, root: record.root },
      finish: async () => {
        await handle.unmount();
        const report = { stats: { ...handle.stats }, loader: { ...loader.stats }, transfer: { ...store.transfer }, cache: store.use ? structuredClone(store.use) : null };
        await store.close();
        return report;
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

export async function unmount(mountpoint: string, lazy: boolean, deps: Deps): Promise<{ mountpoint: string }> {
  return { mountpoint: await unmountPath(resolve(deps.cwd, mountpoint), lazy) };
}
