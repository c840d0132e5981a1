// Copies versions from one store to another: exactly what the target lacks, verified, each version made visible only once complete.
//
// The exchange costs a constant number of round trips whatever the file count: one listing of
// versions per tree on each side, then one have/want question for every candidate object of
// every version at once, one lengths question to the source, the objects in parallel streams,
// and one request per version created. Candidates come from a walk of the source's trees that
// skips every subtree the target's newest common version already has (immutable ids: the same
// id is the same content), so an incremental run looks at the changed paths only.

import { conflict, EltonError, hasCode, notFound, usage } from '../errors.js';
import { isSealed, SEAL_OVERHEAD } from '../crypto/envelope.js';
import { decodeKeyring, MAX_GENERATION_STEP } from '../crypto/keyring.js';
import { keyringHolderOf } from '../store/open.js';
import type { Reporter } from '../events.js';
import { decodeObject, decodeObjectAsync, Kind } from '../object.js';
import type { CopySource, CopyTarget, IdLister, ObjectSource, Store, Transfer } from '../store/store.js';
import { divergedVersion, sameVersion, type VersionRecord } from '../version.js';
import { diffTrees } from '../snapshot.js';
import type { SimilarTree } from '../tree-delta.js';
import { Throttle } from './throttle.js';
import { eachLimited } from '../lib/limit.js';

/** Where a copy reads: `store` for version records and trees (through a cache where there is one), `direct` for chunks. */
export interface Origin {
  store: Pick<Store, 'config' | 'codec' | 'readVersion' | 'readObjects' | 'prefetchTrees'>;
  direct: CopySource;
}

export interface CopyOptions {
  /** Trees to copy; all of the source's when absent. */
  trees?: string[];
  /** Copy only versions committed at or after this time. */
  since?: Date;
  /** Plan only: report what would move. */
  dryRun?: boolean;
  /** Average bytes per second read for sending. */
  bytesPerSecond?: number;
  reporter?: Reporter;
}

export interface CopyProblem {
  kind: 'missing' | 'corrupt';
  /** An object id. */
  id: string;
  message: string;
  /** The versions that were not copied because of it. */
  versions: string[];
}

export interface CopyResult {
  dryRun: boolean;
  trees: number;
  /** NAME@V created at the target (or that would be, with dryRun). */
  copied: string[];
  /** Versions the target already held. */
  upToDate: number;
  /** Versions not copied: they reach an object the source lacks or that failed verification, or come after one that does. */
  skipped: string[];
  /** Objects sent (would be sent), and their stored bytes. */
  objects: number;
  bytes: number;
  /** With dryRun, an estimate of the requests the copy would make to the target. */
  requests: number;
  problems: CopyProblem[];
  transfer: { from: Transfer; to: Transfer };
}

/** A version planned for copying, with what it reaches beyond its base. */
interface Planned {
  record: VersionRecord;
  base: number | null;
  candidates: Set<string>;
}

const PARALLEL_TREES = 8;
/** Requests the dry-run estimate counts per this many bytes sent (the S3 pack size; a master takes several per stream). */
const ESTIMATE_PACK_BYTES = 32 * 1024 * 1024;
const PROBLEMS_LISTED = 100;

const ref = (r: { tree: string; version: number }) => `${r.tree}@${r.version}`;

/** A target with no store yet, for a dry run, which must not create one: it lacks everything. */
export function emptyTarget(url: string, config: CopyTarget['config']): CopyTarget {
  const refuse = async (): Promise<never> => { throw new Error('internal: a dry run wrote to its target'); };
  return {
    url, config, transfer: { requests: 0, bytesUp: 0, bytesDown: 0 },
    missing: async (ids) => new Set(ids),
    send: refuse, putVersion: refuse,
    listTrees: async () => [],
    listVersions: async () => [],
    readVersion: async (tree, version) => { throw notFound(`version ${tree}@${version} at ${url}`); },
    close: async () => {},
  };
}

