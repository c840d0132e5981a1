// The backup's small parts: --since and --bwlimit parsing, the rate limiter, the lock's path.

import { strict as assert } from 'node:assert';
import { Throttle } from '../../src/backup/throttle.js';
import { backupLockPath, parseRate, parseSince } from '../../src/app/backup.js';
import { expectEltonError } from '../helpers.js';

describe('unit: backup parts', () => {
  it('parses --since as a date or an age', () => {
    const now = new Date('2026-11-24T12:00:00Z');
    assert.equal(parseSince('36h', now).toISOString(), '2026-11-23T00:00:00.000Z');
    assert.equal(parseSince('7d', now).toISOString(), '2026-11-17T12:00:00.000Z');
    assert.equal(parseSince('2w', now).toISOString(), '2026-11-10T12:00:00.000Z');
    assert.equal(parseSince('90m', now).toISOString(), '2026-11-24T10:30:00.000Z');
    assert.equal(parseSince('2026-11-01', now).toISOString(), '2026-11-01T00:00:00.000Z');
    assert.equal(parseSince('2026-11-01T06:30:00Z', now).toISOString(), '2026-11-01T06:30:00.000Z');
    for (const bad of ['yesterday', '7', 'd7', '12/01/2026', '', '7y']) expectEltonError(() => parseSince(bad, now), 'E_USAGE');
  });

  it('parses --bwlimit in bytes per second', () => {
    assert.equal(parseRate('10M'), 10 * 1024 * 1024);
    assert.equal(parseRate('512K/s'), 512 * 1024);
    assert.equal(parseRate('1000'), 1000);
    for (const bad of ['fast', '0', '-5M', '']) expectEltonError(() => parseRate(bad), 'E_USAGE');
  });

  it('the throttle allows a quarter second of burst, then holds the average rate', () => {
    let t = 1000;
    const th = new Throttle(1000, () => t);
    assert.equal(th.delayFor(250), 0, 'the burst');
    assert.equal(th.delayFor(750), 750, '1000 bytes at 1000 B/s are due at 1 s, less the burst');
    t += 750;
    assert.equal(th.delayFor(0), 0);
    t += 1000;
    assert.equal(th.delayFor(1000), 0, 'idle time is credit up to what the average allows');
    assert.equal(th.delayFor(1000), 1000, 'then it waits again: 3000 bytes are due at 3 s, less the burst');
  });

  it('one lock per pair of remotes, in the user cache', () => {
    process.env.ELTON_CACHE = '/tmp/elton-cache-x';
    const a = backupLockPath('http://a:1', 's3://b/p');
    assert.match(a, /^\/tmp\/elton-cache-x\/locks\/backup-[0-9a-f]{16}\.lock$/);
    assert.notEqual(a, backupLockPath('s3://b/p', 'http://a:1'), 'the direction matters');
    assert.equal(a, backupLockPath('http://a:1', 's3://b/p'));
  });
});
