// The master's HTTP server: the protocol of docs/master.md over a file store (objects) and LMDB (metadata).
//
// Every handler costs one request whatever the number of objects: id lists travel packed, objects
// travel as streamed tar packs in both directions, and a version is issued in one transaction
// after the master has checked that every object it reaches is held. Nothing a client sends
// becomes visible before it is verified against its id.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { EltonError, EXIT, incomplete, notFound, usage } from '../errors.js';
import { decodeObject, decodeObjectAsync, Kind } from '../object.js';
import { homeOf, isMasterName, isTreeName } from '../ref.js';
import { isId } from '../lib/hash.js';
import { decodeTree } from '../tree.js';
import { decodeVersion } from '../version.js';
import { rebuildTree } from '../tree-delta.js';
import { pathSelected } from '../snapshot.js';
import { FileStore, encodeStoreConfig } from '../store/file-store.js';
import { defaultStoreConfig } from '../store/open.js';
import type { ClosureRoot, VersionDraft } from '../store/store.js';
import {
  API, decodeIds, encodeIds, framingOf, readPack, PackStreamWriter, PackFormatError, PACK_TYPES, PROTOCOL, PROTOCOL_HEADER,
  LOCAL_HEADER, MASTER_HEADER, PARTIAL_HEADER, STALE_HEADER, VIA_HEADER, type PackFraming,
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
}

export interface Master {
  url: string;
  /** The name recorded in its data directory, if it has one. */
  name?: string;
  replication?: Replicator;
  close(): Promise<void>;
}

const JSON_LIMIT = 1024 * 1024;
const ID_LIST_LIMIT = 64 * 1024 * 1024;

const STATUS: Record<string, number> = {
  E_USAGE: 400, E_BAD_REF: 400, E_AUTH: 401, E_FORBIDDEN: 403, E_NOT_FOUND: 404, E_CONFLICT: 409,
  E_TOO_LARGE: 413, E_CORRUPT: 422, E_INCOMPLETE: 422, E_DELTA_BASE: 422,
  E_UNREACHABLE: 502, E_PEER: 502, E_LOOP: 508, E_NO_PEER: 421,
};

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

/**
 * Runs slow work before a response starts (a fetch from a peer, a forwarded commit), sending
 * "102 Processing" every 15 s (ELTON_HEARTBEAT_MS) meanwhile, so that the client's idle timeout
 * does not cut it.
 */
/** How long the rest of a refused upload is read and dropped before the connection is cut. */
const REFUSED_DRAIN_MS = 2000;

async function keepAlive<T>(res: ServerResponse, work: () => Promise<T>): Promise<T> {
  const beat = setInterval(() => { if (!res.headersSent) res.writeProcessing(); }, HEARTBEAT_MS);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

async function jsonBody<T>(req: IncomingMessage): Promise<T> {
  try {
    return JSON.parse((await body(req, JSON_LIMIT)).toString('utf8')) as T;
  } catch (err) {
    if (err instanceof EltonError) throw err;
    throw usage('the request body is not valid JSON');
  }
}

function checkDraft(tree: string, value: unknown): VersionDraft {
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
  return { tree, root: d.root!, parent: d.parent ?? null, message: d.message!, author: d.author!, host: d.host!, time: d.time!, git: git ? { commit: git.commit, branch: git.branch } : null };
}

export async function startMaster(opts: MasterOptions): Promise<Master> {
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
  const store = await FileStore.create(storeDir, defaultStoreConfig(), meta);
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

  async function receivePack(req: IncomingMessage): Promise<{ objects: number; stored: number; bytes: number }> {
    const writer = store.writer();
    const seen = new Set<string>();
    let objects = 0;
    let stored = 0;
    let bytes = 0;
    try {
      await readPack(req, async (id, delivered, delta) => {
        objects++;
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

  function authorize(req: IncomingMessage, scope: Scope | 'any'): Grant | undefined {
    if (!opts.tokens) return undefined;
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const grant = m ? opts.tokens.check(m[1]) : undefined;
    if (!grant) throw new EltonError('E_AUTH', 'a valid bearer token is required', EXIT.auth, 'set ELTON_TOKEN');
    if (scope !== 'any' && !grant.scopes.has(scope)) throw new EltonError('E_FORBIDDEN', `token "${grant.name}" lacks the ${scope} scope`, EXIT.auth, `use a token with the ${scope} scope`);
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
        trees: meta.listTrees().length, replication: replication?.status() ?? null, peers: federation?.status() ?? [],
      });
    }
    if (!path.startsWith(`${API}/`)) throw notFound(`${method} ${path}`, `the API lives under ${API}/`);
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
          const q = await jsonBody<{ draft: unknown; force?: unknown }>(req);
          const draft = checkDraft(tree, q.draft);
          const home = homeFor();
          if (home) {
            const { record, bytes } = await keepAlive(res, () => federation!.forwardIssue(home, draft, q.force === true));
            return sendRecord(res, 201, record.version, bytes, true);
          }
          const owner = homeOf(tree);
          if (owner !== undefined && owner !== name) {
            throw usage(`${tree} belongs to the master named "${owner}"${name ? `, not to "${name}"` : ''}: only its home issues its versions`, `commit through "${owner}", or through a master that has it as a peer (docs/federation.md)`);
          }
          const { missing, walked } = await checkComplete(draft.root);
          if (missing.length) throw incomplete('the master', 'this version', missing);
          const { record, bytes } = await meta.issue(draft, q.force === true, walked);
          replication?.kick();
          return sendRecord(res, 201, record.version, bytes, true);
        }
      }
      if (method === 'PUT' && parts[2] === 'versions' && parts.length === 4) {
        // A copied version (a backup, a replica): its own number, once every object it reaches is here.
        need('write');
        if (!/^[1-9][0-9]{0,14}$/.test(parts[3])) throw usage(`"${parts[3].slice(0, 20)}" is not a version`);
        const v = Number(parts[3]);
        let record;
        try {
          record = decodeVersion(await body(req, JSON_LIMIT), tree, v);
        } catch (err) {
          if (err instanceof EltonError && err.code === 'E_CORRUPT') throw usage(`bad version record: ${err.message}`);
          throw err;
        }
        const owner = federation?.peerHoming(tree);
        if (owner) await federation!.checkCopy(owner, record);
        const { missing, walked } = await checkComplete(record.root);
        if (missing.length) throw incomplete('the master', `${tree}@${v}`, missing);
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
      const data = Buffer.from(JSON.stringify({ error: e.toJSON() }));
      // A peer's failure (details.peer) is a bad gateway here, whatever its kind: a 401 would tell the client its own token is wrong.
      // A refused upload may still be streaming in: close rather than read the rest of it. What
      // arrives meanwhile is read and dropped for a moment, because closing a socket with unread
      // data resets it, and the reset can reach the client before this answer does.
      const closing = req.readableEnded ? {} : { connection: 'close' };
      res.writeHead(e.details?.peer ? 502 : STATUS[e.code] ?? 500, { 'content-type': 'application/json', 'content-length': data.length, ...closing });
      res.end(data, () => {
        if (req.readableEnded) return;
        req.resume();
        setTimeout(() => req.destroy(), REFUSED_DRAIN_MS).unref();
      });
    });
  };

  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
  const url = await listen(server, opts.host, opts.port, opts.tls ? 'https' : 'http');

  replication?.kick();
  let closing: Promise<void> | undefined;
  return {
    url,
    name,
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
