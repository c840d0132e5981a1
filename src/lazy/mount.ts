// `elton mount`: a version as a read-only FUSE file system (the thesis's Eltonfs), through fuse-native.
//
// Listing fetches tree objects only; reading a byte range fetches only the chunks under it, once,
// into the user cache. Every FUSE callback answers asynchronously: the loop that serves the
// kernel is this process's event loop, so nothing here may block it (a blocked loop would also
// deadlock any read of the mount made from this same process).

import { existsSync, promises as fsp } from 'node:fs';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { hasCode, isErrno, notFound, unavailable, usage } from '../errors.js';
import type { VersionView, Node } from './view.js';

/** The parts of fuse-native used here (it ships no types). */
interface FuseInstance { mount(cb: (err: Error | null) => void): void; unmount(cb: (err: Error | null) => void): void }
interface FuseModule {
  new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): FuseInstance;
  unmount(mnt: string, cb: (err: Error | null) => void): void;
  ENOENT: number; EIO: number; EROFS: number; ENOTDIR: number; EISDIR: number; EINVAL: number;
}

const FUSE_HINT = 'FUSE needs /dev/fuse and the fuse-native package (an optional dependency; Linux x64 and macOS). In a container, run it with --device /dev/fuse --cap-add SYS_ADMIN. Without FUSE, use `elton serve` or a sparse `elton checkout REF -- PATH`';

function loadFuse(): FuseModule {
  if (process.platform === 'linux' && !existsSync('/dev/fuse')) throw unavailable('FUSE is not available: /dev/fuse does not exist', FUSE_HINT);
  try {
    return createRequire(import.meta.url)('fuse-native') as FuseModule;
  } catch (err) {
    throw unavailable(`FUSE is not available: fuse-native did not load (${err instanceof Error ? err.message.split('\n')[0] : err})`, FUSE_HINT);
  }
}

/**
 * Releases what fuse-native's native side holds on the event loop. Its own unmount does this only
 * after its fusermount succeeds, which it never does once the mount was removed from outside
 * (`elton unmount`, fusermount -u): without this the process would outlive its mount forever.
 */
function releaseNative(fuse: FuseInstance, abs: string): void {
  try {
    const dir = dirname(createRequire(import.meta.url).resolve('fuse-native'));
    // The same addon fuse-native loaded (native modules are cached by path).
    const binding = createRequire(join(dir, 'index.js'))('node-gyp-build')(dir) as { fuse_native_unmount(mnt: string, thread: Buffer): void };
    const thread = (fuse as unknown as { _thread?: Buffer })._thread;
    if (thread) binding.fuse_native_unmount(abs, thread);
  } catch { /* at worst the process lingers after its mount is gone */ }
}

/** The mount points of this machine, from /proc (Linux); undefined where it cannot be read. */
async function mountPoints(): Promise<Set<string> | undefined> {
  try {
    const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
    // Field 5 is the mount point, with spaces and the like octal-escaped.
    return new Set(text.split('\n').filter(Boolean).map((l) => l.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))));
  } catch {
    return undefined;
  }
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  return (await mountPoints())?.has(resolve(mountpoint)) ?? false;
}

/** A mount point must be an existing, empty directory that nothing is mounted on. */
export async function checkMountpoint(mountpoint: string): Promise<string> {
  const abs = resolve(mountpoint);
  if (await isMounted(abs)) throw usage(`${abs} is busy: something is mounted there already`, `unmount it first (\`elton unmount ${abs}\`), or pick another directory`);
  let names: string[];
  try {
    names = await fsp.readdir(abs);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw notFound(`mount point ${abs}`, `create it first: mkdir -p ${abs}`);
    if (isErrno(err, 'ENOTDIR')) throw usage(`mount point ${abs} is not a directory`, 'mount on an empty directory');
    if (isErrno(err, 'ENOTCONN')) throw usage(`${abs} is busy: a mount there has lost its process`, `run \`elton unmount ${abs}\` first`);
    throw usage(`cannot use ${abs} as a mount point (${(err as NodeJS.ErrnoException).code})`, 'mount on an empty directory you can read');
  }
  if (names.length) throw usage(`mount point ${abs} is not empty (${names.length} entries)`, 'mount on an empty directory, so that nothing is hidden under the mount');
  return abs;
}

