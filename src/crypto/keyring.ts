// The envelope scheme (docs/encryption.md): one random 256-bit repository key, stored only wrapped,
// by one or more key sources at once (a passphrase through scrypt, a key file, AWS KMS). The keys
// that encrypt objects and key their ids are derived from it, so no data is re-encrypted when a
// wrapping is added, removed or rotated.

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EltonError, EXIT, authError, ioError, usage } from '../errors.js';
import type { Kms } from './kms.js';

export const KEYRING_FORMAT = 1;

/** Where a wrapping's key comes from, as written on the command line. */
export type KeySource =
  | { kind: 'passphrase'; passphrase: string }
  | { kind: 'keyfile'; path: string }
  | { kind: 'kms'; keyId: string };

export interface Wrapping {
  /** Names the wrapping in `elton key list` and `elton key remove`. */
  id: string;
  source: 'passphrase' | 'keyfile' | 'kms';
  created: string;
  /** passphrase: scrypt's parameters, recorded so that they can be raised later without breaking old wrappings. */
  scrypt?: { N: number; r: number; p: number; salt: string };
  /** keyfile: a fingerprint of the file's key (not the key), to say which file opens it. */
  keyfile?: { fingerprint: string };
  /** kms: the key as given, and as KMS named it (its ARN). */
  kms?: { keyId: string; keyArn: string };
  /** The repository key, wrapped: nonce, ciphertext and tag of AES-256-GCM (passphrase, keyfile), or the KMS ciphertext blob. Base64. */
  wrapped: string;
}

export interface Keyring {
  format: number;
  cipher: 'aes-256-gcm';
  /** Object ids are HMAC-SHA256 of the plaintext under a key derived from the repository key. */
  ids: 'hmac-sha256';
  /** HMAC of a fixed label under the repository key: tells a wrong key from the right one, whatever unwrapped it. */
  check: string;
  wrappings: Wrapping[];
  /** Write-only hosts (docs/encryption.md): absent when there are none. */
  writers?: WriterEntry[];
  /** One more at every change: a reader refuses a keyring older than one it has seen (a rollback). */
  generation: number;
  /** HMAC of everything above under a key derived from the repository key: a store cannot change a word of it unnoticed. */
  mac: string;
}

/** The keys an encrypted repository works with, derived from its repository key (or, on a write-only host, from its writer key). */
export interface RepoKeys {
  /** Encrypts objects, trees and version records (AES-256-GCM). */
  encKey: Buffer;
  /** Keys object ids (HMAC-SHA256): the storage cannot test for content it knows. */
  idKey: Buffer;
  /** On a write-only host: its writer id. What it seals names it, and it can open nothing else. */
  writer?: string;
  /** For readers: the keys of every writer the keyring lists, by writer id. */
  writers?: Map<string, WriterKeys>;
  /** On a write-only host: the trees it may commit to. */
  trees?: string[];
}

/** What a reader knows of a writer: its keys, and what it may write. */
export interface WriterKeys { encKey: Buffer; idKey: Buffer; name: string; trees: string[] }

/** A write-only host, as the keyring lists it: its key, wrapped under the repository key. */
export interface WriterEntry {
  /** 16 random bytes, hex: named in the header of everything it seals. */
  id: string;
  name: string;
  /** The trees it may commit to: readers refuse its versions of any other. */
  trees: string[];
  created: string;
  /** The writer's key: nonce, ciphertext and tag of AES-256-GCM under a key derived from the repository key. Base64. */
  wrapped: string;
}

/** scrypt at N = 2^16, r = 8: about 64 MiB and 0.2 s here, per unlock. */
export const SCRYPT = { N: 2 ** 16, r: 8, p: 1 };
const SCRYPT_MAXMEM = 256 * 1024 * 1024;
/** A keyring lists at most this many wrappings and writers: each passphrase wrapping may cost a reader a second of scrypt. */
const MAX_WRAPPINGS = 32;
const MAX_WRITERS = 1024;
const KMS_CONTEXT = { purpose: 'elton-repository-key' };

const derive = (master: Buffer, label: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `elton ${label} v1`, 32));

/**
 * The keys of a repository whose key is open: its own, and those of the writers its keyring
 * lists. A writer's wrapping that does not open under this key (tampered with, or not made
 * with it) is left out, so what that writer sealed does not open either.
 */
