// Backup benchmark: `elton backup` from a master to s3rver through the emulated WAN (first run, 1% changed, no change), next to `restic copy` and `rclone sync`, counted at the server.
import fs from 'node:fs';
import path from 'node:path';
import { RCLONE_WAN_FILES, WAN, WAN_NAME, listFiles, liveServers, makeSubset, rcloneEnv, rcloneErrors, runAsync, s3rverVersion, startDaemon, startS3, wanProxy } from './support.mjs';
import { changeFiles } from './workload.mjs';

/** The issue's targets: an incremental run sends at most this many times the changed files' compressed bytes; a run with nothing new makes at most this many requests per tree. */
const INCREMENTAL_SLACK = 1.1;
const NO_CHANGE_REQUESTS_PER_TREE = 5;
/** The share of the tree's files the second version rewrites (same sizes, new content). */
const CHANGED_SHARE = 0.01;
/** s3rver accepts any signature made with this key pair (as in s3.mjs). */
const S3_KEYS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
/** Every tool writes under its own prefix of the bucket `bench`. */
const PREFIX = { elton: 'elton-backup', restic: 'restic-copy', rclone: 'rclone-sync' };
const TREE = 'bench';
const RESTIC_PASSWORD = 'elton-bench';
/** The objects under `prefix` of the bucket `bench`, read from s3rver's directory `s3Dir`: key -> stored bytes. */
function bucketObjects(s3Dir, prefix) {
  const root = path.join(s3Dir, 'bench', prefix);
  const suffix = '._S3rver_object';
  const out = new Map();
  if (!fs.existsSync(root)) return out;
  for (const f of listFiles(root)) if (f.endsWith(suffix)) out.set(f.slice(0, -suffix.length), fs.statSync(path.join(root, f)).size);
  return out;
}

/** Entries of a tar file and their payload bytes; the rest is headers, padding and the end marker. */
function tarStats(file) {
  const buf = fs.readFileSync(file);
  let off = 0;
  let entries = 0;
  let payload = 0;
  while (off + 512 <= buf.length) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const size = Number.parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    entries++;
    payload += size;
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return { entries, payload, overhead: buf.length - payload };
}

/**
 * What a run added under elton's prefix of the bucket, by kind: data packs (chunk payload and tar
 * overhead), index objects (trees travel inline in them), version envelopes, the rest.
 */
function bucketGrowth(s3Dir, prefix, before) {
  const after = bucketObjects(s3Dir, prefix);
  const g = { packs: 0, chunks: 0, chunkBytes: 0, tarOverhead: 0, indexes: 0, indexBytes: 0, versions: 0, versionBytes: 0, otherBytes: 0, total: 0 };
  for (const [key, size] of after) {
    if (before.has(key)) continue;
    g.total += size;
    if (key.startsWith('data/') && key.endsWith('.tar')) {
      const t = tarStats(path.join(s3Dir, 'bench', prefix, `${key}._S3rver_object`));
      g.packs++;
      g.chunks += t.entries;
      g.chunkBytes += t.payload;
      g.tarOverhead += t.overhead;
    } else if (key.startsWith('data/') && key.endsWith('.pack')) {
      // Raw packs (index format 2): the objects back to back, no framing.
      g.packs++;
      g.chunkBytes += size;
    } else if (key.startsWith('index/')) {
      g.indexes++;
      g.indexBytes += size;
    } else if (key.startsWith('versions/')) {
      g.versions++;
      g.versionBytes += size;
    } else g.otherBytes += size;
  }
  return g;
}

/**
 * Runs the backup benchmark on workload `wl` in scratch directory `dir` and returns {rows, markdown}.
 * ctx: {elton, env, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes, have, version}.
 */