/** An open file: where its reader stopped, and how far ahead of it chunks are being fetched. */
interface ReadStream { node: Node; next: number; ahead: number; frontier: number }

export interface MountStats { lookups: number; reads: number; bytesRead: number; errors: number }

export interface MountHandle {
  mountpoint: string;
  stats: MountStats;
  /** Resolves when the mount is gone, whoever unmounted it. */
  gone: Promise<void>;
  unmount(): Promise<void>;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const OPEN_ACCESS_MODE = 3;
const READ_AHEAD_MIN = 1024 * 1024;
const READ_AHEAD_MAX = 16 * 1024 * 1024;

export interface MountOptions {
  /** Logged, never thrown: a FUSE callback cannot throw. */
  onError?: (path: string, err: unknown) => void;
}

export async function mountView(view: VersionView, mountpoint: string, opts: MountOptions = {}): Promise<MountHandle> {
  const Fuse = loadFuse();
  const abs = await checkMountpoint(mountpoint);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const stats: MountStats = { lookups: 0, reads: 0, bytesRead: 0, errors: 0 };
  const open = new Map<number, ReadStream>();
  let nextFd = 1;

  const errno = (path: string, err: unknown): number => {
    if (hasCode(err, 'E_NOT_FOUND') && !(err.details?.object)) return Fuse.ENOENT;
    stats.errors++;
    opts.onError?.(path, err);
    return Fuse.EIO;
  };
  const lookup = async (path: string): Promise<Node | undefined> => {
    stats.lookups++;
    const found = await view.lookup(path.replace(/^\/+/, ''));
    return found.kind === 'found' ? found.node : undefined;
  };
  const statOf = (n: Node) => {
    const t = new Date(n.mtime);
    const mode = (n.type === 'dir' ? S_IFDIR : n.type === 'symlink' ? S_IFLNK : S_IFREG) | (n.type === 'symlink' ? 0o777 : n.mode & 0o777);
    return { mode, uid, gid, size: n.type === 'dir' ? 4096 : n.size, nlink: n.type === 'dir' ? 2 : 1, mtime: t, atime: t, ctime: t, blocks: Math.ceil(n.size / 512), blksize: 4096 };
  };
  /**
   * The kernel reads a file 128 KiB at a time; over a WAN, fetching only the chunk under each
   * read would cost a round trip per chunk. A reader that keeps reading where it stopped gets
   * whole windows fetched ahead of it, each twice the last up to READ_AHEAD_MAX (as the kernel's
   * own readahead grows), the next one asked for when the reader is half way into the current.
   */
  const readAhead = (h: ReadStream, pos: number, len: number) => {
    // The kernel may have a few reads of one stream in flight at once, so "where it stopped" is approximate.
    const sequential = pos > 0 && Math.abs(pos - h.next) <= READ_AHEAD_MIN;
    h.next = sequential ? Math.max(h.next, pos + len) : pos + len;
    if (!sequential) { h.ahead = 0; h.frontier = 0; return; }
    if (h.frontier < h.next) { h.frontier = h.next; h.ahead = 0; }
    if (h.frontier >= h.node.size || h.frontier - h.next > h.ahead / 2) return;
    h.ahead = Math.min(READ_AHEAD_MAX, Math.max(READ_AHEAD_MIN, h.ahead * 2));
    view.prefetch(h.node, h.frontier, h.ahead);
    h.frontier += h.ahead;
  };
  type Cb = (...args: unknown[]) => void;
  const readOnly = (...args: unknown[]) => (args[args.length - 1] as Cb)(Fuse.EROFS);

  const ops: Record<string, unknown> = {
    getattr: (path: string, cb: Cb) => {
      lookup(path).then((n) => (n ? cb(0, statOf(n)) : cb(Fuse.ENOENT)), (err) => cb(errno(path, err)));
    },
    readdir: (path: string, cb: Cb) => {
      lookup(path).then(async (n) => {
        if (!n) return cb(Fuse.ENOENT);
        if (n.type !== 'dir') return cb(Fuse.ENOTDIR);
        // A listing is usually the start of a walk (ls -R, find): one fetch brings every tree below.
        const entries = await view.list(n, { subtree: true });
        cb(0, entries.map((e) => e.name), entries.map(statOf));
      }).catch((err) => cb(errno(path, err)));
    },
    open: (path: string, flags: number, cb: Cb) => {
      if ((flags & OPEN_ACCESS_MODE) !== 0) return cb(Fuse.EROFS);
      lookup(path).then((n) => {
        if (!n) return cb(Fuse.ENOENT);
        if (n.type === 'dir') return cb(Fuse.EISDIR);
        const fd = nextFd++;
        open.set(fd, { node: n, next: 0, ahead: 0, frontier: 0 });
        cb(0, fd);
      }, (err) => cb(errno(path, err)));
    },
    release: (_path: string, fd: number, cb: Cb) => {
      open.delete(fd);
      cb(0);
    },
    read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      const handle = open.get(fd);
      const got = handle ? Promise.resolve(handle.node) : lookup(path);
      got.then(async (n) => {
        if (!n || n.type !== 'file') return cb(n ? Fuse.EISDIR : Fuse.ENOENT);
        if (handle) readAhead(handle, pos, len);
        const data = await view.read(n, pos, len);
        data.copy(buf);
        stats.reads++;
        stats.bytesRead += data.length;
        cb(data.length);
      }).catch((err) => cb(errno(path, err)));
    },
    readlink: (path: string, cb: Cb) => {
      lookup(path).then((n) => (n?.type === 'symlink' ? cb(0, n.target) : cb(n ? Fuse.EINVAL : Fuse.ENOENT)), (err) => cb(errno(path, err)));
    },
    statfs: (_path: string, cb: Cb) => cb(0, { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 }),
    create: readOnly, write: readOnly, truncate: readOnly, ftruncate: readOnly, unlink: readOnly, rename: readOnly, mkdir: readOnly,
    rmdir: readOnly, symlink: readOnly, link: readOnly, chmod: readOnly, chown: readOnly, utimens: readOnly, setxattr: readOnly, removexattr: readOnly,
  };

