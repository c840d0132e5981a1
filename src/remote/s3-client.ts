// S3 remotes' URLs and settings, an SDK client with transfer accounting, and SDK errors turned into typed errors.
//
// A remote is s3://BUCKET/PREFIX, optionally with settings in its query string
// (?endpoint=URL&region=R&path-style=true&storage-class=C), which are saved with the remote in
// the workspace config. Unset settings come from ELTON_S3_* variables, then from the AWS SDK's
// own sources (AWS_REGION, AWS_ENDPOINT_URL_S3, profiles). Credentials only ever come from the
// standard AWS chain (environment, profile, instance role) and are never printed.

import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Socket } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { authError, EltonError, ioError, notFound, remoteError, unreachable, usage } from '../errors.js';
import { noTransfer, type Transfer } from '../store/store.js';

export interface S3Settings {
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  storageClass?: string;
}

export interface S3Target { bucket: string; prefix: string; settings: S3Settings }

const SETTING_KEYS: Record<string, keyof S3Settings> = { endpoint: 'endpoint', region: 'region', 'path-style': 'pathStyle', 'storage-class': 'storageClass' };
/** Lenient: legacy us-east-1 buckets may have capitals and underscores; the endpoint has the last word. */
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;

export const isS3Url = (url: string) => /^s3:\/\//i.test(url);

const parseBool = (text: string, what: string): boolean => {
  if (/^(1|true|yes)$/i.test(text)) return true;
  if (/^(0|false|no)$/i.test(text)) return false;
  throw usage(`${what} must be true or false, not "${text}"`);
};

export function parseS3Url(text: string): S3Target {
  let url: URL;
  try { url = new URL(text); } catch { throw usage(`bad S3 remote "${text}"`, 'write s3://BUCKET or s3://BUCKET/PREFIX'); }
  if (url.username || url.password) throw usage('an S3 remote must not carry credentials', 'credentials come from the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role');
  const bucket = url.hostname;
  if (!BUCKET_NAME.test(bucket)) throw usage(`"${bucket}" is not a valid bucket name`, 'bucket names are 3-63 characters: lowercase letters, digits, dots and hyphens');
  const prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((p) => p === '.' || p === '..') || /\/\//.test(prefix)) throw usage(`bad prefix "${prefix}" in "${text}"`);
  const settings: S3Settings = {};
  for (const [key, value] of url.searchParams) {
    const name = SETTING_KEYS[key];
    if (!name) throw usage(`unknown S3 setting "${key}" in "${text}"`, `settings are ${Object.keys(SETTING_KEYS).join(', ')}`);
    if (name === 'pathStyle') settings.pathStyle = parseBool(value, 'path-style');
    else settings[name] = value;
  }
  if (settings.endpoint) checkEndpoint(settings.endpoint);
  return { bucket, prefix, settings };
}

function checkEndpoint(endpoint: string): void {
  let u: URL;
  try { u = new URL(endpoint); } catch { throw usage(`bad S3 endpoint "${endpoint}"`, 'write http(s)://HOST[:PORT]'); }
  if (!/^https?:$/.test(u.protocol)) throw usage(`bad S3 endpoint "${endpoint}"`, 'write http(s)://HOST[:PORT]');
}

/** The canonical form of an S3 remote, with the settings given to it folded into the query string. */
export function formatS3Url(target: S3Target): string {
  const q = new URLSearchParams();
  const s = target.settings;
  if (s.endpoint) q.set('endpoint', s.endpoint);
  if (s.region) q.set('region', s.region);
  if (s.pathStyle !== undefined) q.set('path-style', String(s.pathStyle));
  if (s.storageClass) q.set('storage-class', s.storageClass);
  const query = q.toString();
  return `s3://${target.bucket}${target.prefix ? `/${target.prefix}` : ''}${query ? `?${query}` : ''}`;
}

/** What the URL says, else the ELTON_S3_* environment; the SDK's own sources fill in the rest. */
export function effectiveSettings(s: S3Settings, env = process.env): S3Settings {
  const endpoint = s.endpoint ?? (env.ELTON_S3_ENDPOINT || undefined);
  if (endpoint) checkEndpoint(endpoint);
  const pathStyleEnv = env.ELTON_S3_PATH_STYLE ? parseBool(env.ELTON_S3_PATH_STYLE, 'ELTON_S3_PATH_STYLE') : undefined;
  return {
    endpoint,
    // S3-compatible stores rarely care about the region, but the SDK refuses to sign without one.
    region: s.region ?? (env.ELTON_S3_REGION || (endpoint && !env.AWS_REGION && !env.AWS_DEFAULT_REGION ? 'us-east-1' : undefined)),
    // S3-compatible stores (MinIO, Ceph, s3rver) mostly want path-style; AWS wants virtual hosts.
    pathStyle: s.pathStyle ?? pathStyleEnv ?? (endpoint !== undefined || !!env.AWS_ENDPOINT_URL_S3 || !!env.AWS_ENDPOINT_URL),
    storageClass: s.storageClass ?? (env.ELTON_S3_STORAGE_CLASS || undefined),
  };
}

