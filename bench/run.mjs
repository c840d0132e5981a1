// Benchmark harness: times elton against tar/cp limits, restic, git and rclone on the same workloads and prints a Markdown table.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_BENCH_DIR, EDIT_BYTES, applyEdit, ensureWorkload } from './workload.mjs';
import { benchMaster } from './master.mjs';
import { benchS3 } from './s3.mjs';
import { benchLazy } from './lazy.mjs';
import { benchBackup } from './backup.mjs';
import { benchFederation } from './federation.mjs';
import { benchEncryption } from './encryption.mjs';
import { benchEncryptionWan } from './encryption-wan.mjs';
import { desAvailable } from './support.mjs';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const ELTON = path.resolve(process.env.ELTON_BIN || path.join(REPO_ROOT, 'bin', 'run.js')); // override only for testing the harness
const MiB = 1024 * 1024;
const TIMEOUT_MS = 60 * 60 * 1000;

// ---------------------------------------------------------------- options

const USAGE = `usage: node bench/run.mjs [--only small|large|master|s3|lazy|backup|federation|encryption|encryption-wan] [--skip elton,restic,git,git-large,rclone,limit,master,s3,lazy,backup,federation,encryption,encryption-wan] [--skip-elton]
                         [--reps N] [--keep] [--no-verify]
  master: elton push/clone against \`elton master\`, direct and through an emulated WAN, next to rclone to s3rver (small tree)
  s3: elton, restic and rclone push to and check out from s3rver, direct and through the emulated WAN (small tree)
  lazy: a 64 MiB file read three times through the WAN (clone, mount, serve), one file of the small tree cold, the gateway under 100 clients
  backup: elton backup from a master to s3rver through the WAN (first, 1% changed, no change), next to restic copy and rclone sync (small tree)
  federation: masters A and B joined by the WAN; a tree homed on A committed on A, read by two nodes on B, changed on B, read again on A (2,000 files: the small tree at scale ×0.1)
  encryption: cold commit and clone + checkout on the embedded store, plain and encrypted (key file) side by side; stored size; unlock cost of a passphrase
              (the small tree at scale ×0.1, the large tree at ×0.2; at least 5 reps; about a minute)
  encryption-wan: a plain and an --encrypted master side by side, each reached through its own WAN proxy at 100 ms RTT, 80 Mbit/s: cold commit,
              commit after 1% of the files changed, cold clone (2,000 files: the small tree at scale ×0.1; at least 5 reps; about two minutes)
env: BENCH_DIR (default ${DEFAULT_BENCH_DIR}), BENCH_SCALE (default 1: ~200 MB small tree, ~1.3 GB large tree),
     ELTON_BIN (default <repo>/bin/run.js), BENCH_WAN_RTT_MS (250; encryption-wan 100), BENCH_WAN_MBIT (200; encryption-wan 80), BENCH_RCLONE_FILES (1000), BENCH_LOAD_SECONDS (10)`;

function parseArgs(argv) {
  const opts = { only: null, skip: new Set(), reps: 1, keep: false, verify: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a.startsWith('--only')) opts.only = value();
    else if (a.startsWith('--skip-elton')) opts.skip.add('elton');
    else if (a.startsWith('--skip')) value().split(',').filter(Boolean).forEach((s) => opts.skip.add(s.trim()));
    else if (a.startsWith('--reps')) opts.reps = Math.max(1, Number.parseInt(value(), 10) || 1);
    else if (a === '--keep') opts.keep = true;
    else if (a === '--no-verify') opts.verify = false;
    else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (opts.only && !['small', 'large', 'master', 's3', 'lazy', 'backup', 'federation', 'encryption', 'encryption-wan'].includes(opts.only)) throw new Error(`--only must be small, large, master, s3, lazy, backup, federation, encryption or encryption-wan\n${USAGE}`);
  return opts;
}

