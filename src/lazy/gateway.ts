// `elton serve`: an HTTP gateway and cache node in front of any remote (the thesis's Slave, a CDN edge).
//
//   GET /                      the trees (HTML, or JSON with Accept: application/json)
//   GET /NAME/                 its versions
//   GET /NAME@V/PATH           a file (Range, ETag = content id, immutable caching) or a directory listing
//   GET /NAME@latest/PATH      the same, resolved at most LATEST_TTL_MS ago, with a short max-age
//   GET /-/stats               what the gateway served, fetched and saved
// Content comes lazily from the remote through the user cache; concurrent requests for one object
// share one upstream fetch. Only the version's own tree is served: every path segment is decoded
// and checked, nothing on the local disk is reachable, and symlinks are never followed.

import http from 'node:http';
import { EltonError } from '../errors.js';
import { formatRef, isTreeName, parseRef } from '../ref.js';
import type { Store, Transfer } from '../store/store.js';
import type { CacheUse } from '../store/user-cache.js';
import { invalidNameReason } from '../tree.js';
import type { VersionRecord } from '../version.js';
import { ObjectLoader, type LoaderStats } from './loader.js';
import { closeGracefully, listen } from '../lib/http-server.js';
import { VersionView, type Node } from './view.js';

/** How long a gateway reuses a resolved @latest; also its max-age. */
export const LATEST_TTL_MS = 5000;
const IMMUTABLE = 'public, max-age=31536000, immutable';
const LATEST = `public, max-age=${LATEST_TTL_MS / 1000}`;

export interface GatewayLog {
  time: string;
  client: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  bytesOut: number;
  /** Why a request failed, with the object id when one failed verification. */
  error?: string;
}

export interface GatewayStats {
  requests: number;
  bytesServed: number;
  status: Record<string, number>;
  upstream: Transfer;
  cache: CacheUse | null;
  loader: LoaderStats;
}

export interface Gateway {
  url: string;
  stats(): GatewayStats;
  close(): Promise<void>;
}

export interface GatewayOptions {
  store: Store;
  host: string;
  port: number;
  onRequest?: (log: GatewayLog) => void;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) { super(message); }
}

const STATUS: Record<string, number> = {
  E_USAGE: 400, E_BAD_REF: 400, E_NOT_FOUND: 404, E_NO_PEER: 404, E_AUTH: 502, E_CORRUPT: 502, E_REMOTE: 502, E_PEER: 502, E_LOOP: 502, E_UNREACHABLE: 504,
};

const TYPES: Record<string, string> = {
  txt: 'text/plain; charset=utf-8', md: 'text/markdown; charset=utf-8', csv: 'text/csv; charset=utf-8', log: 'text/plain; charset=utf-8',
  html: 'text/html; charset=utf-8', htm: 'text/html; charset=utf-8', css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8',
  json: 'application/json', xml: 'application/xml', pdf: 'application/pdf', zip: 'application/zip', gz: 'application/gzip', tar: 'application/x-tar',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', svg: 'image/svg+xml', webp: 'image/webp', mp4: 'video/mp4', wasm: 'application/wasm',
};

const contentType = (name: string) => TYPES[name.slice(name.lastIndexOf('.') + 1).toLowerCase()] ?? 'application/octet-stream';

/**
 * Splits a raw request path into names, refusing anything that could step outside the tree:
 * every segment is percent-decoded once and must then be a plain entry name (no "..", ".", "/",
 * "\", NUL). Empty segments are allowed only as the trailing slash of a directory.
 */
export function splitRequestPath(raw: string): { names: string[]; trailingSlash: boolean } {
  const pathPart = raw.split('?')[0];
  if (!pathPart.startsWith('/')) throw new HttpError(400, 'the path must start with /');
  const segments = pathPart.slice(1).split('/');
  const trailingSlash = segments.length > 1 && segments[segments.length - 1] === '';
  if (trailingSlash || segments[segments.length - 1] === '') segments.pop();
  const names = segments.map((s) => {
    let name: string;
    try { name = decodeURIComponent(s); } catch { throw new HttpError(400, `bad percent-encoding in "${s}"`); }
    const why = invalidNameReason(name) ?? (name.includes('\\') ? 'contains "\\"' : undefined);
    if (why) throw new HttpError(400, `path segment "${s}" refused: ${why}`);
    return name;
  });
  return { names, trailingSlash };
}

