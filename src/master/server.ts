// The master's HTTP server: the protocol of docs/master.md over a file store (objects) and LMDB (metadata).
//
// Every handler costs one request whatever the number of objects: id lists travel packed, objects
// travel as streamed tar packs in both directions, and a version is issued in one transaction
// after the master has checked that every object it reaches is held. Nothing a client sends
// becomes visible before it is verified against its id.
//
// An encrypted master (--encrypted; docs/master.md) holds a repository it has no key for: it
// checks only the framing of the sealed objects it receives, never decodes or walks them, and
// takes from the client the ids a version reaches. It also keeps the repository's keyring, as
// opaque bytes replaced by compare-and-set.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { conflict, EltonError, EXIT, incomplete, notFound, usage } from '../errors.js';
import { decodeObject, decodeObjectAsync, Kind } from '../object.js';
import { homeOf, isMasterName, isTreeName } from '../ref.js';
import { isId } from '../lib/hash.js';
import { isSealed, SEAL_OVERHEAD } from '../crypto/envelope.js';
import { decodeKeyring, MAX_GENERATION_STEP, type Keyring } from '../crypto/keyring.js';
import { decodeTree } from '../tree.js';
import { decodeVersion } from '../version.js';
import { rebuildTree } from '../tree-delta.js';
import { pathSelected } from '../snapshot.js';
import { FileStore, encodeStoreConfig, keyringTag } from '../store/file-store.js';
import { defaultStoreConfig } from '../store/open.js';
import type { ClosureRoot, StoreConfig, VersionDraft } from '../store/store.js';
import {
  API, decodeIds, encodeIds, framingOf, readPack, writeAll, PackStreamWriter, PackFormatError, PACK_TYPES, PROTOCOL, PROTOCOL_HEADER,
  LOCAL_HEADER, MASTER_HEADER, PARTIAL_HEADER, STALE_HEADER, VIA_HEADER, IDS_HEADER, BASE_HEADER, ID_BYTES, type PackFraming,
} from '../remote/wire.js';
import { VERSION_HEADER } from '../remote/http-store.js';
import { MasterMeta } from './meta.js';
import { Replicator, type ReplicationEvent } from './replicator.js';
import { Federation, loop, type PeerConfig, type PeerEvent } from './federation.js';
import { closeGracefully, listen } from '../lib/http-server.js';
import type { Grant, Scope, TokenTable } from './tokens.js';

export interface RequestLog {
  time: string;
  client: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  bytesIn: number;
  bytesOut: number;
  /** The token's name, or "-" when auth is off or no valid token was given. */
  who: string;
  /** The peer master that sent the request (its X-Elton-Via), if one did. */
  via?: string;
}

export interface MasterOptions {
  dataDir: string;
  host: string;
  port: number;
  /** undefined: no auth (only sensible on loopback or a trusted network). */
  tokens?: TokenTable;
  tls?: { cert: Buffer; key: Buffer };
  onRequest?: (log: RequestLog) => void;
  /** A remote to copy every version to, in the background (docs/backup.md). */
  replicateTo?: { url: string; token?: string; onEvent?: (e: ReplicationEvent) => void };
  /** This master's name in a federation (recorded in its data directory on first use; docs/federation.md). */
  name?: string;
  peers?: PeerConfig[];
  /** How long an answer of a home to "@latest" is reused (default 2 s). */
  latestTtlMs?: number;
  onPeerEvent?: (e: PeerEvent) => void;
  /**
   * Hold an encrypted repository as opaque ciphertext (docs/master.md): a new data directory is
   * created encrypted, and an existing one must match.
   */
  encrypted?: boolean;
}

export interface Master {
  url: string;
  /** The name recorded in its data directory, if it has one. */
  name?: string;
  /** Whether it holds an encrypted repository. */
  encrypted: boolean;
  replication?: Replicator;
  close(): Promise<void>;
}

const JSON_LIMIT = 1024 * 1024;
const ID_LIST_LIMIT = 64 * 1024 * 1024;
/** An encrypted master's version request carries the version's ids, base64: up to an id list's worth. */
const ISSUE_LIMIT = JSON_LIMIT + Math.ceil(ID_LIST_LIMIT / 3) * 4;
/** A keyring is a few wrappings of a 32-byte key: a few KiB at most. */
const KEYRING_LIMIT = 64 * 1024;
/** A version record's sealed fields: a message, an author, a host and a Git commit, sealed. */
const SEALED_LIMIT = 64 * 1024;
/** Ids per write of GET /v1/ids (256 KiB). */
const IDS_BATCH = 8192;

/** The store config of an encrypted master's new data directory (as `elton init --encrypt` makes for a directory store). */
const encryptedStoreConfig = (): StoreConfig => ({ ...defaultStoreConfig(), idScheme: 'hmac-sha256', encryption: { cipher: 'aes-256-gcm' } });


const STATUS: Record<string, number> = {
  E_USAGE: 400, E_BAD_REF: 400, E_AUTH: 401, E_FORBIDDEN: 403, E_NOT_FOUND: 404, E_CONFLICT: 409,
  E_TOO_LARGE: 413, E_CORRUPT: 422, E_INCOMPLETE: 422, E_DELTA_BASE: 422,
  E_UNREACHABLE: 502, E_PEER: 502, E_LOOP: 508, E_NO_PEER: 421,
};

/** Needs the key, or walks trees: what an encrypted master cannot do. */
const needsPlain = (what: string, hint: string) => usage(`${what}: this master holds an encrypted repository, which it cannot read`, hint);

