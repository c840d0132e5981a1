// `elton mount` against a real master and a real FUSE mount: ordinary tools (find, ls, cat, cmp,
// dd) read the mount from child processes, and the master's request log says what moved.
//
// Every test mounts from a directory outside any workspace, with --remote, and gets a fresh user
// cache (test/support/hooks.ts), so nothing is local until the mount fetches it. Reads that must
// reach the mount process (not the kernel's page cache) use O_DIRECT (`dd iflag=direct`); the
// mount's own counters (stats.bytesRead) prove they did.

import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, chmodSync, existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binPath, elton, pseudoRandom, tempDir, writeTree } from '../helpers.js';
import { assertJsonError, assertNoStack, assertTextError, eltonAsync, ok, sleep } from '../e2e/util.js';
import { startMasterProcess, type MasterProcess } from './master-util.js';

const MiB = 1024 * 1024;
const BIG_SIZE = 8 * MiB;
const OTHER_SIZE = 3 * MiB + 12345;

// ---------------------------------------------------------------------------------------------
// Running tools and reading /proc

interface ToolResult { code: number | null; signal: NodeJS.Signals | null; stdout: Buffer; stderr: string }

/** Runs a program asynchronously (the test's event loop stays free), collecting its output. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, LC_ALL: 'C', QUOTING_STYLE: 'literal', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: err }));
  });
}

async function runOk(cmd: string, args: string[]): Promise<Buffer> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** The mount points of this machine, from /proc/self/mountinfo (field 5, octal escapes undone). */
async function mountPoints(): Promise<Set<string>> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return new Set(text.split('\n').filter(Boolean).map((l) => l.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))));
}
const isMounted = async (dir: string) => (await mountPoints()).has(dir);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------
// The master's request log

const objectLines = (lines: string[]) => lines.filter((l) => / POST \/v1\/objects /.test(l));
const treeLines = (lines: string[]) => lines.filter((l) => / POST \/v1\/trees-closure /.test(l));
const outBytes = (lines: string[]) => lines.reduce((n, l) => n + Number(/ out=(\d+)/.exec(l)?.[1] ?? NaN), 0);

// ---------------------------------------------------------------------------------------------
// Mount processes

interface MountReport {
  ref: string; requested: string; mountpoint: string; stopped: string;
  stats: { lookups: number; reads: number; bytesRead: number; errors: number };
  loader: { fetches: number; coalesced: number; memoryHits: number };
  transfer: { requests: number; bytesUp: number; bytesDown: number };
  cache: { fetched: { objects: number; bytes: number }; cached: { objects: number; bytes: number } };
}

interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

interface MountProc {
  dir: string;
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  hasExited(): boolean;
}

const live = new Set<MountProc>();

/** Starts `elton mount REF DIR --remote URL` from a directory outside any workspace; resolves once the mount is in /proc/self/mountinfo. */
async function startMount(url: string, ref: string, dir: string, opts: { json?: boolean } = { json: true }): Promise<MountProc & { first: string }> {
  const args = [binPath, 'mount', ref, dir, '--remote', url, ...(opts.json === false ? [] : ['--json'])];
  const proc = spawn(process.execPath, args, { cwd: tempDir('elton-mount-cwd-'), env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let done = false;
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<Exit>((resolve) => proc.on('close', (code, signal) => { done = true; resolve({ code, signal, stdout, stderr }); }));
  const m: MountProc = { dir, proc, stdout: () => stdout, stderr: () => stderr, exited, hasExited: () => done };
  live.add(m);
  const deadline = Date.now() + 20000;
  while (!(stdout.includes('\n') && (await isMounted(dir)))) {
    if (done) throw new Error(`elton mount exited before mounting:\n${stdout}\n${stderr}`);
    if (Date.now() > deadline) throw new Error(`elton mount did not mount within 20 s:\n${stdout}\n${stderr}`);
    await sleep(20);
  }
  return { ...m, first: stdout.slice(0, stdout.indexOf('\n')) };
}

/** Waits for a mount process to end, at most `ms`. */
async function exitWithin(m: MountProc, ms: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([m.exited, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); })]);
  clearTimeout(timer);
  assert.ok(r, `the mount process on ${m.dir} did not exit within ${ms} ms:\n${m.stdout()}\n${m.stderr()}`);
  live.delete(m);
  return r;
}

/** The two JSON documents of `elton mount --json`: the mounted event line and the final report. */
function parseJsonRun(stdout: string): { event: any; report: MountReport } {
  const nl = stdout.indexOf('\n');
  assert.ok(nl > 0, `no event line: ${stdout}`);
  const event = JSON.parse(stdout.slice(0, nl));
  const report = JSON.parse(stdout.slice(nl + 1)) as MountReport;
  return { event, report };
}

