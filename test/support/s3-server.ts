// An in-process S3 endpoint for tests: s3rver behind an HTTP shim that adds what s3rver lacks (conditional writes, aws-chunked bodies), counts traffic and injects faults.
//
// Clients talk to the shim (`endpoint`) with path-style addressing (http://host/BUCKET/KEY). The shim
// forwards each request to s3rver as is (method, path and query, headers, streamed body) and streams
// the response back, except that:
//  - a write carrying `If-None-Match: *` (PutObject, CompleteMultipartUpload) fails with 412
//    PreconditionFailed when the key exists, and one carrying `If-Match: ETAG` when the key's ETag
//    differs or it is absent. Writes to one key are serialized through the shim, so
//    the existence check and the write are atomic against each other;
//  - an aws-chunked body (what SDK v3 sends for a stream body unless checksums are WHEN_REQUIRED) is
//    unframed, since s3rver would store the chunk framing and the checksum trailer as object data;
//  - injected faults answer with an S3 XML error, reset the connection, or flip a byte of a GET body.
//
// s3rver checks the access key but not SigV4 signatures, so forwarding signed headers unchanged is fine.
// Range quirks of s3rver that the shim leaves alone: `bytes=0-0` returns the whole object (an end of 0
// reads as no end), and a suffix range `bytes=-N` returns the first N+1 bytes instead of the last N.

import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import S3rver from 's3rver';

// Node 20 is the supported runtime; the SDK's notice about its own future plans is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Selects requests by HTTP method and object key ('' for bucket-level requests). */
export type RequestMatcher = (method: string, key: string) => boolean;

export interface S3Faults {
  /** The next n requests matching `match` (default: any) get an S3 error response with this status and code, e.g. 503 SlowDown, without reaching s3rver. */
  failNext(n: number, status?: number, code?: string, match?: RequestMatcher): void;
  /** The next n matching requests have their connection reset before any response. */
  dropNext(n: number, match?: RequestMatcher): void;
  /** The next n matching GET requests answered 200/206 with a non-empty body get the byte at the middle of that body flipped (XOR 0xff). */
  corruptNext(n: number, match?: RequestMatcher): void;
  /** The next n matching GET responses answered 200/206 with a body send the headers and half the body, then reset the connection. */
  cutNext(n: number, match?: RequestMatcher): void;
}

export interface S3LogEntry {
  method: string;
  /** Decoded object key; '' for bucket-level requests (ListObjectsV2, CreateBucket). */
  key: string;
  /** Status sent to the client; 0 while in flight, or if the connection was dropped before a response. */
  status: number;
  /** The request's Range header, if any. */
  range?: string;
}

export interface S3Stats {
  /** Requests that reached the shim, including those answered or dropped by faults. */
  requests: number;
  byMethod: Record<string, number>;
  /** Raw bytes read from and written to client connections (headers, bodies and framing). */
  bytesIn: number;
  bytesOut: number;
  /** One entry per request, in arrival order. */
  log: S3LogEntry[];
}

