// Encrypted stores at buckets and masters, and backups of them by hosts that hold no key (docs/encryption.md).

import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertSameTree, eltonAsync, ok, snapshotTree } from '../e2e/util.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { startKmsServer } from '../support/kms-server.js';
import { startMasterProcess } from './master-util.js';
import { S3Store } from '../../src/remote/s3-store.js';

const SECRET = 'Payroll for the Lisbon office: 77 people';

/** Every byte under a directory, for looking for plaintext in it. */
function bytesUnder(dir: string): Buffer {
  const all: Buffer[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name)); else all.push(readFileSync(join(d, e.name)), Buffer.from(e.name));
    }
  };
  walk(dir);
  return Buffer.concat(all);
}

/** A slice of an incompressible file: a plain store keeps it verbatim (compression cannot hide it), as the first test checks. */
const RANDOM = pseudoRandom(400000, 5);
const RANDOM_NEEDLE = RANDOM.subarray(200000, 200048);
const NEEDLES = ['Payroll for the Lisbon', 'payroll.csv', 'lisbon-notes', 'january payroll'];
const assertNoPlaintext = (where: string, bytes: Buffer) => {
  for (const needle of NEEDLES) assert.ok(!bytes.includes(Buffer.from(needle)), `"${needle}" is readable in ${where}`);
  assert.ok(!bytes.includes(RANDOM_NEEDLE), `file contents are readable in ${where}`);
};