export function repoKeys(master: Buffer, keyring?: Keyring): RepoKeys {
  const writers = new Map<string, WriterKeys>();
  for (const w of keyring?.writers ?? []) {
    const key = open(derive(master, 'writer wrapping'), w.wrapped, `elton-writer:${w.id}`);
    if (key?.length === 32) writers.set(w.id, { ...writerKeys(key, w.id, w.trees), name: w.name, trees: w.trees });
  }
  return { encKey: derive(master, 'object encryption'), idKey: derive(master, 'object ids'), writers };
}

/** A writer's keys, from its own 32-byte key: it seals, and names ids, with these. */
export function writerKeys(key: Buffer, id: string, trees: string[]): RepoKeys & { trees: string[] } {
  return { encKey: derive(key, 'writer object encryption'), idKey: derive(key, 'writer object ids'), writer: id, trees };
}

/** The keyring's MAC: over its JSON without the MAC itself, in the order it is stored. */
const macOf = (keyring: Omit<Keyring, 'mac'> & { mac?: string }, master: Buffer) =>
  createHmac('sha256', derive(master, 'keyring mac')).update(JSON.stringify({ ...keyring, mac: undefined })).digest('base64');

/**
 * How far a keyring's generation may jump at once. Each change adds one; a copy may carry several
 * over. Without a bound, one write of a keyring at generation 2^53 (a bad MAC, from someone
 * without the key) would leave nothing newer that could ever replace it.
 */
export const MAX_GENERATION_STEP = 1 << 16;

/** A changed keyring, ready to store: its generation one higher, and its MAC made anew. */
export function sealKeyring(keyring: Omit<Keyring, 'mac' | 'generation'> & { generation?: number; mac?: string }, master: Buffer): Keyring {
  const { mac: _, ...rest } = keyring;
  const next = { ...rest, generation: (keyring.generation ?? 0) + 1 };
  return { ...next, mac: macOf(next, master) };
}

/** Refuses a keyring changed by anyone without the key (a store, a token holder): E_CORRUPT. */
export function checkKeyringMac(keyring: Keyring, master: Buffer, where = 'this repository'): void {
  const want = Buffer.from(macOf(keyring, master), 'base64');
  const got = Buffer.from(typeof keyring.mac === 'string' ? keyring.mac : '', 'base64');
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new EltonError('E_CORRUPT', `the keyring of ${where} was changed by someone without its key`, EXIT.corrupt,
      'a host that opened it before keeps a checked copy (the user cache\'s keyrings/): the next key command from such a host writes that one back; find out who can write to the store',
      { object: 'keyring', keyringMac: true });
  }
}

const checkOf = (master: Buffer) => createHmac('sha256', derive(master, 'keyring check')).update('elton').digest().subarray(0, 16).toString('base64');

