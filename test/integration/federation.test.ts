// Federation: masters of two clusters, each tree homed on one of them (docs/federation.md). Real
// master processes on ephemeral ports; every master-to-master byte crosses a WAN proxy, whose
// counters say what crossed.

import { strict as assert } from 'node:assert';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertSameTree, eltonAsync, ok, snapshotTree, writeRandomTree } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import { startWanProxy, type WanProxy } from '../support/wan-proxy.js';
import { encodeVersion } from '../../src/version.js';

interface PeerStatus { name: string; out: { requests: number; bytesUp: number; bytesDown: number }; in: { requests: number }; objectsFetched: number; objectsSent: number; versionsForwarded: number; rejected: number; lastError: { code: string; message: string } | null }
interface Status { name: string | null; peers: PeerStatus[] }

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A plain GET with these headers, as a peer (or someone posing as one) would send it. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => { body += d; }).on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

describe('integration: federation of masters', function () {
  this.timeout(180000);
  const started: MasterProcess[] = [];
  const proxies: WanProxy[] = [];
  after(async () => {
    for (const m of started) await m.stop('SIGKILL');
    for (const p of proxies) await p.close();
  });

  /** Two masters, alpha and beta, each reaching the other only through a WAN proxy. */
  async function pair(extra: { alpha?: string[]; beta?: string[]; mbit?: number; betaEnv?: Record<string, string> } = {}) {
    const [portA, portB] = [await freePort(), await freePort()];
    const toA = await startWanProxy({ host: '127.0.0.1', port: portA }, { rttMs: 20, mbitPerSec: extra.mbit });
    const toB = await startWanProxy({ host: '127.0.0.1', port: portB }, { rttMs: 20, mbitPerSec: extra.mbit });
    proxies.push(toA, toB);
    const dataA = join(tempDir('elton-alpha-'), 'data');
    const dataB = join(tempDir('elton-beta-'), 'data');
    const argsA = ['--name', 'alpha', '--peer', `beta=${toB.url()}`, ...(extra.alpha ?? [])];
    const argsB = ['--name', 'beta', '--peer', `alpha=${toA.url()}`, '--latest-ttl', '60', ...(extra.beta ?? [])];
    const A = await startMasterProcess(argsA, dataA, `127.0.0.1:${portA}`);
    const B = await withEnv(extra.betaEnv ?? {}, () => startMasterProcess(argsB, dataB, `127.0.0.1:${portB}`));
    started.push(A, B);
    const wan = () => ({ up: toA.stats.bytesUp + toB.stats.bytesUp, down: toA.stats.bytesDown + toB.stats.bytesDown, total: toA.stats.bytesUp + toA.stats.bytesDown + toB.stats.bytesUp + toB.stats.bytesDown });
    const restartA = async () => {
      const m = await startMasterProcess(argsA, dataA, `127.0.0.1:${portA}`);
      started.push(m);
      return m;
    };
    return { A, B, wan, restartA, portA };
  }

  /** Runs `start` (a process spawn, which copies process.env) with these variables set. */
  async function withEnv<T>(vars: Record<string, string>, start: () => Promise<T>): Promise<T> {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    Object.assign(process.env, vars);
    try {
      return await start();
    } finally {
      for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
    }
  }

  /** A node: its own working directories and its own user cache. */
  const node = () => {
    const cache = tempDir('elton-node-cache-');
    const run = (cwd: string, args: string[]) => eltonAsync(cwd, args, { ELTON_CACHE: cache });
    return { run, dir: (name: string) => join(tempDir('elton-node-'), name) };
  };
  const status = async (url: string): Promise<Status> => ok(await eltonAsync(tempDir(), ['master', 'status', url, '--json'])).json;
  const peer = async (url: string, name: string) => (await status(url)).peers.find((p) => p.name === name)!;
  /** Compressed bytes of these files in a workspace's own commit: what crossing the WAN should cost. */
  const changedBytes = (commit: { newBytes: number }) => commit.newBytes;

  it('runs the thesis scenario: a commit on A read through B, cached for the next node, a commit from B forwarded to A, read on A', async () => {
    const { A, B, wan } = await pair();
    const [a1, a2, b1, b2] = [node(), node(), node(), node()];
    const ws1 = a1.dir('a1');
    writeRandomTree(ws1, 400, 4 * 1024 * 1024, 7);
    ok(await a1.run(ws1, ['init', '--remote', A.url, '--tree', 'data~alpha']));
    const c1 = ok(await a1.run(ws1, ['commit', '-m', 'one', '--json'])).json;
    assert.equal(c1.ref, 'data~alpha@1');
    assert.equal(wan().total, 0, 'a commit to the home crosses nothing');

    // b1 checks out through B: B fetches from A once.
    const wb1 = b1.dir('b1');
    const before1 = wan();
    const clone1 = ok(await b1.run(tempDir(), ['clone', B.url, 'data~alpha@latest', wb1, '--json'])).json;
    assert.equal(clone1.ref, 'data~alpha@1');
    assertSameTree(snapshotTree(wb1), snapshotTree(ws1), { label: 'b1 = a1' });
    const step1 = wan().total - before1.total;
    assert.ok(step1 >= c1.newBytes && step1 < c1.newBytes * 1.05 + 16384, `b1's checkout moved ${step1} B across the WAN for ${c1.newBytes} B stored`);

    // b2 checks out the same: nothing but (at most) a version request crosses.
    const before2 = wan();
    const peerBefore = await peer(B.url, 'alpha');
    const wb2 = b2.dir('b2');
    ok(await b2.run(tempDir(), ['clone', B.url, 'data~alpha@latest', wb2]));
    assertSameTree(snapshotTree(wb2), snapshotTree(ws1), { label: 'b2 = a1' });
    const peerAfter = await peer(B.url, 'alpha');
    assert.equal(peerAfter.objectsFetched, peerBefore.objectsFetched, 'b2 fetched nothing through B from A');
    assert.ok(wan().total - before2.total < 2048, `b2's checkout moved ${wan().total - before2.total} B across the WAN`);

    // b1 changes 10 files and commits through B: the home issues @2.
    const files = readdirSync(wb1, { recursive: true }).map(String).filter((f) => !f.startsWith('.elton') && statSync(join(wb1, f)).isFile()).sort().slice(0, 10);
    files.forEach((f, i) => writeFileSync(join(wb1, f), pseudoRandom(8000 + i, 1000 + i)));
    const before3 = wan();
    const reqBefore = (await peer(B.url, 'alpha')).out.requests;
    const c2 = ok(await b1.run(wb1, ['commit', '-m', 'two', '--json'])).json;
    assert.equal(c2.ref, 'data~alpha@2');
    const step3 = wan().up - before3.up;
    const requests = (await peer(B.url, 'alpha')).out.requests - reqBefore;
    assert.ok(step3 < changedBytes(c2) * 1.1 + 8192, `b1's commit sent ${step3} B across the WAN for ${changedBytes(c2)} B of changed objects`);
    assert.ok(requests <= 4, `b1's commit made ${requests} requests from B to A`);

    // a2 reads @2 on A: everything is already at the home.
    const before4 = wan();
    const wa2 = a2.dir('a2');
    const clone2 = ok(await a2.run(tempDir(), ['clone', A.url, 'data~alpha@latest', wa2, '--json'])).json;
    assert.equal(clone2.ref, 'data~alpha@2');
    assertSameTree(snapshotTree(wa2), snapshotTree(wb1), { label: 'a2 = b1' });
    assert.equal(wan().total - before4.total, 0, 'a2 read the home alone');

    // a1 commits @3 on A, changing one file; b2, which holds @1, moves to @3 through B: only
    // what changed crosses (B names @1's root as the base of the trees it asks for).
    ok(await a1.run(ws1, ['checkout', 'data~alpha@latest']));
    const changed = readdirSync(join(ws1, 'd5')).sort()[0];
    writeFileSync(join(ws1, 'd5', changed), pseudoRandom(12000, 77));
    const c3 = ok(await a1.run(ws1, ['commit', '-m', 'three', '--json'])).json;
    assert.equal(c3.ref, 'data~alpha@3');
    // (B reuses its home's answer to @latest for 60 s here, so b2 asks for @3 by number.)
    const before5 = wan();
    ok(await b2.run(wb2, ['checkout', 'data~alpha@3']));
    assertSameTree(snapshotTree(wb2), snapshotTree(ws1), { label: 'b2 = a1 at @3' });
    const step5 = wan().total - before5.total;
    assert.ok(step5 < c3.newBytes * 1.1 + 4096, `b2's move to @3 moved ${step5} B across the WAN for ${c3.newBytes} B of new objects`);

    // log and cat work through either master; both see the same history.
    const logA = ok(await a2.run(wa2, ['log', '--json'])).json;
    const logB = ok(await b2.run(wb2, ['log', 'data~alpha', '--json'])).json;
    assert.deepEqual(logB.versions.map((v: { version: number; root: string }) => [v.version, v.root]), logA.versions.map((v: { version: number; root: string }) => [v.version, v.root]));
    const cat = await b2.run(wb2, ['cat', `data~alpha@2:${files[0]}`]);
    assert.equal(cat.code, 0, cat.stderr);
    assert.ok(Buffer.from(cat.stdout, 'latin1').length > 0);
    const ls = await b2.run(wb2, ['ls', 'data~alpha@2', '-r']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok(ls.stdout.includes(files[0].split('/').pop()!), ls.stdout.slice(0, 500));
    const statusB = await status(B.url);
    assert.equal(statusB.name, 'beta');
    assert.equal(statusB.peers[0].versionsForwarded, 1);
    assert.ok(statusB.peers[0].objectsSent >= 10);
    const statusA = await status(A.url);
    assert.ok(statusA.peers[0].in.requests >= 5, 'A counts the requests B sent it');
  });

  it('fetches each tree and object from the home once when two nodes of B check out at the same moment', async () => {
    const { A, B } = await pair();
    const a1 = node();
    const ws = a1.dir('a1');
    writeRandomTree(ws, 200, 1024 * 1024, 11);
    ok(await a1.run(ws, ['init', '--remote', A.url, '--tree', 'twice~alpha']));
    const c1 = ok(await a1.run(ws, ['commit', '-m', 'one', '--json'])).json;
    const mark = A.mark();
    const [b1, b2] = [node(), node()];
    const [w1, w2] = [b1.dir('b1'), b2.dir('b2')];
    await Promise.all([b1.run(tempDir(), ['clone', B.url, 'twice~alpha@latest', w1]), b2.run(tempDir(), ['clone', B.url, 'twice~alpha@latest', w2])].map(async (p) => ok(await p)));
    assertSameTree(snapshotTree(w1), snapshotTree(ws));
    assertSameTree(snapshotTree(w2), snapshotTree(ws));
    await A.settle();
    const fromB = A.since(mark).filter((l) => / peer:beta /.test(l));
    assert.equal(fromB.filter((l) => /trees-closure/.test(l)).length, 1, fromB.join('\n'));
    assert.equal(fromB.filter((l) => /versions\/latest/.test(l)).length, 1, fromB.join('\n'));
    assert.equal((await peer(B.url, 'alpha')).objectsFetched, c1.newObjects);
  });

  it('the home rule: a name says its home; a new tree is created on its home, wherever it is committed; plain names stay local', async () => {
    const { A, B } = await pair();
    const n = node();
    // A tree homed on beta, first committed through alpha: beta issues it.
    const ws = n.dir('x');
    writeTree(ws, { 'f.txt': 'x\n' });
    ok(await n.run(ws, ['init', '--remote', A.url, '--tree', 'new~beta']));
    assert.equal(ok(await n.run(ws, ['commit', '-m', 'x', '--json'])).json.ref, 'new~beta@1');
    assert.equal((await peer(A.url, 'beta')).versionsForwarded, 1);
    assert.equal(ok(await n.run(tempDir(), ['verify', B.url, '--tree', 'new~beta', '--json'])).json.versions, 1, 'beta holds it as its own');
    assert.equal((await peer(B.url, 'alpha')).versionsForwarded, 0);

    // A plain name is local to the master it is committed to.
    const local = n.dir('plain');
    writeTree(local, { 'g.txt': 'g\n' });
    ok(await n.run(local, ['init', '--remote', A.url, '--tree', 'plain']));
    ok(await n.run(local, ['commit', '-m', 'p']));
    assert.equal((await n.run(tempDir(), ['clone', B.url, 'plain@latest', n.dir('p2')])).code, 4);

    // A master never issues versions of a tree homed elsewhere, and says where it belongs.
    const stray = n.dir('stray');
    writeTree(stray, { 'h.txt': 'h\n' });
    ok(await n.run(stray, ['init', '--remote', A.url, '--tree', 'stray~gamma']));
    const refused = assertJsonError(await n.run(stray, ['commit', '-m', 's', '--json']), 'E_NO_PEER', 4);
    assert.match(refused.message, /stray~gamma belongs to the master "gamma", which is not a peer of "alpha"/);
    assert.match(refused.hint ?? '', /--peer gamma=URL/);
    const unknown = assertJsonError(await n.run(tempDir(), ['clone', A.url, 'stray~gamma@latest', n.dir('u'), '--json']), 'E_NO_PEER', 4);
    assert.match(unknown.hint ?? '', /--peer gamma=URL/);

    // The name is recorded in the data directory: restarting under another name is refused.
    const other = await startMasterProcess(['--name', 'impostor'], A.data).then(() => undefined, (err: Error) => err);
    assert.ok(other instanceof Error && /belongs to the master named "alpha"/.test(other.message), String(other));
  });

  it('keeps reads of versions cached at B working while the home is down; a commit stays pending and goes through when the home is back', async () => {
    const { A, B, restartA } = await pair();
    const [a1, b1, b2] = [node(), node(), node()];
    const ws = a1.dir('a1');
    writeRandomTree(ws, 50, 200000, 3);
    ok(await a1.run(ws, ['init', '--remote', A.url, '--tree', 'cold~alpha']));
    ok(await a1.run(ws, ['commit', '-m', 'one']));
    const wb1 = b1.dir('b1');
    ok(await b1.run(tempDir(), ['clone', B.url, 'cold~alpha@1', wb1]));
    await A.stop('SIGKILL');

    // Pinned and @latest reads through B, from its cache; @latest says it may be behind.
    const pinned = await b2.run(tempDir(), ['clone', B.url, 'cold~alpha@1', b2.dir('pinned')]);
    assert.equal(pinned.code, 0, pinned.stderr);
    const wLatest = b2.dir('latest');
    const latest = await b2.run(tempDir(), ['clone', B.url, 'cold~alpha@latest', wLatest]);
    assert.equal(latest.code, 0, latest.stderr);
    assert.match(latest.stderr, /warning: .*could not be reached.*@1/);
    assertSameTree(snapshotTree(wLatest), snapshotTree(ws));

    // A commit through B cannot be issued: it stays pending, with no number.
    writeTree(wb1, { 'new.txt': 'new\n' });
    const pending = ok(await b1.run(wb1, ['commit', '-m', 'while down', '--json'])).json;
    assert.equal(pending.pending, true);
    assert.equal(pending.version, null);
    assert.match(pending.pendingReason, /alpha/);

    // The home is back: `push` issues it, @2, and the home has every object.
    await restartA();
    const pushed = ok(await b1.run(wb1, ['push', '--json'])).json;
    assert.equal(pushed.ref, 'cold~alpha@2');
    const check = node();
    const wc = check.dir('check');
    ok(await check.run(tempDir(), ['clone', A.url, 'cold~alpha@2', wc]));
    assertSameTree(snapshotTree(wc), snapshotTree(wb1));
    ok(await check.run(tempDir(), ['verify', A.url, '--tree', 'cold~alpha', '--read-data']));
    void B;
  });

  it('gives concurrent commits from nodes on both masters distinct, consecutive versions from the home', async () => {
    const { A, B } = await pair();
    const seed = node();
    const ws = seed.dir('seed');
    writeTree(ws, { 'f.txt': 'seed\n' });
    ok(await seed.run(ws, ['init', '--remote', A.url, '--tree', 'busy~alpha']));
    ok(await seed.run(ws, ['commit', '-m', 'seed']));
    const writers = await Promise.all([A.url, A.url, B.url, B.url, B.url, A.url].map(async (url, i) => {
      const n = node();
      const dir = n.dir(`w${i}`);
      ok(await n.run(tempDir(), ['clone', url, 'busy~alpha@1', dir]));
      writeTree(dir, { [`w${i}.txt`]: `writer ${i}\n` });
      return { n, dir };
    }));
    const results = await Promise.all(writers.map(({ n, dir }) => n.run(dir, ['commit', '-m', 'race', '--force', '--json'])));
    const versions = results.map((r) => ok(r).json.version as number).sort((a, b) => a - b);
    assert.deepEqual(versions, [2, 3, 4, 5, 6, 7]);
    const log = ok(await seed.run(ws, ['log', '--json'])).json;
    assert.equal(log.versions.length, 7);
  });

  it('detects loops and misnamed peers instead of forwarding round in a cycle', async () => {
    // alpha thinks gamma lives at beta's address, and beta thinks gamma lives at alpha's.
    const [portA, portB] = [await freePort(), await freePort()];
    const A = await startMasterProcess(['--name', 'alpha', '--peer', `gamma=http://127.0.0.1:${portB}`], undefined, `127.0.0.1:${portA}`);
    const B = await startMasterProcess(['--name', 'beta', '--peer', `gamma=http://127.0.0.1:${portA}`], undefined, `127.0.0.1:${portB}`);
    started.push(A, B);
    const n = node();
    const t0 = Date.now();
    const r = await n.run(tempDir(), ['clone', A.url, 't~gamma@latest', n.dir('t'), '--json']);
    const e = assertJsonError(r, 'E_PEER', 13);
    assert.match(e.message, /configured as "gamma".*"beta"/);
    assert.ok(Date.now() - t0 < 10000);
    // alpha asked beta its name, without a token, and sent it nothing else.
    await B.settle();
    assert.deepEqual(B.lines.map((l) => l.split(' ').slice(2, 5).join(' ')), ['- GET /v1/health']);

    // Were a peer to forward such a request anyway, beta would not forward it again.
    const forwarded = await get(`${B.url}/v1/trees/t~gamma/versions/latest`, { 'x-elton-via': 'alpha' });
    assert.equal(forwarded.status, 508);
    assert.match(JSON.parse(forwarded.body).error.message, /peer "alpha" forwarded a request for it here/);

    // A request that names this master as the one it came from is a loop too.
    const looped = await get(`${A.url}/v1/trees/t~beta/versions/latest`, { 'x-elton-via': 'alpha' });
    assert.equal(looped.status, 508);
    assert.equal(JSON.parse(looped.body).error.code, 'E_LOOP');
    // X-Elton-Via holds a master's name, nothing else (it is written to the request log).
    assert.equal((await get(`${A.url}/v1/trees`, { 'x-elton-via': 'alpha GET /fake 200' })).status, 400);

    // A peer with this master's own name is refused at start.
    const self = await startMasterProcess(['--name', 'alpha', '--peer', 'alpha=http://127.0.0.1:1']).then(() => undefined, (err: Error) => err);
    assert.ok(self instanceof Error && /own name/.test(self.message));
  });

  it('rejects an object a peer sends damaged, and logs it with the peer\'s name', async () => {
    const { A, B } = await pair();
    const a1 = node();
    const ws = a1.dir('a1');
    writeTree(ws, { 'big.bin': pseudoRandom(300000, 5) });
    ok(await a1.run(ws, ['init', '--remote', A.url, '--tree', 'bad~alpha']));
    ok(await a1.run(ws, ['commit', '-m', 'one']));
    // Damage the chunk's bytes in alpha's pack (its payload: past the header, inside the pack).
    const packs = join(A.data, 'store', 'packs');
    const pack = readdirSync(packs).filter((f) => f.endsWith('.tar')).map((f) => join(packs, f)).sort((x, y) => statSync(y).size - statSync(x).size)[0];
    const bytes = readFileSync(pack);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(pack, bytes);

    const b1 = node();
    const r = await b1.run(tempDir(), ['clone', B.url, 'bad~alpha@1', b1.dir('b1'), '--json']);
    const e = assertJsonError(r, 'E_CORRUPT', 7);
    assert.match(e.message, /peer "alpha" sent object [0-9a-f]{64} that does not verify/);
    const p = await peer(B.url, 'alpha');
    assert.equal(p.rejected, 1);
    assert.equal(p.lastError?.code, 'E_CORRUPT');
    const out = (await B.stop()).output;
    assert.match(out, /peer alpha: E_CORRUPT: peer "alpha" sent object/);
  });

  it('reaches a peer over TLS with its own token, from a peers file; a wrong token is refused with a hint about the peer', async () => {
    const dir = tempDir();
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    const beta = 'b'.repeat(40);
    const node1 = 'n'.repeat(40);
    writeFileSync(join(dir, 'tokens'), `${beta} read,write beta\n${node1} read,write node\n`);
    const A = await startMasterProcess(['--name', 'alpha', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'), '--token-file', join(dir, 'tokens')]);
    started.push(A);
    writeFileSync(join(dir, 'beta.token'), `${beta}\n`);
    writeFileSync(join(dir, 'wrong.token'), `${'w'.repeat(40)}\n`);
    writeFileSync(join(dir, 'peers'), `alpha ${A.url} token-file=beta.token ca-file=cert.pem\n`);
    writeFileSync(join(dir, 'peers-wrong'), `alpha ${A.url} token-file=wrong.token ca-file=cert.pem\n`);
    const B = await startMasterProcess(['--name', 'beta', '--peers-file', join(dir, 'peers')]);
    const Bwrong = await startMasterProcess(['--name', 'beta', '--peers-file', join(dir, 'peers-wrong')]);
    started.push(B, Bwrong);

    const a1 = node();
    const ws = a1.dir('a1');
    writeTree(ws, { 'secret.txt': 'over TLS\n' });
    const env = { ELTON_CA_FILE: join(dir, 'cert.pem'), ELTON_TOKEN: node1 };
    ok(await eltonAsync(ws, ['init', '--remote', A.url, '--tree', 'tls~alpha'], env));
    ok(await eltonAsync(ws, ['commit', '-m', 'one'], env));
    const b1 = node();
    const wb = b1.dir('b1');
    ok(await b1.run(tempDir(), ['clone', B.url, 'tls~alpha@latest', wb]));
    assert.equal(readFileSync(join(wb, 'secret.txt'), 'utf8'), 'over TLS\n');
    assert.ok(A.lines.some((l) => / beta GET \/v1\/trees\/tls~alpha\/versions\/latest 200 /.test(l)) || A.lines.some((l) => /peer:beta GET .*latest 200/.test(l)), A.lines.join('\n'));

    const refused = await b1.run(tempDir(), ['clone', Bwrong.url, 'tls~alpha@latest', b1.dir('no'), '--json']);
    const e = assertJsonError(refused, 'E_AUTH', 12);
    assert.match(e.message, /the master "alpha" refused "beta"/);
    assert.match(e.hint ?? '', /token-file=/);
  });

  it('rejects a version record a peer sends that is not the one asked for, or does not verify, and logs it with the peer\'s name', async () => {
    // A hostile "alpha": it says the right name, and answers @1 with the record of @2, and @3 with a damaged record.
    const root = 'ab'.repeat(32);
    const record = (version: number) => encodeVersion({ tree: 't~alpha', version, root, parent: null, message: 'm', author: 'a', host: 'h', time: new Date(0).toISOString(), git: null });
    const damaged = Buffer.from(record(3));
    damaged[damaged.length - 5] ^= 1;
    const hostile = http.createServer((req, res) => {
      if (req.url === '/v1/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, name: 'alpha' }));
      const v = /\/versions\/(\d+)$/.exec(req.url ?? '')?.[1];
      const body = v === '1' ? record(2) : v === '3' ? damaged : undefined;
      res.setHeader('x-elton-master', 'alpha');
      res.setHeader('x-elton-protocol', '2');
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-elton-version': v! }).end(body);
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    try {
      const B = await startMasterProcess(['--name', 'beta', '--peer', `alpha=http://127.0.0.1:${(hostile.address() as net.AddressInfo).port}`]);
      started.push(B);
      const n = node();
      for (const v of [1, 3]) {
        const r = await n.run(tempDir(), ['clone', B.url, `t~alpha@${v}`, n.dir(`t${v}`), '--json']);
        const e = assertJsonError(r, 'E_CORRUPT', 7);
        assert.match(e.message, new RegExp(`peer "alpha" sent t~alpha@${v} that does not verify`));
      }
      const p = await peer(B.url, 'alpha');
      assert.equal(p.rejected, 2);
      // Nothing was kept: asked again, B asks the peer again (and rejects again).
      assertJsonError(await n.run(tempDir(), ['clone', B.url, 't~alpha@1', n.dir('again'), '--json']), 'E_CORRUPT', 7);
      assert.equal((await peer(B.url, 'alpha')).rejected, 3);
      assert.match((await B.stop()).output, /peer alpha: E_CORRUPT: peer "alpha" sent t~alpha@1 that does not verify/);
    } finally {
      hostile.close();
    }
  });

  it('copies a tree homed on A into B with a backup (B answers a copy for itself), and refuses a copy that differs from the home\'s record', async () => {
    const { A, B } = await pair();
    const a1 = node();
    const ws = a1.dir('a1');
    writeRandomTree(ws, 40, 200000, 21);
    ok(await a1.run(ws, ['init', '--remote', A.url, '--tree', 'kept~alpha']));
    ok(await a1.run(ws, ['commit', '-m', 'one']));
    const copied = ok(await a1.run(tempDir(), ['backup', '--from', A.url, '--to', B.url, '--tree', 'kept~alpha', '--json'])).json;
    assert.deepEqual(copied.copied, ['kept~alpha@1']);
    const verified = ok(await a1.run(tempDir(), ['verify', B.url, '--tree', 'kept~alpha', '--read-data', '--json'])).json;
    assert.equal(verified.versions, 1);
    // A second run finds it there.
    assert.deepEqual(ok(await a1.run(tempDir(), ['backup', '--from', A.url, '--to', B.url, '--tree', 'kept~alpha', '--json'])).json.copied, []);

    // A workspace's own store holds a different fork~alpha@1 than alpha issued: beta refuses to hold it.
    const real = a1.dir('real');
    writeTree(real, { 'f.txt': 'real\n' });
    ok(await a1.run(real, ['init', '--remote', A.url, '--tree', 'fork~alpha']));
    ok(await a1.run(real, ['commit', '-m', 'real']));
    const fake = a1.dir('fake');
    writeTree(fake, { 'f.txt': 'fake\n' });
    ok(await a1.run(fake, ['init', '--tree', 'fork~alpha']));
    ok(await a1.run(fake, ['commit', '-m', 'fake']));
    const refused = assertJsonError(await a1.run(tempDir(), ['backup', '--from', fake, '--to', B.url, '--tree', 'fork~alpha', '--json']), 'E_CONFLICT', 5);
    assert.match(refused.message, /the home "alpha" already holds a different fork~alpha@1/);
    const b1 = node();
    const wb = b1.dir('b1');
    ok(await b1.run(tempDir(), ['clone', B.url, 'fork~alpha@1', wb]));
    assert.equal(readFileSync(join(wb, 'f.txt'), 'utf8'), 'real\n');
  });

  it('answers at once from what it holds while the home hangs (a partition, not a refused connection)', async () => {
    const { A, B, portA } = await pair({ betaEnv: { ELTON_PEER_DEADLINE_MS: '1000' } });
    const a1 = node();
    const ws = a1.dir('a1');
    writeRandomTree(ws, 30, 100000, 31);
    ok(await a1.run(ws, ['init', '--remote', A.url, '--tree', 'hang~alpha']));
    ok(await a1.run(ws, ['commit', '-m', 'one']));
    const b1 = node();
    ok(await b1.run(tempDir(), ['clone', B.url, 'hang~alpha@1', b1.dir('b1')]));
    writeTree(ws, { 'two.txt': 'two\n' });
    ok(await a1.run(ws, ['commit', '-m', 'two']));
    // alpha stops answering: its port accepts connections and says nothing.
    await A.stop('SIGKILL');
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(portA, '127.0.0.1', r));
    try {
      const t0 = Date.now();
      const w = b1.dir('latest');
      const latest = await b1.run(tempDir(), ['clone', B.url, 'hang~alpha@latest', w]);
      assert.equal(latest.code, 0, latest.stderr);
      assert.match(latest.stderr, /warning: .*could not be reached.*@1/);
      assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
      const t1 = Date.now();
      ok(await b1.run(w, ['log']));
      assert.ok(Date.now() - t1 < 3000, `log took ${Date.now() - t1} ms while the home is known to be down`);
      // @2 was never seen by beta: every reader is told the home cannot be reached, none that data is missing.
      const both = await Promise.all([node(), node()].map((n) => n.run(tempDir(), ['clone', B.url, 'hang~alpha@2', n.dir('two'), '--json'])));
      for (const r of both) assertJsonError(r, 'E_UNREACHABLE', 11);
    } finally {
      silent.close();
    }
  });

  it('streams a large cold read through B without letting the node\'s connection sit idle', async () => {
    // 1 MB/s between the masters, a 2 s idle timeout on the node: the whole fetch takes longer than that.
    const { A, B } = await pair({ mbit: 8, betaEnv: { ELTON_HEARTBEAT_MS: '300' } });
    const a1 = node();
    const ws = a1.dir('a1');
    writeRandomTree(ws, 3000, 4_500_000, 41);
    ok(await a1.run(ws, ['init', '--remote', A.url, '--tree', 'big~alpha']));
    ok(await a1.run(ws, ['commit', '-m', 'one']));
    const b1 = node();
    const wb = b1.dir('b1');
    const t0 = Date.now();
    const r = await eltonAsync(tempDir(), ['clone', B.url, 'big~alpha@1', wb], { ELTON_CACHE: tempDir('elton-node-cache-'), ELTON_HTTP_TIMEOUT_MS: '2000' });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 > 3000, 'the fetch took longer than the node\'s idle timeout');
    assertSameTree(snapshotTree(wb), snapshotTree(ws));
  });
});
