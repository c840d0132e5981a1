// Requests to an elton master: keep-alive connections, bearer auth, custom CAs, transfer accounting, and typed errors.

import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { IncomingMessage, ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { authError, EltonError, EXIT, ioError, remoteError, unreachable } from '../errors.js';
import { MASTER_HEADER } from './wire.js';
import { noTransfer, type Transfer } from '../store/store.js';

export interface HttpClientOptions {
  /** Bearer token; never logged or shown in errors. */
  token?: string;
  /** PEM file of extra certificate authorities to trust (ELTON_CA_FILE). */
  caFile?: string;
  /** Sent with every request (a master forwarding to a peer names itself in X-Elton-Via). */
  headers?: Record<string, string>;
  /** The name the server must answer with in X-Elton-Master (a peer is checked to be who it was configured as). */
  expectName?: string;
}

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  body?: Buffer;
  contentType?: string;
  /** Response types the caller takes, best first. */
  accept?: string;
  /** Writes a streamed body (chunked); resolves when everything is written. */
  stream?: (req: ClientRequest) => Promise<void>;
  /** Statuses returned to the caller instead of thrown (e.g. 404 for "no version yet"). */
  allow?: number[];
  headers?: Record<string, string>;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);
const TLS_TRUST_CODES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS/;
const IDLE_TIMEOUT_MS = Number(process.env.ELTON_HTTP_TIMEOUT_MS ?? 120_000);

/** Counts what a request moved on its socket (headers included), whichever request the keep-alive socket served before. */
function meter(req: ClientRequest, transfer: Transfer): () => void {
  let socket: Socket | undefined;
  let w0 = 0;
  let r0 = 0;
  let counted = false;
  req.once('socket', (s: Socket) => { socket = s; w0 = s.bytesWritten; r0 = s.bytesRead; });
  return () => {
    if (counted || !socket) return;
    counted = true;
    transfer.bytesUp += socket.bytesWritten - w0;
    transfer.bytesDown += socket.bytesRead - r0;
  };
}

export class HttpClient {
  readonly transfer = noTransfer();
  /** The master's protocol version, from its last answer (0 until one arrives). */
  serverProtocol = 0;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;

  constructor(readonly base: URL, private readonly opts: HttpClientOptions = {}) {
    const secure = base.protocol === 'https:';
    this.mod = secure ? https : http;
    const ca = opts.caFile ? [...rootCertificates, readCa(opts.caFile)] : undefined;
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 16, ca }) : new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  get url(): string { return this.base.href.replace(/\/$/, ''); }

  /** Sends one request and returns the response, its body not yet read. Errors are EltonErrors. */
  async request(spec: RequestSpec): Promise<IncomingMessage> {
    const url = new URL(spec.path, this.base);
    const headers: Record<string, string> = { 'user-agent': 'elton', ...this.opts.headers, ...spec.headers };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (spec.contentType) headers['content-type'] = spec.contentType;
    if (spec.accept) headers.accept = spec.accept;
    if (spec.body) headers['content-length'] = String(spec.body.length);
    this.transfer.requests++;
    const req = this.mod.request(url, { method: spec.method, agent: this.agent, headers });
    const count = meter(req, this.transfer);
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', (res) => {
        res.once('end', count).once('close', count);
        resolve(res);
      });
      req.once('error', (err) => { count(); reject(err); });
    });
    response.catch(() => {});
    try {
      if (spec.stream) {
        // The master may answer early (a refusal) while the body is still going up.
        const early = response.then(() => undefined);
        await Promise.race([spec.stream(req), early]);
        req.end();
      } else {
        req.end(spec.body);
      }
      const res = await response;
      this.serverProtocol = Number(res.headers['x-elton-protocol']) || 1;
      if (this.opts.expectName !== undefined && res.headers[MASTER_HEADER] !== this.opts.expectName) {
        res.resume();
        const said = res.headers[MASTER_HEADER];
        throw new EltonError('E_PEER', `the peer configured as "${this.opts.expectName}" at ${this.url} is ${said ? `the master named "${said}"` : 'not a named elton master'}`, EXIT.remote,
          'fix the peer\'s URL in --peer or the peers file: each peer must be the master of that name (docs/federation.md)', { peer: this.opts.expectName, answered: said ?? null });
      }
      if (res.statusCode! >= 400 && !spec.allow?.includes(res.statusCode!)) throw await this.errorFrom(res, spec);
      return res;
    } catch (err) {
      req.destroy();
      throw this.translate(err);
    }
  }

  /** A request whose response body is small: returns it whole. */
  async fetch(spec: RequestSpec): Promise<{ status: number; body: Buffer; headers: IncomingMessage['headers'] }> {
    const res = await this.request(spec);
    try {
      return { status: res.statusCode!, body: await readBody(res), headers: res.headers };
    } catch (err) {
      throw this.translate(err);
    }
  }

  async json<T>(spec: RequestSpec): Promise<T> {
    const { body } = await this.fetch(spec);
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch {
      throw remoteError(`${this.url} sent a response that is not JSON`, 'check that the URL points at an elton master');
    }
  }

  /** Network and TLS failures become E_UNREACHABLE / E_AUTH; EltonErrors pass through. */
  translate(err: unknown): Error {
    if (err instanceof EltonError) return err;
    const e = err as NodeJS.ErrnoException;
    const code = e?.code ?? '';
    if (TLS_TRUST_CODES.test(code)) {
      return authError(`cannot verify the TLS certificate of ${this.url}: ${e.message}`, 'if the master uses a private CA, set ELTON_CA_FILE=/path/to/ca.pem');
    }
    if (NETWORK_CODES.has(code) || /socket hang up|aborted|premature/i.test(e?.message ?? '')) {
      return unreachable(this.url, code ? `${code}${e.message && !e.message.includes(code) ? ` (${e.message})` : ''}` : e.message, err);
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  private async errorFrom(res: IncomingMessage, spec: RequestSpec): Promise<Error> {
    let body: { error?: { code?: string; message?: string; hint?: string; exitCode?: number; details?: Record<string, unknown> } } = {};
    try { body = JSON.parse((await readBody(res, 1024 * 1024)).toString('utf8')); } catch { /* not an elton error body */ }
    const e = body.error;
    const status = res.statusCode!;
    if (status === 401) {
      return authError(`${this.url} refused the request: ${this.opts.token ? 'the token is not valid' : 'it needs a token'}`,
        'set ELTON_TOKEN to a token from the master\'s token file (or "token" in .elton/config.json)');
    }
    if (status === 403) {
      return authError(`${this.url} refused ${spec.method} ${spec.path.split('?')[0]}: ${e?.message ?? 'the token lacks the scope for it'}`,
        e?.hint ?? 'use a token with the scope the master names: write to commit or push, read to fetch, keys to change an encrypted master\'s keyring');
    }
    if (e?.code && e.message && typeof e.exitCode === 'number') return new EltonError(e.code, e.message, e.exitCode, e.hint, e.details);
    return remoteError(`${this.url} answered ${status} ${res.statusMessage ?? ''} to ${spec.method} ${spec.path.split('?')[0]}`.trim());
  }

  close(): void {
    this.agent.destroy();
  }
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw ioError(`cannot read the CA file ${file} (ELTON_CA_FILE)`, err);
  }
}

export async function readBody(res: IncomingMessage, max = 256 * 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const part of res) {
    n += (part as Buffer).length;
    if (n > max) throw remoteError(`response over ${max} bytes`);
    parts.push(part as Buffer);
  }
  return Buffer.concat(parts);
}
