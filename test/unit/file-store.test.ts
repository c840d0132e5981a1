// FileStore (src/store/file-store.ts): config, objects through packs, exclusive versions, and corruption/format errors.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, existsSync, chmodSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { pathToFileURL } from 'node:url';
import { FileStore, encodeStoreConfig, decodeStoreConfig } from '../../src/store/file-store.js';
import { STORE_FORMAT, type StoreConfig } from '../../src/store/store.js';
import { DEFAULT_CHUNKER } from '../../src/chunker.js';
import { defaultStoreConfig } from '../../src/store/open.js';
import { encodeObject, encodeRecord, decodeObject, Kind } from '../../src/object.js';
import { decodeIndex } from '../../src/store/pack.js';
import type { VersionRecord } from '../../src/version.js';
import { EltonError } from '../../src/errors.js';
import { pseudoRandom, tempDir } from '../helpers.js';

const CONFIG: StoreConfig = {
  format: STORE_FORMAT,
  idScheme: 'sha256',
  chunker: DEFAULT_CHUNKER,
  compression: { codec: 'brotli', quality: 2 },
  created: '2026-01-01T00:00:00.000Z',
};
const ROOT = 'b'.repeat(64);

function record(tree: string, version: number, extra: Partial<VersionRecord> = {}): VersionRecord {
  return {
    tree, version, root: ROOT, parent: version > 1 ? version - 1 : null, message: `v${version}`, author: 'alice',
    host: 'node-7', time: '2026-01-02T03:04:05.678Z', git: null, ...extra,
  };
}

async function expectElton(p: Promise<unknown>, code: string): Promise<EltonError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof EltonError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

async function readAll(store: FileStore, ids: string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  await store.readObjects(ids, (id, data) => {
    assert.ok(!out.has(id), `${id} delivered twice`);
    out.set(id, Buffer.from(data));
  });
  return out;
}

/** Encoded chunk objects of assorted sizes, including ones that compress. */
function objects(n: number, seed: number): Array<{ id: string; data: Buffer; plain: Buffer }> {
  return Array.from({ length: n }, (_, i) => {
    const plain = i % 3 === 0 ? Buffer.from(`text ${seed}/${i} `.repeat(200 + i)) : pseudoRandom(100 + i * 997, seed * 1000 + i);
    const enc = encodeObject(Kind.chunk, plain, CONFIG.compression);
    return { id: enc.id, data: enc.data, plain };
  });
}

