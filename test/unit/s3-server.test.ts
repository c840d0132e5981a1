// S3 test endpoint (test/support/s3-server.ts), driven by the real AWS SDK v3: forwarding, conditional writes, aws-chunked bodies, stats and faults.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startS3Server, type S3Server } from '../support/s3-server.js';

// The machine points AWS_CA_BUNDLE at a proxy CA; the SDK would load it for our plain-http endpoint.
delete process.env.AWS_CA_BUNDLE;

const BUCKET = 'elton-test';
const KiB = 1024;
const MiB = 1024 * KiB;

/** An SDK client for `endpoint`; checksums WHEN_REQUIRED (plain bodies) unless `defaultChecksums`. */
function client(server: S3Server, { endpoint = server.endpoint, defaultChecksums = false } = {}): S3Client {
  return new S3Client({
    endpoint,
    region: server.region,
    credentials: server.credentials,
    forcePathStyle: true,
    ...(defaultChecksums ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
  });
}

async function get(s3: S3Client, key: string, range?: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

const put = (s3: S3Client, key: string, body: Buffer, ifNoneMatch?: '*') =>
  s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, IfNoneMatch: ifNoneMatch }));

/** Asserts that `p` rejects with an S3 error of this name and HTTP status. */
async function rejectsWith(p: Promise<unknown>, name: string, status: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof S3ServiceException, `expected an S3ServiceException, got ${String(err)}`);
    assert.equal(err.name, name);
    assert.equal(err.$metadata.httpStatusCode, status);
    return true;
  });
}

const statuses = (server: S3Server): number[] => server.stats.log.map((e) => e.status);