export interface S3Server {
  /** The shim's URL, e.g. http://127.0.0.1:PORT: what clients must use. */
  endpoint: string;
  /** s3rver's own URL (no shim, no faults, no stats): only for tests that need to bypass the shim. */
  direct: string;
  /** Credentials s3rver accepts. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  /** s3rver's data directory. */
  dir: string;
  /** Live counters: the same object throughout, reset in place by resetStats(). */
  stats: S3Stats;
  faults: S3Faults;
  /** Resets stats to zero. */
  resetStats(): void;
  /** Creates a bucket directly in s3rver (bypassing the shim, so it is neither counted nor faulted). */
  createBucket(name: string): Promise<void>;
  /**
   * Environment for a child `elton` process to reach this endpoint. AWS_CA_BUNDLE is present and
   * undefined: the machine sets it globally (a proxy CA) and it must not leak into the child;
   * child_process skips undefined values, so `{ ...process.env, ...server.env() }` drops it.
   */
  env(): Record<string, string | undefined>;
  /** Stops both servers, resets open connections, and removes `dir` if startS3Server created it. */
  close(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
const REGION = 'us-east-1';

/**
 * Headers that describe one hop rather than the message; Node frames each hop itself. `expect` is
 * here too: Node's server already answered the client's 100-continue before the request reached us.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect']);

const PRECONDITION_FAILED = 'At least one of the pre-conditions you specified did not hold';

type FaultRule =
  | { kind: 'fail'; left: number; match: RequestMatcher; status: number; code: string }
  | { kind: 'drop' | 'corrupt' | 'cut'; left: number; match: RequestMatcher };

/** Pending faults, consumed first-registered first by the requests they match. */
class Faults implements S3Faults {
  private readonly rules: FaultRule[] = [];

  failNext(n: number, status = 503, code = 'SlowDown', match: RequestMatcher = () => true): void {
    this.add({ kind: 'fail', left: n, match, status, code });
  }

  dropNext(n: number, match: RequestMatcher = () => true): void {
    this.add({ kind: 'drop', left: n, match });
  }

  corruptNext(n: number, match: RequestMatcher = () => true): void {
    this.add({ kind: 'corrupt', left: n, match });
  }

  cutNext(n: number, match: RequestMatcher = () => true): void {
    this.add({ kind: 'cut', left: n, match });
  }

  /** Consumes one use of the first pending rule of one of `kinds` that matches the request. */
  take(kinds: FaultRule['kind'][], method: string, key: string): FaultRule | undefined {
    const i = this.rules.findIndex((r) => kinds.includes(r.kind) && r.match(method, key));
    if (i < 0) return undefined;
    const rule = this.rules[i];
    if (--rule.left === 0) this.rules.splice(i, 1);
    return rule;
  }

  private add(rule: FaultRule): void {
    if (!Number.isInteger(rule.left) || rule.left < 0) throw new RangeError(`fault count must be an integer >= 0, got ${rule.left}`);
    if (rule.left > 0) this.rules.push(rule);
  }
}

/**
 * Request counters plus raw byte counts. Bytes are read from the client sockets' own counters
 * when asked for, so they include headers and framing and are current at any moment.
 */
class Stats implements S3Stats {
  requests = 0;
  readonly byMethod: Record<string, number> = {};
  readonly log: S3LogEntry[] = [];
  /** Bytes of sockets closed since the last reset. */
  private closed = { in: 0, out: 0 };
  /** Each open socket's byte counts at the last reset (or 0), which are not ours to count. */
  private readonly open = new Map<net.Socket, { in: number; out: number }>();

  get bytesIn(): number {
    let n = this.closed.in;
    for (const [s, base] of this.open) n += s.bytesRead - base.in;
    return n;
  }

  get bytesOut(): number {
    let n = this.closed.out;
    for (const [s, base] of this.open) n += s.bytesWritten - base.out;
    return n;
  }

  watch(socket: net.Socket): void {
    const base = { in: 0, out: 0 };
    this.open.set(socket, base);
    socket.once('close', () => {
      this.closed.in += socket.bytesRead - base.in;
      this.closed.out += socket.bytesWritten - base.out;
      this.open.delete(socket);
    });
  }

  record(entry: S3LogEntry): void {
    this.requests++;
    this.byMethod[entry.method] = (this.byMethod[entry.method] ?? 0) + 1;
    this.log.push(entry);
  }

  reset(): void {
    this.requests = 0;
    for (const m of Object.keys(this.byMethod)) delete this.byMethod[m];
    this.log.length = 0;
    this.closed = { in: 0, out: 0 };
    for (const [s, base] of this.open) {
      base.in = s.bytesRead;
      base.out = s.bytesWritten;
    }
  }
}

/**
 * Removes aws-chunked framing from a request body: `hex-size[;chunk-signature=...]\r\n data \r\n`
 * repeated, then a zero-size chunk, optional trailer lines (`x-amz-checksum-crc32:...`) and an empty line.
 */
class AwsChunkedDecoder extends Transform {
  private state: 'size' | 'data' | 'trailer' | 'done' = 'size';
  /** Data bytes left in the current chunk. */
  private left = 0;
  /** Start of a size or trailer line split across input chunks. */
  private partial = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let off = 0;
    while (off < chunk.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.left, chunk.length - off);
        this.push(chunk.subarray(off, off + n));
        off += n;
        this.left -= n;
        if (this.left === 0) this.state = 'size'; // the CRLF after the data reads as an empty size line
        continue;
      }
      const eol = chunk.indexOf(0x0a, off);
      if (eol < 0) {
        this.partial = Buffer.concat([this.partial, chunk.subarray(off)]);
        break;
      }
      const line = Buffer.concat([this.partial, chunk.subarray(off, eol)]).toString('latin1').replace(/\r$/, '');
      this.partial = Buffer.alloc(0);
      off = eol + 1;
      if (this.state === 'trailer') {
        if (line === '') this.state = 'done';
        continue;
      }
      if (line === '') continue;
      const size = Number.parseInt(line.split(';')[0], 16);
      if (!Number.isInteger(size) || size < 0) return callback(new Error(`malformed aws-chunked size line ${JSON.stringify(line)}`));
      this.left = size;
      this.state = size === 0 ? 'trailer' : 'data';
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    callback(this.state === 'done' ? null : new Error('aws-chunked body ended before its final chunk'));
  }
}

