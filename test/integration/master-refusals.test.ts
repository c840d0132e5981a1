// A real master refuses what it must: missing or weak tokens, untrusted TLS, malformed ids, bad packs; and a cut push resumes.

import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { elton, pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertNoStack, assertSameTree, assertTextError, eltonAsync, ok, snapshotTree, writeRandomTree } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import { startWanProxy } from '../support/wan-proxy.js';
import { encodeObject, Kind } from '../../src/object.js';
import { encodeIds, tarEntry, TAR_END } from '../../src/remote/wire.js';
import { tarHeader } from '../../src/store/pack.js';

const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';
const WO = 'wo-token-0123456789abcdef';

async function post(url: string, path: string, body: Buffer, token = RW, type = 'application/octet-stream') {
  const res = await fetch(`${url}${path}`, { method: 'POST', body: new Uint8Array(body), headers: { authorization: `Bearer ${token}`, 'content-type': type } });
  const data = Buffer.from(await res.arrayBuffer());
  return { status: res.status, data, json: () => JSON.parse(data.toString('utf8')) };
}

const chunk = (text: string | Buffer) => encodeObject(Kind.chunk, Buffer.from(text), { codec: 'brotli', quality: 2 });

describe('integration: master auth and TLS', function () {
  this.timeout(120000);
  let master: MasterProcess;
  let tokens: string;

  before(async () => {
    tokens = join(tempDir(), 'tokens');
    writeFileSync(tokens, `# test tokens\n${RW} read,write ci\n${RO} read reader\n${WO} write backup\n`);
    master = await startMasterProcess(['--token-file', tokens]);
  });
  after(async () => { await master?.stop(); });

  it('without a token, or with a wrong one, every command gets an auth error with a hint (exit 12)', () => {
    const ws = join(tempDir(), 'auth');
    writeTree(ws, { 'a.txt': 'a\n' });
    for (const env of [{ ELTON_TOKEN: '' }, { ELTON_TOKEN: 'not-a-valid-token-at-all' }]) {
      const r = elton(ws, ['init', '--remote', master.url, '--json'], env);
      const e = assertJsonError(r, 'E_AUTH', 12);
      assert.match(e.hint!, /ELTON_TOKEN/);
      assertTextError(elton(tempDir(), ['clone', master.url, 'auth@1', 'x'], env), 12, 'refused');
    }
    ok(elton(ws, ['init', '--remote', master.url], { ELTON_TOKEN: RW }));
    ok(elton(ws, ['commit', '-m', 'ok'], { ELTON_TOKEN: RW }));
    assertJsonError(elton(ws, ['log', '--json'], { ELTON_TOKEN: 'wrong-token-wrong-token' }), 'E_AUTH', 12);
  });

  it('a read token can fetch but not commit; the token comes from ELTON_TOKEN or the config and is never printed', () => {
    const dst = join(tempDir(), 'reader');
    ok(elton(tempDir(), ['clone', master.url, 'auth@1', dst], { ELTON_TOKEN: RO }));
    writeTree(dst, { 'b.txt': 'b\n' });
    const r = elton(dst, ['commit', '-m', 'no', '--json'], { ELTON_TOKEN: RO });
    const e = assertJsonError(r, 'E_AUTH', 12);
    assert.match(e.message, /write scope/);
    // The token in the workspace config is used when ELTON_TOKEN is unset.
    const cfgPath = join(dst, '.elton', 'config.json');
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), token: RW }));
    const env = { ELTON_TOKEN: '' };
    const c = ok(elton(dst, ['commit', '-m', 'yes', '--json'], env));
    assert.equal(c.json.version, 2);
    for (const args of [['log'], ['status'], ['commit', '-m', 'x'], ['ls', '@1']]) {
      const out = elton(dst, [...args, '--json'], env);
      assert.ok(!out.stdout.includes(RW) && !out.stderr.includes(RW), `token printed by ${args[0]}`);
    }
    assert.ok(!master.lines.join('\n').includes(RW), 'the master never logs a token');
    assert.ok(master.lines.some((l) => / ci POST \/v1\/packs /.test(l)), 'the log names the token by its name');
  });

  it('a write-only token can push but not read objects', async () => {
    const obj = chunk('write only');
    const up = await post(master.url, '/v1/packs', Buffer.concat([...tarEntry(obj.id, obj.data), TAR_END]), WO, 'application/x-tar');
    assert.equal(up.status, 200);
    assert.equal((await post(master.url, '/v1/objects', encodeIds([obj.id]), WO)).status, 403);
    assert.equal((await post(master.url, '/v1/objects', encodeIds([obj.id]), RO)).status, 200);
  });

  it('object responses are immutable: ETag is the id, Cache-Control immutable, If-None-Match gives 304', async () => {
    const obj = chunk('cache me forever');
    assert.equal((await post(master.url, '/v1/packs', Buffer.concat([...tarEntry(obj.id, obj.data), TAR_END]), RW, 'application/x-tar')).status, 200);
    const headers = { authorization: `Bearer ${RO}` };
    const res = await fetch(`${master.url}/v1/objects/${obj.id}`, { headers });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), `"${obj.id}"`);
    assert.match(res.headers.get('cache-control')!, /immutable/);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(obj.data));
    const again = await fetch(`${master.url}/v1/objects/${obj.id}`, { headers: { ...headers, 'if-none-match': `"${obj.id}"` } });
    assert.equal(again.status, 304);
  });

  it('bad --listen and a half-given TLS pair are usage errors', () => {
    assertTextError(elton(tempDir(), ['master', '--data', join(tempDir(), 'd'), '--listen', 'nowhere']), 2, '--listen');
    assertTextError(elton(tempDir(), ['master', '--data', join(tempDir(), 'd'), '--listen', '127.0.0.1:0', '--tls-cert', 'x.pem']), 2, 'TLS');
  });

  it('the health endpoint needs no token', async () => {
    const res = await fetch(`${master.url}/v1/health`);
    assert.equal(res.status, 200);
    assert.equal((await res.json() as { ok: boolean }).ok, true);
  });

  it('a bad token file stops the master with a usage error', () => {
    const bad = join(tempDir(), 'bad-tokens');
    writeFileSync(bad, 'short read\n');
    assertTextError(elton(tempDir(), ['master', '--data', join(tempDir(), 'd'), '--listen', '127.0.0.1:0', '--token-file', bad]), 2, 'shorter than');
  });

  it('TLS: the client refuses an unknown CA (exit 12, hint ELTON_CA_FILE) and accepts it with ELTON_CA_FILE', async function () {
    const dir = tempDir();
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    const tls = await startMasterProcess(['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
    try {
      assert.match(tls.url, /^https:/);
      const ws = join(tempDir(), 'tls');
      writeTree(ws, { 'secret.txt': 'over TLS\n' });
      const refused = elton(ws, ['init', '--remote', tls.url, '--json']);
      const e = assertJsonError(refused, 'E_AUTH', 12);
      assert.match(e.hint!, /ELTON_CA_FILE/);
      const env = { ELTON_CA_FILE: join(dir, 'cert.pem') };
      ok(elton(ws, ['init', '--remote', tls.url], env));
      ok(elton(ws, ['commit', '-m', 'tls'], env));
      const dst = join(tempDir(), 'tls-clone');
      ok(elton(tempDir(), ['clone', tls.url, 'tls@1', dst], env));
      assert.equal(readFileSync(join(dst, 'secret.txt'), 'utf8'), 'over TLS\n');
    } finally {
      await tls.stop();
    }
  });
});

