// A workspace: a working directory plus .elton/ (config, HEAD, lock, stat cache and the embedded store).

import { promises as fsp, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../lib/atomic.js';
import { acquireLock, type Lock } from '../lib/lock.js';
import { formatError, ioError, isErrno, notWorkspace } from '../errors.js';
import type { VersionDraft } from '../store/store.js';

export const META_DIR = '.elton';
export const WORKSPACE_FORMAT = 1;

export interface WorkspaceConfig {
  format: number;
  tree: string;
  /** null: the embedded store in .elton/store. */
  remote: string | null;
  /** Bearer token for an http(s) remote; ELTON_TOKEN overrides it. Never printed. */
  token?: string;
  /** The store was encrypted when this workspace met it: a plain store there later is refused (a downgrade). */
  encrypted?: true;
}

/**
 * A commit whose objects are stored locally but whose version is not issued yet: written before
 * the store is asked, removed once HEAD names the issued version. Kept while the remote cannot be
 * reached, for `elton push`.
 */
export interface PendingCommit extends VersionDraft { force: boolean }

export interface Head { tree: string; version: number; /** Set after a checkout of some paths only. */ paths?: string[] }

export class Workspace {
  private constructor(readonly root: string, readonly config: WorkspaceConfig) {}

  get meta(): string { return join(this.root, META_DIR); }
  get embeddedStorePath(): string { return join(this.meta, 'store'); }
  /** Where objects and version records fetched from an http(s) remote are kept, and where commits are staged before a push. */
  get cachePath(): string { return join(this.meta, 'cache'); }
  get remoteUrl(): string { return this.config.remote ?? pathToFileURL(this.embeddedStorePath).href; }
  get statCachePath(): string { return join(this.meta, 'stat-cache'); }
  get stagingDir(): string { return join(this.meta, 'staging'); }

  static async create(root: string, config: WorkspaceConfig): Promise<Workspace> {
    await fsp.mkdir(join(root, META_DIR, 'staging'), { recursive: true });
    await writeFileAtomic(join(root, META_DIR, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    return new Workspace(root, config);
  }

  /** Records that the workspace's store is encrypted (init and clone, once they have opened it). */
  async markEncrypted(): Promise<void> {
    if (this.config.encrypted) return;
    this.config.encrypted = true;
    await writeFileAtomic(join(this.root, META_DIR, 'config.json'), JSON.stringify(this.config, null, 2) + '\n');
  }

  /** Finds the workspace that contains `start`, looking upward as git does. */
  static async find(start: string): Promise<Workspace> {
    let dir = resolve(start);
    for (;;) {
      if (existsSync(join(dir, META_DIR, 'config.json'))) return Workspace.open(dir);
      const up = dirname(dir);
      if (up === dir) throw notWorkspace(resolve(start));
      dir = up;
    }
  }

  static async open(root: string): Promise<Workspace> {
    let config: WorkspaceConfig;
    try {
      config = JSON.parse(await fsp.readFile(join(root, META_DIR, 'config.json'), 'utf8'));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw notWorkspace(root);
      throw ioError(`cannot read ${join(root, META_DIR, 'config.json')}`, err, 'the workspace config is damaged; fix the JSON or re-create the workspace with `elton clone`');
    }
    if (config.format > WORKSPACE_FORMAT) throw formatError(`workspace format ${config.format} is newer than this elton reads (${WORKSPACE_FORMAT})`);
    return new Workspace(root, config);
  }

  static isWorkspace(dir: string): boolean {
    try { return statSync(join(dir, META_DIR, 'config.json')).isFile(); } catch { return false; }
  }

  lock(command: string): Promise<Lock> {
    const waitSeconds = Number(process.env.ELTON_LOCK_WAIT ?? 0);
    return acquireLock(join(this.meta, 'lock'), command, Number.isFinite(waitSeconds) ? waitSeconds * 1000 : 0);
  }

  async readHead(): Promise<Head | undefined> {
    try {
      return JSON.parse(await fsp.readFile(join(this.meta, 'HEAD'), 'utf8')) as Head;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw ioError('cannot read .elton/HEAD', err);
    }
  }

  async writeHead(head: Head): Promise<void> {
    await writeFileAtomic(join(this.meta, 'HEAD'), JSON.stringify(head) + '\n');
  }

  /** A version being issued: written before the version record, removed once HEAD names it. */
  async readPending(): Promise<PendingCommit | undefined> {
    try {
      return JSON.parse(await fsp.readFile(join(this.meta, 'PENDING'), 'utf8')) as PendingCommit;
    } catch {
      return undefined;
    }
  }

  async writePending(pending: PendingCommit): Promise<void> {
    await writeFileAtomic(join(this.meta, 'PENDING'), JSON.stringify(pending) + '\n');
  }

  async clearPending(): Promise<void> {
    await fsp.rm(join(this.meta, 'PENDING'), { force: true });
  }
}
