// SHA-256 helpers: object ids are lowercase hex SHA-256 digests.

import { createHash } from 'node:crypto';

const ID_PATTERN = /^[0-9a-f]{64}$/;

export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest();
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}
