// Use-case: run a master on a data directory, with tokens and TLS read from files.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMasterName } from '../ref.js';
import type { PeerConfig, PeerEvent, PeerStatus } from '../master/federation.js';
import { ioError, usage } from '../errors.js';
import { startMaster, type Master, type RequestLog } from '../master/server.js';
import type { ReplicationEvent, ReplicationStatus } from '../master/replicator.js';
import { HttpClient } from '../remote/http-client.js';
import { API } from '../remote/wire.js';
import { isHttpUrl, normalizeRemote } from '../store/open.js';
import { TokenTable } from '../master/tokens.js';
import { DEFAULT_PORT } from '../remote/wire.js';
import type { Deps } from './context.js';

export interface MasterOptions {
  data: string;
  listen?: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  onRequest?: (log: RequestLog) => void;
  /** A remote (URL or path) to copy every version to; its token comes from ELTON_REPLICATE_TOKEN. */
  replicateTo?: string;
  onReplication?: (e: ReplicationEvent) => void;
  /** This master's name in a federation. */
  name?: string;
  /** NAME=URL; the token comes from ELTON_PEER_TOKEN_NAME (upper case, "-" as "_") or ELTON_PEER_TOKEN. */
  peer?: string[];
  /** A file of peers, one "NAME URL [token-file=PATH] [ca-file=PATH]" per line. */
  peersFile?: string;
  /** Seconds an answer of a home to @latest is reused. */
  latestTtl?: number;
  onPeerEvent?: (e: PeerEvent) => void;
  /** Hold an encrypted repository as opaque ciphertext, without its key. */
  encrypted?: boolean;
}

export interface MasterInfo {
  url: string; data: string; auth: 'tokens' | 'open'; tokens: number; tls: boolean; replicateTo: string | null;
  /** It holds an encrypted repository (docs/master.md). */
  encrypted: boolean;
  /** The federation name (null: not named), and the peers by name and URL. */
  name: string | null; peers: Array<{ name: string; url: string }>;
}

const peerTokenVar = (name: string) => `ELTON_PEER_TOKEN_${name.toUpperCase().replace(/-/g, '_')}`;

function peerUrl(url: string, where: string): string {
  if (!isHttpUrl(url)) throw usage(`${where}: "${url}" is not a master URL`, 'peers are masters: write http(s)://HOST:PORT');
  return url.replace(/\/+$/, '');
}

function peerName(name: string, where: string): string {
  if (!isMasterName(name)) throw usage(`${where}: "${name}" is not a master name`, 'a master name is 1-40 lowercase letters, digits and "-", starting with a letter or digit');
  return name;
}

/** Peers from --peer NAME=URL flags and a peers file, with their tokens (docs/federation.md). */
export function parsePeers(flags: string[], file: string | undefined, cwd: string, env: NodeJS.ProcessEnv = process.env): PeerConfig[] {
  const peers: PeerConfig[] = [];
  const caFile = env.ELTON_CA_FILE || undefined;
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq < 1) throw usage(`bad --peer "${flag}"`, 'write --peer NAME=URL, for example --peer tokyo=https://tokyo.example:3586');
    const name = peerName(flag.slice(0, eq), `--peer ${flag}`);
    peers.push({ name, url: peerUrl(flag.slice(eq + 1), `--peer ${flag}`), token: env[peerTokenVar(name)] || env.ELTON_PEER_TOKEN || undefined, caFile });
  }
  if (file) {
    const path = resolve(cwd, file);
    readFile(path, 'peers file').toString('utf8').split('\n').forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) return;
      const where = `${path}:${i + 1}`;
      const [name, url, ...options] = line.split(/\s+/);
      if (!url) throw usage(`${where}: expected "NAME URL [token-file=PATH] [ca-file=PATH]"`);
      const peer: PeerConfig = { name: peerName(name, where), url: peerUrl(url, where), caFile };
      for (const option of options) {
        const m = /^(token-file|ca-file)=(.+)$/.exec(option);
        if (!m) throw usage(`${where}: unknown option "${option}"`, 'the options are token-file=PATH and ca-file=PATH');
        const optionPath = resolve(dirname(path), m[2]);
        if (m[1] === 'token-file') peer.token = readFile(optionPath, 'peer token file').toString('utf8').trim();
        else { readFile(optionPath, 'peer CA file'); peer.caFile = optionPath; }
      }
      peer.token ??= env[peerTokenVar(peer.name)] || env.ELTON_PEER_TOKEN || undefined;
      peers.push(peer);
    });
  }
  return peers;
}

