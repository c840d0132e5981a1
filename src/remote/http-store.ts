// A master as a Remote: each method is one HTTP request per stream, and objects move as streamed tar packs.
//
// Used behind a CachedStore, which keeps what it fetches and stages commits locally; on its own
// it holds nothing but the version records it has read (they are immutable).

import type { ClientRequest } from 'node:http';
import { conflict, hasCode, notFound, remoteError, usage } from '../errors.js';
import { sha256 } from '../lib/hash.js';
import { Kind } from '../object.js';
import { treeDelta } from '../tree-delta.js';
import { decodeStoreConfig } from '../store/file-store.js';
import type { Reporter } from '../events.js';
import type {
  ClosureRoot, CopiedContents, IdLister, KeyringHolder, ObjectSource, PutOutcome, Remote, StoreConfig, VersionContents, VersionDraft,
} from '../store/store.js';
import { splitForStreams } from './streams.js';
import { decodeVersion, encodeVersion, type VersionRecord } from '../version.js';
import { HttpClient, readBody, type HttpClientOptions } from './http-client.js';
import {
  API, encodeIds, decodeIds, framingOf, readPack, PackStreamWriter, PackFormatError, PACK_TYPES, PARTIAL_HEADER, STALE_HEADER, IDS_HEADER, BASE_HEADER, ID_BYTES,
} from './wire.js';

const treePath = (tree: string) => `${API}/trees/${encodeURIComponent(tree)}`;

/** A version record's number travels beside it, so the record can be checked against what it claims to be. */
export const VERSION_HEADER = 'x-elton-version';

function versionHeader(headers: Record<string, string | string[] | undefined>): number {
  const v = Number(headers[VERSION_HEADER]);
  if (!Number.isSafeInteger(v) || v < 1) throw remoteError(`the master sent a version record without a valid ${VERSION_HEADER} header`);
  return v;
}

const MAX_REMEMBERED = 4096;

export interface UploadResult { objects: number; stored: number; bytes: number }

/** What a version needs beside it, for an encrypted master, which cannot walk sealed trees (docs/master.md). */
const noContents = () => usage('an encrypted master needs the ids a version reaches, and none were given', 'this is a bug in the caller: report it');

/** Of writers racing with --force for an encrypted master's next number, each tries this many. */
const MAX_NUMBER_ATTEMPTS = 8;
/** Ids per `missing` request: 32 MiB, half the master's limit on an id list. */
const MISSING_BATCH = 1 << 20;

export class HttpStore implements Remote, KeyringHolder, IdLister {
  private readonly records = new Map<string, VersionRecord>();

  private constructor(private readonly client: HttpClient, readonly config: StoreConfig) {}

  /** A master whose store config is already known (kept in the local cache): no request until one is needed. */
  static withConfig(url: string, opts: HttpClientOptions, config: StoreConfig): HttpStore {
    return new HttpStore(new HttpClient(new URL(url.endsWith('/') ? url : `${url}/`), opts), config);
  }

  /** Asks the master for its store config (one request). */
  static async connect(url: string, opts: HttpClientOptions): Promise<HttpStore> {
    const client = new HttpClient(new URL(url.endsWith('/') ? url : `${url}/`), opts);
    try {
      const { body } = await client.fetch({ method: 'GET', path: `${API}/config` });
      return new HttpStore(client, decodeStoreConfig(body, url));
    } catch (err) {
      client.close();
      throw err;
    }
  }

  get url(): string { return this.client.url; }
  get transfer() { return this.client.transfer; }

  /** One request per million ids (32 MiB), so that any number of ids stays under the master's body limit. */
  async missing(ids: Iterable<string>): Promise<Set<string>> {
    const list = [...ids];
    const out = new Set<string>();
    for (let i = 0; i < list.length; i += MISSING_BATCH) {
      const body = encodeIds(list.slice(i, i + MISSING_BATCH));
      const res = await this.client.fetch({ method: 'POST', path: `${API}/missing`, body, contentType: 'application/octet-stream' });
      for (const id of decodeIds(res.body)) out.add(id);
    }
    return out;
  }