export async function copyVersions(origin: Origin, target: CopyTarget, opts: CopyOptions = {}): Promise<CopyResult> {
  const reporter = opts.reporter ?? (() => {});
  const { store, direct } = origin;
  if (target.config.format !== store.config.format || target.config.idScheme !== store.config.idScheme) {
    throw new EltonError('E_FORMAT', `${target.url} uses store format ${target.config.format}/${target.config.idScheme}, ${direct.url} uses ${store.config.format}/${store.config.idScheme}`, 9,
      'back up to a target made for this source (an empty prefix, bucket or directory is made to match)');
  }
  const sealed = !!store.config.encryption;
  const all = await direct.listTrees();
  for (const t of opts.trees ?? []) if (!all.includes(t)) throw notFound(`tree "${t}" at ${direct.url}`, `the source holds: ${all.join(', ') || 'nothing'}`);
  const trees = opts.trees?.length ? [...new Set(opts.trees)] : all;

  // 1. Versions: which the target lacks, and the newest it has to diff against.
  const plans = new Map<string, Planned[]>();
  let upToDate = 0;
  let planned = 0;
  await eachLimited(trees, PARALLEL_TREES, async (tree) => {
    const [mine, theirs] = await Promise.all([direct.listVersions(tree), target.listVersions(tree)]);
    const held = new Set(theirs);
    const common = mine.filter((v) => held.has(v));
    upToDate += common.length;
    const newestCommon = common[common.length - 1];
    if (newestCommon !== undefined) {
      // Trust is by number; the newest shared number is checked, so a diverged target is caught before anything moves.
      const [a, b] = await Promise.all([store.readVersion(tree, newestCommon), target.readVersion(tree, newestCommon)]);
      if (!sameVersion(a, b)) throw divergedVersion(target.url, a);
    }
    const wanted = mine.filter((v) => !held.has(v));
    const records = new Map((await Promise.all(wanted.map((v) => store.readVersion(tree, v)))).map((r) => [r.version, r]));
    const list: Planned[] = [];
    // Each version's base: the newest version below it that the target will hold when it is created.
    let base: number | null = null;
    for (const v of mine) {
      const record = records.get(v);
      if (record && opts.since && !(Date.parse(record.time) >= opts.since.getTime())) continue;
      if (record) list.push({ record, base, candidates: new Set() });
      base = v;
    }
    if (list.length) plans.set(tree, list);
    planned += list.length;
  });

  // 2. Candidates: what each version reaches beyond its base, from the source's trees. An
  // encrypted source's trees cannot be read without the key, which a backup never uses: every
  // object the source holds is a candidate, and the target's have/want answer keeps the copy
  // to what it lacks.
  const treeIds = new Set<string>();
  const plainSizes = new Map<string, number>();
  /** Each candidate tree's counterpart in the base version: the target may store the tree as a delta against it. */
  const similar = new Map<string, SimilarTree>();
  const candidates = new Set<string>();
  if (sealed && planned) {
    for (const id of await idListerOf(direct).listIds()) candidates.add(id);
  } else {
    let walked = 0;
    for (const list of plans.values()) {
      for (const p of list) {
        reporter({ type: 'progress', phase: 'plan', loaded: walked++, total: planned, unit: 'objects' });
        const baseRoot = p.base === null ? null : (await store.readVersion(p.record.tree, p.base)).root;
        await store.prefetchTrees?.(p.record.root);
        await diffTrees(store, p.record.root, baseRoot, { out: p.candidates, treeIds, plainSizes, similar });
      }
    }
    for (const list of plans.values()) for (const p of list) for (const id of p.candidates) candidates.add(id);
  }

  // 3. Have/want: one question to the target for everything, one to the source for lengths.
  const needed = candidates.size ? [...await target.missing(candidates)] : [];
  const lengths = needed.length ? await direct.lengths(needed) : new Map<string, number>();
  const failed = new Map<string, CopyProblem>();
  for (const id of needed) {
    if (!lengths.has(id)) failed.set(id, { kind: 'missing', id, message: `object ${id} is not at the source ${direct.url}`, versions: [] });
  }
  const sendable = needed.filter((id) => lengths.has(id));
  let bytes = sendable.reduce((n, id) => n + lengths.get(id)!, 0);
  let objects = sendable.length;

  if (!opts.dryRun && sendable.length) {
    const sent = { objects: 0, bytes: 0 };
    const source = checkedSource(origin, sealed, treeIds, plainSizes, lengths, failed, sent, opts.bytesPerSecond);
    // A delta's base must be at the target already: not one of the objects this run sends.
    const sending = new Set(sendable);
    const heldBase = (id: string) => { const t = similar.get(id); return t && !sending.has(t.base) ? t : undefined; };
    await target.send(sendable, { ...source, similar: heldBase }, reporter);
    objects = sent.objects;
    bytes = sent.bytes;
  }

  // The keyring goes before any record that needs it, and on every run: a writer removed at the
  // source is removed from the copy too. After the data: a target refusing it loses no data moved.
  if (sealed && !opts.dryRun) await copyKeyring(direct, target);

  // 4. Versions, oldest first per tree, each once everything it reaches is at the target.
  const copied: string[] = [];
  const skipped: string[] = [];
  await eachLimited([...plans.values()], PARALLEL_TREES, async (list) => {
    let blocked = false;
    for (const p of list) {
      // Without the key nothing tells which versions reach a failed object: each may.
      const blame = sealed ? [...failed.keys()] : [...p.candidates].filter((id) => failed.has(id));
      for (const id of blame) failed.get(id)!.versions.push(ref(p.record));
      if (blocked || blame.length) {
        blocked = true;
        skipped.push(ref(p.record));
        continue;
      }
      // A sealed version names its root; the target holds the rest, since the source's every object it lacked was sent.
      if (!opts.dryRun) await target.putVersion(p.record, { ids: sealed ? [p.record.root] : [...p.candidates], base: p.base });
      copied.push(ref(p.record));
    }
  });
  const byVersion = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
  // A dry run's estimate: what it asked of the target, which the real run asks too, plus the writes.
  const writes = opts.dryRun ? (sendable.length ? Math.ceil(bytes / ESTIMATE_PACK_BYTES) + 1 : 0) + planned : 0;
  const requests = target.transfer.requests + writes;
  return {
    dryRun: !!opts.dryRun, trees: trees.length, copied: copied.sort(byVersion), upToDate, skipped: skipped.sort(byVersion),
    objects, bytes, requests,
    problems: [...failed.values()].slice(0, PROBLEMS_LISTED),
    transfer: { from: { ...direct.transfer }, to: { ...target.transfer } },
  };
}

