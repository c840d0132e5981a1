// Encryption benchmark: the same trees committed to and checked out from the embedded store with encryption off and on
// (key file source, so unlocking costs no scrypt), side by side in one run; the stored size with and without (sealing adds
// 36 bytes per object, then Padmé padding); and what unlocking costs per command with a passphrase (scrypt) instead of a key file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runAsync } from './support.mjs';

/** Target: encryption costs at most 15% (encrypted seconds / plain seconds). */
const MAX_RATIO = 1.15;
/** Sealing: "ELX", a format byte, a 12-byte nonce, the padding's length and the 16-byte GCM tag, then Padmé padding (docs/encryption.md). */
const SEAL_OVERHEAD = 36;
/** At least this many reps of each timed step: a 15% threshold on ~1-second steps needs a median, not one sample. */
const MIN_REPS = 5;
/** `elton log` (Node start-up + unlock) is cheap: more reps. */
const LOG_REPS = 7;
const PASSPHRASE = 'elton-bench-passphrase';
const TREE = 'bench';
const MODES = ['plain', 'encrypted'];
/** GNU time, when installed, gives each timed command's user CPU seconds: encryption's own cost, apart from the disk's. */
const GNU_TIME = '/usr/bin/time';

/**
 * Runs the encryption benchmark on `workloads` (the small tree at scale ×0.1 and the large tree at ×0.2) in scratch
 * directory `dir`; returns {rows, markdown}. ctx: {elton, env, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes}.
 */