  /** Streams objects up as one pack; `produce` adds them to it, with backpressure. */
  async upload(produce: (pack: PackStreamWriter) => Promise<void>): Promise<UploadResult> {
    // The compact framing once the master has said it speaks protocol 2 (a push asks `missing` first).
    const framing = this.client.serverProtocol >= 2 ? 'elton' : 'tar';
    const res = await this.client.request({
      method: 'POST', path: `${API}/packs`, contentType: PACK_TYPES[framing],
      stream: async (req: ClientRequest) => {
        const pack = new PackStreamWriter(req, framing);
        await produce(pack);
        await pack.finish();
      },
    });
    return JSON.parse((await readBody(res)).toString('utf8')) as UploadResult;
  }

  /**
   * Streams the objects up as packs, in parallel streams of similar sizes. A tree with a similar
   * tree at the master (the same directory in the version before) goes as a delta against it;
   * should the master not hold that base after all, everything goes again whole (what already
   * arrived is not stored twice).
   */
  async send(ids: string[], source: ObjectSource, reporter?: Reporter): Promise<void> {
    const deltas = { sent: 0 };
    try {
      await this.sendPacks(ids, source, reporter, deltas);
    } catch (err) {
      // The refusal may also arrive as a reset connection, since the master answers while the pack is still going up.
      if (!deltas.sent || !(hasCode(err, 'E_DELTA_BASE') || hasCode(err, 'E_UNREACHABLE'))) throw err;
      await this.sendPacks(ids, source, reporter);
    }
  }

  /** With `deltas`, trees go as deltas where they can (counted in it); without, everything goes whole. */
  private async sendPacks(ids: string[], source: ObjectSource, reporter: Reporter | undefined, deltas?: { sent: number }): Promise<void> {
    const lengths = new Map<string, number>();
    for (const id of ids) lengths.set(id, (await source.locate(id))?.length ?? 0);
    const total = [...lengths.values()].reduce((a, b) => a + b, 0);
    let loaded = 0;
    await Promise.all(splitForStreams(ids, (id) => lengths.get(id)!).map((group) => this.upload(async (pack) => {
      await source.readObjects(group, async (id, data) => {
        // Deltas are protocol 2: a master of protocol 1 would refuse the entry.
        const similar = deltas && this.client.serverProtocol >= 2 && data[4] === Kind.tree ? source.similar?.(id) : undefined;
        const delta = similar && treeDelta(id, data, similar.plain);
        if (delta) {
          deltas!.sent++;
          await pack.addDelta(id, similar!.base, delta);
        }
        else await pack.add(id, data);
        loaded += data.length;
        reporter?.({ type: 'progress', phase: 'push', loaded, total, unit: 'bytes' });
      });
    })));
  }

  /** One request per stream for any number of ids; entries arrive in the master's pack order. */
  async readObjects(ids: Iterable<string>, onObject: (id: string, data: Buffer) => void | Promise<void>, sizes?: Map<string, number>): Promise<void> {
    const groups = splitForStreams([...new Set(ids)], (id) => sizes?.get(id) ?? 4096);
    await Promise.all(groups.map((group) => this.readStream(group, onObject)));
  }

