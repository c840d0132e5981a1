// Encrypted stores through the CLI (docs/encryption.md): init --encrypt with each key source,
// commit and checkout, what the storage sees, wrong keys, tampering, keyed ids, key commands.
// KMS is a local endpoint speaking its JSON protocol; the SDK is pointed at it.

import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertNoStack, assertSameTree, eltonAsync, ok, snapshotTree } from './util.js';
import { startKmsServer, type KmsServer } from '../support/kms-server.js';
import { decodeVersion, encodeVersion } from '../../src/version.js';

const SECRET = 'The quarterly numbers nobody may read: 4242 widgets';

describe('e2e: encrypted stores', function () {
  this.timeout(120000);
  let kms: KmsServer;
  before(async () => { kms = await startKmsServer(); });
  after(async () => { await kms.close(); });
  const awsEnv = (akid = 'AKIDUSER') => ({
    ELTON_KMS_ENDPOINT: kms.url, AWS_ACCESS_KEY_ID: akid, AWS_SECRET_ACCESS_KEY: 'x', AWS_REGION: 'us-east-1', AWS_PROFILE: undefined, AWS_SESSION_TOKEN: undefined,
  });
  const files = () => ({ 'report.txt': `${SECRET}\n`.repeat(50), 'data/blob.bin': pseudoRandom(300000, 3), 'data/notes.md': '# notes\n' });
  /** Every byte the store keeps on disk, for looking for plaintext in it. */
  const storeBytes = (ws: string) => {
    const dir = join(ws, '.elton', 'store');
    const all: Buffer[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name)); else all.push(readFileSync(join(d, e.name)));
      }
    };
    walk(dir);
    return Buffer.concat(all);
  };

  it('a passphrase: the store holds no plaintext, a clone with the passphrase is identical, a wrong one is exit 12 with a hint', async () => {
    const ws = join(tempDir(), 'secret');
    writeTree(ws, files());
    const env = { ELTON_NEW_PASSPHRASE: 'correct horse battery staple', ELTON_PASSPHRASE: undefined };
    const init = ok(await eltonAsync(ws, ['init', '--encrypt', '--json'], env)).json;
    assert.deepEqual(init.encryption.map((w: { source: string }) => w.source), ['passphrase']);
    const open = { ELTON_PASSPHRASE: 'correct horse battery staple' };
    ok(await eltonAsync(ws, ['commit', '-m', 'secret report'], open));
    const stored = storeBytes(ws);
    for (const needle of ['quarterly numbers', 'report.txt', 'notes.md', 'secret report']) assert.ok(!stored.includes(Buffer.from(needle)), `"${needle}" is readable in the store`);

    const dst = join(tempDir(), 'copy');
    ok(await eltonAsync(tempDir(), ['clone', ws, 'secret@1', dst], open));
    assertSameTree(snapshotTree(dst), snapshotTree(ws));
    const log = ok(await eltonAsync(ws, ['log', '--json'], open)).json;
    assert.equal(log.versions[0].message, 'secret report');
    const cat = ok(await eltonAsync(ws, ['cat', 'secret@1:data/notes.md'], open));
    assert.equal(cat.stdout, '# notes\n');

    const wrong = await eltonAsync(ws, ['log', '--json'], { ELTON_PASSPHRASE: 'wrong horse' });
    const e = assertJsonError(wrong, 'E_AUTH', 12);
    assert.match(e.message, /the passphrase does not open/);
    assert.match(e.hint ?? '', /a passphrase/);
    const text = await eltonAsync(ws, ['status'], { ELTON_PASSPHRASE: 'wrong horse' });
    assert.equal(text.code, 12);
    assertNoStack(text);
    assert.ok(!text.stdout.includes('quarterly'));
    assertJsonError(await eltonAsync(ws, ['log', '--json'], { ELTON_PASSPHRASE: undefined }), 'E_AUTH', 12);
  });

  it('a key file and KMS: either opens it; key list shows no secret; add, remove and rotate work; KMS can be retired', async () => {
    const { keyId: first } = kms.createKey('elton-e2e');
    const { keyId: second } = kms.createKey();
    const keyFile = join(tempDir(), 'repo.key');
    ok(await eltonAsync(tempDir(), ['key', 'generate', keyFile]));
    assert.equal(readFileSync(keyFile, 'utf8').trim().length, 44);
    assertJsonError(await eltonAsync(tempDir(), ['key', 'generate', keyFile, '--json']), 'E_EXISTS', 10);

    const ws = join(tempDir(), 'kms');
    writeTree(ws, files());
    ok(await eltonAsync(ws, ['init', '--encrypt', '--key-source', 'kms:alias/elton-e2e', '--key-source', `keyfile:${keyFile}`], awsEnv()));
    ok(await eltonAsync(ws, ['commit', '-m', 'one'], awsEnv()));
    // The key file alone, with KMS off; KMS alone.
    const dst1 = join(tempDir(), 'by-file');
    ok(await eltonAsync(tempDir(), ['clone', ws, 'kms@1', dst1], { ELTON_KEYFILE: keyFile, ELTON_KMS: 'off' }));
    assertSameTree(snapshotTree(dst1), snapshotTree(ws));
    const dst2 = join(tempDir(), 'by-kms');
    ok(await eltonAsync(tempDir(), ['clone', ws, 'kms@1', dst2], awsEnv()));
    assertSameTree(snapshotTree(dst2), snapshotTree(ws));
    // A caller whose IAM denies Decrypt cannot open it.
    kms.deny('AKIDNODECRYPT', 'Decrypt');
    const denied = assertJsonError(await eltonAsync(ws, ['log', '--json'], awsEnv('AKIDNODECRYPT')), 'E_AUTH', 12);
    assert.match(denied.message, /kms:Decrypt/);

    const listed = ok(await eltonAsync(ws, ['key', 'list', '--json'])).json;
    assert.deepEqual(listed.wrappings.map((w: { source: string }) => w.source), ['kms', 'keyfile']);
    const keyring = readFileSync(join(ws, '.elton', 'store', 'keyring'), 'utf8');
    for (const w of JSON.parse(keyring).wrappings) assert.ok(!JSON.stringify(listed).includes(w.wrapped), 'no wrapped key in the listing');
    assert.ok(!JSON.stringify(listed).includes(readFileSync(keyFile, 'utf8').trim()));

    const added = ok(await eltonAsync(ws, ['key', 'add', 'passphrase', '--json'], { ELTON_KEYFILE: keyFile, ELTON_KMS: 'off', ELTON_NEW_PASSPHRASE: 'another long passphrase' })).json;
    assert.equal(added.wrappings.length, 3);
    ok(await eltonAsync(ws, ['log'], { ELTON_PASSPHRASE: 'another long passphrase', ELTON_KMS: 'off' }));

    // Rotate the KMS wrapping to another key, then retire the first key: it still opens through KMS.
    const kmsId = listed.wrappings[0].id;
    const rotated = ok(await eltonAsync(ws, ['key', 'rotate', kmsId, '--to', second, '--json'], awsEnv())).json;
    assert.ok(rotated.wrappings.some((w: { detail: string }) => w.detail.endsWith(second)));
    kms.disable(first);
    ok(await eltonAsync(ws, ['log'], awsEnv()));

    // Remove the key file's wrapping: the file no longer opens it; the last wrapping is never removed.
    const fileId = listed.wrappings[1].id;
    ok(await eltonAsync(ws, ['key', 'remove', fileId], awsEnv()));
    assertJsonError(await eltonAsync(ws, ['log', '--json'], { ELTON_KEYFILE: keyFile, ELTON_KMS: 'off' }), 'E_AUTH', 12);
    const now = ok(await eltonAsync(ws, ['key', 'list', '--json'])).json;
    ok(await eltonAsync(ws, ['key', 'remove', now.wrappings.find((w: { source: string }) => w.source === 'passphrase').id], awsEnv()));
    const last = ok(await eltonAsync(ws, ['key', 'list', '--json'])).json.wrappings[0].id;
    assertJsonError(await eltonAsync(ws, ['key', 'remove', last, '--json'], awsEnv()), 'E_USAGE', 2);
  });

  it('detects tampering with any stored object; ids differ between two stores of the same files', async () => {
    const env = { ELTON_NEW_PASSPHRASE: 'a passphrase for both', ELTON_PASSPHRASE: 'a passphrase for both' };
    const roots: string[] = [];
    const stores: string[] = [];
    for (const name of ['one', 'two']) {
      const ws = join(tempDir(), name);
      stores.push(ws);
      writeTree(ws, files());
      ok(await eltonAsync(ws, ['init', '--encrypt', '--tree', 'same'], env));
      ok(await eltonAsync(ws, ['commit', '-m', 'same files'], env));
      roots.push(ok(await eltonAsync(ws, ['log', '--json'], env)).json.versions[0].root);
    }
    const plain = join(tempDir(), 'plain');
    writeTree(plain, files());
    ok(await eltonAsync(plain, ['init', '--tree', 'same']));
    ok(await eltonAsync(plain, ['commit', '-m', 'same files']));
    roots.push(ok(await eltonAsync(plain, ['log', '--json'])).json.versions[0].root);
    assert.equal(new Set(roots).size, 3, `roots ${roots.join(' ')}`);

    // One flipped byte in the middle of the data pack: the checkout fails verification, and says so.
    const ws = stores[0];
    const packs = join(ws, '.elton', 'store', 'packs');
    const pack = readdirSync(packs).filter((f) => f.endsWith('.tar')).map((f) => join(packs, f)).sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0];
    const bytes = readFileSync(pack);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    writeFileSync(pack, bytes);
    const r = await eltonAsync(tempDir(), ['clone', ws, 'same@1', join(tempDir(), 'bad'), '--json'], env);
    const e = assertJsonError(r, 'E_CORRUPT', 7);
    assert.match(e.message, /does not authenticate/);

    // A version record and the keyring are protected too.
    const other = stores[1];
    const record = join(other, '.elton', 'store', 'versions', 'same', '1');
    const rec = readFileSync(record);
    const stored = decodeVersion(Buffer.from(rec), 'same', 1);
    rec[rec.length - 20] ^= 0x01;
    writeFileSync(record, rec);
    assertJsonError(await eltonAsync(other, ['log', '--json'], env), 'E_CORRUPT', 7);
    // A well-formed record whose public fields were changed (its hash made anew) does not open.
    assert.ok(stored.sealed && stored.message === '' && stored.author === '', 'the record\'s private fields are sealed');
    writeFileSync(record, encodeVersion({ ...stored, time: new Date(0).toISOString() }));
    assert.match(assertJsonError(await eltonAsync(other, ['log', '--json'], env), 'E_CORRUPT', 7).message, /version record same@1: it does not authenticate/);
    const keyringPath = join(other, '.elton', 'store', 'keyring');
    const keyring = JSON.parse(readFileSync(keyringPath, 'utf8'));
    const wrapped = Buffer.from(keyring.wrappings[0].wrapped, 'base64');
    wrapped[20] ^= 0x01;
    keyring.wrappings[0].wrapped = wrapped.toString('base64');
    writeFileSync(keyringPath, JSON.stringify(keyring));
    // This host has verified the keyring before: any other at the same generation is refused.
    assert.match(assertJsonError(await eltonAsync(other, ['status', '--json'], env), 'E_CORRUPT', 7).message, /not the one this host has verified/);
    // A host that never saw it cannot open the damaged wrapping.
    assertJsonError(await eltonAsync(other, ['status', '--json'], { ...env, ELTON_CACHE: tempDir('fresh-cache-') }), 'E_AUTH', 12);
  });

  it('refuses a key source without --encrypt, and never waits for a passphrase without a terminal', async () => {
    const ws = join(tempDir(), 'plain');
    writeTree(ws, { 'a.txt': 'a\n' });
    assertJsonError(await eltonAsync(ws, ['init', '--key-source', 'passphrase', '--json']), 'E_USAGE', 2);
    const none = join(tempDir(), 'none');
    writeTree(none, { 'a.txt': 'a\n' });
    const n = await eltonAsync(none, ['init', '--encrypt', '--json'], { ELTON_NEW_PASSPHRASE: undefined, ELTON_PASSPHRASE: undefined });
    assert.match(assertJsonError(n, 'E_USAGE', 2).hint ?? '', /ELTON_NEW_PASSPHRASE/);
  });

  it('a workspace refuses its encrypted store replaced by a plain one, which would get its files in plaintext', async () => {
    const key = join(tempDir(), 'k.key');
    ok(await eltonAsync(tempDir(), ['key', 'generate', key]));
    const store = join(tempDir(), 'store');
    const ws = join(tempDir(), 'ws');
    writeTree(ws, files());
    ok(await eltonAsync(ws, ['init', '--encrypt', '--key-source', `keyfile:${key}`, '--remote', store], { ELTON_KEYFILE: key }));
    ok(await eltonAsync(ws, ['commit', '-m', 'one'], { ELTON_KEYFILE: key }));
    rmSync(store, { recursive: true, force: true });
    const other = join(tempDir(), 'other');
    writeTree(other, { 'a.txt': 'a\n' });
    ok(await eltonAsync(other, ['init', '--remote', store]));
    writeTree(ws, { 'new.txt': `${SECRET}\n` });
    assert.match(assertJsonError(await eltonAsync(ws, ['commit', '-m', 'two', '--json'], { ELTON_KEYFILE: key }), 'E_CORRUPT', 7).message, /not encrypted, and it was/);
  });
});
