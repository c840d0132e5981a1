// WAN proxy (test/support/wan-proxy.ts): added latency, shared bandwidth cap, half-close, backpressure and cut connections.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { startWanProxy, type WanProxy } from '../support/wan-proxy.js';

const MiB = 1024 * 1024;

interface Target {
  host: string;
  port: number;
  /** Bytes received per connection, in accept order. */
  received: Buffer[][];
  /** Connections that closed, with whether they ended with an error. */
  closed: { error: boolean }[];
  /** Resets (TCP RST) every open connection. */
  reset(): void;
  close(): Promise<void>;
}

/** A local TCP server: `echo` writes back what it reads and ends when the client ends; `sink` only counts. */
async function startServer(mode: 'echo' | 'sink'): Promise<Target> {
  const sockets = new Set<net.Socket>();
  const received: Buffer[][] = [];
  const closed: { error: boolean }[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    const mine: Buffer[] = [];
    received.push(mine);
    let error = false;
    s.on('data', (d) => {
      mine.push(d);
      if (mode === 'echo') s.write(d);
    });
    s.on('end', () => s.end());
    s.on('error', () => {
      error = true;
    });
    s.on('close', () => {
      sockets.delete(s);
      closed.push({ error });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    received,
    closed,
    reset: () => {
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function connect(proxy: WanProxy): Promise<net.Socket> {
  const s = net.connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true, noDelay: true });
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  return s;
}

/** Writes `data` and resolves with the milliseconds until `expect` bytes have come back. */
function roundTrip(s: net.Socket, data: Buffer, expect = data.length): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let got = 0;
    const onData = (d: Buffer): void => {
      got += d.length;
      if (got >= expect) {
        s.off('data', onData);
        resolve(performance.now() - t0);
      }
    };
    s.on('data', onData);
    s.write(data);
  });
}

