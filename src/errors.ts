// Typed errors: every failure a user can cause or meet carries a code, an exit code and a hint.

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  notWorkspace: 3,
  notFound: 4,
  conflict: 5,
  locked: 6,
  corrupt: 7,
  io: 8,
  format: 9,
  exists: 10,
  unreachable: 11,
  auth: 12,
  remote: 13,
  unavailable: 14,
} as const;

export interface ErrorJson {
  code: string;
  message: string;
  hint?: string;
  exitCode: number;
  details?: Record<string, unknown>;
}

export class EltonError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number,
    readonly hint?: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EltonError';
  }

  toJSON(): ErrorJson {
    return { code: this.code, message: this.message, hint: this.hint, exitCode: this.exitCode, details: this.details };
  }
}

export const notWorkspace = (dir: string) =>
  new EltonError('E_NOT_WORKSPACE', `not an elton workspace: ${dir}`, EXIT.notWorkspace,
    'run `elton init` here, or `elton clone REMOTE REF DIR`, or cd into a workspace');

export const usage = (message: string, hint?: string) => new EltonError('E_USAGE', message, EXIT.usage, hint);

export const badRef = (ref: string, why: string) =>
  new EltonError('E_BAD_REF', `bad ref "${ref}": ${why}`, EXIT.usage,
    'a ref is NAME@V, NAME@latest, @V or @latest (V = 1, 2, 3...); add :PATH for `cat`');

export const notFound = (what: string, hint?: string, details?: Record<string, unknown>) =>
  new EltonError('E_NOT_FOUND', `${what} not found`, EXIT.notFound, hint, details);

export const conflict = (message: string, hint: string, details?: Record<string, unknown>) =>
  new EltonError('E_CONFLICT', message, EXIT.conflict, hint, details);

/** A commit based on a version that is no longer the latest: the same words from every store. */
export const staleParent = (tree: string, latest: number, parent: number | null) =>
  conflict(
    `${tree} has moved on: its latest version is @${latest}, but this workspace is based on ${parent ? `@${parent}` : 'no version'}`,
    `run \`elton checkout ${tree}@latest\` to catch up (your changes stay unless they collide), then commit again; or \`elton commit --force\` to record this commit anyway with parent @${parent ?? 'none'}`,
    { latest, parent },
  );

export const unreachable = (url: string, why: string, cause?: unknown, check = 'that the master is running and the URL is right (`elton master --help`)') =>
  new EltonError('E_UNREACHABLE', `cannot reach ${url}: ${why}`, EXIT.unreachable,
    `check ${check}; a commit made meanwhile is kept as pending and \`elton push\` sends it later`,
    { url }, { cause });

export const authError = (message: string, hint: string) => new EltonError('E_AUTH', message, EXIT.auth, hint);

export const remoteError = (message: string, hint = 'see the master\'s log; if it persists, report it', details?: Record<string, unknown>) =>
  new EltonError('E_REMOTE', message, EXIT.remote, hint, details);

export const dirty = (paths: string[]) =>
  new EltonError('E_DIRTY', `checkout would overwrite uncommitted changes in ${paths.length} path(s): ${paths.slice(0, 10).join(', ')}${paths.length > 10 ? ', ...' : ''}`,
    EXIT.conflict, 'commit them first, or pass --force to discard them', { paths });

export const locked = (path: string, holder: string, what = 'workspace', hint = 'wait for it to finish, or set ELTON_LOCK_WAIT=SECONDS to wait') =>
  new EltonError('E_LOCKED', `${what} is locked by another elton process (${holder})`, EXIT.locked,
    `${hint}; if no elton is running, remove ${path}`, { lock: path });

export const corrupt = (what: string, hint = 'the store is damaged; restore the object from another copy (a backup or another remote)', details?: Record<string, unknown>) =>
  new EltonError('E_CORRUPT', `verification failed: ${what}`, EXIT.corrupt, hint, details);

/** A version whose objects are not all held: it must not become visible. */
export function incomplete(where: string, what: string, missing: Iterable<string>): EltonError {
  const list = [...missing];
  return new EltonError('E_INCOMPLETE', `${where} lacks ${list.length} object(s) of ${what}`, EXIT.remote,
    'run the push or backup again: it sends only what is missing', { missing: list.slice(0, 100) });
}

export const ioError = (message: string, cause?: unknown, hint?: string) =>
  new EltonError('E_IO', message, EXIT.io, hint ?? 'check that the path exists and is readable', undefined, { cause });

export const formatError = (message: string, hint = 'upgrade elton to a version that reads this format') =>
  new EltonError('E_FORMAT', message, EXIT.format, hint);

export const exists = (message: string, hint: string) => new EltonError('E_EXISTS', message, EXIT.exists, hint);

/** A feature this machine cannot offer (FUSE without /dev/fuse, say). */
export const unavailable = (message: string, hint: string) => new EltonError('E_UNAVAILABLE', message, EXIT.unavailable, hint);

/** True when `err` is an EltonError with this code: the branch a caller takes for one expected failure. */
export function hasCode(err: unknown, code: string): err is EltonError {
  return err instanceof EltonError && err.code === code;
}

export function isErrno(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}