/**
 * The objects to send, read from the source and checked on the way: one that fails is recorded
 * and not sent, so no version reaching it is created. A plain source's objects are checked
 * against their ids. An encrypted source's cannot be without the key: each must be a sealed
 * object of the length the source's index gives, and a bit flipped inside one is caught by its
 * tag when a reader with the key opens it. Trees come from the source store (its cache), chunks
 * straight from the source, so a backup does not fill the local cache with data.
 */
function checkedSource(
  origin: Origin, sealed: boolean, treeIds: Set<string>, plainSizes: Map<string, number>, lengths: Map<string, number>,
  failed: Map<string, CopyProblem>, sent: { objects: number; bytes: number }, bytesPerSecond?: number,
): ObjectSource {
  const throttle = bytesPerSecond ? new Throttle(bytesPerSecond) : undefined;
  /** Why an object must not be sent; undefined when it checks out. */
  const problem = async (id: string, data: Buffer): Promise<string | undefined> => {
    if (sealed) {
      const ok = isSealed(data) && data.length >= SEAL_OVERHEAD && data.length === lengths.get(id);
      return ok ? undefined : `object ${id} at ${origin.direct.url} is not a sealed object of ${lengths.get(id)} bytes`;
    }
    try {
      const kind = (data.length >= 64 * 1024 ? await decodeObjectAsync(data, `object ${id}`, id, plainSizes.get(id)) : decodeObject(data, `object ${id}`, id)).kind;
      return kind === (treeIds.has(id) ? Kind.tree : Kind.chunk) ? undefined : `object ${id} is not a ${treeIds.has(id) ? 'tree' : 'chunk'}`;
    } catch (err) {
      if (!(err instanceof EltonError)) throw err;
      return err.message;
    }
  };
  return {
    locate: async (id) => { const length = lengths.get(id); return length === undefined ? undefined : { length }; },
    readObjects: async (ids, onObject) => {
      const list = [...ids];
      const checked = async (id: string, data: Buffer) => {
        const why = await problem(id, data);
        if (why) {
          failed.set(id, { kind: 'corrupt', id, message: why, versions: [] });
          return;
        }
        await throttle?.take(data.length);
        sent.objects++;
        sent.bytes += data.length;
        await onObject(id, data);
      };
      const trees = list.filter((id) => treeIds.has(id));
      const chunks = list.filter((id) => !treeIds.has(id));
      if (trees.length) await origin.store.readObjects(trees, checked);
      if (chunks.length) await readChunks(origin.direct, chunks, plainSizes, checked);
    },
  };
}