export async function benchBackup(wl, dir, ctx) {
  const { elton, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes } = ctx;
  const env = { ...ctx.env, ...S3_KEYS, ELTON_CACHE: path.join(dir, 'elton-cache') };
  delete env.AWS_CA_BUNDLE; // the machine's proxy CA: restic and rclone fail with it, and it is not s3rver's
  const rows = [];
  const info = { changed: null, subsetChanged: null, v1: null, v2: null, dryRun: null, verified: [] };
  const { track, stopAll } = liveServers(); // master, s3rver, proxy: stopped whatever happens
  const mustOk = (r, what) => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`);
    return r;
  };
  const eltonRun = (args, cwd = dir) => runAsync([process.execPath, elton, ...args], { cwd, env });
  /** s3rver behind the WAN proxy: plain HTTP for elton and rclone, TLS for restic (see below). */
  const on = { plain: null, tls: null };

  /**
   * Runs step.run() once (the runs build on each other, so they are not repeated), counting what
   * reaches the s3rver on[step.server ?? 'plain'] and crosses its proxy meanwhile; step.measure(result)
   * returns {own, data, note}; step.target(row) returns {target, pass}.
   */
  const measure = async (tool, op, files, step) => {
    const row = { tool, op, files, seconds: null, times: [], requests: null, bytesUp: null, bytesDown: null, methods: '', own: null, data: null, note: '' };
    try {
      const { s3, proxy } = on[step.server ?? 'plain'];
      const counted = s3.mark();
      const wire0 = { ...proxy.stats };
      const r = await step.run();
      const seen = counted(); // before measure(), which may list the bucket
      mustOk(r, `${tool} ${op}`);
      row.seconds = r.seconds;
      row.times.push(r.seconds);
      row.connections = proxy.stats.connections - wire0.connections;
      Object.assign(row, seen, await step.measure?.(r));
    } catch (e) {
      row.error = e.message;
    }
    Object.assign(row, step.target?.(row));
    if (row.error && row.target) row.pass = false;
    rows.push(row);
    const t = row.error
      ? `ERROR ${row.error}`
      : `${fmtSec(row.seconds)} s  ${row.requests ?? '?'} req  up ${fmtBytes(row.bytesUp)}  down ${fmtBytes(row.bytesDown)}` +
        (row.target ? `  ${row.target} ${row.pass ? 'PASS' : 'FAIL'}` : '');
    log(`  backup ${`${tool} ${op}`.padEnd(40)} ${t}`);
    return row;
  };
  const skip = (tool, op, files, why) => {
    rows.push({ tool, op, files, times: [], error: why });
    log(`  backup ${`${tool} ${op}`.padEnd(40)} SKIPPED ${why}`);
  };

  const ws = path.join(dir, 'ws');
  const subsetWs = path.join(dir, 'subset');
  const dest = path.join(dir, 'restore');
  const resticLocal = path.join(dir, 'restic-local');
  const resticCache = path.join(dir, 'restic-cache');
  const withRestic = ctx.have('restic');
  const withRclone = ctx.have('rclone');
  let subset = null;
  let resticFromFlag = '--from-repo';

  // restic: a local repository gets each version by `restic backup`, then `restic copy` sends it to s3rver
  const resticEnv = { ...env, RESTIC_PASSWORD, RESTIC_FROM_PASSWORD: RESTIC_PASSWORD, RESTIC_PASSWORD2: RESTIC_PASSWORD };
  const restic = (args, cwd) => runAsync(['restic', '--cacert', path.join(tls, 'cert.pem'), '--cache-dir', resticCache, ...args], { cwd, env: resticEnv });
  const tls = path.join(dir, 'tls');
  const resticRemote = () => `s3:https://127.0.0.1:${on.tls.proxy.port}/bench/${PREFIX.restic}`;
  const resticBackup = async (label) => {
    const r = mustOk(await restic(['-r', resticLocal, 'backup', '--json', '--quiet', '--host', 'bench', '--exclude', '.elton', '.'], ws), `restic backup ${label}`);
    const line = r.stdout.trim().split('\n').reverse().find((l) => l.includes('"summary"'));
    const s = line ? JSON.parse(line) : {};
    log(`  backup restic local backup ${label}: ${fmtSec(r.seconds)} s, new=${s.files_new ?? '?'} changed=${s.files_changed ?? '?'} data_added=${fmtBytes(s.data_added)}`);
  };

  try {
    // ---- setup (untimed): the workspace, the master holding v1, s3rver behind the WAN, restic's local v1, rclone's subset
    try {
      // the real directory: `cp -a` of a symlinked workload would copy the link, and the runs below write into ws
      freshCopy(fs.realpathSync(wl.dir), ws);
      if (fs.lstatSync(ws).isSymbolicLink()) throw new Error(`${ws} is a symlink: refusing to change the workload`);
      const dataDir = path.join(dir, 'master');
      fs.mkdirSync(dataDir, { recursive: true });
      const master = track(await startDaemon([process.execPath, elton, 'master', '--data', dataDir, '--listen', '127.0.0.1:0'], {
        env, ready: /elton master listening on (https?:\/\/(\S+?):(\d+))\s/,
      }));
      info.master = master.match[1];
      const startProxy = await wanProxy();
      const s3 = track(await startS3(path.join(dir, 's3')));
      on.plain = { s3, dir: path.join(dir, 's3'), proxy: track(await startProxy(s3)) };
      mustOk(await eltonRun(['init', '--remote', info.master, '--tree', TREE, '--json'], ws), 'elton init');
      const c = mustOk(await eltonRun(['commit', '-m', 'v1', '--json'], ws), 'elton commit v1');
      info.v1 = { ...parseJson(c.stdout), seconds: c.seconds };
      log(`  backup setup: elton commit v1 to the master: ${fmtSec(c.seconds)} s, ${info.v1.ref} newObjects=${info.v1.newObjects}`);
      if (withRestic) {
        resticFromFlag = (await runAsync(['restic', 'copy', '--help'], { env })).stdout.includes('--from-repo') ? '--from-repo' : '--repo2';
        // restic signs plain-HTTP uploads with streaming (aws-chunked) payloads, which s3rver stores
        // undecoded: it gets its own s3rver over TLS, as in s3.mjs, with a self-signed certificate
        fs.mkdirSync(tls, { recursive: true });
        mustOk(await runAsync(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
          '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(tls, 'key.pem'), '-out', path.join(tls, 'cert.pem')], { env }), 'openssl req');
        const cert = { key: fs.readFileSync(path.join(tls, 'key.pem')), cert: fs.readFileSync(path.join(tls, 'cert.pem')) };
        const s3tls = track(await startS3(path.join(dir, 's3-tls'), { tls: cert }));
        on.tls = { s3: s3tls, proxy: track(await startProxy(s3tls)) };
        mustOk(await restic(['-r', resticLocal, 'init']), 'restic init (local)');
        await resticBackup('v1');
      }
      if (withRclone) subset = makeSubset(wl.dir, subsetWs, RCLONE_WAN_FILES);
    } catch (e) {
      skip('(setup)', '', null, e.message);
      return { rows, markdown: render() };
    }

    const eltonTarget = () => `s3://bench/${PREFIX.elton}?endpoint=${encodeURIComponent(on.plain.proxy.url)}`;
    const backupArgs = (extra = []) => ['backup', '--from', info.master, '--to', eltonTarget(), '--json', ...extra];
    const own = (j) => ({ requests: j.transfer?.to?.requests ?? null, bytesUp: j.transfer?.to?.bytesUp ?? null, bytesDown: j.transfer?.to?.bytesDown ?? null });
    const eltonNote = (j) =>
      `copied=[${(j.copied ?? []).join(', ')}] upToDate=${j.upToDate} objects=${j.objects} bytes=${fmtBytes(j.bytes)} (stored); ` +
      `source: ${j.transfer?.from?.requests ?? '?'} req, ${fmtBytes(j.transfer?.from?.bytesDown)} down`;
    const growthNote = (g) => !g.total ? 'bucket unchanged' :
      `bucket grew ${fmtBytes(g.total)}: ${g.packs} data pack${g.packs === 1 ? '' : 's'} (${fmtBytes(g.chunkBytes)} of chunks${g.tarOverhead ? ` + ${fmtBytes(g.tarOverhead)} tar headers/padding` : ', no framing'}), ` +
      `${g.indexes} index (trees inline) ${fmtBytes(g.indexBytes)}, ${g.versions} version ${fmtBytes(g.versionBytes)}` + (g.otherBytes ? `, other ${fmtBytes(g.otherBytes)}` : '');
    const eltonBackup = (op, target) => {
      let before = new Map();
      return measure('elton', op, wl.files, {
        run: () => {
          before = bucketObjects(on.plain.dir, PREFIX.elton);
          return eltonRun(backupArgs());
        },
        measure: (r) => {
          const j = parseJson(r.stdout);
          if (!j.ok) throw new Error(`backup not ok: ${JSON.stringify(j.problems).slice(0, 200)}`);
          const growth = bucketGrowth(on.plain.dir, PREFIX.elton, before);
          return { own: own(j), data: j.bytes, json: j, growth, note: `${eltonNote(j)}; ${growthNote(growth)}` };
        },
        target,
      });
    };
    const resticCopy = (op, first) =>
      measure('restic', op, wl.files, {
        server: 'tls',
        run: async () => {
          let seconds = 0;
          if (first) {
            const init = await restic(['-r', resticRemote(), 'init', '--copy-chunker-params', resticFromFlag, resticLocal]);
            seconds += init.seconds;
            if (init.code !== 0) return init;
          }
          const r = await restic(['-r', resticRemote(), 'copy', resticFromFlag, resticLocal]);
          return { ...r, seconds: seconds + r.seconds };
        },
        measure: (r) => {
          const copied = (r.stdout.match(/^snapshot \S+ saved$/gm) ?? []).length;
          return { note: `${first ? 'init + copy; ' : ''}${copied} snapshot${copied === 1 ? '' : 's'} copied` };
        },
      });
    const rcloneSync = (op) =>
      measure('rclone', op, subset.files, {
        // --fast-list: s3rver's delimited listing leaves out "directories" holding no object of their own, so
        // without it rclone misses most of what it sent before and sends it again
        run: () => runAsync(['rclone', 'sync', '--fast-list', subsetWs, `s3:bench/${PREFIX.rclone}`], { env: rcloneEnv(env, on.plain.proxy.url) }),
        measure: (r) => ({ note: `subset of ${subset.files} files${rcloneErrors(r.stderr)}` }),
      });

    // ---- first run: everything
    const first = await eltonBackup('first (v1)');
    if (withRestic) await resticCopy('first (init + copy v1)', true);
    else skip('restic', '(all)', null, 'restic not installed');
    if (withRclone) await rcloneSync('first (sync)');
    else skip('rclone', '(all)', null, 'rclone not installed');

    // ---- 1% of the files get new content; v2 is committed to the master (and backed up by restic locally)
    info.changed = changeFiles(ws, CHANGED_SHARE);
    if (subset) {
      const inSubset = new Set(listFiles(subsetWs));
      const hit = info.changed.files.filter((f) => inSubset.has(f));
      for (const f of hit) fs.copyFileSync(path.join(ws, f), path.join(subsetWs, f));
      info.subsetChanged = hit.length;
    }
    log(`  backup changed ${info.changed.files.length} files: ${fmtBytes(info.changed.bytes)}, brotli -q 2 ${fmtBytes(info.changed.compressed)}` +
      (subset ? `; ${info.subsetChanged} of them in rclone's subset` : ''));
    try {
      const c = mustOk(await eltonRun(['commit', '-m', 'v2', '--json'], ws), 'elton commit v2');
      info.v2 = { ...parseJson(c.stdout), seconds: c.seconds };
      log(`  backup setup: elton commit v2 to the master: ${fmtSec(c.seconds)} s, ${info.v2.ref} newObjects=${info.v2.newObjects} newBytes=${fmtBytes(info.v2.newBytes)}`);
      if (withRestic) await resticBackup('v2');
    } catch (e) {
      skip('(setup v2)', '', null, e.message);
      return { rows, markdown: render() };
    }

    // ---- the dry run predicts the incremental run
    const dry = await measure('elton', 'incremental --dry-run', wl.files, {
      run: () => eltonRun(backupArgs(['--dry-run'])),
      measure: (r) => {
        const j = parseJson(r.stdout);
        info.dryRun = j;
        return { own: own(j), json: j, note: `would copy [${(j.copied ?? []).join(', ')}]: ${j.objects} objects, ${fmtBytes(j.bytes)} (stored), about ${j.requests} requests` };
      },
    });

    // ---- incremental run: the changed files' compressed bytes, plus slack
    const limit = Math.floor(INCREMENTAL_SLACK * info.changed.compressed);
    const incremental = await eltonBackup('incremental (v2, 1% changed)', (row) => ({
      target: `bytes up ≤ ${INCREMENTAL_SLACK} × ${fmtBytes(info.changed.compressed)} = ${fmtBytes(limit)}`,
      pass: row.bytesUp != null && !row.error && row.bytesUp <= limit,
    }));
    if (withRestic) await resticCopy('incremental (copy v2)', false);
    if (withRclone) await rcloneSync(`incremental (sync, ${info.subsetChanged} changed)`);

    // ---- no change: no data, a few requests per tree
    const trees = () => first.json?.trees ?? 1;
    await eltonBackup('no change', (row) => ({
      target: `0 data bytes, ≤ ${NO_CHANGE_REQUESTS_PER_TREE} req/tree`,
      pass: !row.error && row.data === 0 && row.json?.objects === 0 && !/\b(PUT|POST)\b/.test(row.methods) && row.requests != null && row.requests <= NO_CHANGE_REQUESTS_PER_TREE * trees(),
    }));
    if (withRestic) await resticCopy('no change (copy)', false);
    if (withRclone) await rcloneSync('no change (sync)');
    if (dry.json && incremental.json) {
      dry.note += `; actual: ${incremental.json.objects} objects, ${fmtBytes(incremental.json.bytes)}, ${incremental.requests} requests`;
    }

    // ---- the backup restores: clone both versions from s3rver (direct) and compare
    const s3Direct = `s3://bench/${PREFIX.elton}?endpoint=${encodeURIComponent(on.plain.s3.url)}`;
    for (const [ref, want] of [[`${TREE}@2`, ws], [`${TREE}@1`, wl.dir]]) {
      const row = { tool: 'elton', op: `verify: clone ${ref} from the backup (direct)`, files: wl.files, seconds: null, times: [], note: '' };
      try {
        if (first.error) throw new Error('skipped: the first backup failed');
        fs.rmSync(dest, { recursive: true, force: true });
        const r = mustOk(await eltonRun(['clone', '--json', s3Direct, ref, dest]), `elton clone ${ref}`);
        row.seconds = r.seconds;
        row.times.push(r.seconds);
        row.note = [`files=${parseJson(r.stdout).files ?? '?'}`, verifyTree(want, dest) || 'not verified (--no-verify)'].join(' ');
        info.verified.push(ref);
      } catch (e) {
        row.error = e.message;
      }
      rows.push(row);
      log(`  backup ${row.op.padEnd(40)} ${row.error ? `ERROR ${row.error}` : `${fmtSec(row.seconds)} s  ${row.note}`}`);
      fs.rmSync(dest, { recursive: true, force: true });
    }
  } finally {
    await stopAll();
  }
  return { rows, markdown: render() };

  function render() {
    const out = ['', `## Backup: master to s3rver over a WAN (${WAN.rttMs} ms RTT, ${WAN.mbitPerSec} Mbit/s): first run, 1% changed, no change`, ''];
    const version = (bin, argv) => (ctx.have(bin) ? ctx.version(argv).trim().split('\n')[0] : 'not installed');
    const ch = info.changed;
    out.push(
      `- **tree**: ${wl.name}, ${wl.files} files, ${fmtBytes(wl.bytes)}, committed to a local \`elton master\` as ${TREE}@1` +
        (info.v1 ? ` (${fmtSec(info.v1.seconds)} s, untimed)` : ''),
      `- **change**: ${ch ? `${ch.files.length} files (${CHANGED_SHARE * 100}%, seeded pick) rewritten with new content of the same size and kind: ${fmtBytes(ch.bytes)}, ` +
        `${fmtBytes(ch.compressed)} compressed (brotli quality 2, file by file), committed as ${TREE}@2` : 'not made'}`,
      `- **elton**: \`elton backup --from <master> --to s3://bench/${PREFIX.elton}?endpoint=<proxy> --json\`; the master is local, the target is s3rver ${s3rverVersion()} behind the WAN proxy; the user cache (ELTON_CACHE) is kept between runs`,
      `- **restic**: ${version('restic', ['restic', 'version'])}; each version is backed up to a local repository (untimed), then \`restic copy ${resticFromFlag} <local>\` sends it to \`s3:https://<proxy>/bench/${PREFIX.restic}\`, a second s3rver over TLS behind its own WAN proxy (restic's plain-HTTP uploads use aws-chunked payloads, which s3rver stores undecoded); the first row includes \`restic init --copy-chunker-params\`; the cache is kept between runs`,
      `- **rclone**: ${version('rclone', ['rclone', 'version'])}; \`rclone sync --fast-list DIR s3:bench/${PREFIX.rclone}\` (--fast-list: s3rver's delimited listings leave out prefixes that hold no object of their own) through the WAN on a **subset** of ` +
        `${subset ? `${subset.files} files (every ${subset.step}th, ${fmtBytes(subset.bytes)}), ${info.subsetChanged ?? '?'} of which are among the changed files` : `${RCLONE_WAN_FILES} files`}: ` +
        'at one request per file, the whole tree through the WAN would take too long',
      `- **WAN**: test/support/wan-proxy.ts in the bench process, ${WAN.rttMs} ms RTT, ${WAN.mbitPerSec} Mbit/s per direction shared by all connections`,
      '- **requests, bytes**: counted at s3rver (requests, and bytes on its sockets, HTTP headers included; TLS records and handshakes for restic); elton\'s own `--json` `transfer.to` is shown next to them; ' +
        '"data" is elton\'s `bytes` (stored object bytes sent)',
      `- **targets** (elton): the incremental run sends at most ${INCREMENTAL_SLACK}× the changed files' compressed bytes (bytes up at s3rver); the no-change run sends no object (0 data bytes, no PUT) and makes ≤ ${NO_CHANGE_REQUESTS_PER_TREE} requests per tree`,
      '- **reps**: 1 (each run builds on the one before)',
      `- **verified**: ${info.verified.length ? info.verified.map((r) => `${r} cloned from the backup equals the tree`).join('; ') : 'no'}`,
      '',
      '| tool | run | files | seconds | bytes up (to target) | requests (to target) | bytes down | data | elton\'s own count | target | result | note |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |',
    );
    for (const r of rows) {
      const result = r.target ? (r.error ? 'ERROR' : r.pass ? 'PASS' : 'FAIL') : '';
      const ownCount = r.own ? `${r.own.requests} req, ${fmtBytes(r.own.bytesUp)} up, ${fmtBytes(r.own.bytesDown)} down` : '';
      const note = r.error ? `ERROR: ${r.error}` : [r.methods, r.note].filter(Boolean).join('; ');
      const cells = [r.tool, r.op, r.files ?? '', fmtSec(r.seconds), fmtBytes(r.bytesUp), r.requests ?? '', fmtBytes(r.bytesDown), fmtBytes(r.data), ownCount, r.target ?? '', result, note];
      out.push(`| ${cells.map((c) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`);
    }
    const targeted = rows.filter((r) => r.target);
    if (targeted.length) {
      out.push('', '### Backup targets', '');
      for (const r of targeted) {
        const verdict = r.error ? 'ERROR' : r.pass ? 'PASS' : 'FAIL';
        const got = r.error ? r.error.slice(0, 120) : `${fmtBytes(r.bytesUp)} up, ${r.requests} requests, data ${fmtBytes(r.data)}` +
          (r.op.startsWith('incremental') && ch ? ` (${(r.bytesUp / ch.compressed).toFixed(2)}× the changed files compressed; stored bytes ${(r.data / ch.compressed).toFixed(2)}×` +
            (r.growth ? `; of which chunk payload ${fmtBytes(r.growth.chunkBytes)} = ${(r.growth.chunkBytes / ch.compressed).toFixed(2)}×, tar overhead ${fmtBytes(r.growth.tarOverhead)}, index with trees ${fmtBytes(r.growth.indexBytes)}, ` +
              `version ${fmtBytes(r.growth.versionBytes)}, HTTP and the rest ${fmtBytes(r.bytesUp - r.growth.total)}` : '') + ')' : '');
        out.push(`- ${verdict}: elton backup ${r.op}: ${r.target} — got ${got}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
