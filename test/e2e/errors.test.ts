// Every command's errors: exit codes, the --json error shape, the text form, and never a stack trace.

import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binPath, elton, pseudoRandom, tempDir, writeTree, type RunResult } from '../helpers.js';
import { assertJsonError, assertNoStack, assertTextError, checkedHistory, describeRun, ok } from './util.js';

/** Both forms of one failing command: --json on stdout, and error:/hint: on stderr. */
function expectError(cwd: string, args: string[], code: string, exitCode: number, messageIncludes?: string, text = true) {
  const j = assertJsonError(elton(cwd, [...args, '--json']), code, exitCode);
  if (messageIncludes) assert.ok(j.message.includes(messageIncludes), `"${j.message}" lacks "${messageIncludes}"`);
  if (text) assertTextError(elton(cwd, args), exitCode, messageIncludes);
  return j;
}

/** The --json form only (the text form of the same error is checked once elsewhere, to keep the suite fast). */
const expectJsonError = (cwd: string, args: string[], code: string, exitCode: number, messageIncludes?: string) =>
  expectError(cwd, args, code, exitCode, messageIncludes, false);

describe('e2e: errors', function () {
  this.timeout(120000);

  describe('outside a workspace', function () {
    let outside: string;
    before(function () { outside = tempDir('elton-outside-'); });

    const commands: string[][] = [
      ['status'], ['commit', '-m', 'x'], ['log'], ['ls', '@1'], ['cat', '@1:a.txt'], ['diff', '@1'], ['checkout', '@latest', 'docs'],
    ];
    for (const args of commands) {
      it(`\`elton ${args.join(' ')}\` exits 3 with E_NOT_WORKSPACE and a hint`, function () {
        const j = expectError(outside, args, 'E_NOT_WORKSPACE', 3);
        assert.ok(j.message.includes(outside), j.message);
        assert.match(j.hint!, /elton init|elton clone/);
        assert.deepEqual(readdirSync(outside), [], 'nothing was created');
      });
    }
  });

  describe('in a workspace', function () {
    let ws: string;
    before(function () {
      ws = join(tempDir(), 'errs');
      writeTree(ws, { 'a.txt': 'a\n', 'dir/b.txt': 'b\n' });
      ok(elton(ws, ['init']));
      ok(elton(ws, ['commit', '--json']));
    });

    for (const ref of ['foo', 'foo@0', '@x', 'bad name@1', '@1.5']) {
      it(`malformed ref "${ref}" is E_BAD_REF, exit 2, for checkout, ls, diff and cat`, function () {
        expectError(ws, ['checkout', ref], 'E_BAD_REF', 2, ref);
        for (const args of [['ls', ref], ['diff', '@1', ref], ['cat', `${ref}:a.txt`]]) {
          const j = expectJsonError(ws, args, 'E_BAD_REF', 2, ref);
          assert.match(j.hint!, /NAME@V/);
        }
      });
    }

    it('a ref with :PATH where none is expected is E_BAD_REF', function () {
      expectJsonError(ws, ['checkout', '@1:a.txt'], 'E_BAD_REF', 2);
      expectJsonError(ws, ['ls', '@1:a.txt'], 'E_BAD_REF', 2);
    });

    it('cat without a path is a usage error (exit 2)', function () {
      expectError(ws, ['cat', '@1'], 'E_USAGE', 2);
      expectJsonError(ws, ['cat', '@1:'], 'E_USAGE', 2);
    });

    it('a missing version is E_NOT_FOUND, exit 4', function () {
      for (const args of [['ls', '@2'], ['cat', '@7:a.txt'], ['diff', '@1', '@5'], ['checkout', 'othertree@1'], ['checkout', 'othertree@latest']]) {
        expectJsonError(ws, args, 'E_NOT_FOUND', 4);
      }
      const j = expectError(ws, ['checkout', '@99'], 'E_NOT_FOUND', 4, 'errs@99');
      assert.match(j.hint!, /elton log/);
    });

    it('`cat @1:nope` is E_NOT_FOUND, exit 4', function () {
      expectError(ws, ['cat', '@1:nope'], 'E_NOT_FOUND', 4, 'nope');
    });

    it('`ls @1 nope` is E_NOT_FOUND, exit 4, with a hint', function () {
      expectError(ws, ['ls', '@1', 'nope'], 'E_NOT_FOUND', 4, 'nope');
    });

    it('cat of a directory is a usage error', function () {
      expectError(ws, ['cat', '@1:dir'], 'E_USAGE', 2, 'dir');
    });

    it('`init` twice is E_EXISTS, exit 10, and keeps the workspace', function () {
      const config = readFileSync(join(ws, '.elton', 'config.json'), 'utf8');
      expectError(ws, ['init'], 'E_EXISTS', 10);
      expectJsonError(ws, ['init', '--tree', 'other'], 'E_EXISTS', 10);
      expectJsonError(join(ws, '..'), ['init', 'errs'], 'E_EXISTS', 10);
      assert.equal(readFileSync(join(ws, '.elton', 'config.json'), 'utf8'), config);
      assert.equal(checkedHistory(ok(elton(ws, ['log', '--json']))).length, 1);
    });

    it('an invalid tree name for init is a usage error', function () {
      expectError(tempDir(), ['init', '--tree', '-bad name'], 'E_USAGE', 2);
    });

    it('clone into a non-empty directory is E_EXISTS, exit 10, and leaves it alone', function () {
      const dst = tempDir();
      writeFileSync(join(dst, 'mine.txt'), 'mine');
      expectError(tempDir(), ['clone', ws, 'errs@1', dst], 'E_EXISTS', 10);
      assert.deepEqual(readdirSync(dst), ['mine.txt']);
    });

    it('clone of a missing store, version or tree is E_NOT_FOUND and creates nothing', function () {
      const parent = tempDir();
      expectError(parent, ['clone', join(parent, 'no-such-store'), 'x@1', 'dst'], 'E_NOT_FOUND', 4);
      expectJsonError(parent, ['clone', `file://${join(parent, 'no-such-store')}`, 'x@1', 'dst'], 'E_NOT_FOUND', 4);
      expectJsonError(parent, ['clone', ws, 'errs@9', 'dst'], 'E_NOT_FOUND', 4);
      expectJsonError(parent, ['clone', ws, 'nosuch@latest', 'dst'], 'E_NOT_FOUND', 4);
      expectJsonError(parent, ['clone', ws, 'errs@x', 'dst'], 'E_BAD_REF', 2);
      assert.deepEqual(readdirSync(parent), [], 'no directory left behind');
    });

    it('an unsupported remote scheme is a usage error', function () {
      expectError(tempDir(), ['clone', 's3://bucket/store', 'x@1', 'dst'], 'E_USAGE', 2);
      expectJsonError(tempDir(), ['init', '--remote', 'ftp://example.com/store'], 'E_USAGE', 2);
      expectJsonError(tempDir(), ['init', '--remote', 'https://example.com/store'], 'E_USAGE', 2);
    });

    it('unknown flags are usage errors (exit 2) for every command, with no stack trace', function () {
      expectError(ws, ['commit', '--no-such-flag'], 'E_USAGE', 2, 'no-such-flag');
      for (const args of [['status'], ['log'], ['ls', '@1'], ['cat', '@1:a.txt'], ['diff', '@1'], ['checkout', '@1'], ['init'], ['clone', ws, 'errs@1', 'x'], ['push'], ['master', '--data', 'x']]) {
        expectJsonError(ws, [...args, '--no-such-flag'], 'E_USAGE', 2, 'no-such-flag');
      }
      assert.ok(!existsSync(join(ws, 'x')), 'the clone did not run');
    });

    it('a missing required argument and a bad -n are usage errors', function () {
      expectError(ws, ['checkout'], 'E_USAGE', 2);
      expectJsonError(ws, ['cat'], 'E_USAGE', 2);
      expectJsonError(ws, ['clone', ws], 'E_USAGE', 2);
      expectJsonError(ws, ['log', '-n', '0'], 'E_USAGE', 2);
      expectJsonError(ws, ['log', '-n', 'many'], 'E_USAGE', 2);
    });

    it('an unknown command exits 2 without a stack trace', function () {
      const r = elton(ws, ['frobnicate']);
      assert.equal(r.code, 2, describeRun(r));
      assertNoStack(r);
      assert.match(r.stderr, /frobnicate/);
    });

    it('a damaged workspace config is reported without a stack trace', function () {
      const broken = join(tempDir(), 'broken');
      ok(elton(tempDir(), ['init', broken]));
      writeFileSync(join(broken, '.elton', 'config.json'), '{ not json');
      const r = elton(broken, ['status', '--json']);
      assert.notEqual(r.code, 0);
      assert.notEqual(r.json?.error?.code, 'E_INTERNAL', describeRun(r));
      assertNoStack(r);
      assertNoStack(elton(broken, ['status']));
    });
  });

  describe('a file that cannot be read', function () {
    // As root, chmod 000 does not stop reads (CAP_DAC_OVERRIDE). So when the tests run as root,
    // elton runs as the unprivileged user "nobody" (uid/gid 65534) in a workspace it owns,
    // and the unreadable file is root's with mode 000. As a normal user, chmod 000 is enough.
    const asRoot = process.getuid?.() === 0;
    const NOBODY = 65534;

    function run(cwd: string, args: string[]): RunResult {
      const r = spawnSync(process.execPath, [binPath, ...args], {
        cwd,
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', HOME: cwd },
        maxBuffer: 64 * 1024 * 1024,
        ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
      });
      const out: RunResult = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
      if (args.includes('--json')) { try { out.json = JSON.parse(r.stdout); } catch { /* checked by the caller */ } }
      return out;
    }

    function setup(files: Record<string, string | Buffer>): string {
      const base = tempDir();
      chmodSync(base, 0o755);
      const ws = join(base, 'unreadable');
      writeTree(ws, { ...files, 'locked/secret.bin': 'top secret\n' });
      if (asRoot) {
        const chownAll = spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, ws]);
        assert.equal(chownAll.status, 0, String(chownAll.stderr));
        chownSync(join(ws, 'locked/secret.bin'), 0, 0);
      }
      assert.equal(run(ws, ['init', '--json']).code, 0);
      assert.equal(run(ws, ['commit', '--json']).code, 0);
      writeFileSync(join(ws, 'locked/secret.bin'), 'changed\n');
      chmodSync(join(ws, 'locked/secret.bin'), 0o000);
      return ws;
    }

    function expectReadFailure(ws: string) {
      const r = run(ws, ['commit', '-m', 'should fail', '--json']);
      const j = assertJsonError(r, 'E_IO', 8);
      assert.ok(j.message.includes('locked/secret.bin'), `the file is named: ${j.message}`);
      assert.match(j.hint!, /permission|eltonignore/);
      const text = run(ws, ['commit']);
      assertTextError(text, 8, 'locked/secret.bin');
      const log = checkedHistory(run(ws, ['log', '--json']));
      assert.equal(log.length, 1, 'no new version');
      assert.ok(!existsSync(join(ws, '.elton', 'lock')), 'the lock was released');
      const tmp = join(ws, '.elton', 'store', 'tmp');
      assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], [], 'no half-written pack left behind');
      // Once readable again, the commit goes through.
      chmodSync(join(ws, 'locked/secret.bin'), 0o644);
      const after = run(ws, ['commit', '--json']);
      assert.equal(after.code, 0, describeRun(after));
      assert.equal(after.json.version, 2);
    }

    it(`fails the commit naming the file, exit 8, no new version${asRoot ? ' (run as uid 65534)' : ''}`, function () {
      expectReadFailure(setup({ 'a.txt': 'a\n', 'b.txt': 'b\n' }));
    });

    it('also when the tree is big enough to be hashed in worker threads', function () {
      const files: Record<string, Buffer> = {};
      for (let i = 0; i < 8; i++) files[`big/f${i}.bin`] = pseudoRandom(4 * 1024 * 1024, 500 + i);
      const ws = setup(files);
      // Changed as well, so the re-commit reads more than 24 MiB.
      for (let i = 0; i < 8; i++) writeFileSync(join(ws, `big/f${i}.bin`), pseudoRandom(4 * 1024 * 1024, 600 + i));
      expectReadFailure(ws);
    });
  });
});