describe('integration: master refuses bad input, and nothing of it becomes visible', function () {
  this.timeout(120000);
  let master: MasterProcess;
  before(async () => { master = await startMasterProcess(); });
  after(async () => { await master?.stop(); });

  const isMissing = async (id: string) => (await post(master.url, '/v1/missing', encodeIds([id]))).data.length === 32;

  it('malformed and path-like ids are refused', async () => {
    assert.equal((await post(master.url, '/v1/missing', Buffer.alloc(33))).status, 400);
    for (const path of ['/v1/objects/..%2F..%2Fetc%2Fpasswd', '/v1/objects/xyz', '/v1/objects/' + 'A'.repeat(64)]) {
      const res = await fetch(`${master.url}${path}`);
      assert.equal(res.status, 400, path);
    }
    assert.equal((await fetch(`${master.url}/v1/trees/..%2Fx/versions`)).status, 400);
    // A pack entry named like a path is refused before anything of it is stored.
    const obj = chunk('innocent');
    const evil = Buffer.concat([tarHeader('../x', obj.data.length), obj.data, Buffer.alloc(512 - (obj.data.length % 512)), TAR_END]);
    const r = await post(master.url, '/v1/packs', evil, RW, 'application/x-tar');
    assert.equal(r.status, 400);
    assert.match(r.json().error.message, /not an object id/);
  });

  it('an object whose content does not match its id is refused (422) and not stored; the good ones before it are', async () => {
    const good = chunk('good object');
    const bad = chunk('honest content');
    const forged = pseudoRandom(32, 5).toString('hex');
    const body = Buffer.concat([...tarEntry(good.id, good.data), ...tarEntry(forged, bad.data), TAR_END]);
    const r = await post(master.url, '/v1/packs', body, RW, 'application/x-tar');
    assert.equal(r.status, 422);
    assert.equal(r.json().error.code, 'E_CORRUPT');
    assert.equal(await isMissing(forged), true);
    assert.equal(await isMissing(good.id), false);
    assert.equal((await fetch(`${master.url}/v1/objects/${forged}`)).status, 404);
  });

  it('an oversized object and a truncated upload are refused; the partial object never appears', async () => {
    const header = tarHeader(pseudoRandom(32, 6).toString('hex'), 65 * 1024 * 1024);
    const r = await post(master.url, '/v1/packs', Buffer.concat([header, Buffer.alloc(4096)]), RW, 'application/x-tar');
    assert.equal(r.status, 413);
    const obj = chunk(pseudoRandom(200000, 9));
    const cut = Buffer.concat(tarEntry(obj.id, obj.data)).subarray(0, 100000);
    const t = await post(master.url, '/v1/packs', cut, RW, 'application/x-tar');
    assert.equal(t.status, 400);
    assert.equal(await isMissing(obj.id), true);
  });

  it('a version whose objects are not all held is refused (E_INCOMPLETE), and a malformed draft is a usage error', async () => {
    const draft = { tree: 'holes', root: pseudoRandom(32, 7).toString('hex'), parent: null, message: '', author: 'a', host: 'h', time: new Date().toISOString(), git: null };
    const r = await post(master.url, '/v1/trees/holes/versions', Buffer.from(JSON.stringify({ draft })), RW, 'application/json');
    assert.equal(r.status, 422);
    assert.equal(r.json().error.code, 'E_INCOMPLETE');
    assert.equal((await fetch(`${master.url}/v1/trees/holes/versions/latest`)).status, 404);
    const bad = await post(master.url, '/v1/trees/holes/versions', Buffer.from(JSON.stringify({ draft: { ...draft, root: '../../x' } })), RW, 'application/json');
    assert.equal(bad.status, 400);
    const junk = await post(master.url, '/v1/trees/holes/versions', Buffer.from('{not json'), RW, 'application/json');
    assert.equal(junk.status, 400);
  });

  it('a push cut mid-stream leaves the master consistent; the next push sends only what is still missing', async () => {
    const ws = join(tempDir(), 'cut');
    writeRandomTree(ws, 40, 24 * 1024 * 1024, 11);
    ok(elton(ws, ['init', '--remote', master.url]));
    const proxy = await startWanProxy({ host: '127.0.0.1', port: Number(new URL(master.url).port) }, { rttMs: 2, cutAfterBytes: 10 * 1024 * 1024, handshakeRtts: 0 });
    try {
      const cfgPath = join(ws, '.elton', 'config.json');
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
      writeFileSync(cfgPath, JSON.stringify({ ...cfg, remote: proxy.url() }));
      // Asynchronously: the proxy runs in this process, and a synchronous spawn would stall it.
      const cut = ok(await eltonAsync(ws, ['commit', '-m', 'cut', '--json'], { ELTON_STREAMS: '1' }));
      assert.equal(cut.json.pending, true, JSON.stringify(cut.json));
      assertNoStack(cut);
      // Consistent: no version, and the objects that arrived whole are held.
      assert.equal((await fetch(`${master.url}/v1/trees/cut/versions/latest`)).status, 404);
      // The connection is back (the proxy cuts once): the push resumes through the same path.
      const pushed = ok(await eltonAsync(ws, ['push', '--json'], { ELTON_STREAMS: '1' })).json;
      assert.equal(pushed.version, 1);
      // What arrived whole before the cut is kept (less what sat in socket buffers when it came).
      assert.ok(pushed.transfer.bytesUp < 22 * 1024 * 1024, `the resumed push re-sent too much: ${JSON.stringify(pushed.transfer)}`);
      const dst = join(tempDir(), 'cut-clone');
      ok(elton(tempDir(), ['clone', master.url, 'cut@1', dst]));
      assertSameTree(snapshotTree(dst), snapshotTree(ws), { modes: true });
    } finally {
      await proxy.close();
    }
  });
});