  private async readStream(ids: string[], onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void> {
    const wanted = new Set(ids);
    await this.receive({ method: 'POST', path: `${API}/objects`, body: encodeIds(wanted), contentType: 'application/octet-stream' }, wanted, onObject);
  }

  /** One request: the objects the master holds among `ids` (it leaves out the rest); returns the ids received. */
  async readAvailable(ids: string[], onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<Set<string>> {
    const wanted = new Set(ids);
    const got = new Set<string>();
    if (!wanted.size) return got;
    const spec = { method: 'POST' as const, path: `${API}/objects`, body: encodeIds(wanted), contentType: 'application/octet-stream', headers: { [PARTIAL_HEADER]: '1' } };
    await this.receive(spec, wanted, async (id, data) => { got.add(id); await onObject(id, data); }, true);
    return got;
  }

  /** The tree objects beneath each root (at its path), along the selected paths, in one request. */
  async readTrees(roots: ClosureRoot[], prefixes: string[] | undefined, onObject: (id: string, data: Buffer) => void | Promise<void>): Promise<void> {
    const body = Buffer.from(JSON.stringify({ roots, prefixes: prefixes ?? null }));
    await this.receive({ method: 'POST', path: `${API}/trees-closure`, body, contentType: 'application/json' }, undefined, onObject);
  }

  private async receive(spec: Parameters<HttpClient['request']>[0], wanted: Set<string> | undefined, onObject: (id: string, data: Buffer) => void | Promise<void>, partial = false): Promise<void> {
    const res = await this.client.request({ ...spec, accept: `${PACK_TYPES.elton}, ${PACK_TYPES.tar}` });
    const seen = new Set<string>();
    try {
      await readPack(res, async (id, data) => {
        if (wanted && !wanted.has(id)) throw new PackFormatError(`object ${id} was not asked for`);
        if (seen.has(id)) return;
        seen.add(id);
        await onObject(id, data);
      }, undefined, false, framingOf(res.headers['content-type']));
    } catch (err) {
      res.destroy();
      if (err instanceof PackFormatError) throw remoteError(`${this.url} sent a bad pack: ${err.message}`);
      throw this.client.translate(err);
    }
    if (wanted && !partial && seen.size !== wanted.size) {
      const absent = [...wanted].filter((id) => !seen.has(id));
      throw notFound(`object ${absent[0]}${absent.length > 1 ? ` and ${absent.length - 1} more` : ''} on ${this.url}`, 'the master lacks data of this version; push it again from a workspace that has it', { object: absent[0] });
    }
  }

  async listTrees(): Promise<string[]> {
    return (await this.client.json<{ trees: string[] }>({ method: 'GET', path: `${API}/trees` })).trees;
  }

  /** Fetches every record of the tree at once, so that `log` costs one request. */
  async listVersions(tree: string): Promise<number[]> {
    const r = await this.client.json<{ versions: Array<{ version: number; record: string }> }>({ method: 'GET', path: `${treePath(tree)}/versions` });
    return r.versions.map((v) => this.remember(decodeVersion(Buffer.from(v.record, 'base64'), tree, v.version)).version);
  }

  async latestVersion(tree: string): Promise<number> {
    const res = await this.client.fetch({ method: 'GET', path: `${treePath(tree)}/versions/latest`, allow: [404] });
    if (res.status === 404) return 0;
    const stale = res.headers[STALE_HEADER];
    if (typeof stale === 'string') this.stale.set(tree, stale);
    return this.remember(decodeVersion(res.body, tree, versionHeader(res.headers))).version;
  }

  /**
   * Trees whose @latest came from a master's cache because their home could not be asked
   * (federation), with the master's explanation: what a command warns about.
   */
  readonly stale = new Map<string, string>();

  async readVersion(tree: string, version: number): Promise<VersionRecord> {
    const known = this.records.get(`${tree}@${version}`);
    if (known) return known;
    const res = await this.client.fetch({ method: 'GET', path: `${treePath(tree)}/versions/${version}`, allow: [404] });
    if (res.status === 404) throw notFound(`version ${tree}@${version}`, `run \`elton log ${tree}\` to see the versions that exist`);
    return this.remember(decodeVersion(res.body, tree, version));
  }

  /** An encrypted master also gets `contents` (it cannot walk the sealed trees to check the version is complete). */
  async issueVersion(draft: VersionDraft, force: boolean, contents?: VersionContents, seal?: (record: VersionRecord) => VersionRecord): Promise<VersionRecord> {
    if (!this.config.encryption) return this.postVersion(draft, { draft, force });
    if (!contents || !seal) throw noContents();
    const ids = encodeIds(contents.ids).toString('base64');
    // The seal binds the number, so the client names it (parent + 1, or with --force the latest +
    // 1) and the master issues exactly that one; if another writer took it first, --force tries the next.
    for (let attempt = 1; ; attempt++) {
      const version = force ? (await this.latestVersion(draft.tree)) + 1 : (draft.parent ?? 0) + 1;
      try {
        return await this.postVersion(draft, { draft: seal({ ...draft, version }), force, version, contents: { ids, parentToo: contents.parentToo } }, version);
      } catch (err) {
        if (!(force && attempt < MAX_NUMBER_ATTEMPTS && hasCode(err, 'E_CONFLICT') && err.details?.reason === 'number')) throw err;
      }
    }
  }

  private async postVersion(draft: VersionDraft, request: Record<string, unknown>, version?: number): Promise<VersionRecord> {
    const body = Buffer.from(JSON.stringify(request));
    const res = await this.client.fetch({ method: 'POST', path: `${treePath(draft.tree)}/versions`, body, contentType: 'application/json' });
    const record = decodeVersion(res.body, draft.tree, versionHeader(res.headers));
    if (record.root !== draft.root || (version !== undefined && record.version !== version)) throw remoteError(`${this.url} issued ${draft.tree}@${record.version} for another root or number`);
    return this.remember(record);
  }

  /**
   * One request; the master checks that it holds every object the version reaches. An encrypted
   * master cannot walk the version's trees: `contents` goes too, its ids after the record.
   */
  async putVersion(record: VersionRecord, contents?: CopiedContents): Promise<PutOutcome> {
    let body = encodeVersion(record);
    const headers: Record<string, string> = {};
    if (this.config.encryption) {
      if (!contents) throw noContents();
      body = Buffer.concat([body, encodeIds(contents.ids)]);
      headers[IDS_HEADER] = String(contents.ids.length);
      if (contents.base !== null) headers[BASE_HEADER] = String(contents.base);
    }
    const res = await this.client.fetch({
      method: 'PUT', path: `${treePath(record.tree)}/versions/${record.version}`, body, contentType: 'application/octet-stream', headers,
    });
    const outcome = (JSON.parse(res.body.toString('utf8')) as { outcome: PutOutcome }).outcome;
    this.remember(record);
    return outcome;
  }

  /** One request for any number of ids. */
  async lengths(ids: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!ids.length) return out;
    const res = await this.client.fetch({ method: 'POST', path: `${API}/lengths`, body: encodeIds(ids), contentType: 'application/octet-stream' });
    if (res.body.length !== ids.length * 4) throw remoteError(`${this.url} answered a lengths request with ${res.body.length} bytes for ${ids.length} ids`);
    ids.forEach((id, i) => { const n = res.body.readUInt32BE(i * 4); if (n) out.set(id, n); });
    return out;
  }

  /** Every object id the master holds, streamed (one request). */
  async listIds(): Promise<string[]> {
    const res = await this.client.request({ method: 'GET', path: `${API}/ids` });
    const ids: string[] = [];
    let rest = Buffer.alloc(0);
    try {
      for await (const part of res) {
        const data = rest.length ? Buffer.concat([rest, part as Buffer]) : (part as Buffer);
        const whole = data.length - (data.length % ID_BYTES);
        for (const id of decodeIds(data.subarray(0, whole))) ids.push(id);
        rest = Buffer.from(data.subarray(whole));
      }
    } catch (err) {
      throw this.client.translate(err);
    }
    if (rest.length) throw remoteError(`${this.url} sent an id list cut mid-id`);
    return ids;
  }

  /** The keyring of an encrypted master, as opaque bytes, and its tag; undefined when it has none yet. */
  async readKeyringBytes(): Promise<{ data: Buffer; tag: string } | undefined> {
    const res = await this.client.fetch({ method: 'GET', path: `${API}/keyring`, allow: [404] });
    if (res.status === 404) return undefined;
    // The tag is the SHA-256 of the bytes (the master's ETag): computed here, it cannot disagree with them.
    return { data: res.body, tag: sha256(res.body).toString('hex') };
  }

  /** Creates the keyring (`expected` null) or replaces the one whose tag is `expected`; E_CONFLICT if it changed meanwhile. */
  async writeKeyringBytes(data: Buffer, expected: string | null): Promise<void> {
    const headers: Record<string, string> = expected === null ? { 'if-none-match': '*' } : { 'if-match': `"${expected}"` };
    const res = await this.client.fetch({ method: 'PUT', path: `${API}/keyring`, body: data, contentType: 'application/json', headers, allow: [412] });
    if (res.status === 412) {
      throw conflict(expected === null ? `${this.url} already has a keyring` : `the keyring at ${this.url} changed since it was read`,
        'another key command changed it meanwhile: run the command again (it reads the keyring afresh)', { url: this.url });
    }
  }

  private remember(record: VersionRecord): VersionRecord {
    // Bounded: a long-running master talks to its peers through one HttpStore for weeks.
    if (this.records.size >= MAX_REMEMBERED) this.records.delete(this.records.keys().next().value!);
    this.records.set(`${record.tree}@${record.version}`, record);
    return record;
  }

  /** Whether the master answers at all, and with which name (GET /v1/health: no token is sent). */
  static async health(url: string, caFile?: string): Promise<{ name: string | null }> {
    const client = new HttpClient(new URL(url.endsWith('/') ? url : `${url}/`), { caFile });
    try {
      const h = await client.json<{ name?: string | null }>({ method: 'GET', path: `${API}/health` });
      return { name: typeof h.name === 'string' ? h.name : null };
    } finally {
      client.close();
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