/** Flips every bit of the byte at `offset` of the stream. */
function flipByteAt(offset: number): Transform {
  let pos = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (offset >= pos && offset < pos + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[offset - pos] ^= 0xff;
      }
      pos += chunk.length;
      callback(null, chunk);
    },
  });
}

/** Passes the first `limit` bytes, then calls `cut` (which resets the client connection). */
function cutAt(limit: number, cut: () => void): Transform {
  let pos = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (pos >= limit) return callback();
      const part = chunk.subarray(0, limit - pos);
      pos += part.length;
      this.push(part);
      if (pos >= limit) setImmediate(cut);
      callback();
    },
  });
}

const escapeXml = (s: string): string => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** Answers with an S3-style XML error, which the SDK parses into a named exception (and retries when transient). */
function sendError(res: http.ServerResponse, entry: S3LogEntry, status: number, code: string, message: string, detail: Record<string, string> = {}): void {
  const extra = Object.entries(detail)
    .map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`)
    .join('');
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message>${extra}</Error>`;
  entry.status = status;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

/**
 * Request headers for s3rver. An aws-chunked body is sent unframed and with chunked transfer
 * encoding rather than its decoded length, so that s3rver answers only after the whole client body,
 * trailer included, has arrived and parsed.
 */
function upstreamHeaders(headers: http.IncomingHttpHeaders, awsChunked: boolean): http.OutgoingHttpHeaders {
  const out = withoutHopByHop(headers);
  if (!awsChunked) return out;
  const encodings = String(headers['content-encoding'])
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '' && e !== 'aws-chunked');
  if (encodings.length > 0) out['content-encoding'] = encodings.join(', ');
  else delete out['content-encoding'];
  delete out['content-length'];
  delete out['x-amz-decoded-content-length'];
  delete out['x-amz-trailer'];
  return out;
}

/** Splits a request target into its raw path (never normalized: keys may contain `..` or `//`), query and decoded object key. */
function parseTarget(url: string): { path: string; query: URLSearchParams; key: string } {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const rawKey = path.split('/').slice(2).join('/'); // '/bucket/key...' -> 'key...'
  let key: string;
  try {
    key = decodeURIComponent(rawKey);
  } catch {
    key = rawKey; // not valid percent-encoding; s3rver will reject it, the log shows it as sent
  }
  return { path, query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)), key };
}

