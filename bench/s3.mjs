// S3 benchmark: elton, restic and rclone push the small tree to s3rver and check it out (whole, and one file cold), direct and through an emulated WAN, counted at the server.
import fs from 'node:fs';
import path from 'node:path';
import {
  RCLONE_VARIANTS, RCLONE_WAN_FILES, WAN, WAN_NAME, listFiles, liveServers, makeSubset, rcloneEnv, rcloneErrors, runAsync, s3rverVersion, startS3, wanProxy,
} from './support.mjs';

const MiB = 1024 * 1024;
/** The issue's targets for elton: a push takes at most ceil(tree bytes / 16 MiB) + 10 requests, a cold checkout of one file at most 4. */
const PUSH_REQUESTS = (bytes) => Math.ceil(bytes / (16 * MiB)) + 10;
const ONE_FILE_REQUESTS = 4;
/** s3rver accepts any signature made with this key pair. */
const S3_KEYS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
/** Every tool writes under this prefix of the bucket `bench`, so a bucket listing shows only its own keys. */
const PREFIX = { elton: 'elton', restic: 'restic' };

/**
 * Runs the S3 benchmark on workload `wl` in scratch directory `dir` and returns {rows, markdown}.
 * ctx: {elton, env, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes, have, version}.
 */
export async function benchS3(wl, dir, ctx) {
  const { elton, reps, log, freshCopy, verifyTree, parseJson, fmtSec, fmtBytes } = ctx;
  const env = { ...ctx.env, ...S3_KEYS };
  delete env.AWS_CA_BUNDLE; // the machine's proxy CA: restic and rclone fail with it, and it is not s3rver's
  const rows = [];
  const { track, untrack, stopAll } = liveServers(); // s3rvers and proxies, stopped whatever happens
  const startProxy = await wanProxy();
  const proxyTo = async (s3) => track(await startProxy(s3));
  const mustOk = (r, what) => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300)}`);
    return r;
  };
  /** Runs the commands one after the other, stopping at the first failure; the result is the last one's, with the times added up. */
  const inSequence = async (...commands) => {
    let seconds = 0;
    const results = [];
    for (const c of commands) {
      const r = await c();
      seconds += r.seconds;
      results.push(r);
      if (r.code !== 0) break;
    }
    return { ...results.at(-1), seconds, results };
  };

  /**
   * Times step.run(c) `reps` times (median), counting what reaches the s3rver `c.s3` during each run.
   * step.setup(i) runs untimed before and returns the context c ({s3, proxy, ...}); step.measure(result, c)
   * returns {own, note} and throws if the result is wrong; step.target(row) returns {target, pass}.
   */
  const measure = async (tool, op, link, files, step) => {
    const row = { tool, op, link, files, seconds: null, times: [], requests: null, bytesUp: null, bytesDown: null, methods: '', own: null, note: '' };
    try {
      for (let i = 0; i < reps; i++) {
        const c = await step.setup(i);
        const counted = c.s3.mark();
        const r = await step.run(c);
        const seen = counted(); // before measure(), which may list the bucket
        mustOk(r, `${tool} ${op}`);
        row.times.push(r.seconds);
        Object.assign(row, seen, await step.measure(r, c));
        await step.teardown?.(c);
      }
      row.seconds = [...row.times].sort((a, b) => a - b)[Math.floor((row.times.length - 1) / 2)];
      Object.assign(row, step.target?.(row));
    } catch (e) {
      row.error = e.message;
      Object.assign(row, step.target?.(row));
      row.pass = row.target ? false : undefined;
    }
    rows.push(row);
    const t = row.error
      ? `ERROR ${row.error}`
      : `${fmtSec(row.seconds)} s  ${row.requests ?? '?'} req  up ${fmtBytes(row.bytesUp)}  down ${fmtBytes(row.bytesDown)}` +
        (row.target ? `  ${row.target} ${row.pass ? 'PASS' : 'FAIL'}` : '');
    log(`  s3 ${`${tool} ${op}`.padEnd(44)} ${link.padEnd(7)} ${t}`);
    return row;
  };
  const skip = (tool, op, link, files, why) => rows.push({ tool, op, link, files, times: [], error: why });

  // ---- inputs: a working copy for elton (it writes .elton into the tree), the subset, the one file
  const ws = path.join(dir, 'ws');
  const subsetWs = path.join(dir, 'subset');
  const dest = path.join(dir, 'dest');
  const tls = path.join(dir, 'tls');
  let subset = null;
  let oneFile = null;
  try {
    freshCopy(wl.dir, ws);
    subset = makeSubset(wl.dir, subsetWs, RCLONE_WAN_FILES);
    const picked = listFiles(subsetWs);
    oneFile = picked[Math.floor(picked.length / 2)]; // in the subset and in the whole tree
    fs.mkdirSync(tls, { recursive: true });
    // restic only speaks TLS to an S3 endpoint: a self-signed certificate for 127.0.0.1, passed to restic with --cacert
    mustOk(await runAsync(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(tls, 'key.pem'), '-out', path.join(tls, 'cert.pem')], { env }), 'openssl req');
  } catch (e) {
    skip('(setup)', '', '', null, e.message);
    return { rows, markdown: render() };
  }
  const cert = { key: fs.readFileSync(path.join(tls, 'key.pem')), cert: fs.readFileSync(path.join(tls, 'cert.pem')) };
  const oneSrc = fs.readFileSync(path.join(wl.dir, oneFile));

  /** Files under `root`, leaving out tool metadata. */
  const countFiles = (root) => listFiles(root).filter((f) => !f.startsWith('.elton/')).length;
  /** Checks that `root` holds the one file, byte for byte, and nothing else. */
  const verifyOne = (root) => {
    const got = path.join(root, oneFile);
    if (!fs.existsSync(got)) throw new Error(`${oneFile} was not checked out`);
    if (!fs.readFileSync(got).equals(oneSrc)) throw new Error(`${oneFile} differs from the original`);
    const n = countFiles(root);
    if (n !== 1) throw new Error(`expected 1 file in ${root}, found ${n}`);
    return 'verified';
  };
  const pushTarget = (row) => {
    const limit = PUSH_REQUESTS(wl.bytes);
    return { target: `≤ ${limit} req`, pass: row.requests != null && !row.error && row.requests <= limit };
  };
  const oneFileTarget = (row) => ({ target: `≤ ${ONE_FILE_REQUESTS} req`, pass: row.requests != null && !row.error && row.requests <= ONE_FILE_REQUESTS });

  /**
   * One tool's rows on one link: push `src` to a fresh bucket (a new s3rver) on every rep, then check
   * out from the last bucket pushed to. push/checkout/one are {run(c), measure(result, c)}; the
   * context c holds {s3, proxy, endpoint}; checkout.verify(src) compares `dest` with the source.
   */
  const scenario = async ({ name, link, src, files, secure, push, checkout, one, pushOp, checkoutOp, oneOp, targets }) => {
    const key = `${name}-${pushOp}-${link}-${files}`.replace(/[^\w.-]+/g, '-');
    let server = null;
    const endpointOf = (s3, proxy) => (proxy ? `${secure ? 'https' : 'http'}://127.0.0.1:${proxy.port}` : s3.url);
    const withProxy = async (s3) => {
      const proxy = link === 'WAN' ? await proxyTo(s3) : null;
      return { s3, proxy, endpoint: endpointOf(s3, proxy) };
    };
    const dropProxy = async ({ proxy }) => untrack(proxy);
    try {
      const pushed = await measure(name, pushOp, link, files, {
        setup: async (i) => {
          if (server) await untrack(server);
          server = track(await startS3(path.join(dir, `s3-${key}-${i}`), secure ? { tls: cert } : {}));
          return { ...(await withProxy(server)), i };
        },
        run: (c) => push.run(src, c),
        measure: (r, c) => push.measure(r, c),
        teardown: dropProxy,
        target: targets ? pushTarget : undefined,
      });
      const reader = (op, part, verify) =>
        measure(name, op, link, op === oneOp ? 1 : files, {
          setup: async () => {
            if (pushed.error) throw new Error('skipped: the push before it failed');
            fs.rmSync(dest, { recursive: true, force: true });
            return withProxy(server);
          },
          run: (c) => part.run(c),
          measure: async (r, c) => {
            const m = (await part.measure?.(r, c)) ?? {};
            return { ...m, note: [m.note, verify()].filter(Boolean).join('; ') };
          },
          teardown: async (c) => {
            await dropProxy(c);
            fs.rmSync(dest, { recursive: true, force: true });
          },
          target: targets && op === oneOp ? oneFileTarget : undefined,
        });
      if (checkout) await reader(checkoutOp, checkout, () => checkout.verify(src));
      if (one) await reader(oneOp, one, () => verifyOne(dest));
    } finally {
      if (server) await untrack(server);
      for (const e of fs.readdirSync(dir)) if (e.startsWith(`s3-${key}-`)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    }
  };

  // ---- the limit: read and hash the tree once
  {
    const row = { tool: 'limit', op: 'tar | openssl dgst -sha256', link: '', files: wl.files, seconds: null, times: [], note: 'reading and hashing the tree, no network' };
    try {
      for (let i = 0; i < Math.max(3, reps); i++) {
        const r = mustOk(await runAsync(['bash', '-o', 'pipefail', '-c', `tar -cf - -C '${wl.dir}' . | openssl dgst -sha256 >/dev/null`], { env }), 'tar | openssl');
        row.times.push(r.seconds);
      }
      row.seconds = [...row.times].sort((a, b) => a - b)[Math.floor((row.times.length - 1) / 2)];
    } catch (e) {
      row.error = e.message;
    }
    rows.push(row);
    log(`  s3 ${'limit tar | openssl dgst -sha256'.padEnd(44)} ${''.padEnd(7)} ${row.error ? `ERROR ${row.error}` : `${fmtSec(row.seconds)} s`}`);
  }

  try {
    // ---- elton: init + commit pushes; clone checks out the whole tree, or one file with `-- PATH`
    // Clones get a fresh user cache each: objects once fetched are never fetched again, so a shared cache would measure itself.
    const eltonRun = async (args, cwd) => {
      if (args[0] !== 'clone') return runAsync([process.execPath, elton, ...args], { cwd, env });
      const cache = fs.mkdtempSync(path.join(dir, 'cache-'));
      try {
        return await runAsync([process.execPath, elton, ...args], { cwd, env: { ...env, ELTON_CACHE: cache } });
      } finally {
        fs.rmSync(cache, { recursive: true, force: true });
      }
    };
    const remote = (endpoint) => `s3://bench/${PREFIX.elton}?endpoint=${encodeURIComponent(endpoint)}`;
    const transferOf = (j) => j?.transfer ?? { requests: 0, bytesUp: 0, bytesDown: 0 };
    const eltonScenario = (link, src, files, withOne) =>
      scenario({
        name: 'elton', link, src, files, secure: false, targets: files === wl.files,
        pushOp: 'push (init + commit)', checkoutOp: 'clone (whole tree)', oneOp: 'clone -- PATH (one file, cold)',
        push: {
          run: (tree, { endpoint }) => {
            fs.rmSync(path.join(tree, '.elton'), { recursive: true, force: true });
            return inSequence(
              () => eltonRun(['init', '--remote', `s3://bench/${PREFIX.elton}`, '--endpoint', endpoint, '--tree', 'bench', '--json'], tree),
              () => eltonRun(['commit', '-m', 'bench', '--json'], tree),
            );
          },
          measure: (r) => {
            const init = parseJson(r.results[0].stdout);
            const j = parseJson(r.stdout);
            if (j.pending || !j.version) throw new Error(`commit did not reach the bucket: ${JSON.stringify(j).slice(0, 200)}`);
            const a = transferOf(init);
            const b = transferOf(j);
            return {
              own: { requests: a.requests + b.requests, bytesUp: a.bytesUp + b.bytesUp, bytesDown: a.bytesDown + b.bytesDown },
              note: `${j.ref} newObjects=${j.newObjects ?? '?'}; init ${a.requests} req + commit ${b.requests} req; init ${fmtSec(r.results[0].seconds)} s`,
            };
          },
        },
        checkout: {
          run: ({ endpoint }) => eltonRun(['clone', '--json', remote(endpoint), 'bench@1', dest], dir),
          measure: (r) => {
            const j = parseJson(r.stdout);
            return { own: transferOf(j), note: `files=${j.files ?? '?'}` };
          },
          verify: (src) => verifyTree(src, dest),
        },
        one: withOne && {
          run: ({ endpoint }) => eltonRun(['clone', '--json', remote(endpoint), 'bench@1', dest, '--', oneFile], dir),
          measure: (r) => {
            const j = parseJson(r.stdout);
            return { own: transferOf(j), note: `${oneFile} (${fmtBytes(oneSrc.length)}); files=${j.files ?? '?'} fetched=${j.fetched?.objects ?? '?'} objects` };
          },
        },
      });
    await eltonScenario('direct', ws, wl.files, true);
    await eltonScenario('WAN', ws, wl.files, true);
    await eltonScenario('WAN', subsetWs, subset.files, false); // like for like with rclone through the WAN

    // ---- restic over TLS: init + backup pushes, restore checks out (--include for one file)
    if (!ctx.have('restic')) {
      skip('restic', '(all)', '', null, 'restic not installed');
    } else {
      const cacheDir = path.join(dir, 'restic-cache');
      const restic = (endpoint, args, cwd) => {
        fs.rmSync(cacheDir, { recursive: true, force: true }); // every restic step starts cold
        const port = new URL(endpoint).port;
        return runAsync(['restic', '--cacert', path.join(tls, 'cert.pem'), '--cache-dir', cacheDir, '-r', `s3:https://127.0.0.1:${port}/bench/${PREFIX.restic}`, ...args],
          { cwd, env: { ...env, RESTIC_PASSWORD: 'elton-bench' } });
      };
      const summary = (r) => {
        const line = r.stdout.trim().split('\n').reverse().find((l) => l.includes('"summary"'));
        if (!line) throw new Error(`no summary in restic output: ${r.stdout.slice(-200)}`);
        return JSON.parse(line);
      };
      const resticScenario = (link) =>
        scenario({
          name: 'restic', link, src: wl.dir, files: wl.files, secure: true,
          pushOp: 'init + backup', checkoutOp: 'restore latest', oneOp: 'restore --include PATH (one file, cold)',
          push: {
            // restic reads the workload in place, from inside it, so the snapshot holds the tree at its root
            run: (tree, { endpoint }) => inSequence(() => restic(endpoint, ['init']), () => restic(endpoint, ['backup', '--json', '--quiet', '--host', 'bench', '.'], tree)),
            measure: (r) => {
              const s = summary(r);
              return { note: `new=${s.files_new} data_added=${fmtBytes(s.data_added)} (uncompressed); init ${fmtSec(r.results[0].seconds)} s` };
            },
          },
          checkout: {
            run: ({ endpoint }) => restic(endpoint, ['restore', 'latest', '--target', dest]),
            verify: (src) => verifyTree(src, dest),
          },
          one: {
            run: ({ endpoint }) => restic(endpoint, ['restore', 'latest', '--target', dest, '--include', `/${oneFile}`]),
            measure: () => ({ note: `${oneFile}` }),
          },
        });
      await resticScenario('direct');
      await resticScenario('WAN');
    }

    // ---- rclone: copy up, copy back down (copyto for one file); through the WAN on the subset only.
    // The checkout lists with --fast-list (one recursive listing per 1,000 keys rather than one per
    // directory): s3rver's delimited listing leaves out "directories" that hold no object of their own.
    if (!ctx.have('rclone')) {
      skip('rclone', '(all)', '', null, 'rclone not installed');
    } else {
      const rclone = (endpoint, args) => runAsync(['rclone', ...args], { env: rcloneEnv(env, endpoint) });
      const rcloneScenario = (variant, link, src, files, withOne) =>
        scenario({
          name: 'rclone', link, src, files, secure: false,
          pushOp: `${variant.name.replace(/^rclone /, '')} DIR s3:bench`,
          checkoutOp: `${variant.name.replace(/^rclone /, '')} --fast-list s3:bench DIR`,
          oneOp: 'copyto s3:bench/PATH (one file, cold)',
          push: {
            run: (tree, { endpoint }) => {
              fs.rmSync(path.join(tree, '.elton'), { recursive: true, force: true }); // left by elton's pushes
              return rclone(endpoint, ['copy', ...variant.flags, tree, 's3:bench']);
            },
            measure: async (r, { s3 }) => {
              const listed = await rclone(s3.url, ['size', '--json', 's3:bench']);
              const count = listed.code === 0 ? JSON.parse(listed.stdout).count : '?';
              if (count !== files) throw new Error(`bucket holds ${count} objects, expected ${files}`);
              return { note: `${count} objects in the bucket${rcloneErrors(r.stderr)}` };
            },
          },
          checkout: {
            run: ({ endpoint }) => rclone(endpoint, ['copy', '--fast-list', ...variant.flags, 's3:bench', dest]),
            measure: (r) => ({ note: rcloneErrors(r.stderr).replace(/^; /, '') }),
            verify: (tree) => verifyTree(tree, dest),
          },
          one: withOne && {
            run: ({ endpoint }) => rclone(endpoint, ['copyto', `s3:bench/${oneFile}`, path.join(dest, oneFile)]),
            measure: () => ({ note: oneFile }),
          },
        });
      await rcloneScenario(RCLONE_VARIANTS[0], 'direct', wl.dir, wl.files, true);
      await rcloneScenario(RCLONE_VARIANTS[0], 'WAN', subsetWs, subset.files, true);
      for (const v of RCLONE_VARIANTS.slice(1)) await rcloneScenario(v, 'WAN', subsetWs, subset.files, false);
    }
  } finally {
    await stopAll();
  }
  return { rows, markdown: render() };

  function render() {
    const out = ['', `## S3: push and checkout to s3rver, direct and over a WAN (${WAN.rttMs} ms RTT, ${WAN.mbitPerSec} Mbit/s)`, ''];
    const version = (bin, argv) => (ctx.have(bin) ? ctx.version(argv).trim().split('\n')[0] : 'not installed');
    out.push(
      `- **tree**: ${wl.name}, ${wl.files} files, ${fmtBytes(wl.bytes)}; subset for the WAN rows of rclone (and elton, like for like): ` +
        `${subset ? `${subset.files} files (every ${subset.step}th), ${fmtBytes(subset.bytes)}` : 'n/a'}; one file: ${oneFile ?? 'n/a'}`,
      `- **server**: s3rver ${s3rverVersion()} in the bench process, a fresh bucket (new s3rver, new directory) for every push; checkouts read the last bucket pushed to. ` +
        'restic talks to its own s3rver over TLS (self-signed certificate, `--cacert`)',
      `- **WAN**: test/support/wan-proxy.ts in the bench process, ${WAN.rttMs} ms RTT, ${WAN.mbitPerSec} Mbit/s per direction shared by all connections, one RTT handshake per new connection`,
      '- **requests, bytes**: counted at s3rver (bytes on its sockets; TLS records and handshakes included for restic); elton\'s own `--json` `transfer` is shown next to them',
      `- **targets** (elton): push of the whole tree ≤ ceil(tree bytes / 16 MiB) + 10 = ${PUSH_REQUESTS(wl.bytes)} requests; cold checkout of one file ≤ ${ONE_FILE_REQUESTS} requests`,
      `- **tools**: ${version('restic', ['restic', 'version'])}; ${version('rclone', ['rclone', 'version'])}`,
      `- **reps**: ${reps}, median reported (the limit row: ${Math.max(3, reps)})`,
      '',
      '| tool | operation | link | files | seconds | requests | bytes up | bytes down | elton\'s own count | target | result | note |',
      '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |',
    );
    for (const r of rows) {
      const secs = r.times.length > 1 ? `${fmtSec(r.seconds)} (×${r.times.length})` : fmtSec(r.seconds);
      const result = r.target ? (r.error ? 'ERROR' : r.pass ? 'PASS' : 'FAIL') : '';
      const own = r.own ? `${r.own.requests} req, ${fmtBytes(r.own.bytesUp)} up, ${fmtBytes(r.own.bytesDown)} down` : '';
      const note = r.error ? `ERROR: ${r.error}` : [r.methods, r.note].filter(Boolean).join('; ');
      const cells = [
        r.tool, r.op, r.link === 'WAN' ? WAN_NAME : r.link, r.files ?? '', secs, r.requests ?? '', fmtBytes(r.bytesUp), fmtBytes(r.bytesDown),
        own, r.target ?? '', result, note,
      ];
      out.push(`| ${cells.map((c) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`);
    }
    return out.join('\n') + '\n';
  }
}
