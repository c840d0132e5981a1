// Unit tests for the master's small parts: token files, --listen parsing, id lists, stream splitting.

import { strict as assert } from 'node:assert';
import { TokenTable } from '../../src/master/tokens.js';
import { parseListen, parsePeers } from '../../src/app/master.js';
import { decodeIds, encodeIds, DEFAULT_PORT } from '../../src/remote/wire.js';
import { splitForStreams } from '../../src/remote/streams.js';
import { expectEltonError, pseudoRandom, tempDir } from '../helpers.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

describe('unit: master parts', () => {
  it('token files: scopes, names, comments; weak tokens and unknown scopes are refused', () => {
    const t = TokenTable.parse('# comment\n\naaaaaaaaaaaaaaaa read,write ci\nbbbbbbbbbbbbbbbb read\n');
    assert.equal(t.size, 2);
    assert.deepEqual([...t.check('aaaaaaaaaaaaaaaa')!.scopes].sort(), ['read', 'write']);
    assert.equal(t.check('aaaaaaaaaaaaaaaa')!.name, 'ci');
    assert.deepEqual([...t.check('bbbbbbbbbbbbbbbb')!.scopes], ['read']);
    assert.equal(t.check('cccccccccccccccc'), undefined);
    assert.equal(t.check(''), undefined);
    expectEltonError(() => TokenTable.parse('short read'), 'E_USAGE', /shorter than 16/);
    expectEltonError(() => TokenTable.parse('aaaaaaaaaaaaaaaa admin'), 'E_USAGE', /unknown scope/);
    expectEltonError(() => TokenTable.parse('aaaaaaaaaaaaaaaa'), 'E_USAGE', /TOKEN SCOPES/);
    expectEltonError(() => TokenTable.parse('# nothing\n'), 'E_USAGE', /no tokens/);
  });

  it('--listen: HOST:PORT, [v6]:PORT, :PORT; loopback and the documented port by default', () => {
    assert.deepEqual(parseListen(undefined), { host: '127.0.0.1', port: DEFAULT_PORT });
    assert.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListen(':3586'), { host: '0.0.0.0', port: 3586 });
    for (const bad of ['nowhere', '1.2.3.4', 'host:99999', 'host:-1', '']) expectEltonError(() => parseListen(bad), 'E_USAGE');
  });

  it('id lists round-trip as 32-byte digests; a ragged list is refused', () => {
    const ids = [1, 2, 3].map((s) => pseudoRandom(32, s).toString('hex'));
    const buf = encodeIds(ids);
    assert.equal(buf.length, 96);
    assert.deepEqual(decodeIds(buf), ids);
    expectEltonError(() => decodeIds(Buffer.alloc(33)), 'E_USAGE');
  });

  it('transfers split into at most 4 balanced streams, and only when big enough', () => {
    const ids = Array.from({ length: 100 }, (_, i) => String(i));
    assert.equal(splitForStreams(ids, () => 1000).length, 1, 'small transfers use one stream');
    const groups = splitForStreams(ids, () => 1024 * 1024);
    assert.equal(groups.length, 4);
    assert.deepEqual(groups.flat().sort(), [...ids].sort());
    for (const g of groups) assert.equal(g.length, 25);
    assert.deepEqual(splitForStreams([], () => 1), []);
  });

  describe('peers', () => {
    it('reads --peer NAME=URL with tokens from the environment, and a peers file with token and CA files', () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'alpha.token'), 'secret-a\n');
      writeFileSync(join(dir, 'ca.pem'), 'PEM');
      writeFileSync(join(dir, 'peers'), '# the other clusters\nalpha https://alpha.example:3586/ token-file=alpha.token ca-file=ca.pem\n\ngamma http://10.0.0.3:3586  # no token\n');
      const env = { ELTON_PEER_TOKEN_US_EAST: 't-east', ELTON_PEER_TOKEN: 't-any' };
      assert.deepEqual(parsePeers(['us-east=http://east:3586', 'west=http://west:3586'], join(dir, 'peers'), dir, env), [
        { name: 'us-east', url: 'http://east:3586', token: 't-east', caFile: undefined },
        { name: 'west', url: 'http://west:3586', token: 't-any', caFile: undefined },
        { name: 'alpha', url: 'https://alpha.example:3586', token: 'secret-a', caFile: join(dir, 'ca.pem') },
        { name: 'gamma', url: 'http://10.0.0.3:3586', token: 't-any', caFile: undefined },
      ]);
    });

    it('refuses bad peers with E_USAGE and the line at fault', () => {
      const dir = tempDir();
      for (const flag of ['alpha', '=http://x', 'Alpha=http://x', 'alpha=s3://bucket', 'alpha=ftp://x']) {
        expectEltonError(() => parsePeers([flag], undefined, dir, {}), 'E_USAGE');
      }
      writeFileSync(join(dir, 'peers'), 'alpha http://a:1\nbeta http://b:1 password=x\n');
      expectEltonError(() => parsePeers([], join(dir, 'peers'), dir, {}), 'E_USAGE', /peers:2: unknown option "password=x"/);
      writeFileSync(join(dir, 'peers'), 'alpha\n');
      expectEltonError(() => parsePeers([], join(dir, 'peers'), dir, {}), 'E_USAGE', /peers:1: expected/);
      expectEltonError(() => parsePeers([], join(dir, 'nope'), dir, {}), 'E_IO');
    });
  });
});