describe('s3-server', function () {
  this.timeout(30_000);
  let server: S3Server;
  let s3: S3Client;
  beforeEach(async () => {
    server = await startS3Server();
    await server.createBucket(BUCKET);
    s3 = client(server);
  });
  afterEach(async () => {
    s3.destroy();
    await server.close();
  });

  it('forwards put, get, ranged get, head, list and delete, and counts them', async () => {
    const big = randomBytes(3 * MiB); // above 2 MiB the SDK sends Expect: 100-continue
    const odd = 'dir/with space+plus&amp';
    await put(s3, 'a/big', big);
    await put(s3, 'a/small', Buffer.from('small'));
    await put(s3, odd, Buffer.from('odd'));

    assert.deepEqual(await get(s3, 'a/big'), big);
    assert.deepEqual(await get(s3, 'a/big', 'bytes=1000-1999'), big.subarray(1000, 2000));
    assert.deepEqual(await get(s3, odd), Buffer.from('odd'));
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'a/small' }));
    assert.equal(head.ContentLength, 5);

    const list = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'a/' }));
    assert.deepEqual(list.Contents?.map((o) => [o.Key, o.Size]), [['a/big', big.length], ['a/small', 5]]);
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'a/small' }));
    const after = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'a/' }));
    assert.deepEqual(after.Contents?.map((o) => o.Key), ['a/big']);

    const { stats } = server;
    assert.equal(stats.requests, 10);
    assert.deepEqual(stats.byMethod, { PUT: 3, GET: 5, HEAD: 1, DELETE: 1 });
    assert.deepEqual(stats.log[4], { method: 'GET', key: 'a/big', status: 206, range: 'bytes=1000-1999' });
    assert.deepEqual(stats.log[2], { method: 'PUT', key: odd, status: 200 });
    assert.deepEqual(stats.log[6], { method: 'HEAD', key: 'a/small', status: 200 });
    assert.deepEqual(stats.log[7], { method: 'GET', key: '', status: 200 });
    assert.ok(stats.bytesIn > big.length && stats.bytesIn < big.length + 20 * KiB, `bytesIn ${stats.bytesIn}`);
    assert.ok(stats.bytesOut > big.length + 1000 && stats.bytesOut < big.length + 1000 + 20 * KiB, `bytesOut ${stats.bytesOut}`);

    server.resetStats();
    assert.deepEqual([stats.requests, stats.byMethod, stats.log, stats.bytesIn, stats.bytesOut], [0, {}, [], 0, 0]);
    await get(s3, 'a/big', 'bytes=10-19');
    assert.equal(stats.requests, 1);
    assert.ok(stats.bytesIn > 0 && stats.bytesOut > 0 && stats.bytesOut < 2 * KiB, `bytes ${stats.bytesIn} in, ${stats.bytesOut} out`);
  });

  it('IfNoneMatch: * creates a key once, then fails with 412 PreconditionFailed', async () => {
    await put(s3, 'k', Buffer.from('first'), '*');
    await rejectsWith(put(s3, 'k', randomBytes(3 * MiB), '*'), 'PreconditionFailed', 412); // a body sent after 100-continue
    assert.deepEqual(await get(s3, 'k'), Buffer.from('first'));
    await put(s3, 'k', Buffer.from('third')); // unconditional writes still replace
    assert.deepEqual(await get(s3, 'k'), Buffer.from('third'));
    assert.deepEqual(statuses(server), [200, 412, 200, 200, 200]);
  });

  it('412 comes with the S3 XML error body', async () => {
    await put(s3, 'k', Buffer.from('x'));
    const res = await fetch(`${server.endpoint}/${BUCKET}/k`, { method: 'PUT', headers: { 'if-none-match': '*' }, body: 'y' });
    assert.equal(res.status, 412);
    assert.equal(res.headers.get('content-type'), 'application/xml');
    assert.equal(
      await res.text(),
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>' +
        '<Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>',
    );
  });

  it('of 10 concurrent conditional PUTs to one key exactly one succeeds (s3rver alone lets all through)', async () => {
    const bodies = Array.from({ length: 10 }, () => randomBytes(256 * KiB));
    const race = (c: S3Client, key: string) => Promise.allSettled(bodies.map((b) => put(c, key, b, '*')));

    const results = await race(s3, 'race');
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(winners.length, 1, `${winners.length} conditional PUTs succeeded`);
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as S3ServiceException).$metadata.httpStatusCode, 412);
    }
    assert.deepEqual(await get(s3, 'race'), bodies[winners[0]]);

    const bypass = client(server, { endpoint: server.direct });
    const direct = await race(bypass, 'race-direct');
    bypass.destroy();
    assert.equal(direct.filter((r) => r.status === 'fulfilled').length, 10);
  });

  it('failNext: the SDK retries 503 SlowDown and succeeds', async () => {
    server.faults.failNext(2);
    await put(s3, 'k', Buffer.from('v'));
    assert.deepEqual(statuses(server), [503, 503, 200]);
    assert.equal(server.stats.byMethod.PUT, 3);
    assert.deepEqual(await get(s3, 'k'), Buffer.from('v'));
  });

  it('failNext with a matcher and a non-retryable code fails only the matching call', async () => {
    await put(s3, 'k', Buffer.from('v'));
    server.faults.failNext(1, 403, 'AccessDenied', (method, key) => method === 'GET' && key === 'k');
    await put(s3, 'other', Buffer.from('o'));
    await rejectsWith(get(s3, 'k'), 'AccessDenied', 403);
    assert.deepEqual(await get(s3, 'k'), Buffer.from('v'));
    assert.deepEqual(statuses(server), [200, 200, 403, 200]);
  });

  it('dropNext: the SDK retries a reset connection and succeeds', async () => {
    server.faults.dropNext(1, (method) => method === 'PUT');
    await put(s3, 'k', randomBytes(64 * KiB));
    server.faults.dropNext(1);
    assert.equal((await get(s3, 'k')).length, 64 * KiB);
    assert.deepEqual(statuses(server), [0, 200, 0, 200]);
  });

  it('corruptNext flips the middle byte of the next matching GET body only', async () => {
    const data = randomBytes(1000);
    await put(s3, 'k', data);
    await put(s3, 'other', data);
    server.faults.corruptNext(1, (_method, key) => key === 'k');
    await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'k' })); // HEAD has no body to corrupt
    assert.deepEqual(await get(s3, 'other'), data);

    const bad = await get(s3, 'k');
    const diff = [...bad.keys()].filter((i) => bad[i] !== data[i]);
    assert.deepEqual(diff, [500]);
    assert.equal(bad[500], data[500] ^ 0xff);
    assert.deepEqual(await get(s3, 'k'), data);

    server.faults.corruptNext(1);
    const part = await get(s3, 'k', 'bytes=100-199');
    assert.deepEqual(
      [...part.keys()].filter((i) => part[i] !== data[100 + i]),
      [50],
    );
  });

  it('round-trips a multipart upload, and IfNoneMatch: * on its completion', async () => {
    const parts = [randomBytes(5 * MiB), randomBytes(MiB + 17)];
    const upload = async (key: string, ifNoneMatch?: '*') => {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      const etags = await Promise.all(
        parts.map((Body, i) => s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: i + 1, Body }))),
      );
      return s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId,
          IfNoneMatch: ifNoneMatch,
          MultipartUpload: { Parts: etags.map(({ ETag }, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
    };
    await upload('mp', '*');
    assert.deepEqual(await get(s3, 'mp'), Buffer.concat(parts));
    assert.deepEqual(await get(s3, 'mp', `bytes=${5 * MiB - 2}-${5 * MiB + 1}`), Buffer.concat(parts).subarray(5 * MiB - 2, 5 * MiB + 2));
    await rejectsWith(upload('mp', '*'), 'PreconditionFailed', 412);
    assert.deepEqual(server.stats.byMethod, { POST: 4, PUT: 4, GET: 2 });
  });

  it('unframes aws-chunked bodies (SDK default checksums with a stream body)', async () => {
    const data = randomBytes(300 * KiB);
    const chunked = client(server, { defaultChecksums: true });
    await chunked.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'k', Body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]), ContentLength: data.length }),
    );
    chunked.destroy();
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'k' }));
    assert.equal(head.ContentLength, data.length);
    assert.equal(head.ContentEncoding, undefined);
    assert.deepEqual(await get(s3, 'k'), data);
  });

  it('unframes signed aws-chunked bodies that arrive in small pieces', async () => {
    const data = randomBytes(1500);
    const framed = Buffer.concat([
      Buffer.from(`400;chunk-signature=${'a'.repeat(64)}\r\n`),
      data.subarray(0, 0x400),
      Buffer.from(`\r\n${(data.length - 0x400).toString(16)};chunk-signature=${'b'.repeat(64)}\r\n`),
      data.subarray(0x400),
      Buffer.from(`\r\n0;chunk-signature=${'c'.repeat(64)}\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n`),
    ]);
    const req = http.request(`${server.endpoint}/${BUCKET}/pieces`, {
      method: 'PUT',
      headers: {
        'content-encoding': 'aws-chunked',
        'content-length': framed.length,
        'x-amz-decoded-content-length': data.length,
        'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      },
    });
    const response = once(req, 'response'); // before the body: the answer may come before req.end()
    for (let off = 0; off < framed.length; off += 7) {
      req.write(framed.subarray(off, off + 7));
      await new Promise((resolve) => setImmediate(resolve));
    }
    req.end();
    const [res] = (await response) as [http.IncomingMessage];
    res.resume();
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await get(s3, 'pieces'), data);
  });

  it('env() names the credentials and region and removes AWS_CA_BUNDLE', () => {
    const env = server.env();
    assert.deepEqual(env, { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_CA_BUNDLE: undefined });
    assert.ok('AWS_CA_BUNDLE' in env);
    assert.match(server.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.direct, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(server.endpoint, server.direct);
  });
});

describe('s3-server data directory', () => {
  it('removes a directory it created, and keeps one it was given', async () => {
    const own = await startS3Server();
    assert.ok(existsSync(own.dir));
    await own.close();
    assert.equal(existsSync(own.dir), false);

    const given = await mkdtemp(join(tmpdir(), 'elton-s3-given-'));
    const server = await startS3Server({ dir: given });
    await server.createBucket('kept');
    await server.close();
    assert.ok(existsSync(given));
    await rm(given, { recursive: true, force: true });
  });
});