/** Parses HOST:PORT, [IPv6]:PORT or :PORT (all interfaces); no --listen means loopback on the default port. */
export function parseListen(text: string | undefined): { host: string; port: number } {
  if (text === undefined) return { host: '127.0.0.1', port: DEFAULT_PORT };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw usage(`bad --listen "${text}"`, 'write HOST:PORT, for example 127.0.0.1:3586, 0.0.0.0:3586 or [::1]:3586; port 0 picks a free one');
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function readFile(path: string, what: string): Buffer {
  try { return readFileSync(path); } catch (err) { throw ioError(`cannot read the ${what} ${path}`, err); }
}

export async function runMaster(opts: MasterOptions, deps: Deps): Promise<{ master: Master; info: MasterInfo }> {
  const { host, port } = parseListen(opts.listen);
  if (!!opts.tlsCert !== !!opts.tlsKey) throw usage('TLS needs both --tls-cert and --tls-key', 'pass both (PEM files), or neither for plain HTTP');
  const tokens = opts.tokenFile ? TokenTable.load(resolve(deps.cwd, opts.tokenFile)) : undefined;
  const tls = opts.tlsCert ? { cert: readFile(resolve(deps.cwd, opts.tlsCert), 'TLS certificate'), key: readFile(resolve(deps.cwd, opts.tlsKey!), 'TLS key') } : undefined;
  const data = resolve(deps.cwd, opts.data);
  const replicateTo = opts.replicateTo === undefined ? undefined : normalizeRemote(opts.replicateTo, deps.cwd);
  if (opts.name !== undefined) peerName(opts.name, '--name');
  const peers = parsePeers(opts.peer ?? [], opts.peersFile, deps.cwd);
  if (opts.latestTtl !== undefined && !(opts.latestTtl >= 0)) throw usage(`bad --latest-ttl ${opts.latestTtl}`, 'seconds, 0 or more');
  let master: Master;
  try {
    master = await startMaster({
      dataDir: data, host, port, tokens, tls, onRequest: opts.onRequest,
      replicateTo: replicateTo ? { url: replicateTo, token: process.env.ELTON_REPLICATE_TOKEN || undefined, onEvent: opts.onReplication } : undefined,
      name: opts.name, peers, latestTtlMs: opts.latestTtl === undefined ? undefined : opts.latestTtl * 1000, onPeerEvent: opts.onPeerEvent,
      encrypted: opts.encrypted,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw usage(`${host}:${port} is already in use`, 'stop the other server, or pick another port with --listen');
    if (code === 'EACCES' || code === 'EADDRNOTAVAIL') throw usage(`cannot listen on ${host}:${port} (${code})`, 'pick another address or a port above 1023');
    throw err;
  }
  if (!tokens && !['127.0.0.1', '::1', 'localhost'].includes(host)) {
    deps.reporter?.({ type: 'warning', code: 'W_OPEN', message: `listening on ${host} without --token-file: anyone who can reach it can read and write` });
  }
  return {
    master,
    info: {
      url: master.url, data, auth: tokens ? 'tokens' : 'open', tokens: tokens?.size ?? 0, tls: !!tls, replicateTo: replicateTo ?? null, encrypted: master.encrypted,
      name: master.name ?? null, peers: peers.map((p) => ({ name: p.name, url: p.url })),
    },
  };
}

export interface MasterStatus {
  url: string;
  server: string;
  protocol: number;
  uptimeSeconds: number;
  /** It holds an encrypted repository (absent from masters before it). */
  encrypted?: boolean;
  trees: number;
  /** null when the master does not replicate. */
  replication: ReplicationStatus | null;
  /** Its federation name (null: not named), and its traffic with each peer. */
  name: string | null;
  peers: PeerStatus[];
}

/** A running master's status, replication included (one request). */
export async function masterStatus(url: string, deps: Deps): Promise<MasterStatus> {
  const remote = normalizeRemote(url, deps.cwd);
  if (!isHttpUrl(remote)) throw usage(`"${url}" is not a master URL`, 'write http(s)://HOST:PORT');
  const client = new HttpClient(new URL(`${remote}/`), { token: process.env.ELTON_TOKEN || undefined, caFile: process.env.ELTON_CA_FILE || undefined });
  try {
    const s = await client.json<Omit<MasterStatus, 'url'>>({ method: 'GET', path: `${API}/status` });
    return { url: remote, ...s };
  } finally {
    client.close();
  }
}
