// Encrypted masters (docs/master.md): real master processes holding an encrypted repository as
// opaque ciphertext, driven through HttpStore (and a CachedStore in front of it) with the key
// held only here, in the test.

import type { VersionRecord } from '../../src/version.js';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import { HttpStore } from '../../src/remote/http-store.js';
import { CachedStore } from '../../src/store/cached-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { encryptedCodec, type ObjectCodec } from '../../src/codec.js';
import { encodeKeyring, KEYRING_FORMAT, repoKeys, sealKeyring } from '../../src/crypto/keyring.js';
import { encodeObject, Kind, type Compression, type Encoded } from '../../src/object.js';
import { encodeTree, type TreeEntry } from '../../src/tree.js';
import { encodeVersion } from '../../src/version.js';
import { sha256 } from '../../src/lib/hash.js';
import { EltonError } from '../../src/errors.js';
import type { ObjectSource, VersionDraft } from '../../src/store/store.js';

const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';
const WO = 'wo-token-0123456789abcdef';

// Strings that must never reach the master's disk: file content, a file name, a message, an author.
const CONTENT = 'PLAINTEXT-CONTENT: the launch codes are 0000, do not tell anyone';
const CONTENT2 = 'PLAINTEXT-CONTENT-TWO: second version of the secret file';
const FILE_NAME = 'secret-file-name.txt';
const MESSAGE = 'SECRET-COMMIT-MESSAGE about the launch';
const AUTHOR = 'secret-author-mallory';
const SECRETS = [CONTENT, CONTENT2, FILE_NAME, MESSAGE, AUTHOR];

// Raw (uncompressed) encoding, so that in a plain store these strings would be on disk verbatim.
const RAW: Compression = { codec: 'raw', quality: 0 };

/** Rejects with an EltonError of this code (and exit code, if given). */
async function rejectsWith(p: Promise<unknown>, code: string, exitCode?: number): Promise<EltonError> {
  let caught: unknown;
  try { await p; } catch (err) { caught = err; }
  assert.ok(caught instanceof EltonError, `expected ${code}, got ${caught instanceof Error ? caught.stack : caught}`);
  assert.equal(caught.code, code, caught.message);
  if (exitCode !== undefined) assert.equal(caught.exitCode, exitCode);
  return caught;
}

/** An ObjectSource over objects held in memory. */
function sourceOf(objects: Encoded[]): ObjectSource {
  const byId = new Map(objects.map((o) => [o.id, o.data]));
  return {
    locate: async (id) => (byId.has(id) ? { length: byId.get(id)!.length } : undefined),
    readObjects: async (ids, onObject) => { for (const id of ids) await onObject(id, byId.get(id)!); },
  };
}

/** A keyring document (the master only stores it; nothing here unwraps it), each one a generation newer than the last. */
const KEYRING_MASTER = randomBytes(32);
const KEYRING_CHECK = randomBytes(16).toString('base64');
let keyringGeneration = 0;
const keyringBytes = (label: string, check = KEYRING_CHECK, generation = ++keyringGeneration) => encodeKeyring(sealKeyring({
  format: KEYRING_FORMAT, cipher: 'aes-256-gcm', ids: 'hmac-sha256', check, generation,
  wrappings: [{ id: '0a1b2c3d', source: 'keyfile', created: label, keyfile: { fingerprint: label }, wrapped: randomBytes(60).toString('base64') }],
}, KEYRING_MASTER));

/** One version of a small repository: root/ holding dir/ holding the secret file. */
function version(codec: ObjectCodec, content: string) {
  const chunk = codec.encode(Kind.chunk, Buffer.from(content), RAW);
  const file: TreeEntry = { name: FILE_NAME, type: 'file', mode: 0o644, mtime: 0, size: content.length, chunks: [{ id: chunk.id, size: content.length }] };
  const dir = codec.encode(Kind.tree, encodeTree([file]), RAW);
  const root = codec.encode(Kind.tree, encodeTree([{ name: 'dir', type: 'dir', mode: 0o755, mtime: 0, tree: dir.id }]), RAW);
  return { chunk, dir, root, all: [root, dir, chunk] };
}

