// AWS KMS as a key source: the repository key is wrapped (Encrypt, or GenerateDataKey for a new
// one) and unwrapped (Decrypt) by a KMS key, with the standard AWS credential chain and region.
// AWS_ENDPOINT_URL_KMS (or ELTON_KMS_ENDPOINT) points the SDK at another endpoint: the tests' KMS.

import { KMSClient, DecryptCommand, EncryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { EltonError, EXIT, authError, unreachable } from '../errors.js';

export interface Kms {
  /** A new random 32-byte key, and that key wrapped by `keyId`. */
  generateKey(keyId: string, context: Record<string, string>): Promise<{ plain: Buffer; wrapped: Buffer; keyArn: string }>;
  wrap(keyId: string, plain: Buffer, context: Record<string, string>): Promise<{ wrapped: Buffer; keyArn: string }>;
  unwrap(wrapped: Buffer, context: Record<string, string>): Promise<Buffer>;
}

/** What went wrong at KMS, as an elton error: refusals are E_AUTH (exit 12), the rest E_UNREACHABLE or E_REMOTE. */
function kmsError(err: unknown, what: string): EltonError {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const name = e?.name ?? '';
  const message = e?.message ?? String(err);
  if (/AccessDenied|NotAuthorized|UnrecognizedClient|InvalidSignature|ExpiredToken|IncompleteSignature|InvalidCiphertext|IncorrectKey|KMSInvalidState|DisabledException|CredentialsProviderError/.test(name) || /credential/i.test(message)) {
    return authError(`KMS refused to ${what}: ${name ? `${name}: ` : ''}${message}`,
      'check the AWS credentials and region (the standard credential chain), and that the key policy or IAM grants this caller kms:Encrypt, kms:GenerateDataKey and kms:Decrypt on the key, as docs/encryption.md says');
  }
  if (/NotFound/.test(name)) return new EltonError('E_NOT_FOUND', `KMS key not found while trying to ${what}: ${message}`, EXIT.notFound, 'check the key id, ARN or alias (alias/NAME), and the region');
  if (['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN'].includes(e?.code ?? '') || /TimeoutError|NetworkingError/.test(name)) {
    return unreachable('KMS', message, err, 'the network path to KMS, the region, and AWS_ENDPOINT_URL_KMS if set');
  }
  return new EltonError('E_REMOTE', `KMS failed to ${what}: ${name ? `${name}: ` : ''}${message}`, EXIT.remote, 'retry; if it persists, check the KMS service health for the region');
}

export function awsKms(): Kms {
  const endpoint = process.env.ELTON_KMS_ENDPOINT || undefined;
  let client: KMSClient | undefined;
  const kms = () => client ??= new KMSClient({ endpoint, maxAttempts: 4 });
  return {
    async generateKey(keyId, context) {
      try {
        const r = await kms().send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
        if (!r.Plaintext || !r.CiphertextBlob) throw new Error('GenerateDataKey returned no key');
        return { plain: Buffer.from(r.Plaintext), wrapped: Buffer.from(r.CiphertextBlob), keyArn: r.KeyId ?? keyId };
      } catch (err) {
        throw kmsError(err, `generate a data key with ${keyId}`);
      }
    },
    async wrap(keyId, plain, context) {
      try {
        const r = await kms().send(new EncryptCommand({ KeyId: keyId, Plaintext: plain, EncryptionContext: context }));
        if (!r.CiphertextBlob) throw new Error('Encrypt returned no ciphertext');
        return { wrapped: Buffer.from(r.CiphertextBlob), keyArn: r.KeyId ?? keyId };
      } catch (err) {
        throw kmsError(err, `encrypt with ${keyId}`);
      }
    },
    async unwrap(wrapped, context) {
      try {
        const r = await kms().send(new DecryptCommand({ CiphertextBlob: wrapped, EncryptionContext: context }));
        if (!r.Plaintext) throw new Error('Decrypt returned no plaintext');
        return Buffer.from(r.Plaintext);
      } catch (err) {
        throw kmsError(err, 'decrypt the repository key');
      }
    },
  };
}