/** Starts s3rver and the shim in front of it, both on 127.0.0.1 with ephemeral ports. */
export async function startS3Server(opts: { dir?: string } = {}): Promise<S3Server> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'elton-s3rver-')));
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, vhostBuckets: false });
  const { port: s3Port } = await s3rver.run();
  const direct = `http://127.0.0.1:${s3Port}`;
  const agent = new http.Agent({ keepAlive: true });

  const stats = new Stats();
  const faults = new Faults();
  /** Per object path, the last write queued through the shim; it never rejects. */
  const writeTails = new Map<string, Promise<void>>();

  /** Runs `write` once every earlier write to `path` has settled. */
  const serialize = async (path: string, write: () => Promise<void>): Promise<void> => {
    const mine = (writeTails.get(path) ?? Promise.resolve()).then(write);
    const tail = mine.catch(() => {});
    writeTails.set(path, tail);
    try {
      await mine;
    } finally {
      if (writeTails.get(path) === tail) writeTails.delete(path);
    }
  };

  /** Sends a body-less request straight to s3rver. */
  const requestDirect = async (method: string, path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> => {
    const req = http.request({ host: '127.0.0.1', port: s3Port, method, path, agent });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    let body = '';
    for await (const chunk of res) body += chunk;
    return { status: res.statusCode ?? 0, body, headers: res.headers };
  };

  /** Forwards the request to s3rver and streams its response back, flipping a byte if a corrupt fault applies. */
  const forward = async (req: http.IncomingMessage, res: http.ServerResponse, entry: S3LogEntry): Promise<void> => {
    const awsChunked = /\baws-chunked\b/.test(String(req.headers['content-encoding'] ?? ''));
    const upstream = http.request({
      host: '127.0.0.1',
      port: s3Port,
      method: req.method,
      path: req.url,
      headers: upstreamHeaders(req.headers, awsChunked),
      agent,
    });
    // A failure here (client gone mid-body, bad framing) destroys `upstream`, which rejects the wait below.
    (awsChunked ? pipeline(req, new AwsChunkedDecoder(), upstream) : pipeline(req, upstream)).catch(() => {});
    let upRes: http.IncomingMessage;
    try {
      [upRes] = (await once(upstream, 'response')) as [http.IncomingMessage];
    } catch (err) {
      if (!res.headersSent && !req.socket.destroyed) sendError(res, entry, 500, 'InternalError', `request not forwarded: ${(err as Error).message}`);
      return;
    }
    const status = upRes.statusCode!;
    const length = Number(upRes.headers['content-length'] ?? 0);
    const corrupt =
      entry.method === 'GET' && (status === 200 || status === 206) && length > 0 && faults.take(['corrupt'], entry.method, entry.key) !== undefined;
    const cut =
      !corrupt && entry.method === 'GET' && (status === 200 || status === 206) && length > 1 && faults.take(['cut'], entry.method, entry.key) !== undefined;
    entry.status = status;
    res.writeHead(status, withoutHopByHop(upRes.headers));
    if (cut) {
      await pipeline(upRes, cutAt(Math.floor(length / 2), () => req.socket.resetAndDestroy()), res).catch(() => {});
      return;
    }
    // A client that hangs up mid-response leaves nothing to clean up beyond what pipeline destroys.
    await (corrupt ? pipeline(upRes, flipByteAt(Math.floor(length / 2)), res) : pipeline(upRes, res)).catch(() => {});
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, entry: S3LogEntry, path: string, query: URLSearchParams): Promise<void> => {
    const { method, key } = entry;
    const fault = faults.take(['fail', 'drop'], method, key);
    if (fault?.kind === 'drop') {
      req.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === 'fail') {
      req.resume(); // discard the body so the connection stays usable
      sendError(res, entry, fault.status, fault.code, `injected fault: ${fault.status} ${fault.code}`);
      return;
    }

    // Writes that create or replace the object at `key`. Parts are not among them: S3 does not
    // condition them, and serializing them would stop a multipart upload from sending parts in parallel.
    const objectWrite = key !== '' && ((method === 'PUT' && !query.has('uploadId')) || (method === 'POST' && query.has('uploadId')));
    if (!objectWrite) return forward(req, res, entry);
    // Every write to the key is serialized, not just conditional ones: an unconditional PUT landing
    // between a conditional PUT's check and its write would otherwise be silently overwritten.
    return serialize(path, async () => {
      if (req.headers['if-none-match']?.trim() === '*' && (await requestDirect('HEAD', path)).status === 200) {
        req.resume();
        sendError(res, entry, 412, 'PreconditionFailed', PRECONDITION_FAILED, { Condition: 'If-None-Match' });
        return;
      }
      const ifMatch = req.headers['if-match']?.trim();
      if (ifMatch !== undefined) {
        const head = await requestDirect('HEAD', path);
        if (head.status !== 200 || head.headers.etag !== ifMatch) {
          req.resume();
          sendError(res, entry, 412, 'PreconditionFailed', PRECONDITION_FAILED, { Condition: 'If-Match' });
          return;
        }
      }
      await forward(req, res, entry);
    });
  };

  const shim = http.createServer((req, res) => {
    const { path, query, key } = parseTarget(req.url ?? '/');
    const entry: S3LogEntry = { method: req.method ?? 'GET', key, status: 0 };
    if (req.headers.range !== undefined) entry.range = req.headers.range;
    stats.record(entry);
    handle(req, res, entry, path, query).catch((err: Error) => {
      if (!res.headersSent) sendError(res, entry, 500, 'InternalError', err.message);
      else res.destroy();
    });
  });
  shim.on('connection', (socket: net.Socket) => stats.watch(socket));
  await new Promise<void>((resolve, reject) => {
    shim.once('error', reject);
    shim.listen(0, '127.0.0.1', () => {
      shim.off('error', reject);
      resolve();
    });
  });
  const { port } = shim.address() as net.AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    direct,
    credentials: { ...CREDENTIALS },
    region: REGION,
    dir,
    stats,
    faults,
    resetStats: () => stats.reset(),
    createBucket: async (name) => {
      const { status, body } = await requestDirect('PUT', `/${encodeURIComponent(name)}`);
      if (status !== 200) throw new Error(`s3rver refused to create bucket ${name}: ${status} ${body}`);
    },
    env: () => ({
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_REGION: REGION,
      AWS_CA_BUNDLE: undefined,
    }),
    close: async () => {
      const shimClosed = new Promise<void>((resolve) => shim.close(() => resolve()));
      shim.closeAllConnections();
      await shimClosed;
      agent.destroy();
      await s3rver.close();
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
