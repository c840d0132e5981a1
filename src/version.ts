// Version records: the immutable NAME@V documents that name a root tree and its history.

import { conflict, corrupt } from './errors.js';
import { encodeRecord, decodeObject, Kind } from './object.js';
import { isId } from './lib/hash.js';

export interface VersionRecord {
  tree: string;
  version: number;
  root: string;
  parent: number | null;
  message: string;
  author: string;
  host: string;
  time: string;
  /** The Git HEAD commit of the workspace's repository at commit time, if it was inside one. */
  git: { commit: string; branch: string | null } | null;
  /**
   * In an encrypted store's stored form (docs/encryption.md): the sealed message, author, host and
   * git fields, which are then blank. Stores keep and copy it without the key; clients open it.
   */
  sealed?: string;
  /** An opened record that a write-only host sealed: its name in the keyring (never stored; the seal says it). */
  writer?: string;
}

export const VERSION_FORMAT = 1;

export function encodeVersion(r: VersionRecord): Buffer {
  const git = r.git ? { commit: r.git.commit, branch: r.git.branch } : null;
  const doc = {
    format: VERSION_FORMAT, tree: r.tree, version: r.version, root: r.root, parent: r.parent,
    message: r.message, author: r.author, host: r.host, time: r.time, git,
    ...(r.sealed === undefined ? {} : { sealed: r.sealed }),
  };
  return encodeRecord(Kind.version, Buffer.from(JSON.stringify(doc), 'utf8'));
}

export function decodeVersion(data: Buffer, tree: string, version: number): VersionRecord {
  const name = `${tree}@${version}`;
  const { kind, plain } = decodeObject(data, `version record ${name}`);
  const bad = (why: string) => corrupt(`version record ${name}: ${why}`, undefined, { object: name });
  if (kind !== Kind.version) throw bad('not a version record');
  let d: VersionRecord & { format: number };
  try {
    d = JSON.parse(plain.toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (d.format !== VERSION_FORMAT) throw bad(`unsupported format ${d.format}`);
  if (d.tree !== tree || d.version !== version) throw bad(`it claims to be ${d.tree}@${d.version}`);
  if (!isId(d.root)) throw bad('bad root id');
  if (d.sealed !== undefined && typeof d.sealed !== 'string') throw bad('bad sealed field');
  return {
    tree: d.tree, version: d.version, root: d.root, parent: d.parent, message: d.message, author: d.author, host: d.host, time: d.time, git: d.git,
    ...(d.sealed === undefined ? {} : { sealed: d.sealed }),
  };
}

/** Whether two records are the same version, field for field (a copy made by a backup is). */
export function sameVersion(a: VersionRecord, b: VersionRecord): boolean {
  return encodeVersion(a).equals(encodeVersion(b));
}

/** A store that already holds another record under this number: a backup must not overwrite history. */
export const divergedVersion = (where: string, record: VersionRecord) => conflict(
  `${where} already holds a different ${record.tree}@${record.version}`,
  'the target has versions of its own for this tree (it was committed to directly); back up to another prefix or tree, or remove that tree at the target',
  { tree: record.tree, version: record.version },
);