  const fuse = new Fuse(abs, ops, {
    // An immutable version: the kernel may keep attributes, names and pages as long as it likes.
    kernelCache: true, entryTimeout: 3600, attrTimeout: 3600, fsname: `elton:${view.ref}`, subtype: 'elton',
    // A cold read over a WAN may take a while; the remote client has its own timeouts.
    timeout: { default: 300_000 },
  });
  await new Promise<void>((ok, fail) => fuse.mount((err) => (err ? fail(err) : ok()))).catch((err) => {
    throw unavailable(`cannot mount on ${abs}: ${err instanceof Error ? err.message : err}`, FUSE_HINT);
  });

  let unmounting: Promise<void> | undefined;
  let isGone = false;
  let resolveGone!: () => void;
  const gone = new Promise<void>((r) => { resolveGone = () => { isGone = true; r(); }; });
  // `elton unmount` (fusermount) may end the mount from outside: notice, and let the process finish.
  const watch = setInterval(() => {
    void isMounted(abs).then((m) => { if (!m) { clearInterval(watch); resolveGone(); } });
  }, 500);
  return {
    mountpoint: abs,
    stats,
    gone,
    unmount: () => unmounting ??= new Promise<void>((ok) => {
      if (isGone) {
        releaseNative(fuse, abs);
        return ok();
      }
      fuse.unmount((err) => {
        clearInterval(watch);
        if (err) opts.onError?.(abs, err);
        resolveGone();
        ok();
      });
    }),
  };
}

/** Unmounts a mount made by `elton mount` (in any process); `lazy` detaches it even while files are open. */
export async function unmount(mountpoint: string, lazy = false): Promise<string> {
  const abs = resolve(mountpoint);
  if (!(await isMounted(abs))) throw notFound(`a mount at ${abs}`, 'nothing is mounted there; `mount` lists what is');
  const tool = process.platform === 'darwin' ? 'umount' : 'fusermount';
  const args = process.platform === 'darwin' ? [abs] : [lazy ? '-uz' : '-u', abs];
  await new Promise<void>((ok, fail) => {
    execFile(tool, args, (err, _stdout, stderr) => {
      if (!err) return ok();
      if (/busy/i.test(stderr)) fail(usage(`${abs} is busy: files under it are open, or a shell is in it`, `close them and retry, or \`elton unmount --lazy ${abs}\` to detach it now`));
      else fail(unavailable(`${tool} failed: ${stderr.trim() || err.message}`, `run \`${tool} ${args.join(' ')}\` by hand to see why`));
    });
  });
  return abs;
}