/** Stops a --json mount with SIGTERM and returns its final report (asserting a clean exit). */
async function stopMount(m: MountProc): Promise<MountReport> {
  m.proc.kill('SIGTERM');
  const e = await exitWithin(m, 10000);
  assert.equal(e.code, 0, `mount exit: ${e.code} ${e.signal}\n${e.stdout}\n${e.stderr}`);
  assertNoStack({ code: 0, stdout: e.stdout, stderr: e.stderr });
  const { report } = parseJsonRun(e.stdout);
  assert.equal(report.stopped, 'SIGTERM');
  assert.equal(report.stats.errors, 0, `mount errors: ${e.stderr}`);
  return report;
}

/** Whatever a test left mounted is stopped, and as a last resort detached with fusermount -uz. */
async function cleanupMounts(): Promise<void> {
  for (const m of [...live]) {
    if (!m.hasExited()) m.proc.kill('SIGTERM');
    const t = setTimeout(() => { if (!m.hasExited()) m.proc.kill('SIGKILL'); }, 5000);
    await m.exited;
    clearTimeout(t);
    if (await isMounted(m.dir)) await run('fusermount', ['-uz', m.dir]);
    live.delete(m);
  }
}

// ---------------------------------------------------------------------------------------------
// The tree

interface Expected { type: 'f' | 'd' | 'l'; mode: number; size: number; target?: string; data?: Buffer }

/** `find -printf` lines of what matters: path, type, size (files and links), permission bits, link target. */
async function findListing(root: string): Promise<string[]> {
  const out = await runOk('find', [root, '-mindepth', '1', '-printf', '%P\t%y\t%s\t%m\t%l\n']);
  return out.toString('utf8').split('\n').filter(Boolean)
    .filter((l) => !l.startsWith('.elton'))
    .map((l) => {
      const [p, y, s, m, t] = l.split('\t');
      return [p, y, y === 'd' ? '-' : s, m, t].join('\t');
    })
    .sort();
}

function expectedListing(tree: Map<string, Expected>): string[] {
  return [...tree].map(([p, e]) => [p, e.type, e.type === 'd' ? '-' : String(e.size), e.mode.toString(8), e.target ?? ''].join('\t')).sort();
}

function permString(e: Expected): string {
  const bits = e.type === 'l' ? 0o777 : e.mode;
  const rwx = (b: number) => `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${b & 1 ? 'x' : '-'}`;
  return `${e.type === 'f' ? '-' : e.type}${rwx(bits >> 6)}${rwx((bits >> 3) & 7)}${rwx(bits & 7)}`;
}