export async function benchEncryption(workloads, dir, ctx) {
  const { elton, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes } = ctx;
  const reps = Math.max(MIN_REPS, ctx.reps);
  const logReps = Math.max(LOG_REPS, ctx.reps);
  const rows = []; // one per workload × operation: {workload, op, bytes, plain: {seconds, times, cpuSeconds, cpu}, encrypted: {...}, ratio, ratioOfMedians, cpuRatio, target, pass, note}
  const sizes = []; // one per workload: {workload, plain: {objects, newBytes, store, packs, du}, encrypted: {...}, perObject, perObjectStore}
  const unlock = {};
  const load = { start: os.loadavg()[0] };
  const keyFile = path.join(dir, 'bench.key');

  // No key in the environment unless a step puts one there; no KMS lookups; a user cache of this section's own.
  const baseEnv = { ...ctx.env, ELTON_KMS: 'off', ELTON_CACHE: path.join(dir, 'cache') };
  for (const k of ['ELTON_KEYFILE', 'ELTON_PASSPHRASE', 'ELTON_NEW_PASSPHRASE']) delete baseEnv[k];
  const envs = {
    plain: baseEnv,
    encrypted: { ...baseEnv, ELTON_KEYFILE: keyFile },
    passphrase: { ...baseEnv, ELTON_PASSPHRASE: PASSPHRASE },
  };
  const eltonRun = (args, { cwd = dir, env = baseEnv } = {}) => runAsync([process.execPath, elton, ...args], { cwd, env });
  const cpuFile = path.join(dir, 'cpu.txt');
  const haveTime = fs.existsSync(GNU_TIME) && runAsync([GNU_TIME, '-f', '%U', '-o', cpuFile, 'true']).then((r) => r.code === 0);
  /** Like eltonRun, timed: resolves the run's result with `cpu` (user CPU seconds of the command, or null without GNU time). */
  const eltonTimed = async (args, o) => {
    if (!(await haveTime)) return { ...(await eltonRun(args, o)), cpu: null };
    fs.rmSync(cpuFile, { force: true });
    const r = await runAsync([GNU_TIME, '-f', '%U', '-o', cpuFile, process.execPath, elton, ...args], { cwd: o?.cwd ?? dir, env: o?.env ?? baseEnv });
    const cpu = Number.parseFloat(fs.readFileSync(cpuFile, 'utf8').trim().split('\n').pop());
    return { ...r, cpu: Number.isFinite(cpu) ? cpu : null };
  };
  const mustOk = (r, what) => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`);
    return r;
  };
  const sync = async () => mustOk(await runAsync(['sync']), 'sync');
  const rm = (p) => fs.rmSync(p, { recursive: true, force: true });
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const mbs = (bytes, s) => (s ? bytes / 1e6 / s : null);
  /** Alternates which mode goes first (plain, enc / enc, plain / ...), so a slow patch of the machine hits both. */
  const order = (i) => (i % 2 === 0 ? MODES : [...MODES].reverse());
  /** Apparent bytes of the files under a directory (0 if absent). */
  const dirBytes = (d) => {
    let n = 0;
    const walk = (p) => {
      for (const e of fs.readdirSync(p, { withFileTypes: true })) {
        const f = path.join(p, e.name);
        if (e.isDirectory()) walk(f);
        else if (e.isFile()) n += fs.statSync(f).size;
      }
    };
    if (fs.existsSync(d)) walk(d);
    return n;
  };

  /**
   * Times step.run(mode, i) for both modes, `reps` times each, interleaved; step.setup(mode, i) runs untimed before each
   * timed run and step.check(mode, result, i) after it (verification, parsing). Records one comparison row.
   * The ratio judged is the median of the reps' paired ratios (rep i encrypted / rep i plain, run back to back), which
   * cancels the disk's slow drifts better than the ratio of the medians (also kept, as ratioOfMedians).
   */
  const compare = async (wl, op, step, { bytes = wl.bytes, target = true, note = '' } = {}) => {
    const row = { workload: wl.name, op, bytes, plain: { times: [], cpu: [] }, encrypted: { times: [], cpu: [] }, note };
    try {
      for (let i = 0; i < (step.reps ?? reps); i++) {
        for (const mode of order(i)) {
          await step.setup?.(mode, i);
          await sync();
          const r = mustOk(await step.run(mode, i), `${op} (${mode})`);
          row[mode].times.push(r.seconds);
          if (r.cpu != null) row[mode].cpu.push(r.cpu);
          await step.check?.(mode, r, i, row);
        }
      }
      for (const mode of MODES) {
        row[mode].seconds = median(row[mode].times);
        row[mode].cpuSeconds = row[mode].cpu.length ? median(row[mode].cpu) : null;
      }
      row.ratios = row.plain.times.map((t, i) => row.encrypted.times[i] / t);
      row.ratio = median(row.ratios);
      row.ratioOfMedians = row.encrypted.seconds / row.plain.seconds;
      row.cpuRatio = row.plain.cpuSeconds ? row.encrypted.cpuSeconds / row.plain.cpuSeconds : null;
    } catch (e) {
      row.error = e.message;
    }
    if (target) {
      row.target = `encrypted/plain ≤ ${MAX_RATIO.toFixed(2)}`;
      row.pass = !row.error && row.ratio <= MAX_RATIO;
    }
    rows.push(row);
    const t = row.error
      ? `ERROR ${row.error}`
      : `plain ${fmtSec(row.plain.seconds)} s` + (bytes ? ` (${mbs(bytes, row.plain.seconds).toFixed(0)} MB/s)` : '') +
        `  encrypted ${fmtSec(row.encrypted.seconds)} s` + (bytes ? ` (${mbs(bytes, row.encrypted.seconds).toFixed(0)} MB/s)` : '') +
        `  ratio ${row.ratio.toFixed(3)} (of medians ${row.ratioOfMedians.toFixed(3)}${row.cpuRatio ? `, user CPU ${row.cpuRatio.toFixed(3)}` : ''})` +
        `${target ? ` ${row.pass ? 'PASS' : 'FAIL'}` : ''}${row.note ? `  ${row.note}` : ''}`;
    log(`  enc   ${wl.name.padEnd(5)} ${op.padEnd(28)} ${t}`);
    return row;
  };

  try {
    if (!fs.existsSync(elton)) throw new Error(`${elton} not found (run npm run build?)`);
    mustOk(await eltonRun(['key', 'generate', keyFile, '--json']), 'elton key generate');
  } catch (e) {
    rows.push({ workload: '—', op: '(setup)', error: e.message });
    return { rows, sizes, unlock, markdown: render() };
  }

  for (const wl of workloads) {
    const ws = Object.fromEntries(MODES.map((m) => [m, path.join(dir, wl.name, m)]));
    /**
     * Each rep clones into a new directory, and the clones are removed only after the step: on an ext4 without a journal
     * (this machine's), creating files within about a minute of deleting others makes the kernel skip the recently freed
     * inodes one by one (fs/ext4/ialloc.c recently_deleted()), which made 2,000-file checkouts take 0.5 to 2 s at random.
     */
    const dest = (mode, i) => path.join(dir, wl.name, 'clones', `${mode}-${i}`);
    const commits = {}; // mode -> last cold commit's JSON
    const init = async (mode) => {
      rm(path.join(ws[mode], '.elton'));
      const args = ['init', '--tree', TREE, '--json', ...(mode === 'encrypted' ? ['--encrypt', '--key-source', `keyfile:${keyFile}`] : [])];
      const j = parseJson(mustOk(await eltonRun(args, { cwd: ws[mode], env: envs[mode] }), `elton init (${mode})`).stdout);
      // the encrypted store must really be one (keyring written, keyed ids), the plain one must not
      const config = fs.readFileSync(path.join(ws[mode], '.elton', 'store', 'config'));
      const keyed = config.includes('"idScheme":"hmac-sha256"');
      if ((mode === 'encrypted') !== (keyed && !!j.encryption?.length)) throw new Error(`elton init (${mode}): store config says ${keyed ? 'keyed ids' : 'plain ids'}, init says encryption=${JSON.stringify(j.encryption ?? null)}`);
    };
    try {
      for (const mode of MODES) freshCopy(wl.dir, ws[mode]);
    } catch (e) {
      rows.push({ workload: wl.name, op: '(setup)', error: e.message });
      continue;
    }

    // ---- cold commit: a fresh store each rep
    const commitRow = await compare(wl, 'cold commit', {
      setup: (mode) => init(mode),
      run: (mode) => eltonTimed(['commit', '-m', 'cold', '--json'], { cwd: ws[mode], env: envs[mode] }),
      check: (mode, r) => {
        const j = parseJson(r.stdout);
        if (j.version !== 1 || j.files !== wl.files) throw new Error(`commit (${mode}): expected ${TREE}@1 with ${wl.files} files, got ${JSON.stringify(j).slice(0, 200)}`);
        commits[mode] = j;
      },
    });
    if (!commitRow.error) commitRow.note = `${commits.plain.files} files, ${commits.plain.newObjects} objects (plain) / ${commits.encrypted.newObjects} (encrypted)`;

    // ---- stored size, after the last rep's commit
    if (!commitRow.error) {
      const size = { workload: wl.name };
      for (const mode of MODES) {
        const store = path.join(ws[mode], '.elton', 'store');
        size[mode] = {
          objects: commits[mode].newObjects,
          newBytes: commits[mode].newBytes,
          store: dirBytes(store),
          packs: dirBytes(path.join(store, 'packs')),
          du: Number(mustOk(await runAsync(['du', '-sB1', store]), 'du').stdout.split(/\s/)[0]),
        };
      }
      const e = size.encrypted;
      const p = size.plain;
      size.perObject = (e.newBytes - p.newBytes) / e.objects;
      size.perObjectStore = (e.store - p.store) / e.objects;
      sizes.push(size);
      log(`  enc   ${wl.name.padEnd(5)} ${'stored size'.padEnd(28)} plain ${fmtBytes(p.newBytes)} (store ${fmtBytes(p.store)})  encrypted ${fmtBytes(e.newBytes)} (store ${fmtBytes(e.store)})  ` +
        `${e.objects} objects: +${size.perObject.toFixed(1)} B/object in objects, +${size.perObjectStore.toFixed(1)} B/object in the store directory`);
    }

    // ---- checkout: a clone of @1 into a new directory, verified
    if (commitRow.error) {
      rows.push({ workload: wl.name, op: 'checkout (clone @1)', error: 'skipped: the commit failed' });
    } else {
      const verified = new Set();
      await compare(wl, 'checkout (clone @1)', {
        setup: (mode, i) => rm(dest(mode, i)),
        run: (mode, i) => eltonTimed(['clone', ws[mode], `${TREE}@1`, dest(mode, i), '--json'], { env: envs[mode] }),
        check: (mode, r, i, row) => {
          const j = parseJson(r.stdout);
          if (j.files !== wl.files) throw new Error(`clone (${mode}): expected ${wl.files} files, got ${JSON.stringify(j).slice(0, 200)}`);
          if (verifyTree(wl.dir, dest(mode, i))) verified.add(mode);
          row.note = `${j.files} files; ${verified.size === 2 ? 'both verified (diff -r, .elton excluded), every rep' : 'not verified (--no-verify)'}`;
        },
      });
      rm(path.join(dir, wl.name, 'clones'));
    }

    // ---- per-command cost of the key, on the small tree's stores: `elton log` plain, with the key file, with a passphrase
    if (wl === workloads[0] && !commitRow.error) {
      try {
        // a second wrapping of the same key, by a passphrase (scrypt N=2^16): same store, only the key source differs
        mustOk(await eltonRun(['key', 'add', 'passphrase', '--json'], { cwd: ws.encrypted, env: { ...envs.encrypted, ELTON_NEW_PASSPHRASE: PASSPHRASE } }), 'elton key add passphrase');
        const logOnce = (env, cwd) => eltonTimed(['log', '--json'], { cwd, env });
        const checkLog = (what, r) => {
          const j = parseJson(r.stdout);
          if (j.versions?.length !== 1) throw new Error(`log (${what}): expected 1 version, got ${JSON.stringify(j).slice(0, 200)}`);
        };
        // plain store vs encrypted store opened with the key file: the 15% target applies (no scrypt)
        const keyRow = await compare(wl, 'elton log (key file)', {
          reps: logReps,
          run: (mode) => logOnce(envs[mode], ws[mode]),
          check: (mode, r) => checkLog(mode, r),
        }, { bytes: null, note: 'Node start-up + open the store (+ unlock with the key file) + read 1 version record' });
        // the encrypted store opened with the key file vs with the passphrase: scrypt's cost, no target (it is the point of scrypt)
        const times = { keyfile: [], passphrase: [] };
        for (let i = 0; i < logReps; i++) {
          for (const how of i % 2 === 0 ? ['keyfile', 'passphrase'] : ['passphrase', 'keyfile']) {
            const r = mustOk(await logOnce(how === 'keyfile' ? envs.encrypted : envs.passphrase, ws.encrypted), `elton log (${how})`);
            checkLog(how, r);
            times[how].push(r.seconds);
          }
        }
        unlock.plain = keyRow.plain?.seconds;
        unlock.keyfile = median(times.keyfile);
        unlock.passphrase = median(times.passphrase);
        unlock.reps = logReps;
        log(`  enc   ${wl.name.padEnd(5)} ${'elton log: unlock'.padEnd(28)} plain store ${fmtSec(unlock.plain)} s  key file ${fmtSec(unlock.keyfile)} s  passphrase ${fmtSec(unlock.passphrase)} s  ` +
          `(scrypt +${fmtSec(unlock.passphrase - unlock.keyfile)} s per command)`);
      } catch (e) {
        unlock.error = e.message;
        log(`  enc   ${wl.name.padEnd(5)} ${'elton log: unlock'.padEnd(28)} ERROR ${e.message}`);
      }
    }
    for (const mode of MODES) rm(ws[mode]);
  }
  load.end = os.loadavg()[0];
  return { rows, sizes, unlock, load, markdown: render() };

  function render() {
    const out = ['', '## Encryption: plain vs encrypted embedded store (key file)', ''];
    const cell = (c) => String(c ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
    const line = (cells) => out.push(`| ${cells.map(cell).join(' | ')} |`);
    out.push(
      `- **trees**: ${workloads.map((w) => `${w.name} ×${w.scale != null ? +w.scale.toFixed(3) : '?'}: ${w.files} files, ${fmtBytes(w.bytes)}`).join('; ')} (bench/workload.mjs generators at reduced scale)`,
      '- **plain**: `elton init --tree bench`; **encrypted**: `elton init --tree bench --encrypt --key-source keyfile:KEY` ' +
        '(AES-256-GCM sealed objects, HMAC-SHA256 ids), every command with `ELTON_KEYFILE=KEY ELTON_KMS=off`; both on the embedded store (`.elton/store`)',
      '- **cold commit**: a fresh store each rep; **checkout**: `elton clone WS bench@1 DIR` from the workspace\'s store into a new directory, ' +
        'verified with `diff -r` (`.elton` excluded) after every rep; every rep\'s clone is kept until the step ends (deleting 2,000 files right before ' +
        'creating 2,000 others slows file creation at random on ext4 without a journal)',
      `- **reps**: ${reps} per mode and step (\`elton log\`: ${logReps}), plain and encrypted back to back in each rep (which goes first alternates); seconds are medians; a \`sync\` before every timed command; MB/s = tree bytes / median seconds`,
      '- **encrypted/plain**: the median of the reps\' paired ratios (rep i encrypted / rep i plain), judged against the target; **of medians**: encrypted median / plain median; ' +
        '**user CPU**: the commands\' user CPU seconds (GNU time, medians), where encryption\'s own work shows without the disk\'s noise (writing 2,000 small files varies 0.5–2 s here)',
      `- **load average** (1 min) at the start / end of the section: ${load.start.toFixed(2)} / ${(load.end ?? os.loadavg()[0]).toFixed(2)} on ${os.availableParallelism()} CPUs`,
      '',
      '| workload | operation | plain s | encrypted s | plain MB/s | encrypted MB/s | encrypted/plain | of medians | user CPU s plain / encrypted | target | result | note |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
    );
    for (const r of rows) {
      const result = r.target ? (r.error ? 'ERROR' : r.pass ? 'PASS' : 'FAIL') : '';
      const secs = (m) => (r[m]?.seconds != null ? `${fmtSec(r[m].seconds)}${r[m].times.length > 1 ? ` (×${r[m].times.length})` : ''}` : '');
      const rate = (m) => (r.bytes && r[m]?.seconds ? mbs(r.bytes, r[m].seconds).toFixed(0) : '');
      const cpu = r.plain?.cpuSeconds != null ? `${r.plain.cpuSeconds.toFixed(2)} / ${r.encrypted.cpuSeconds.toFixed(2)} (${r.cpuRatio.toFixed(2)}×)` : '';
      line([r.workload, r.op, secs('plain'), secs('encrypted'), rate('plain'), rate('encrypted'), r.ratio != null ? r.ratio.toFixed(3) : '', r.ratioOfMedians != null ? r.ratioOfMedians.toFixed(3) : '',
        cpu, r.target ?? '', result, r.error ? `ERROR: ${r.error}` : r.note]);
    }
    if (sizes.length) {
      out.push(
        '', '### Stored size', '',
        `Objects sealed: ${SEAL_OVERHEAD} bytes each ("ELX", format, 12-byte nonce, padding length, 16-byte tag), then padded to a Padmé length (at most 12% on tiny objects, 1.6% at 1 MiB; it hides exact sizes). **objects** = the commit's \`newBytes\` (objects as stored, trees included); ` +
          '**store** = apparent bytes of every file under `.elton/store` (packs with their tar headers and padding, indexes, version records, config, keyring).',
        '',
        '| workload | objects | plain objects | encrypted objects | + per object | plain store | encrypted store | + per object | du -B1 plain / encrypted |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      );
      for (const s of sizes) {
        line([s.workload, s.encrypted.objects, fmtBytes(s.plain.newBytes), fmtBytes(s.encrypted.newBytes), `${s.perObject.toFixed(1)} B`,
          fmtBytes(s.plain.store), fmtBytes(s.encrypted.store), `${s.perObjectStore.toFixed(1)} B`, `${fmtBytes(s.plain.du)} / ${fmtBytes(s.encrypted.du)}`]);
      }
    }
    out.push('', '### Unlock cost per command', '');
    if (unlock.error) out.push(`ERROR: ${unlock.error}`);
    else if (unlock.passphrase != null) {
      out.push(
        `\`elton log --json\` on the small tree's stores (1 version), medians of ${unlock.reps}; the encrypted store has two wrappings of one key (\`elton key add passphrase\`), so only the key source differs:`,
        '',
        '| store, key source | seconds | vs key file |',
        '| --- | ---: | ---: |',
      );
      const ms = (s) => `${s >= 0 ? '+' : '−'}${Math.abs(s * 1000).toFixed(0)} ms`;
      line(['plain (no key)', fmtSec(unlock.plain), ms(unlock.plain - unlock.keyfile)]);
      line(['encrypted, ELTON_KEYFILE', fmtSec(unlock.keyfile), '—']);
      line(['encrypted, ELTON_PASSPHRASE (scrypt N=2^16, r=8, p=1)', fmtSec(unlock.passphrase), ms(unlock.passphrase - unlock.keyfile)]);
    } else out.push('not measured (the small tree\'s commit failed)');
    const targeted = rows.filter((r) => r.target);
    if (targeted.length) {
      out.push('', '### Encryption targets', '');
      for (const r of targeted) {
        const verdict = r.error ? 'ERROR' : r.pass ? 'PASS' : 'FAIL';
        out.push(`- ${verdict}: ${r.workload} ${r.op}: ${r.target} — ${r.error ? r.error.slice(0, 160) : `${r.ratio.toFixed(3)} (medians ${fmtSec(r.encrypted.seconds)} s vs ${fmtSec(r.plain.seconds)} s` +
          `${r.cpuRatio ? `; user CPU ${r.encrypted.cpuSeconds.toFixed(2)} s vs ${r.plain.cpuSeconds.toFixed(2)} s` : ''})`}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
