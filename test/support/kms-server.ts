// A local endpoint that speaks the AWS KMS JSON protocol (1.1) for the calls elton makes:
// GenerateDataKey, Encrypt and Decrypt, with keys, aliases, key rotation (old material still
// decrypts), encryption contexts, and per-caller denials to stand in for IAM (a write-only host
// may Encrypt and GenerateDataKey, not Decrypt). The SDK is pointed at it with ELTON_KMS_ENDPOINT,
// so elton's code path is the production one. Signatures are not checked: the caller is the
// access key id named in the Authorization header.

import http from 'node:http';
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';

type Operation = 'GenerateDataKey' | 'Encrypt' | 'Decrypt';

interface Key { id: string; arn: string; material: Buffer[]; enabled: boolean }

export interface KmsServer {
  url: string;
  /** A new symmetric key; `alias` makes it reachable as alias/NAME too. */
  createKey(alias?: string): { keyId: string; arn: string };
  /** New key material: new ciphertexts use it, old ones still decrypt (as KMS's automatic rotation). */
  rotate(keyId: string): void;
  disable(keyId: string): void;
  /** The caller (access key id) may not run these operations: AccessDeniedException. */
  deny(accessKeyId: string, ...ops: Operation[]): void;
  /** Calls answered so far, per operation. */
  calls: Record<Operation, number>;
  close(): Promise<void>;
}

const REGION = 'us-east-1';
const ACCOUNT = '111122223333';

function canonicalContext(ctx: unknown): Buffer {
  const entries = Object.entries((ctx ?? {}) as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries));
}

export async function startKmsServer(): Promise<KmsServer> {
  const keys = new Map<string, Key>();
  const aliases = new Map<string, string>();
  const denied = new Map<string, Set<Operation>>();
  const calls: Record<Operation, number> = { GenerateDataKey: 0, Encrypt: 0, Decrypt: 0 };

  const fail = (res: http.ServerResponse, status: number, type: string, message: string) => {
    const body = JSON.stringify({ __type: type, message });
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const find = (keyId: string): Key | undefined => {
    const id = keyId.startsWith('alias/') ? aliases.get(keyId) : keyId.startsWith('arn:') ? keyId.split('/').pop() : keyId;
    return id ? keys.get(id) : undefined;
  };
  const encrypt = (key: Key, plain: Buffer, ctx: unknown): Buffer => {
    const version = key.material.length - 1;
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.material[version], nonce);
    cipher.setAAD(canonicalContext(ctx));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from('EKMS'), Buffer.from(key.id, 'ascii'), Buffer.from([version]), nonce, body, cipher.getAuthTag()]);
  };

  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const op = String(req.headers['x-amz-target'] ?? '').replace(/^TrentService\./, '') as Operation;
      if (!(op in calls)) return fail(res, 400, 'UnsupportedOperationException', `${op} is not supported by the test KMS`);
      const caller = /Credential=([^/,\s]+)/.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
      if (!caller) return fail(res, 400, 'MissingAuthenticationTokenException', 'no credentials');
      if (denied.get(caller)?.has(op)) {
        return fail(res, 400, 'AccessDeniedException', `User: arn:aws:iam::${ACCOUNT}:user/${caller} is not authorized to perform: kms:${op} because no identity-based policy allows the kms:${op} action`);
      }
      let q: Record<string, unknown>;
      try { q = JSON.parse(Buffer.concat(parts).toString('utf8')); } catch { return fail(res, 400, 'SerializationException', 'bad JSON'); }
      calls[op]++;
      const ok = (value: Record<string, unknown>) => {
        const body = JSON.stringify(value);
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (op === 'Decrypt') {
        const blob = Buffer.from(String(q.CiphertextBlob ?? ''), 'base64');
        const id = blob.subarray(4, 40).toString('ascii');
        const key = keys.get(id);
        if (blob.subarray(0, 4).toString() !== 'EKMS' || !key) return fail(res, 400, 'InvalidCiphertextException', 'the ciphertext is not from this KMS');
        if (!key.enabled) return fail(res, 400, 'DisabledException', `${key.arn} is disabled`);
        const material = key.material[blob[40]];
        if (!material) return fail(res, 400, 'InvalidCiphertextException', 'unknown key material');
        const decipher = createDecipheriv('aes-256-gcm', material, blob.subarray(41, 53));
        decipher.setAAD(canonicalContext(q.EncryptionContext));
        decipher.setAuthTag(blob.subarray(blob.length - 16));
        try {
          const plain = Buffer.concat([decipher.update(blob.subarray(53, blob.length - 16)), decipher.final()]);
          return ok({ KeyId: key.arn, Plaintext: plain.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
        } catch {
          return fail(res, 400, 'InvalidCiphertextException', 'the ciphertext or its encryption context does not match');
        }
      }
      const key = find(String(q.KeyId ?? ''));
      if (!key) return fail(res, 400, 'NotFoundException', `Key '${String(q.KeyId)}' does not exist`);
      if (!key.enabled) return fail(res, 400, 'DisabledException', `${key.arn} is disabled`);
      if (op === 'Encrypt') {
        const plain = Buffer.from(String(q.Plaintext ?? ''), 'base64');
        return ok({ KeyId: key.arn, CiphertextBlob: encrypt(key, plain, q.EncryptionContext).toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
      }
      const size = q.KeySpec === 'AES_128' ? 16 : Number(q.NumberOfBytes ?? 32);
      const plain = randomBytes(size);
      return ok({ KeyId: key.arn, Plaintext: plain.toString('base64'), CiphertextBlob: encrypt(key, plain, q.EncryptionContext).toString('base64') });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    createKey(alias) {
      const id = randomUUID();
      const arn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`;
      keys.set(id, { id, arn, material: [randomBytes(32)], enabled: true });
      if (alias) aliases.set(`alias/${alias}`, id);
      return { keyId: id, arn };
    },
    rotate(keyId) { find(keyId)!.material.push(randomBytes(32)); },
    disable(keyId) { find(keyId)!.enabled = false; },
    deny(accessKeyId, ...ops) { denied.set(accessKeyId, new Set([...(denied.get(accessKeyId) ?? []), ...ops])); },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
