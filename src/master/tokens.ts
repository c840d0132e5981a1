// Bearer tokens with read, write and keys scopes, read from a token file; compared in constant time, never logged.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ioError, usage } from '../errors.js';

/** read and write the data; `keys`: replace an encrypted repository's keyring (docs/encryption.md). */
export type Scope = 'read' | 'write' | 'keys';
export interface Grant { name: string; scopes: Set<Scope> }

/** Tokens shorter than this are refused: a guessable token is worse than none, because it looks safe. */
const MIN_TOKEN_LENGTH = 16;

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export class TokenTable {
  private constructor(private readonly entries: Array<{ digest: Buffer; grant: Grant }>) {}

  get size(): number { return this.entries.length; }

  /**
   * Parses a token file: one token per line, `TOKEN SCOPES [NAME]`, SCOPES being `read`, `write`
   * and `keys`, comma-separated; blank lines and lines starting with `#` are ignored.
   */
  static parse(text: string, file = 'token file'): TokenTable {
    const entries: Array<{ digest: Buffer; grant: Grant }> = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const [token, scopeText, name, ...rest] = line.split(/\s+/);
      const where = `${file}, line ${i + 1}`;
      if (rest.length || !scopeText) throw usage(`${where}: expected "TOKEN SCOPES [NAME]"`, 'SCOPES is read, write or read,write');
      if (token.length < MIN_TOKEN_LENGTH) throw usage(`${where}: the token is shorter than ${MIN_TOKEN_LENGTH} characters`, 'make one with `openssl rand -hex 32`');
      const scopes = new Set<Scope>();
      for (const s of scopeText.split(',')) {
        if (s !== 'read' && s !== 'write' && s !== 'keys') throw usage(`${where}: unknown scope "${s}"`, 'SCOPES is read, write or keys, comma-separated (read,write)');
        scopes.add(s);
      }
      entries.push({ digest: digest(token), grant: { name: name ?? `token${entries.length + 1}`, scopes } });
    });
    if (!entries.length) throw usage(`${file} holds no tokens`, 'add a line "TOKEN read,write NAME"');
    return new TokenTable(entries);
  }

  static load(file: string): TokenTable {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch (err) { throw ioError(`cannot read the token file ${file}`, err); }
    return TokenTable.parse(text, file);
  }

  /** The grant of a presented token, or undefined. Every entry is compared, so timing says nothing of which matched. */
  check(token: string): Grant | undefined {
    const d = digest(token);
    let found: Grant | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d)) found ??= e.grant;
    return found;
  }
}