/** Counts the bytes every socket of an agent moves, headers and all. */
function meteredAgent(secure: boolean, transfer: Transfer, ca?: string[]): http.Agent {
  const live = new Set<Socket>();
  const closed = { up: 0, down: 0 };
  const track = (socket: Socket) => {
    live.add(socket);
    socket.once('close', () => {
      live.delete(socket);
      closed.up += socket.bytesWritten;
      closed.down += socket.bytesRead;
    });
  };
  Object.defineProperties(transfer, {
    bytesUp: { get: () => closed.up + [...live].reduce((n, s) => n + s.bytesWritten, 0), enumerable: true },
    bytesDown: { get: () => closed.down + [...live].reduce((n, s) => n + s.bytesRead, 0), enumerable: true },
  });
  const options = { keepAlive: true, maxSockets: 32 };
  const agent = secure ? new https.Agent({ ...options, ca }) : new http.Agent(options);
  const create = agent.createConnection.bind(agent) as (...args: unknown[]) => Socket;
  agent.createConnection = ((...args: unknown[]) => {
    const socket = create(...args);
    track(socket);
    return socket;
  }) as typeof agent.createConnection;
  return agent;
}

function extraCa(): string[] | undefined {
  const file = process.env.ELTON_CA_FILE || process.env.AWS_CA_BUNDLE;
  if (!file) return undefined;
  try {
    return [...rootCertificates, readFileSync(file, 'utf8')];
  } catch (err) {
    throw ioError(`cannot read the CA file ${file} (ELTON_CA_FILE or AWS_CA_BUNDLE)`, err);
  }
}

export interface MeteredS3 { client: S3Client; transfer: Transfer; close(): void }

export const MAX_ATTEMPTS = Math.max(1, Number(process.env.ELTON_S3_MAX_ATTEMPTS ?? 6) || 6);

/**
 * An SDK client whose every request attempt is counted. Retries of throttling (503 SlowDown),
 * 5xx and dropped connections are the SDK's standard strategy: exponential backoff with full
 * jitter, up to ELTON_S3_MAX_ATTEMPTS attempts per call.
 */
export function s3Client(settings: S3Settings): MeteredS3 {
  // Node 20 is our supported runtime (the SDK version is pinned in package.json); the SDK's notice about its future plans is noise on every command.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const transfer = noTransfer();
  const secure = !settings.endpoint || settings.endpoint.startsWith('https:');
  const agent = meteredAgent(secure, transfer, secure ? extraCa() : undefined);
  const handler = new (class extends NodeHttpHandler {
    handle(...args: Parameters<NodeHttpHandler['handle']>) {
      transfer.requests++;
      return super.handle(...args);
    }
  })(secure ? { httpsAgent: agent as https.Agent, connectionTimeout: 30_000, requestTimeout: 120_000 } : { httpAgent: agent, connectionTimeout: 30_000, requestTimeout: 120_000 });
  const client = new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.pathStyle,
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: handler,
    // Objects are verified against their SHA-256 ids; the SDK's extra CRC32 on every request is
    // redundant, and S3-compatible stores often reject it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { client, transfer, close: () => { client.destroy(); agent.destroy(); } };
}

interface SdkError { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; Code?: string }

export const s3Status = (err: unknown): number | undefined => (err as SdkError)?.$metadata?.httpStatusCode;
export const s3ErrorName = (err: unknown): string => (err as SdkError)?.name ?? (err as SdkError)?.Code ?? '';
/** The key does not exist (as opposed to the bucket). */
export const isAbsentKey = (err: unknown): boolean => s3ErrorName(err) === 'NoSuchKey' || (s3Status(err) === 404 && s3ErrorName(err) !== 'NoSuchBucket');

const NETWORK = /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EPIPE|ECONNABORTED|socket hang up|TimeoutError|RequestTimeout/;
const TLS = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS/;

/** SDK failures as typed errors, with hints; never includes credentials. */
export function translateS3Error(err: unknown, where: string, bucket: string): Error {
  if (err instanceof EltonError) return err;
  const e = err as SdkError;
  const name = s3ErrorName(err);
  const status = s3Status(err);
  const text = `${name} ${e?.code ?? ''} ${e?.message ?? ''}`;
  if (name === 'NoSuchBucket') return notFound(`bucket "${bucket}"`, 'create it first (for example `aws s3 mb s3://' + bucket + '`), or check the bucket name, region and endpoint');
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(text)) {
    return authError(`no AWS credentials found for ${where}`, 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance role applies');
  }
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'InvalidToken' || name === 'ExpiredToken') {
    return authError(`${where} refused the credentials (${name})`, 'check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the profile) and that the key is active; a wrong region can also cause SignatureDoesNotMatch');
  }
  if (name === 'AccessDenied' || status === 403) {
    return authError(`${where}: access denied`, `the credentials lack permission on s3://${bucket}; grant s3:GetObject, s3:PutObject and s3:ListBucket on the bucket and prefix`);
  }
  if (/Region is missing/i.test(text)) return usage(`no AWS region set for ${where}`, 'set AWS_REGION, or pass --region R to init or clone (it is saved as ?region=R in the remote URL)');
  if (TLS.test(text)) return authError(`cannot verify the TLS certificate of ${where}: ${e?.message}`, 'for a private CA, set ELTON_CA_FILE=/path/to/ca.pem');
  if (NETWORK.test(text) || (!status && /network|connect/i.test(text))) {
    return unreachable(where, (e?.code ?? e?.message ?? name) || 'connection failed', err, 'the endpoint (--endpoint, ELTON_S3_ENDPOINT) and the network');
  }
  return remoteError(`${where} answered ${status ?? ''} ${name}: ${e?.message ?? ''}`.replace(/\s+/g, ' ').trim(), 'if it persists, check the endpoint and the bucket\'s health');
}