const tooLarge = (what: string) => new EltonError('E_TOO_LARGE', `${what} is over the master's limit`, EXIT.usage, 'send smaller requests');
const refused = (message: string, id?: string) => new EltonError('E_CORRUPT', `refused: ${message}`, EXIT.corrupt, 'the data sent does not match its id; it was not stored', id ? { object: id } : undefined);

/** Reads a request body up to `limit` bytes. */
async function body(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw tooLarge(`a ${declared}-byte body`);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const part of req) {
    n += (part as Buffer).length;
    if (n > limit) throw tooLarge(`a body over ${limit} bytes`);
    parts.push(part as Buffer);
  }
  return Buffer.concat(parts);
}

/** The peer master a request came from, if any (its name, from X-Elton-Via). */
function viaOf(req: IncomingMessage): string | undefined {
  const v = req.headers[VIA_HEADER];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !isMasterName(v)) throw usage(`bad ${VIA_HEADER} header`, 'it is the name of the master that sent the request');
  return v;
}

/** Objects fetched from peers per request, and requests in flight, for one client request. */
const FETCH_BATCH = 512;
const FETCHES_IN_FLIGHT = 3;
const HEARTBEAT_MS = Number(process.env.ELTON_HEARTBEAT_MS ?? 15_000);

/** How long the rest of a refused upload is read and dropped before the connection is cut. */
const REFUSED_DRAIN_MS = 2000;

/**
 * Runs slow work before a response starts (a fetch from a peer, a forwarded commit), sending
 * "102 Processing" every 15 s (ELTON_HEARTBEAT_MS) meanwhile, so that the client's idle timeout
 * does not cut it.
 */