/** Resolves with everything the socket sends until it ends, and whether it closed with an error. */
function drain(s: net.Socket): Promise<{ data: Buffer; error: boolean }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let error = false;
    s.on('data', (d) => parts.push(d));
    s.on('error', () => {
      error = true;
    });
    s.on('close', () => resolve({ data: Buffer.concat(parts), error }));
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('wan-proxy', function () {
  this.timeout(10_000);
  let target: Target | undefined;
  let proxy: WanProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    await target?.close();
    proxy = target = undefined;
  });

  it('adds one RTT to a request/response exchange, and the handshake to the first one', async () => {
    const rtt = 120;
    target = await startServer('echo');
    proxy = await startWanProxy(target, { rttMs: rtt });
    assert.match(proxy.url(), /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(proxy.url('https'), `https://127.0.0.1:${proxy.port}`);
    const s = await connect(proxy);
    const first = await roundTrip(s, Buffer.from('hello'));
    assert.ok(first >= 2 * rtt, `first exchange took ${first.toFixed(1)} ms, expected >= 2 x ${rtt} (handshake + exchange)`);
    assert.ok(first < 2 * rtt + 100, `first exchange took ${first.toFixed(1)} ms`);
    for (let i = 0; i < 3; i++) {
      const ms = await roundTrip(s, Buffer.from(`ping ${i}`));
      assert.ok(ms >= rtt, `exchange took ${ms.toFixed(1)} ms, expected >= ${rtt}`);
      assert.ok(ms < rtt + 60, `exchange took ${ms.toFixed(1)} ms, expected < ${rtt} + 60`);
    }
    assert.equal(proxy.stats.connections, 1);
    assert.equal(proxy.stats.bytesUp, 5 + 3 * 'ping 0'.length);
    assert.equal(proxy.stats.bytesDown, proxy.stats.bytesUp);
    s.destroy();
  });

  it('charges no handshake with handshakeRtts: 0', async () => {
    const rtt = 100;
    target = await startServer('echo');
    proxy = await startWanProxy(target, { rttMs: rtt, handshakeRtts: 0 });
    const s = await connect(proxy);
    const ms = await roundTrip(s, Buffer.from('hello'));
    assert.ok(ms >= rtt && ms < rtt + 60, `first exchange took ${ms.toFixed(1)} ms, expected ~${rtt}`);
    s.destroy();
  });

  it('caps throughput at the link rate and delivers the bytes intact', async () => {
    target = await startServer('sink');
    proxy = await startWanProxy(target, { rttMs: 10, mbitPerSec: 40, handshakeRtts: 0 });
    const data = randomBytes(2 * MiB); // 2 MiB at 40 Mbit/s = 0.42 s
    const s = await connect(proxy);
    const t0 = performance.now();
    s.end(data);
    await drain(s);
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds >= 0.35, `2 MiB took ${seconds.toFixed(3)} s, expected >= 0.35 s at 40 Mbit/s`);
    assert.ok(seconds < 1.5, `2 MiB took ${seconds.toFixed(3)} s`);
    assert.equal(sha(Buffer.concat(target.received[0])), sha(data));
    assert.equal(proxy.stats.bytesUp, data.length);
  });

  it('shares the link between parallel connections', async () => {
    target = await startServer('sink');
    proxy = await startWanProxy(target, { rttMs: 10, mbitPerSec: 40, handshakeRtts: 0 });
    const sockets = await Promise.all([connect(proxy), connect(proxy)]);
    const t0 = performance.now();
    await Promise.all(
      sockets.map((s) => {
        const done = drain(s);
        s.end(randomBytes(MiB)); // 2 x 1 MiB in parallel: the same 0.42 s as 2 MiB on one connection
        return done;
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds >= 0.35, `2 x 1 MiB in parallel took ${seconds.toFixed(3)} s, expected >= 0.35 s`);
    assert.equal(proxy.stats.connections, 2);
    assert.equal(proxy.stats.bytesUp, 2 * MiB);
  });

  it('forwards half-close after the data and closes both sides cleanly', async () => {
    target = await startServer('echo');
    proxy = await startWanProxy(target, { rttMs: 40, mbitPerSec: 100 });
    const s = await connect(proxy);
    const data = randomBytes(300 * 1024);
    const done = drain(s);
    s.end(data); // the echo server ends when it sees our end, after echoing everything
    const { data: back, error } = await done;
    assert.equal(error, false);
    assert.equal(sha(back), sha(data));
    await sleep(50);
    assert.deepEqual(target.closed, [{ error: false }]);
  });

  it('applies backpressure instead of buffering a fast sender', async () => {
    target = await startServer('sink');
    proxy = await startWanProxy(target, { rttMs: 50, mbitPerSec: 8, handshakeRtts: 0 });
    const s = await connect(proxy);
    s.write(Buffer.alloc(64 * MiB));
    await sleep(300); // ~300 KB cross the link in that time
    // The proxy reads at most its window (256 KiB here) ahead of the link; the kernel buffers the
    // rest on loopback (a few MiB), so most of the 64 MiB must still be waiting in the client.
    assert.ok(s.writableLength > 32 * MiB, `only ${(s.writableLength / MiB).toFixed(1)} MiB left in the client: the proxy is not pushing back`);
    assert.ok(proxy.stats.bytesUp < MiB, `${proxy.stats.bytesUp} bytes delivered in 0.3 s at 8 Mbit/s`);
    s.destroy();
  });

  it('resets the other side when one side errors, and when the target refuses', async () => {
    target = await startServer('echo');
    proxy = await startWanProxy(target, { rttMs: 20 });
    const s = await connect(proxy);
    await roundTrip(s, Buffer.from('x'));
    const done = drain(s);
    target.reset();
    const { error } = await done;
    assert.equal(error, true, 'the client should see a reset, not a clean end');

    const port = target.port;
    await proxy.close();
    await target.close();
    proxy = await startWanProxy({ host: '127.0.0.1', port }, { rttMs: 20 }); // nothing listens there now
    const r = await drain(await connect(proxy));
    assert.equal(r.data.length, 0);
  });

  it('cutAfterBytes cuts every open connection once, at exactly that many bytes', async () => {
    target = await startServer('sink');
    const cut = 100_000;
    proxy = await startWanProxy(target, { rttMs: 20, mbitPerSec: 100, cutAfterBytes: cut });
    const [a, b] = await Promise.all([connect(proxy), connect(proxy)]);
    const [ra, rb] = [drain(a), drain(b)];
    a.write(randomBytes(MiB)); // a alone crosses the threshold; b is idle and is cut too
    const [resA, resB] = await Promise.all([ra, rb]);
    assert.equal(resA.error, true, 'a should be reset');
    assert.equal(resB.error, true, 'b should be reset');
    assert.equal(proxy.stats.bytesUp, cut);
    await sleep(50);
    const serverGot = target.received.reduce((n, parts) => n + parts.reduce((m, p) => m + p.length, 0), 0);
    assert.ok(serverGot <= cut, `server received ${serverGot} bytes`);

    // Later connections pass normally.
    const c = await connect(proxy);
    const data = randomBytes(300_000);
    const done = drain(c);
    c.end(data);
    const { error } = await done;
    assert.equal(error, false);
    assert.equal(sha(Buffer.concat(target.received[2])), sha(data));
    assert.equal(proxy.stats.bytesUp, cut + data.length);
  });
});
