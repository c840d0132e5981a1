// `elton serve` against a real master: files, ranges, listings, fetch-once caching, coalescing, path safety, corruption, load and errors.

import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, openSync, readdirSync, readFileSync, closeSync, writeSync, readSync, fstatSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, eltonAsync, ok, waitFor } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';
import {
  commitSite, expectedContentId, fileUrl, get, MiB, percentile, rawRequest, request, startGatewayProcess, stopAllGateways,
  HTML_NAME, UNICODE_NAME, type Site,
} from './gateway-util.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Bytes of `out=N` summed over master request lines (what the master sent). */
const masterOut = (lines: string[]) => lines.reduce((n, l) => n + Number(/ out=(\d+)/.exec(l)?.[1] ?? 0), 0);

/** Asserts a JSON error body {"error":{status,message}} with this status. */
function assertJsonErrorBody(r: { status: number; headers: http.IncomingHttpHeaders; body: Buffer }, status: number, what: string): string {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.body.toString()}`);
  assert.match(String(r.headers['content-type']), /^application\/json/, what);
  const j = JSON.parse(r.body.toString('utf8'));
  assert.equal(j.error?.status, status, what);
  assert.equal(typeof j.error.message, 'string', what);
  assert.ok(j.error.message.length > 0, what);
  return j.error.message as string;
}

/** Finds the tar entry named `id` in the user cache's packs: [pack path, offset of its data, length]. */
function findInPacks(cache: string, id: string): { tar: string; offset: number; length: number } | undefined {
  const dir = join(cache, 'objects', 'packs');
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.tar'))) {
    const tar = join(dir, name);
    const data = readFileSync(tar);
    for (let o = 0; o + 512 <= data.length;) {
      const entry = data.subarray(o, o + 100).toString('utf8').replace(/\0.*$/s, '');
      if (!entry) break;
      const size = parseInt(data.subarray(o + 124, o + 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
      if (entry === id) return { tar, offset: o + 512, length: size };
      o += 512 + Math.ceil(size / 512) * 512;
    }
  }
  return undefined;
}

/** Flips bytes in the payload of an object inside its pack (past the 8-byte object header). */
function corruptInPack(loc: { tar: string; offset: number; length: number }): void {
  chmodSync(loc.tar, 0o644);
  const fd = openSync(loc.tar, 'r+');
  try {
    const at = loc.offset + Math.max(8, Math.floor(loc.length / 2));
    const b = Buffer.alloc(16);
    readSync(fd, b, 0, b.length, at);
    for (let i = 0; i < b.length; i++) b[i] ^= 0xff;
    writeSync(fd, b, 0, b.length, at);
    assert.ok(fstatSync(fd).size > at);
  } finally {
    closeSync(fd);
  }
}

describe('integration: elton serve (HTTP gateway)', function () {
  this.timeout(60000);
  let master: MasterProcess;
  let site: Site;
  const ids: Record<string, ReturnType<typeof expectedContentId>> = {};

  before(async function () {
    this.timeout(120000);
    master = await startMasterProcess();
    site = await commitSite(master.url, 'site');
    for (const [path, data] of Object.entries(site.files)) ids[path] = expectedContentId(data);
    assert.ok(ids['big.bin'].chunks.length >= 6, `big.bin spans several chunks: ${ids['big.bin'].chunks.length}`);
    assert.ok(ids['sub/deep/medium.bin'].chunks.length >= 2, 'medium.bin spans several chunks');
  });
  afterEach(async () => { await stopAllGateways(); });
  after(async () => { await master?.stop(); });

  it('serves files byte for byte, with ETag = content id, immutable caching for @V, a short max-age for @latest, 304 and HEAD', async () => {
    const gw = await startGatewayProcess(master.url);
    for (const [path, data] of Object.entries(site.files)) {
      const r = await get(gw.url, fileUrl('site@1', path));
      assert.equal(r.status, 200, `${path}: ${r.status} ${r.body.subarray(0, 200).toString()}`);
      assert.ok(r.body.equals(data), `${path}: body differs (${r.body.length} vs ${data.length} bytes)`);
      assert.equal(r.headers.etag, `"${ids[path].id}"`, `${path}: ETag is the content id`);
      assert.equal(r.headers['cache-control'], IMMUTABLE, path);
      assert.equal(Number(r.headers['content-length']), data.length, path);
      assert.equal(r.headers['accept-ranges'], 'bytes', path);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(r.headers['content-security-policy'], 'sandbox', `${path}: user content is sandboxed`);
    }
    assert.match(String((await get(gw.url, '/site@1/small.txt')).headers['content-type']), /^text\/plain/);
    assert.equal((await get(gw.url, '/site@1/big.bin')).headers['content-type'], 'application/octet-stream');

    // @latest: the same file, re-resolved, with a short max-age; v2.txt exists only there.
    const latest = await get(gw.url, '/site@latest/small.txt');
    assert.equal(latest.status, 200);
    assert.ok(latest.body.equals(site.files['small.txt']));
    assert.equal(latest.headers.etag, `"${ids['small.txt'].id}"`, 'same content, same ETag, whatever the version');
    const maxAge = /^public, max-age=(\d+)$/.exec(String(latest.headers['cache-control']));
    assert.ok(maxAge && Number(maxAge[1]) > 0 && Number(maxAge[1]) <= 60, `short max-age for @latest: ${latest.headers['cache-control']}`);
    assert.equal((await get(gw.url, '/site@latest/v2.txt')).body.toString(), 'only in two\n');
    assert.equal((await get(gw.url, '/site@1/v2.txt')).status, 404);

    // Conditional GET.
    const etag = `"${ids['big.bin'].id}"`;
    const nm = await get(gw.url, '/site@1/big.bin', { 'if-none-match': etag });
    assert.equal(nm.status, 304);
    assert.equal(nm.body.length, 0);
    assert.equal(nm.headers.etag, etag);
    assert.equal(nm.headers['cache-control'], IMMUTABLE);
    assert.equal((await get(gw.url, '/site@1/big.bin', { 'if-none-match': `"nope", ${etag}` })).status, 304, 'one of a list matches');
    assert.equal((await get(gw.url, '/site@1/big.bin', { 'if-none-match': `W/${etag}` })).status, 304, 'weak comparison');
    const changed = await get(gw.url, '/site@1/small.txt', { 'if-none-match': etag });
    assert.equal(changed.status, 200, 'another file\'s ETag does not match');
    assert.ok(changed.body.equals(site.files['small.txt']));

    // HEAD: the headers of a GET, no body, on a fresh gateway (nothing fetched yet for the file).
    const cold = await startGatewayProcess(master.url);
    const head = await request(cold.url, fileUrl('site@1', 'big2.bin'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(Number(head.headers['content-length']), site.files['big2.bin'].length);
    assert.equal(head.headers.etag, `"${ids['big2.bin'].id}"`);
    assert.equal(head.headers['cache-control'], IMMUTABLE);
    const s = await cold.stats();
    assert.ok(s.upstream.bytesDown < 64 * 1024, `HEAD fetched no file data: ${JSON.stringify(s.upstream)}`);
    const uni = await request(cold.url, fileUrl('site@1', UNICODE_NAME), { method: 'HEAD' });
    assert.equal(uni.status, 200);
    assert.equal(Number(uni.headers['content-length']), site.files[UNICODE_NAME].length);
  });

  it('answers Range requests with 206 and the right bytes, 416 when unsatisfiable, and fetches only the chunks under a small range', async () => {
    const gw = await startGatewayProcess(master.url);
    const big = site.files['big.bin'];
    const size = big.length;
    const path = '/site@1/big.bin';
    // Resolve the path first (trees only), then measure what one small range of the cold file costs.
    assert.equal((await request(gw.url, path, { method: 'HEAD' })).status, 200);
    await master.settle();
    const before = await gw.stats();
    const mark = master.mark();
    const a = 3 * MiB + 12345;
    const b = a + 999;
    const r = await get(gw.url, path, { range: `bytes=${a}-${b}` });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes ${a}-${b}/${size}`);
    assert.equal(Number(r.headers['content-length']), 1000);
    assert.ok(r.body.equals(big.subarray(a, b + 1)), 'range bytes');
    const after = await gw.stats();
    await master.settle();
    const down = after.upstream.bytesDown - before.upstream.bytesDown;
    const under = ids['big.bin'].chunks.filter((c) => c.offset <= b && c.offset + c.size > a);
    const underBytes = under.reduce((n, c) => n + c.size, 0);
    const logged = masterOut(master.since(mark));
    console.log(`      a 1000-byte range of a cold ${size}-byte file: ${down} bytes upstream (${under.length} chunk(s) of ${underBytes} bytes under it); master logged out=${logged}`);
    assert.ok(down >= underBytes, `the chunks under the range came down: ${down} < ${underBytes}`);
    assert.ok(down < underBytes + 64 * 1024, `only the chunks under the range: ${down} bytes for chunks of ${underBytes}`);
    assert.ok(down < size / 4, `well below the file's size: ${down} of ${size}`);
    assert.ok(logged >= underBytes && logged < size / 4, `the master sent ${logged} bytes: ${master.since(mark).join('\n')}`);
    assert.equal(after.cache!.fetched.objects - before.cache!.fetched.objects, under.length, 'objects fetched = chunks under the range');

    // The forms of a range, cold and warm, across chunk boundaries.
    const cases: Array<[string, number, number]> = [
      [`bytes=0-0`, 0, 0],
      [`bytes=0-99`, 0, 99],
      [`bytes=${MiB - 10}-${5 * MiB + 10}`, MiB - 10, 5 * MiB + 10],
      [`bytes=${size - 100}-${size + 5000}`, size - 100, size - 1],
      [`bytes=${7 * MiB}-`, 7 * MiB, size - 1],
      [`bytes=-4096`, size - 4096, size - 1],
      [`bytes=-${size + 10}`, 0, size - 1],
    ];
    for (const [range, s, e] of cases) {
      const res = await get(gw.url, path, { range });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers['content-range'], `bytes ${s}-${e}/${size}`, range);
      assert.equal(Number(res.headers['content-length']), e - s + 1, range);
      assert.ok(res.body.equals(big.subarray(s, e + 1)), `${range}: bytes differ`);
      assert.equal(res.headers.etag, `"${ids['big.bin'].id}"`, range);
    }
    for (const range of [`bytes=${size}-`, `bytes=${size + 1}-${size + 100}`, 'bytes=-0']) {
      const res = await get(gw.url, path, { range });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers['content-range'], `bytes */${size}`, range);
      assert.ok(!res.body.includes(big.subarray(0, 64)), 'no file bytes in a 416');
    }
    // If-Range: a matching ETag keeps the range, another one gets the whole file.
    const kept = await get(gw.url, path, { range: 'bytes=10-19', 'if-range': `"${ids['big.bin'].id}"` });
    assert.equal(kept.status, 206);
    assert.ok(kept.body.equals(big.subarray(10, 20)));
    const whole = await get(gw.url, '/site@1/small.txt', { range: 'bytes=0-1', 'if-range': '"something-else"' });
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(site.files['small.txt']));
    // HEAD with a range: the 206 headers, no body.
    const hr = await request(gw.url, path, { method: 'HEAD', headers: { range: 'bytes=100-199' } });
    assert.equal(hr.status, 206);
    assert.equal(hr.headers['content-range'], `bytes 100-199/${size}`);
    assert.equal(hr.body.length, 0);
  });

  it('lists directories: 301 without the slash, HTML by default, JSON on request; / lists trees and /NAME/ versions', async () => {
    const gw = await startGatewayProcess(master.url);
    const json = { accept: 'application/json' };

    const redirect = await get(gw.url, '/site@1/sub');
    assert.equal(redirect.status, 301);
    assert.equal(decodeURIComponent(String(redirect.headers.location)), '/site@1/sub/');
    const deep = await get(gw.url, '/site@1/sub/deep');
    assert.equal(deep.status, 301);
    assert.equal(decodeURIComponent(String(deep.headers.location)), '/site@1/sub/deep/');
    const treeRedirect = await get(gw.url, '/site');
    assert.equal(treeRedirect.status, 301);
    assert.equal(treeRedirect.headers.location, '/site/');

    // Root of a version, JSON: every entry with its type, size and id (content id for files) or target.
    const rootJ = await get(gw.url, '/site@1/', json);
    assert.equal(rootJ.status, 200);
    assert.match(String(rootJ.headers['content-type']), /^application\/json/);
    assert.equal(rootJ.headers['cache-control'], IMMUTABLE);
    const root = JSON.parse(rootJ.body.toString('utf8'));
    assert.equal(root.ref, 'site@1');
    assert.equal(root.path, '');
    assert.match(root.id, /^[0-9a-f]{64}$/);
    const byName = new Map<string, any>(root.entries.map((e: any) => [e.name, e]));
    const topFiles = Object.keys(site.files).filter((p) => !p.includes('/'));
    assert.deepEqual([...byName.keys()].sort(), [...topFiles, 'sub', 'link-to-dir', 'link-to-file', 'escape'].sort());
    for (const f of topFiles) {
      const e = byName.get(f);
      assert.deepEqual({ type: e.type, size: e.size, id: e.id }, { type: 'file', size: site.files[f].length, id: ids[f].id }, f);
    }
    assert.equal(byName.get('sub').type, 'dir');
    assert.match(byName.get('sub').id, /^[0-9a-f]{64}$/);
    assert.deepEqual([byName.get('link-to-dir').type, byName.get('link-to-dir').target], ['symlink', 'sub']);
    assert.deepEqual([byName.get('escape').type, byName.get('escape').target], ['symlink', '../../../../../../etc/passwd']);
    assert.equal(byName.get('link-to-dir').id, undefined, 'a symlink has a target, not an id');

    const subJ = JSON.parse((await get(gw.url, '/site@1/sub/', json)).body.toString('utf8'));
    assert.equal(subJ.path, 'sub');
    assert.equal(subJ.id, byName.get('sub').id);
    assert.deepEqual(subJ.entries.map((e: any) => `${e.type}:${e.name}`), ['file:data.json', 'dir:deep']);
    const deepJ = JSON.parse((await get(gw.url, '/site@1/sub/deep/', json)).body.toString('utf8'));
    assert.deepEqual(deepJ.entries.map((e: any) => [e.name, e.size, e.id]), [
      ['medium.bin', site.files['sub/deep/medium.bin'].length, ids['sub/deep/medium.bin'].id],
      ['nested.txt', site.files['sub/deep/nested.txt'].length, ids['sub/deep/nested.txt'].id],
    ]);

    // HTML by default: the names, escaped, with links that lead where they say.
    const subH = await get(gw.url, '/site@1/sub/');
    assert.equal(subH.status, 200);
    assert.match(String(subH.headers['content-type']), /^text\/html/);
    assert.match(String(subH.headers['content-security-policy']), /default-src 'none'/);
    assert.match(String(subH.headers.vary), /Accept/);
    const html = subH.body.toString('utf8');
    const hrefs = [...html.matchAll(/<a href="([^"]*)">([^<]*)<\/a>/g)].map((m) => [m[1], m[2]]);
    const links = new Map(hrefs.map(([h, t]) => [t, h]));
    assert.ok(links.has('..') && links.has('data.json') && links.has('deep/'), `links: ${JSON.stringify(hrefs)}`);
    assert.equal(decodeURIComponent(links.get('..')!), '/site@1/');
    for (const [href] of hrefs.filter(([, t]) => t === 'data.json' || t === 'deep/')) {
      const r = await get(gw.url, href);
      assert.equal(r.status, 200, href);
    }
    assert.ok((await get(gw.url, links.get('data.json')!)).body.equals(site.files['sub/data.json']));
    const rootH = (await get(gw.url, '/site@1/')).body.toString('utf8');
    assert.ok(rootH.includes('&lt;b&gt;x&amp;y&lt;b&gt; &quot;q&#39;.txt'), 'the HTML name is escaped');
    assert.ok(!rootH.includes(HTML_NAME), 'the raw HTML name never appears');
    const uniHref = [...rootH.matchAll(/<a href="([^"]*)">([^<]*)<\/a>/g)].find((m) => m[2] === UNICODE_NAME)?.[1];
    assert.ok(uniHref, 'the unicode name is listed as is');
    assert.ok((await get(gw.url, uniHref)).body.equals(site.files[UNICODE_NAME]), 'its link serves it');
    const htmlHref = [...rootH.matchAll(/<a href="([^"]*)">([^<]*)<\/a>/g)].find((m) => m[2].startsWith('&lt;b'))![1].replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
    assert.ok((await get(gw.url, htmlHref)).body.equals(site.files[HTML_NAME]), 'the escaped name\'s link serves it');

    // A listing's ETag is the tree id, per representation.
    const etag = String(subH.headers.etag);
    assert.equal((await get(gw.url, '/site@1/sub/', { 'if-none-match': etag })).status, 304);
    assert.notEqual(etag, String((await get(gw.url, '/site@1/sub/', json)).headers.etag), 'HTML and JSON differ in ETag');

    // The trees, and a tree's versions.
    const trees = JSON.parse((await get(gw.url, '/', json)).body.toString('utf8'));
    assert.ok(trees.trees.includes('site'), JSON.stringify(trees));
    const treesH = (await get(gw.url, '/')).body.toString('utf8');
    assert.ok(treesH.includes('<a href="/site/">site/</a>'), treesH);
    const versions = JSON.parse((await get(gw.url, '/site/', json)).body.toString('utf8'));
    assert.deepEqual(versions, { tree: 'site', versions: [2, 1] });
    const versionsH = (await get(gw.url, '/site/')).body.toString('utf8');
    for (const v of ['site@latest', 'site@2', 'site@1']) assert.ok(versionsH.includes(`<a href="/site@${v.split('@')[1]}/">${v}/</a>`), `${v} in ${versionsH}`);
    const latestRoot = JSON.parse((await get(gw.url, '/site@latest/', json)).body.toString('utf8'));
    assert.equal(latestRoot.ref, 'site@2');
    assert.ok(latestRoot.entries.some((e: any) => e.name === 'v2.txt'));
  });

  it('fetches each object once: a second read moves no data upstream, and a second gateway on the same cache fetches nothing', async () => {
    const cache = tempDir('elton-shared-cache-');
    const data = site.files['big2.bin'];
    const path = fileUrl('site@1', 'big2.bin');
    const a = await startGatewayProcess(master.url, { cache });
    const first = await get(a.url, path);
    assert.ok(first.body.equals(data));
    const s1 = await a.stats();
    assert.ok(s1.upstream.bytesDown >= data.length, `the first read fetched the file: ${JSON.stringify(s1.upstream)}`);
    await master.settle();
    const mark = master.mark();
    const second = await get(a.url, path);
    assert.ok(second.body.equals(data));
    const ranged = await get(a.url, path, { range: 'bytes=1000000-1999999' });
    assert.ok(ranged.body.equals(data.subarray(1000000, 2000000)));
    const s2 = await a.stats();
    await master.settle();
    assert.equal(s2.upstream.bytesDown, s1.upstream.bytesDown, 'no data upstream the second time');
    assert.equal(s2.upstream.requests, s1.upstream.requests, 'no request upstream the second time');
    assert.deepEqual(master.since(mark), [], 'the master saw nothing');
    const stopped = await a.stop();
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
    assert.match(stopped.stdout, /SIGTERM: stopped after \d+ requests; upstream \d+ requests, \d+ bytes down/);

    const b = await startGatewayProcess(master.url, { cache });
    const third = await get(b.url, path);
    assert.equal(third.status, 200);
    assert.ok(third.body.equals(data));
    const s3 = await b.stats();
    await master.settle();
    assert.equal(s3.upstream.bytesDown, 0, `the second gateway fetched no data: ${JSON.stringify(s3)}`);
    assert.equal(s3.cache!.fetched.objects, 0, JSON.stringify(s3.cache));
    assert.ok(s3.cache!.cached.objects >= ids['big2.bin'].chunks.length, `served from the cache: ${JSON.stringify(s3.cache)}`);
    assert.ok(s3.cache!.cached.bytes >= data.length, JSON.stringify(s3.cache));
    assert.deepEqual(master.since(mark).filter((l) => /\/v1\/objects/.test(l)), [], 'no object request reached the master');
  });

  it('coalesces 20 concurrent GETs of one cold multi-MiB file into about one upstream copy', async () => {
    const gw = await startGatewayProcess(master.url);
    const data = site.files['big.bin'];
    await master.settle();
    const mark = master.mark();
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: 20 }, () => get(gw.url, '/site@1/big.bin')));
    const ms = performance.now() - t0;
    for (const [i, r] of all.entries()) {
      assert.equal(r.status, 200, `request ${i}`);
      assert.ok(r.body.equals(data), `request ${i}: body differs`);
    }
    const s = await gw.stats();
    await master.settle();
    const objectLines = master.since(mark).filter((l) => /\/v1\/objects/.test(l));
    console.log(`      20 concurrent cold GETs of ${data.length} bytes in ${ms.toFixed(0)} ms: upstream ${s.upstream.bytesDown} bytes in ${s.upstream.requests} requests; loader ${JSON.stringify(s.loader)}; master object requests ${objectLines.length}`);
    assert.ok(s.upstream.bytesDown >= data.length, 'one copy came down');
    assert.ok(s.upstream.bytesDown < 1.5 * data.length, `about one copy upstream, not 20: ${s.upstream.bytesDown}`);
    assert.ok(masterOut(master.since(mark)) < 1.5 * data.length, 'the master agrees');
    assert.ok(s.loader.fetches <= 6, `few loader fetches: ${JSON.stringify(s.loader)}`);
    assert.ok(s.loader.coalesced >= 19, `the others waited on the first fetch: ${JSON.stringify(s.loader)}`);
    assert.equal(s.cache!.fetched.objects, ids['big.bin'].chunks.length + 1, 'each chunk (and the root tree) fetched once');
    assert.equal(s.bytesServed, 20 * data.length, 'every client got the whole file');
  });

  it('refuses paths that could leave the tree, symlinks, and methods other than GET and HEAD', async () => {
    const gw = await startGatewayProcess(master.url);
    const refused = [
      '/site@1/../../../../../../etc/passwd',
      '/site@1/sub/../../../etc/passwd',
      '/site@1/sub/../small.txt',
      '/site@1/./small.txt',
      '/site@1/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/site@1/%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
      '/site@1/sub/%2e%2e%2fsmall.txt',
      '/site@1/sub%2fdata.json',
      '/site@1/sub%2Fdeep%2Fnested.txt',
      '/site@1/small.txt%00',
      '/site@1/small.txt%00.png',
      '/site@1/%00',
      '/site@1/sub\\data.json',
      '/site@1/sub%5cdata.json',
      '/site@1/..\\..\\..\\etc\\passwd',
      '/site@1/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
      '/site@1/%252e%252e/%252e%252e/etc/passwd',
      '/site@1/%',
      '/site@1/%zz',
      '/site@1//etc/passwd',
      '//etc/passwd',
      '/etc/passwd',
      '/..%2f..%2f..%2fetc%2fpasswd',
      '/site@1/escape',
      '/site@1/escape/',
      '/site@1/link-to-dir',
      '/site@1/link-to-dir/',
      '/site@1/link-to-dir/data.json',
      '/site@1/link-to-dir/deep/nested.txt',
      '/site@1/link-to-file',
      '/site@1/small.txt/x',
    ];
    for (const path of refused) {
      const r = await request(gw.url, path);
      assert.ok(r.status >= 400 && r.status < 500, `${path}: ${r.status} ${r.body.toString().slice(0, 200)}`);
      assert.ok(!r.body.toString('latin1').includes('root:'), `${path} served /etc/passwd`);
      assertJsonErrorBody(r, r.status, path);
    }
    for (const p of ['/site@1/link-to-dir/data.json', '/site@1/link-to-dir', '/site@1/link-to-file', '/site@1/escape']) {
      assert.equal((await request(gw.url, p)).status, 403, `${p}: symlinks are not followed`);
    }
    assert.equal((await request(gw.url, '/site@1/sub%2fdata.json')).status, 400, 'an encoded slash never joins segments');

    // Raw request lines on a socket: no client-side normalization at all.
    const raw = [
      'GET /../../../../etc/passwd HTTP/1.1',
      'GET /site@1/../../../../etc/passwd HTTP/1.1',
      'GET /site@1/./../../etc/passwd HTTP/1.1',
      'GET /site@1/%2e%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1',
      'GET /site@1/sub/..%5c..%5c..%5cetc%5cpasswd HTTP/1.1',
      'GET /site@1/escape HTTP/1.1',
      'GET http://127.0.0.1/etc/passwd HTTP/1.1',
      'GET file:///etc/passwd HTTP/1.1',
      'GET * HTTP/1.1',
      'GET etc/passwd HTTP/1.1',
      'GET /site@1/link-to-dir/../../../../etc/passwd HTTP/1.1',
      'GET /site@1/small.txt\0/../../../etc/passwd HTTP/1.1',
      'GET /site@1/sub/\\..\\..\\..\\etc\\passwd HTTP/1.1',
    ];
    for (const line of raw) {
      const r = await rawRequest(gw.url, line);
      assert.ok(r.status >= 400 && r.status < 500, `${line}: ${r.status}\n${r.head}`);
      assert.ok(!r.body.includes('root:'), `${line} served /etc/passwd`);
    }

    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await request(gw.url, '/site@1/small.txt', { method });
      assertJsonErrorBody(r, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD', method);
    }
    // Still healthy afterwards.
    const good = await get(gw.url, '/site@1/sub/data.json');
    assert.equal(good.status, 200);
    assert.ok(good.body.equals(site.files['sub/data.json']));
    const s = await gw.stats();
    assert.equal(s.status['200'], 1, `nothing else got a 200: ${JSON.stringify(s.status)}`);
    assert.ok(!gw.output().includes('internal error') && !/ 500 /.test(gw.lines.join('\n')), gw.lines.join('\n'));
  });

  it('a corrupt cached object gives 502 naming it, drops the pack, and the next GET fetches it again', async () => {
    const cache = tempDir('elton-corrupt-cache-');
    const blob = site.files['blob.bin'];
    const medium = site.files['sub/deep/medium.bin'];
    const blobId = ids['blob.bin'].chunks[0].id;
    const mediumChunk = ids['sub/deep/medium.bin'].chunks[1].id;
    const a = await startGatewayProcess(master.url, { cache });
    assert.ok((await get(a.url, '/site@1/blob.bin')).body.equals(blob));
    assert.ok((await get(a.url, '/site@1/sub/deep/medium.bin')).body.equals(medium));
    assert.equal((await a.stop()).code, 0);

    const blobAt = findInPacks(cache, blobId);
    const mediumAt = findInPacks(cache, mediumChunk);
    assert.ok(blobAt && mediumAt, 'both objects are in the cache');
    corruptInPack(blobAt);
    corruptInPack(mediumAt);

    const b = await startGatewayProcess(master.url, { cache });
    const bad1 = await get(b.url, '/site@1/blob.bin');
    const m1 = assertJsonErrorBody(bad1, 502, 'corrupt blob.bin');
    assert.ok(m1.includes(blobId), `the error names the object: ${m1}`);
    assert.ok(!bad1.body.includes(blob.subarray(0, 32)), 'no file bytes in the error');
    const bad2 = await get(b.url, '/site@1/sub/deep/medium.bin');
    const m2 = assertJsonErrorBody(bad2, 502, 'corrupt medium.bin');
    assert.ok(m2.includes(mediumChunk), `the error names the chunk: ${m2}`);
    assert.ok(!existsSync(blobAt.tar), 'the corrupt pack was dropped');
    assert.ok(!existsSync(mediumAt.tar), 'the corrupt pack was dropped');
    assert.ok(!existsSync(blobAt.tar.replace(/\.tar$/, '.idx')), 'with its index');

    const s1 = await b.stats();
    assert.equal(s1.status['502'], 2, JSON.stringify(s1.status));
    assert.equal(s1.status['200'] ?? 0, 0, 'no bad object was served as 200');
    // Log lines reach us through the process's stdout, which may lag behind the responses.
    await waitFor(() => b.lines.filter((l) => / 502 /.test(l)).length >= 2, 5000, 20);
    const logged = b.lines.filter((l) => / 502 /.test(l));
    assert.equal(logged.length, 2, b.lines.join('\n'));
    assert.ok(logged[0].includes('/site@1/blob.bin') && logged[0].includes(`E_CORRUPT object ${blobId}`), logged[0]);
    assert.ok(logged[1].includes(`E_CORRUPT object ${mediumChunk}`) && /dropped/.test(logged[1]), logged[1]);

    // The packs are gone, so the next reads fetch the objects again and serve them right.
    const good1 = await get(b.url, '/site@1/blob.bin');
    assert.equal(good1.status, 200);
    assert.ok(good1.body.equals(blob), 'right bytes after the re-fetch');
    const c = ids['sub/deep/medium.bin'].chunks[1];
    const good2 = await get(b.url, '/site@1/sub/deep/medium.bin', { range: `bytes=${c.offset}-${c.offset + c.size - 1}` });
    assert.equal(good2.status, 206);
    assert.ok(good2.body.equals(medium.subarray(c.offset, c.offset + c.size)));
    assert.ok((await get(b.url, '/site@1/sub/deep/medium.bin')).body.equals(medium));
    const s2 = await b.stats();
    assert.ok(s2.upstream.bytesDown - s1.upstream.bytesDown >= blob.length + c.size, `fetched again: ${JSON.stringify(s2.upstream)}`);
    assert.ok(findInPacks(cache, blobId) && findInPacks(cache, mediumChunk), 'good copies are cached again');
  });

  it('a corrupt object past the first streamed window cuts the connection: never a complete 200', async () => {
    // A file bigger than the 16 MiB stream window, whose corrupt chunk is in the second window.
    const ws = join(tempDir(), 'huge');
    const data = pseudoRandom(18 * MiB, 9);
    writeTree(ws, { 'huge.bin': data });
    ok(await eltonAsync(ws, ['init', '--remote', master.url, '--tree', 'huge']));
    ok(await eltonAsync(ws, ['commit', '-m', 'huge']));
    const chunks = expectedContentId(data).chunks;
    const late = chunks.find((c) => c.offset > 17 * MiB)!;
    const cache = tempDir('elton-corrupt-cache-');
    const a = await startGatewayProcess(master.url, { cache });
    assert.ok((await get(a.url, '/huge@1/huge.bin')).body.equals(data));
    await a.stop();
    corruptInPack(findInPacks(cache, late.id)!);
    const b = await startGatewayProcess(master.url, { cache });
    // A keep-alive connection: a response cut short must be cut, not left hanging as if more were coming.
    const agent = new http.Agent({ keepAlive: true });
    let outcome: string;
    try {
      const r = await Promise.race([
        get(b.url, '/huge@1/huge.bin', {}, agent),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('hung: neither completed nor cut within 15 s')), 15000)),
      ]);
      outcome = `complete response ${r.status} of ${r.body.length} bytes`;
      assert.ok(r.status !== 200 || !r.body.equals(data), 'a corrupt file must not arrive complete');
      assert.notEqual(r.status, 200, outcome);
    } catch (err) {
      outcome = `cut: ${(err as Error).message}`;
    } finally {
      agent.destroy();
    }
    console.log(`      a corrupt chunk at ${late.offset} of ${data.length} bytes: ${outcome}`);
    assert.match(outcome, /^cut: (?!hung)|^complete response 5/, outcome);
    const line = await (async () => { for (let i = 0; i < 50 && !b.lines.some((l) => /huge\.bin/.test(l)); i++) await new Promise((r) => setTimeout(r, 20)); return b.lines.find((l) => /huge\.bin/.test(l)); })();
    assert.ok(line && line.includes(late.id), `the log names the object: ${line}`);
    const again = await get(b.url, '/huge@1/huge.bin');
    assert.equal(again.status, 200);
    assert.ok(again.body.equals(data), 'fetched again and served right');
  });

  it('serves 100 concurrent keep-alive clients doing 20 GETs each without an error', async function () {
    const gw = await startGatewayProcess(master.url);
    const big = site.files['big.bin'];
    const small: Array<[string, Buffer]> = ['small.txt', 'blob.bin', UNICODE_NAME, 'sub/data.json', 'sub/deep/nested.txt', HTML_NAME, 'page.html']
      .map((p) => [fileUrl('site@1', p), site.files[p]]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    const latencies: number[] = [];
    let errors = 0;
    let reused = 0;
    const failures: string[] = [];
    let seed = 12345;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const plan = Array.from({ length: 100 }, () => Array.from({ length: 20 }, (_, j) => {
      if (j % 2 === 0) {
        const [path, expect] = small[rnd(small.length)];
        return { path, range: undefined as string | undefined, expect };
      }
      const start = rnd(big.length - 70000);
      const len = 1 + rnd(65536);
      return { path: '/site@1/big.bin', range: `bytes=${start}-${start + len - 1}`, expect: big.subarray(start, start + len) };
    }));
    const oneRequest = (path: string, range?: string) => new Promise<{ status: number; body: Buffer; reused: boolean }>((resolve, reject) => {
      const u = new URL(gw.url);
      const req = http.get({ host: u.hostname, port: u.port, path, agent, headers: range ? { range } : {} }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts), reused: req.reusedSocket }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    const t0 = performance.now();
    await Promise.all(plan.map(async (steps, c) => {
      for (const [i, step] of steps.entries()) {
        const s = performance.now();
        try {
          const r = await oneRequest(step.path, step.range);
          latencies.push(performance.now() - s);
          if (r.reused) reused++;
          if (r.status !== (step.range ? 206 : 200) || !r.body.equals(step.expect)) {
            errors++;
            if (failures.length < 5) failures.push(`client ${c} step ${i} ${step.path} ${step.range ?? ''}: ${r.status}, ${r.body.length} bytes`);
          }
        } catch (err) {
          errors++;
          if (failures.length < 5) failures.push(`client ${c} step ${i}: ${(err as Error).message}`);
        }
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    agent.destroy();
    latencies.sort((x, y) => x - y);
    const total = plan.length * plan[0].length;
    console.log(`      ${total} requests from 100 clients in ${seconds.toFixed(2)} s: ${(total / seconds).toFixed(0)} req/s; latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; ${reused} on reused sockets`);
    assert.equal(errors, 0, failures.join('\n'));
    assert.equal(latencies.length, total);
    assert.ok(reused > total / 2, `keep-alive connections were reused: ${reused} of ${total}`);
    const s = await gw.stats();
    assert.equal((s.status['200'] ?? 0) + (s.status['206'] ?? 0), total, JSON.stringify(s.status));
    assert.ok(s.upstream.bytesDown < 2 * big.length, `each object fetched about once under load: ${JSON.stringify(s.upstream)}`);
  });

  it('answers unknown trees, versions and paths with 404 and a JSON error body; bad refs with 400', async () => {
    const gw = await startGatewayProcess(master.url);
    for (const path of ['/nope@1/x.txt', '/nope@1/', '/nope@latest/', '/nope/', '/site@99/', '/site@99/small.txt', '/site@1/nope.txt', '/site@1/sub/nope/', '/site@1/sub/deep/nested.txt/more']) {
      const r = await get(gw.url, path);
      assertJsonErrorBody(r, 404, path);
      assert.equal(r.headers['cache-control'], 'no-store', `${path}: errors are not cached`);
    }
    for (const path of ['/site@abc/', '/site@0/small.txt', '/@1/small.txt', '/site@1@2/', '/-/nope', '/site@-1/']) {
      const r = await get(gw.url, path);
      assertJsonErrorBody(r, 400, path);
    }
    const ok200 = await get(gw.url, '/site@1/small.txt');
    assert.equal(ok200.status, 200, 'still serving');
  });

  it('exits 2 with E_USAGE when the port is taken, and 3 with a hint about --remote outside a workspace', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await eltonAsync(tempDir(), ['serve', '--remote', master.url, '--listen', `127.0.0.1:${port}`, '--json']);
      const e = assertJsonError(r, 'E_USAGE', 2);
      assert.ok(e.message.includes(String(port)), e.message);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
    const outside = tempDir('elton-outside-');
    const r = await eltonAsync(outside, ['serve', '--json', '--listen', '127.0.0.1:0']);
    const e = assertJsonError(r, 'E_NOT_WORKSPACE', 3);
    assert.match(e.hint!, /--remote/);
    assert.deepEqual(readdirSync(outside), [], 'nothing was created');
  });

  it('serves a workspace\'s embedded store given its path, and prints the listening event and final stats with --json', async () => {
    const ws = join(tempDir(), 'local');
    const files = { 'a.txt': Buffer.from('embedded\n'), 'd/e.bin': pseudoRandom(300 * 1024, 31) };
    writeTree(ws, files);
    ok(await eltonAsync(ws, ['init', '--tree', 'local']));
    ok(await eltonAsync(ws, ['commit', '-m', 'local']));
    const gw = await startGatewayProcess(ws, { extraArgs: ['--json'] });
    const r = await get(gw.url, '/local@1/d/e.bin');
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(files['d/e.bin']));
    assert.equal(r.headers.etag, `"${expectedContentId(files['d/e.bin']).id}"`);
    assert.equal((await get(gw.url, '/local@latest/a.txt')).body.toString(), 'embedded\n');
    const s = await gw.stats();
    assert.equal(s.cache, null, 'a local store has no user cache');
    const stopped = await gw.stop();
    assert.equal(stopped.code, 0, stopped.stderr);
    const firstLine = stopped.stdout.slice(0, stopped.stdout.indexOf('\n'));
    const event = JSON.parse(firstLine);
    assert.equal(event.event, 'listening');
    assert.equal(event.url, gw.url);
    assert.match(event.remote, /^file:\/\/.*\.elton\/store$/);
    const final = JSON.parse(stopped.stdout.slice(firstLine.length + 1));
    assert.equal(final.stopped, 'SIGTERM');
    assert.equal(final.stats.requests, 3);
    assert.deepEqual(final.stats.status, { 200: 3 });
    assert.ok(final.stats.bytesServed >= files['d/e.bin'].length);
  });
});