const draftOf = (tree: string, root: string, parent: number | null): VersionDraft => ({
  tree, root, parent, message: MESSAGE, author: AUTHOR, host: 'secret-host', time: new Date().toISOString(), git: null,
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('integration: encrypted master', function () {
  this.timeout(180000);
  const started: MasterProcess[] = [];
  const stores: HttpStore[] = [];
  let A: MasterProcess;
  let a: HttpStore;
  let tokens: string;
  const key = randomBytes(32);
  const codec = encryptedCodec(repoKeys(key));
  const sealer = (r: VersionRecord) => codec.sealVersion(r);
  const v1 = version(codec, CONTENT);
  const v2 = version(codec, CONTENT2);

  const connect = async (url: string, token?: string) => {
    const s = await HttpStore.connect(url, { token });
    stores.push(s);
    return s;
  };
  const start = async (args: string[], data?: string) => {
    const m = await startMasterProcess(args, data);
    started.push(m);
    return m;
  };

  before(async () => {
    tokens = join(tempDir(), 'tokens');
    writeFileSync(tokens, `${RW} read,write,keys rw\n${RO} read ro\n${WO} write wo\n`);
    A = await start(['--encrypted', '--token-file', tokens]);
    a = await connect(A.url, RW);
  });
  after(async () => {
    for (const s of stores) await s.close();
    for (const m of started) await m.stop();
  });

  it('a new data directory is created encrypted, and says so', async () => {
    assert.equal(a.config.idScheme, 'hmac-sha256');
    assert.deepEqual(a.config.encryption, { cipher: 'aes-256-gcm' });
    const status = await (await fetch(`${A.url}/v1/status`, { headers: { authorization: `Bearer ${RO}` } })).json() as { encrypted: boolean };
    assert.equal(status.encrypted, true);
  });

  it('keyring: create once, read with its tag, replace by compare-and-set only', async () => {
    assert.equal(await a.readKeyringBytes(), undefined);
    const k1 = keyringBytes('one');
    await a.writeKeyringBytes(k1, null);
    const again = await rejectsWith(a.writeKeyringBytes(keyringBytes('other'), null), 'E_CONFLICT', 5);
    assert.match(again.hint!, /again/);

    const read = await a.readKeyringBytes();
    assert.ok(read && read.data.equals(k1));
    assert.equal(read.tag, sha256(k1).toString('hex'));
    const raw = await fetch(`${A.url}/v1/keyring`, { headers: { authorization: `Bearer ${RO}` } });
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('etag'), `"${read.tag}"`);

    const k2 = keyringBytes('two');
    await rejectsWith(a.writeKeyringBytes(k2, sha256(k2).toString('hex')), 'E_CONFLICT', 5);
    await a.writeKeyringBytes(k2, read.tag);
    assert.ok((await a.readKeyringBytes())!.data.equals(k2));
    assert.ok(readFileSync(join(A.data, 'store', 'keyring')).equals(k2), 'kept beside the store config');
    // The old tag no longer replaces anything.
    await rejectsWith(a.writeKeyringBytes(keyringBytes('stale'), read.tag), 'E_CONFLICT', 5);
    // Nor does a keyring for another key, or an older one (a replay), even naming the right tag.
    const now = (await a.readKeyringBytes())!.tag;
    assert.match((await rejectsWith(a.writeKeyringBytes(keyringBytes('other key', randomBytes(16).toString('base64')), now), 'E_CONFLICT', 5)).message, /another repository key/);
    assert.match((await rejectsWith(a.writeKeyringBytes(keyringBytes('replayed', KEYRING_CHECK, 1), now), 'E_CONFLICT', 5)).message, /not newer/);
    // Nor one that jumps so far ahead that nothing newer could follow it.
    assert.match((await rejectsWith(a.writeKeyringBytes(keyringBytes('far', KEYRING_CHECK, keyringGeneration + 100_000), now), 'E_CONFLICT', 5)).message, /jumps more than/);
    // A token without the keys scope cannot write it.
    await rejectsWith((await connect(A.url, WO)).writeKeyringBytes(keyringBytes('wo'), now), 'E_AUTH', 12);
  });

  it('keyring: of concurrent writers naming the same tag, exactly one wins', async () => {
    const { tag } = (await a.readKeyringBytes())!;
    const candidates = [1, 2, 3, 4, 5, 6].map((i) => keyringBytes(`racer-${i}`));
    const results = await Promise.allSettled(candidates.map((k) => a.writeKeyringBytes(k, tag)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as EltonError).code, 'E_CONFLICT');
    assert.ok((await a.readKeyringBytes())!.data.equals(candidates[won[0]]));
  });

  it('keyring: a bad or oversized body, a missing precondition and a wrong scope are refused', async () => {
    const { tag } = (await a.readKeyringBytes())!;
    await rejectsWith(a.writeKeyringBytes(Buffer.from('not a keyring'), tag), 'E_USAGE', 2);
    await rejectsWith(a.writeKeyringBytes(Buffer.from('{"format":1}'), tag), 'E_USAGE', 2);
    await rejectsWith(a.writeKeyringBytes(Buffer.alloc(70 * 1024, 0x20), tag), 'E_TOO_LARGE');
    const bare = await fetch(`${A.url}/v1/keyring`, { method: 'PUT', body: new Uint8Array(keyringBytes('bare')), headers: { authorization: `Bearer ${RW}` } });
    assert.equal(bare.status, 400);
    assert.equal(((await bare.json()) as { error: { code: string } }).error.code, 'E_USAGE');
    const unconditional412 = await fetch(`${A.url}/v1/keyring`, { method: 'PUT', body: new Uint8Array(keyringBytes('x')), headers: { authorization: `Bearer ${RW}`, 'if-match': `"${'0'.repeat(64)}"` } });
    assert.equal(unconditional412.status, 412);
    await rejectsWith((await connect(A.url, RO)).writeKeyringBytes(keyringBytes('ro'), tag), 'E_AUTH', 12);
    await rejectsWith((await connect(A.url, WO)).readKeyringBytes(), 'E_AUTH', 12);
    assert.equal((await a.readKeyringBytes())!.tag, tag, 'nothing refused was written');
  });

  it('stores sealed objects as sent, and refuses unsealed objects and tree deltas', async () => {
    await a.send(v1.all.map((o) => o.id), sourceOf(v1.all));
    assert.deepEqual(await a.missing(v1.all.map((o) => o.id)), new Set());
    const back = new Map<string, Buffer>();
    await a.readObjects(v1.all.map((o) => o.id), (id, data) => { back.set(id, Buffer.from(data)); });
    for (const o of v1.all) assert.ok(back.get(o.id)!.equals(o.data), 'served exactly as stored');
    assert.equal(codec.decode(back.get(v1.chunk.id)!, 'chunk', v1.chunk.id).plain.toString(), CONTENT);

    const plain = encodeObject(Kind.chunk, Buffer.from('an unsealed chunk'), RAW);
    const e = await rejectsWith(a.upload(async (pack) => { await pack.add(plain.id, plain.data); }), 'E_CORRUPT', 7);
    assert.match(e.message, /not an encrypted/);
    const short = Buffer.from('ELX\x01short');
    await rejectsWith(a.upload(async (pack) => { await pack.add(sha256(short).toString('hex'), short); }), 'E_CORRUPT', 7);
    const delta = await rejectsWith(a.upload(async (pack) => { await pack.addDelta(v2.dir.id, v1.dir.id, Buffer.alloc(8)); }), 'E_USAGE', 2);
    assert.match(delta.message, /delta/);
    assert.deepEqual(await a.missing([plain.id, v2.dir.id]), new Set([plain.id, v2.dir.id]), 'nothing refused was stored');
  });

  it('issues a version from a sealed draft and the ids it reaches, and reads it back sealed', async () => {
    const ids = v1.all.map((o) => o.id);
    const issued = await a.issueVersion(draftOf('photos', v1.root.id, null), false, { ids, parentToo: false }, sealer);
    assert.equal(issued.version, 1);
    assert.equal(issued.message, '');
    assert.ok(issued.sealed);

    const reader = await connect(A.url, RO);
    const stored = await reader.readVersion('photos', 1);
    assert.equal(stored.sealed, issued.sealed);
    const opened = codec.openVersion(stored);
    assert.equal(opened.message, MESSAGE);
    assert.equal(opened.author, AUTHOR);
    assert.equal(await reader.latestVersion('photos'), 1);

    // The second version names only what it reaches beyond its parent.
    await a.send(v2.all.map((o) => o.id), sourceOf(v2.all));
    const second = await a.issueVersion(draftOf('photos', v2.root.id, 1), false, { ids: v2.all.map((o) => o.id), parentToo: true }, sealer);
    assert.equal(second.version, 2);
    assert.equal(codec.openVersion(await reader.readVersion('photos', 2)).parent, 1);
  });

  it('refuses a version whose ids or root are not held, an unsealed draft, and contents relative to a missing parent', async () => {
    const absent = randomBytes(32).toString('hex');
    const e = await rejectsWith(a.issueVersion(draftOf('photos', v1.root.id, 2), false, { ids: [v1.chunk.id, absent], parentToo: true }, sealer), 'E_INCOMPLETE');
    assert.deepEqual(e.details!.missing, [absent]);
    const noRoot = await rejectsWith(a.issueVersion(draftOf('other', absent, null), false, { ids: [], parentToo: false }, sealer), 'E_INCOMPLETE');
    assert.deepEqual(noRoot.details!.missing, [absent]);
    await rejectsWith(a.issueVersion(draftOf('photos', v1.root.id, 2), false, { ids: [], parentToo: true }, (r) => r), 'E_USAGE', 2);
    await rejectsWith(a.issueVersion(draftOf('fresh', v1.root.id, 7), false, { ids: [], parentToo: true }, sealer), 'E_INCOMPLETE');
    // Without contents at all (a client unaware of encrypted masters), the request is refused.
    const res = await fetch(`${A.url}/v1/trees/photos/versions`, {
      method: 'POST', headers: { authorization: `Bearer ${RW}`, 'content-type': 'application/json' },
      body: JSON.stringify({ draft: codec.sealVersion({ ...draftOf('photos', v1.root.id, 2), version: 3 }), force: false, version: 3 }),
    });
    assert.equal(res.status, 400);
    assert.equal(await a.latestVersion('photos'), 2, 'nothing refused was issued');
  });

  it('refuses closures of trees; a client walks the sealed trees itself', async () => {
    await rejectsWith(a.readTrees([{ id: v1.root.id, path: '' }], undefined, () => {}), 'E_USAGE', 2);

    // A workspace-like client: a CachedStore over an encrypted local cache, with the key.
    const cached = async () => {
      const local = await FileStore.create(join(tempDir(), 'cache'), a.config);
      local.useKeys(repoKeys(key));
      return new CachedStore(local, await HttpStore.connect(A.url, { token: RW }));
    };
    const writer = await cached();
    const v3 = version(codec, 'a third version, committed through a cache');
    const w = writer.writer();
    for (const o of v3.all) await w.add(o.id, o.data);
    await w.finish();
    const issued = await writer.issueVersion(draftOf('photos', v3.root.id, 2), false);
    assert.equal(issued.version, 3);
    assert.equal(issued.message, MESSAGE, 'opened for the caller');
    // Its parent's trees are in the cache now: the next commit sends only what changed (parentToo).
    const v4 = version(codec, 'a fourth version, relative to the third');
    const w4 = writer.writer();
    for (const o of v4.all) await w4.add(o.id, o.data);
    await w4.finish();
    assert.equal((await writer.issueVersion(draftOf('photos', v4.root.id, 3), false)).version, 4);
    await writer.close();

    const reader = await cached();
    const record = await reader.readVersion('photos', 3);
    assert.equal(record.message, MESSAGE);
    await reader.prefetchTrees!(record.root);
    const got: string[] = [];
    await reader.readObjects([v3.chunk.id], (id, data) => { got.push(reader.codec.decode(data, 'chunk', id).plain.toString()); });
    assert.deepEqual(got, ['a third version, committed through a cache']);
    await reader.close();
  });

  it('a record shown again under a newer number (a rollback by any write token) does not open; racing --force writers each get a number', async () => {
    const old = await a.readVersion('photos', 1);
    const latest = await a.latestVersion('photos');
    const res = await fetch(`${A.url}/v1/trees/photos/versions`, {
      method: 'POST', headers: { authorization: `Bearer ${RW}`, 'content-type': 'application/json' },
      body: JSON.stringify({ draft: old, force: true, version: latest + 1, contents: { ids: '', parentToo: false } }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const replayed = await a.readVersion('photos', latest + 1);
    assert.equal(replayed.sealed, old.sealed, 'the master took it: it cannot check seals');
    assert.throws(() => codec.openVersion(replayed), (e: EltonError) => e.code === 'E_CORRUPT' && /does not authenticate/.test(e.message));
    // The number a sealed draft names is the only one it gets; --force clients move on to the next.
    const wrong = await fetch(`${A.url}/v1/trees/photos/versions`, {
      method: 'POST', headers: { authorization: `Bearer ${RW}`, 'content-type': 'application/json' },
      body: JSON.stringify({ draft: codec.sealVersion({ ...draftOf('photos', v1.root.id, 1), version: 99 }), force: true, version: 99, contents: { ids: '', parentToo: false } }),
    });
    assert.equal(wrong.status, 409);
    const racers = await Promise.all([1, 2, 3, 4].map(async () => (await connect(A.url, RW)).issueVersion(draftOf('photos', v1.root.id, 1), true, { ids: [], parentToo: false }, sealer)));
    assert.deepEqual(racers.map((r) => r.version).sort((x, y) => x - y), [latest + 2, latest + 3, latest + 4, latest + 5]);
    for (const r of racers) assert.equal(codec.openVersion(await a.readVersion('photos', r.version)).message, MESSAGE);
  });

  it('lists every object id it holds, in pages', async () => {
    const ids = await a.listIds();
    for (const o of [...v1.all, ...v2.all]) assert.ok(ids.includes(o.id));
    assert.equal(new Set(ids).size, ids.length);

    const B = await start(['--encrypted']);
    const b = await connect(B.url);
    // More than one page of ids (8192 a page).
    const many = Array.from({ length: 9000 }, (_, i) => codec.encode(Kind.chunk, Buffer.from(`object ${i}`), RAW));
    await b.send(many.map((o) => o.id), sourceOf(many));
    assert.deepEqual((await b.listIds()).sort(), many.map((o) => o.id).sort());
  });

  it('records copied versions with their contents, and refuses them without', async () => {
    const C = await start(['--encrypted']);
    const c = await connect(C.url);
    const r1 = await a.readVersion('photos', 1);
    const r2 = await a.readVersion('photos', 2);
    const ids1 = v1.all.map((o) => o.id);
    const ids2 = v2.all.map((o) => o.id);
    await rejectsWith(c.putVersion(r1, { ids: ids1, base: null }), 'E_INCOMPLETE');
    await c.send([...ids1, ...ids2], sourceOf([...v1.all, ...v2.all]));
    assert.equal(await c.putVersion(r1, { ids: ids1, base: null }), 'created');
    assert.equal(await c.putVersion(r1, { ids: ids1, base: null }), 'present');
    await rejectsWith(c.putVersion({ ...r2, tree: 'elsewhere' }, { ids: ids2, base: 1 }), 'E_INCOMPLETE');
    await rejectsWith(c.putVersion(r2, { ids: [...ids2, randomBytes(32).toString('hex')], base: 1 }), 'E_INCOMPLETE');
    assert.equal(await c.putVersion(r2, { ids: ids2, base: 1 }), 'created');
    assert.equal(codec.openVersion(await (await connect(C.url)).readVersion('photos', 2)).message, MESSAGE);
    await rejectsWith(c.putVersion({ ...r1, version: 3, sealed: undefined, message: 'plain' }, { ids: ids1, base: null }), 'E_USAGE', 2);

    // A client that sends the bare record (as to a plain master) is told what is missing.
    const res = await fetch(`${C.url}/v1/trees/photos/versions/9`, { method: 'PUT', body: new Uint8Array(encodeVersion({ ...r1, version: 9 })) });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /contents/);
  });

  it('no plaintext reaches the master\'s data directory', async () => {
    for (const m of started) {
      const files = filesUnder(m.data);
      assert.ok(files.some((f) => f.endsWith('.tar')) && files.some((f) => f.endsWith('data.mdb')), 'packs and metadata were written');
      for (const file of files) {
        const bytes = readFileSync(file);
        for (const secret of SECRETS) assert.ok(!bytes.includes(secret), `${secret} found in ${file}`);
      }
    }
  });

  it('a plain master has no keyring endpoints, and lists its ids too', async () => {
    const P = await start([]);
    const p = await connect(P.url);
    assert.equal(p.config.encryption, undefined);
    await rejectsWith(p.readKeyringBytes(), 'E_USAGE', 2);
    await rejectsWith(p.writeKeyringBytes(keyringBytes('plain'), null), 'E_USAGE', 2);
    const obj = encodeObject(Kind.chunk, Buffer.from('plain object'), RAW);
    await p.send([obj.id], sourceOf([obj]));
    assert.deepEqual(await p.listIds(), [obj.id]);
  });

  it('a data directory keeps what it holds: --encrypted must match it, and an encrypted master takes no peers', async () => {
    const plainData = join(tempDir(), 'plain');
    await (await start([], plainData)).stop();
    await assert.rejects(startMasterProcess(['--encrypted'], plainData), (err: Error) => /exited \(2\)/.test(err.message) && /plain/.test(err.message) && /without --encrypted/.test(err.message));

    const encData = join(tempDir(), 'enc');
    await (await start(['--encrypted'], encData)).stop();
    await assert.rejects(startMasterProcess([], encData), (err: Error) => /exited \(2\)/.test(err.message) && /encrypted repository/.test(err.message) && /--encrypted/.test(err.message));
    // Restarted with the flag, it serves what it held.
    const again = await start(['--encrypted'], encData);
    assert.deepEqual((await connect(again.url)).config.encryption, { cipher: 'aes-256-gcm' });

    await assert.rejects(startMasterProcess(['--encrypted', '--name', 'alpha', '--peer', 'beta=http://127.0.0.1:9'], join(tempDir(), 'peers')),
      (err: Error) => /exited \(2\)/.test(err.message) && /not supported yet/.test(err.message));
  });

  it('refuses requests from a peer master', async () => {
    const res = await fetch(`${A.url}/v1/trees`, { headers: { authorization: `Bearer ${RO}`, 'x-elton-via': 'someone' } });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /encrypted/);
  });
});