function scrypt(passphrase: string, salt: Buffer, p: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: SCRYPT_MAXMEM };
  return new Promise((resolve, reject) => scryptCb(passphrase.normalize('NFC'), salt, 32, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function seal(kek: Buffer, plain: Buffer, aad: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
}

/** undefined when the key is wrong (or the wrapping was tampered with): GCM's tag says so. */
function open(kek: Buffer, wrapped: string, aad: string): Buffer | undefined {
  const data = Buffer.from(wrapped, 'base64');
  if (data.length < 12 + 16 + 1) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', kek, data.subarray(0, 12));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(data.subarray(data.length - 16));
  try {
    return Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** A key file holds 32 random bytes, as base64 text (`elton key generate`); the wrapping key is derived from them. */
export function readKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw ioError(`cannot read the key file ${path}`, err, 'check the path (ELTON_KEYFILE or keyfile:PATH)');
  }
  const key = Buffer.from(text, 'base64');
  if (key.length < 32 || !/^[A-Za-z0-9+/=\s]+$/.test(text)) throw usage(`${path} is not an elton key file`, 'make one with `elton key generate PATH`: 32 random bytes, base64');
  return key;
}

export const newKeyFileContent = () => `${randomBytes(32).toString('base64')}\n`;

const keyFileKek = (fileKey: Buffer) => derive(fileKey, 'key file');
const fingerprintOf = (fileKey: Buffer) => createHmac('sha256', derive(fileKey, 'key file fingerprint')).update('elton').digest().subarray(0, 8).toString('hex');

/** Parses --key-source: passphrase, keyfile:PATH or kms:KEY_ID_OR_ALIAS (the passphrase itself comes from ELTON_PASSPHRASE or a prompt). */
export function parseKeySource(text: string, passphrase: () => string): KeySource {
  if (text === 'passphrase') return { kind: 'passphrase', passphrase: passphrase() };
  const m = /^(keyfile|kms):(.+)$/.exec(text);
  if (m?.[1] === 'keyfile') return { kind: 'keyfile', path: m[2] };
  if (m?.[1] === 'kms') return { kind: 'kms', keyId: m[2] };
  throw usage(`bad key source "${text}"`, 'write passphrase, keyfile:PATH or kms:KEY_ID (a key id, ARN or alias/NAME)');
}

const newWrappingId = () => randomBytes(4).toString('hex');

async function wrapWith(source: KeySource, master: Buffer, kms: () => Kms): Promise<Wrapping> {
  const id = newWrappingId();
  const created = new Date().toISOString();
  const aad = `elton-keyring:${id}`;
  if (source.kind === 'passphrase') {
    if (source.passphrase.length < 8) throw usage('the passphrase is shorter than 8 characters', 'choose a longer one (a few words)');
    const salt = randomBytes(16);
    const kek = await scrypt(source.passphrase, salt, SCRYPT);
    return { id, source: 'passphrase', created, scrypt: { ...SCRYPT, salt: salt.toString('base64') }, wrapped: seal(kek, master, aad) };
  }
  if (source.kind === 'keyfile') {
    const fileKey = readKeyFile(source.path);
    return { id, source: 'keyfile', created, keyfile: { fingerprint: fingerprintOf(fileKey) }, wrapped: seal(keyFileKek(fileKey), master, aad) };
  }
  const { wrapped, keyArn } = await kms().wrap(source.keyId, master, { ...KMS_CONTEXT, wrapping: id });
  return { id, source: 'kms', created, kms: { keyId: source.keyId, keyArn }, wrapped: wrapped.toString('base64') };
}

/**
 * A new repository key, wrapped by every source given. With KMS first, KMS generates the key
 * (GenerateDataKey), so that it never exists outside KMS and this process.
 */
export async function createKeyring(sources: KeySource[], kms: () => Kms): Promise<{ keyring: Keyring; master: Buffer }> {
  if (!sources.length) throw usage('an encrypted repository needs at least one key source', 'pass --key-source passphrase, keyfile:PATH or kms:KEY_ID');
  let master: Buffer;
  const wrappings: Wrapping[] = [];
  const [first, ...rest] = sources;
  if (first.kind === 'kms') {
    const id = newWrappingId();
    const generated = await kms().generateKey(first.keyId, { ...KMS_CONTEXT, wrapping: id });
    master = generated.plain;
    wrappings.push({ id, source: 'kms', created: new Date().toISOString(), kms: { keyId: first.keyId, keyArn: generated.keyArn }, wrapped: generated.wrapped.toString('base64') });
  } else {
    master = randomBytes(32);
    wrappings.push(await wrapWith(first, master, kms));
  }
  for (const s of rest) wrappings.push(await wrapWith(s, master, kms));
  return { keyring: sealKeyring({ format: KEYRING_FORMAT, cipher: 'aes-256-gcm', ids: 'hmac-sha256', check: checkOf(master), wrappings }, master), master };
}

/** What a reader offers to open a keyring with: a passphrase and key files, from flags or the environment; KMS is tried when a wrapping names it. */
export interface Unlockers {
  passphrase?: string;
  keyFiles?: string[];
  /** Try the KMS wrappings (default true): a host without KMS access skips them. */
  kms?: boolean;
}


/**
 * Opens the keyring: tries each wrapping for which a key is offered (key files, then the
 * passphrase, then KMS), and checks the key it yields. A wrong passphrase or key file is E_AUTH
 * (exit 12), and nothing is ever decrypted with a wrong key.
 */
export async function unlock(keyring: Keyring, offered: Unlockers, kms: () => Kms, where?: string): Promise<Buffer> {
  if (keyring.format !== KEYRING_FORMAT) throw new EltonError('E_FORMAT', `keyring format ${keyring.format} is not supported`, EXIT.format, 'upgrade elton');
  const expected = Buffer.from(keyring.check, 'base64');
  const accept = (master: Buffer | undefined) => {
    if (!master || master.length !== 32) return undefined;
    const check = Buffer.from(checkOf(master), 'base64');
    if (check.length !== expected.length || !timingSafeEqual(check, expected)) return undefined;
    checkKeyringMac(keyring, master, where);
    return master;
  };
  const tried: string[] = [];
  let unreadable: EltonError | undefined;
  for (const path of offered.keyFiles ?? []) {
    let fileKey: Buffer;
    try {
      fileKey = readKeyFile(path);
    } catch (err) {
      // Another source may still open it; this one is reported if none does.
      if (!(err instanceof EltonError)) throw err;
      unreadable ??= err;
      continue;
    }
    const fp = fingerprintOf(fileKey);
    for (const w of keyring.wrappings.filter((x) => x.source === 'keyfile' && x.keyfile?.fingerprint === fp)) {
      const master = accept(open(keyFileKek(fileKey), w.wrapped, `elton-keyring:${w.id}`));
      if (master) return master;
    }
    tried.push(`the key file ${path}`);
  }
  if (offered.passphrase !== undefined) {
    for (const w of keyring.wrappings.filter((x) => x.source === 'passphrase')) {
      const kek = await scrypt(offered.passphrase, Buffer.from(w.scrypt!.salt, 'base64'), w.scrypt!);
      const master = accept(open(kek, w.wrapped, `elton-keyring:${w.id}`));
      if (master) return master;
    }
    tried.push('the passphrase');
  }
  let kmsFailure: unknown;
  if (offered.kms !== false) {
    for (const w of keyring.wrappings.filter((x) => x.source === 'kms')) {
      try {
        const master = accept(await kms().unwrap(Buffer.from(w.wrapped, 'base64'), { ...KMS_CONTEXT, wrapping: w.id }));
        if (master) return master;
        tried.push(`KMS key ${w.kms!.keyId}`);
      } catch (err) {
        kmsFailure ??= err;
      }
    }
  }
  const how = [...new Set(keyring.wrappings.map((w) => (w.source === 'passphrase' ? 'ELTON_PASSPHRASE' : w.source === 'keyfile' ? 'ELTON_KEYFILE=PATH' : 'AWS credentials allowed to kms:Decrypt (and ELTON_KMS not off)')))];
  const hint = `it opens with: ${describeWrappings(keyring)}; set ${how.join(', or ')}`;
  if (tried.length) {
    const what = tried.length === 1 ? `${tried[0]} does not` : `neither ${tried.slice(0, -1).join(', ')} nor ${tried[tried.length - 1]} does`;
    throw authError(`${what} open this repository's key`, hint);
  }
  if (kmsFailure) throw kmsFailure;
  if (unreadable) throw unreadable;
  throw authError('this repository is encrypted, and no key was given to open it', hint);
}

export function describeWrappings(keyring: Keyring): string {
  return keyring.wrappings.map((w) => (w.source === 'kms' ? `kms:${w.kms!.keyId}` : w.source === 'keyfile' ? `a key file (fingerprint ${w.keyfile!.fingerprint})` : 'a passphrase')).join(', ');
}

/** Adds a wrapping by another source; the repository key must be open. */
export async function addWrapping(keyring: Keyring, master: Buffer, source: KeySource, kms: () => Kms): Promise<Keyring> {
  return { ...keyring, wrappings: [...keyring.wrappings, await wrapWith(source, master, kms)] };
}

/**
 * Removes a wrapping; refused for the last one, which would lock everyone out for good. A
 * writer's id removes that writer: its credential stops working, and what it wrote no longer opens.
 */
export function removeWrapping(keyring: Keyring, id: string): Keyring {
  if (keyring.writers?.some((w) => w.id === id)) {
    const writers = keyring.writers.filter((w) => w.id !== id);
    const { writers: _, ...rest } = keyring;
    return writers.length ? { ...rest, writers } : rest;
  }
  if (!keyring.wrappings.some((w) => w.id === id)) throw new EltonError('E_NOT_FOUND', `no wrapping "${id}" in this repository's keyring`, EXIT.notFound, '`elton key list` shows them');
  if (keyring.wrappings.length === 1) {
    throw usage(`wrapping ${id} is the last one: without it, nothing could ever open this repository`, 'add another first (elton key add), then remove this one');
  }
  return { ...keyring, wrappings: keyring.wrappings.filter((w) => w.id !== id) };
}

/**
 * Re-wraps the repository key under a KMS key (the same one, after KMS rotated its material, or a
 * new one): only the wrapping changes; no object is re-encrypted.
 */
export async function rotateKms(keyring: Keyring, master: Buffer, id: string, newKeyId: string | undefined, kms: () => Kms): Promise<Keyring> {
  const old = keyring.wrappings.find((w) => w.id === id);
  if (!old) throw new EltonError('E_NOT_FOUND', `no wrapping "${id}" in this repository's keyring`, EXIT.notFound, '`elton key list` shows them');
  if (old.source !== 'kms') throw usage(`wrapping ${id} is a ${old.source}, not a KMS key`, 'rotate KMS wrappings only; for the others, add a new wrapping and remove the old one');
  const fresh = await wrapWith({ kind: 'kms', keyId: newKeyId ?? old.kms!.keyId }, master, kms);
  return { ...keyring, wrappings: keyring.wrappings.map((w) => (w.id === id ? fresh : w)) };
}

/** The keyring as listed: no secret, and nothing that helps to guess one. */
export function listWrappings(keyring: Keyring): Array<{ id: string; source: string; created: string; detail: string }> {
  return [
    ...keyring.wrappings.map((w) => ({
      id: w.id, source: w.source, created: w.created,
      detail: w.source === 'kms' ? w.kms!.keyArn : w.source === 'keyfile' ? `fingerprint ${w.keyfile!.fingerprint}` : `scrypt N=${w.scrypt!.N} r=${w.scrypt!.r} p=${w.scrypt!.p}`,
    })),
    ...(keyring.writers ?? []).map((w) => ({ id: w.id, source: 'writer', created: w.created, detail: `write-only host "${w.name}", trees ${w.trees.join(', ')}` })),
  ];
}

export function encodeKeyring(keyring: Keyring): Buffer {
  return Buffer.from(JSON.stringify(keyring, null, 2) + '\n');
}

export function decodeKeyring(data: Buffer, where: string): Keyring {
  const bad = (why: string) => new EltonError('E_CORRUPT', `the keyring at ${where} is ${why}`, EXIT.corrupt, 'restore it from a backup of the repository (elton backup copies it)');
  let k: Keyring;
  try {
    k = JSON.parse(data.toString('utf8')) as Keyring;
  } catch {
    throw bad('not JSON');
  }
  if (typeof k !== 'object' || k === null || typeof k.format !== 'number') throw bad('malformed');
  if (k.format !== KEYRING_FORMAT) throw new EltonError('E_FORMAT', `keyring format ${k.format} at ${where} is not supported`, EXIT.format, 'upgrade elton');
  const b64 = (x: unknown, bytes?: number) => typeof x === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(x) && (bytes === undefined || Buffer.from(x, 'base64').length === bytes);
  if (!b64(k.check, 16) || !b64(k.mac, 32) || !Number.isSafeInteger(k.generation) || k.generation < 1) throw bad('malformed');
  if (!Array.isArray(k.wrappings) || !k.wrappings.length) throw bad('without any wrapping');
  if (k.wrappings.length > MAX_WRAPPINGS || (Array.isArray(k.writers) && k.writers.length > MAX_WRITERS)) throw bad('malformed (too many wrappings or writers)');
  for (const w of k.wrappings) {
    const ok = typeof w?.id === 'string' && /^[0-9a-f]{8}$/.test(w.id) && typeof w.created === 'string' && b64(w.wrapped) && (
      (w.source === 'passphrase' && !!w.scrypt && validScrypt(w.scrypt) && b64(w.scrypt.salt, 16))
      || (w.source === 'keyfile' && typeof w.keyfile?.fingerprint === 'string')
      || (w.source === 'kms' && typeof w.kms?.keyId === 'string' && typeof w.kms.keyArn === 'string'));
    if (!ok) throw bad(`malformed (wrapping ${String(w?.id).slice(0, 16)})`);
  }
  if (k.writers !== undefined) {
    if (!Array.isArray(k.writers)) throw bad('malformed (writers)');
    for (const w of k.writers) {
      const ok = typeof w?.id === 'string' && /^[0-9a-f]{32}$/.test(w.id) && typeof w.name === 'string' && Array.isArray(w.trees) && w.trees.every((t) => typeof t === 'string') && b64(w.wrapped);
      if (!ok) throw bad(`malformed (writer ${String(w?.id).slice(0, 40)})`);
    }
  }
  return k;
}

/** scrypt parameters this elton will run: N a power of two up to 2^20, r and p small (a hostile keyring must not exhaust memory). */
const validScrypt = (p: { N: unknown; r: unknown; p: unknown }) =>
  Number.isSafeInteger(p.N) && (p.N as number) >= 2 ** 14 && (p.N as number) <= 2 ** 20 && ((p.N as number) & ((p.N as number) - 1)) === 0
  && Number.isSafeInteger(p.r) && (p.r as number) >= 1 && (p.r as number) <= 32 && Number.isSafeInteger(p.p) && (p.p as number) >= 1 && (p.p as number) <= 16
  && 128 * (p.N as number) * (p.r as number) <= SCRYPT_MAXMEM / 2;

// --- write-only hosts ------------------------------------------------------------------------

export const WRITER_CREDENTIAL_KIND = 'elton-writer';

/**
 * What a write-only host holds (docs/encryption.md): its own key, from which it derives the keys
 * it seals and names ids with, and nothing of the repository key. The key is in the file, or
 * wrapped by KMS (`kms`), so that the host must also be allowed kms:Decrypt on that key.
 */
export interface WriterCredential {
  format: number;
  kind: typeof WRITER_CREDENTIAL_KIND;
  /** The repository's check value: a credential for another repository is refused. */
  check: string;
  id: string;
  name: string;
  key?: string;
  kms?: { keyId: string; keyArn: string; wrapped: string };
}

const writerContext = (id: string) => ({ purpose: 'elton-writer-key', writer: id });

/**
 * Adds a write-only host to the keyring: a new random key, wrapped under the repository key in
 * the keyring (so readers can open what it seals), and its credential for the host.
 */
export async function addWriter(keyring: Keyring, master: Buffer, name: string, trees: string[], kmsKeyId: string | undefined, kms: () => Kms): Promise<{ keyring: Keyring; credential: WriterCredential }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw usage(`bad writer name "${name}"`, 'use letters, digits, ".", "_" and "-" (a host name, say)');
  if (keyring.writers?.some((w) => w.name === name)) throw usage(`a writer named "${name}" is in the keyring already`, '`elton key list` shows them; remove it first, or choose another name');
  if (!trees.length) throw usage('a write-only host needs the trees it may commit to', 'pass --tree NAME (repeatable)');
  const id = randomBytes(16).toString('hex');
  const key = randomBytes(32);
  const entry: WriterEntry = { id, name, trees: [...new Set(trees)].sort(), created: new Date().toISOString(), wrapped: seal(derive(master, 'writer wrapping'), key, `elton-writer:${id}`) };
  const credential: WriterCredential = { format: KEYRING_FORMAT, kind: WRITER_CREDENTIAL_KIND, check: keyring.check, id, name };
  if (kmsKeyId) {
    const w = await kms().wrap(kmsKeyId, key, writerContext(id));
    credential.kms = { keyId: kmsKeyId, keyArn: w.keyArn, wrapped: w.wrapped.toString('base64') };
  } else {
    credential.key = key.toString('base64');
  }
  return { keyring: { ...keyring, writers: [...(keyring.writers ?? []), entry] }, credential };
}

export function decodeWriterCredential(data: Buffer, where: string): WriterCredential {
  let c: WriterCredential;
  try { c = JSON.parse(data.toString('utf8')) as WriterCredential; } catch { c = undefined as unknown as WriterCredential; }
  if (c?.kind !== WRITER_CREDENTIAL_KIND || typeof c.id !== 'string' || !/^[0-9a-f]{32}$/.test(c.id) || typeof c.check !== 'string' || (typeof c.key !== 'string' && !c.kms)) {
    throw usage(`${where} is not an elton writer credential`, 'make one with `elton key writer NAME --out PATH` on a host that holds the repository key');
  }
  return c;
}

/** A write-only host's keys, from its credential: it must be for this repository, and still listed in its keyring. */
export async function openWriter(keyring: Keyring, path: string, kms: () => Kms): Promise<RepoKeys> {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw ioError(`cannot read the writer credential ${path}`, err, 'check ELTON_WRITER');
  }
  const c = decodeWriterCredential(data, path);
  if (c.check !== keyring.check) throw authError(`the writer credential ${path} is for another repository`, 'use the credential made for this store (elton key writer)');
  const entry = keyring.writers?.find((w) => w.id === c.id);
  if (!entry) {
    throw authError(`writer "${c.name}" (${c.id}) is no longer in this repository's keyring`, 'it was removed: ask for a new credential (elton key writer NAME --out PATH)');
  }
  const key = c.kms ? await kms().unwrap(Buffer.from(c.kms.wrapped, 'base64'), writerContext(c.id)) : Buffer.from(c.key!, 'base64');
  if (key.length !== 32) throw authError(`the writer credential ${path} holds no valid key`, 'make a new one (elton key writer)');
  return writerKeys(key, c.id, entry.trees);
}