/** Parses `ls -lRn --time-style=+%s` into path -> {perm, size, target}. */
function parseLsLR(text: string, root: string): Map<string, { perm: string; size: number; target?: string }> {
  const out = new Map<string, { perm: string; size: number; target?: string }>();
  let dir: string | undefined;
  for (const line of text.split('\n')) {
    if (line.endsWith(':') && line.startsWith(root)) {
      dir = line.slice(root.length, -1).replace(/^\//, '');
      continue;
    }
    const m = /^([-dlrwxsStT]{10})\S*\s+\d+\s+\d+\s+\d+\s+(\d+)\s+\d+\s(.*)$/.exec(line);
    if (!m || dir === undefined) continue;
    let name = m[3];
    let target: string | undefined;
    if (m[1][0] === 'l') [name, target] = name.split(' -> ');
    out.set(dir ? `${dir}/${name}` : name, { perm: m[1], size: Number(m[2]), target });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** Runs `elton ARGS` in a private mount namespace where `prepare` (shell, as root) has changed /dev: FUSE missing or broken. */
function eltonWithoutFuse(cwd: string, prepare: string, args: string[]) {
  const fakeDev = join(tempDir('elton-fakedev-'), 'dev');
  const script = `${prepare.replaceAll('FAKEDEV', fakeDev)} && exec "$0" "$@"`;
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    // --propagation private (unshare's default, said aloud): nothing done inside leaks to this machine's /dev.
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, process.execPath, binPath, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('integration: elton mount where FUSE is unavailable', function () {
  this.timeout(60000);
  let store: string;

  before(function () {
    // A private mount namespace needs root and unshare(1); elsewhere there is nothing to fake.
    if (process.getuid?.() !== 0 || !existsSync('/usr/bin/unshare')) {
      console.log('      skipped: needs root and unshare(1) to hide /dev/fuse in a private mount namespace');
      this.skip();
    }
    store = join(tempDir(), 'ws');
    writeTree(store, { 'a.txt': 'a\n' });
    ok(elton(store, ['init']));
    ok(elton(store, ['commit', '-m', 'one']));
  });

  it('no /dev/fuse: exit 14, E_UNAVAILABLE, with a hint naming the alternatives', async () => {
    const mnt = tempDir('elton-mnt-');
    const prepare = 'mkdir -p FAKEDEV && cp -a /dev/null /dev/zero /dev/urandom /dev/random FAKEDEV/ && mount --bind FAKEDEV /dev';
    const r = await eltonWithoutFuse(store, prepare, ['mount', '@1', mnt, '--json']);
    const e = assertJsonError({ ...r, json: JSON.parse(r.stdout) }, 'E_UNAVAILABLE', 14);
    assert.match(e.message, /\/dev\/fuse does not exist/);
    assert.match(e.hint ?? '', /elton serve/);
    const text = await eltonWithoutFuse(store, prepare, ['mount', '@1', mnt]);
    assertTextError(text, 14, 'FUSE is not available');
  });

  it('a /dev/fuse that cannot mount: exit 14, E_UNAVAILABLE, and nothing is mounted', async () => {
    const mnt = tempDir('elton-mnt-');
    const r = await eltonWithoutFuse(store, 'mount --bind /dev/null /dev/fuse', ['mount', '@1', mnt, '--json']);
    const e = assertJsonError({ ...r, json: JSON.parse(r.stdout) }, 'E_UNAVAILABLE', 14);
    assert.match(e.message, /cannot mount/);
    assert.ok(!(await isMounted(mnt)), 'nothing left mounted');
  });
});

describe('integration: elton mount (FUSE)', function () {
  this.timeout(60000);
  let master: MasterProcess;
  let ws: string;
  let tree: Map<string, Expected>;
  let big: Buffer;
  let other: Buffer;
  const NAME = 'photos';

  before(async function () {
    this.timeout(60000);
    if (!existsSync('/dev/fuse')) {
      console.log('      skipped: no /dev/fuse on this machine (the test above checks the error instead)');
      this.skip();
    }
    master = await startMasterProcess();
    ws = join(tempDir(), NAME);
    big = pseudoRandom(BIG_SIZE, 7);
    other = pseudoRandom(OTHER_SIZE, 11);
    writeTree(ws, {
      'README.md': '# photos\n\nA tree to mount.\n',
      'docs/guide.txt': 'read the guide\n'.repeat(40),
      'docs/empty.txt': '',
      'docs/deep/nested/note.txt': 'deep down\n',
      'src/run.sh': '#!/bin/sh\necho run\n',
      'src/secret.txt': 'not for everyone\n',
      'data/big.bin': big,
      'data/other.bin': other,
      'with space/file name.txt': 'spaces are fine\n',
      'empty/': null,
    });
    chmodSync(join(ws, 'src/run.sh'), 0o755);
    chmodSync(join(ws, 'src/secret.txt'), 0o600);
    symlinkSync('../README.md', join(ws, 'docs/readme-link'));
    symlinkSync('nowhere/at all', join(ws, 'dangling'));
    ok(elton(ws, ['init', '--remote', master.url]));
    const c = ok(elton(ws, ['commit', '-m', 'one', '--json'])).json;
    assert.equal(c.version, 1);
    // What the mount must show: read back from the workspace itself.
    tree = new Map();
    for (const line of await findListing(ws)) {
      const [p, y, s, m, t] = line.split('\t');
      const e: Expected = { type: y as Expected['type'], mode: parseInt(m, 8), size: y === 'd' ? 0 : Number(s), target: y === 'l' ? t : undefined };
      if (y === 'f') e.data = await fsp.readFile(join(ws, p));
      tree.set(p, e);
    }
    assert.equal(tree.get('data/big.bin')!.size, BIG_SIZE);
    assert.equal(tree.get('dangling')!.target, 'nowhere/at all');
  });

  afterEach(cleanupMounts);
  after(async () => {
    await cleanupMounts();
    await master?.stop();
  });

  const mountDir = () => tempDir('elton-mnt-');

  it('find and ls -lR list the exact tree, and listing fetches tree objects only', async () => {
    const mnt = mountDir();
    const m = await startMount(master.url, `${NAME}@latest`, mnt);
    await master.settle();
    const mark = master.mark();

    assert.deepEqual(await findListing(mnt), expectedListing(tree));

    const ls = parseLsLR((await runOk('ls', ['-lRn', '--time-style=+%s', mnt])).toString('utf8'), mnt);
    assert.deepEqual([...ls.keys()].sort(), [...tree.keys()].sort(), 'ls -lR names');
    for (const [p, e] of tree) {
      const l = ls.get(p)!;
      assert.equal(l.perm, permString(e), `${p}: ls mode`);
      if (e.type !== 'd') assert.equal(l.size, e.size, `${p}: ls size`);
      if (e.type === 'l') assert.equal(l.target, e.target, `${p}: ls link target`);
    }
    assert.equal((await runOk('readlink', [join(mnt, 'docs/readme-link')])).toString(), '../README.md\n');
    assert.equal((await runOk('readlink', [join(mnt, 'dangling')])).toString(), 'nowhere/at all\n');
    assert.deepEqual(await fsp.readdir(join(mnt, 'empty')), []);
    assert.equal((await fsp.stat(join(mnt, 'data/big.bin'))).size, BIG_SIZE);

    await master.settle();
    const during = master.since(mark);
    // Trees only: a few KiB a request (the root tree may come by /v1/objects), never a chunk of the big files.
    assert.ok(treeLines(during).length >= 1, `listing should have fetched trees:\n${during.join('\n')}`);
    assert.ok(outBytes(during) < 64 * 1024, `listing moved ${outBytes(during)} bytes:\n${during.join('\n')}`);
    for (const l of objectLines(during)) assert.ok(outBytes([l]) < 16 * 1024, `a chunk-sized response during listing: ${l}`);

    const report = await stopMount(m);
    const dirs = [...tree.values()].filter((e) => e.type === 'd').length;
    // Exactly the trees: one per directory (they all differ) and the root; no chunk at all.
    assert.equal(report.cache.fetched.objects, dirs + 1, JSON.stringify(report.cache));
    assert.ok(report.cache.fetched.bytes < 64 * 1024, JSON.stringify(report.cache));
    assert.equal(report.stats.reads, 0);
  });

  it('cat and cmp of every file match the originals', async () => {
    const mnt = mountDir();
    const m = await startMount(master.url, `${NAME}@latest`, mnt);
    const files = [...tree].filter(([, e]) => e.type === 'f');
    assert.ok(files.length >= 8);
    for (const [p, e] of files) {
      const got = (await runOk('cat', [join(mnt, p)]));
      assert.equal(got.length, e.size, `${p}: cat length`);
      assert.ok(got.equals(e.data!), `${p}: cat content`);
      await runOk('cmp', [join(mnt, p), join(ws, p)]);
    }
    // Through the symlink, as a tool would follow it.
    assert.equal((await runOk('cat', [join(mnt, 'docs/readme-link')])).toString(), tree.get('README.md')!.data!.toString());
    // And cmp would notice a difference: the check can fail.
    const differ = await run('cmp', [join(mnt, 'data/big.bin'), join(mnt, 'data/other.bin')]);
    assert.equal(differ.code, 1, differ.stderr);
    const report = await stopMount(m);
    assert.ok(report.stats.bytesRead >= BIG_SIZE + OTHER_SIZE, JSON.stringify(report.stats));
  });

  it('reading a byte range of an unread file fetches only the chunks under it', async () => {
    const mnt = mountDir();
    const m = await startMount(master.url, `${NAME}@latest`, mnt);
    await master.settle();
    const checks: Array<{ what: string; bytes: number }> = [];

    // 4 KiB at 5 MiB + 12 KiB, through the page cache (with the kernel's read-ahead).
    let mark = master.mark();
    const skip = (5 * MiB + 12 * 1024) / 4096;
    const got = await runOk('dd', [`if=${join(mnt, 'data/big.bin')}`, 'bs=4096', `skip=${skip}`, 'count=1', 'status=none']);
    assert.ok(got.equals(big.subarray(skip * 4096, skip * 4096 + 4096)), 'dd range bytes');
    await master.settle();
    checks.push({ what: 'dd 4 KiB', bytes: outBytes(objectLines(master.since(mark))) });

    // 100 bytes at an odd offset near the end (and past it: a short read), from another process.
    mark = master.mark();
    const pos = BIG_SIZE - 100;
    const node = await runOk(process.execPath, ['-e', `
      const fs = require('fs'); const fd = fs.openSync(process.argv[1], 'r'); const b = Buffer.alloc(4096);
      const n = fs.readSync(fd, b, 0, 4096, ${pos}); process.stdout.write(b.subarray(0, n));`, join(mnt, 'data/big.bin')]);
    assert.ok(node.equals(big.subarray(pos)), 'the tail read gives the last 100 bytes');
    await master.settle();
    checks.push({ what: 'tail 100 B', bytes: outBytes(objectLines(master.since(mark))) });

    for (const c of checks) {
      assert.ok(c.bytes > 0, `${c.what}: fetched nothing?`);
      assert.ok(c.bytes < 2 * MiB, `${c.what}: moved ${c.bytes} bytes of an ${BIG_SIZE}-byte file`);
    }
    const report = await stopMount(m);
    assert.ok(report.cache.fetched.bytes < 3 * MiB, `fetched ${JSON.stringify(report.cache)} for two small ranges`);
    assert.ok(report.stats.bytesRead < 512 * 1024, JSON.stringify(report.stats));
  });

  it('fetches a file once: two concurrent readers, then a re-read that bypasses the page cache, move one copy', async () => {
    const mnt = mountDir();
    const m = await startMount(master.url, `${NAME}@latest`, mnt);
    const file = join(mnt, 'data/big.bin');
    await master.settle();
    let mark = master.mark();
    // Two concurrent cold readers: one through the page cache, one with O_DIRECT straight to the mount process.
    const [a, b] = await Promise.all([
      runOk('cat', [file]),
      runOk('dd', [`if=${file}`, 'bs=1M', 'iflag=direct', 'status=none']),
    ]);
    assert.ok(a.equals(big), 'cat content');
    assert.ok(b.equals(big), 'dd iflag=direct content');
    await master.settle();
    const first = outBytes(objectLines(master.since(mark)));
    assert.ok(first >= BIG_SIZE && first < 1.1 * BIG_SIZE, `two concurrent readers moved ${first} bytes for ${BIG_SIZE}`);

    // Read it again, twice and concurrently, past the page cache: the mount serves it, the master sends nothing.
    mark = master.mark();
    const again = await Promise.all([1, 2].map(() => runOk('dd', [`if=${file}`, 'bs=256k', 'iflag=direct', 'status=none'])));
    for (const r of again) assert.ok(r.equals(big), 're-read content');
    await master.settle();
    assert.deepEqual(objectLines(master.since(mark)), [], 'a re-read fetched objects again');

    const report = await stopMount(m);
    assert.ok(report.cache.fetched.bytes >= BIG_SIZE && report.cache.fetched.bytes < 1.05 * BIG_SIZE, JSON.stringify(report.cache));
    // The O_DIRECT reads (three copies) really reached the mount process.
    assert.ok(report.stats.bytesRead >= 3 * BIG_SIZE, JSON.stringify(report.stats));
  });

  it('8 concurrent readers of an unread file all get the right bytes, and the master sends about one copy', async () => {
    const mnt = mountDir();
    const m = await startMount(master.url, `${NAME}@latest`, mnt);
    await master.settle();

    // 8 cats through the page cache.
    let mark = master.mark();
    const cats = await Promise.all(Array.from({ length: 8 }, () => runOk('cat', [join(mnt, 'data/big.bin')])));
    cats.forEach((c, i) => assert.ok(c.equals(big), `cat #${i}: ${c.length} bytes, sha ${sha(c)}`));
    await master.settle();
    const catBytes = outBytes(objectLines(master.since(mark)));
    assert.ok(catBytes >= BIG_SIZE && catBytes < 1.5 * BIG_SIZE, `8 cats moved ${catBytes} bytes for ${BIG_SIZE}`);

    // 8 O_DIRECT readers of another unread file: every read reaches the mount process at once.
    mark = master.mark();
    const dds = await Promise.all(Array.from({ length: 8 }, (_, i) => runOk('dd', [`if=${join(mnt, 'data/other.bin')}`, `bs=${64 << (i % 4)}k`, 'iflag=direct', 'status=none'])));
    dds.forEach((c, i) => assert.ok(c.equals(other), `dd #${i}: ${c.length} bytes`));
    await master.settle();
    const ddBytes = outBytes(objectLines(master.since(mark)));
    assert.ok(ddBytes >= OTHER_SIZE && ddBytes < 1.5 * OTHER_SIZE, `8 direct readers moved ${ddBytes} bytes for ${OTHER_SIZE}`);

    const report = await stopMount(m);
    assert.ok(report.cache.fetched.bytes < 1.1 * (BIG_SIZE + OTHER_SIZE), JSON.stringify(report.cache));
    assert.ok(report.stats.bytesRead >= 8 * OTHER_SIZE, JSON.stringify(report.stats));
  });

  it('is read-only: writing, creating, deleting, renaming and mkdir fail with EROFS and change nothing', async () => {
    const mnt = mountDir();
    const m = await startMount(master.url, `${NAME}@latest`, mnt);
    const before = await findListing(mnt);
    await master.settle();
    const mark = master.mark();

    const script = `
      const fs = require('fs'); const m = process.argv[1]; const r = {};
      const t = (k, f) => { try { f(); r[k] = 'ok'; } catch (e) { r[k] = e.code; } };
      t('create', () => fs.writeFileSync(m + '/new.txt', 'x'));
      t('createInDir', () => fs.writeFileSync(m + '/docs/new.txt', 'x'));
      t('overwrite', () => fs.writeFileSync(m + '/README.md', 'changed'));
      t('append', () => fs.appendFileSync(m + '/README.md', 'more'));
      t('openReadWrite', () => fs.closeSync(fs.openSync(m + '/README.md', 'r+')));
      t('truncate', () => fs.truncateSync(m + '/data/big.bin', 0));
      t('unlink', () => fs.unlinkSync(m + '/README.md'));
      t('unlinkSymlink', () => fs.unlinkSync(m + '/dangling'));
      t('rmdir', () => fs.rmdirSync(m + '/empty'));
      t('rmRecursive', () => fs.rmSync(m + '/docs', { recursive: true }));
      t('mkdir', () => fs.mkdirSync(m + '/newdir'));
      t('rename', () => fs.renameSync(m + '/README.md', m + '/README2.md'));
      t('symlink', () => fs.symlinkSync('README.md', m + '/link2'));
      t('hardlink', () => fs.linkSync(m + '/README.md', m + '/hard'));
      t('chmod', () => fs.chmodSync(m + '/src/run.sh', 0o600));
      t('utimes', () => fs.utimesSync(m + '/README.md', 1, 1));
      process.stdout.write(JSON.stringify(r));`;
    const results = JSON.parse((await runOk(process.execPath, ['-e', script, mnt])).toString()) as Record<string, string>;
    assert.equal(Object.keys(results).length, 16);
    for (const [op, code] of Object.entries(results)) assert.ok(code === 'EROFS' || code === 'EPERM', `${op}: ${code}`);

    // And with ordinary tools.
    for (const [cmd, args] of [
      ['sh', ['-c', `echo x > '${mnt}/new.txt'`]],
      ['touch', [join(mnt, 'README.md')]],
      ['rm', ['-f', join(mnt, 'docs/guide.txt')]],
      ['rm', ['-rf', join(mnt, 'with space')]],
      ['mkdir', [join(mnt, 'made')]],
      ['mv', [join(mnt, 'src/run.sh'), join(mnt, 'src/run2.sh')]],
      ['cp', [join(ws, 'README.md'), join(mnt, 'copy.md')]],
    ] as Array<[string, string[]]>) {
      const r = await run(cmd, args);
      assert.notEqual(r.code, 0, `${cmd} ${args.join(' ')} succeeded on a read-only mount`);
      assert.match(r.stderr, /Read-only file system|Operation not permitted/, `${cmd}: ${r.stderr}`);
    }

    assert.deepEqual(await findListing(mnt), before, 'the listing changed');
    await runOk('cmp', [join(mnt, 'README.md'), join(ws, 'README.md')]);
    await master.settle();
    const during = master.since(mark);
    assert.deepEqual(during.filter((l) => !/ POST \/v1\/(objects|trees-closure) /.test(l)), [], `unexpected requests:\n${during.join('\n')}`);
    const report = await stopMount(m);
    assert.equal(report.stats.errors, 0);
    // Nothing reached the master either: the tree still has one version.
    const log = ok(elton(ws, ['log', '--json'])).json;
    assert.deepEqual(log.versions.map((v: { version: number }) => v.version), [1]);
  });

  it('pins NAME@latest to the version it resolved: a later commit does not change the mount', async () => {
    const pws = join(tempDir(), 'pinned');
    writeTree(pws, { 'a.txt': 'first\n', 'd/b.txt': 'bee\n' });
    ok(elton(pws, ['init', '--remote', master.url]));
    ok(elton(pws, ['commit', '-m', 'v1']));

    const mnt = mountDir();
    const m = await startMount(master.url, 'pinned@latest', mnt, { json: false });
    assert.equal(m.first, `mounted pinned@1 (resolved from pinned@latest) at ${mnt}; stop with Ctrl-C or \`elton unmount ${mnt}\``);

    writeTree(pws, { 'a.txt': 'second version, longer\n', 'd/c.txt': 'sea\n', 'new.txt': 'new\n' });
    await fsp.rm(join(pws, 'd/b.txt'));
    const c2 = ok(elton(pws, ['commit', '-m', 'v2', '--json'])).json;
    assert.equal(c2.version, 2);

    // Nothing under the mount was looked at before the commit: what follows is the mount's answer, not the kernel's cache.
    assert.equal((await runOk('cat', [join(mnt, 'a.txt')])).toString(), 'first\n');
    assert.deepEqual((await fsp.readdir(join(mnt, 'd'))).sort(), ['b.txt']);
    assert.deepEqual((await fsp.readdir(mnt)).sort(), ['a.txt', 'd']);
    assert.equal((await run('cat', [join(mnt, 'new.txt')])).code, 1);

    // A new mount of @latest does see version 2: the commit did happen.
    const mnt2 = mountDir();
    const m2 = await startMount(master.url, 'pinned@latest', mnt2);
    assert.deepEqual(JSON.parse(m2.first), { event: 'mounted', ref: 'pinned@2', requested: 'pinned@latest', mountpoint: mnt2, remote: master.url, root: c2.root });
    assert.equal((await runOk('cat', [join(mnt2, 'a.txt')])).toString(), 'second version, longer\n');
    assert.deepEqual((await fsp.readdir(join(mnt2, 'd'))).sort(), ['c.txt']);
    await stopMount(m2);

    m.proc.kill('SIGINT');
    const e = await exitWithin(m, 10000);
    assert.equal(e.code, 0, e.stderr);
  });

  describe('clean unmount', () => {
    async function stopBy(how: 'SIGINT' | 'SIGTERM' | 'unmount'): Promise<void> {
      const mnt = mountDir();
      const m = await startMount(master.url, `${NAME}@latest`, mnt, { json: how !== 'SIGINT' });
      // Serving: the tree is there, and a file reads.
      assert.ok((await fsp.readdir(mnt)).length > 0);
      assert.equal((await runOk('cat', [join(mnt, 'README.md')])).toString(), tree.get('README.md')!.data!.toString());
      const t0 = Date.now();
      if (how === 'unmount') {
        const u = ok(await eltonAsync(tempDir(), ['unmount', mnt]), 'elton unmount');
        assert.equal(u.stdout, `unmounted ${mnt}\n`);
      } else m.proc.kill(how);
      const e = await exitWithin(m, 5000);
      assert.equal(e.code, 0, `exit ${e.code} ${e.signal}: ${e.stderr}`);
      assert.ok(Date.now() - t0 < 5000);
      assertNoStack({ code: 0, stdout: e.stdout, stderr: e.stderr });
      const stopped = how === 'unmount' ? 'unmounted' : how;
      if (how === 'SIGINT') {
        assert.match(e.stdout, new RegExp(`^mounted ${NAME}@1 \\(resolved from ${NAME}@latest\\) at ${mnt}; `));
        assert.match(e.stdout, new RegExp(`\\nSIGINT: unmounted ${mnt}; 1 reads \\(`));
      } else {
        const { event, report } = parseJsonRun(e.stdout);
        assert.equal(event.event, 'mounted');
        assert.equal(report.stopped, stopped);
        assert.equal(report.mountpoint, mnt);
        assert.equal(report.ref, `${NAME}@1`);
        assert.equal(report.stats.reads, 1);
        assert.equal(report.stats.bytesRead, tree.get('README.md')!.size);
      }
      // Back to an ordinary, empty directory.
      assert.equal(await isMounted(mnt), false, `${mnt} is still in /proc/self/mountinfo`);
      assert.ok((await fsp.lstat(mnt)).isDirectory());
      assert.deepEqual(await fsp.readdir(mnt), []);
      await fsp.writeFile(join(mnt, 'probe'), 'x');
      await fsp.rm(join(mnt, 'probe'));
    }

    it('by SIGINT', () => stopBy('SIGINT'));
    it('by SIGTERM', () => stopBy('SIGTERM'));
    it('by `elton unmount` (the mount process exits by itself)', () => stopBy('unmount'));

    it('`elton unmount` refuses while a file is open; --lazy detaches it and the mount process still exits', async () => {
      const mnt = mountDir();
      const m = await startMount(master.url, `${NAME}@latest`, mnt);
      const holder = spawn('sh', ['-c', `exec sleep 30 < '${join(mnt, 'README.md')}'`], { stdio: 'ignore' });
      const holderGone = new Promise((r) => holder.on('close', r));
      try {
        await sleep(300);
        const busy = await eltonAsync(tempDir(), ['unmount', mnt, '--json']);
        const err = assertJsonError(busy, 'E_USAGE', 2);
        assert.match(err.message, /busy/);
        assert.equal(await isMounted(mnt), true, 'a refused unmount must leave the mount');
        assert.equal((await runOk('cat', [join(mnt, 'src/run.sh')])).toString(), tree.get('src/run.sh')!.data!.toString());
        ok(await eltonAsync(tempDir(), ['unmount', '--lazy', mnt]), 'elton unmount --lazy');
        const e = await exitWithin(m, 5000);
        assert.equal(e.code, 0, e.stderr);
        assert.equal(parseJsonRun(e.stdout).report.stopped, 'unmounted');
        assert.equal(await isMounted(mnt), false);
        assert.deepEqual(await fsp.readdir(mnt), []);
      } finally {
        holder.kill('SIGKILL');
        await holderGone;
      }
    });
  });

  describe('bad input', () => {
    const mountArgs = (ref: string, dir: string) => ['mount', ref, dir, '--remote', master.url, '--json'];

    it('a missing mount point: exit 4, E_NOT_FOUND', async () => {
      const dir = join(tempDir(), 'no', 'such');
      const r = await eltonAsync(tempDir(), mountArgs(`${NAME}@latest`, dir));
      const e = assertJsonError(r, 'E_NOT_FOUND', 4);
      assert.ok(e.message.includes(dir), e.message);
      // And in text: error and hint on stderr, no stack.
      const t = await eltonAsync(tempDir(), ['mount', `${NAME}@latest`, dir, '--remote', master.url]);
      assertTextError(t, 4, 'not found');
    });

    it('a mount point that is not empty: exit 2, E_USAGE "not empty"; a file: exit 2', async () => {
      const full = tempDir();
      writeFileSync(join(full, 'keep.txt'), 'mine\n');
      const e = assertJsonError(await eltonAsync(tempDir(), mountArgs(`${NAME}@latest`, full)), 'E_USAGE', 2);
      assert.match(e.message, /not empty/);
      assert.equal(await isMounted(full), false);
      assert.deepEqual(await fsp.readdir(full), ['keep.txt']);

      const file = join(tempDir(), 'a-file');
      writeFileSync(file, 'x');
      const f = assertJsonError(await eltonAsync(tempDir(), mountArgs(`${NAME}@latest`, file)), 'E_USAGE', 2);
      assert.match(f.message, /not a directory/);
    });

    it('a busy mount point (already mounted): exit 2, "busy", and the first mount keeps serving', async () => {
      const mnt = mountDir();
      const m = await startMount(master.url, `${NAME}@latest`, mnt);
      const e = assertJsonError(await eltonAsync(tempDir(), mountArgs(`${NAME}@latest`, mnt)), 'E_USAGE', 2);
      assert.match(e.message, /busy/);
      await runOk('cmp', [join(mnt, 'docs/guide.txt'), join(ws, 'docs/guide.txt')]);
      await stopMount(m);
    });

    it('`elton unmount` of a directory with nothing mounted: exit 4', async () => {
      const dir = mountDir();
      const e = assertJsonError(await eltonAsync(tempDir(), ['unmount', dir, '--json']), 'E_NOT_FOUND', 4);
      assert.ok(e.message.includes(dir), e.message);
      assertJsonError(await eltonAsync(tempDir(), ['unmount', join(dir, 'missing'), '--json']), 'E_NOT_FOUND', 4);
    });

    it('an unknown version or tree: exit 4, and nothing is mounted', async () => {
      const dir = mountDir();
      const v = assertJsonError(await eltonAsync(tempDir(), mountArgs(`${NAME}@99`, dir)), 'E_NOT_FOUND', 4);
      assert.match(v.message, /99/);
      assertJsonError(await eltonAsync(tempDir(), mountArgs('nosuchtree@latest', dir)), 'E_NOT_FOUND', 4);
      assert.equal(await isMounted(dir), false);
      assert.deepEqual(await fsp.readdir(dir), []);
    });
  });

  it('a second mount process on the same user cache reads the big file with no upstream data', async () => {
    const mnt1 = mountDir();
    const m1 = await startMount(master.url, `${NAME}@latest`, mnt1);
    await runOk('cmp', [join(mnt1, 'data/big.bin'), join(ws, 'data/big.bin')]);
    const r1 = await stopMount(m1);
    assert.ok(r1.cache.fetched.bytes >= BIG_SIZE, JSON.stringify(r1.cache));

    await master.settle();
    const mark = master.mark();
    const mnt2 = mountDir();
    const m2 = await startMount(master.url, `${NAME}@latest`, mnt2);
    const got = await runOk('dd', [`if=${join(mnt2, 'data/big.bin')}`, 'bs=1M', 'iflag=direct', 'status=none']);
    assert.ok(got.equals(big), 'second mount content');
    await runOk('cmp', [join(mnt2, 'data/big.bin'), join(ws, 'data/big.bin')]);
    await master.settle();
    const during = master.since(mark);
    assert.deepEqual([...objectLines(during), ...treeLines(during)], [], `the second mount fetched data:\n${during.join('\n')}`);
    assert.ok(outBytes(during) < 16 * 1024, during.join('\n'));
    const r2 = await stopMount(m2);
    assert.equal(r2.cache.fetched.objects, 0, JSON.stringify(r2.cache));
    assert.equal(r2.cache.fetched.bytes, 0);
    assert.ok(r2.cache.cached.bytes >= BIG_SIZE, JSON.stringify(r2.cache));
    assert.ok(r2.stats.bytesRead >= BIG_SIZE, JSON.stringify(r2.stats));
  });
});