/** bytes=A-B, bytes=A- or bytes=-N (one range; several are answered with the whole file, as RFC 9110 allows). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'whole' | 'unsatisfiable' {
  if (!header) return 'whole';
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'whole';
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  if (start >= size || end <= start) return 'unsatisfiable';
  return { start, end };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const hrefOf = (names: string[]) => '/' + names.map(encodeURIComponent).join('/');

function humanSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return u ? `${n.toFixed(1)} ${units[u]}` : `${n} B`;
}

interface Row { name: string; href: string; type: string; size: number | null; mtime: number | null; note?: string }

function page(title: string, crumbs: Array<{ name: string; href: string }>, rows: Row[]): string {
  const crumbHtml = crumbs.map((c, i) => (i === crumbs.length - 1 ? `<span>${escapeHtml(c.name)}</span>` : `<a href="${escapeHtml(c.href)}">${escapeHtml(c.name)}</a>`)).join(' / ');
  const body = rows.map((r) => `<tr class="${r.type}"><td class="name"><a href="${escapeHtml(r.href)}">${escapeHtml(r.name)}${r.type === 'dir' ? '/' : ''}</a>${r.note ? ` <span class="note">${escapeHtml(r.note)}</span>` : ''}</td>`
    + `<td class="size">${r.size === null ? '' : escapeHtml(humanSize(r.size))}</td><td class="mtime">${r.mtime === null ? '' : escapeHtml(new Date(r.mtime).toISOString().replace('T', ' ').slice(0, 19))}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2430;background:#fff}
h1{font-size:1.25rem;font-weight:600;margin:0 0 1rem}nav{color:#667;margin-bottom:1rem}nav a{color:#2458b3;text-decoration:none}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e6e8ee}
th{font-weight:600;color:#556;font-size:.85rem;text-transform:uppercase;letter-spacing:.04em}td.size,th.size{text-align:right;white-space:nowrap}
td.mtime{color:#667;white-space:nowrap;font-variant-numeric:tabular-nums}tr:hover td{background:#f5f7fb}
a{color:#2458b3}tr.dir a{font-weight:600}.note{color:#889;font-size:.85rem}footer{margin-top:1.5rem;color:#99a;font-size:.8rem}
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<nav>${crumbHtml}</nav>
<table><thead><tr><th>Name</th><th class="size">Size</th><th>Modified (UTC)</th></tr></thead>
<tbody>
${body}
</tbody></table>
<footer>elton gateway &middot; content-addressed, immutable versions</footer>
</body></html>
`;
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const { store } = opts;
  const loader = new ObjectLoader(store);
  const views = new Map<string, VersionView>();
  const latest = new Map<string, { at: number; version: Promise<number> }>();
  const totals = { requests: 0, bytesServed: 0, status: {} as Record<string, number> };

  const latestOf = (tree: string): Promise<number> => {
    const held = latest.get(tree);
    if (held && Date.now() - held.at < LATEST_TTL_MS) return held.version;
    const version = store.latestVersion(tree);
    latest.set(tree, { at: Date.now(), version });
    version.catch(() => latest.delete(tree));
    return version;
  };

  // Version records are immutable: concurrent requests for one share a single read.
  const records = new Map<string, Promise<VersionRecord>>();
  const recordOf = (tree: string, version: number): Promise<VersionRecord> => {
    const key = formatRef(tree, version);
    let r = records.get(key);
    if (!r) {
      r = store.readVersion(tree, version);
      if (records.size > 10_000) records.delete(records.keys().next().value!);
      records.set(key, r);
      r.catch(() => records.delete(key));
    }
    return r;
  };

  const viewOf = async (record: VersionRecord): Promise<VersionView> => {
    const key = formatRef(record.tree, record.version);
    let v = views.get(key);
    if (!v) {
      v = new VersionView(loader, record);
      if (views.size > 1000) views.delete(views.keys().next().value!);
      views.set(key, v);
    }
    return v;
  };

  const wantsJson = (req: http.IncomingMessage) => /application\/json/.test(req.headers.accept ?? '') && !/text\/html/.test(req.headers.accept ?? '');

  const sendBody = (req: http.IncomingMessage, res: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}) => {
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { 'content-type': type, 'content-length': String(data.length), 'x-content-type-options': 'nosniff', ...headers });
    res.end(req.method === 'HEAD' ? undefined : data);
    return data.length;
  };

  const listing = (req: http.IncomingMessage, res: http.ServerResponse, json: unknown, html: () => string, headers: Record<string, string>) => {
    if (wantsJson(req)) return sendBody(req, res, 200, 'application/json', JSON.stringify(json, null, 2) + '\n', { vary: 'Accept', ...headers });
    return sendBody(req, res, 200, 'text/html; charset=utf-8', html(), { vary: 'Accept', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'", ...headers });
  };

  const notModified = (req: http.IncomingMessage, res: http.ServerResponse, etag: string, headers: Record<string, string>) => {
    const inm = req.headers['if-none-match'];
    if (!inm || !inm.split(',').map((s) => s.trim()).some((t) => t === etag || t === `W/${etag}` || t === '*')) return false;
    res.writeHead(304, { etag, ...headers });
    res.end();
    return true;
  };

  async function serveNode(req: http.IncomingMessage, res: http.ServerResponse, view: VersionView, node: Node, names: string[], trailingSlash: boolean, cache: string): Promise<number> {
    const ref = view.ref;
    if (node.type === 'symlink') throw new HttpError(403, `"${node.path}" is a symlink to "${node.target}"; the gateway does not follow symlinks`);
    if (node.type === 'dir') {
      if (!trailingSlash) {
        res.writeHead(301, { location: hrefOf(names) + '/', 'cache-control': cache });
        res.end();
        return 0;
      }
      const json = wantsJson(req);
      const etag = `"${node.id}.${json ? 'json' : 'html'}"`;
      const headers = { etag, 'cache-control': cache };
      if (notModified(req, res, etag, headers)) return 0;
      const entries = await view.list(node);
      const rows: Row[] = entries.map((e) => ({
        name: e.name, href: hrefOf([...names, e.name]) + (e.type === 'dir' ? '/' : ''), type: e.type,
        size: e.type === 'file' ? e.size : null, mtime: e.mtime, note: e.type === 'symlink' ? `→ ${e.target}` : undefined,
      }));
      if (names.length > 1) rows.unshift({ name: '..', href: hrefOf(names.slice(0, -1)) + '/', type: 'up', size: null, mtime: null });
      const crumbs = [{ name: 'trees', href: '/' }, ...names.map((n, i) => ({ name: n, href: hrefOf(names.slice(0, i + 1)) + '/' }))];
      return listing(req, res, {
        ref, path: node.path, id: node.id,
        entries: entries.map((e) => ({ name: e.name, type: e.type, size: e.size, mode: e.mode.toString(8).padStart(4, '0'), mtime: new Date(e.mtime).toISOString(), ...(e.type === 'symlink' ? { target: e.target } : { id: e.id }) })),
      }, () => page(`${ref}:/${node.path}`, crumbs, rows), headers);
    }
    if (trailingSlash) throw new HttpError(404, `"${node.path}" is a file, not a directory`);
    const etag = `"${node.id}"`;
    const headers: Record<string, string> = {
      etag, 'cache-control': cache, 'accept-ranges': 'bytes', 'last-modified': new Date(node.mtime).toUTCString(),
      // User content on the gateway's origin must not run as a page of it.
      'content-security-policy': 'sandbox', 'x-content-type-options': 'nosniff',
    };
    if (notModified(req, res, etag, headers)) return 0;
    const ifRange = req.headers['if-range'];
    const range = ifRange && ifRange !== etag ? 'whole' : parseRange(req.headers.range, node.size);
    if (range === 'unsatisfiable') throw new HttpError(416, `range not satisfiable for ${node.size} bytes`, { 'content-range': `bytes */${node.size}` });
    const { start, end } = range === 'whole' ? { start: 0, end: node.size } : range;
    const partial = range !== 'whole';
    // The first window is fetched (and verified) before the status line, so a missing or corrupt object still gets an error status.
    const body = view.stream(node, start, end);
    const first = req.method === 'HEAD' ? undefined : await body.next();
    res.writeHead(partial ? 206 : 200, {
      ...headers, 'content-type': contentType(node.name), 'content-length': String(end - start),
      ...(partial ? { 'content-range': `bytes ${start}-${end - 1}/${node.size}` } : {}),
    });
    if (!first) { res.end(); return 0; }
    let sent = 0;
    const write = (b: Buffer) => new Promise<void>((resolve, reject) => {
      sent += b.length;
      if (res.write(b)) resolve(); else res.once('drain', resolve);
      res.once('error', reject);
    });
    if (!first.done) await write(first.value);
    for await (const b of body) await write(b);
    res.end();
    return sent;
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'the gateway is read-only: GET and HEAD only', { allow: 'GET, HEAD' });
    const { names, trailingSlash } = splitRequestPath(req.url ?? '/');
    if (names.length === 0) {
      const trees = await store.listTrees();
      return listing(req, res, { trees }, () => page('trees', [{ name: 'trees', href: '/' }], trees.map((t) => ({ name: t, href: `/${encodeURIComponent(t)}/`, type: 'dir', size: null, mtime: null }))), { 'cache-control': 'no-cache' });
    }
    if (names[0] === '-' && names[1] === 'stats' && names.length === 2) return sendBody(req, res, 200, 'application/json', JSON.stringify(stats(), null, 2) + '\n', { 'cache-control': 'no-store' });
    if (names.length === 1 && isTreeName(names[0])) {
      const tree = names[0];
      if (!trailingSlash) { res.writeHead(301, { location: `/${encodeURIComponent(tree)}/` }); res.end(); return 0; }
      const versions = (await store.listVersions(tree)).reverse();
      if (!versions.length) throw new HttpError(404, `tree "${tree}" has no versions`);
      const rows: Row[] = [{ name: `${tree}@latest`, href: `/${encodeURIComponent(tree)}@latest/`, type: 'dir', size: null, mtime: null, note: `now ${tree}@${versions[0]}` },
        ...versions.map((v) => ({ name: `${tree}@${v}`, href: `/${encodeURIComponent(tree)}@${v}/`, type: 'dir', size: null, mtime: null }))];
      return listing(req, res, { tree, versions }, () => page(tree, [{ name: 'trees', href: '/' }, { name: tree, href: `/${encodeURIComponent(tree)}/` }], rows), { 'cache-control': LATEST });
    }
    const ref = parseRef(names[0]);
    if (!ref.tree) throw new HttpError(400, `"${names[0]}" names no tree: write NAME@V`);
    let version = ref.version;
    if (version === 'latest') {
      version = await latestOf(ref.tree);
      if (version === 0) throw new HttpError(404, `tree "${ref.tree}" has no versions`);
    }
    const view = await viewOf(await recordOf(ref.tree, version));
    const found = await view.lookup(names.slice(1).join('/'));
    if (found.kind === 'through-symlink') throw new HttpError(403, `"${found.at}" is a symlink; the gateway does not follow symlinks`);
    if (found.kind === 'absent') throw new HttpError(404, `"${names.slice(1).join('/')}" not found in ${view.ref}`);
    return serveNode(req, res, view, found.node, names, trailingSlash, ref.version === 'latest' ? LATEST : IMMUTABLE);
  }

  const stats = (): GatewayStats => ({
    requests: totals.requests, bytesServed: totals.bytesServed, status: { ...totals.status },
    upstream: { ...store.transfer }, cache: store.use ? structuredClone(store.use) : null, loader: { ...loader.stats },
  });

  const server = http.createServer((req, res) => {
    const started = performance.now();
    totals.requests++;
    let error: string | undefined;
    const finish = (bytesOut: number) => {
      totals.bytesServed += bytesOut;
      totals.status[res.statusCode] = (totals.status[res.statusCode] ?? 0) + 1;
      opts.onRequest?.({
        time: new Date().toISOString(), client: req.socket.remoteAddress ?? '-', method: req.method ?? '-', path: req.url ?? '-',
        status: res.statusCode, ms: performance.now() - started, bytesOut, ...(error ? { error } : {}),
      });
    };
    route(req, res).then(finish, (err: unknown) => {
      let status = 500;
      let message: string;
      let headers: Record<string, string> = {};
      if (err instanceof HttpError) {
        status = err.status;
        message = err.message;
        headers = err.headers;
      } else if (err instanceof EltonError) {
        status = STATUS[err.code] ?? 500;
        message = err.message;
        const object = err.details?.object;
        error = `${err.code}${object ? ` object ${object}` : ''}: ${err.message}`;
      } else {
        message = 'internal error';
        error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      }
      if (res.headersSent) {
        // Mid-body: the only honest signal left is a cut connection, never a short or wrong file.
        res.destroy();
        finish(0);
        return;
      }
      finish(sendBody(req, res, status, 'application/json', JSON.stringify({ error: { status, message } }) + '\n', { 'cache-control': 'no-store', ...headers }));
    });
  });
  const url = await listen(server, opts.host, opts.port, 'http');
  let closing: Promise<void> | undefined;
  return { url, stats, close: () => closing ??= closeGracefully(server, 5000) };
}