async function keepAlive<T>(res: ServerResponse, work: () => Promise<T>): Promise<T> {
  const beat = setInterval(() => { if (!res.headersSent) res.writeProcessing(); }, HEARTBEAT_MS);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

async function jsonBody<T>(req: IncomingMessage, limit = JSON_LIMIT): Promise<T> {
  try {
    return JSON.parse((await body(req, limit)).toString('utf8')) as T;
  } catch (err) {
    if (err instanceof EltonError) throw err;
    throw usage('the request body is not valid JSON');
  }
}

/**
 * A version draft from a client. An encrypted master takes only sealed drafts (in the stored
 * form of src/codec.ts: message, author, host and git blank, the rest in `sealed`), so that it
 * never holds any of them in plaintext.
 */
function checkDraft(tree: string, value: unknown, sealed: boolean): VersionDraft {
  const d = value as Partial<VersionDraft> | null;
  const bad = (why: string) => usage(`bad version draft: ${why}`);
  if (!d || typeof d !== 'object') throw bad('not an object');
  if (d.tree !== tree) throw bad('its tree is not the one in the URL');
  if (!isId(d.root)) throw bad('root is not an object id');
  if (d.parent !== null && !(Number.isSafeInteger(d.parent) && d.parent! >= 1)) throw bad('parent is not null or a version');
  for (const k of ['message', 'author', 'host', 'time'] as const) {
    if (typeof d[k] !== 'string' || d[k]!.length > 65536) throw bad(`${k} is not a string`);
  }
  if (Number.isNaN(Date.parse(d.time!))) throw bad('time is not a date');
  const git = d.git as VersionDraft['git'] | undefined;
  if (git !== null && !(git && typeof git.commit === 'string' && /^[0-9a-f]{40,64}$/.test(git.commit) && (git.branch === null || typeof git.branch === 'string'))) throw bad('git is not null or {commit, branch}');
  const draft: VersionDraft = { tree, root: d.root!, parent: d.parent ?? null, message: d.message!, author: d.author!, host: d.host!, time: d.time!, git: git ? { commit: git.commit, branch: git.branch } : null };
  if (!sealed) return draft;
  if (typeof d.sealed !== 'string' || !d.sealed || d.sealed.length > SEALED_LIMIT || !/^[A-Za-z0-9+/]+={0,2}$/.test(d.sealed)) throw bad('sealed is not a base64 string of at most 64 KiB, which an encrypted master needs');
  if (draft.message || draft.author || draft.host || draft.git) throw bad('message, author, host and git must be blank (they travel sealed) for an encrypted master');
  return { ...draft, sealed: d.sealed };
}

/** The contents a client sends with a version for an encrypted master: `{"ids": base64 id list, "parentToo": bool}`. */
function checkContents(value: unknown): { ids: string[]; parentToo: boolean } {
  const c = value as { ids?: unknown; parentToo?: unknown } | null | undefined;
  if (!c || typeof c !== 'object') {
    throw usage('an encrypted master needs the version\'s contents: {"ids": base64 id list, "parentToo": bool} beside the draft', 'it cannot walk sealed trees; elton sends them by itself (docs/master.md)');
  }
  if (typeof c.ids !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(c.ids)) throw usage('bad version contents: ids is not a base64 id list');
  if (typeof c.parentToo !== 'boolean') throw usage('bad version contents: parentToo is not a boolean');
  return { ids: decodeIds(Buffer.from(c.ids, 'base64')), parentToo: c.parentToo };
}

/** A version number in a path or header. */
const versionNumber = (text: string) => (/^[1-9][0-9]{0,14}$/.test(text) ? Number(text) : undefined);

export async function startMaster(opts: MasterOptions): Promise<Master> {
  if (opts.encrypted && opts.peers?.length) {
    throw usage('an encrypted master with peers is not supported yet', 'peers verify the objects they fetch and walk trees, which needs the key: run an encrypted master without --peer and --peers-file (docs/master.md)');
  }
  const storeDir = join(opts.dataDir, 'store');
  const metaDir = join(opts.dataDir, 'meta');
  await fsp.mkdir(metaDir, { recursive: true });
  const meta = MasterMeta.open(metaDir);
  const name = await meta.claimName(opts.name);
  if (opts.name && name !== opts.name) {
    await meta.close();
    throw usage(`the data directory ${opts.dataDir} belongs to the master named "${name}", not "${opts.name}"`, 'a master\'s name never changes (its trees carry it): start it with its own name, or use another --data');
  }
  if (opts.peers?.length && !name) {
    await meta.close();
    throw usage('a master with peers needs a name', 'start it with --name NAME (lowercase letters, digits and "-"), once; it is recorded in the data directory');
  }
  const store = await FileStore.create(storeDir, opts.encrypted ? encryptedStoreConfig() : defaultStoreConfig(), meta);
  // FileStore.create opens a store that exists: the data directory says what it holds, and the flag must agree.
  const encrypted = !!store.config.encryption;
  if (encrypted !== !!opts.encrypted) {
    await store.close();
    await meta.close();
    throw encrypted
      ? usage(`the data directory ${opts.dataDir} holds an encrypted repository`, 'start the master with --encrypted')
      : usage(`the data directory ${opts.dataDir} holds a plain (unencrypted) repository`, 'start it without --encrypted; an encrypted master needs a new --data directory');
  }
  await meta.reindex(storeDir);
  await store.removeAbandonedTemps();
  const configBytes = encodeStoreConfig(store.config);
  const started = Date.now();
  const replication = opts.replicateTo ? new Replicator(meta, store, opts.replicateTo.url, opts.replicateTo.token, opts.replicateTo.onEvent) : undefined;
  const federation = name ? new Federation(name, opts.peers ?? [], meta, store, opts.latestTtlMs ?? 2000, opts.onPeerEvent) : undefined;

  /** Walks the trees under `root` that are not yet proven complete: returns the objects they reach that are not held, and the trees walked. */
  async function checkComplete(root: string): Promise<{ missing: string[]; walked: string[] }> {
    const missing: string[] = [];
    const walked: string[] = [];
    let level = meta.isComplete(root) ? [] : [root];
    while (level.length) {
      const present = level.filter((id) => meta.has(id));
      for (const id of level) if (!meta.has(id)) missing.push(id);
      const next = new Set<string>();
      await store.readObjects(present, (id, data) => {
        walked.push(id);
        for (const e of decodeTree(decodeObject(data, `tree ${id}`, id).plain, id).entries) {
          if (e.type === 'dir') { if (!meta.isComplete(e.tree)) next.add(e.tree); }
          else if (e.type === 'file') { for (const c of e.chunks) if (!meta.has(c.id)) missing.push(c.id); }
        }
      });
      level = [...next];
    }
    return { missing, walked };
  }

  /**
   * An encrypted master's completeness check, without a walk: the client names the ids the
   * version reaches beyond version `base` of the tree (null: all it reaches). Every one, and the
   * root, must be held, and so must `base`, whose own check covered the rest when it was recorded.
   */
  function checkListed(tree: string, root: string, ids: string[], base: number | null, what: string): void {
    if (base !== null && !meta.readVersionBytes(tree, base)) {
      throw new EltonError('E_INCOMPLETE', `the master lacks ${tree}@${base}, the version that ${what}'s ids are counted from`, EXIT.remote,
        'send every id the version reaches instead (a push from a workspace of this master does by itself)', { base });
    }
    const missing = new Set<string>();
    for (const id of [root, ...ids]) if (!meta.has(id)) missing.add(id);
    if (missing.size) throw incomplete('the master', what, missing);
  }

  // The keyring of an encrypted repository: opaque bytes the store keeps beside its config (so
  // the replicator copies it like any store's), replaced only by compare-and-set. Writes are
  // serialized here, so that the checks below and the write are one step.
  let keyringWrites: Promise<unknown> = Promise.resolve();

  /**
   * Writes `data` if the keyring is still as `expected` (its tag; null: there is none). The master
   * cannot check a keyring's MAC (that needs the key), but it keeps a token holder from swapping
   * in a keyring for another key, or replaying an older one (a removed writer's, say).
   */
  function writeKeyring(data: Buffer, expected: string | null, offered: Keyring): Promise<'written' | 'moved' | 'other key' | 'older' | 'too far'> {
    const write = keyringWrites.then(async () => {
      const current = await store.readKeyringBytes();
      if ((current?.tag ?? null) !== expected) return 'moved';
      if (current) {
        const held = decodeKeyring(current.data, 'the master\'s keyring');
        if (held.check !== offered.check) return 'other key';
        if (!(offered.generation > held.generation)) return 'older';
        if (offered.generation > held.generation + MAX_GENERATION_STEP) return 'too far';
      }
      await store.writeKeyringBytes(data, expected);
      return 'written';
    });
    keyringWrites = write.catch(() => {});
    return write;
  }

  /** The compare-and-set half of a keyring write: If-None-Match: * (create) or If-Match: "TAG" (replace). */
  function keyringPrecondition(req: IncomingMessage): string | null {
    const none = req.headers['if-none-match'];
    const match = req.headers['if-match'];
    const hint = 'send If-None-Match: * to create the keyring, or If-Match: "TAG" with the ETag of the keyring read, to replace it';
    if ((none === undefined) === (match === undefined)) throw usage('a keyring write needs exactly one of If-None-Match and If-Match', hint);
    if (none !== undefined) {
      if (none.trim() !== '*') throw usage(`bad If-None-Match "${none.slice(0, 80)}" for a keyring write`, hint);
      return null;
    }
    const m = /^\s*"([0-9a-f]{64})"\s*$/.exec(match!);
    if (!m) throw usage(`bad If-Match "${match!.slice(0, 80)}" for a keyring write`, hint);
    return m[1];
  }

  async function receivePack(req: IncomingMessage): Promise<{ objects: number; stored: number; bytes: number }> {
    const writer = store.writer();
    const seen = new Set<string>();
    let objects = 0;
    let stored = 0;
    let bytes = 0;
    try {
      await readPack(req, async (id, delivered, delta) => {
        objects++;
        if (encrypted) {
          // Without the key, only the framing can be checked: the client verifies every object on read.
          if (delta) throw needsPlain(`tree ${id} came as a delta`, 'send trees whole: a delta is made of plaintext (elton sends none to an encrypted store)');
          if (!isSealed(delivered) || delivered.length < SEAL_OVERHEAD) {
            throw new EltonError('E_CORRUPT', `refused: object ${id} is not an encrypted (sealed) object`, EXIT.corrupt,
              'this master holds an encrypted repository: push from a workspace of that repository, with its key open', { object: id });
          }
          if (seen.has(id) || meta.has(id)) return;
          seen.add(id);
          await writer.add(id, delivered);
          stored++;
          bytes += delivered.length;
          return;
        }
        const data = delta ? await fromDelta(id, delivered) : delivered;
        let kind: number;
        try {
          kind = (data.length >= 64 * 1024 ? await decodeObjectAsync(data, `object ${id}`, id) : decodeObject(data, `object ${id}`, id)).kind;
        } catch (err) {
          throw refused(`object ${id}: ${err instanceof Error ? err.message : err}`, id);
        }
        if (kind !== Kind.chunk && kind !== Kind.tree) throw refused(`object ${id} is not a chunk or a tree`, id);
        if (seen.has(id) || meta.has(id)) return;
        seen.add(id);
        await writer.add(id, data);
        stored++;
        bytes += data.length;
      }, undefined, true, framingOf(req.headers['content-type']));
    } catch (err) {
      // Whatever was verified before the failure is kept: a re-run of the push sends only the rest.
      await writer.finish();
      if (err instanceof PackFormatError) throw /over the/.test(err.message) ? tooLarge(err.message) : usage(`bad pack: ${err.message}`);
      throw err;
    }
    await writer.finish();
    return { objects, stored, bytes };
  }

  /** A tree sent as a delta against one the master holds: rebuilt, re-encoded, and checked like any other object. */
  async function fromDelta(id: string, delivered: Buffer): Promise<Buffer> {
    const base = delivered.toString('hex', 0, 32);
    if (!meta.has(base)) {
      throw new EltonError('E_DELTA_BASE', `tree ${id} came as a delta against ${base}, which the master does not hold`, EXIT.remote,
        'send the tree whole (elton does so by itself when it sees this)', { object: id, base });
    }
    let baseData: Buffer | undefined;
    await store.readObjects([base], (_, d) => { baseData = d; });
    try {
      return rebuildTree(id, decodeObject(baseData!, `tree ${base}`, base).plain, delivered.subarray(32), store.config.compression, 'a pack');
    } catch (err) {
      throw refused(`object ${id}: ${err instanceof Error ? err.message : err}`, id);
    }
  }

  /** Clients of protocol 2 ask for the elton framing; older ones get ustar. */
  const framingFor = (req: IncomingMessage): PackFraming => ((req.headers.accept ?? '').includes(PACK_TYPES.elton) ? 'elton' : 'tar');

  async function sendObjects(res: ServerResponse, wanted: string[], framing: PackFraming, partial: boolean): Promise<void> {
    const absent = wanted.filter((id) => !meta.has(id));
    if (absent.length && !partial) throw notFound(`${absent.length} object(s) on the master`, 'push them from a workspace that has them', { missing: absent.slice(0, 100) });
    const ids = absent.length ? wanted.filter((id) => meta.has(id)) : wanted;
    res.writeHead(200, { 'content-type': PACK_TYPES[framing] });
    const pack = new PackStreamWriter(res, framing);
    await store.readObjects(ids, (id, data) => pack.add(id, data));
    await pack.finish();
    res.end();
  }

  /**
   * Streams the trees beneath each root along the selected paths. A root may name a `base`: a
   * tree the requester holds with everything beneath it, at the same path (an older version's).
   * Subtrees identical to the base's at the same path are then left out, so a requester that
   * holds the version before receives only the trees that changed.
   */
  /**
   * Sends objects some of which must first be fetched from peers. Held ones go first while the
   * rest are fetched in batches, a few at a time, and each batch goes out as soon as it is kept:
   * the client's connection never sits idle for a whole WAN transfer. The first batch is fetched
   * before anything is sent, so that the usual failures (the home down, damaged data) still
   * reach the client as typed errors.
   */
  async function sendObjectsFetching(res: ServerResponse, ids: string[], framing: PackFraming, fed: Federation): Promise<void> {
    const absent = ids.filter((id) => !meta.has(id));
    const batches: string[][] = [];
    for (let i = 0; i < absent.length; i += FETCH_BATCH) batches.push(absent.slice(i, i + FETCH_BATCH));
    const fetches: Array<Promise<void> | undefined> = [];
    const start = (i: number) => {
      if (i >= batches.length || fetches[i]) return;
      fetches[i] = fed.ensureHeld(batches[i]);
      fetches[i]!.catch(() => {});
    };
    for (let i = 0; i < FETCHES_IN_FLIGHT; i++) start(i);
    if (batches.length) await keepAlive(res, () => fetches[0]!);
    res.writeHead(200, { 'content-type': PACK_TYPES[framing] });
    const pack = new PackStreamWriter(res, framing);
    const fetched = new Set(absent);
    await store.readObjects(ids.filter((id) => !fetched.has(id)), (id, data) => pack.add(id, data));
    for (let i = 0; i < batches.length; i++) {
      start(i + FETCHES_IN_FLIGHT);
      await fetches[i];
      await store.readObjects(batches[i], (id, data) => pack.add(id, data));
    }
    await pack.finish();
    res.end();
  }

  async function sendTrees(res: ServerResponse, roots: ClosureRoot[], prefixes: string[] | undefined, framing: PackFraming): Promise<void> {
    for (const r of roots) if (!meta.has(r.id)) throw notFound(`tree ${r.id} on the master`);
    res.writeHead(200, { 'content-type': PACK_TYPES[framing] });
    const pack = new PackStreamWriter(res, framing);
    type Walk = { path: string; base: string | null };
    let level = new Map<string, Walk[]>();
    const add = (into: Map<string, Walk[]>, id: string, w: Walk) => into.set(id, [...(into.get(id) ?? []), w]);
    for (const r of roots) add(level, r.id, { path: r.path, base: r.base && r.base !== r.id && meta.has(r.base) ? r.base : null });
    const sent = new Set<string>();
    while (level.size) {
      const next = new Map<string, Walk[]>();
      const bases = new Map<string, Map<string, string>>();
      const baseIds = new Set([...level.values()].flat().map((w) => w.base).filter((b): b is string => b !== null));
      await store.readObjects(baseIds, (id, data) => {
        const dirs = new Map<string, string>();
        for (const e of decodeTree(decodeObject(data, `tree ${id}`, id).plain, id).entries) if (e.type === 'dir') dirs.set(e.name, e.tree);
        bases.set(id, dirs);
      });
      await store.readObjects(level.keys(), async (id, data) => {
        if (!sent.has(id)) { sent.add(id); await pack.add(id, data); }
        for (const e of decodeTree(decodeObject(data, `tree ${id}`, id).plain, id).entries) {
          if (e.type !== 'dir') continue;
          for (const w of level.get(id)!) {
            const path = w.path ? `${w.path}/${e.name}` : e.name;
            if (!pathSelected(path, prefixes)) continue;
            const old = w.base ? bases.get(w.base)!.get(e.name) ?? null : null;
            if (old !== e.tree) add(next, e.tree, { path, base: old });
          }
        }
      });
      level = next;
    }
    await pack.finish();
    res.end();
  }

  function sendJson(res: ServerResponse, status: number, value: unknown): void {
    const data = Buffer.from(JSON.stringify(value));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': data.length });
    res.end(data);
  }

  function sendRecord(res: ServerResponse, status: number, version: number, bytes: Buffer, immutable: boolean): void {
    res.writeHead(status, {
      'content-type': 'application/octet-stream', 'content-length': bytes.length, [VERSION_HEADER]: String(version),
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    res.end(bytes);
  }

  /**
   * A copied version's contents, from its headers: X-Elton-Ids (how many ids follow the record in
   * the body) and X-Elton-Base (the version of the tree they are counted beyond; absent: none).
   */
  function copiedContents(req: IncomingMessage): { count: number; base: number | null } | undefined {
    const count = req.headers[IDS_HEADER];
    const base = req.headers[BASE_HEADER];
    if (count === undefined) {
      if (base !== undefined) throw usage(`${BASE_HEADER} without ${IDS_HEADER}`);
      return undefined;
    }
    if (typeof count !== 'string' || !/^(0|[1-9][0-9]{0,8})$/.test(count)) throw usage(`bad ${IDS_HEADER} header`, 'it is the number of 32-byte ids that follow the record in the body');
    if (Number(count) * ID_BYTES > ID_LIST_LIMIT) throw tooLarge(`a list of ${count} ids`);
    const b = typeof base === 'string' ? versionNumber(base) : undefined;
    if (base !== undefined && b === undefined) throw usage(`bad ${BASE_HEADER} header`, 'it is a version number of the same tree');
    return { count: Number(count), base: b ?? null };
  }

  /** An error as the JSON every client reads, with this status. */
  function sendError(req: IncomingMessage, res: ServerResponse, status: number, e: EltonError): void {
    const data = Buffer.from(JSON.stringify({ error: e.toJSON() }));
    // A refused upload may still be streaming in: close rather than read the rest of it. What
    // arrives meanwhile is read and dropped for a moment, because closing a socket with unread
    // data resets it, and the reset can reach the client before this answer does.
    const closing = req.readableEnded ? {} : { connection: 'close' };
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': data.length, ...closing });
    res.end(data, () => {
      if (req.readableEnded) return;
      req.resume();
      setTimeout(() => req.destroy(), REFUSED_DRAIN_MS).unref();
    });
  }

  function authorize(req: IncomingMessage, scope: Scope | 'any'): Grant | undefined {
    if (!opts.tokens) return undefined;
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const grant = m ? opts.tokens.check(m[1]) : undefined;
    if (!grant) throw new EltonError('E_AUTH', 'a valid bearer token is required', EXIT.auth, 'set ELTON_TOKEN');
    if (scope !== 'any' && !grant.scopes.has(scope)) {
      throw new EltonError('E_FORBIDDEN', `token "${grant.name}" lacks the ${scope} scope`, EXIT.auth, `use a token with the ${scope} scope (its line in the master's token file: TOKEN ${[...grant.scopes, scope].join(',')} ${grant.name})`);
    }
    return grant;
  }

  async function route(req: IncomingMessage, res: ServerResponse, setWho: (who: string) => void): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://master');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const need = (scope: Scope | 'any') => { const g = authorize(req, scope); if (g) setWho(g.name); };
    const via = viaOf(req);
    if (via !== undefined && via === name) throw loop(`a request from "${name}" came back to it`, 'two peers are configured with each other\'s URLs swapped, or a peer URL points at this master itself');
    // Objects this master's nodes read may be held by a peer. A peer's own requests, and a copy's
    // (a backup or a replica asks what is stored here), are answered from what is here.
    const local = via !== undefined || req.headers[LOCAL_HEADER] === '1';
    const fetching = federation && !local ? federation : undefined;

    if (method === 'GET' && path === `${API}/health`) {
      return sendJson(res, 200, { ok: true, server: 'elton-master', name: name ?? null, protocol: PROTOCOL, uptimeSeconds: Math.round((Date.now() - started) / 1000), trees: meta.listTrees().length });
    }
    if (method === 'GET' && path === `${API}/status`) {
      need('read');
      return sendJson(res, 200, {
        server: 'elton-master', name: name ?? null, protocol: PROTOCOL, uptimeSeconds: Math.round((Date.now() - started) / 1000),
        encrypted, trees: meta.listTrees().length, replication: replication?.status() ?? null, peers: federation?.status() ?? [],
      });
    }
    if (!path.startsWith(`${API}/`)) throw notFound(`${method} ${path}`, `the API lives under ${API}/`);
    if (encrypted && via !== undefined) {
      throw needsPlain(`a request from the peer "${via}"`, `federation with an encrypted master is not supported yet: remove it from the peers of "${via}" (docs/master.md)`);
    }
    let parts: string[];
    try { parts = path.slice(API.length + 1).split('/').map(decodeURIComponent); } catch { throw usage('bad percent-encoding in the path'); }

    if (method === 'GET' && path === `${API}/config`) {
      need('any');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': configBytes.length });
      return void res.end(configBytes);
    }
    if (method === 'POST' && path === `${API}/missing`) {
      need('any');
      const ids = decodeIds(await body(req, ID_LIST_LIMIT));
      const out = encodeIds(ids.filter((id) => !meta.has(id)));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length });
      return void res.end(out);
    }
    if (method === 'GET' && path === `${API}/ids`) {
      // Read scope: a copy lists its source's ids; a write-only token must not learn every id held.
      need('read');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // In batches, each read in its own short LMDB transaction: a huge index is never held whole,
      // and the socket's backpressure paces the reads.
      let after: Buffer | undefined;
      for (;;) {
        const batch = meta.idsAfter(after, IDS_BATCH);
        if (!batch.length) break;
        await writeAll(res, [Buffer.concat(batch, batch.length * ID_BYTES)]);
        after = batch[batch.length - 1];
      }
      return void res.end();
    }
    if (path === `${API}/keyring` && (method === 'GET' || method === 'PUT')) {
      // Creating the keyring takes a write token (the first push or backup into a new encrypted
      // master); replacing it, the keys scope, since that decides who can open the repository.
      const replacing = method === 'PUT' && req.headers['if-none-match'] === undefined;
      need(method === 'GET' ? 'read' : replacing ? 'keys' : 'write');
      if (!encrypted) throw usage('this master holds a plain repository, which has no keyring', 'keyrings belong to encrypted masters (elton master --encrypted; docs/master.md)');
      if (method === 'GET') {
        const held = await store.readKeyringBytes();
        if (!held) throw notFound('the keyring of this master', 'it is written when an encrypted repository is created here (elton init --encrypt)');
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': held.data.length, etag: `"${held.tag}"`, 'cache-control': 'no-cache' });
        return void res.end(held.data);
      }
      const expected = keyringPrecondition(req);
      const data = await body(req, KEYRING_LIMIT);
      let offered: Keyring;
      try {
        offered = decodeKeyring(data, 'PUT /v1/keyring');
      } catch (err) {
        throw usage(`bad keyring: ${err instanceof Error ? err.message : err}`, 'send the keyring document (docs/encryption.md)');
      }
      const outcome = await writeKeyring(data, expected, offered);
      if (outcome !== 'written') {
        return sendError(req, res, outcome === 'moved' ? 412 : 409, conflict(
          outcome === 'moved' ? (expected === null ? 'the master already has a keyring' : 'the keyring on the master changed since it was read')
            : outcome === 'other key' ? 'this keyring is for another repository key than the one the master holds'
              : outcome === 'older' ? 'this keyring is not newer than the one the master holds (its generation must grow)'
                : `this keyring's generation jumps more than ${MAX_GENERATION_STEP} past the one the master holds`,
          outcome === 'moved' ? 'another key command changed it meanwhile: read it again and retry' : 'read the master\'s keyring, change that one, and write it back'));
      }
      replication?.keyringChanged();
      const tag = keyringTag(data);
      res.setHeader('etag', `"${tag}"`);
      return sendJson(res, expected === null ? 201 : 200, { tag });
    }
    if (method === 'POST' && path === `${API}/lengths`) {
      need('read');
      const ids = decodeIds(await body(req, ID_LIST_LIMIT));
      const out = Buffer.alloc(ids.length * 4);
      ids.forEach((id, i) => out.writeUInt32BE(meta.get(id)?.length ?? 0, i * 4));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length });
      return void res.end(out);
    }
    if (method === 'POST' && path === `${API}/packs`) {
      need('write');
      return sendJson(res, 200, await receivePack(req));
    }
    if (method === 'POST' && path === `${API}/objects`) {
      need('read');
      const ids = [...new Set(decodeIds(await body(req, ID_LIST_LIMIT)))];
      const partial = req.headers[PARTIAL_HEADER] === '1';
      if (fetching && !partial) return sendObjectsFetching(res, ids, framingFor(req), fetching);
      return sendObjects(res, ids, framingFor(req), partial);
    }
    if (method === 'GET' && parts[0] === 'objects' && parts.length === 2) {
      need('read');
      const id: string = parts[1];
      if (!isId(id)) throw usage(`"${parts[1].slice(0, 80)}" is not an object id`);
      const etag = `"${id}"`;
      const headers = { etag, 'cache-control': 'public, max-age=31536000, immutable' };
      if (req.headers['if-none-match'] === etag && meta.has(id)) {
        res.writeHead(304, headers);
        return void res.end();
      }
      if (fetching) await keepAlive(res, () => fetching.ensureHeld([id]));
      if (!meta.has(id)) throw notFound(`object ${id}`);
      let data: Buffer | undefined;
      await store.readObjects([id], (_, d) => { data = d; });
      res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream', 'content-length': data!.length });
      return void res.end(data);
    }
    if (method === 'POST' && path === `${API}/trees-closure`) {
      need('read');
      if (encrypted) throw needsPlain('a closure of trees', 'clients of an encrypted repository walk its trees themselves, fetching each level with POST /v1/objects (elton does so by itself)');
      const q = await jsonBody<{ roots: ClosureRoot[]; prefixes: string[] | null }>(req);
      if (!Array.isArray(q.roots)) throw usage('roots must be a list');
      const prefixes = Array.isArray(q.prefixes) ? q.prefixes.map(String) : undefined;
      for (const r of q.roots) {
        if (!isId(r?.id) || typeof r.path !== 'string' || (r.base !== undefined && r.base !== null && !isId(r.base))) throw usage('bad tree root');
      }
      if (fetching) await keepAlive(res, () => fetching.ensureTrees(q.roots, prefixes));
      return sendTrees(res, q.roots, prefixes, framingFor(req));
    }
    if (parts[0] === 'trees') {
      if (method === 'GET' && parts.length === 1) {
        need('read');
        return sendJson(res, 200, { trees: meta.listTrees() });
      }
      const tree = parts[1] ?? '';
      if (!isTreeName(tree)) throw usage(`"${tree.slice(0, 100)}" is not a tree name`);
      // A copied version (PUT) is recorded here whatever its home (backups and replicas hold whole
      // trees), once it is checked against the home's own record. Asked after auth: the
      // configuration of peers is not for anyone to probe.
      const homeFor = () => (method === 'PUT' || req.headers[LOCAL_HEADER] === '1' ? undefined : federation?.homePeer(tree, via));
      if (parts[2] === 'versions' && parts.length === 3) {
        if (method === 'GET') {
          need('read');
          const home = homeFor();
          const versions = home ? await federation!.list(home, tree) : meta.listVersionBytes(tree);
          return sendJson(res, 200, { tree, versions: versions.map((v) => ({ version: v.version, record: v.bytes.toString('base64') })) });
        }
        if (method === 'POST') {
          need('write');
          const q = await jsonBody<{ draft: unknown; force?: unknown; contents?: unknown; version?: unknown }>(req, encrypted ? ISSUE_LIMIT : JSON_LIMIT);
          const draft = checkDraft(tree, q.draft, encrypted);
          const contents = encrypted ? checkContents(q.contents) : undefined;
          // A sealed record binds its number: the client names it, and gets exactly it or a conflict.
          const expect = encrypted ? q.version : undefined;
          if (encrypted && !(Number.isSafeInteger(expect) && (expect as number) >= 1)) throw usage('an encrypted master needs the number the version was sealed for ("version")');
          const home = homeFor();
          if (home) {
            const { record, bytes } = await keepAlive(res, () => federation!.forwardIssue(home, draft, q.force === true));
            return sendRecord(res, 201, record.version, bytes, true);
          }
          const owner = homeOf(tree);
          if (owner !== undefined && owner !== name) {
            throw usage(`${tree} belongs to the master named "${owner}"${name ? `, not to "${name}"` : ''}: only its home issues its versions`, `commit through "${owner}", or through a master that has it as a peer (docs/federation.md)`);
          }
          let walked: string[] = [];
          if (contents) {
            if (contents.parentToo && draft.parent === null) throw usage('bad version contents: parentToo without a parent');
            // Nothing is marked complete: the master cannot know which trees the ids are under.
            checkListed(tree, draft.root, contents.ids, contents.parentToo ? draft.parent : null, 'this version');
          } else {
            const check = await checkComplete(draft.root);
            if (check.missing.length) throw incomplete('the master', 'this version', check.missing);
            walked = check.walked;
          }
          const { record, bytes } = await meta.issue(draft, q.force === true, walked, expect as number | undefined);
          replication?.kick();
          return sendRecord(res, 201, record.version, bytes, true);
        }
      }
      if (method === 'PUT' && parts[2] === 'versions' && parts.length === 4) {
        // A copied version (a backup, a replica): its own number, once every object it reaches is here.
        need('write');
        const v = versionNumber(parts[3]);
        if (v === undefined) throw usage(`"${parts[3].slice(0, 20)}" is not a version`);
        const copied = copiedContents(req);
        if (encrypted && !copied) {
          throw usage(`a copied version for an encrypted master needs its contents (${IDS_HEADER}, ${BASE_HEADER})`, 'the master cannot walk sealed trees: the copier names the ids the version reaches (docs/master.md)');
        }
        const raw = await body(req, JSON_LIMIT + (copied?.count ?? 0) * ID_BYTES);
        const idBytes = (copied?.count ?? 0) * ID_BYTES;
        if (raw.length < idBytes) throw usage(`the body is shorter than the ${copied!.count} id(s) ${IDS_HEADER} announces`);
        let record;
        try {
          record = decodeVersion(raw.subarray(0, raw.length - idBytes), tree, v);
        } catch (err) {
          if (err instanceof EltonError && err.code === 'E_CORRUPT') throw usage(`bad version record: ${err.message}`);
          throw err;
        }
        if (encrypted && (record.sealed === undefined || record.message || record.author || record.host || record.git)) {
          throw usage(`bad version record ${tree}@${v}: an encrypted master takes sealed records only`, 'copy from a store of the same encrypted repository');
        }
        const owner = federation?.peerHoming(tree);
        if (owner) await federation!.checkCopy(owner, record);
        let walked: string[] = [];
        if (encrypted) {
          checkListed(tree, record.root, decodeIds(raw.subarray(raw.length - idBytes)), copied!.base, `${tree}@${v}`);
        } else {
          // A plain master walks whatever the copier says: its own check is the one that counts.
          const check = await checkComplete(record.root);
          if (check.missing.length) throw incomplete('the master', `${tree}@${v}`, check.missing);
          walked = check.walked;
        }
        const outcome = await meta.putCopied(record, walked);
        replication?.kick();
        return sendJson(res, outcome === 'created' ? 201 : 200, { outcome, version: v });
      }
      if (method === 'GET' && parts[2] === 'versions' && parts.length === 4) {
        need('read');
        const home = homeFor();
        const latest = parts[3] === 'latest';
        if (home && latest) {
          const r = await federation!.latestRecord(home, tree);
          if (!r) throw notFound(`tree "${tree}"`);
          if (r.stale) res.setHeader(STALE_HEADER, r.stale);
          return sendRecord(res, 200, r.version, r.bytes, false);
        }
        const v = latest ? meta.latestVersion(tree) : /^[1-9][0-9]{0,14}$/.test(parts[3]) ? Number(parts[3]) : NaN;
        if (Number.isNaN(v)) throw usage(`"${parts[3].slice(0, 20)}" is not a version`);
        if (home) return sendRecord(res, 200, v, await federation!.record(home, tree, v), true);
        const bytes = v ? meta.readVersionBytes(tree, v) : undefined;
        if (!bytes) throw notFound(latest ? `tree "${tree}"` : `version ${tree}@${v}`);
        return sendRecord(res, 200, v, bytes, !latest);
      }
    }
    throw notFound(`${method} ${path}`, 'see docs/master.md for the API');
  }

  // Byte counts per request are socket counter deltas since the previous request on that socket
  // ended: a small request is read whole before its handler runs.
  const counted = new WeakMap<Socket, { read: number; written: number }>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const t0 = process.hrtime.bigint();
    const socket = req.socket as Socket;
    let who = '-';
    res.setHeader(PROTOCOL_HEADER, String(PROTOCOL));
    if (name) res.setHeader(MASTER_HEADER, name);
    // For the log and the accounting; `route` refuses a malformed one.
    let via: string | undefined;
    try { via = viaOf(req); } catch { via = undefined; }
    res.once('close', () => {
      const last = counted.get(socket) ?? { read: 0, written: 0 };
      const now = { read: socket.bytesRead, written: socket.bytesWritten };
      counted.set(socket, now);
      if (via) federation?.countInbound(via, now.read - last.read, now.written - last.written);
      opts.onRequest?.({
        time: new Date().toISOString(), client: socket.remoteAddress ?? '-', method: req.method ?? '-', path: (req.url ?? '').split('?')[0].slice(0, 200),
        status: res.headersSent ? res.statusCode : 0, ms: Number(process.hrtime.bigint() - t0) / 1e6,
        bytesIn: now.read - last.read, bytesOut: now.written - last.written, who, via,
      });
    });
    route(req, res, (name) => { who = name; }).catch((err) => {
      const e = err instanceof EltonError ? err : new EltonError('E_INTERNAL', err instanceof Error ? err.message : String(err), EXIT.internal, 'see the master\'s log');
      if (!(err instanceof EltonError)) process.emitWarning(`elton master: ${err instanceof Error ? err.stack : err}`);
      if (res.headersSent) {
        // Mid-stream: the only honest signal left is a cut connection (the client sees a truncated pack).
        res.destroy();
        return;
      }
      // A peer's failure (details.peer) is a bad gateway here, whatever its kind: a 401 would tell the client its own token is wrong.
      sendError(req, res, e.details?.peer ? 502 : STATUS[e.code] ?? 500, e);
    });
  };

  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
  const url = await listen(server, opts.host, opts.port, opts.tls ? 'https' : 'http');

  replication?.kick();
  let closing: Promise<void> | undefined;
  return {
    url,
    name,
    encrypted,
    replication,
    close: () => closing ??= (async () => {
      await closeGracefully(server, 10_000);
      await replication?.close();
      await federation?.close();
      await store.close();
      await meta.close();
    })(),
  };
}
