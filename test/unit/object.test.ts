// Object encoding (src/object.ts): golden header bytes, codec choice, and verification on decode.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { encodeObject, encodeRecord, decodeObject, decodeObjectAsync, Kind, Codec, OBJECT_FORMAT } from '../../src/object.js';
import { EltonError } from '../../src/errors.js';
import { pseudoRandom } from '../helpers.js';

const BROTLI = { codec: 'brotli', quality: 2 } as const;
const HELLO_ID = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'; // sha256("hello")

/** Asserts that `fn` throws an EltonError with `code`, and returns it for further checks. */
function throwsElton(fn: () => unknown, code: string): EltonError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof EltonError, `expected an EltonError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

describe('object encoding', () => {
  describe('golden bytes', () => {
    it('format constants are the documented ones', () => {
      assert.equal(OBJECT_FORMAT, 1);
      assert.deepEqual({ ...Kind }, { chunk: 1, tree: 2, version: 3, config: 4 });
      assert.deepEqual({ ...Codec }, { raw: 0, brotli: 1 });
    });

    it('a small chunk is header 45 4c 54 01 01 00 00 00 then the raw payload', () => {
      const enc = encodeObject(Kind.chunk, Buffer.from('hello'), BROTLI);
      assert.equal(enc.data.toString('hex'), '454c540101000000' + '68656c6c6f');
      assert.equal(enc.id, HELLO_ID);
    });

    it('the kind byte follows the kind (tree = 02)', () => {
      const enc = encodeObject(Kind.tree, Buffer.from('hello'), BROTLI);
      assert.equal(enc.data.toString('hex'), '454c540102000000' + '68656c6c6f');
      assert.equal(enc.id, HELLO_ID);
    });

    it('an empty chunk is just the header; its id is sha256 of nothing', () => {
      const enc = encodeObject(Kind.chunk, Buffer.alloc(0), BROTLI);
      assert.equal(enc.data.toString('hex'), '454c540101000000');
      assert.equal(enc.id, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    });

    it('a record is header with flag 01, the 32-byte digest, then the raw plaintext', () => {
      const rec = encodeRecord(Kind.version, Buffer.from('hello'));
      assert.equal(rec.toString('hex'), '454c540103000100' + HELLO_ID + '68656c6c6f');
      const cfg = encodeRecord(Kind.config, Buffer.from('hello'));
      assert.equal(cfg.subarray(0, 8).toString('hex'), '454c540104000100');
    });

    it('a record stays raw even when it would compress well', () => {
      const plain = Buffer.from('x'.repeat(10_000));
      const rec = encodeRecord(Kind.config, plain);
      assert.equal(rec[5], Codec.raw);
      assert.equal(rec.length, 8 + 32 + plain.length);
      assert.ok(rec.subarray(40).equals(plain));
    });

    it('an explicit id is used as given (the caller has already hashed)', () => {
      const id = Buffer.from(HELLO_ID, 'hex');
      assert.equal(encodeObject(Kind.chunk, Buffer.from('hello'), BROTLI, id).id, HELLO_ID);
    });
  });

  describe('codec choice', () => {
    it('payloads under 64 bytes are always raw, from 64 bytes compressible ones use brotli', () => {
      const small = encodeObject(Kind.chunk, Buffer.from('a'.repeat(63)), BROTLI);
      assert.equal(small.data[5], Codec.raw);
      assert.equal(small.data.length, 8 + 63);
      const at64 = encodeObject(Kind.chunk, Buffer.from('a'.repeat(64)), BROTLI);
      assert.equal(at64.data[5], Codec.brotli);
      assert.ok(at64.data.length < 8 + 64);
    });

    it('compressible data gets codec 1, is smaller, and round-trips', () => {
      const plain = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(5000));
      const enc = encodeObject(Kind.chunk, plain, BROTLI);
      assert.equal(enc.data.subarray(0, 8).toString('hex'), '454c540101010000');
      assert.ok(enc.data.length < plain.length / 10);
      assert.equal(enc.id, createHash('sha256').update(plain).digest('hex'));
      const dec = decodeObject(enc.data, 'chunk', enc.id);
      assert.equal(dec.kind, Kind.chunk);
      assert.ok(dec.plain.equals(plain));
    });

    it('incompressible 50 KB data is stored raw', () => {
      const plain = pseudoRandom(50_000, 7);
      const enc = encodeObject(Kind.chunk, plain, BROTLI);
      assert.equal(enc.data[5], Codec.raw);
      assert.ok(enc.data.subarray(8).equals(plain));
    });

    it('incompressible 1 MiB data is stored raw, payload byte-identical', () => {
      const plain = pseudoRandom(1024 * 1024, 42);
      const enc = encodeObject(Kind.chunk, plain, BROTLI);
      assert.equal(enc.data.subarray(0, 8).toString('hex'), '454c540101000000');
      assert.ok(enc.data.subarray(8).equals(plain));
      assert.ok(decodeObject(enc.data, 'chunk', enc.id).plain.equals(plain));
    });

    it('codec "raw" in the settings disables compression', () => {
      const plain = Buffer.from('z'.repeat(100_000));
      const enc = encodeObject(Kind.chunk, plain, { codec: 'raw', quality: 0 });
      assert.equal(enc.data[5], Codec.raw);
      assert.equal(enc.data.length, 8 + plain.length);
    });

    it('decodes a subarray view of a larger buffer (as read from a pack)', () => {
      const plain = Buffer.from('abc'.repeat(1000));
      const enc = encodeObject(Kind.chunk, plain, BROTLI);
      const big = Buffer.concat([Buffer.alloc(100, 7), enc.data, Buffer.alloc(100, 9)]);
      const view = big.subarray(100, 100 + enc.data.length);
      assert.ok(decodeObject(view, 'chunk', enc.id).plain.equals(plain));
    });
  });

  describe('verification', () => {
    const plain = Buffer.from('some chunk content, long enough to be compressed: ' + 'abc'.repeat(100));
    const enc = encodeObject(Kind.chunk, plain, BROTLI);

    it('a wrong expected id is E_CORRUPT and names the object', () => {
      const wrong = 'f'.repeat(64);
      const err = throwsElton(() => decodeObject(enc.data, 'chunk 1234abcd', wrong), 'E_CORRUPT');
      assert.match(err.message, /chunk 1234abcd/);
      assert.equal(err.details?.object, 'chunk 1234abcd');
      assert.equal(err.exitCode, 7);
    });

    it('a malformed expected id (not 64 hex chars) is E_CORRUPT, not a crash', () => {
      throwsElton(() => decodeObject(enc.data, 'x', enc.id.slice(0, 62)), 'E_CORRUPT');
    });

    it('a flipped byte in a raw payload is E_CORRUPT', () => {
      const raw = encodeObject(Kind.chunk, Buffer.from('hello'), BROTLI);
      const bad = Buffer.from(raw.data);
      bad[10] ^= 0x01;
      throwsElton(() => decodeObject(bad, 'chunk h', raw.id), 'E_CORRUPT');
    });

    it('a flipped bit in a brotli payload never yields wrong plaintext: E_CORRUPT, or the very same bytes', () => {
      // Some brotli header bits (e.g. the window size) do not change the output; such a flip
      // decodes to the original plaintext, which the hash then proves. Everything else must throw.
      assert.equal(enc.data[5], Codec.brotli);
      let detected = 0;
      let total = 0;
      for (let i = 8; i < enc.data.length; i++) {
        for (const bit of [0x01, 0x10, 0x80]) {
          const bad = Buffer.from(enc.data);
          bad[i] ^= bit;
          total++;
          let out: Buffer | undefined;
          try {
            out = decodeObject(bad, 'chunk c', enc.id).plain;
          } catch (err) {
            assert.ok(err instanceof EltonError && err.code === 'E_CORRUPT', `byte ${i} bit ${bit}: ${String(err)}`);
            detected++;
            continue;
          }
          assert.ok(out.equals(plain), `byte ${i} bit ${bit} decoded to different bytes without an error`);
        }
      }
      assert.ok(detected > total * 0.9, `${detected}/${total} flips detected`);
    });

    it('bad magic is E_CORRUPT', () => {
      const bad = Buffer.from(enc.data);
      bad[0] = 0x46; // "FLT"
      const err = throwsElton(() => decodeObject(bad, 'chunk m', enc.id), 'E_CORRUPT');
      assert.match(err.message, /magic/);
    });

    it('a buffer shorter than the header is E_CORRUPT', () => {
      throwsElton(() => decodeObject(Buffer.from('ELT\x01'), 'chunk s', enc.id), 'E_CORRUPT');
      throwsElton(() => decodeObject(Buffer.alloc(0), 'chunk s', enc.id), 'E_CORRUPT');
    });

    it('an unsupported format version byte is E_FORMAT', () => {
      const bad = Buffer.from(enc.data);
      bad[3] = 2;
      const err = throwsElton(() => decodeObject(bad, 'chunk f', enc.id), 'E_FORMAT');
      assert.equal(err.exitCode, 9);
      bad[3] = 0;
      throwsElton(() => decodeObject(bad, 'chunk f', enc.id), 'E_FORMAT');
    });

    it('an unknown codec is E_FORMAT', () => {
      const bad = Buffer.from(enc.data);
      bad[5] = 2;
      throwsElton(() => decodeObject(bad, 'chunk k', enc.id), 'E_FORMAT');
    });

    it('a content-addressed object without an expected id cannot be verified: E_CORRUPT', () => {
      throwsElton(() => decodeObject(enc.data, 'chunk n'), 'E_CORRUPT');
    });

    it('a record verifies against its own digest', () => {
      const rec = encodeRecord(Kind.version, Buffer.from('{"a":1}'));
      const dec = decodeObject(rec, 'record');
      assert.equal(dec.kind, Kind.version);
      assert.equal(dec.plain.toString(), '{"a":1}');
    });

    it('a record with a flipped digest or payload byte is E_CORRUPT', () => {
      const rec = encodeRecord(Kind.version, Buffer.from('{"a":1}'));
      for (const i of [8, 20, 39, 40, rec.length - 1]) {
        const bad = Buffer.from(rec);
        bad[i] ^= 0x01;
        throwsElton(() => decodeObject(bad, 'record r'), 'E_CORRUPT');
      }
    });

    it('a record truncated inside its digest is E_CORRUPT', () => {
      const rec = encodeRecord(Kind.version, Buffer.from('{"a":1}'));
      throwsElton(() => decodeObject(rec.subarray(0, 20), 'record t'), 'E_CORRUPT');
    });
  });
  describe('decodeObjectAsync', () => {
    /** The sync decoder's outcome: the plaintext, or the error code. */
    const outcome = async (f: () => Promise<unknown> | unknown): Promise<string> => {
      try {
        const r = (await f()) as { kind: number; plain: Buffer };
        return `ok ${r.kind} ${r.plain.toString('hex')}`;
      } catch (err) {
        return err instanceof EltonError ? err.code : `not an EltonError: ${String(err)}`;
      }
    };

    it('agrees with decodeObject on valid and damaged objects', async () => {
      const text = encodeObject(Kind.tree, Buffer.from('tree text '.repeat(500)), BROTLI);
      const raw = encodeObject(Kind.chunk, pseudoRandom(10_000, 3), BROTLI);
      const rec = encodeRecord(Kind.config, Buffer.from('{"format":1}'));
      const cases: Array<[string, Buffer, string | undefined]> = [
        ['brotli', text.data, text.id], ['raw', raw.data, raw.id], ['record', rec, undefined],
        ['wrong id', text.data, raw.id], ['no id', text.data, undefined], ['empty', Buffer.alloc(0), text.id],
      ];
      for (const i of [0, 3, 5, 9, 20, text.data.length - 1]) {
        const bad = Buffer.from(text.data);
        bad[i] ^= i === 3 ? 0x02 : i === 5 ? 0x07 : 0x55;
        cases.push([`brotli flipped at ${i}`, bad, text.id]);
      }
      const flippedRaw = Buffer.from(raw.data);
      flippedRaw[100] ^= 1;
      cases.push(['raw flipped', flippedRaw, raw.id]);
      for (const [label, data, id] of cases) {
        const sync = await outcome(() => decodeObject(data, 'obj', id));
        const async = await outcome(() => decodeObjectAsync(data, 'obj', id));
        assert.equal(async, sync, label);
        assert.ok(!sync.startsWith('not an'), `${label}: ${sync}`);
      }
    });

    it('decodes a large brotli object', async () => {
      const plain = Buffer.from('0123456789abcdef'.repeat(300_000)); // ~4.6 MiB, many output chunks
      const enc = encodeObject(Kind.chunk, plain, BROTLI);
      assert.equal(enc.data[5], Codec.brotli);
      assert.ok((await decodeObjectAsync(enc.data, 'big', enc.id)).plain.equals(plain));
    });
  });
});