/**
 * Gives the target the source's keyring, as stored (its MAC intact): the same repository key (its
 * check value), with the source's wrappings and writers, so that a writer removed at the source
 * is removed at the copy. A target whose keyring is as new or newer (changed there) keeps it.
 */
export async function copyKeyring(direct: CopySource, target: CopyTarget): Promise<void> {
  const from = await keyringHolderOf(direct, direct.url).readKeyringBytes();
  if (!from) throw notFound(`the keyring of the encrypted store at ${direct.url}`, 'restore it from a backup of the store');
  const to = keyringHolderOf(target, target.url);
  const there = await to.readKeyringBytes();
  if (there?.data.equals(from.data)) return;
  const source = decodeKeyring(from.data, direct.url);
  const held = there && decodeKeyring(there.data, target.url);
  if (held && held.check !== source.check) {
    throw conflict(`${target.url} holds an encrypted store with another key than ${direct.url}`, 'back up to another prefix, bucket or directory');
  }
  if (held && held.generation >= source.generation) return;
  if (held && source.generation > held.generation + MAX_GENERATION_STEP) {
    throw conflict(`the keyring at ${direct.url} jumps ${source.generation - held.generation} generations past the copy's at ${target.url}`,
      'no key command makes such a jump: someone without the key may have written it; check it with `elton key list --store URL` on a host that holds the key');
  }
  await to.writeKeyringBytes(from.data, there?.tag ?? null);
}

const idListerOf = (direct: CopySource): IdLister => {
  if (typeof (direct as Partial<IdLister>).listIds !== 'function') throw usage(`${direct.url} cannot list its objects`, 'update the master to this version of elton');
  return direct as unknown as IdLister;
};

/** Reads from the source; an object it cannot produce (a damaged range, a vanished pack) names itself in the error. */
async function readChunks(direct: CopySource, ids: string[], sizes: Map<string, number>, onObject: (id: string, data: Buffer) => Promise<void>): Promise<void> {
  try {
    await direct.readObjects(ids, onObject, sizes);
  } catch (err) {
    if (hasCode(err, 'E_CORRUPT') || hasCode(err, 'E_NOT_FOUND')) {
      const id = (err as EltonError).details?.object;
      if (typeof id === 'string') throw new EltonError((err as EltonError).code, `${(err as EltonError).message} (reading ${direct.url})`, (err as EltonError).exitCode, 'the source is damaged: run `elton verify` on it', { object: id });
    }
    throw err;
  }
}