describe('FileStore', () => {
  describe('create and open', () => {
    it('creates the layout and a config record that open() reads back', async () => {
      const root = join(tempDir(), 'store');
      const store = await FileStore.create(root, CONFIG);
      for (const d of ['packs', 'versions', 'tmp']) assert.ok(existsSync(join(root, d)), d);
      assert.deepEqual(store.config, CONFIG);
      assert.equal(store.url, pathToFileURL(root).href);
      const config = readFileSync(join(root, 'config'));
      assert.equal(config.subarray(0, 8).toString('hex'), '454c540104000100'); // a kind-4 record with digest
      assert.deepEqual(JSON.parse(decodeObject(config, 'config').plain.toString()), CONFIG);
      const again = await FileStore.open(root);
      assert.deepEqual(again.config, CONFIG);
      await store.close();
      await again.close();
    });

    it('create on an existing store keeps its config', async () => {
      const root = join(tempDir(), 'store');
      await FileStore.create(root, CONFIG);
      const second = await FileStore.create(root, { ...CONFIG, created: '2030-01-01T00:00:00.000Z' });
      assert.equal(second.config.created, CONFIG.created);
    });

    it('open of a missing store is E_NOT_FOUND', async () => {
      await expectElton(FileStore.open(join(tempDir(), 'nope')), 'E_NOT_FOUND');
    });

    it('open of a store whose config says format 99 is E_FORMAT', async () => {
      const root = tempDir();
      writeFileSync(join(root, 'config'), encodeStoreConfig({ ...CONFIG, format: 99 }));
      const err = await expectElton(FileStore.open(root), 'E_FORMAT');
      assert.match(err.message, /99/);
      assert.equal(err.exitCode, 9);
    });

    it('open refuses an unknown id scheme or chunker with E_FORMAT', async () => {
      const root = tempDir();
      writeFileSync(join(root, 'config'), encodeStoreConfig({ ...CONFIG, idScheme: 'hmac-sha256' as 'sha256' }));
      await expectElton(FileStore.open(root), 'E_FORMAT');
      writeFileSync(join(root, 'config'), encodeStoreConfig({ ...CONFIG, chunker: { ...DEFAULT_CHUNKER, avg: 1000 } }));
      await expectElton(FileStore.open(root), 'E_FORMAT');
    });

    it('open of a damaged config is E_CORRUPT', async () => {
      const root = join(tempDir(), 'store');
      await FileStore.create(root, CONFIG);
      const path = join(root, 'config');
      const data = readFileSync(path);
      data[data.length - 3] ^= 0x01;
      chmodSync(path, 0o644);
      writeFileSync(path, data);
      await expectElton(FileStore.open(root), 'E_CORRUPT');
    });

    it('decodeStoreConfig round-trips encodeStoreConfig', () => {
      assert.deepEqual(decodeStoreConfig(encodeStoreConfig(CONFIG), 'here'), CONFIG);
      assert.deepEqual(decodeStoreConfig(encodeRecord(Kind.config, Buffer.from(JSON.stringify(CONFIG))), 'here'), CONFIG);
    });
  });

  describe('objects', () => {
    it('writer() + finish() stores objects that readObjects returns byte for byte', async () => {
      const root = join(tempDir(), 'store');
      const store = await FileStore.create(root, CONFIG);
      const objs = objects(30, 1);
      const w = store.writer();
      for (const o of objs) await w.add(o.id, o.data);
      await w.finish();
      const got = await readAll(store, objs.map((o) => o.id));
      assert.equal(got.size, objs.length);
      for (const o of objs) {
        assert.ok(got.get(o.id)!.equals(o.data), o.id);
        assert.ok(decodeObject(got.get(o.id)!, o.id, o.id).plain.equals(o.plain));
      }
      // A fresh instance reads the same through the on-disk index.
      const reopened = await FileStore.open(root);
      const again = await readAll(reopened, [...objs].reverse().map((o) => o.id));
      for (const o of objs) assert.ok(again.get(o.id)!.equals(o.data));
      await store.close();
      await reopened.close();
    });

    it('publishes one .tar and one valid .idx per pack, and leaves tmp/ empty', async () => {
      const root = join(tempDir(), 'store');
      const store = await FileStore.create(root, CONFIG);
      const objs = objects(5, 2);
      const w = store.writer();
      for (const o of objs) await w.add(o.id, o.data);
      await w.finish();
      const names = readdirSync(join(root, 'packs')).sort();
      assert.equal(names.length, 2);
      const [idx, tar] = names;
      assert.match(tar, /^[0-9a-f]{64}\.tar$/);
      assert.equal(idx, tar.replace(/\.tar$/, '.idx'));
      assert.deepEqual(decodeIndex(readFileSync(join(root, 'packs', idx)), idx).map((e) => e.id).sort(), objs.map((o) => o.id).sort());
      assert.deepEqual(readdirSync(join(root, 'tmp')), []);
      await store.close();
    });

    it('readObjects delivers each id once, even when asked twice', async () => {
      const store = await FileStore.create(join(tempDir(), 'store'), CONFIG);
      const [o] = objects(1, 3);
      const w = store.writer();
      await w.add(o.id, o.data);
      await w.finish();
      const got = await readAll(store, [o.id, o.id]);
      assert.equal(got.size, 1);
      await store.close();
    });

    it('missing() lists exactly the absent ids, before and after a write', async () => {
      const store = await FileStore.create(join(tempDir(), 'store'), CONFIG);
      const objs = objects(6, 4);
      const ids = objs.map((o) => o.id);
      assert.deepEqual(await store.missing(ids), new Set(ids)); // loads the (empty) index
      const w = store.writer();
      for (const o of objs.slice(0, 4)) await w.add(o.id, o.data);
      await w.finish();
      assert.deepEqual(await store.missing(ids), new Set(ids.slice(4)));
      assert.deepEqual(new Set(await store.knownIds()), new Set(ids.slice(0, 4)));
      await store.close();
    });

    it('objects are not visible before finish(), and abort() leaves nothing behind', async () => {
      const root = join(tempDir(), 'store');
      const store = await FileStore.create(root, CONFIG);
      const [o] = objects(1, 5);
      const w = store.writer();
      await w.add(o.id, o.data);
      assert.deepEqual(await (await FileStore.open(root)).missing([o.id]), new Set([o.id]));
      await w.abort();
      assert.deepEqual(readdirSync(join(root, 'packs')), []);
      assert.deepEqual(readdirSync(join(root, 'tmp')), []);
    });

    it('readObjects of an absent id is E_NOT_FOUND naming the object', async () => {
      const store = await FileStore.create(join(tempDir(), 'store'), CONFIG);
      const absent = 'c'.repeat(64);
      const err = await expectElton(store.readObjects([absent], () => assert.fail('no object expected')), 'E_NOT_FOUND');
      assert.equal(err.details?.object, absent);
      assert.match(err.message, new RegExp(absent));
    });

    it('a damaged pack index is E_CORRUPT', async () => {
      const root = join(tempDir(), 'store');
      const store = await FileStore.create(root, CONFIG);
      const [o] = objects(1, 6);
      const w = store.writer();
      await w.add(o.id, o.data);
      await w.finish();
      const idx = readdirSync(join(root, 'packs')).find((n) => n.endsWith('.idx'))!;
      const data = readFileSync(join(root, 'packs', idx));
      data[20] ^= 0x01;
      writeFileSync(join(root, 'packs', idx), data);
      await expectElton((await FileStore.open(root)).missing([o.id]), 'E_CORRUPT');
    });
  });

  describe('versions', () => {
    it('createVersion is exclusive: a second create of the same tree@v returns false and keeps the first', async () => {
      const store = await FileStore.create(join(tempDir(), 'store'), CONFIG);
      assert.equal(await store.createVersion(record('data', 1)), true);
      assert.equal(await store.createVersion(record('data', 1, { message: 'other' })), false);
      assert.equal((await store.readVersion('data', 1)).message, 'v1');
    });

    it('readVersion returns the record as written', async () => {
      const store = await FileStore.create(join(tempDir(), 'store'), CONFIG);
      const rec = record('data', 1, { git: { commit: 'f'.repeat(40), branch: 'main' }, message: 'héllo "world"\n' });
      await store.createVersion(rec);
      assert.deepEqual(await store.readVersion('data', 1), rec);
    });

    it('listVersions sorts numerically; latestVersion is the highest, 0 for none', async () => {
      const store = await FileStore.create(join(tempDir(), 'store'), CONFIG);
      for (const v of [10, 2, 1]) assert.equal(await store.createVersion(record('data', v)), true);
      await store.createVersion(record('other', 1));
      assert.deepEqual(await store.listVersions('data'), [1, 2, 10]);
      assert.equal(await store.latestVersion('data'), 10);
      assert.deepEqual(await store.listVersions('absent'), []);
      assert.equal(await store.latestVersion('absent'), 0);
      assert.deepEqual(await store.listTrees(), ['data', 'other']);
    });

    it('listVersions ignores stray files (temp files, non-numbers)', async () => {
      const root = join(tempDir(), 'store');
      const store = await FileStore.create(root, CONFIG);
      await store.createVersion(record('data', 1));
      for (const junk of ['.1.123.abcd.tmp', '01', 'x', '0']) writeFileSync(join(root, 'versions', 'data', junk), '');
      assert.deepEqual(await store.listVersions('data'), [1]);
    });

    it('readVersion of a corrupted version file is E_CORRUPT', async () => {
      const root = join(tempDir(), 'store');
      const store = await FileStore.create(root, CONFIG);
      await store.createVersion(record('data', 1));
      const path = join(root, 'versions', 'data', '1');
      const data = readFileSync(path);
      data[data.length - 5] ^= 0x20;
      chmodSync(path, 0o644);
      writeFileSync(path, data);
      const err = await expectElton(store.readVersion('data', 1), 'E_CORRUPT');
      assert.match(err.message, /data@1/);
    });

    it('readVersion of a record moved to another name is E_CORRUPT', async () => {
      const root = join(tempDir(), 'store');
      const store = await FileStore.create(root, CONFIG);
      await store.createVersion(record('data', 1));
      copyFileSync(join(root, 'versions', 'data', '1'), join(root, 'versions', 'data', '2'));
      const err = await expectElton(store.readVersion('data', 2), 'E_CORRUPT');
      assert.match(err.message, /claims to be data@1/);
    });

    it('readVersion of an absent version is E_NOT_FOUND', async () => {
      const store = await FileStore.create(join(tempDir(), 'store'), CONFIG);
      await expectElton(store.readVersion('data', 1), 'E_NOT_FOUND');
    });

    it('10 parallel createVersion calls for the same tree@v: exactly one wins', async () => {
      for (let round = 0; round < 5; round++) {
        const root = join(tempDir(), 'store');
        const store = await FileStore.create(root, CONFIG);
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.createVersion(record('race', 1, { message: `writer ${i}` }))));
        assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
        const winner = results.indexOf(true);
        assert.equal((await store.readVersion('race', 1)).message, `writer ${winner}`);
        assert.deepEqual(readdirSync(join(root, 'versions', 'race')), ['1'], 'no temp files left behind');
      }
    });

    it('parallel creators from separate store instances: exactly one wins', async () => {
      const root = join(tempDir(), 'store');
      await FileStore.create(root, CONFIG);
      const stores = await Promise.all(Array.from({ length: 10 }, () => FileStore.open(root)));
      const results = await Promise.all(stores.map((s, i) => s.createVersion(record('race', 7, { message: `s${i}` }))));
      assert.equal(results.filter(Boolean).length, 1);
    });
  });
});

describe('file store temp packs', () => {
  it('a writer removes temp packs abandoned by dead writers on this host, and keeps live and foreign ones', async () => {
    const root = tempDir();
    const store = await FileStore.create(root, defaultStoreConfig());
    const tmp = join(root, 'tmp');
    const dead = `${hostname()}.999999999.1.abcdef.tar`;
    const live = `${hostname()}.${process.pid}.1.abcdef.tar`;
    const foreign = `some-other-host.999999999.1.abcdef.tar`;
    for (const name of [dead, live, foreign]) writeFileSync(join(tmp, name), 'partial');
    const w = store.writer();
    await w.add('a'.repeat(64), Buffer.from('x'));
    await w.finish();
    const left = readdirSync(tmp).sort();
    assert.deepEqual(left, [foreign, live].sort());
    await store.close();
  });
});