describe('integration: encrypted buckets and masters, keyless backups', function () {
  this.timeout(180000);
  let s3: S3Server;
  let keyFile: string;
  const s3url = (prefix: string) => `s3://elton-test/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}`;
  /** A host with the key file, and one with no key at all (no KMS either). */
  const withKey = () => ({ ...s3.env(), ELTON_KEYFILE: keyFile, ELTON_PASSPHRASE: undefined, ELTON_KMS: 'off' });
  const keyless = () => ({ ...s3.env(), ELTON_KEYFILE: undefined, ELTON_PASSPHRASE: undefined, ELTON_KMS: 'off' });
  const files = () => ({
    'payroll.csv': `${SECRET}\n`.repeat(400), 'docs/lisbon-notes.md': '# notes\n', 'blobs/a.bin': RANDOM,
    ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`many/f${i}.txt`, `file ${i} ${'y'.repeat(i * 50)}\n`])),
  });

  const savedEnv: Record<string, string | undefined> = {};
  before(async () => {
    s3 = await startS3Server();
    await s3.createBucket('elton-test');
    // This process reaches the bucket too (to play its hostile owner).
    for (const [k, v] of Object.entries(s3.env())) {
      savedEnv[k] = process.env[k];
      if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
    keyFile = join(tempDir(), 'repo.key');
    ok(await eltonAsync(tempDir(), ['key', 'generate', keyFile]));
  });
  after(async () => {
    for (const [k, v] of Object.entries(savedEnv)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
    await s3?.close();
  });

  it('a bucket: init --encrypt, commit, clone elsewhere with the key; no plaintext in the bucket; a wrong key is exit 12', async () => {
    const ws = join(tempDir(), 'payroll');
    writeTree(ws, files());
    const url = s3url('enc1');
    const init = ok(await eltonAsync(ws, ['init', '--encrypt', '--key-source', `keyfile:${keyFile}`, '--remote', url, '--tree', 'payroll', '--json'], withKey())).json;
    assert.deepEqual(init.encryption.map((w: { source: string }) => w.source), ['keyfile']);
    ok(await eltonAsync(ws, ['commit', '-m', 'january payroll'], withKey()));
    writeTree(ws, { 'docs/lisbon-notes.md': '# notes, revised\n' });
    ok(await eltonAsync(ws, ['commit', '-m', 'february'], withKey()));
    assertNoPlaintext('the bucket', bytesUnder(s3.dir));
    // The check can fail: the same files in a plain prefix leave their contents readable.
    const plainWs = join(tempDir(), 'plain-control');
    writeTree(plainWs, files());
    const plainDir = join(tempDir(), 'plain-store');
    ok(await eltonAsync(plainWs, ['init', '--remote', plainDir, '--tree', 'control'], withKey()));
    ok(await eltonAsync(plainWs, ['commit', '-m', 'january payroll'], withKey()));
    assert.throws(() => assertNoPlaintext('a plain store', bytesUnder(plainDir)), /readable/);

    // Another host, another cache: the keyring comes from the bucket, and opens with the key file.
    const dst = join(tempDir(), 'restore');
    ok(await eltonAsync(tempDir(), ['clone', url, 'payroll@2', dst], withKey()));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
    const log = ok(await eltonAsync(dst, ['log', '--json'], withKey())).json;
    assert.deepEqual(log.versions.map((v: { message: string }) => v.message), ['february', 'january payroll']);

    // No key: exit 12, with a hint; a passphrase added at the bucket opens it from a fresh host.
    const none = await eltonAsync(tempDir(), ['clone', url, 'payroll@1', join(tempDir(), 'nokey'), '--json'], keyless());
    assert.match(assertJsonError(none, 'E_AUTH', 12).hint ?? '', /key file/);
    const firstRing = await S3Store.connect(url).then(async (b) => { try { return (await b.readKeyringBytes())!.data; } finally { await b.close(); } });
    ok(await eltonAsync(ws, ['key', 'add', 'passphrase'], { ...withKey(), ELTON_NEW_PASSPHRASE: 'lisbon has hills' }));
    ok(await eltonAsync(dst, ['log'], withKey())); // its cache now holds the newer keyring
    const listed = ok(await eltonAsync(tempDir(), ['key', 'list', '--store', url, '--json'], keyless())).json;
    assert.deepEqual(listed.wrappings.map((w: { source: string }) => w.source).sort(), ['keyfile', 'passphrase']);
    const viaPass = join(tempDir(), 'viapass');
    ok(await eltonAsync(tempDir(), ['clone', url, 'payroll@1', viaPass], { ...keyless(), ELTON_PASSPHRASE: 'lisbon has hills' }));
    assert.equal(readFileSync(join(viaPass, 'payroll.csv'), 'utf8'), `${SECRET}\n`.repeat(400));

    // Whoever controls the bucket cannot roll its keyring back, or swap in another key's, for a
    // host that has seen the current one (its cache pins it); nor change a word of it unnoticed.
    const bucket = await S3Store.connect(url);
    try {
      const current = (await bucket.readKeyringBytes())!;
      const put = async (doc: unknown) => bucket.writeKeyringBytes(Buffer.from(JSON.stringify(doc)), (await bucket.readKeyringBytes())!.tag);
      await put(JSON.parse(firstRing.toString()));
      assert.match(assertJsonError(await eltonAsync(dst, ['log', '--json'], withKey()), 'E_CORRUPT', 7).message, /older than the one this host has verified/);
      // Changed without the key (its MAC no longer holds): this host goes on with its verified copy,
      // a host that never saw the keyring refuses it, and the next key command from this host repairs it.
      await put({ ...JSON.parse(current.data.toString()), generation: 99 });
      ok(await eltonAsync(dst, ['log', '--json'], withKey()));
      const freshHost = { ...withKey(), ELTON_CACHE: tempDir('fresh-host-') };
      assert.match(assertJsonError(await eltonAsync(tempDir(), ['clone', url, 'payroll@1', join(tempDir(), 'c1'), '--json'], freshHost), 'E_CORRUPT', 7).message, /changed by someone without its key/);
      const extra = join(tempDir(), 'extra.key');
      ok(await eltonAsync(tempDir(), ['key', 'generate', extra]));
      ok(await eltonAsync(dst, ['key', 'add', `keyfile:${extra}`], withKey()));
      ok(await eltonAsync(tempDir(), ['clone', url, 'payroll@1', join(tempDir(), 'c2')], freshHost));
      const repaired = (await bucket.readKeyringBytes())!.data;
      assert.equal(JSON.parse(repaired.toString()).generation, 100, 'numbered past the bad one');

      const other = join(tempDir(), 'other-key');
      ok(await eltonAsync(tempDir(), ['key', 'generate', other]));
      const foreign = join(tempDir(), 'foreign');
      writeTree(foreign, { 'x.txt': 'x\n' });
      ok(await eltonAsync(foreign, ['init', '--encrypt', '--key-source', `keyfile:${other}`, '--remote', s3url('enc1-foreign')], { ...withKey(), ELTON_KEYFILE: other }));
      const foreignRing = (await (await S3Store.connect(s3url('enc1-foreign'))).readKeyringBytes())!.data;
      await put(JSON.parse(foreignRing.toString()));
      assert.match(assertJsonError(await eltonAsync(dst, ['log', '--json'], { ...withKey(), ELTON_KEYFILE: `${keyFile}:${other}` }), 'E_CORRUPT', 7).message, /for another key/);
      // Replacing it names the ETag read: a stale one is E_CONFLICT (If-Match), and so is creating one over it.
      const stale = (await bucket.readKeyringBytes())!.tag;
      await bucket.writeKeyringBytes(firstRing, stale);
      await assert.rejects(bucket.writeKeyringBytes(current.data, stale), (e: { code?: string }) => e.code === 'E_CONFLICT');
      await assert.rejects(bucket.writeKeyringBytes(current.data, null), (e: { code?: string }) => e.code === 'E_CONFLICT');
      await bucket.writeKeyringBytes(repaired, (await bucket.readKeyringBytes())!.tag);
      ok(await eltonAsync(dst, ['log', '--json'], withKey()));
    } finally {
      await bucket.close();
    }
  });

  it('keyless backups: bucket to directory to bucket, only what is missing, verified by framing; the copies open with the key', async () => {
    const ws = join(tempDir(), 'books');
    writeTree(ws, files());
    const src = s3url('enc2');
    ok(await eltonAsync(ws, ['init', '--encrypt', '--key-source', `keyfile:${keyFile}`, '--remote', src, '--tree', 'books'], withKey()));
    ok(await eltonAsync(ws, ['commit', '-m', 'january payroll'], withKey()));

    const dir = join(tempDir(), 'vault');
    const first = ok(await eltonAsync(tempDir(), ['backup', '--from', src, '--to', dir, '--json'], keyless())).json;
    assert.deepEqual(first.copied, ['books@1']);
    assert.ok(first.objects > 40, JSON.stringify(first));
    assertNoPlaintext('the backup directory', bytesUnder(dir));
    const again = ok(await eltonAsync(tempDir(), ['backup', '--from', src, '--to', dir, '--json'], keyless())).json;
    assert.deepEqual([again.copied, again.objects, again.upToDate], [[], 0, 1]);

    // One changed file: the next run copies its objects and the changed trees, not the rest.
    writeTree(ws, { 'many/f3.txt': 'changed\n' });
    ok(await eltonAsync(ws, ['commit', '-m', 'one change'], withKey()));
    const third = ok(await eltonAsync(tempDir(), ['backup', '--from', src, '--to', dir, '--json'], keyless())).json;
    assert.deepEqual(third.copied, ['books@2']);
    assert.ok(third.objects >= 2 && third.objects <= 4, `copied ${third.objects} objects for one changed file`);

    // On to another bucket, from the directory, still without the key.
    const far = s3url('enc2-far');
    const hop = ok(await eltonAsync(tempDir(), ['backup', '--from', dir, '--to', far, '--json'], keyless())).json;
    assert.deepEqual(hop.copied, ['books@1', 'books@2']);
    for (const [where, from] of [['the directory', dir], ['the far bucket', far]]) {
      const out = join(tempDir(), 'out');
      ok(await eltonAsync(tempDir(), ['clone', from, 'books@2', out], withKey()), `clone from ${where}`);
      assertSameTree(snapshotTree(out), snapshotTree(ws), { label: where });
      assert.equal(ok(await eltonAsync(out, ['log', '--json'], withKey())).json.versions[1].message, 'january payroll');
    }
    // The copies keep the source's keyring: no key, no read.
    assertJsonError(await eltonAsync(tempDir(), ['clone', far, 'books@1', join(tempDir(), 'x'), '--json'], keyless()), 'E_AUTH', 12);

    // A damaged object at the source is not copied, nor is any version.
    const packs = join(dir, 'packs');
    const pack = readdirSync(packs).filter((f) => f.endsWith('.tar')).map((f) => join(packs, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
    const bytes = readFileSync(pack);
    bytes.write('NOPE', 512, 'latin1'); // the first entry's data starts after its 512-byte tar header
    writeFileSync(pack, bytes);
    const broken = await eltonAsync(tempDir(), ['backup', '--from', dir, '--to', join(tempDir(), 'vault2'), '--json'], keyless());
    assert.equal(broken.code, 7, broken.stdout + broken.stderr);
    const result = JSON.parse(broken.stdout);
    assert.deepEqual(result.copied, []);
    assert.match(result.problems[0].message, /not a sealed object/);
  });

  it('refuses to back up into a store with another key, and a plain store into an encrypted one', async () => {
    const mk = async (name: string, encrypt: boolean) => {
      const ws = join(tempDir(), name);
      writeTree(ws, { 'a.txt': `${name}\n` });
      const k = join(tempDir(), `${name}.key`);
      ok(await eltonAsync(tempDir(), ['key', 'generate', k]));
      ok(await eltonAsync(ws, ['init', ...(encrypt ? ['--encrypt', '--key-source', `keyfile:${k}`] : []), '--tree', name], { ELTON_KEYFILE: k }));
      ok(await eltonAsync(ws, ['commit', '-m', name], { ELTON_KEYFILE: k }));
      return ws;
    };
    const [one, two, plain] = [await mk('one', true), await mk('two', true), await mk('plain', false)];
    const target = join(tempDir(), 't');
    ok(await eltonAsync(tempDir(), ['backup', '--from', one, '--to', target], keyless()));
    assertJsonError(await eltonAsync(tempDir(), ['backup', '--from', two, '--to', target, '--json'], keyless()), 'E_CONFLICT', 5);
    assertJsonError(await eltonAsync(tempDir(), ['backup', '--from', plain, '--to', target, '--json'], keyless()), 'E_FORMAT', 9);
  });

  it('a write-only host commits, and reads nothing it did not write; readers with the key read its versions; removal stops it', async () => {
    const kms = await startKmsServer();
    try {
      kms.createKey('elton-writer-host1');
      // One AWS identity per host, for the bucket and KMS alike (the test KMS names callers by access key id).
      const kmsEnv = { ELTON_KMS_ENDPOINT: kms.url };
      const admin = join(tempDir(), 'admin');
      writeTree(admin, files());
      const url = s3url('enc-writers');
      ok(await eltonAsync(admin, ['init', '--encrypt', '--key-source', `keyfile:${keyFile}`, '--remote', url, '--tree', 'payroll'], withKey()));
      ok(await eltonAsync(admin, ['commit', '-m', 'january payroll'], withKey()));
      // A reader whose cache holds the keyring from before the writer existed.
      const warm = join(tempDir(), 'warm-reader');
      ok(await eltonAsync(tempDir(), ['clone', url, 'payroll@1', warm], withKey()));

      // The admin makes the host's credential, its key wrapped by KMS; making one needs the repository key.
      const cred = join(tempDir(), 'host1.writer');
      assertJsonError(await eltonAsync(tempDir(), ['key', 'writer', 'host1', '--out', cred, '--store', url, '--json'], keyless()), 'E_AUTH', 12);
      const made = ok(await eltonAsync(tempDir(), ['key', 'writer', 'host1', '--out', cred, '--store', url, '--kms', 'alias/elton-writer-host1', '--json'], { ...withKey(), ...kmsEnv, ELTON_KMS: 'off' })).json;
      assert.equal(made.writer.name, 'host1');
      assert.ok(!readFileSync(cred, 'utf8').includes('"key"'), 'the host key is wrapped by KMS, not in the file');
      assert.equal(statSync(cred).mode & 0o777, 0o600);

      // The host: its credential, and kms:Decrypt on its own KMS key; nothing else.
      const host = join(tempDir(), 'host1');
      writeTree(host, { 'etc/lisbon-notes.conf': `${SECRET}\n`.repeat(30), 'var/big.bin': pseudoRandom(300000, 8) });
      const writerEnv = { ...keyless(), ...kmsEnv, ELTON_KMS: undefined, ELTON_WRITER: cred };
      ok(await eltonAsync(host, ['init', '--remote', url, '--tree', 'host1'], writerEnv));
      const c1 = ok(await eltonAsync(host, ['commit', '-m', 'host1 nightly', '--json'], writerEnv)).json;
      assert.equal(c1.ref, 'host1@1');
      assertNoPlaintext('the bucket', bytesUnder(s3.dir));

      // It cannot read the repository's data, not even through a clone.
      const e = assertJsonError(await eltonAsync(tempDir(), ['clone', url, 'payroll@1', join(tempDir(), 'peek'), '--json'], writerEnv), 'E_AUTH', 12);
      assert.match(e.message, /write-only/);
      // A reader with the key reads what the host wrote, and sees who wrote it; so does one whose cache is older than the writer.
      const out = join(tempDir(), 'read-host1');
      ok(await eltonAsync(tempDir(), ['clone', url, 'host1@1', out], withKey()));
      assertSameTree(snapshotTree(out), snapshotTree(host));
      const logged = ok(await eltonAsync(out, ['log', '--json'], withKey())).json.versions[0];
      assert.deepEqual([logged.message, logged.writer], ['host1 nightly', 'host1']);
      assert.equal(ok(await eltonAsync(warm, ['cat', 'host1@1:etc/lisbon-notes.conf'], withKey())).stdout, `${SECRET}\n`.repeat(30));
      // It may commit only to its own trees.
      const elsewhere = join(tempDir(), 'elsewhere');
      writeTree(elsewhere, { 'a.txt': 'a\n' });
      assert.match(assertJsonError(await eltonAsync(elsewhere, ['init', '--remote', url, '--tree', 'payroll', '--json'], writerEnv), 'E_USAGE', 2).message, /only to host1/);
      // Its credential on a plain store is refused: it would write plaintext.
      const plainHost = join(tempDir(), 'plain-host');
      writeTree(plainHost, { 'a.txt': 'a\n' });
      assertJsonError(await eltonAsync(plainHost, ['init', '--remote', join(tempDir(), 'plain-target'), '--tree', 'host1', '--json'], writerEnv), 'E_USAGE', 2);

      // The next night: one changed file, and only its objects and trees go up.
      writeTree(host, { 'etc/lisbon-notes.conf': 'rotated\n' });
      const c2 = ok(await eltonAsync(host, ['commit', '-m', 'host1 nightly 2', '--json'], writerEnv)).json;
      assert.equal(c2.ref, 'host1@2');
      assert.ok(c2.transfer.bytesUp < 20000, `the second commit sent ${c2.transfer.bytesUp} bytes`);

      // Removed from the keyring: its credential stops working at once (its cached keyring still
      // lists it), and what it wrote no longer opens.
      ok(await eltonAsync(tempDir(), ['key', 'remove', made.writer.id, '--store', url], withKey()));
      writeTree(host, { 'etc/new.conf': 'x\n' });
      assert.match(assertJsonError(await eltonAsync(host, ['commit', '-m', 'after removal', '--json'], writerEnv), 'E_AUTH', 12).message, /no longer in this repository's keyring/);
      assertJsonError(await eltonAsync(tempDir(), ['clone', url, 'host1@2', join(tempDir(), 'gone'), '--json'], withKey()), 'E_CORRUPT', 7);
      assertJsonError(await eltonAsync(warm, ['cat', 'host1@2:etc/lisbon-notes.conf', '--json'], withKey()), 'E_CORRUPT', 7);

      // Without kms:Decrypt on its KMS key, a host's credential opens nothing.
      const cred2 = join(tempDir(), 'host2.writer');
      ok(await eltonAsync(tempDir(), ['key', 'writer', 'host2', '--out', cred2, '--store', url, '--kms', 'alias/elton-writer-host1'], { ...withKey(), ...kmsEnv, ELTON_KMS: 'off' }));
      const host2 = join(tempDir(), 'host2');
      writeTree(host2, { 'a.txt': 'a\n' });
      ok(await eltonAsync(host2, ['init', '--remote', url, '--tree', 'host2'], { ...writerEnv, ELTON_WRITER: cred2 }));
      kms.deny(s3.credentials.accessKeyId, 'Decrypt');
      assert.match(assertJsonError(await eltonAsync(host2, ['commit', '-m', 'x', '--json'], { ...writerEnv, ELTON_WRITER: cred2 }), 'E_AUTH', 12).message, /Decrypt/);
    } finally {
      await kms.close();
    }
  });

  it('masters started with --encrypted: commits and clones through them with the key; they never hold it, nor plaintext; replication and keyless backups copy them', async () => {
    const saved = process.env.ELTON_REPLICATE_RETRY_MS;
    process.env.ELTON_REPLICATE_RETRY_MS = '100';
    const replica = await startMasterProcess(['--encrypted']);
    const primary = await startMasterProcess(['--encrypted', '--replicate-to', replica.url]);
    try {
      const ws = join(tempDir(), 'ledger');
      writeTree(ws, files());
      ok(await eltonAsync(ws, ['init', '--encrypt', '--key-source', `keyfile:${keyFile}`, '--remote', primary.url, '--tree', 'ledger'], withKey()));
      ok(await eltonAsync(ws, ['commit', '-m', 'january payroll'], withKey()));
      writeTree(ws, { 'many/f7.txt': 'seven\n' });
      ok(await eltonAsync(ws, ['commit', '-m', 'february'], withKey()));
      assertNoPlaintext('the master\'s data directory', bytesUnder(primary.data));

      // A clone on another host opens the keyring the master keeps; a commit from it is @3.
      const other = join(tempDir(), 'other');
      ok(await eltonAsync(tempDir(), ['clone', primary.url, 'ledger@2', other], withKey()));
      assertSameTree(snapshotTree(other), snapshotTree(ws));
      writeTree(other, { 'docs/lisbon-notes.md': '# notes from the other host\n' });
      const c3 = ok(await eltonAsync(other, ['commit', '-m', 'march', '--json'], withKey())).json;
      assert.equal(c3.ref, 'ledger@3');
      assert.ok(c3.transfer.bytesUp < 20000, `one changed file sent ${c3.transfer.bytesUp} bytes`);
      assertJsonError(await eltonAsync(tempDir(), ['clone', primary.url, 'ledger@1', join(tempDir(), 'nokey'), '--json'], keyless()), 'E_AUTH', 12);
      // A second --encrypt on a master that holds a repository is refused.
      const again = join(tempDir(), 'again');
      writeTree(again, { 'a.txt': 'a\n' });
      assertJsonError(await eltonAsync(again, ['init', '--encrypt', '--key-source', `keyfile:${keyFile}`, '--remote', primary.url, '--json'], withKey()), 'E_EXISTS', 10);

      // Replication reaches the other master without any key.
      const deadline = Date.now() + 30000;
      for (;;) {
        const s = ok(await eltonAsync(tempDir(), ['master', 'status', primary.url, '--json'])).json;
        if (s.replication.copied === 3 && s.replication.queue === 0) break;
        if (Date.now() > deadline) throw new Error(`replication did not finish: ${JSON.stringify(s.replication)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assertNoPlaintext('the replica\'s data directory', bytesUnder(replica.data));
      // A key command on the primary reaches the replica too, with no version to carry it.
      ok(await eltonAsync(ws, ['key', 'add', 'passphrase'], { ...withKey(), ELTON_NEW_PASSPHRASE: 'replicated passphrase' }));
      const primaryRing = () => readFileSync(join(primary.data, 'store', 'keyring'));
      const replicaRing = () => readFileSync(join(replica.data, 'store', 'keyring'));
      for (const until = Date.now() + 30000; !replicaRing().equals(primaryRing());) {
        if (Date.now() > until) throw new Error('the keyring change did not reach the replica');
        await new Promise((r) => setTimeout(r, 100));
      }

      // A keyless backup from the replica to a bucket; the copy opens with the key.
      const bucket = s3url('enc-from-master');
      const b = ok(await eltonAsync(tempDir(), ['backup', '--from', replica.url, '--to', bucket, '--json'], keyless())).json;
      assert.deepEqual(b.copied, ['ledger@1', 'ledger@2', 'ledger@3']);
      const out = join(tempDir(), 'from-bucket');
      ok(await eltonAsync(tempDir(), ['clone', bucket, 'ledger@3', out], withKey()));
      assertSameTree(snapshotTree(out), snapshotTree(other));
      assert.equal(ok(await eltonAsync(out, ['log', '--json'], withKey())).json.versions[0].message, 'march');
    } finally {
      if (saved === undefined) delete process.env.ELTON_REPLICATE_RETRY_MS; else process.env.ELTON_REPLICATE_RETRY_MS = saved;
      await primary.stop();
      await replica.stop();
    }
  });
});