const opts = (() => {
  try {
    return parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
})();
const runs = (section) => !opts.skip.has(section) && (!opts.only || opts.only === section);

// s3rver (master, s3 and backup sections) pages listings with DES-encrypted tokens, which Node's OpenSSL 3
// only has with the legacy provider: run the harness again with it, rather than fail mid-way.
if ((runs('master') || runs('s3') || runs('backup')) && !desAvailable()) {
  const again = spawn(process.execPath, ['--openssl-legacy-provider', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => again.kill(signal));
  const [code, signal] = await once(again, 'exit');
  process.exit(code ?? (signal ? 1 : 0));
}

const BENCH_DIR = path.resolve(process.env.BENCH_DIR || DEFAULT_BENCH_DIR);
const SCALE = Number(process.env.BENCH_SCALE || 1);
const SCRATCH = path.join(BENCH_DIR, 'scratch');
const FAST_REPS = Math.max(3, opts.reps); // cheap operations (unchanged checks) are always repeated
const log = (msg) => process.stderr.write(`${msg}\n`);

/** Child environment without AWS_CA_BUNDLE (it confuses restic/rclone) and with deterministic git settings. */
const BASE_ENV = (() => {
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  return env;
})();

// ---------------------------------------------------------------- process helpers

/** Runs argv (array) or a bash pipeline (string) synchronously and returns {code, stdout, stderr, seconds}. */
function run(cmd, { cwd, env = BASE_ENV, timeout = TIMEOUT_MS } = {}) {
  const [file, args] = typeof cmd === 'string' ? ['bash', ['-o', 'pipefail', '-c', cmd]] : [cmd[0], cmd.slice(1)];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, { cwd, env, timeout, maxBuffer: 512 * MiB, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { code: r.error ? -1 : r.status, stdout: r.stdout || '', stderr: (r.error ? `${r.error.message}\n` : '') + (r.stderr || ''), seconds };
}

/** Like run() but throws with the command's stderr when it fails. */
function must(cmd, o) {
  const r = run(cmd, o);
  if (r.code !== 0) {
    const shown = typeof cmd === 'string' ? cmd : cmd.map((a) => path.basename(a)).join(' ');
    const err = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
    throw new Error(`\`${shown.slice(0, 80)}\` exited ${r.code}: ${err.slice(0, 300)}`);
  }
  return r;
}

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
const rm = (p) => fs.rmSync(p, { recursive: true, force: true });
const duBytes = (p) => Number(must(['du', '-sb', p]).stdout.split(/\s/)[0]);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const have = (bin) => run(['bash', '-c', `command -v ${bin}`]).code === 0;
const firstLine = (s) => s.trim().split('\n')[0];

/** Copies a workload into a fresh scratch directory (untimed) and flushes dirty pages so later timings are not disturbed. */
function freshCopy(src, dest) {
  rm(dest);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  must(['cp', '-a', src, dest]);
  must(['sync']);
}

/** Reads every byte of a tree so measurements run with a warm page cache. */
function warm(dir) {
  must(`tar -cf - -C ${q(dir)} . | cat > /dev/null`);
}

/** Fails unless `got` has the same files and bytes as `want` (ignoring tool metadata dirs). */
function verifyTree(want, got) {
  if (!opts.verify) return '';
  const r = run(['diff', '-rq', '-x', '.elton', '-x', '.git', want, got]);
  // git (and others) do not record empty directories: ignore "Only in" lines for those
  const isEmptyDir = (p) => fs.statSync(p).isDirectory() && !run(['find', p, '-type', 'f']).stdout.trim();
  const real = r.stdout.split('\n').filter((l) => {
    const m = /^Only in (.*): (.*)$/.exec(l);
    return l && !(m && isEmptyDir(path.join(m[1], m[2])));
  });
  if (r.code > 1 || real.length) throw new Error(`checked-out tree differs: ${(real[0] || r.stderr).slice(0, 200)}`);
  return 'verified';
}

/** Parses the single JSON object a `--json` command prints (tolerating log lines around it). */
function parseJson(stdout) {
  const text = stdout.trim();
  try {
    return JSON.parse(text);
  } catch {
    const line = text.split('\n').reverse().find((l) => l.trim().startsWith('{'));
    if (!line) throw new Error(`no JSON in output: ${text.slice(0, 200)}`);
    return JSON.parse(line);
  }
}

// ---------------------------------------------------------------- measurement

const rows = [];

/**
 * Times one operation `reps` times (median) and records a row.
 * step.setup(i) runs untimed before each rep; step.run(i) returns a run() result; step.parse(r, i) returns {bytes, note}.
 */
function measure(wl, tool, op, step) {
  const row = { workload: wl.name, tool, op, seconds: null, times: [], bytes: null, note: '', whole: !!step.whole };
  try {
    const reps = step.reps ?? opts.reps;
    for (let i = 0; i < reps; i++) {
      step.setup?.(i);
      must(['sync']);
      const r = step.run(i);
      if (r.code !== 0) throw new Error((r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').slice(-3).join(' | ').slice(0, 300));
      row.times.push(r.seconds);
      Object.assign(row, step.parse?.(r, i) ?? {});
    }
    row.seconds = median(row.times);
  } catch (e) {
    row.error = e.message;
  }
  rows.push(row);
  log(`  ${wl.name.padEnd(5)} ${tool.padEnd(6)} ${op.padEnd(34)} ${row.error ? `ERROR ${row.error}` : `${fmtSec(row.seconds)} s${row.bytes != null ? `  ${fmtBytes(row.bytes)}` : ''}  ${row.note}`}`);
  return row;
}

/** Records a row for a step that could not run because an earlier one failed. */
function skipped(wl, tool, op, why) {
  rows.push({ workload: wl.name, tool, op, seconds: null, times: [], bytes: null, note: '', error: why });
}

// ---------------------------------------------------------------- tools

function benchLimits(wl, dir) {
  const dest = path.join(dir, 'cp');
  measure(wl, 'limit', 'tar | sha256 (read+hash)', { whole: true, reps: FAST_REPS, run: () => run(`tar -cf - -C ${q(wl.dir)} . | openssl dgst -sha256`) });
  measure(wl, 'limit', 'cp -r (checkout limit)', { whole: true, setup: () => rm(dest), run: () => run(['cp', '-r', wl.dir, dest]) });
  rm(dest);
}

const elton = (args, cwd) => run([process.execPath, ELTON, ...args], { cwd });

function benchElton(wl, dir) {
  const ws = path.join(dir, 'ws');
  const dest = path.join(dir, 'clone');
  const ops = ['cold commit', 'unchanged re-commit', 'store size (du .elton)', 'clone + checkout bench@1'];
  if (wl.name === 'large') ops.push('commit after 1 MiB edit');
  const init = () => {
    rm(path.join(ws, '.elton'));
    must([process.execPath, ELTON, 'init', '--tree', 'bench', '--json'], { cwd: ws });
  };
  try {
    if (!fs.existsSync(ELTON)) throw new Error(`${path.relative(REPO_ROOT, ELTON)} not found (run npm run build?)`);
    freshCopy(wl.dir, ws);
    init();
  } catch (e) {
    ops.forEach((op, i) => skipped(wl, 'elton', op, i === 0 ? `init failed: ${e.message}` : 'skipped: init failed'));
    return;
  }
  let cold = null;
  const commitNote = (j) => `files=${j.files} newObjects=${j.newObjects}${j.unchanged ? ' unchanged' : ''}`;
  measure(wl, 'elton', ops[0], {
    whole: true,
    setup: (i) => i > 0 && init(),
    run: () => elton(['commit', '-m', 'cold', '--json'], ws),
    parse: (r) => {
      cold = parseJson(r.stdout);
      return { bytes: cold.newBytes, note: commitNote(cold) };
    },
  });
  measure(wl, 'elton', ops[1], {
    reps: FAST_REPS,
    run: () => elton(['commit', '-m', 'again', '--json'], ws),
    parse: (r) => {
      const j = parseJson(r.stdout);
      if (j.unchanged !== true) throw new Error(`expected unchanged=true, got ${JSON.stringify(j).slice(0, 200)}`);
      return { bytes: j.newBytes ?? 0, note: 'unchanged=true' };
    },
  });
  try {
    const du = duBytes(path.join(ws, '.elton'));
    const reported = cold?.newBytes;
    const note = reported
      ? `commit reports ${fmtBytes(reported)} compressed unique; du overhead ${(((du - reported) / reported) * 100).toFixed(1)}%; ` +
        `tree ${fmtBytes(wl.bytes)} → ${((du / wl.bytes) * 100).toFixed(1)}%`
      : 'cold commit did not report newBytes';
    rows.push({ workload: wl.name, tool: 'elton', op: ops[2], seconds: null, times: [], bytes: du, note });
  } catch (e) {
    skipped(wl, 'elton', ops[2], e.message);
  }
  measure(wl, 'elton', ops[3], {
    whole: true,
    setup: () => rm(dest),
    run: () => elton(['clone', ws, 'bench@1', dest, '--json'], dir),
    parse: (r) => {
      const j = parseJson(r.stdout);
      return { note: [`files=${j.files ?? '?'}`, verifyTree(wl.dir, dest)].filter(Boolean).join(' ') };
    },
  });
  rm(dest);
  if (wl.name === 'large') {
    measure(wl, 'elton', ops[4], {
      setup: (i) => applyEdit(ws, i + 1),
      run: () => elton(['commit', '-m', 'edit', '--json'], ws),
      parse: (r) => {
        const j = parseJson(r.stdout);
        return { bytes: j.newBytes, note: commitNote(j) };
      },
    });
  }
}

function benchRestic(wl, dir) {
  const ws = path.join(dir, 'ws');
  const repo = path.join(dir, 'repo');
  const dest = path.join(dir, 'restore');
  const env = { ...BASE_ENV, RESTIC_PASSWORD: 'elton-bench', RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: path.join(dir, 'cache') };
  const restic = (...args) => run(['restic', ...args], { env });
  const init = () => {
    rm(repo);
    rm(env.RESTIC_CACHE_DIR);
    must(['restic', 'init', '-q'], { env });
  };
  const backup = () => restic('backup', '--json', '--quiet', '--host', 'bench', ws);
  const summary = (r) => {
    const line = r.stdout.trim().split('\n').reverse().find((l) => l.includes('"summary"'));
    if (!line) throw new Error(`no summary in restic output: ${r.stdout.slice(-200)}`);
    const s = JSON.parse(line);
    return { bytes: s.data_added, note: `data_added (uncompressed); new=${s.files_new} changed=${s.files_changed}` };
  };
  freshCopy(wl.dir, ws);
  init();
  measure(wl, 'restic', 'backup cold', { whole: true, setup: (i) => i > 0 && init(), run: backup, parse: summary });
  measure(wl, 'restic', 'backup unchanged', { reps: FAST_REPS, run: backup, parse: summary });
  rows.push({ workload: wl.name, tool: 'restic', op: 'repo size (du)', seconds: null, times: [], bytes: duBytes(repo), note: `tree ${fmtBytes(wl.bytes)}` });
  measure(wl, 'restic', 'restore latest', {
    whole: true,
    setup: () => rm(dest),
    run: () => restic('restore', 'latest', '--target', dest),
    parse: () => ({ note: verifyTree(wl.dir, path.join(dest, ws)) }),
  });
  rm(dest);
  if (wl.name === 'large') {
    let before = 0;
    measure(wl, 'restic', 'backup after 1 MiB edit', {
      setup: (i) => {
        applyEdit(ws, i + 1);
        before = duBytes(repo);
      },
      run: backup,
      parse: (r) => {
        const s = summary(r);
        return { ...s, note: `${s.note}; repo grew ${fmtBytes(duBytes(repo) - before)}` };
      },
    });
  }
}

const GIT_ENV = {
  ...BASE_ENV,
  GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example.invalid',
  GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example.invalid',
  GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null',
  // no background auto-gc/maintenance: it would run detached and disturb the following timings
  GIT_CONFIG_COUNT: '2', GIT_CONFIG_KEY_0: 'gc.auto', GIT_CONFIG_VALUE_0: '0', GIT_CONFIG_KEY_1: 'maintenance.auto', GIT_CONFIG_VALUE_1: 'false',
};

function benchGit(wl, dir) {
  const ws = path.join(dir, 'ws');
  const dest = path.join(dir, 'clone');
  const git = (cmd) => run(cmd, { cwd: ws, env: GIT_ENV });
  const objects = () => duBytes(path.join(ws, '.git', 'objects'));
  const init = () => {
    rm(path.join(ws, '.git'));
    must(['git', 'init', '-q', '-b', 'main'], { cwd: ws, env: GIT_ENV });
  };
  freshCopy(wl.dir, ws);
  init();
  measure(wl, 'git', 'add -A && commit (cold)', {
    whole: true,
    setup: (i) => i > 0 && init(),
    run: () => git('git add -A && git commit -q -m cold'),
    parse: () => ({ bytes: objects(), note: 'bytes = du .git/objects (loose, zlib)' }),
  });
  measure(wl, 'git', 'status --porcelain (unchanged)', {
    reps: FAST_REPS,
    run: () => git(['git', 'status', '--porcelain']),
    parse: (r) => {
      if (r.stdout.trim()) throw new Error(`status not clean: ${firstLine(r.stdout)}`);
      return { note: 'clean' };
    },
  });
  measure(wl, 'git', 'add -A && commit (unchanged)', {
    reps: FAST_REPS,
    run: () => git('git add -A && (git diff --cached --quiet || git commit -q -m again)'),
  });
  measure(wl, 'git', 'clone --no-hardlinks', {
    whole: true,
    setup: () => rm(dest),
    run: () => run(['git', 'clone', '-q', '--no-hardlinks', ws, dest], { env: GIT_ENV }),
    parse: () => ({ note: verifyTree(wl.dir, dest) }),
  });
  rm(dest);
  if (wl.name === 'large') {
    let before = 0;
    measure(wl, 'git', 'commit after 1 MiB edit', {
      setup: (i) => {
        applyEdit(ws, i + 1);
        before = objects();
      },
      run: () => git('git add -A && git commit -q -m edit'),
      parse: () => ({ bytes: objects() - before, note: '.git/objects growth' }),
    });
  }
}

function benchRclone(wl, dir) {
  const ws = path.join(dir, 'ws');
  const dest = path.join(dir, 'dest');
  const conf = path.join(dir, 'rclone.conf');
  const env = { ...BASE_ENV, RCLONE_CONFIG: conf };
  const rclone = (...args) => run(['rclone', ...args], { env });
  freshCopy(wl.dir, ws);
  fs.writeFileSync(conf, '');
  measure(wl, 'rclone', 'copy to local dir (cold)', { whole: true, setup: () => rm(dest), run: () => rclone('copy', ws, dest) });
  measure(wl, 'rclone', 'sync unchanged', { reps: FAST_REPS, run: () => rclone('sync', ws, dest) });
  if (wl.name === 'large') {
    measure(wl, 'rclone', 'sync after 1 MiB edit', {
      setup: (i) => applyEdit(ws, i + 1),
      run: () => rclone('sync', '--stats-one-line', '-v', ws, dest),
      parse: (r) => {
        // --stats-one-line -v ends with e.g. "INFO  :   572.205 MiB / 572.205 MiB, 100%, ..."
        const m = [...r.stderr.matchAll(/:\s+([\d.]+) (B|KiB|MiB|GiB) \/ [\d.]+ \S+, \d+%/g)].pop();
        const unit = { B: 1, KiB: 1024, MiB: MiB, GiB: 1024 * MiB };
        return { bytes: m ? Math.round(Number(m[1]) * unit[m[2]]) : null, note: 'bytes transferred (rclone copies the whole changed file)' };
      },
    });
  }
}

const TOOLS = [
  { name: 'limit', bin: 'tar', fn: benchLimits },
  { name: 'elton', bin: null, fn: benchElton },
  { name: 'restic', bin: 'restic', fn: benchRestic },
  { name: 'git', bin: 'git', fn: benchGit },
  { name: 'rclone', bin: 'rclone', fn: benchRclone },
];

// ---------------------------------------------------------------- targets + report

function fmtSec(s) {
  if (s == null) return '';
  return s < 10 ? s.toFixed(3) : s.toFixed(1);
}

function fmtBytes(b) {
  if (b == null) return '';
  if (Math.abs(b) < 10 * 1024) return `${b} B`;
  if (Math.abs(b) < 10 * MiB) return `${(b / 1024).toFixed(1)} KiB`;
  return `${(b / MiB).toFixed(1)} MiB`;
}

const find = (workload, tool, op) => rows.find((r) => r.workload === workload && r.tool === tool && r.op.startsWith(op) && r.seconds != null);

/** Annotates elton rows with the project's targets (PASS/FAIL) and returns a summary list. */
function evaluateTargets() {
  const results = [];
  const mark = (row, target, pass) => {
    if (!row) return;
    row.target = target;
    row.pass = row.error ? false : pass;
    results.push({ workload: row.workload, op: row.op, target, pass: row.pass, error: row.error });
  };
  const rowFor = (w, op) => rows.find((r) => r.workload === w && r.tool === 'elton' && r.op.startsWith(op));
  for (const w of ['small', 'large']) {
    const cold = rowFor(w, 'cold commit');
    const restic = find(w, 'restic', 'backup cold');
    if (w === 'small' && cold) {
      mark(cold, restic ? `< restic ${fmtSec(restic.seconds)} s` : '< restic (not run)', restic ? cold.seconds != null && cold.seconds < restic.seconds : null);
    }
    const again = rowFor(w, 'unchanged re-commit');
    if (again) mark(again, '< 0.5 s', again.seconds != null && again.seconds < 0.5);
    const edit = rowFor(w, 'commit after 1 MiB edit');
    if (edit) mark(edit, `≤ ${fmtBytes(4 * EDIT_BYTES)} new`, edit.bytes != null && edit.bytes <= 4 * EDIT_BYTES);
    const clone = rowFor(w, 'clone + checkout');
    const cp = find(w, 'limit', 'cp -r');
    if (clone) mark(clone, cp ? `≤ 2× cp -r = ${fmtSec(2 * cp.seconds)} s` : '≤ 2× cp -r (not run)', cp ? clone.seconds != null && clone.seconds <= 2 * cp.seconds : null);
  }
  return results;
}

function machineInfo() {
  const v = (cmd) => {
    const r = run(cmd);
    return r.code === 0 ? firstLine(r.stdout + r.stderr) : 'not installed';
  };
  const rev = run(['git', '-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']);
  const fsType = run(['df', '-T', BENCH_DIR]).stdout.trim().split('\n')[1]?.split(/\s+/)[1] ?? '?';
  return {
    date: new Date().toISOString(),
    host: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: `${os.cpus()[0]?.model ?? '?'} × nproc ${os.availableParallelism()}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    elton: rev.code === 0 ? `commit ${rev.stdout.trim()}` : 'uncommitted',
    restic: v(['restic', 'version']),
    git: v(['git', '--version']),
    rclone: v(['rclone', 'version']),
    tar: v(['tar', '--version']),
    openssl: v(['openssl', 'version']),
    benchDir: `${BENCH_DIR} (${fsType})`,
    scale: SCALE,
    reps: `${opts.reps} (unchanged checks: ${FAST_REPS}), median reported`,
  };
}

function renderMarkdown(info, workloads, targets, extra = '') {
  const out = ['# elton benchmark', ''];
  for (const [k, val] of Object.entries(info)) out.push(`- **${k}**: ${val}`);
  out.push('', '## Workloads', '');
  for (const w of workloads) out.push(`- **${w.name}**: ${w.files} files, ${fmtBytes(w.bytes)} (${w.dir})`);
  if (!rows.length) return out.join('\n') + '\n' + extra;
  out.push('', '## Results', '');
  out.push('| workload | tool | operation | seconds | MB/s | bytes stored/added | target | result | note |');
  out.push('| --- | --- | --- | ---: | ---: | ---: | --- | --- | --- |');
  const size = Object.fromEntries(workloads.map((w) => [w.name, w.bytes]));
  for (const r of rows) {
    const mbs = r.whole && r.seconds ? (size[r.workload] / 1e6 / r.seconds).toFixed(0) : '';
    const result = r.error && r.target ? 'ERROR' : r.pass == null ? (r.target ? 'n/a' : '') : r.pass ? 'PASS' : 'FAIL';
    const note = r.error ? `ERROR: ${r.error}` : r.note || '';
    const secs = r.times.length > 1 ? `${fmtSec(r.seconds)} (×${r.times.length})` : fmtSec(r.seconds);
    const cells = [r.workload, r.tool, r.op, secs, mbs, fmtBytes(r.bytes), r.target ?? '', result, note];
    out.push(`| ${cells.map((c) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`);
  }
  const large = workloads.find((w) => w.name === 'large');
  if (large) {
    out.push('', '## 1 MiB edit check (large tree)', '');
    for (const [tool, op] of [['elton', 'commit after'], ['restic', 'backup after'], ['git', 'commit after'], ['rclone', 'sync after']]) {
      const r = rows.find((x) => x.workload === 'large' && x.tool === tool && x.op.startsWith(op));
      if (r) out.push(`- ${tool}: ${r.error ? `ERROR: ${r.error}` : `${fmtBytes(r.bytes) || '—'} added in ${fmtSec(r.seconds)} s${r.note ? ` (${r.note})` : ''}`}`);
    }
    out.push(`- target for elton: ≤ ${fmtBytes(4 * EDIT_BYTES)} new bytes`);
  }
  out.push('', '## Targets', '');
  for (const t of targets) {
    const verdict = t.error ? 'ERROR' : t.pass == null ? 'n/a' : t.pass ? 'PASS' : 'FAIL';
    out.push(`- ${verdict}: ${t.workload} elton ${t.op} ${t.target}${t.error ? ` (${t.error.slice(0, 100)})` : ''}`);
  }
  return out.join('\n') + '\n' + extra;
}

// ---------------------------------------------------------------- main

async function main() {
  const info = machineInfo();
  log(`elton bench: BENCH_DIR=${BENCH_DIR} scale=${SCALE} skip=[${[...opts.skip].join(',')}]`);
  const names = ['master', 's3', 'lazy', 'backup', 'federation', 'encryption', 'encryption-wan'].includes(opts.only) ? [] : opts.only ? [opts.only] : ['small', 'large'];
  const workloads = names.map((n) => ensureWorkload(n, { benchDir: BENCH_DIR, scale: SCALE, log }));
  for (const wl of workloads) {
    log(`\n== ${wl.name} tree: ${wl.files} files, ${fmtBytes(wl.bytes)}`);
    warm(wl.dir);
    for (const tool of TOOLS) {
      if (opts.skip.has(tool.name) || (tool.name === 'git' && wl.name === 'large' && opts.skip.has('git-large'))) continue;
      if (tool.bin && !have(tool.bin)) {
        skipped(wl, tool.name, '(all)', `${tool.bin} not installed`);
        continue;
      }
      const dir = path.join(SCRATCH, wl.name, tool.name);
      rm(dir);
      fs.mkdirSync(dir, { recursive: true });
      try {
        tool.fn(wl, dir);
      } catch (e) {
        skipped(wl, tool.name, '(setup)', e.message);
      }
      if (!opts.keep) rm(dir);
      warm(wl.dir);
    }
  }
  const smallTree = () => {
    let wl = workloads.find((w) => w.name === 'small');
    if (!wl) workloads.push((wl = ensureWorkload('small', { benchDir: BENCH_DIR, scale: SCALE, log })));
    return wl;
  };
  const sectionCtx = {
    // A tool skipped with --skip counts as absent in every section.
    elton: ELTON, env: { ...BASE_ENV, NO_COLOR: '1' }, reps: opts.reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes, have: (bin) => !opts.skip.has(bin) && have(bin),
    version: (argv) => run(argv).stdout,
  };
  /** The federation section's tree: the small tree's generator at a tenth of the scale (2,000 files at scale 1). */
  const tenthTree = () => ensureWorkload('small', { benchDir: BENCH_DIR, scale: SCALE * 0.1, log });
  /** The encryption section's trees: the small tree at a tenth of the scale, the large tree at a fifth (~260 MB at scale 1). */
  const encryptionTrees = () => [{ ...tenthTree(), scale: SCALE * 0.1 }, { ...ensureWorkload('large', { benchDir: BENCH_DIR, scale: SCALE * 0.2, log }), scale: SCALE * 0.2 }];
  /**
   * Runs a section on the small tree (or the tree, or array of trees, `tree` returns), in a scratch directory of its own;
   * `wan: false` for a section without the emulated WAN.
   */
  const section = async (name, title, bench, tree = smallTree, { wan = true } = {}) => {
    if (!runs(name)) return null;
    const wl = tree();
    const wls = [wl].flat();
    log(`\n== ${name}: ${wls.map((w) => `${w.name} tree`).join(' and ')} ${title}${wan ? ', direct and through an emulated WAN' : ''}`);
    for (const w of wls) warm(w.dir);
    const dir = path.join(SCRATCH, name);
    rm(dir);
    fs.mkdirSync(dir, { recursive: true });
    const result = await bench(wl, dir, sectionCtx);
    if (!opts.keep) rm(dir);
    return result;
  };
  const master = await section('master', 'to a master', benchMaster);
  const s3 = await section('s3', 'to s3rver', benchS3);
  const lazy = await section('lazy', 'read lazily from a master', benchLazy);
  const backup = await section('backup', 'backed up from a master to s3rver', benchBackup);
  const federation = await section('federation', 'homed on master A, read and changed through master B', benchFederation, tenthTree);
  const encryption = await section('encryption', 'on the embedded store, plain and encrypted (key file)', benchEncryption, encryptionTrees, { wan: false });
  const encryptionWan = await section('encryption-wan', 'through a plain and an encrypted master over an emulated WAN', benchEncryptionWan, tenthTree, { wan: false });
  const targets = evaluateTargets();
  const md = renderMarkdown(info, workloads, targets, (master?.markdown ?? '') + (s3?.markdown ?? '') + (lazy?.markdown ?? '') + (backup?.markdown ?? '') + (federation?.markdown ?? '') + (encryption?.markdown ?? '') + (encryptionWan?.markdown ?? ''));
  fs.mkdirSync(BENCH_DIR, { recursive: true });
  fs.writeFileSync(path.join(BENCH_DIR, 'results.md'), md);
  fs.writeFileSync(path.join(BENCH_DIR, 'results.json'), JSON.stringify({ info, workloads, rows, targets, master: master?.rows, s3: s3?.rows, lazy: lazy?.rows, backup: backup?.rows, federation: federation?.rows, encryption: encryption && { rows: encryption.rows, sizes: encryption.sizes, unlock: encryption.unlock, load: encryption.load }, encryptionWan: encryptionWan && { rows: encryptionWan.rows, info: encryptionWan.info } }, null, 2) + '\n');
  process.stdout.write(`\n${md}`);
  log(`\nwritten: ${path.join(BENCH_DIR, 'results.md')} and results.json`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
